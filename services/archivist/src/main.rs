fn main() {
    obs_core::run_role(
        archivist::NAME,
        archivist::DEFAULT_PORT,
        archivist::Archivist::new,
    )
}
