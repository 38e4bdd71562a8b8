//! Incidents, silences and goals survive a restart: a clean one (SIGTERM-like shutdown, which
//! also saves repeats) and a crash (SIGKILL of the real binary).

use std::process::{Command, Stdio};
use std::time::Duration;

use curator::CuratorConfig;
use obs_testkit::{eventually, free_port, ChildGuard};
use reqwest::Method;
use serde_json::json;
use ulid::Ulid;

use crate::helpers::*;

fn in_minutes(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

#[actix_web::test]
async fn everything_comes_back_after_a_restart() {
    let state = tempfile::tempdir().expect("a temporary folder");
    let settings = CuratorConfig {
        // Long enough that only the shutdown saves the repeats.
        state_flush_interval: Duration::from_secs(3600),
        ..CuratorConfig::for_tests()
    };
    let app = spawn_in(state.path(), settings.clone()).await;
    let api = Ulid::new();
    let db = issue(Ulid::new(), "db", "crashed", "db-1", 1);
    post_issues(
        &app,
        &[issue(api, "api", "oom_killed", "api-1", 1), db.clone()],
    )
    .await;
    post_issues(&app, &[issue(api, "api", "oom_killed", "api-1", 7)]).await;
    post_issues(&app, &[recovered(db.clone())]).await;
    send(
        &app,
        Method::POST,
        &format!("/v1/incidents/{api}/ack"),
        Some(&json!({"by": "alice"})),
    )
    .await;
    let (status, silence) = post(
        &app,
        "/v1/silences",
        &json!({"matchers": [{"name": "service", "value": "web"}], "ends_at": in_minutes(60), "comment": "later"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    let (status, _) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "api"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let before = incidents(&app, "").await;
    app.shutdown().await.expect("a clean shutdown");

    let app = spawn_in(state.path(), settings).await;
    let after = incidents(&app, "").await;
    assert_eq!(after, before);
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["count"], 7, "repeats were saved at shutdown");
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident_of(&app, "db").await["state"], "resolved");
    let (_, silences) = get(&app, "/v1/silences").await;
    assert_eq!(silences["silences"][0]["id"], silence["id"]);
    let (_, goals) = get(&app, "/v1/goals").await;
    assert_eq!(goals["services"][0]["service"], "api");

    // What was applied before is still known: a redelivery is a no-op.
    let tally = post_issues(
        &app,
        &[issue(api, "api", "oom_killed", "api-1", 7), recovered(db)],
    )
    .await;
    assert_eq!(tally["duplicates"], 2, "{tally}");
    let tally = post_issues(&app, &[issue(api, "api", "oom_killed", "api-1", 8)]).await;
    assert_eq!(tally["deduplicated"], 1, "{tally}");
    assert_eq!(incident_of(&app, "api").await["count"], 8);
}

#[actix_web::test]
async fn what_was_answered_survives_a_crash() {
    let state = tempfile::tempdir().expect("a temporary folder");
    let port = free_port();
    let start = || {
        let child = Command::new(env!("CARGO_BIN_EXE_curator"))
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("STATE_DIR", state.path())
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the curator binary");
        ChildGuard(Some(child))
    };
    let address = format!("http://127.0.0.1:{port}");
    let client = obs_testkit::client();
    let ready = || async {
        eventually(
            "the curator to be ready",
            Duration::from_secs(20),
            || async {
                let response = client.get(format!("{address}/readyz")).send().await.ok()?;
                response.status().is_success().then_some(())
            },
        )
        .await
    };

    let child = start();
    ready().await;
    let mut opened = Vec::new();
    for batch in 0..20 {
        let items: Vec<_> = (0..10)
            .map(|index| {
                let id = Ulid::new();
                opened.push(id);
                issue(id, &format!("svc-{batch}-{index}"), "crashed", "", 1)
            })
            .collect();
        let response = client
            .post(format!("{address}/v1/issues"))
            .json(&items)
            .send()
            .await
            .expect("posting issues");
        assert_eq!(response.status(), 200);
    }
    let acknowledged = opened[0];
    let response = client
        .post(format!("{address}/v1/incidents/{acknowledged}/ack"))
        .send()
        .await
        .expect("acknowledging");
    assert_eq!(response.status(), 200);
    // std's kill is SIGKILL: no drain, no flush.
    let mut child = child;
    if let Some(process) = child.0.as_mut() {
        process.kill().expect("killing the curator");
        process.wait().expect("reaping the curator");
    }
    drop(child);

    let _child = start();
    ready().await;
    let response = client
        .get(format!("{address}/v1/incidents?limit=10000"))
        .send()
        .await
        .expect("listing incidents");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    let after = body["incidents"].as_array().expect("incidents").clone();
    assert_eq!(after.len(), opened.len(), "every opening that was answered");
    let first = after
        .iter()
        .find(|i| i["id"] == acknowledged.to_string())
        .unwrap();
    assert_eq!(first["state"], "acknowledged");
}
