//! NOTIFY_CONFIG's routing on the real synthesizer: real receiving HTTP servers on port 0,
//! each a receiver of the tree, checking which got which incident, how the routes group and
//! time their messages, and what `GET /v1/notify/config` shows.

use std::time::{Duration, Instant};

use obs_model::Severity;
use obs_testkit::TestApp;
use serde_json::Value;
use synthesizer::notify::route::Routing;
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

/// The services a generic message carries, in order.
fn services(message: &Value) -> Vec<String> {
    message["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["incident"]["service"].as_str().unwrap().to_string())
        .collect()
}

fn all_services(hook: &Hook) -> Vec<String> {
    let mut all: Vec<String> = hook.messages().iter().flat_map(services).collect();
    all.sort();
    all
}

fn routed(yaml: &str) -> (SynthesizerConfig, tempfile::NamedTempFile) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), yaml).unwrap();
    let mut settings = SynthesizerConfig::for_tests();
    settings.notify_config =
        Some(Routing::load(file.path(), settings.notify_group).expect("the tree is valid"));
    (settings, file)
}

async fn post_plans(app: &TestApp, plans: &[obs_model::Plan]) {
    let response = app
        .client
        .post(app.url("/v1/plans"))
        .bearer_auth("fleet-secret")
        .json(plans)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn start(settings: SynthesizerConfig) -> TestApp {
    let mut config =
        obs_core::CoreConfig::for_tests("synthesizer", tempfile::tempdir().unwrap().keep());
    config.api_token = Some("fleet-secret".into());
    spawn_with(config, settings).await
}

#[actix_web::test]
async fn each_receiver_gets_the_incidents_its_routes_pick() {
    let (api_team, pager, fallback, chat) =
        (Hook::start(), Hook::start(), Hook::start(), Hook::start());
    let (settings, _file) = routed(&format!(
        r##"
route:
  receiver: fallback
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['service=~"api|gateway"']
      receiver: api-team
    - match: {{service: quiet}}
      receiver: nobody
receivers:
  - name: fallback
    webhook_configs: [{{url: "{fallback}"}}]
  - name: pager
    webhook_configs: [{{url: "{pager}"}}]
  - name: api-team
    webhook_configs: [{{url: "{api_team}"}}]
    slack_configs: [{{api_url: "{chat}", channel: "#api"}}]
    email_configs: [{{to: "api@example.test"}}]
  - name: nobody
"##,
        fallback = fallback.url(),
        pager = pager.url(),
        api_team = api_team.url(),
        chat = chat.url(),
    ));
    let app = start(settings).await;
    post_plans(
        &app,
        &[
            plan("api", "api-1 crashed", Severity::Critical),
            plan("gateway", "gateway slow", Severity::Warning),
            plan("db", "db down", Severity::Critical),
            plan("web", "web slow", Severity::Warning),
            plan("quiet", "quiet down", Severity::Warning),
        ],
    )
    .await;

    api_team.wait_for(1).await;
    pager.wait_for(1).await;
    fallback.wait_for(1).await;
    chat.wait_for(1).await;
    // Whatever might still come late would have come by now (the group window is 200 ms).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(all_services(&pager), ["api", "db"]);
    assert_eq!(all_services(&api_team), ["api", "gateway"]);
    assert_eq!(all_services(&fallback), ["web"]);
    let slack = chat.messages();
    assert_eq!(slack.len(), 1, "{slack:?}");
    assert_eq!(slack[0]["channel"], "#api");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.contains("api-1 crashed") && text.contains("gateway slow"),
        "{text}"
    );
    assert!(!text.contains("db down"), "{text}");

    // The effective tree, behind the token, the Slack URL masked whole.
    let path = app.url("/v1/notify/config");
    let refused = app.client.get(&path).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let view: Value = app
        .client
        .get(&path)
        .bearer_auth("fleet-secret")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["source"], "NOTIFY_CONFIG");
    assert_eq!(view["route"]["routes"][1]["path"], "route.routes[1]");
    assert_eq!(
        view["route"]["routes"][1]["matchers"][0],
        r##"service=~"api|gateway""##
    );
    assert_eq!(
        view["receivers"][2]["slack_configs"][0]["api_url"],
        "<secret>"
    );
    assert_eq!(view["receivers"][2]["not_delivered"][0], "email_configs");
    assert!(!view.to_string().contains(&chat.url()), "{view}");
    let openapi: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/notify/config"]["get"].is_object());
}

