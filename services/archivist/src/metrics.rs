//! The archivist's own metrics, registered in the role's registry (obs-core's `Metrics`).

use obs_core::prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts};
use obs_core::Service;

#[derive(Clone)]
pub struct ArchiveMetrics {
    pub records_stored: IntCounter,
    pub records_duplicates: IntCounter,
    pub batch_records: Histogram,
    pub commit_batches: Histogram,
    pub commit_duration: Histogram,
    pub commit_failures: IntCounter,
    pub purged_records: IntCounter,
    /// `outcome` is `ok` or `error`.
    pub purges: IntCounterVec,
}

/// Records per batch: the outbox sends up to a few hundred, ARCHIVE_MAX_BATCH caps it.
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0];
/// Batches per group commit: 1 when idle, more under concurrent load.
const GROUP_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
/// One transaction plus its fsync: sub-millisecond on fast disks, tens of ms on slow ones.
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl ArchiveMetrics {
    pub fn register(service: &Service) -> anyhow::Result<Self> {
        let registry = service.metrics();
        let histogram = |name: &str, help: &str, buckets: &[f64]| {
            registry.register(Histogram::with_opts(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
            )?)
        };
        Ok(ArchiveMetrics {
            records_stored: registry.register(IntCounter::new(
                "archivist_records_stored_total",
                "Records written to the archive and acknowledged.",
            )?)?,
            records_duplicates: registry.register(IntCounter::new(
                "archivist_records_duplicates_total",
                "Records received whose id was already archived: counted, not stored again.",
            )?)?,
            batch_records: histogram(
                "archivist_batch_records",
                "Records per accepted POST /v1/records batch.",
                BATCH_BUCKETS,
            )?,
            commit_batches: histogram(
                "archivist_commit_batches",
                "Batches made durable together by one group commit (one transaction).",
                GROUP_BUCKETS,
            )?,
            commit_duration: histogram(
                "archivist_commit_duration_seconds",
                "Time to make one group of batches durable, transaction and flush included.",
                COMMIT_BUCKETS,
            )?,
            commit_failures: registry.register(IntCounter::new(
                "archivist_commit_failures_total",
                "Group commits that failed; their batches were answered 503, nothing acknowledged.",
            )?)?,
            purged_records: registry.register(IntCounter::new(
                "archivist_retention_purged_records_total",
                "Records deleted because they were older than ARCHIVE_RETENTION_DAYS.",
            )?)?,
            purges: registry.register(IntCounterVec::new(
                Opts::new(
                    "archivist_retention_purges_total",
                    "Retention purge runs, by outcome (ok, error).",
                ),
                &["outcome"],
            )?)?,
        })
    }
}
