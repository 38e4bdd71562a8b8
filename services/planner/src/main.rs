fn main() {
    obs_core::run_role(planner::NAME, planner::DEFAULT_PORT, planner::Planner::new)
}
