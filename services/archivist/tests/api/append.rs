//! POST /v1/records: what is acknowledged is stored, exactly once, exactly as sent.

use futures_util::future::join_all;
use serde_json::{json, Value};

use crate::helpers::{
    at, canonical, record, record_with_id, sorted, spawn, spawn_at, spawn_with, Backend,
};
use crate::on_both_backends;

on_both_backends!(
    a_batch_is_stored_and_read_back_exactly,
    resent_ids_are_duplicates_never_stored_twice,
    concurrent_batches_are_all_acknowledged_once,
    an_empty_batch_is_accepted_and_stores_nothing,
    a_restart_keeps_every_record,
    the_api_token_guards_appends_and_record_reads,
);

async fn a_batch_is_stored_and_read_back_exactly(backend: Backend) {
    let archive = spawn(backend).await;
    let batch = vec![
        record("incident", "api", at(30)),
        json!({"id": ulid::Ulid::new().to_string(), "kind": "event", "service": "db",
               "ts": "2024-05-01T02:00:10.123456789+02:00",
               "body": {"nested": {"list": [1, 2.5, null, "x"]}, "text": "line\nbreak \"quoted\""}}),
        // No body at all, and a null one: both read back as null.
        json!({"id": ulid::Ulid::new().to_string(), "kind": "plan", "service": "api",
               "ts": "2024-05-01T00:00:20Z"}),
        json!({"id": ulid::Ulid::new().to_string(), "kind": "report", "service": "api",
               "ts": "2024-05-01T00:00:20Z", "body": null}),
    ];
    assert_eq!(archive.append(&batch).await, (4, 0));

    let page = archive.get_json("/v1/records").await;
    assert_eq!(page["next"], Value::Null);
    assert_eq!(
        page["records"].as_array().unwrap(),
        &sorted(canonical(&batch))
    );
    // Times come back in UTC with their full precision.
    let event = page["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["kind"] == "event")
        .unwrap();
    assert_eq!(event["ts"], "2024-05-01T00:00:10.123456789Z");
}

async fn resent_ids_are_duplicates_never_stored_twice(backend: Backend) {
    let archive = spawn(backend).await;
    let first: Vec<Value> = (0..3).map(|s| record("event", "api", at(s))).collect();
    assert_eq!(archive.append(&first).await, (3, 0));
    // The same batch again, as an outbox retry would send it.
    assert_eq!(archive.append(&first).await, (0, 3));

    // One new record, sent twice in the batch, plus two old ones.
    let new = record("event", "api", at(10));
    let mixed = vec![new.clone(), first[0].clone(), new.clone(), first[2].clone()];
    assert_eq!(archive.append(&mixed).await, (1, 3));

    // A known id with different content is a duplicate too: the first version stays.
    let mut altered = first[1].clone();
    altered["body"] = json!({"changed": true});
    altered["kind"] = json!("incident");
    assert_eq!(archive.append(&[altered]).await, (0, 1));

    let stored = archive.all("", 100).await;
    let mut expected = first.clone();
    expected.push(new);
    assert_eq!(stored, sorted(canonical(&expected)));
    assert_eq!(archive.stats().await["records"], 4);
}

async fn concurrent_batches_are_all_acknowledged_once(backend: Backend) {
    let archive = spawn(backend).await;
    // 16 senders × 5 batches × 20 records; each sender's batches share 5 ids with the next
    // sender's, so group commits mix new ids, duplicates across batches and across senders.
    let shared: Vec<Value> = (0..16 * 5)
        .map(|n| record("event", "shared", at(n)))
        .collect();
    let batches: Vec<Vec<Value>> = (0..16 * 5)
        .map(|n| {
            let mut batch: Vec<Value> = (0..15)
                .map(|i| record("issue", &format!("svc-{}", n % 7), at(1000 + n * 20 + i)))
                .collect();
            batch.extend((0..5).map(|i| shared[(n as usize + i) % shared.len()].clone()));
            batch
        })
        .collect();
    let answers = join_all(batches.iter().map(|batch| archive.append(batch))).await;
    let stored: u64 = answers.iter().map(|(stored, _)| stored).sum();
    let duplicates: u64 = answers.iter().map(|(_, duplicates)| duplicates).sum();

    let unique = 16 * 5 * 15 + shared.len() as u64;
    assert_eq!(stored, unique);
    assert_eq!(stored + duplicates, 16 * 5 * 20);
    assert_eq!(archive.stats().await["records"], unique);
    assert_eq!(archive.all("", 1000).await.len() as u64, unique);
}

async fn an_empty_batch_is_accepted_and_stores_nothing(backend: Backend) {
    let archive = spawn(backend).await;
    assert_eq!(archive.append(&[]).await, (0, 0));
    assert_eq!(archive.stats().await["records"], 0);
}

async fn a_restart_keeps_every_record(backend: Backend) {
    let archive = spawn(backend).await;
    let batch: Vec<Value> = (0..50).map(|s| record("event", "api", at(s))).collect();
    assert_eq!(archive.append(&batch).await, (50, 0));
    let location = archive.location.clone();
    // Keep the folder of the SQLite file alive across the restart.
    let folders = archive.stop().await;

    let reopened = spawn_at(location, |_, _| {}).await;
    assert_eq!(reopened.all("", 1000).await, sorted(canonical(&batch)));
    assert_eq!(reopened.append(&batch).await, (0, 50));
    drop(folders);
}

/// Records may hold what is secret (issue facts, container details): with API_TOKEN set,
/// reading them (a page or an export) needs the token as an append does; counts stay open.
async fn the_api_token_guards_appends_and_record_reads(backend: Backend) {
    let archive = spawn_with(backend, |_, core| core.api_token = Some("s3cret".into())).await;
    let batch = vec![record_with_id(
        &ulid::Ulid::new().to_string(),
        "event",
        "api",
        at(0),
    )];
    let refused = archive.post(&Value::from(batch.clone())).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(archive.stats().await["records"], 0);

    let accepted = archive
        .app
        .client
        .post(archive.app.url("/v1/records"))
        .bearer_auth("s3cret")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 201);
    assert_eq!(archive.stats().await["records"], 1);
    for path in ["/v1/records", "/v1/export"] {
        let refused = archive.app.get(path).await;
        assert_eq!(refused.status(), 401, "GET {path} without the token");
        let read = archive
            .app
            .client
            .get(archive.app.url(path))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap();
        assert_eq!(read.status(), 200, "GET {path} with the token");
        assert!(read.text().await.unwrap().contains("\"event\""), "{path}");
    }
}
