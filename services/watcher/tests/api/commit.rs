//! The commit path: a change that does not commit (a full disk, simulated by a trigger that
//! refuses inserts) changes nothing and answers 503 saying so; once the fault is gone the
//! sender's retry is recorded, forwarded downstream, and survives a restart. On SQLite and on
//! PostgreSQL.

use obs_testkit::receiver::Receiver;
use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{
    assert_nothing_stored, events_of, get, issues, metrics, post, sample, service_status, spawn_at,
    Backend, Place,
};

#[actix_web::test]
async fn a_failed_event_commit_records_nothing_and_the_retry_is_recorded_sqlite() {
    a_failed_event_commit_records_nothing_and_the_retry_is_recorded(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_failed_event_commit_records_nothing_and_the_retry_is_recorded_postgres() {
    a_failed_event_commit_records_nothing_and_the_retry_is_recorded(Backend::Postgres).await;
}

async fn a_failed_event_commit_records_nothing_and_the_retry_is_recorded(backend: Backend) {
    let downstream = Receiver::start().await;
    let place = Place::new(backend);
    let app = spawn_at(&place, WatcherConfig::for_tests(), Some(&downstream.url)).await;
    let event = json!({"service": "edge", "event_type": "failure", "component": "inference",
                       "detail": "model timeout"});
    let counted = r#"monitoring_task_failures_total{component="inference",service="edge"}"#;

    place.fail_inserts("watcher_events").await;
    let (status, body) = post(&app, "/events", &event).await;
    assert_nothing_stored(status, &body);
    assert!(events_of(&app, "edge").await.is_empty(), "nothing kept");
    assert_eq!(
        sample(&metrics(&app).await, counted),
        None,
        "nothing counted"
    );

    place.heal("watcher_events").await;
    let (status, reply) = post(&app, "/events", &event).await;
    assert_eq!(status, 200, "{reply}");
    let id = reply["id"].as_str().expect("the event's id").to_string();
    let kept = events_of(&app, "edge").await;
    assert_eq!(kept.len(), 1, "the retry is recorded once: {kept:?}");
    assert_eq!(kept[0]["id"], id.as_str());
    assert_eq!(sample(&metrics(&app).await, counted), Some(1.0));
    let forwarded = downstream.wait_for("/v1/records", 1).await;
    assert_eq!(
        forwarded.len(),
        1,
        "only the committed event went out: {forwarded:?}"
    );
    assert_eq!(forwarded[0]["kind"], "event");
    assert_eq!(forwarded[0]["body"]["id"], id.as_str());
    app.shutdown().await.expect("a clean stop");

    let app = spawn_at(&place, WatcherConfig::for_tests(), None).await;
    let kept = events_of(&app, "edge").await;
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0]["id"], id.as_str());
}

#[actix_web::test]
async fn a_failure_ping_that_cannot_commit_changes_nothing_sqlite() {
    a_failure_ping_that_cannot_commit_changes_nothing(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_failure_ping_that_cannot_commit_changes_nothing_postgres() {
    a_failure_ping_that_cannot_commit_changes_nothing(Backend::Postgres).await;
}

/// `/ping/{service}/fail` opens an issue: the service's state, the issue and its records for
/// the curator commit together or not at all.
async fn a_failure_ping_that_cannot_commit_changes_nothing(backend: Backend) {
    let downstream = Receiver::start().await;
    let place = Place::new(backend);
    let app = spawn_at(&place, WatcherConfig::for_tests(), Some(&downstream.url)).await;
    get(&app, "/ping/batch").await;

    place.fail_inserts("watcher_issues").await;
    let (status, body) = get(&app, "/ping/batch/fail?detail=exit%201").await;
    assert_nothing_stored(status, &body);
    assert_eq!(
        service_status(&app, "batch").await.expect("known")["status"],
        "up",
        "not marked down by a change that did not commit"
    );
    assert!(issues(&app, "all", "service_failed", "batch")
        .await
        .is_empty());
    let (_, status_body) = get(&app, "/status").await;
    assert_eq!(status_body["open_issues"], 0);

    place.heal("watcher_issues").await;
    let (status, body) = get(&app, "/ping/batch/fail?detail=exit%201").await;
    assert_eq!(status, 200, "{body}");
    let down = service_status(&app, "batch").await.expect("known");
    assert_eq!(down["status"], "down");
    assert_eq!(down["reason"], "failed");
    let open = issues(&app, "open", "service_failed", "batch").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["count"], 1, "the failed attempt did not count");
    let sent = downstream.wait_for("/v1/issues", 1).await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["id"], open[0]["id"]);
    app.shutdown().await.expect("a clean stop");

    let app = spawn_at(&place, WatcherConfig::for_tests(), None).await;
    assert_eq!(
        issues(&app, "open", "service_failed", "batch").await[0]["id"],
        open[0]["id"]
    );
    assert_eq!(
        service_status(&app, "batch").await.expect("kept")["status"],
        "down"
    );
}

#[actix_web::test]
async fn a_recovery_that_cannot_commit_leaves_the_service_down_sqlite() {
    a_recovery_that_cannot_commit_leaves_the_service_down(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_recovery_that_cannot_commit_leaves_the_service_down_postgres() {
    a_recovery_that_cannot_commit_leaves_the_service_down(Backend::Postgres).await;
}

/// A beat from a service that is down resolves its issue: that is a state change, committed
/// before the beat is answered. If it cannot commit, the beat is 503 and the service is still
/// down with its issue open; the next beat brings it back.
async fn a_recovery_that_cannot_commit_leaves_the_service_down(backend: Backend) {
    let place = Place::new(backend);
    let app = spawn_at(&place, WatcherConfig::for_tests(), None).await;
    let (status, body) = get(&app, "/ping/job/fail").await;
    assert_eq!(status, 200, "{body}");
    let failed = issues(&app, "open", "service_failed", "job").await;
    assert_eq!(failed.len(), 1);

    place.fail_inserts("watcher_services").await;
    let (status, body) = post(&app, "/heartbeat", &json!({"service": "job"})).await;
    assert_nothing_stored(status, &body);
    assert_eq!(
        service_status(&app, "job").await.expect("known")["status"],
        "down"
    );
    assert_eq!(issues(&app, "open", "service_failed", "job").await.len(), 1);

    place.heal("watcher_services").await;
    let (status, body) = post(&app, "/heartbeat", &json!({"service": "job"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        service_status(&app, "job").await.expect("known")["status"],
        "up"
    );
    let resolved = issues(&app, "resolved", "service_failed", "job").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["id"], failed[0]["id"]);
}
