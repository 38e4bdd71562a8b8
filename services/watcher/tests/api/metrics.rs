//! `/metrics`: the seed's names, the watcher's own, and promtool's approval.

use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{get, heartbeat, metrics, post, sample, spawn, wait_for_issue};

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

/// What `df` and /proc say about this machine now, to hold the host gauges against.
fn df_used_ratio(path: &std::path::Path) -> f64 {
    let output = std::process::Command::new("df")
        .args(["-B1", "--output=used,avail"])
        .arg(path)
        .output()
        .expect("df runs");
    let text = String::from_utf8_lossy(&output.stdout);
    let figures: Vec<f64> = text
        .lines()
        .nth(1)
        .expect("a df line")
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    figures[0] / (figures[0] + figures[1])
}

fn proc_memory_used_ratio() -> f64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let field = |name: &str| -> f64 {
        meminfo
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap()
    };
    1.0 - field("MemAvailable") / field("MemTotal")
}

#[actix_web::test]
async fn the_host_gauges_agree_with_df_and_proc() {
    let disk = tempfile::tempdir().unwrap();
    let mut settings = WatcherConfig::for_tests();
    settings.host_metrics_interval = Some(std::time::Duration::from_millis(200));
    settings.host_disk_path = disk.path().to_path_buf();
    let app = spawn(settings).await;

    let text = obs_testkit::eventually(
        "a host sample",
        std::time::Duration::from_secs(10),
        || async {
            let text = metrics(&app).await;
            sample(&text, "watcher_host_memory_used_ratio")
                .is_some_and(|ratio| ratio > 0.0)
                .then_some(text)
        },
    )
    .await;
    let gauge = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));

    let disk_ratio = gauge("watcher_host_disk_used_ratio");
    let df = df_used_ratio(disk.path());
    assert!(
        (disk_ratio - df).abs() < 0.02,
        "disk {disk_ratio} vs df {df}"
    );
    // Other tests allocate and free meanwhile: close, not equal.
    let memory_ratio = gauge("watcher_host_memory_used_ratio");
    let proc = proc_memory_used_ratio();
    assert!(
        (memory_ratio - proc).abs() < 0.1,
        "memory {memory_ratio} vs /proc/meminfo {proc}"
    );
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap();
    let proc_load: Vec<f64> = loadavg
        .split_whitespace()
        .take(3)
        .map(|n| n.parse().unwrap())
        .collect();
    for (name, proc) in [
        "watcher_host_load1",
        "watcher_host_load5",
        "watcher_host_load15",
    ]
    .iter()
    .zip(proc_load)
    {
        let load = gauge(name);
        // The kernel moves these every 5 s; a busy test machine moves load1 by a few tenths.
        assert!(
            (load - proc).abs() < 2.0,
            "{name} {load} vs /proc/loadavg {proc}"
        );
    }
}
