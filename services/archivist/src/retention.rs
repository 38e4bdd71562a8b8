//! Retention: records older than ARCHIVE_RETENTION_DAYS are purged, at start and then every
//! ARCHIVE_PURGE_INTERVAL. A purge deletes in chunks, each its own short transaction, so the
//! group committer is never held off for long and a large backlog drains without one huge
//! transaction.
//!
//! The purge is a singleton (DESIGN §9): [`Retention::run_under_lease`] runs it only while
//! this replica holds the `archivist-retention` lease in the archive's database, so replicas
//! sharing PostgreSQL do not all scan and delete at once; when the holder dies another takes
//! the lease over once it expires and purges at once. On SQLite there is one process and the
//! lease is always its own.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use obs_core::db::{Db, Lease};
use obs_core::CancellationToken;

use crate::metrics::ArchiveMetrics;
use crate::store::Store;

/// Records deleted per transaction.
pub const PURGE_CHUNK: usize = 10_000;

/// What the last purge did, for `GET /v1/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeReport {
    pub at: DateTime<Utc>,
    pub purged: u64,
}

/// Shared between the purge task and the stats handler.
#[derive(Debug, Clone, Default)]
pub struct LastPurge(Arc<Mutex<Option<PurgeReport>>>);

impl LastPurge {
    pub fn get(&self) -> Option<PurgeReport> {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, report: PurgeReport) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
    }
}

/// The lease every replica's purge shares.
pub const LEASE: &str = "archivist-retention";

#[derive(Clone)]
pub struct Retention {
    pub store: Arc<dyn Store>,
    pub keep: chrono::Duration,
    pub interval: Duration,
    pub metrics: ArchiveMetrics,
    pub last: LastPurge,
}

impl Retention {
    /// [`Retention::run`] on whichever replica holds the lease on `db`, until `shutdown`.
    /// `ttl` bounds how long a dead holder keeps the others waiting.
    pub async fn run_under_lease(self, db: Db, ttl: Duration, shutdown: CancellationToken) {
        Lease::new(&db, LEASE, ttl)
            .run(shutdown, move |held| self.clone().run(held))
            .await;
    }

    /// Purge now, then every `interval`, until `shutdown` (or the lease is lost).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            match self.purge_once(&shutdown).await {
                Ok(purged) => {
                    self.metrics.purges.with_label_values(&["ok"]).inc();
                    if purged > 0 {
                        tracing::info!(purged, keep_days = self.keep.num_days(), "retention purge");
                    }
                }
                Err(error) => {
                    self.metrics.purges.with_label_values(&["error"]).inc();
                    tracing::error!(error = format!("{error:#}"), "retention purge failed");
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.cancelled() => return,
            }
        }
    }

    /// Delete every record older than the retention window; returns how many.
    pub async fn purge_once(&self, shutdown: &CancellationToken) -> anyhow::Result<u64> {
        let now = Utc::now();
        let cutoff = now
            .checked_sub_signed(self.keep)
            .and_then(|cutoff| cutoff.timestamp_nanos_opt())
            // A window reaching before 1678 keeps everything the archive can hold.
            .unwrap_or(i64::MIN);
        let mut purged = 0;
        while !shutdown.is_cancelled() {
            let deleted = self.store.purge_before(cutoff, PURGE_CHUNK).await?;
            purged += deleted;
            self.metrics.purged_records.inc_by(deleted);
            if deleted < PURGE_CHUNK as u64 {
                break;
            }
        }
        self.last.set(PurgeReport { at: now, purged });
        Ok(purged)
    }
}