#[actix_web::test]
async fn routes_group_and_time_their_own_messages() {
    let (fast, slow) = (Hook::start(), Hook::start());
    let (settings, _file) = routed(&format!(
        r##"
route:
  receiver: fast
  group_by: [service]
  group_wait: 100ms
  group_interval: 2s
  routes:
    - matchers: ['service="batch"']
      receiver: slow
      group_wait: 2500ms
receivers:
  - name: fast
    webhook_configs: [{{url: "{fast}"}}]
  - name: slow
    webhook_configs: [{{url: "{slow}"}}]
"##,
        fast = fast.url(),
        slow = slow.url(),
    ));
    let app = start(settings).await;
    let began = Instant::now();
    post_plans(
        &app,
        &[
            plan("batch", "batch late", Severity::Warning),
            plan("api", "api down", Severity::Critical),
            plan("web", "web down", Severity::Critical),
        ],
    )
    .await;

    // group_by service: one message per service on the fast route, soon.
    let messages = fast.wait_for(2).await;
    assert!(began.elapsed() < Duration::from_millis(2000));
    let mut groups: Vec<Vec<String>> = messages.iter().map(services).collect();
    groups.sort();
    assert_eq!(groups, [vec!["api".to_string()], vec!["web".to_string()]]);
    assert!(slow.messages().is_empty(), "the slow route waits 2.5 s");

    // A second change in the api group waits for the group's 2 s interval; a new group
    // (cache) only for its 100 ms wait.
    let second = Instant::now();
    post_plans(
        &app,
        &[
            plan("api", "api worse", Severity::Critical),
            plan("cache", "cache down", Severity::Critical),
        ],
    )
    .await;
    let messages = fast.wait_for(3).await;
    assert_eq!(services(&messages[2]), ["cache"]);
    assert!(second.elapsed() < Duration::from_millis(1500));

    let messages = fast.wait_for(4).await;
    assert_eq!(services(&messages[3]), ["api"]);
    assert!(
        began.elapsed() >= Duration::from_millis(1900),
        "the api group sent again after {:?}",
        began.elapsed()
    );

    let slow_messages = slow.wait_for(1).await;
    assert!(began.elapsed() >= Duration::from_millis(2400));
    assert_eq!(services(&slow_messages[0]), ["batch"]);
}

/// The real binary: a bad NOTIFY_CONFIG is exit 2 and one line naming the file, the route
/// and the field; so is setting NOTIFY_WEBHOOKS beside it.
#[test]
fn a_bad_notify_config_stops_the_binary_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notify.yml");
    std::fs::write(
        &file,
        "route:\n  receiver: a\n  routes:\n    - receiver: a\n      routes:\n        - receiver: b\nreceivers: [{name: a}]\n",
    )
    .unwrap();
    let shown = file.display().to_string();
    for (webhooks, expected) in [
        (
            "",
            format!(
                "NOTIFY_CONFIG: {shown}: route.routes[0].routes[0].receiver: 'b' is not a receiver's name"
            ),
        ),
        (
            "http://127.0.0.1:9/x",
            "NOTIFY_CONFIG and NOTIFY_WEBHOOKS are both set".to_string(),
        ),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_synthesizer"))
            .env_clear()
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("STATE_DIR", dir.path())
            .env("NOTIFY_CONFIG", &file)
            .env("NOTIFY_WEBHOOKS", webhooks)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the synthesizer binary starts");
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the synthesizer did not stop on a bad NOTIFY_CONFIG");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(&expected), "{stderr}");
    }
}
