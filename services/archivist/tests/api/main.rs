//! The archivist over real HTTP, every test run against both backends: embedded SQLite and a
//! real PostgreSQL (obs_testkit::postgres). One test binary, one module per concern.

mod helpers;

mod append;
mod bad_input;
mod export;
mod failures;
mod legacy;
mod observability;
mod query;
mod replicas;
mod retention;
mod tls;
