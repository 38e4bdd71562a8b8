//! A plan per incident, for every kind, with the incident's facts in its steps; revisions
//! order the copies; resolving closes, reopening reopens with fresh steps.

use chrono::{Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::*;

fn no_unknowns(plan: &Value) {
    let text = plan.to_string();
    assert!(
        !text.contains("(unknown)"),
        "a placeholder went unfilled: {plan:#}"
    );
}

fn minutes_ago(minutes: i64) -> String {
    (Utc::now() - Duration::minutes(minutes)).to_rfc3339()
}

#[actix_web::test]
async fn every_kind_gets_a_plan_built_from_its_facts() {
    let app = spawn(planner::PlannerConfig::for_tests()).await;

    let missed = incident(
        "heartbeat_missed",
        "edge-cam01",
        "",
        json!({"last_seen": minutes_ago(6), "down_since": minutes_ago(5), "timeout_seconds": 30.0, "phase": "edge_loop"}),
    );
    let failed = incident(
        "service_failed",
        "nightly-backup",
        "",
        json!({"down_since": minutes_ago(90), "detail": "disk full on /backup"}),
    );
    let oom = incident(
        "oom_killed",
        "api-1",
        "api-1",
        json!({"container": "api-1", "image": "api:1.4", "signal": "oom_event",
               "signals": ["oom_event", "state_oom_killed"], "restarts": 2,
               "memory_limit_bytes": 268435456, "exit_code": 137}),
    );
    let looping = incident(
        "restart_loop",
        "worker-1",
        "worker-1",
        json!({"container": "worker-1", "image": "worker:2", "starts_in_window": 4,
               "window_seconds": 300, "restarts": 7, "restart_policy": "always", "exit_code": 1}),
    );
    let unhealthy = incident(
        "unhealthy",
        "web-1",
        "web-1",
        json!({"container": "web-1", "image": "web:3", "restarts": 0, "failing_streak": 3,
               "last_output": "curl: (7) connection refused"}),
    );
    let segfault = incident(
        "crashed",
        "codec-1",
        "codec-1",
        json!({"container": "codec-1", "image": "codec:9", "exit_code": 139, "restart_policy": "no", "restarts": 0}),
    );
    let crashed = incident(
        "crashed",
        "job-1",
        "job-1",
        json!({"container": "job-1", "image": "job:1", "exit_code": 1, "restart_policy": "no", "restarts": 0}),
    );
    let probe = incident(
        "probe_failed",
        "payments",
        "http://payments:8080/healthz",
        json!({"url": "http://payments:8080/healthz", "consecutive_failures": 3,
               "error": "status 503", "status_code": 503}),
    );
    let mut missing = incident("missing", "billing", "", json!({}));
    missing["source"] = json!("goals");
    let mut alert = incident(
        "alert",
        "api",
        "HighErrorRate",
        json!({"alertname": "HighErrorRate", "alert_fingerprint": "1a30ba71cca2921f",
               "starts_at": minutes_ago(20), "generator_url": "http://prometheus:9090/graph?g0.expr=rate",
               "instance": "api:8080", "job": "api"}),
    );
    alert["severity"] = json!("warning");
    alert["labels"] = json!({"alertname": "HighErrorRate", "instance": "api:8080", "job": "api", "severity": "warning"});
    alert["annotations"] = json!({"summary": "api answers 5xx", "runbook_url": "https://runbooks.example/high-error-rate"});

    let all = [
        &missed, &failed, &oom, &looping, &unhealthy, &segfault, &crashed, &probe, &missing, &alert,
    ];
    let tally = post_incidents(&app, &all.map(Value::clone)).await;
    assert_eq!(tally["created"], 10, "{tally}");

    let plan = plan_of(&app, &missed).await;
    assert_eq!(plan["rule"], "heartbeat_missed");
    assert_eq!(plan["priority"], "P1");
    assert_eq!(plan["state"], "open");
    let summary = plan["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("edge-cam01 stopped sending heartbeats 5 min"),
        "{summary}"
    );
    assert!(plan["steps"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("(timeout 30 s)"));
    assert!(
        titles(&plan).iter().any(|t| t.contains("edge_loop")),
        "{plan:#}"
    );
    no_unknowns(&plan);

    let plan = plan_of(&app, &failed).await;
    assert!(
        plan["summary"].as_str().unwrap().contains("1 h 30 min ago"),
        "{plan:#}"
    );
    assert_eq!(
        titles(&plan)[0],
        "Read what nightly-backup reported: disk full on /backup"
    );
    no_unknowns(&plan);

    let plan = plan_of(&app, &oom).await;
    assert_eq!(plan["rule"], "oom_killed");
    assert_eq!(
        plan["steps"][0]["title"],
        "Raise the memory limit of api-1 from 256 MiB to 512 MiB"
    );
    assert_eq!(plan["steps"][0]["action"], "raise_memory_limit");
    let reason = plan["steps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("signal: oom_event"), "{reason}");
    assert!(
        reason.contains("`docker update --memory 512m --memory-swap 512m api-1`"),
        "{reason}"
    );
    assert!(titles(&plan)
        .iter()
        .any(|t| t.contains("grows until it dies")));
    no_unknowns(&plan);

    let plan = plan_of(&app, &looping).await;
    assert_eq!(
        plan["summary"],
        "worker-1 is in a restart loop: 4 starts in 300 s"
    );
    let reasons = plan.to_string();
    assert!(
        reasons.contains("exit code was 1, a general application error"),
        "{plan:#}"
    );
    assert!(reasons.contains("Restart policy always restarts it forever (7 restarts so far)"));
    no_unknowns(&plan);

    let plan = plan_of(&app, &unhealthy).await;
    assert_eq!(plan["priority"], "P2");
    assert!(titles(&plan)[0].contains("curl: (7) connection refused"));
    let restart = plan["steps"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(restart["action"], "restart_container");
    assert_eq!(restart["safe"], true);
    assert_eq!(restart["target"], "web-1");
    assert!(
        restart.get("outcome").is_none(),
        "AUTO_REMEDIATE is off: {restart}"
    );
    no_unknowns(&plan);

    let plan = plan_of(&app, &segfault).await;
    assert_eq!(plan["rule"], "crashed_segfault");
    assert!(plan
        .to_string()
        .contains("Roll codec-1 back to the previous image if codec:9 is new"));
    no_unknowns(&plan);

    let plan = plan_of(&app, &crashed).await;
    assert_eq!(plan["rule"], "crashed");
    assert_eq!(
        plan["summary"],
        "job-1 crashed with exit code 1: a general application error: the program gave up on its own"
    );
    no_unknowns(&plan);

    let plan = plan_of(&app, &probe).await;
    assert_eq!(
        plan["summary"],
        "payments does not answer at http://payments:8080/healthz: status 503"
    );
    assert!(plan["steps"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("3 probes in a row failed (status 503)"));
    no_unknowns(&plan);

    let plan = plan_of(&app, &missing).await;
    assert_eq!(plan["priority"], "P2");
    assert_eq!(
        plan["summary"],
        "billing is expected but the watcher does not know it"
    );
    no_unknowns(&plan);

    let plan = plan_of(&app, &alert).await;
    assert_eq!(plan["rule"], "alert");
    assert_eq!(
        plan["priority"], "P2",
        "a warning alert is one step less urgent"
    );
    assert_eq!(plan["summary"], "Alert HighErrorRate is firing for api");
    assert_eq!(
        titles(&plan)[0],
        "Follow the runbook: https://runbooks.example/high-error-rate"
    );
    assert!(titles(&plan)
        .iter()
        .any(|t| t.contains("Check api (api:8080)")));
    no_unknowns(&plan);
}

#[actix_web::test]
async fn copies_are_ordered_by_revision_and_redeliveries_change_nothing() {
    let app = spawn(planner::PlannerConfig::for_tests()).await;
    let open = incident(
        "crashed",
        "api",
        "api-1",
        json!({"container": "api-1", "exit_code": 1}),
    );
    let acknowledged = revised(&open, 2, "acknowledged", "acknowledged");
    let resolved = revised(&open, 3, "resolved", "resolved");
    // The resolution overtakes the earlier copies.
    let tally = post_incidents(&app, std::slice::from_ref(&resolved)).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    let tally = post_incidents(&app, &[open.clone(), acknowledged.clone()]).await;
    assert_eq!(tally["ignored"], 2, "{tally}");
    let plan = plan_of(&app, &open).await;
    assert_eq!(plan["state"], "closed");
    assert_eq!(plan["incident"]["revision"], 3);
    let revision = plan["revision"].clone();
    // The same batch again, as an outbox retry would send it.
    let tally = post_incidents(&app, &[open.clone(), acknowledged, resolved]).await;
    assert_eq!(tally["ignored"], 3, "{tally}");
    assert_eq!(plan_of(&app, &open).await["revision"], revision);
    assert_eq!(plans(&app, "").await.len(), 1, "one plan per incident");
}

#[actix_web::test]
async fn resolving_closes_and_reopening_opens_with_fresh_steps() {
    let app = spawn(planner::PlannerConfig::for_tests()).await;
    let open = incident(
        "oom_killed",
        "api",
        "api-1",
        json!({"container": "api-1", "memory_limit_bytes": 134217728, "signal": "oom_event", "restarts": 1}),
    );
    post_incidents(&app, std::slice::from_ref(&open)).await;
    let first = plan_of(&app, &open).await;
    let plan_id = first["id"].as_str().unwrap().to_string();
    assert_eq!(first["incident_id"], open["id"]);

    // A later copy with bigger numbers: same plan, steps from the newest facts.
    let mut escalated = revised(&open, 2, "open", "escalated");
    escalated["facts"]["memory_limit_bytes"] = json!(268435456);
    let tally = post_incidents(&app, &[escalated]).await;
    assert_eq!(tally["updated"], 1, "{tally}");
    let (status, updated) = get(&app, &format!("/v1/plans/{plan_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        updated["steps"][0]["title"],
        "Raise the memory limit of api-1 from 256 MiB to 512 MiB"
    );
    assert_eq!(updated["revision"], 2);

    let tally = post_incidents(&app, &[revised(&open, 3, "resolved", "resolved")]).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    let closed = plan_of(&app, &open).await;
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["closed_at"], "2026-01-02T04:00:00Z");
    assert_eq!(plans(&app, "state=open").await.len(), 0);
    assert_eq!(plans(&app, "state=closed").await.len(), 1);

    let mut reopened = revised(&open, 4, "open", "reopened");
    reopened["facts"]["memory_limit_bytes"] = json!(536870912);
    let tally = post_incidents(&app, &[reopened]).await;
    assert_eq!(tally["reopened"], 1, "{tally}");
    let plan = plan_of(&app, &open).await;
    assert_eq!(plan["id"], plan_id, "the same plan");
    assert_eq!(plan["state"], "open");
    assert!(plan.get("closed_at").is_none(), "{plan:#}");
    assert_eq!(
        plan["steps"][0]["title"],
        "Raise the memory limit of api-1 from 512 MiB to 1 GiB"
    );
    assert_eq!(plan["incident"]["change"], "reopened");
}

#[actix_web::test]
async fn plans_list_newest_first_filtered_and_bounded() {
    let app = spawn(planner::PlannerConfig::for_tests()).await;
    let mut sent = vec![];
    for (index, service) in ["api", "db", "api"].iter().enumerate() {
        let one = incident(
            "probe_failed",
            service,
            &format!("http://{service}/{index}"),
            json!({"url": format!("http://{service}/{index}")}),
        );
        post_incidents(&app, std::slice::from_ref(&one)).await;
        sent.push(one);
    }
    post_incidents(&app, &[revised(&sent[1], 2, "resolved", "resolved")]).await;
    let all = plans(&app, "").await;
    let incidents: Vec<&Value> = all.iter().map(|p| &p["incident_id"]).collect();
    assert_eq!(
        incidents,
        [&sent[1]["id"], &sent[2]["id"], &sent[0]["id"]],
        "most recently changed first"
    );
    assert_eq!(plans(&app, "service=api").await.len(), 2);
    assert_eq!(plans(&app, "service=api&state=closed").await.len(), 0);
    assert_eq!(plans(&app, "state=closed").await[0]["service"], "db");
    assert_eq!(plans(&app, "limit=1").await.len(), 1);
    assert_eq!(plans(&app, "service=nobody").await.len(), 0);
}
