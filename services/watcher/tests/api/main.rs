//! The watcher over real HTTP: a real server on a loopback port per test, a real Docker
//! engine for the container tests, the real binary for the process tests.

mod bad_input;
mod commit;
mod docker;
mod events;
mod heartbeats;
mod helpers;
mod kube_api;
mod kubernetes;
mod metrics;
mod probes;
mod process;
mod replicas;
mod state;
mod status;
