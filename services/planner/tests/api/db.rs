//! The commit path, on the embedded SQLite and on a real PostgreSQL: a change and the
//! records it forwards commit together or not at all; a failed commit answers 503 and
//! stores nothing, and the sender's retry is applied as the first copy (it used to be
//! answered "ignored" from memory, so the plan was never saved nor sent); two planners on one
//! database act as one, and only one of them restarts containers.

use std::collections::HashSet;
use std::time::Duration;

use obs_core::config::Peers;
use obs_core::CoreConfig;
use obs_testkit::{eventually, test_config, TestApp};
use planner::config::RemediationSettings;
use planner::PlannerConfig;
use serde_json::{json, Value};

use crate::helpers::*;

fn remediating(cooldown: Duration, max_attempts: u32) -> PlannerConfig {
    PlannerConfig {
        remediation: RemediationSettings {
            enabled: true,
            cooldown,
            max_attempts,
        },
        ..PlannerConfig::for_tests()
    }
}

/// A second planner on the same database as `config`, with a STATE_DIR of its own (as a
/// second pod has).
fn replica(config: &CoreConfig) -> (CoreConfig, tempfile::TempDir) {
    let (mut other, state) = test_config("planner");
    other.database_url = config.database_url.clone();
    other.peers = config.peers.clone();
    (other, state)
}

async fn refused_as_unavailable(app: &TestApp, incidents: &[Value]) {
    let (status, body) = post(app, "/v1/incidents", &json!(incidents)).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nothing was stored") && message.contains("disk full"),
        "{body}"
    );
}

async fn a_failed_commit_stores_nothing_and_the_retry_is_applied(backend: Backend) {
    let synthesizer = Receiver::start().await;
    let (mut config, _state) = config_on(backend);
    config.peers = Peers {
        synthesizer: Some(synthesizer.url.clone()),
        ..Peers::default()
    };
    let app = spawn_with(config.clone(), PlannerConfig::for_tests()).await;
    let db = open_db(&config).await;
    let open = incident(
        "crashed",
        "api",
        "api-1",
        json!({"container": "api-1", "exit_code": 1, "restart_policy": "no"}),
    );
    let id = open["id"].as_str().unwrap().to_string();

    // The plan row is written, then staging its records fails: all of it is undone.
    break_table(&db, "outbox").await;
    refused_as_unavailable(&app, std::slice::from_ref(&open)).await;
    let (status, body) = get(&app, &format!("/v1/plans/{id}")).await;
    assert_eq!(status, 404, "no plan was kept: {body}");
    assert!(plans(&app, "").await.is_empty());
    heal(&db, "outbox").await;
    // The sender's retry is, as far as the planner knows, the first copy.
    let tally = post_incidents(&app, std::slice::from_ref(&open)).await;
    assert_eq!(tally["created"], 1, "{tally}");
    assert_eq!(tally["ignored"], 0, "{tally}");
    synthesizer.wait_for("/v1/plans", 1).await;

    // An update whose plan write fails: the plan stays as it was, and the retry applies.
    let resolved = revised(&open, 2, "resolved", "resolved");
    break_table(&db, "planner_plans").await;
    refused_as_unavailable(&app, std::slice::from_ref(&resolved)).await;
    let plan = plan_of(&app, &open).await;
    assert_eq!(plan["revision"], 1, "{plan:#}");
    assert_eq!(plan["state"], "open");
    heal(&db, "planner_plans").await;
    let tally = post_incidents(&app, std::slice::from_ref(&resolved)).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    assert_eq!(tally["ignored"], 0, "{tally}");
    let forwarded = synthesizer.wait_for("/v1/plans", 2).await;
    let revisions: Vec<u64> = forwarded
        .iter()
        .map(|plan| plan["revision"].as_u64().unwrap())
        .collect();
    assert_eq!(revisions, [1, 2]);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "planner_incidents_received_total"),
        Some(2.0),
        "the refused copies were not counted: {text}"
    );
    app.shutdown().await.expect("a clean stop");

    // What the retries stored survives a restart, and is known by revision there.
    let app = spawn_with(config, PlannerConfig::for_tests()).await;
    let plan = plan_of(&app, &open).await;
    assert_eq!(plan["revision"], 2, "{plan:#}");
    assert_eq!(plan["state"], "closed");
    let tally = post_incidents(&app, std::slice::from_ref(&resolved)).await;
    assert_eq!(tally["ignored"], 1, "{tally}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        synthesizer.items("/v1/plans").len(),
        2,
        "each change forwarded once"
    );
}

