//! Typed helpers: start a watcher with explicit settings, talk JSON to it.

use std::path::Path;
use std::time::Duration;

use obs_core::{CoreConfig, Service};
use obs_testkit::{eventually, test_config, TestApp};
use serde_json::Value;
use watcher::{Watcher, WatcherConfig};

pub struct Running {
    pub app: TestApp,
    /// Kept so the state folder lives as long as the watcher.
    _state: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A watcher with `settings` (start from `WatcherConfig::for_tests()`) and fresh state.
pub async fn spawn(settings: WatcherConfig) -> Running {
    let (config, state) = test_config("watcher");
    let app = spawn_with(config, settings).await;
    Running { app, _state: state }
}

/// A watcher keeping its state in `state_dir` (to restart it on the same state).
pub async fn spawn_in(state_dir: &Path, settings: WatcherConfig) -> TestApp {
    spawn_with(CoreConfig::for_tests("watcher", state_dir), settings).await
}

pub async fn spawn_with(config: CoreConfig, settings: WatcherConfig) -> TestApp {
    TestApp::spawn(config, async move |service: &Service| {
        Watcher::with_config(service, settings).await
    })
    .await
    .expect("the watcher starts")
}

/// Status code and JSON body; fails the test if the body is not JSON.
pub async fn json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.expect("a body");
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("status {status}: not JSON ({error}): {text:?}"));
    (status, body)
}

pub async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    json(app.get(path).await).await
}

pub async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    json(response).await
}

pub async fn post_raw(
    app: &TestApp,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    json(response).await
}

pub async fn heartbeat(app: &TestApp, body: Value) {
    let (status, reply) = post(app, "/heartbeat", &body).await;
    assert_eq!(status, 200, "heartbeat {body}: {reply}");
    assert_eq!(reply, serde_json::json!({"status": "ok"}));
}

/// The service's entry in /status.
pub async fn service_status(app: &TestApp, service: &str) -> Option<Value> {
    let (_, status) = get(app, "/status").await;
    status["services"]
        .as_array()?
        .iter()
        .find(|entry| entry["service"] == service)
        .cloned()
}

/// Wait until `service` has the status `want` (up/down) in /status.
pub async fn wait_for_status(app: &TestApp, service: &str, want: &str) -> Value {
    eventually(
        &format!("{service} to be {want}"),
        Duration::from_secs(15),
        || async {
            service_status(app, service)
                .await
                .filter(|entry| entry["status"] == want)
        },
    )
    .await
}

/// Issues of `kind` for `service` in /issues?state=…
pub async fn issues(app: &TestApp, state: &str, kind: &str, service: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/issues?state={state}")).await;
    assert_eq!(status, 200, "{body}");
    body["issues"]
        .as_array()
        .expect("an issues array")
        .iter()
        .filter(|issue| issue["kind"] == kind && issue["service"] == service)
        .cloned()
        .collect()
}

pub async fn wait_for_issue(app: &TestApp, state: &str, kind: &str, service: &str) -> Value {
    eventually(
        &format!("a {state} {kind} issue for {service}"),
        Duration::from_secs(30),
        || async { issues(app, state, kind, service).await.into_iter().next() },
    )
    .await
}

pub async fn events_of(app: &TestApp, service: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/events?limit=1000&service={service}")).await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().expect("an events array").clone()
}

pub async fn metrics(app: &TestApp) -> String {
    app.get("/metrics")
        .await
        .text()
        .await
        .expect("metrics text")
}

/// The value of one exact series line (`name{labels}`), if present.
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}
