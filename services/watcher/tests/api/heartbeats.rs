//! Heartbeats, pings and the checker: down and recovery as issues, a missed beat kept apart
//! from an explicit failure.

use std::time::Duration;

use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{
    events_of, get, heartbeat, issues, metrics, post, sample, service_status, spawn,
    wait_for_issue, wait_for_status,
};

#[actix_web::test]
async fn the_seed_heartbeat_marks_a_service_up_with_its_phase() {
    let app = spawn(WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "edge-cam01", "phase": "edge_loop"})).await;
    let entry = service_status(&app, "edge-cam01").await.expect("listed");
    assert_eq!(entry["status"], "up");
    assert_eq!(entry["phase"], "edge_loop");
    assert_eq!(entry["timeout_seconds"], 30.0, "MONITOR_HEARTBEAT_TIMEOUT");
    assert!(entry["last_seen"].is_string());
    assert!(entry.get("reason").is_none());

    // Unknown fields are ignored, as the original service did.
    heartbeat(&app, json!({"service": "edge-cam01", "extra": {"any": 1}})).await;
    let entry = service_status(&app, "edge-cam01").await.unwrap();
    assert_eq!(entry["phase"], "edge_loop", "a beat without phase keeps it");

    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"monitoring_service_status{service="edge-cam01"}"#),
        Some(1.0)
    );
    let last_seen = sample(
        &text,
        r#"monitoring_service_last_seen_seconds{service="edge-cam01"}"#,
    )
    .expect("last seen gauge");
    let now = chrono::Utc::now().timestamp() as f64;
    assert!((now - last_seen).abs() < 60.0, "unix time: {last_seen}");
    assert_eq!(sample(&text, "watcher_heartbeats_total"), Some(2.0));
}

#[actix_web::test]
async fn a_missed_beat_opens_heartbeat_missed_and_the_next_beat_resolves_the_same_issue() {
    let app = spawn(WatcherConfig::for_tests()).await;
    heartbeat(
        &app,
        json!({"service": "job", "timeout_seconds": 0.3, "phase": "batch"}),
    )
    .await;
    heartbeat(&app, json!({"service": "steady"})).await;

    let down = wait_for_status(&app, "job", "down").await;
    assert_eq!(down["reason"], "timeout");
    assert!(down["down_since"].is_string());
    let issue = wait_for_issue(&app, "open", "heartbeat_missed", "job").await;
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["facts"]["timeout_seconds"], 0.3);
    assert_eq!(issue["facts"]["phase"], "batch");
    assert!(issue["facts"]["last_seen"].is_string());
    assert!(issue["facts"]["down_since"].is_string());
    assert!(issue["recommendation"]
        .as_str()
        .unwrap()
        .contains("timeout_seconds"));
    assert!(issues(&app, "all", "service_failed", "job")
        .await
        .is_empty());
    assert_eq!(
        service_status(&app, "steady").await.unwrap()["status"],
        "up",
        "its own 30 s timeout has not passed"
    );
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["open_issues"], 1);

    heartbeat(&app, json!({"service": "job"})).await;
    let up = service_status(&app, "job").await.unwrap();
    assert_eq!(up["status"], "up");
    assert!(up.get("reason").is_none() && up.get("down_since").is_none());
    assert_eq!(
        up["timeout_seconds"], 0.3,
        "the override stays for beats without timeout_seconds"
    );
    let resolved = issues(&app, "resolved", "heartbeat_missed", "job").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0]["id"], issue["id"],
        "recovery resolves the same issue"
    );
    assert!(resolved[0]["resolved_at"].is_string());
    assert!(resolved[0]["facts"]["downtime_seconds"].is_number());

    let types: Vec<String> = events_of(&app, "job")
        .await
        .iter()
        .map(|event| event["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["down", "recovered"]);
    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"watcher_issues_open{kind="heartbeat_missed",severity="critical"}"#
        ),
        Some(0.0)
    );
}

