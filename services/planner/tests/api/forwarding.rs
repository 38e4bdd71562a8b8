//! Plan changes reach the synthesizer (a real receiving server) and a real archivist through
//! the outboxes: every change once at least, in order of revision, archived as records of
//! kind `plan` with ids of their own; a receiver that was down gets them when it is back.

use std::collections::HashSet;

use archivist::config::{ArchiveConfig, ArchiveLocation};
use archivist::Archivist;
use obs_core::config::Peers;
use obs_core::Service;
use obs_testkit::{eventually, test_config, TestApp};
use planner::PlannerConfig;
use serde_json::{json, Value};
use std::time::Duration;

use crate::helpers::*;

async fn archivist() -> (TestApp, tempfile::TempDir) {
    let (config, state) = test_config("archivist");
    let location = ArchiveLocation::Sqlite(state.path().join("archive.sqlite3"));
    let app = TestApp::spawn(config, async move |service: &Service| {
        Archivist::with_config(service, ArchiveConfig::new(location)).await
    })
    .await
    .expect("the archivist starts");
    (app, state)
}

#[actix_web::test]
async fn plan_changes_reach_the_synthesizer_and_the_archive() {
    let synthesizer = Receiver::start().await;
    let (archive, _archive_state) = archivist().await;
    let peers = Peers {
        synthesizer: Some(synthesizer.url.clone()),
        archivist: Some(archive.address.clone()),
        ..Peers::default()
    };
    let app = spawn_wired(PlannerConfig::for_tests(), peers).await;
    let open = incident(
        "crashed",
        "api",
        "api-1",
        json!({"container": "api-1", "exit_code": 1, "restart_policy": "no"}),
    );
    post_incidents(&app, std::slice::from_ref(&open)).await;
    post_incidents(&app, &[revised(&open, 2, "acknowledged", "acknowledged")]).await;
    // A redelivery is no change, so nothing is forwarded for it.
    post_incidents(&app, &[revised(&open, 2, "acknowledged", "acknowledged")]).await;
    post_incidents(&app, &[revised(&open, 3, "resolved", "resolved")]).await;

    let plans = synthesizer.wait_for("/v1/plans", 3).await;
    let revisions: Vec<u64> = plans
        .iter()
        .map(|p| p["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, [1, 2, 3]);
    let states: Vec<&str> = plans.iter().map(|p| p["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["open", "open", "closed"]);
    assert!(plans.iter().all(|p| p["incident_id"] == open["id"]));
    assert!(plans.iter().all(|p| p["id"] == plans[0]["id"]), "one plan");
    assert_eq!(
        plans[2]["incident"]["change"], "resolved",
        "the plan carries its incident"
    );

    let records: Vec<Value> = eventually(
        "3 plan records in the archive",
        Duration::from_secs(20),
        || async {
            let (status, body) = get(&archive, "/v1/records?kind=plan").await;
            let records = body["records"].as_array().cloned().unwrap_or_default();
            (status == 200 && records.len() >= 3).then_some(records)
        },
    )
    .await;
    assert_eq!(records.len(), 3);
    let ids: HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "a fresh record id per change");
    for record in &records {
        assert_eq!(record["kind"], "plan");
        assert_eq!(record["service"], "api");
        assert_eq!(record["body"]["id"], plans[0]["id"]);
    }
    // Nothing more arrives for the redelivery.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(synthesizer.items("/v1/plans").len(), 3);
}

#[actix_web::test]
async fn a_synthesizer_that_was_down_gets_every_change_when_it_is_back() {
    let synthesizer = Receiver::start().await;
    synthesizer.answer(503);
    let peers = Peers {
        synthesizer: Some(synthesizer.url.clone()),
        ..Peers::default()
    };
    let app = spawn_wired(PlannerConfig::for_tests(), peers).await;
    let sent: Vec<Value> = (0..3)
        .map(|n| {
            incident(
                "probe_failed",
                &format!("svc{n}"),
                "http://x",
                json!({"url": "http://x"}),
            )
        })
        .collect();
    post_incidents(&app, &sent).await;
    let pending = eventually(
        "the outbox to hold the plans",
        Duration::from_secs(10),
        || async {
            let text = metrics(&app).await;
            sample(&text, "outbox_pending{destination=\"synthesizer\"}").filter(|n| *n >= 3.0)
        },
    )
    .await;
    assert_eq!(pending, 3.0);
    synthesizer.answer(200);
    let plans = synthesizer.wait_for("/v1/plans", 3).await;
    let services: HashSet<&str> = plans
        .iter()
        .map(|p| p["service"].as_str().unwrap())
        .collect();
    assert_eq!(services, HashSet::from(["svc0", "svc1", "svc2"]));
}
