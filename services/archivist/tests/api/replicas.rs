//! Several archivist replicas on one PostgreSQL database, as behind Knative.

use std::time::Duration;

use archivist::config::ArchiveConfig;
use chrono::Utc;
use futures_util::future::join_all;
use obs_core::CoreConfig;
use serde_json::Value;

use crate::helpers::{
    at, canonical, record, sorted, spawn, spawn_at, spawn_with, Backend, PATIENCE,
};

#[actix_web::test]
async fn replicas_share_one_archive_and_never_store_an_id_twice() {
    let first = spawn(Backend::Postgres).await;
    let second = spawn_at(first.location.clone(), |_, _| {}).await;
    let third = spawn_at(first.location.clone(), |_, _| {}).await;
    let replicas = [&first, &second, &third];

    // 300 records in batches of 10, every batch sent to all three replicas at once: the
    // outbox's retry landing on another replica, at the worst moment.
    let records: Vec<Value> = (0..300)
        .map(|n| record("event", &format!("svc-{}", n % 4), at(n)))
        .collect();
    let sends = records.chunks(10).flat_map(|batch| {
        replicas
            .iter()
            .map(move |replica| async move { replica.append(batch).await })
    });
    let answers = join_all(sends).await;
    let stored: u64 = answers.iter().map(|(stored, _)| stored).sum();
    let duplicates: u64 = answers.iter().map(|(_, duplicates)| duplicates).sum();
    assert_eq!(stored, 300);
    assert_eq!(duplicates, 600);

    // Every replica reads the whole archive.
    let expected = sorted(canonical(&records));
    for replica in replicas {
        assert_eq!(replica.all("", 1000).await, expected);
        assert_eq!(replica.stats().await["records"], 300);
    }
}

/// Retention is a singleton: of two replicas on one database only the lease holder purges;
/// when it stops, the other takes the lease over and purges what arrives after.
#[actix_web::test]
async fn one_replica_purges_and_another_takes_over_when_it_stops() {
    let settings = |config: &mut ArchiveConfig, _: &mut CoreConfig| {
        config.retention_days = 30;
        config.purge_interval = Duration::from_millis(100);
        config.purge_lease_ttl = Duration::from_secs(3);
    };
    let first = spawn_with(Backend::Postgres, settings).await;
    let second = spawn_at(first.location.clone(), settings).await;
    let purges = "archivist_retention_purges_total{outcome=\"ok\"}";

    // Both have been up for well over a purge interval and a lease renewal.
    let holder = obs_testkit::eventually("a replica to purge", PATIENCE, || async {
        let counts = (first.metric(purges).await, second.metric(purges).await);
        (counts.0 >= 5.0 || counts.1 >= 5.0).then_some(counts)
    })
    .await;
    let (holder, other) = if holder.0 > 0.0 {
        (first, second)
    } else {
        (second, first)
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        other.metric(purges).await,
        0.0,
        "only the lease holder purges"
    );

    let folders = holder.stop().await;
    let old: Vec<Value> = (0..7)
        .map(|n| record("event", "api", Utc::now() - chrono::Duration::days(40 + n)))
        .collect();
    assert_eq!(other.append(&old).await, (7, 0));
    obs_testkit::eventually(
        "the other replica to take the purge over",
        PATIENCE,
        || async { (other.stats().await["records"] == 0).then_some(()) },
    )
    .await;
    assert!(other.metric(purges).await > 0.0);
    assert_eq!(
        other
            .metric("archivist_retention_purged_records_total")
            .await,
        7.0
    );
    drop(folders);
}
