//! The archivist's own metrics and API description.

use serde_json::Value;

use crate::helpers::{at, record, spawn, Backend};
use crate::on_both_backends;

on_both_backends!(metrics_count_what_was_stored_and_pass_promtool);

fn sample(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from:\n{metrics}"))
        .parse()
        .expect("a number")
}

async fn metrics_count_what_was_stored_and_pass_promtool(backend: Backend) {
    let archive = spawn(backend).await;
    let batch: Vec<Value> = (0..10).map(|n| record("event", "api", at(n))).collect();
    archive.append(&batch).await;
    archive.append(&batch[..4]).await;

    let metrics = archive.metrics().await;
    assert_eq!(sample(&metrics, "archivist_records_stored_total"), 10.0);
    assert_eq!(sample(&metrics, "archivist_records_duplicates_total"), 4.0);
    assert_eq!(sample(&metrics, "archivist_batch_records_count"), 2.0);
    assert_eq!(sample(&metrics, "archivist_batch_records_sum"), 14.0);
    assert_eq!(sample(&metrics, "archivist_commit_batches_sum"), 2.0);
    assert_eq!(
        sample(&metrics, "archivist_commit_duration_seconds_count"),
        2.0
    );
    assert_eq!(sample(&metrics, "archivist_commit_failures_total"), 0.0);
    // The kit's HTTP metrics name the route template.
    assert!(metrics.contains(r#"code="201",method="POST",route="/v1/records""#));
    obs_testkit::promtool_check_metrics(&metrics).expect("promtool accepts the metrics");
}

#[actix_web::test]
async fn openapi_describes_the_archive_endpoints() {
    let archive = spawn(Backend::Sqlite).await;
    let doc = archive.get_json("/openapi.json").await;
    for (path, method) in [
        ("/v1/records", "post"),
        ("/v1/records", "get"),
        ("/v1/export", "get"),
        ("/v1/stats", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not documented"
        );
    }
    let parameters: Vec<&str> = doc["paths"]["/v1/records"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        parameters,
        ["kind", "service", "since", "until", "limit", "after"]
    );
    // The archivist sends nothing on, so it keeps no dead letters and serves no endpoint for
    // them: its description must not list the kit's (the hostile suite found it did).
    for path in ["/v1/dead-letters", "/v1/dead-letters/replay"] {
        assert!(doc["paths"][path].is_null(), "{path} is listed");
    }
    assert!(
        !doc["tags"].to_string().contains("dead letters"),
        "{}",
        doc["tags"]
    );
    for schema in ["Record", "RecordPage", "AppendResponse", "StatsResponse"] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
}
