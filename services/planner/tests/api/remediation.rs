//! AUTO_REMEDIATE against the machine's real Docker engine: a real watcher following it,
//! a real container, and the planner restarting it through the watcher's API — once per
//! cooldown per container, at most REMEDIATE_MAX_ATTEMPTS times per plan, with the outcome
//! written into the plan and forwarded. Without an engine these tests fail saying so.
//! Refusals (no WATCHER_URL, a wrong token) need no engine and are tested without one.

use std::time::Duration;

use obs_core::config::Peers;
use obs_core::Service;
use obs_testkit::docker::{docker_host, inspect, unique, Containers, Image};
use obs_testkit::{eventually, test_config, TestApp};
use planner::config::RemediationSettings;
use planner::PlannerConfig;
use serde_json::{json, Value};
use watcher::config::DockerMode;
use watcher::{Watcher, WatcherConfig};

use crate::helpers::*;

const TOKEN: &str = "fleet-secret";

async fn watcher(docker: bool, token: Option<&str>) -> (TestApp, tempfile::TempDir) {
    let (mut config, state) = test_config("watcher");
    config.api_token = token.map(str::to_string);
    let mut settings = WatcherConfig::for_tests();
    if docker {
        settings.docker.mode = DockerMode::On;
        settings.docker.host = docker_host();
    } else {
        settings.docker.mode = DockerMode::Off;
    }
    let app = TestApp::spawn(config, async move |service: &Service| {
        Watcher::with_config(service, settings).await
    })
    .await
    .expect("the watcher starts");
    if docker {
        eventually(
            "the watcher to follow the engine",
            Duration::from_secs(20),
            || async { (get(&app, "/status").await.1["docker"] == true).then_some(()) },
        )
        .await;
    }
    (app, state)
}

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

/// A planner whose API_TOKEN is `token` (the fleet shares one), wired to `peers`.
async fn planner_with_token(
    settings: PlannerConfig,
    peers: Peers,
    token: Option<&str>,
) -> (TestApp, tempfile::TempDir) {
    let (mut config, state) = test_config("planner");
    config.peers = peers;
    config.api_token = token.map(str::to_string);
    (spawn_with(config, settings).await, state)
}

async fn post_with_token(app: &TestApp, incidents: &[Value]) -> Value {
    let response = app
        .client
        .post(app.url("/v1/incidents"))
        .bearer_auth(TOKEN)
        .json(&json!(incidents))
        .send()
        .await
        .expect("an answer");
    let (status, body) = json(response).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// A container that runs until stopped, and stops at once on SIGTERM.
fn long_running(containers: &mut Containers, image: &Image) -> String {
    let name = unique("planner", "app");
    containers.run(
        &name,
        &[],
        image,
        &[
            "sh",
            "-c",
            "trap 'exit 0' TERM; while true; do sleep 1; done",
        ],
    );
    name
}

/// The watcher answers for a container once it has seen it, as it had before it raised the
/// incident in the first place. `/container` may show secrets: with the fleet's token.
async fn wait_known(watcher: &TestApp, container: &str) {
    eventually(
        &format!("the watcher to know {container}"),
        Duration::from_secs(20),
        || async {
            let response = watcher
                .client
                .get(watcher.url(&format!("/container?name={container}")))
                .bearer_auth(TOKEN)
                .send()
                .await
                .ok()?;
            (response.status() == 200).then_some(())
        },
    )
    .await;
}

fn started_at(container: &str) -> String {
    inspect(container, "{{.State.StartedAt}}")
}

/// The outcome of the plan's restart step, once it has one.
async fn restart_outcome(app: &TestApp, incident: &Value) -> (Value, Value) {
    eventually(
        "the restart step's outcome",
        Duration::from_secs(60),
        || async {
            let plan = plan_of(app, incident).await;
            let step = plan["steps"]
                .as_array()?
                .iter()
                .find(|step| step["action"] == "restart_container")?
                .clone();
            step.get("outcome").cloned().map(|outcome| (plan, outcome))
        },
    )
    .await
}

fn unhealthy(container: &str) -> Value {
    incident(
        "unhealthy",
        container,
        container,
        json!({"container": container, "failing_streak": 3, "last_output": "wedged"}),
    )
}

#[actix_web::test]
async fn a_safe_step_restarts_the_real_container_once_per_cooldown() {
    let image = Image::busybox("planner");
    let mut containers = Containers::default();
    let name = long_running(&mut containers, &image);
    let (watcher, _watcher_state) = watcher(true, Some(TOKEN)).await;
    let synthesizer = Receiver::start().await;
    let peers = Peers {
        watcher: Some(watcher.address.clone()),
        synthesizer: Some(synthesizer.url.clone()),
        ..Peers::default()
    };
    wait_known(&watcher, &name).await;
    let before = started_at(&name);

    // Off by default: the step is in the plan, nothing runs it.
    let (off, _off_state) =
        planner_with_token(PlannerConfig::for_tests(), peers.clone(), Some(TOKEN)).await;
    let sick = unhealthy(&name);
    post_with_token(&off, std::slice::from_ref(&sick)).await;
    let plan = plan_of(&off, &sick).await;
    let step = plan["steps"].as_array().unwrap().last().unwrap();
    assert_eq!(step["action"], "restart_container");
    assert_eq!(step["target"], name.as_str());
    assert!(step.get("outcome").is_none(), "{step}");
    drop(off);

    let (app, _state) =
        planner_with_token(remediating(Duration::from_secs(300), 3), peers, Some(TOKEN)).await;
    post_with_token(&app, std::slice::from_ref(&sick)).await;
    let (plan, outcome) = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "succeeded", "{plan:#}");
    assert_eq!(outcome["attempt"], 1);
    assert!(
        outcome["detail"].as_str().unwrap().contains(&name),
        "{outcome}"
    );
    assert_eq!(plan["revision"], 2, "the outcome is a change of the plan");
    let after = started_at(&name);
    assert_ne!(after, before, "the container was really restarted");
    assert_eq!(inspect(&name, "{{.State.Running}}"), "true");

    // The outcome travels downstream like any change.
    let forwarded = synthesizer.wait_for("/v1/plans", 2).await;
    let last = forwarded.last().unwrap();
    assert_eq!(last["revision"], 2);
    assert!(
        last.to_string().contains("\"status\":\"succeeded\""),
        "{last}"
    );

    // Another incident about the same container, within the cooldown: skipped, says why.
    let crashed = incident(
        "crashed",
        &name,
        &name,
        json!({"container": name, "exit_code": 1, "restart_policy": "no"}),
    );
    post_with_token(&app, std::slice::from_ref(&crashed)).await;
    let (_, outcome) = restart_outcome(&app, &crashed).await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("cooldown"),
        "{outcome}"
    );
    assert_eq!(started_at(&name), after, "not restarted again");

    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"succeeded\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"skipped\"}"),
        Some(1.0)
    );
}

