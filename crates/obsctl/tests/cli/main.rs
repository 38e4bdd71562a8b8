//! obsctl as people and scripts run it: the real binary against the real watcher binary on a
//! loopback port, the real curator, planner and synthesizer served in the test process, a real tmux for
//! the live view, a real Docker container for `logs`.

mod commands;
mod dead_letters;
mod errors;
mod follow;
mod incidents;
mod logs;
mod plans;
mod report;
mod roles;
mod silences;
mod support;
mod tui;
