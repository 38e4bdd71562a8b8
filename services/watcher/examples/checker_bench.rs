//! The heartbeat checker with many tracked services, in-process: heap bytes per tracked
//! service, the cost of a beat, of writing every service behind, and of the checker's indexed
//! queries on a real SQLite database (in a temporary folder). Run by `make bench`
//! (bench/run.py, scenario `heartbeat-checker`); prints one JSON line.
//!
//!     cargo run --release -p watcher --example checker_bench -- [services]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use chrono::Utc;
use obs_core::db::{now_millis, Db, Location};
use watcher::heartbeats::Tracker;

/// Counts live heap bytes, so memory per service is measured, not guessed from RSS.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let index = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let services: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let timeout = Duration::from_secs(30);
    let names: Vec<String> = (0..services).map(|n| format!("edge-cam{n:06}")).collect();
    let wall = Utc::now();

    // Memory: live heap before and after tracking every service (names built beforehand).
    let before = LIVE.load(Ordering::Relaxed);
    let mut tracker = Tracker::new(services, timeout);
    for name in &names {
        tracker
            .beat(name, Some("running"), None, wall)
            .map_err(|full| anyhow::anyhow!("{full}"))?;
    }
    let bytes_per_service = (LIVE.load(Ordering::Relaxed) - before) as f64 / services as f64;

    // Writing every service behind: one transaction of batched upserts.
    let folder = tempfile::tempdir()?;
    let db = Db::open(
        &Location::Sqlite(folder.path().join("watcher.db")),
        watcher::store::SCHEMA,
    )
    .await?;
    let rows = tracker.take_dirty();
    let started = StdInstant::now();
    db.write(move |tx| watcher::store::upsert_beats(tx, &rows))
        .await?;
    let write_behind_all_seconds = started.elapsed().as_secs_f64();

    // A pass that finds nothing due: what the checker pays each time it wakes (the indexed
    // "anything due?" and "next deadline" queries).
    let cutoff = now_millis();
    let mut samples = Vec::with_capacity(2_000);
    for _ in 0..2_000 {
        let started = StdInstant::now();
        let due = db
            .read(move |tx| {
                let due = tx
                    .query_opt(
                        "SELECT 1 FROM watcher_services WHERE status = 'up' AND deadline <= $1 LIMIT 1",
                        &[cutoff.into()],
                    )?
                    .is_some();
                tx.query_opt(
                    "SELECT MIN(deadline) FROM watcher_services WHERE status = 'up'",
                    &[],
                )?;
                Ok(due)
            })
            .await?;
        samples.push(started.elapsed().as_secs_f64());
        assert!(!due);
    }
    samples.sort_by(f64::total_cmp);

    // A heartbeat from a known service: the table's part of ingest (a hash lookup; the first
    // beat after a write-behind also queues the name once).
    let beats = 1_000_000;
    let later = wall + chrono::Duration::milliseconds(1);
    let started = StdInstant::now();
    for n in 0..beats {
        let name = &names[n % services];
        tracker
            .beat(name, None, None, later)
            .map_err(|full| anyhow::anyhow!("{full}"))?;
    }
    let beat_ns = started.elapsed().as_secs_f64() * 1e9 / beats as f64;

    // What `/status` holds the table's lock for: a copy of every service (in chunks of
    // SNAPSHOT_CHUNK, timed here whole); then, with the lock released, the statuses, the sort
    // and the serialization.
    let started = StdInstant::now();
    let mut copy = Vec::new();
    tracker.copy_into(0, usize::MAX, &mut copy);
    let snapshot_copy_seconds = started.elapsed().as_secs_f64();
    let mut statuses = watcher::heartbeats::Snapshot { services: copy }.statuses();
    let started = StdInstant::now();
    watcher::heartbeats::sort_statuses(&mut statuses);
    let snapshot_sort_seconds = started.elapsed().as_secs_f64();
    let started = StdInstant::now();
    let bytes = serde_json::to_vec(&statuses)?.len();
    let snapshot_serialize_seconds = started.elapsed().as_secs_f64();
    drop(statuses);

    // The rare heavy pass: every service silent at once, found through the deadline index.
    let all_due = cutoff.saturating_add(3 * 30_000);
    let started = StdInstant::now();
    let found = db
        .read(move |tx| {
            Ok(tx
                .query(
                    "SELECT name FROM watcher_services WHERE status = 'up' AND deadline <= $1
                     ORDER BY deadline",
                    &[all_due.into()],
                )?
                .len())
        })
        .await?;
    let expire_all_seconds = started.elapsed().as_secs_f64();
    assert_eq!(found, services);

    println!(
        "{}",
        serde_json::json!({
            "services": services,
            "bytes_per_service": bytes_per_service,
            "idle_pass_seconds": {
                "p50": percentile(&samples, 50.0),
                "p99": percentile(&samples, 99.0),
                "max": samples[samples.len() - 1],
            },
            "beat_known_service_ns": beat_ns,
            // Kept under its old key for bench/run.py: the whole-table write-behind.
            "requeue_all_seconds": write_behind_all_seconds,
            "write_behind_all_seconds": write_behind_all_seconds,
            "expire_all_seconds": expire_all_seconds,
            "snapshot_copy_seconds": snapshot_copy_seconds,
            "snapshot_sort_seconds": snapshot_sort_seconds,
            "snapshot_serialize_seconds": snapshot_serialize_seconds,
            "snapshot_bytes": bytes,
        })
    );
    Ok(())
}
