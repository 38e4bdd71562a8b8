fn main() {
    obs_core::run_role(curator::NAME, curator::DEFAULT_PORT, curator::Curator::new)
}
