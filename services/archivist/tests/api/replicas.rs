//! Several archivist replicas on one PostgreSQL database, as behind Knative.

use futures_util::future::join_all;
use serde_json::Value;

use crate::helpers::{at, canonical, record, sorted, spawn, spawn_at, Backend};

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
