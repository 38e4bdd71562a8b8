fn main() {
    obs_core::run_role(
        synthesizer::NAME,
        synthesizer::DEFAULT_PORT,
        synthesizer::Synthesizer::new,
    )
}
