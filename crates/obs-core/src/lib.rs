//! obs-core: the kit that makes an actix-web service observable, the same way in every role.
//!
//! - [`config`]: env config (envy), one-line errors, exit code 2.
//! - [`server`]: [`Service`] → [`Application`]: probes, metrics, docs, JSON errors, drain.
//! - [`metrics`]: one registry per role, seed-compatible HTTP metrics.
//! - [`auth`]: API_TOKEN, the bearer token on whatever changes state.
//! - [`error`]: [`ApiError`], the one JSON error shape.
//! - [`json`]: [`Json`], the request-body extractor whose errors name the field.
//! - [`telemetry`]: JSON or text logs with role, trace id and request id.
//! - [`outbox`]: persisted, retried, bounded delivery of records to another role.
//! - [`db`]: the one commit path: state, outbox and seen ids in SQLite or PostgreSQL.
//! - [`heartbeat`]: the client that reports a role alive to the watcher.
//! - [`render`]: heavy reads (`/metrics` of 100,000 services) on one low-priority thread.
//! - [`runtime`]: a role binary's whole `main`.

pub mod auth;
pub mod config;
pub mod db;
pub mod dead_letters;
pub mod docs;
pub mod error;
pub mod heartbeat;
pub mod json;
pub mod metrics;
mod middleware;
pub mod outbox;
pub mod pg_connect;
pub mod probes;
pub mod redact;
pub mod render;
pub mod runtime;
mod series;
pub mod server;
pub mod sqlite_wal;
pub mod telemetry;

pub use auth::{ActsOnHost, SensitiveRead, StateChanging};
pub use config::{ConfigError, CoreConfig, LegacyListen, Listen};
pub use error::ApiError;
pub use json::Json;
pub use metrics::{BoundedCounterVec, Metrics};
pub use outbox::{Outbox, OutboxOptions};
pub use runtime::{command_line, exit_with, run_role, Invocation};
pub use server::{shutdown_signal, Application, Role, RoleContext, Service};

/// Re-exported so roles use the same versions as the kit.
pub use actix_web;
pub use prometheus;
pub use tokio_util::sync::CancellationToken;
pub use utoipa;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const REVISION: &str = env!("OBS_REVISION");
