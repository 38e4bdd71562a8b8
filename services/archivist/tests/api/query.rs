//! GET /v1/records: filters, order and cursor paging.

use serde_json::Value;

use crate::helpers::{at, canonical, record, record_with_id, sorted, spawn, Backend};
use crate::on_both_backends;

on_both_backends!(
    filters_select_by_kind_service_and_time,
    pages_walk_the_archive_without_gaps_or_repeats,
    records_with_the_same_ts_are_ordered_by_id,
    the_last_full_page_says_there_is_no_next,
);

/// 60 records: kinds × services × times, seconds 0..60.
fn dataset() -> Vec<Value> {
    let kinds = ["event", "incident", "plan"];
    let services = ["api", "db"];
    (0..60)
        .map(|n| record(kinds[n % 3], services[n / 3 % 2], at(n as i64)))
        .collect()
}

async fn filters_select_by_kind_service_and_time(backend: Backend) {
    let archive = spawn(backend).await;
    let records = dataset();
    assert_eq!(archive.append(&records).await, (60, 0));
    let expected = |keep: &dyn Fn(&Value) -> bool| {
        sorted(canonical(
            &records
                .iter()
                .filter(|r| keep(r))
                .cloned()
                .collect::<Vec<_>>(),
        ))
    };
    let seconds = |r: &Value| {
        chrono::DateTime::parse_from_rfc3339(r["ts"].as_str().unwrap())
            .unwrap()
            .timestamp()
            - at(0).timestamp()
    };

    assert_eq!(
        archive.all("kind=incident", 7).await,
        expected(&|r| r["kind"] == "incident")
    );
    assert_eq!(
        archive.all("service=db", 7).await,
        expected(&|r| r["service"] == "db")
    );
    assert_eq!(
        archive.all("kind=plan&service=api", 3).await,
        expected(&|r| r["kind"] == "plan" && r["service"] == "api")
    );
    // since is inclusive, until exclusive.
    assert_eq!(
        archive
            .all("since=2024-05-01T00:00:10Z&until=2024-05-01T00:00:20Z", 4)
            .await,
        expected(&|r| (10..20).contains(&seconds(r)))
    );
    // Offsets are understood (+ must be %2B in a URL).
    assert_eq!(
        archive
            .all("since=2024-05-01T02:00:50%2B02:00&kind=event", 100)
            .await,
        expected(&|r| seconds(r) >= 50 && r["kind"] == "event")
    );
    // Empty values mean "any", as in the DESIGN's URL template.
    assert_eq!(
        archive.all("kind=&service=&since=&until=", 100).await.len(),
        60
    );
    assert!(archive.all("kind=nothing-like-this", 10).await.is_empty());
    assert!(archive
        .all("since=2030-01-01T00:00:00Z", 10)
        .await
        .is_empty());
}

async fn pages_walk_the_archive_without_gaps_or_repeats(backend: Backend) {
    let archive = spawn(backend).await;
    // 250 records, bunched five to a second so many share a ts.
    let records: Vec<Value> = (0..250)
        .map(|n| record("event", "api", at(n / 5)))
        .collect();
    for chunk in records.chunks(100) {
        assert_eq!(archive.append(chunk).await.0, chunk.len() as u64);
    }
    let expected = sorted(canonical(&records));
    for limit in [1, 7, 100, 1000] {
        assert_eq!(archive.all("", limit).await, expected, "limit {limit}");
    }
    // A page holds exactly `limit` records while more remain.
    let page = archive.get_json("/v1/records?limit=7").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 7);
    assert!(page["next"].is_string());
    // Default page size is 100.
    let page = archive.get_json("/v1/records").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 100);
}

async fn records_with_the_same_ts_are_ordered_by_id(backend: Backend) {
    let archive = spawn(backend).await;
    let ids = [
        "01HZZZZZZZZZZZZZZZZZZZZZZZ",
        "01HAAAAAAAAAAAAAAAAAAAAAAA",
        "01HMMMMMMMMMMMMMMMMMMMMMMM",
    ];
    let records: Vec<Value> = ids
        .iter()
        .map(|id| record_with_id(id, "event", "api", at(5)))
        .collect();
    let earlier = record_with_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "event", "api", at(4));
    archive.append(&records).await;
    archive.append(std::slice::from_ref(&earlier)).await;
    let got: Vec<String> = archive
        .all("", 1)
        .await
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    // ts first (whatever the id says), then id.
    assert_eq!(
        got,
        [
            "7ZZZZZZZZZZZZZZZZZZZZZZZZZ",
            "01HAAAAAAAAAAAAAAAAAAAAAAA",
            "01HMMMMMMMMMMMMMMMMMMMMMMM",
            "01HZZZZZZZZZZZZZZZZZZZZZZZ"
        ]
    );
}

async fn the_last_full_page_says_there_is_no_next(backend: Backend) {
    let archive = spawn(backend).await;
    let records: Vec<Value> = (0..14).map(|n| record("event", "api", at(n))).collect();
    archive.append(&records).await;
    let first = archive.get_json("/v1/records?limit=7").await;
    let cursor = first["next"].as_str().expect("a next cursor").to_string();
    let second = archive
        .get_json(&format!("/v1/records?limit=7&after={cursor}"))
        .await;
    assert_eq!(second["records"].as_array().unwrap().len(), 7);
    assert_eq!(second["next"], Value::Null);
}
