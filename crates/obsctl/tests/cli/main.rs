//! obsctl as people and scripts run it: the real binary against the real watcher binary on a
//! loopback port, the real curator and planner served in the test process, a real tmux for
//! the live view, a real Docker container for `logs`.

mod commands;
mod errors;
mod follow;
mod incidents;
mod logs;
mod plans;
mod roles;
mod silences;
mod support;
mod tui;