#[actix_web::test]
async fn a_failed_commit_answers_503_and_the_retry_is_applied_and_forwarded() {
    a_failed_commit_stores_nothing_and_the_retry_is_applied(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_failed_commit_answers_503_and_the_retry_is_applied_on_postgres() {
    a_failed_commit_stores_nothing_and_the_retry_is_applied(Backend::Postgres).await;
}

#[actix_web::test]
async fn plans_survive_a_restart_on_postgres() {
    let (config, _state) = config_on(Backend::Postgres);
    crate::state::plans_survive_a_restart_with(config).await;
}

#[actix_web::test]
async fn copies_are_ordered_by_revision_on_postgres() {
    let (config, _state) = config_on(Backend::Postgres);
    let app = spawn_with(config, PlannerConfig::for_tests()).await;
    let open = incident("crashed", "api", "api-1", json!({"exit_code": 1}));
    let resolved = revised(&open, 3, "resolved", "resolved");
    let tally = post_incidents(&app, std::slice::from_ref(&resolved)).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    let tally = post_incidents(
        &app,
        &[
            open.clone(),
            revised(&open, 2, "acknowledged", "acknowledged"),
        ],
    )
    .await;
    assert_eq!(tally["ignored"], 2, "{tally}");
    let plan = plan_of(&app, &open).await;
    assert_eq!(plan["state"], "closed");
    assert_eq!(plan["revision"], 1);
    // Newest first, filtered, bounded, as on SQLite.
    let other = incident("missing", "billing", "", json!({}));
    post_incidents(&app, std::slice::from_ref(&other)).await;
    let all = plans(&app, "").await;
    assert_eq!(all[0]["incident_id"], other["id"]);
    assert_eq!(plans(&app, "state=open").await.len(), 1);
    assert_eq!(plans(&app, "service=api").await.len(), 1);
    assert_eq!(plans(&app, "limit=1").await.len(), 1);
}

#[actix_web::test]
async fn two_planners_on_one_database_act_as_one() {
    let synthesizer = Receiver::start().await;
    let (mut config, _state) = config_on(Backend::Postgres);
    config.peers = Peers {
        synthesizer: Some(synthesizer.url.clone()),
        ..Peers::default()
    };
    let (other, _other_state) = replica(&config);
    let a = spawn_with(config, PlannerConfig::for_tests()).await;
    let b = spawn_with(other, PlannerConfig::for_tests()).await;

    // A change through one is seen through the other, and a redelivery to the other is
    // recognised there.
    let open = incident("oom_killed", "api", "api-1", json!({"container": "api-1"}));
    post_incidents(&a, std::slice::from_ref(&open)).await;
    assert_eq!(plan_of(&b, &open).await, plan_of(&a, &open).await);
    let tally = post_incidents(&b, std::slice::from_ref(&open)).await;
    assert_eq!(tally["ignored"], 1, "{tally}");
    let tally = post_incidents(&b, &[revised(&open, 2, "resolved", "resolved")]).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    let plan = plan_of(&a, &open).await;
    assert_eq!(plan["revision"], 2);
    assert_eq!(plans(&a, "state=closed").await.len(), 1);

    // The same new incidents sent to both at once (a redelivery racing the first copy): one
    // plan per incident, created once, forwarded once.
    let many: Vec<Value> = (0..20)
        .map(|n| {
            let url = format!("http://svc{n}/health");
            incident(
                "probe_failed",
                &format!("svc{n}"),
                &url,
                json!({"url": url}),
            )
        })
        .collect();
    let (from_a, from_b) = tokio::join!(post_incidents(&a, &many), post_incidents(&b, &many));
    let created = from_a["created"].as_u64().unwrap() + from_b["created"].as_u64().unwrap();
    let ignored = from_a["ignored"].as_u64().unwrap() + from_b["ignored"].as_u64().unwrap();
    assert_eq!((created, ignored), (20, 20), "{from_a} {from_b}");
    assert_eq!(plans(&a, "limit=1000").await.len(), 21);
    assert_eq!(plans(&b, "state=open&limit=1000").await.len(), 20);
    let forwarded = synthesizer.wait_for("/v1/plans", 22).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(synthesizer.items("/v1/plans").len(), 22, "each change once");
    let plan_ids: HashSet<&str> = forwarded
        .iter()
        .map(|plan| plan["id"].as_str().unwrap())
        .collect();
    assert_eq!(plan_ids.len(), 21, "one plan per incident");
    // Each replica's gauge counts every plan in the database, whoever made it.
    eventually(
        "b's gauge to count a's plans",
        Duration::from_secs(20),
        || async {
            let text = metrics(&b).await;
            let open: f64 = ["P1", "P2", "P3", "P4"]
                .iter()
                .filter_map(|p| {
                    sample(
                        &text,
                        &format!("planner_plans{{priority=\"{p}\",state=\"open\"}}"),
                    )
                })
                .sum();
            (open == 20.0).then_some(())
        },
    )
    .await;
}

/// The outcome of `incident`'s restart step, once it has one.
async fn restart_outcome(app: &TestApp, incident: &Value) -> Value {
    eventually(
        "the restart step's outcome",
        Duration::from_secs(30),
        || async {
            let plan = plan_of(app, incident).await;
            plan["steps"]
                .as_array()?
                .iter()
                .find(|step| step["action"] == "restart_container")?
                .get("outcome")
                .cloned()
        },
    )
    .await
}

fn unhealthy(container: &str) -> Value {
    incident(
        "unhealthy",
        container,
        container,
        json!({"container": container, "failing_streak": 3}),
    )
}

fn crashed(container: &str) -> Value {
    incident(
        "crashed",
        container,
        container,
        json!({"container": container, "exit_code": 1, "restart_policy": "no"}),
    )
}

fn restarts(watcher: &Receiver, container: &str) -> usize {
    watcher
        .bodies(&format!("/containers/{container}/restart"))
        .len()
}

#[actix_web::test]
async fn one_replica_restarts_and_the_cooldown_holds_across_replicas() {
    // A stand-in watcher that answers 200 and counts the restarts it was asked for.
    let watcher = Receiver::start().await;
    let (mut config, _state) = config_on(Backend::Postgres);
    config.peers = Peers {
        watcher: Some(watcher.url.clone()),
        ..Peers::default()
    };
    let settings = remediating(Duration::from_secs(300), 3);
    let (other, _other_state) = replica(&config);
    let a = spawn_with(config, settings.clone()).await;
    let b = spawn_with(other, settings.clone()).await;

    // Two incidents about one container, one through each replica: one restart.
    let first = unhealthy("web-1");
    post_incidents(&a, std::slice::from_ref(&first)).await;
    let outcome = restart_outcome(&b, &first).await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    let second = crashed("web-1");
    post_incidents(&b, std::slice::from_ref(&second)).await;
    let outcome = restart_outcome(&a, &second).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("cooldown"),
        "{outcome}"
    );
    assert_eq!(restarts(&watcher, "web-1"), 1);

    // Whichever replica held the job, the one left runs it.
    a.shutdown().await.expect("a clean stop");
    let third = unhealthy("web-2");
    post_incidents(&b, std::slice::from_ref(&third)).await;
    let outcome = restart_outcome(&b, &third).await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    assert_eq!(restarts(&watcher, "web-2"), 1);
    assert_eq!(restarts(&watcher, "web-1"), 1);
}

#[actix_web::test]
async fn the_cooldown_and_the_attempt_limit_hold_across_a_restart() {
    let watcher = Receiver::start().await;
    let (mut config, _state) = config_on(Backend::Sqlite);
    config.peers = Peers {
        watcher: Some(watcher.url.clone()),
        ..Peers::default()
    };
    let settings = remediating(Duration::from_secs(300), 1);
    let app = spawn_with(config.clone(), settings.clone()).await;
    let sick = unhealthy("web-1");
    post_incidents(&app, std::slice::from_ref(&sick)).await;
    let outcome = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    app.shutdown().await.expect("a clean stop");

    let app = spawn_with(config, settings).await;
    // Another plan about the same container: within the cooldown.
    let other = crashed("web-1");
    post_incidents(&app, std::slice::from_ref(&other)).await;
    let outcome = restart_outcome(&app, &other).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("cooldown"),
        "{outcome}"
    );
    // The first plan, reopened with fresh steps: its one attempt is used.
    post_incidents(&app, &[revised(&sick, 2, "resolved", "resolved")]).await;
    post_incidents(&app, &[revised(&sick, 3, "open", "reopened")]).await;
    let outcome = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert_eq!(outcome["attempt"], 2);
    assert!(
        outcome["detail"].as_str().unwrap().contains("1 of 1"),
        "{outcome}"
    );
    assert_eq!(restarts(&watcher, "web-1"), 1);
}