/// The open issue of `service`'s silence once its count reached `count`.
async fn wait_for_count(
    app: &obs_testkit::TestApp,
    service: &str,
    count: u64,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let open = issues(app, "open", "heartbeat_missed", service).await;
        if let Some(issue) = open
            .into_iter()
            .find(|issue| issue["count"].as_u64() >= Some(count))
        {
            return issue;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{service}'s silence was not reported {count} times"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn silence_past_the_deadline_is_reported_again_every_timeout_and_a_beat_recovers() {
    let state = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_in(state.path(), WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "quiet", "timeout_seconds": 0.3})).await;
    let down = wait_for_status(&app, "quiet", "down").await;
    let first = wait_for_issue(&app, "open", "heartbeat_missed", "quiet").await;
    // Due again one timeout later, as long as it stays silent: the same issue counts again.
    let again = wait_for_count(&app, "quiet", 3).await;
    assert_eq!(again["id"], first["id"], "one issue, counted again");
    assert!(again["last_seen"].as_str() > first["last_seen"].as_str());
    assert_eq!(
        again["facts"]["down_since"], first["facts"]["down_since"],
        "down since the first timeout"
    );
    let still = service_status(&app, "quiet").await.unwrap();
    assert_eq!(still["status"], "down");
    assert_eq!(still["reason"], "timeout");
    assert_eq!(still["down_since"], down["down_since"], "down_since kept");
    let types: Vec<String> = events_of(&app, "quiet")
        .await
        .iter()
        .map(|event| event["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["down"], "staying down is not a new event");

    // Restored as down after a restart, it goes on being reported.
    app.shutdown().await.unwrap();
    let app = crate::helpers::spawn_in(state.path(), WatcherConfig::for_tests()).await;
    let before = issues(&app, "open", "heartbeat_missed", "quiet").await[0]["count"]
        .as_u64()
        .unwrap();
    let after = wait_for_count(&app, "quiet", before + 2).await;
    assert_eq!(after["id"], first["id"]);

    heartbeat(&app, json!({"service": "quiet"})).await;
    assert_eq!(service_status(&app, "quiet").await.unwrap()["status"], "up");
    let resolved = issues(&app, "resolved", "heartbeat_missed", "quiet").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        resolved[0]["id"], first["id"],
        "recovery resolves the same issue"
    );
    let types: Vec<String> = events_of(&app, "quiet")
        .await
        .iter()
        .map(|event| event["event_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(types, ["down", "recovered"]);
}

#[actix_web::test]
async fn an_explicit_failure_is_service_failed_not_a_missed_beat() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let (status, body) = get(&app, "/ping/backup").await;
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let (status, _) = post(&app, "/ping/backup/fail?detail=disk%20full", &json!({})).await;
    assert_eq!(status, 200);
    let entry = service_status(&app, "backup").await.unwrap();
    assert_eq!(entry["status"], "down");
    assert_eq!(entry["reason"], "failed");
    let issue = wait_for_issue(&app, "open", "service_failed", "backup").await;
    assert_eq!(issue["message"], "backup reported a failure: disk full");
    assert_eq!(issue["facts"]["detail"], "disk full");
    assert_eq!(issue["count"], 1);

    // Failing again is the same issue, counted.
    let (status, _) = get(&app, "/ping/backup/fail").await;
    assert_eq!(status, 200);
    let again = wait_for_issue(&app, "open", "service_failed", "backup").await;
    assert_eq!(again["id"], issue["id"]);
    assert_eq!(again["count"], 2);
    assert!(issues(&app, "all", "heartbeat_missed", "backup")
        .await
        .is_empty());

    // A success (POST works too) recovers it, resolving the same issue.
    let (status, _) = post(&app, "/ping/backup", &json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(
        service_status(&app, "backup").await.unwrap()["status"],
        "up"
    );
    let resolved = issues(&app, "resolved", "service_failed", "backup").await;
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["id"], issue["id"]);
}

#[actix_web::test]
async fn a_ping_can_carry_a_long_timeout_for_cron_jobs() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let (status, _) = get(&app, "/ping/nightly?timeout_seconds=90000").await;
    assert_eq!(status, 200);
    assert_eq!(
        service_status(&app, "nightly").await.unwrap()["timeout_seconds"],
        90000.0
    );
    // A short one times out like a heartbeat does.
    let (status, _) = get(&app, "/ping/minutely?timeout_seconds=0.2").await;
    assert_eq!(status, 200);
    wait_for_status(&app, "minutely", "down").await;
    assert_eq!(
        service_status(&app, "nightly").await.unwrap()["status"],
        "up"
    );
}

