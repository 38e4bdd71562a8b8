//! Every command, in text and in JSON, against the real watcher; what goes in goes through
//! obsctl itself.

use obs_model::{
    Event, EventSource, Issue, IssueKind, IssueState, ServiceState, Severity, WatcherStatus,
};
use serde_json::Value;

use crate::support::{obsctl, until_output, Watcher};

#[tokio::test]
async fn heartbeats_sent_with_obsctl_show_in_status() {
    let watcher = Watcher::start_with(&[("APP_NAME", "shop"), ("DEPLOYMENT_ID", "d-42")]).await;
    let url = &watcher.url;
    let sent = obsctl(
        url,
        &[
            "heartbeat",
            "api",
            "--phase",
            "edge_loop",
            "--timeout-seconds",
            "600",
        ],
    )
    .await;
    assert_eq!(sent.ok(), "heartbeat sent for api\n");
    assert_eq!(obsctl(url, &["heartbeat", "-q", "cron-job"]).await.ok(), "");

    let text = obsctl(url, &["status"]).await;
    let text = text.ok();
    assert!(
        text.starts_with(&format!(
            "watcher {url} · app shop · deployment d-42 · docker: not watched"
        )),
        "{text}"
    );
    assert!(text.contains("SERVICES  2 up"), "{text}");
    assert!(text.contains("api       up     "), "{text}");
    assert!(text.contains("edge_loop  timeout 10m"), "{text}");
    assert!(text.contains("cron-job"), "{text}");
    assert!(
        text.contains("CONTAINERS  none (docker not watched)"),
        "{text}"
    );
    assert!(text.contains("OPEN ISSUES  none"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour into a pipe: {text:?}");

    let status: WatcherStatus = obsctl(url, &["--json", "status"]).await.json();
    assert_eq!(status.app_name.as_deref(), Some("shop"));
    let api = status.services.iter().find(|s| s.service == "api").unwrap();
    assert_eq!(api.status, ServiceState::Up);
    assert_eq!(api.phase.as_deref(), Some("edge_loop"));
    assert_eq!(api.timeout_seconds, 600.0);
    assert_eq!(status.open_issues, 0);
}

#[tokio::test]
async fn events_go_in_with_event_and_come_out_with_events() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    let recorded = obsctl(url, &["event", "api", "deploy", "--detail", "v1.2.3"]).await;
    assert_eq!(recorded.ok(), "event deploy recorded for api\n");
    let answer: Value = obsctl(
        url,
        &[
            "--json",
            "event",
            "api",
            "failure",
            "--component",
            "db",
            "--detail",
            "timeout",
        ],
    )
    .await
    .json();
    assert_eq!(answer["status"], "ok", "{answer}");
    assert!(
        answer["id"].is_string(),
        "the watcher's answer is passed on: {answer}"
    );
    obsctl(url, &["event", "-q", "worker", "start"]).await.ok();

    let text = obsctl(url, &["events"]).await;
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].contains("• deploy") && lines[0].contains("api") && lines[0].ends_with("v1.2.3"),
        "{lines:#?}"
    );
    assert!(
        lines[1].contains("✕ failure") && lines[1].ends_with("timeout · component db"),
        "{lines:#?}"
    );
    assert!(
        lines[2].contains("✓ start") && lines[2].contains("worker"),
        "oldest first: {lines:#?}"
    );

    let newest = obsctl(url, &["events", "--limit", "1"]).await;
    assert_eq!(newest.ok().lines().count(), 1);
    assert!(newest.ok().contains("worker"), "{newest:#?}");

    let events: Vec<Event> = obsctl(url, &["events", "--json", "--service", "api"])
        .await
        .json();
    assert_eq!(events.len(), 2);
    assert!(events
        .iter()
        .all(|e| e.service == "api" && e.source == EventSource::Api));
    assert_eq!(events[1].component.as_deref(), Some("db"));
}

#[tokio::test]
async fn an_empty_watcher_says_so_in_every_listing() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    assert_eq!(obsctl(url, &["events"]).await.ok(), "no events yet\n");
    assert_eq!(obsctl(url, &["issues"]).await.ok(), "no issues\n");
    let events: Vec<Event> = obsctl(url, &["--json", "events"]).await.json();
    assert!(events.is_empty());
    let text = obsctl(url, &["status", "--verbose"]).await;
    assert!(text.ok().contains("SERVICES  none yet"), "{text:#?}");
    assert!(
        text.ok().contains("RECENT EVENTS  last 0\n  none yet"),
        "{text:#?}"
    );
}