async fn the_longest_closed_plans_are_pruned(backend: Backend) {
    let (config, _state) = config_on(backend);
    let settings = PlannerConfig {
        closed_plans_max: 2,
        ..PlannerConfig::for_tests()
    };
    let app = spawn_with(config, settings).await;
    let mut sent = vec![];
    for hour in ["03", "04", "05"] {
        let mut gone = revised(
            &incident("missing", &format!("svc{hour}"), "", json!({})),
            2,
            "resolved",
            "resolved",
        );
        gone["resolved_at"] = json!(format!("2026-01-02T{hour}:00:00Z"));
        post_incidents(&app, std::slice::from_ref(&gone)).await;
        sent.push(gone);
    }
    let kept = plans(&app, "state=closed").await;
    assert_eq!(kept.len(), 2, "CLOSED_PLANS_MAX");
    let id = sent[0]["id"].as_str().unwrap();
    let (status, _) = get(&app, &format!("/v1/plans/{id}")).await;
    assert_eq!(status, 404, "the longest closed went first");
    plan_of(&app, &sent[1]).await;
    plan_of(&app, &sent[2]).await;
    let text = metrics(&app).await;
    let closed: f64 = ["P1", "P2", "P3", "P4"]
        .iter()
        .filter_map(|p| {
            sample(
                &text,
                &format!("planner_plans{{priority=\"{p}\",state=\"closed\"}}"),
            )
        })
        .sum();
    assert_eq!(closed, 2.0, "{text}");
}

#[actix_web::test]
async fn the_longest_closed_plans_are_pruned_beyond_the_bound() {
    the_longest_closed_plans_are_pruned(Backend::Sqlite).await;
}

#[actix_web::test]
async fn the_longest_closed_plans_are_pruned_beyond_the_bound_on_postgres() {
    the_longest_closed_plans_are_pruned(Backend::Postgres).await;
}
