//! The archivist role. What happened? Durable, queryable, exportable history with retention.
//!
//! The commit path: `POST /v1/records` validates the whole batch ([`batch`]), hands it to the
//! group committer ([`commit`]), which writes it with every batch queued behind it in ONE
//! transaction, and answers 201 only after that transaction committed durably (SQLite WAL
//! fsynced, or PostgreSQL with `synchronous_commit=on`). A failed commit stores nothing and
//! answers 503 "nothing was stored"; the sender's retry is then stored normally. The archivist
//! keeps no state in memory: the records table is the state, and its unique `id` is the
//! receiver-side dedupe (a redelivered record is a duplicate, from any replica, after any
//! restart), so there is nothing to apply after a commit but the answer.
//!
//! The archive lives where every role's state does (DESIGN §9): `STATE_DIR/archivist.db`, or
//! PostgreSQL with `DATABASE_URL` (`ARCHIVE_URL` kept as an alias). It is opened, checked and
//! migrated through obs-core's database layer before the archivist's own tuned connections
//! touch it ([`store`]); the purge runs under a lease ([`retention`]); an archive left by an
//! earlier version at `STATE_DIR/archive.sqlite3` is imported once ([`legacy`]).
//!
//! - [`api`]: `POST /v1/records`, `GET /v1/records`, `GET /v1/export`, `GET /v1/stats`.
//! - [`batch`] and [`query`]: input → validated values, or a 400 naming the field.
//! - [`commit`]: the group committer; a batch is acknowledged only once durable.
//! - [`store`]: the schema, the opening order, and the SQLite and PostgreSQL backends.
//! - [`retention`]: the purge of records older than ARCHIVE_RETENTION_DAYS, on one replica.
//! - [`legacy`]: the one-time import of an earlier version's archive file.
//! - [`config`]: DATABASE_URL / ARCHIVE_URL and friends.

pub mod api;
pub mod batch;
pub mod commit;
pub mod config;
pub mod legacy;
pub mod metrics;
pub mod query;
pub mod retention;
pub mod store;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use obs_core::actix_web::web;
use obs_core::db::{Db, UnusableState};
use obs_core::{Role, RoleContext, Service};
use utoipa::OpenApi as _;

use crate::api::Archive;
use crate::commit::CommitWorker;
use crate::config::ArchiveConfig;
use crate::metrics::ArchiveMetrics;
use crate::retention::{LastPurge, Retention};

pub use crate::config::ArchiveLocation;

pub const NAME: &str = "archivist";
pub const DEFAULT_PORT: u16 = 8005;

pub struct Archivist {
    archive: web::Data<Archive>,
    /// The kit's handle on the archive's database (leases).
    db: Db,
    /// Taken by [`Role::start`], which runs it until shutdown.
    worker: Mutex<Option<CommitWorker>>,
    retention: Option<chrono::Duration>,
    purge_interval: Duration,
    purge_lease_ttl: Duration,
}

impl Archivist {
    /// The role as the binaries build it: settings from the environment (DATABASE_URL or
    /// ARCHIVE_URL, …).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let core = service.config();
        let config = ArchiveConfig::from_env(&core.state_dir, core.database_url.as_deref())?;
        Self::with_config(service, config).await
    }

    /// The role with explicit settings (tests, embedding). An earlier version's archive under
    /// STATE_DIR is imported into `config.location` first.
    pub async fn with_config(service: &Service, config: ArchiveConfig) -> anyhow::Result<Self> {
        let metrics = ArchiveMetrics::register(service)?;
        // An archive that cannot be used (damaged, newer than this binary, unreachable, an
        // earlier version's file that cannot be read) stops the role: exit 2 and one line.
        let unusable = |error: anyhow::Error| UnusableState(format!("{error:#}"));
        let store::Opened { db, store } = store::open(&config.location).await.map_err(unusable)?;
        legacy::import(&db, &service.config().state_dir, &config.location)
            .await
            .map_err(unusable)?;
        tracing::info!(
            backend = store.backend(),
            location = ?config.location,
            retention_days = config.retention_days,
            "archive open"
        );
        let (committer, worker) = commit::channel(store.clone(), metrics.clone());
        Ok(Archivist {
            archive: web::Data::new(Archive {
                store,
                committer,
                metrics,
                max_batch: config.max_batch,
                retention_days: config.retention_days,
                last_purge: LastPurge::default(),
            }),
            db,
            worker: Mutex::new(Some(worker)),
            retention: config.retention(),
            purge_interval: config.purge_interval,
            purge_lease_ttl: config.purge_lease_ttl,
        })
    }
}

impl Role for Archivist {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        api::routes(cfg, self.archive.clone());
    }

    fn openapi(&self) -> obs_core::utoipa::openapi::OpenApi {
        api::ArchiveApi::openapi()
    }

    fn start(&self, context: &RoleContext) {
        let worker = self
            .worker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(worker) = worker {
            context.spawn(worker.run(context.shutdown.clone()));
        }
        if let Some(keep) = self.retention {
            let retention = Retention {
                store: self.archive.store.clone(),
                keep,
                interval: self.purge_interval,
                metrics: self.archive.metrics.clone(),
                last: self.archive.last_purge.clone(),
            };
            context.spawn(retention.run_under_lease(
                self.db.clone(),
                self.purge_lease_ttl,
                context.shutdown.clone(),
            ));
        }
    }
}
