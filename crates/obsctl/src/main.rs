fn main() -> std::process::ExitCode {
    obsctl::main()
}
