//! The planner over real HTTP: a real server on a loopback port per test, a real receiving
//! server for the synthesizer, a real archivist, a real watcher on the machine's Docker
//! engine for auto-remediation, and the real binary for configuration errors.

mod bad_input;
mod forwarding;
mod helpers;
mod metrics;
mod plans;
mod remediation;
mod rules;
mod state;
