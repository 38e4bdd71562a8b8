//! What survives a restart (the database under STATE_DIR), and the one-time import of the
//! previous version's state.json.

use serde_json::{json, Value};
use watcher::WatcherConfig;

use crate::helpers::{
    events_of, get, heartbeat, issues, post, service_status, spawn_at, spawn_in, wait_for_issue,
    wait_for_status, Backend, Place,
};

#[actix_web::test]
async fn services_issues_and_events_survive_a_restart_sqlite() {
    services_issues_and_events_survive_a_restart(Backend::Sqlite).await;
}

#[actix_web::test]
async fn services_issues_and_events_survive_a_restart_postgres() {
    services_issues_and_events_survive_a_restart(Backend::Postgres).await;
}

async fn services_issues_and_events_survive_a_restart(backend: Backend) {
    let place = Place::new(backend);
    let app = spawn_at(&place, WatcherConfig::for_tests(), None).await;
    heartbeat(
        &app,
        json!({"service": "api", "phase": "serving", "timeout_seconds": 120}),
    )
    .await;
    heartbeat(&app, json!({"service": "flaky", "timeout_seconds": 0.2})).await;
    wait_for_status(&app, "flaky", "down").await;
    let missed = wait_for_issue(&app, "open", "heartbeat_missed", "flaky").await;
    get(&app, "/ping/batch/fail?detail=exit%201").await;
    get(&app, "/ping/batch").await;
    let resolved = issues(&app, "resolved", "service_failed", "batch").await;
    assert_eq!(resolved.len(), 1);
    post(
        &app,
        "/events",
        &json!({"service": "api", "event_type": "deploy", "detail": "v2"}),
    )
    .await;
    app.shutdown().await.expect("a clean stop saves state");

    // On PostgreSQL the restarted watcher is a pod with an empty disk: all it knows is in
    // the database.
    let pod;
    let restarted = match backend {
        Backend::Sqlite => &place,
        Backend::Postgres => {
            pod = place.replica();
            &pod
        }
    };
    let app = spawn_at(restarted, WatcherConfig::for_tests(), None).await;
    let api = service_status(&app, "api").await.expect("api remembered");
    assert_eq!(api["status"], "up");
    assert_eq!(api["phase"], "serving");
    assert_eq!(api["timeout_seconds"], 120.0);
    let flaky = service_status(&app, "flaky")
        .await
        .expect("flaky remembered");
    assert_eq!(flaky["status"], "down", "still down after the restart");
    assert_eq!(flaky["reason"], "timeout");

    let open = issues(&app, "open", "heartbeat_missed", "flaky").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], missed["id"], "same issue, same id");
    let again = issues(&app, "resolved", "service_failed", "batch").await;
    assert_eq!(again[0]["id"], resolved[0]["id"]);
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["open_issues"], 1);
    let events = events_of(&app, "api").await;
    assert_eq!(events.last().unwrap()["detail"], "v2");

    // The remembered issue still resolves on the next beat.
    heartbeat(&app, json!({"service": "flaky"})).await;
    let resolved = issues(&app, "resolved", "heartbeat_missed", "flaky").await;
    assert_eq!(resolved[0]["id"], missed["id"]);
}

#[actix_web::test]
async fn services_up_before_a_restart_get_a_full_timeout_after_it() {
    let state = tempfile::tempdir().unwrap();
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "api", "timeout_seconds": 0.5})).await;
    app.shutdown().await.unwrap();
    // Longer than its timeout passes while the watcher is away…
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    // …but it is up after the restart, and goes down only if it stays silent.
    assert_eq!(service_status(&app, "api").await.unwrap()["status"], "up");
    wait_for_status(&app, "api", "down").await;
}

