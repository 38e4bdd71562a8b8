//! The planner over real HTTP: a real server on a loopback port per test, a real receiving
//! server for the synthesizer, a real archivist, a real watcher on the machine's Docker
//! engine for auto-remediation, a real PostgreSQL for the shared database, and the real
//! binary for configuration errors.

mod bad_input;
mod db;
mod forwarding;
mod helpers;
mod legacy;
mod metrics;
mod plans;
mod remediation;
mod rules;
mod state;
