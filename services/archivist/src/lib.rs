//! The archivist role. What happened? Durable, queryable, exportable history with retention.
//!
//! - [`api`]: `POST /v1/records`, `GET /v1/records`, `GET /v1/export`, `GET /v1/stats`.
//! - [`batch`] and [`query`]: input → validated values, or a 400 naming the field.
//! - [`commit`]: the group committer; a batch is acknowledged only once durable.
//! - [`store`]: the storage trait and its SQLite and PostgreSQL backends.
//! - [`retention`]: the periodic purge of records older than ARCHIVE_RETENTION_DAYS.
//! - [`config`]: ARCHIVE_URL and friends.

pub mod api;
pub mod batch;
pub mod commit;
pub mod config;
pub mod metrics;
pub mod query;
pub mod retention;
pub mod store;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use obs_core::actix_web::web;
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
    /// Taken by [`Role::start`], which runs it until shutdown.
    worker: Mutex<Option<CommitWorker>>,
    retention: Option<chrono::Duration>,
    purge_interval: Duration,
}

impl Archivist {
    /// The role as the binaries build it: settings from the environment (ARCHIVE_URL, …).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = ArchiveConfig::from_env(&service.config().state_dir)?;
        Self::with_config(service, config).await
    }

    /// The role with explicit settings (tests, embedding).
    pub async fn with_config(service: &Service, config: ArchiveConfig) -> anyhow::Result<Self> {
        let metrics = ArchiveMetrics::register(service)?;
        let store = store::open(&config.location).await?;
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
            worker: Mutex::new(Some(worker)),
            retention: config.retention(),
            purge_interval: config.purge_interval,
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
            context.spawn(retention.run(context.shutdown.clone()));
        }
    }
}