/// state.json as the previous version wrote it: a service up, one down with its open issue,
/// a resolved issue, an event, a container with its counts.
fn legacy_state() -> Value {
    let now = chrono::Utc::now();
    let earlier = (now - chrono::Duration::seconds(60)).to_rfc3339();
    json!({
        "version": 1,
        "saved_at": now.to_rfc3339(),
        "services": [
            {"service": "api", "status": "up", "phase": "serving",
             "last_seen": earlier, "timeout_seconds": 120.0},
            {"service": "cron", "status": "down", "reason": "timeout",
             "last_seen": earlier, "timeout_seconds": 30.0, "down_since": earlier}
        ],
        "issues": [
            {"id": "01J9Z3NDEKTSV4RRFFQ69G5FAV", "kind": "heartbeat_missed", "service": "cron",
             "subject": "", "severity": "critical", "state": "open",
             "message": "cron stopped sending heartbeats", "recommendation": "look",
             "first_seen": earlier, "last_seen": earlier, "count": 1, "facts": {}},
            {"id": "01J9Z3NDEKTSV4RRFFQ69G5FAW", "kind": "service_failed", "service": "batch",
             "subject": "", "severity": "critical", "state": "resolved",
             "message": "batch reported a failure", "recommendation": "look",
             "first_seen": earlier, "last_seen": earlier, "resolved_at": earlier,
             "count": 1, "facts": {}}
        ],
        "events": [
            {"id": "01J9Z3NDEKTSV4RRFFQ69G5FAX", "timestamp": earlier, "service": "api",
             "event_type": "deploy", "source": "api", "detail": "v1"}
        ],
        "containers": [
            {"id": "abc123", "name": "web", "image": "nginx", "state": "running",
             "restart_count": 2, "oom_killed": false}
        ],
        "container_counts": {"web": {"restarts": 2, "oom_kills": 1}}
    })
}

#[actix_web::test]
async fn a_legacy_state_file_is_imported_once_then_renamed_aside() {
    let state = tempfile::tempdir().unwrap();
    let legacy = state.path().join("state.json");
    std::fs::write(&legacy, serde_json::to_vec(&legacy_state()).unwrap()).unwrap();

    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    assert!(!legacy.exists(), "state.json is renamed once imported");
    assert!(state.path().join("state.json.imported").exists());
    let api = service_status(&app, "api").await.expect("api imported");
    assert_eq!(api["status"], "up");
    assert_eq!(api["phase"], "serving");
    assert_eq!(api["timeout_seconds"], 120.0);
    let cron = service_status(&app, "cron").await.expect("cron imported");
    assert_eq!(cron["status"], "down");
    assert_eq!(cron["reason"], "timeout");
    let open = issues(&app, "open", "heartbeat_missed", "cron").await;
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["id"], "01J9Z3NDEKTSV4RRFFQ69G5FAV");
    let resolved = issues(&app, "resolved", "service_failed", "batch").await;
    assert_eq!(resolved.len(), 1);
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["open_issues"], 1);
    assert_eq!(events_of(&app, "api").await.len(), 1);
    let (_, containers) = get(&app, "/containers").await;
    assert_eq!(containers["containers"][0]["name"], "web");
    let text = crate::helpers::metrics(&app).await;
    assert_eq!(
        crate::helpers::sample(
            &text,
            r#"watcher_container_restarts_total{container="web"}"#
        ),
        Some(2.0),
        "{text}"
    );

    // The imported issue resolves like any other: cron beats again.
    heartbeat(&app, json!({"service": "cron"})).await;
    let back = issues(&app, "resolved", "heartbeat_missed", "cron").await;
    assert_eq!(back[0]["id"], "01J9Z3NDEKTSV4RRFFQ69G5FAV");
    app.shutdown().await.unwrap();

    // A restart reads the database; the renamed file is not imported again.
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    assert_eq!(events_of(&app, "api").await.len(), 1, "not imported twice");
    assert_eq!(
        service_status(&app, "cron").await.unwrap()["status"],
        "up",
        "the recovery after the import is what the database holds"
    );
    assert!(issues(&app, "open", "heartbeat_missed", "cron")
        .await
        .is_empty());
}

#[actix_web::test]
async fn an_unparsable_legacy_state_file_stops_the_watcher_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let legacy = state.path().join("state.json");
    std::fs::write(&legacy, b"\x00garbage{").unwrap();
    let started = obs_testkit::TestApp::spawn(
        obs_core::CoreConfig::for_tests("watcher", state.path()),
        async move |service: &obs_core::Service| {
            watcher::Watcher::with_config(service, WatcherConfig::for_tests()).await
        },
    )
    .await;
    let error = match started {
        Ok(_) => panic!("the watcher started over a state file it could not read"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&legacy.display().to_string()),
        "the error names the file: {error}"
    );
    assert!(legacy.exists(), "the file is left where it was, untouched");
    assert_eq!(std::fs::read(&legacy).unwrap(), b"\x00garbage{");
}
