//! state.json: what survives a restart, and what an unreadable file does.

use serde_json::{json, Value};
use watcher::WatcherConfig;

use crate::helpers::{
    events_of, get, heartbeat, issues, post, service_status, spawn_in, wait_for_issue,
    wait_for_status,
};

#[actix_web::test]
async fn services_issues_and_events_survive_a_restart() {
    let state = tempfile::tempdir().unwrap();
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
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

    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
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

#[actix_web::test]
async fn an_unreadable_state_file_is_moved_aside_and_a_stale_temp_file_ignored() {
    let state = tempfile::tempdir().unwrap();
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "api"})).await;
    app.shutdown().await.unwrap();

    // A write that died half-way leaves only the temp file: the real one is untouched.
    std::fs::write(state.path().join("state.tmp"), b"{\"version\":1,\"serv").unwrap();
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    assert!(service_status(&app, "api").await.is_some());
    app.shutdown().await.unwrap();
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["services"][0]["service"], "api");

    // A file that is not the watcher's state (edited by hand, a disk fault) is kept aside.
    std::fs::write(state.path().join("state.json"), b"\x00garbage").unwrap();
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["services"], json!([]));
    let aside: Vec<String> = std::fs::read_dir(state.path())
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with("state.json.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "moved aside for inspection");
    heartbeat(&app, json!({"service": "fresh"})).await;
    app.shutdown().await.unwrap();
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.path().join("state.json")).unwrap()).unwrap();
    assert_eq!(saved["services"][0]["service"], "fresh");
}
