fn main() {
    obs_core::run_role(watcher::NAME, watcher::LISTEN, watcher::Watcher::new)
}
