//! GET /v1/stats and retention (ARCHIVE_RETENTION_DAYS with a periodic purge).

use std::time::Duration;

use chrono::Utc;
use serde_json::Value;

use crate::helpers::{at, canonical, record, sorted, spawn, spawn_with, Backend, PATIENCE};
use crate::on_both_backends;

on_both_backends!(
    stats_count_by_kind_and_service,
    retention_purges_old_records_and_keeps_the_rest,
);

async fn stats_count_by_kind_and_service(backend: Backend) {
    let archive = spawn(backend).await;
    let empty = archive.stats().await;
    assert_eq!(empty["records"], 0);
    assert_eq!(empty["oldest"], Value::Null);
    assert_eq!(empty["backend"], format!("{backend:?}").to_lowercase());
    assert_eq!(empty["retention_days"], 0);

    let mut records: Vec<Value> = (0..5).map(|n| record("event", "api", at(n))).collect();
    records.extend((0..3).map(|n| record("incident", "db", at(100 + n))));
    records.push(record("plan", "api", at(-50)));
    archive.append(&records).await;

    let stats = archive.stats().await;
    assert_eq!(stats["records"], 9);
    assert_eq!(
        stats["by_kind"],
        serde_json::json!({"event": 5, "incident": 3, "plan": 1})
    );
    assert_eq!(stats["by_service"], serde_json::json!({"api": 6, "db": 3}));
    assert_eq!(stats["oldest"], "2024-04-30T23:59:10Z");
    assert_eq!(stats["newest"], "2024-05-01T00:01:42Z");
    assert!(stats["size_bytes"].as_u64().unwrap() > 0);
}

async fn retention_purges_old_records_and_keeps_the_rest(backend: Backend) {
    let archive = spawn_with(backend, |config, _| {
        config.retention_days = 30;
        config.purge_interval = Duration::from_millis(100);
    })
    .await;
    let now = Utc::now();
    let old: Vec<Value> = (0..25)
        .map(|n| record("event", "api", now - chrono::Duration::days(31 + n)))
        .collect();
    let recent: Vec<Value> = (0..5)
        .map(|n| record("event", "api", now - chrono::Duration::days(29 - n)))
        .collect();
    let mut batch = old.clone();
    batch.extend(recent.clone());
    // Accepted and acknowledged like any record; the next purge removes the old ones.
    assert_eq!(archive.append(&batch).await, (30, 0));

    obs_testkit::eventually(
        "the purge of records older than 30 days",
        PATIENCE,
        || async { (archive.stats().await["records"] == 5).then_some(()) },
    )
    .await;
    assert_eq!(archive.all("", 100).await, sorted(canonical(&recent)));
    assert!(archive.stats().await["last_purge"]["at"].is_string());
    let metrics = archive.metrics().await;
    let purged: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("archivist_retention_purged_records_total "))
        .expect("the purge counter")
        .parse()
        .unwrap();
    assert_eq!(purged, 25.0);
    assert!(metrics.contains("archivist_retention_purges_total{outcome=\"ok\"}"));
}
