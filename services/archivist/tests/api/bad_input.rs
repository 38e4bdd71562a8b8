//! Bad input: a clear JSON 400 naming the field, nothing of a rejected batch stored, the
//! archivist still serving afterwards.

use serde_json::{json, Value};

use crate::helpers::{at, record, spawn, spawn_with, Backend, TestArchive};
use crate::on_both_backends;

on_both_backends!(
    bad_batches_are_rejected_whole_naming_the_field,
    bodies_that_are_not_json_arrays_are_refused,
    a_batch_over_the_limit_is_refused,
    bad_query_parameters_name_the_parameter,
);

async fn expect_error(response: reqwest::Response, status: u16, field: &str) -> Value {
    let got = response.status().as_u16();
    let body: Value = response.json().await.expect("a JSON error");
    assert_eq!(got, status, "{body}");
    assert!(body["error"].is_string(), "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(
        message.contains(field),
        "message {message:?} should name {field:?}"
    );
    body
}

async fn assert_nothing_stored(archive: &TestArchive) {
    assert_eq!(archive.stats().await["records"], 0);
    assert!(archive.all("", 10).await.is_empty());
}

async fn bad_batches_are_rejected_whole_naming_the_field(backend: Backend) {
    let archive = spawn(backend).await;
    let good = record("event", "api", at(0));
    let with = |field: &str, value: Value| {
        let mut bad = record("event", "api", at(1));
        if value.is_null() {
            bad.as_object_mut().unwrap().remove(field);
        } else {
            bad[field] = value;
        }
        bad
    };
    let cases = [
        (with("id", json!("not-a-ulid")), "records[1].id"),
        (
            with("id", json!("01ARZ3NDEKTSV4RRFFQ69G5FA")),
            "records[1].id",
        ), // 25 chars
        (
            with("id", json!("81ARZ3NDEKTSV4RRFFQ69G5FAV")),
            "records[1].id",
        ), // overflows 128 bits
        (with("id", json!(12345)), "records[1].id"),
        (with("id", Value::Null), "records[1].id"),
        (with("kind", json!(["event"])), "records[1].kind"),
        (with("kind", json!("")), "records[1].kind"),
        (with("kind", json!("has space")), "records[1].kind"),
        (with("kind", json!("k".repeat(65))), "records[1].kind"),
        (with("service", json!(false)), "records[1].service"),
        (with("service", json!("")), "records[1].service"),
        (with("service", json!("bell\u{7}")), "records[1].service"),
        (with("ts", json!("yesterday")), "records[1].ts"),
        (with("ts", json!("2024-05-01 12:00:00")), "records[1].ts"),
        (with("ts", json!(1714521600)), "records[1].ts"),
        (with("ts", json!("3000-01-01T00:00:00Z")), "records[1].ts"),
        (with("ts", Value::Null), "records[1].ts"),
        (with("surprise", json!(1)), "records[1].surprise"),
        (json!("a string"), "records[1]"),
        (json!([1, 2]), "records[1]"),
    ];
    for (bad, field) in cases {
        let response = archive.post(&json!([good, bad])).await;
        expect_error(response, 400, field).await;
        assert_nothing_stored(&archive).await;
    }
    // Still serving, and the good record alone goes in.
    assert_eq!(archive.append(&[good]).await, (1, 0));
}

async fn bodies_that_are_not_json_arrays_are_refused(backend: Backend) {
    let archive = spawn_with(backend, |_, core| core.max_body_bytes = 64 * 1024).await;
    let url = archive.app.url("/v1/records");
    let client = &archive.app.client;

    // An object, not an array.
    let response = archive.post(&record("event", "api", at(0))).await;
    expect_error(response, 400, "records").await;

    // Malformed JSON.
    let response = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"[{"id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "#)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "request body").await;

    // Not JSON at all.
    let response = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("hello")
        .send()
        .await
        .unwrap();
    expect_error(response, 415, "Content-Type").await;

    // Larger than MAX_BODY_BYTES.
    let huge: Vec<Value> = (0..20)
        .map(|n| {
            let mut r = record("event", "api", at(n));
            r["body"] = json!({"padding": "x".repeat(5000)});
            r
        })
        .collect();
    let response = archive.post(&Value::from(huge)).await;
    expect_error(response, 413, "larger than").await;

    assert_nothing_stored(&archive).await;
}

async fn a_batch_over_the_limit_is_refused(backend: Backend) {
    let archive = spawn_with(backend, |config, _| config.max_batch = 5).await;
    let batch: Vec<Value> = (0..6).map(|n| record("event", "api", at(n))).collect();
    let body = expect_error(
        archive.post(&Value::from(batch.clone())).await,
        400,
        "records",
    )
    .await;
    assert_eq!(body["error"], "batch_too_large");
    assert!(body["message"].as_str().unwrap().contains("limit of 5"));
    assert_nothing_stored(&archive).await;
    assert_eq!(archive.append(&batch[..5]).await, (5, 0));
}

async fn bad_query_parameters_name_the_parameter(backend: Backend) {
    let archive = spawn(backend).await;
    archive.append(&[record("event", "api", at(0))]).await;
    for (path, field) in [
        ("/v1/records?limit=0", "limit"),
        ("/v1/records?limit=1001", "limit"),
        ("/v1/records?limit=999999999999999999999999", "limit"),
        ("/v1/records?limit=-1", "limit"),
        ("/v1/records?limit=many", "limit"),
        ("/v1/records?since=yesterday", "since"),
        ("/v1/records?since=2024-05-01T00:00:00+02:00", "since"), // + unescaped: a space
        ("/v1/records?until=2024-02-30T00:00:00Z", "until"),
        (
            "/v1/records?since=2024-05-02T00:00:00Z&until=2024-05-01T00:00:00Z",
            "until",
        ),
        ("/v1/records?after=nonsense", "after"),
        ("/v1/records?after=12_notaulid", "after"),
        ("/v1/records?servce=api", "servce"),
        ("/v1/records?kind=a&kind=b", "kind"),
        ("/v1/export?since=soon", "since"),
        ("/v1/export?until=later", "until"),
        ("/v1/export?after=x", "after"),
        ("/v1/export?limit=10", "limit"),
    ] {
        let response = archive.app.get(path).await;
        expect_error(response, 400, field).await;
    }
    // Nothing was harmed.
    assert_eq!(archive.stats().await["records"], 1);
}
