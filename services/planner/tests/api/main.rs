//! The planner over real HTTP: a real server on a loopback port per test, a real receiving
//! server for the synthesizer, a real archivist, a real watcher on the machine's Docker
//! engine for auto-remediation, the real watcher with the watcher's own Kubernetes test API
//! server for pod remediation, a real PostgreSQL for the shared database, and the real
//! binary for configuration errors and for what it logs.

mod bad_input;
mod db;
mod forwarding;
mod helpers;
// The watcher's Kubernetes API server for tests, compiled in from its suite (not copied);
// this suite uses only part of it.
#[path = "../../../watcher/tests/api/kube_api.rs"]
#[allow(dead_code)]
mod kube_api;
mod kubernetes;
mod legacy;
mod metrics;
mod plans;
mod redaction;
mod remediation;
mod rules;
mod state;
