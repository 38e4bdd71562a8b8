fn main() {
    obs_core::run_role(watcher::NAME, watcher::DEFAULT_PORT, watcher::Watcher::new)
}