#[actix_web::test]
async fn the_attempt_limit_holds_over_reopenings() {
    let image = Image::busybox("planner");
    let mut containers = Containers::default();
    let name = long_running(&mut containers, &image);
    let (watcher, _watcher_state) = watcher(true, None).await;
    let peers = Peers {
        watcher: Some(watcher.address.clone()),
        ..Peers::default()
    };
    wait_known(&watcher, &name).await;
    // No cooldown: only the limit can stop the second restart.
    let app = spawn_wired(remediating(Duration::ZERO, 1), peers).await;
    let sick = unhealthy(&name);
    post_incidents(&app, std::slice::from_ref(&sick)).await;
    let (_, outcome) = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "succeeded", "{outcome}");
    let after_first = started_at(&name);

    post_incidents(&app, &[revised(&sick, 2, "resolved", "resolved")]).await;
    post_incidents(&app, &[revised(&sick, 3, "open", "reopened")]).await;
    let (plan, outcome) = restart_outcome(&app, &sick).await;
    assert_eq!(plan["state"], "open");
    assert_eq!(outcome["status"], "skipped", "{plan:#}");
    assert_eq!(outcome["attempt"], 2);
    let detail = outcome["detail"].as_str().unwrap();
    assert!(
        detail.contains("1 of 1") && detail.contains("REMEDIATE_MAX_ATTEMPTS"),
        "{detail}"
    );
    assert_eq!(
        started_at(&name),
        after_first,
        "not restarted a second time"
    );
}

#[actix_web::test]
async fn refusals_are_written_into_the_plan_as_failures() {
    // A watcher that needs a token the planner does not have.
    let (watcher, _watcher_state) = watcher(false, Some(TOKEN)).await;
    let peers = Peers {
        watcher: Some(watcher.address.clone()),
        ..Peers::default()
    };
    let app = spawn_wired(remediating(Duration::from_secs(300), 3), peers).await;
    let sick = unhealthy("web-1");
    post_incidents(&app, std::slice::from_ref(&sick)).await;
    let (_, outcome) = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("answered 401"),
        "{outcome}"
    );

    // No watcher at all.
    let app = spawn(remediating(Duration::from_secs(300), 3)).await;
    let sick = unhealthy("web-2");
    post_incidents(&app, std::slice::from_ref(&sick)).await;
    let (_, outcome) = restart_outcome(&app, &sick).await;
    assert_eq!(outcome["status"], "failed", "{outcome}");
    assert!(
        outcome["detail"]
            .as_str()
            .unwrap()
            .contains("WATCHER_URL is not set"),
        "{outcome}"
    );
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"failed\"}"),
        Some(1.0)
    );
}
