//! obsctl as people and scripts run it: the real binary against the real watcher binary on a
//! loopback port, a real tmux for the live view, a real Docker container for `logs`.

mod commands;
mod errors;
mod follow;
mod logs;
mod support;
mod tui;
