//! The heartbeat checker with many tracked services, in-process: heap bytes per tracked
//! service and the cost of one check pass. Run by `make bench` (bench/run.py, scenario
//! `heartbeat-checker`); prints one JSON line.
//!
//!     cargo run --release -p watcher --example checker_bench -- [services]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant as StdInstant};

use chrono::Utc;
use tokio::time::Instant;
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

fn main() {
    let services: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let timeout = Duration::from_secs(30);
    let names: Vec<String> = (0..services).map(|n| format!("edge-cam{n:06}")).collect();
    let wall = Utc::now();
    let t0 = Instant::now();

    // Memory: live heap before and after tracking every service (names built beforehand).
    let before = LIVE.load(Ordering::Relaxed);
    let mut tracker = Tracker::new(true, services, timeout);
    for name in &names {
        tracker
            .beat(name, Some("running"), None, t0, wall)
            .expect("under MAX_SERVICES");
    }
    let bytes_per_service = (LIVE.load(Ordering::Relaxed) - before) as f64 / services as f64;

    // A pass that finds nothing due: what the checker pays each time it wakes early.
    let mut samples = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let now = Instant::now();
        let started = StdInstant::now();
        let pass = tracker.check(now, wall);
        samples.push(started.elapsed().as_secs_f64());
        assert!(pass.expired.is_empty());
    }
    samples.sort_by(f64::total_cmp);

    // A heartbeat from a known service: the checker's share of ingest (hash lookup, no set
    // operation thanks to lazy invalidation).
    let beats = 1_000_000;
    let started = StdInstant::now();
    for n in 0..beats {
        let name = &names[n % services];
        tracker
            .beat(name, None, None, t0 + Duration::from_millis(1), wall)
            .expect("known");
    }
    let beat_ns = started.elapsed().as_secs_f64() * 1e9 / beats as f64;

    // What a state save holds the table's lock for: a copy of every service's status; then,
    // with the lock released, the sort and the serialization.
    let started = StdInstant::now();
    let mut statuses = tracker.statuses();
    let snapshot_copy_seconds = started.elapsed().as_secs_f64();
    let started = StdInstant::now();
    watcher::heartbeats::sort_statuses(&mut statuses);
    let snapshot_sort_seconds = started.elapsed().as_secs_f64();
    let started = StdInstant::now();
    let bytes = serde_json::to_vec(&statuses)
        .expect("statuses serialize")
        .len();
    let snapshot_serialize_seconds = started.elapsed().as_secs_f64();
    drop(statuses);

    // The rare heavy pass: every service beat since it was queued, so all entries come due at
    // once and are re-queued to their true deadline (normally spread over a timeout period).
    let started = StdInstant::now();
    let pass = tracker.check(t0 + timeout, wall);
    let requeue_all_seconds = started.elapsed().as_secs_f64();
    assert_eq!(pass.requeued, services);

    // And the pass that finds all of them silent: every service goes down.
    let started = StdInstant::now();
    let pass = tracker.check(t0 + timeout * 3, wall);
    let expire_all_seconds = started.elapsed().as_secs_f64();
    assert_eq!(pass.expired.len(), services);

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
            "requeue_all_seconds": requeue_all_seconds,
            "expire_all_seconds": expire_all_seconds,
            "snapshot_copy_seconds": snapshot_copy_seconds,
            "snapshot_sort_seconds": snapshot_sort_seconds,
            "snapshot_serialize_seconds": snapshot_serialize_seconds,
            "snapshot_bytes": bytes,
        })
    );
}