#[tokio::test]
async fn a_service_that_stops_beating_is_an_open_issue_with_a_recommendation() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    obsctl(url, &["heartbeat", "steady", "--timeout-seconds", "600"])
        .await
        .ok();
    obsctl(
        url,
        &[
            "heartbeat",
            "worker",
            "--phase",
            "batch",
            "--timeout-seconds",
            "0.5",
        ],
    )
    .await
    .ok();

    let verbose = until_output(
        &watcher,
        &["status", "--verbose"],
        "worker's missed heartbeats",
        |text| text.contains("heartbeat_missed"),
    )
    .await;
    assert!(verbose.contains("SERVICES  1 up · 1 down"), "{verbose}");
    let worker = verbose.lines().find(|l| l.contains(" worker ")).unwrap();
    assert!(
        worker.contains("down") && worker.contains("missed heartbeats since"),
        "{verbose}"
    );
    assert!(verbose.contains("RECENT EVENTS"), "{verbose}");
    assert!(
        verbose.contains("✕ down") && verbose.contains("worker"),
        "{verbose}"
    );
    assert!(verbose.contains("OPEN ISSUES  1 (1 critical)"), "{verbose}");
    assert!(
        verbose.contains("✕ CRITICAL worker heartbeat_missed"),
        "{verbose}"
    );
    let arrow = verbose
        .lines()
        .find(|l| l.trim_start().starts_with('→'))
        .unwrap();
    assert!(arrow.len() > 20, "a real recommendation: {verbose}");

    let plain = obsctl(url, &["status"]).await;
    assert!(
        plain
            .ok()
            .contains("OPEN ISSUES  1  (obsctl status --verbose"),
        "{plain:#?}"
    );

    let issues: Vec<Issue> = obsctl(url, &["issues", "--json"]).await.json();
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].kind, IssueKind::HeartbeatMissed);
    assert_eq!(issues[0].severity, Severity::Critical);
    assert!(!issues[0].recommendation.is_empty());

    let full: Value = obsctl(url, &["status", "--verbose", "--json"]).await.json();
    assert_eq!(full["open_issues"], 1, "{full}");
    assert_eq!(full["issues"][0]["kind"], "heartbeat_missed", "{full}");
    assert!(
        full["recent_events"]
            .as_array()
            .is_some_and(|e| !e.is_empty()),
        "{full}"
    );
    assert!(
        full["services"].is_array(),
        "the status fields stay at the top: {full}"
    );

    // Beating again resolves it.
    obsctl(url, &["heartbeat", "worker", "--timeout-seconds", "600"])
        .await
        .ok();
    let resolved = until_output(
        &watcher,
        &["issues", "--state", "resolved"],
        "the issue resolved",
        |text| text.contains("heartbeat_missed"),
    )
    .await;
    assert!(resolved.contains("(resolved "), "{resolved}");
    assert_eq!(obsctl(url, &["issues"]).await.ok(), "no issues\n");
    let all: Vec<Issue> = obsctl(url, &["issues", "--state", "all", "--json"])
        .await
        .json();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].state, IssueState::Resolved);
}

#[tokio::test]
async fn heartbeat_fail_is_a_failure_not_a_missed_beat() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    let failed = obsctl(
        url,
        &["heartbeat", "backup", "--fail", "--detail", "tar exited 2"],
    )
    .await;
    assert_eq!(failed.ok(), "failure sent for backup\n");
    let status = obsctl(url, &["status"]).await;
    let line = status
        .ok()
        .lines()
        .find(|l| l.contains("backup"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("down") && line.contains("reported a failure"),
        "{status:#?}"
    );
    let issues: Vec<Issue> = obsctl(url, &["--json", "issues"]).await.json();
    assert_eq!(issues[0].kind, IssueKind::ServiceFailed);
    assert!(
        issues[0].message.contains("tar exited 2"),
        "{:?}",
        issues[0]
    );
    let text = obsctl(url, &["issues"]).await;
    assert!(
        text.ok().starts_with("✕ CRITICAL backup service_failed"),
        "{text:#?}"
    );
}

/// Past the watcher's page of 1,000: text shows the first page (down first) with the fleet's
/// counts and says so; `--json` follows the cursor and lists every service once.
#[tokio::test]
async fn status_past_one_page_counts_all_and_json_lists_all() {
    let watcher = Watcher::start().await;
    let url = &watcher.url;
    let http = reqwest::Client::new();
    let fleet = 1_050;
    for n in 0..fleet {
        let answer = http
            .post(format!("{url}/heartbeat"))
            .json(&serde_json::json!({"service": format!("cam-{n:04}")}))
            .send()
            .await
            .expect("the watcher answers");
        assert_eq!(answer.status(), 200);
    }
    let answer = http
        .get(format!("{url}/ping/zz-job/fail"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let text = obsctl(url, &["status"]).await;
    let text = text.ok();
    assert!(
        text.contains(&format!("SERVICES  {fleet} up · 1 down")),
        "{text}"
    );
    assert!(
        text.contains(&format!("the first 1000 of {}, down first", fleet + 1)),
        "{text}"
    );
    let down_at = text
        .find("zz-job")
        .expect("the down one is on the first page");
    assert!(down_at < text.find("cam-0000").unwrap());

    let status: WatcherStatus = obsctl(url, &["--json", "status"]).await.json();
    assert_eq!(status.services.len(), fleet + 1);
    let unique: std::collections::HashSet<&str> =
        status.services.iter().map(|s| s.service.as_str()).collect();
    assert_eq!(unique.len(), fleet + 1);
    assert!(status.services_next.is_none());
    assert_eq!(status.service_counts.map(|c| c.total), Some(fleet + 1));
}