#[actix_web::test]
async fn with_checking_off_silence_marks_nobody_down() {
    let mut settings = WatcherConfig::for_tests();
    settings.heartbeat.enabled = false;
    let app = spawn(settings).await;
    heartbeat(&app, json!({"service": "edge", "timeout_seconds": 0.05})).await;
    // An absence cannot be polled for: wait well past the timeout once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(service_status(&app, "edge").await.unwrap()["status"], "up");
    assert!(issues(&app, "all", "heartbeat_missed", "edge")
        .await
        .is_empty());
    // Explicit failures still count: they are not the checker's.
    get(&app, "/ping/edge/fail").await;
    assert_eq!(
        service_status(&app, "edge").await.unwrap()["status"],
        "down"
    );
}

#[actix_web::test]
async fn many_services_time_out_in_one_pass_and_recover() {
    let app = spawn(WatcherConfig::for_tests()).await;
    for n in 0..200 {
        heartbeat(
            &app,
            json!({"service": format!("svc-{n}"), "timeout_seconds": 0.5}),
        )
        .await;
    }
    obs_testkit::eventually("all 200 down", Duration::from_secs(20), || async {
        let (_, status) = get(&app, "/status").await;
        let down = status["services"]
            .as_array()?
            .iter()
            .filter(|s| s["status"] == "down")
            .count();
        (down == 200).then_some(())
    })
    .await;
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["open_issues"], 200);
    let names: Vec<&str> = status["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert!(
        names.windows(2).all(|pair| pair[0] < pair[1]),
        "listed by name: {names:?}"
    );
    // Back with a long timeout: 200 beats can take longer than 0.5 s on a busy machine, and
    // the first would time out again before the last is sent.
    for n in 0..200 {
        heartbeat(
            &app,
            json!({"service": format!("svc-{n}"), "timeout_seconds": 3600}),
        )
        .await;
    }
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["open_issues"], 0);
}

#[actix_web::test]
async fn beyond_max_services_a_new_service_is_refused() {
    let mut settings = WatcherConfig::for_tests();
    settings.heartbeat.max_services = 2;
    let app = spawn(settings).await;
    heartbeat(&app, json!({"service": "a"})).await;
    heartbeat(&app, json!({"service": "b"})).await;
    let (status, body) = post(&app, "/heartbeat", &json!({"service": "c"})).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"], "conflict");
    assert!(body["message"].as_str().unwrap().contains("MAX_SERVICES"));
    heartbeat(&app, json!({"service": "a"})).await;
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["services"].as_array().unwrap().len(), 2);
}

/// A ping changes state even as a GET, so with API_TOKEN set it needs the token like a POST;
/// reads stay open.
#[actix_web::test]
async fn with_an_api_token_pings_need_it_even_as_gets() {
    let (mut config, _state) = obs_testkit::test_config("watcher");
    config.api_token = Some("cron-secret".into());
    let app = crate::helpers::spawn_with(config, WatcherConfig::for_tests()).await;

    for path in ["/ping/nightly-backup", "/ping/nightly-backup/fail"] {
        for request in [
            app.client.get(app.url(path)),
            app.client.post(app.url(path)),
        ] {
            let (status, body) = crate::helpers::json(request.send().await.unwrap()).await;
            assert_eq!(status, 401, "{path}: {body}");
            assert_eq!(body["error"], "unauthorized");
        }
        let wrong = app
            .client
            .get(app.url(path))
            .bearer_auth("guess")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{path} with a wrong token");
    }
    assert!(
        service_status(&app, "nightly-backup").await.is_none(),
        "refused pings record nothing"
    );
    let (status, _) = get(&app, "/status").await;
    assert_eq!(status, 200, "reads need no token");

    let (status, _) = crate::helpers::json(
        app.client
            .get(app.url("/ping/nightly-backup"))
            .bearer_auth("cron-secret")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let entry = service_status(&app, "nightly-backup")
        .await
        .expect("listed");
    assert_eq!(entry["status"], "up");
}

/// The pings answer POST as well as GET; the description says so, each with an operation
/// id of its own (the hostile suite, which takes the endpoints from the description, missed
/// the POSTs).
#[actix_web::test]
async fn the_description_lists_the_pings_under_post_too() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let (status, doc) = get(&app, "/openapi.json").await;
    assert_eq!(status, 200);
    let mut ids = std::collections::HashSet::new();
    for path in ["/ping/{service}", "/ping/{service}/fail"] {
        for method in ["get", "post"] {
            let id = doc["paths"][path][method]["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path} is not listed"));
            assert!(ids.insert(id.to_string()), "operation id {id} twice");
        }
    }
    let (status, _) = post(&app, "/ping/by-post", &json!({})).await;
    assert_eq!(status, 200);
}
