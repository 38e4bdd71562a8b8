//! GET /v1/export: every matching record, one JSON object per line, streamed.

use serde_json::Value;

use crate::helpers::{at, canonical, record, sorted, spawn, Backend};
use crate::on_both_backends;

on_both_backends!(
    export_streams_every_matching_record_as_ndjson,
    export_of_an_empty_archive_is_empty,
    export_resumes_after_a_cursor,
);

async fn export_streams_every_matching_record_as_ndjson(backend: Backend) {
    let archive = spawn(backend).await;
    // More than two export pages (1000 records each), so the stream spans several reads.
    let records: Vec<Value> = (0..2_345)
        .map(|n| {
            let kind = if n % 4 == 0 { "incident" } else { "event" };
            record(kind, &format!("svc-{}", n % 3), at(n))
        })
        .collect();
    for chunk in records.chunks(500) {
        archive.append(chunk).await;
    }

    let everything = archive.export("").await;
    assert_eq!(everything, sorted(canonical(&records)));
    // Export and paging agree.
    assert_eq!(everything, archive.all("", 1000).await);

    let incidents = archive
        .export("kind=incident&since=2024-05-01T00:10:00Z")
        .await;
    let expected: Vec<Value> = records
        .iter()
        .enumerate()
        .filter(|(n, _)| n % 4 == 0 && *n >= 600)
        .map(|(_, r)| r.clone())
        .collect();
    assert_eq!(incidents, sorted(canonical(&expected)));
}

async fn export_of_an_empty_archive_is_empty(backend: Backend) {
    let archive = spawn(backend).await;
    let response = archive.app.get("/v1/export").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "");
}

async fn export_resumes_after_a_cursor(backend: Backend) {
    let archive = spawn(backend).await;
    let records: Vec<Value> = (0..30).map(|n| record("event", "api", at(n))).collect();
    archive.append(&records).await;
    let page = archive.get_json("/v1/records?limit=10").await;
    let cursor = page["next"].as_str().unwrap();
    let rest = archive.export(&format!("after={cursor}")).await;
    assert_eq!(rest, sorted(canonical(&records))[10..]);
}
