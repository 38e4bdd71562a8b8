//! `/metrics`: the seed's names, the watcher's own, and promtool's approval.

use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{get, heartbeat, metrics, post, spawn, wait_for_issue};

#[actix_web::test]
async fn the_seed_metrics_and_the_watchers_pass_promtool() {
    let mut settings = WatcherConfig::for_tests();
    settings.host_metrics_interval = Some(std::time::Duration::from_secs(60));
    let app = spawn(settings).await;
    heartbeat(&app, json!({"service": "edge-cam01"})).await;
    heartbeat(&app, json!({"service": "gone", "timeout_seconds": 0.1})).await;
    wait_for_issue(&app, "open", "heartbeat_missed", "gone").await;
    post(
        &app,
        "/events",
        &json!({"service": "edge-cam01", "event_type": "failure", "component": "infer"}),
    )
    .await;
    post(
        &app,
        "/events",
        &json!({"service": "edge-cam01", "event_type": "success", "component": "infer"}),
    )
    .await;
    get(&app, "/ping/backup/fail").await;

    let text = metrics(&app).await;
    for family in [
        "monitoring_service_status",
        "monitoring_service_last_seen_seconds",
        "monitoring_events_total",
        "monitoring_task_failures_total",
        "monitoring_task_success_total",
        "watcher_issues_open",
        "watcher_heartbeats_total",
        "watcher_docker_connected",
        "watcher_host_load1",
        "watcher_host_memory_used_ratio",
        "watcher_host_disk_used_ratio",
    ] {
        assert!(
            text.contains(&format!("# TYPE {family} ")),
            "{family} missing:\n{text}"
        );
    }
    assert!(
        text.contains(r#"monitoring_service_status{service="gone"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"monitoring_service_status{service="backup"} 0"#),
        "{text}"
    );
    assert!(
        text.contains(r#"monitoring_service_status{service="edge-cam01"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"watcher_issues_open{kind="service_failed",severity="critical"} 1"#),
        "{text}"
    );
    obs_testkit::promtool_check_metrics(&text).expect("promtool check metrics");
}
