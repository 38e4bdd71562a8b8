//! Goals against a real watcher: an expected service it does not know becomes a `missing`
//! incident, which resolves once the service heartbeats.

use std::time::Duration;

use curator::CuratorConfig;
use obs_core::config::Peers;
use obs_core::Service;
use obs_testkit::{eventually, test_config, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use ulid::Ulid;
use watcher::{Watcher, WatcherConfig};

use crate::helpers::*;

async fn start_watcher() -> (TestApp, tempfile::TempDir) {
    let (config, state) = test_config("watcher");
    let app = TestApp::spawn(config, async |service: &Service| {
        Watcher::with_config(service, WatcherConfig::for_tests()).await
    })
    .await
    .expect("the watcher starts");
    (app, state)
}

fn watcher_at(watcher: &TestApp) -> Peers {
    Peers {
        watcher: Some(watcher.address.clone()),
        ..Peers::default()
    }
}

async fn heartbeat(watcher: &TestApp, service: &str) {
    let (status, body) = post(watcher, "/heartbeat", &json!({"service": service})).await;
    assert_eq!(status, 200, "{body}");
}

async fn missing_incident(app: &TestApp, service: &str, state: &str) -> Value {
    eventually(
        &format!("a {state} missing incident for {service}"),
        Duration::from_secs(15),
        || async {
            incidents(app, &format!("service={service}"))
                .await
                .into_iter()
                .find(|incident| incident["kind"] == "missing" && incident["state"] == state)
        },
    )
    .await
}

#[actix_web::test]
async fn an_expected_service_the_watcher_does_not_know_is_missing_until_it_shows_up() {
    let (watcher, _watcher_state) = start_watcher().await;
    heartbeat(&watcher, "api").await;
    let app = spawn_wired(CuratorConfig::for_tests(), watcher_at(&watcher)).await;
    // "cache" is known from the issues it sent, not from heartbeats.
    post_issues(&app, &[issue(Ulid::new(), "cache", "crashed", "", 1)]).await;

    let (status, goals) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [
            {"service": "api"},
            {"service": "db", "severity": "warning", "note": "the primary"},
            {"service": "cache"}
        ]})),
    )
    .await;
    assert_eq!(status, 200, "{goals}");
    assert_eq!(goals["services"][0]["severity"], "critical", "the default");

    let missing = missing_incident(&app, "db", "open").await;
    assert_eq!(missing["source"], "goals");
    assert_eq!(missing["severity"], "warning");
    assert_eq!(missing["title"], "db: missing");
    assert!(missing["recommendation"]
        .as_str()
        .unwrap()
        .contains("PUT /v1/goals"));
    let goals = eventually("the check's verdict", Duration::from_secs(15), || async {
        let (_, goals) = get(&app, "/v1/goals").await;
        goals["checked_at"].is_string().then_some(goals)
    })
    .await;
    assert_eq!(goals["missing"], json!(["db"]));
    assert_eq!(incidents(&app, "service=api").await.len(), 0);
    assert_eq!(
        incidents(&app, "service=cache").await.len(),
        1,
        "only its crash"
    );

    // Checks repeat; the absence stays one incident.
    eventually("another check", Duration::from_secs(15), || async {
        let (_, later) = get(&app, "/v1/goals").await;
        (later["checked_at"] != goals["checked_at"]).then_some(())
    })
    .await;
    let still = incidents(&app, "service=db").await;
    assert_eq!(still.len(), 1);
    assert_eq!(still[0]["count"], 1);

    heartbeat(&watcher, "db").await;
    let resolved = missing_incident(&app, "db", "resolved").await;
    assert_eq!(resolved["id"], missing["id"]);
    assert_eq!(resolved["resolved_by"], "goals");
    let metrics = metrics(&app).await;
    assert_eq!(sample(&metrics, "curator_goals_missing"), Some(0.0));
}

#[actix_web::test]
async fn a_service_no_longer_expected_is_no_longer_missing() {
    let (watcher, _watcher_state) = start_watcher().await;
    let app = spawn_wired(CuratorConfig::for_tests(), watcher_at(&watcher)).await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "legacy"}]})),
    )
    .await;
    assert_eq!(status, 200);
    missing_incident(&app, "legacy", "open").await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": []})),
    )
    .await;
    assert_eq!(status, 200);
    missing_incident(&app, "legacy", "resolved").await;
}

#[actix_web::test]
async fn an_unreachable_watcher_keeps_the_last_verdict() {
    let nowhere = Peers {
        // Nothing listens there.
        watcher: Some(format!("http://127.0.0.1:{}", obs_testkit::free_port())),
        ..Peers::default()
    };
    let app = spawn_wired(CuratorConfig::for_tests(), nowhere).await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "api"}]})),
    )
    .await;
    assert_eq!(status, 200);
    eventually(
        "a failed check to be counted",
        Duration::from_secs(15),
        || async {
            let metrics = metrics(&app).await;
            (sample(&metrics, "curator_goals_check_failures_total")? >= 1.0).then_some(())
        },
    )
    .await;
    assert!(
        incidents(&app, "").await.is_empty(),
        "nobody to ask: no verdict"
    );
    let (_, goals) = get(&app, "/v1/goals").await;
    assert!(goals.get("missing").is_none(), "{goals}");
}

/// The watcher lists its services a page of 1,000 at a time: a service past the first page
/// is known all the same (the curator follows the cursor).
#[actix_web::test]
async fn a_service_past_the_watchers_first_page_is_known() {
    let (watcher, _watcher_state) = start_watcher().await;
    for n in 0..1_010 {
        heartbeat(&watcher, &format!("cam-{n:04}")).await;
    }
    let app = spawn_wired(CuratorConfig::for_tests(), watcher_at(&watcher)).await;
    let (status, goals) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "cam-1009"}, {"service": "gone"}]})),
    )
    .await;
    assert_eq!(status, 200, "{goals}");
    let goals = eventually("the check's verdict", Duration::from_secs(15), || async {
        let (_, goals) = get(&app, "/v1/goals").await;
        goals["checked_at"].is_string().then_some(goals)
    })
    .await;
    assert_eq!(goals["missing"], json!(["gone"]));
}
