//! The curator over real HTTP: a real server on a loopback port per test, real receiving
//! servers for the planner and the archivist, a real watcher for the goals, a real
//! Alertmanager for the webhook, the real binary for the crash test.

mod alertmanager;
mod bad_input;
mod database;
mod forwarding;
mod goals;
mod helpers;
mod incidents;
mod issues;
mod metrics;
mod silences;
mod state;
