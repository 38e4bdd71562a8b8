//! Typed helpers: a curator with explicit settings, JSON over real HTTP, issue and alert
//! bodies, and a receiving server that records what it is sent (the planner and the
//! archivist stand-in).

use std::path::Path;

use curator::{Curator, CuratorConfig};
use obs_core::config::Peers;
use obs_core::{CoreConfig, Service};
use obs_testkit::{test_config, TestApp};
use serde_json::{json, Value};
use ulid::Ulid;

pub struct Running {
    pub app: TestApp,
    /// Kept so the state folder lives as long as the curator.
    _state: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A curator with `settings` (start from `CuratorConfig::for_tests()`) and fresh state.
pub async fn spawn(settings: CuratorConfig) -> Running {
    let (config, state) = test_config("curator");
    let app = spawn_with(config, settings).await;
    Running { app, _state: state }
}

/// A curator that knows where its peers are (PLANNER_URL, ARCHIVIST_URL, WATCHER_URL).
pub async fn spawn_wired(settings: CuratorConfig, peers: Peers) -> Running {
    let (mut config, state) = test_config("curator");
    config.peers = peers;
    let app = spawn_with(config, settings).await;
    Running { app, _state: state }
}

/// A curator keeping its state in `state_dir` (to restart it on the same state).
pub async fn spawn_in(state_dir: &Path, settings: CuratorConfig) -> TestApp {
    spawn_with(CoreConfig::for_tests("curator", state_dir), settings).await
}

pub async fn spawn_with(config: CoreConfig, settings: CuratorConfig) -> TestApp {
    TestApp::spawn(config, async move |service: &Service| {
        Curator::with_config(service, settings).await
    })
    .await
    .expect("the curator starts")
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

pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    json(response).await
}

pub async fn post(app: &TestApp, path: &str, body: &Value) -> (u16, Value) {
    send(app, reqwest::Method::POST, path, Some(body)).await
}

pub async fn post_raw(app: &TestApp, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let response = app
        .client
        .post(app.url(path))
        .header("content-type", content_type)
        .body(body.to_string())
        .send()
        .await
        .unwrap_or_else(|error| panic!("POST {path}: {error}"));
    json(response).await
}

/// POST a batch of issues; it must be accepted. Returns the tally.
pub async fn post_issues(app: &TestApp, issues: &[Value]) -> Value {
    let (status, tally) = post(app, "/v1/issues", &json!(issues)).await;
    assert_eq!(status, 200, "{tally}");
    tally
}

/// An issue as the watcher sends it.
pub fn issue(id: Ulid, service: &str, kind: &str, subject: &str, count: u64) -> Value {
    json!({
        "id": id.to_string(),
        "kind": kind,
        "service": service,
        "subject": subject,
        "severity": "critical",
        "state": "open",
        "message": format!("{service} {kind}"),
        "recommendation": "look at it",
        "first_seen": "2026-01-02T03:04:05Z",
        "last_seen": format!("2026-01-02T03:{:02}:05Z", 4 + count.min(50)),
        "count": count,
        "facts": {"exit_code": 137, "memory_limit_bytes": 268435456}
    })
}

/// The same issue, recovered.
pub fn recovered(mut issue: Value) -> Value {
    issue["state"] = json!("resolved");
    issue["resolved_at"] = json!("2026-01-02T04:00:00Z");
    issue["last_seen"] = json!("2026-01-02T04:00:00Z");
    issue
}

/// Alertmanager's webhook payload (version 4), in the shape its documentation gives, with
/// one alert.
pub fn alert_payload(status: &str, alertname: &str, fingerprint: &str, ends_at: &str) -> Value {
    json!({
        "receiver": "curator",
        "status": status,
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "job": "api", "instance": "api:8080", "severity": "critical"},
            "annotations": {"summary": "api answers 5xx", "description": "5 % of api requests fail"},
            "startsAt": "2026-01-02T03:04:05.123Z",
            "endsAt": ends_at,
            "generatorURL": "http://prometheus:9090/graph?g0.expr=rate",
            "fingerprint": fingerprint
        }],
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "job": "api", "instance": "api:8080", "severity": "critical"},
        "commonAnnotations": {"summary": "api answers 5xx"},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\"}}"),
        "truncatedAlerts": 0
    })
}

/// Incidents from `GET /v1/incidents?<query>`.
pub async fn incidents(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/v1/incidents?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["incidents"]
        .as_array()
        .expect("an incidents array")
        .clone()
}

/// The one incident of `service`; fails if there is not exactly one.
pub async fn incident_of(app: &TestApp, service: &str) -> Value {
    let found = incidents(app, &format!("service={service}")).await;
    assert_eq!(found.len(), 1, "{found:#?}");
    found.into_iter().next().unwrap_or_default()
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

pub use obs_testkit::receiver::Receiver;

/// Where a curator under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// STATE_DIR/curator.db, the embedded default.
    Sqlite,
    /// A fresh database on the test PostgreSQL (DATABASE_URL).
    Postgres,
}

/// Config for a curator on `backend`, with a fresh STATE_DIR (and a fresh PostgreSQL
/// database): start several curators from clones of it to share one database.
pub fn config_on(backend: Backend) -> (CoreConfig, tempfile::TempDir) {
    let (mut config, state) = test_config("curator");
    if backend == Backend::Postgres {
        let url = obs_testkit::postgres::shared()
            .create_database()
            .expect("a fresh PostgreSQL database");
        config.database_url = Some(url);
    }
    (config, state)
}

/// A second curator on the same database as `config`, with a STATE_DIR of its own (as a
/// second pod has).
pub fn replica(config: &CoreConfig) -> (CoreConfig, tempfile::TempDir) {
    let (mut other, state) = test_config("curator");
    other.database_url = config.database_url.clone();
    other.peers = config.peers.clone();
    (other, state)
}

/// A second connection to the curator's database, as an operator (or a fault) would have.
pub async fn open_db(config: &CoreConfig) -> obs_core::db::Db {
    let location = obs_core::db::Location::choose(
        config.database_url.as_deref(),
        &config.state_dir,
        "curator",
    );
    obs_core::db::Db::open(&location, curator::store::SCHEMA)
        .await
        .expect("the curator's database opens")
}

/// Make every write to `table` fail, as a full disk would, until [`heal`].
pub async fn break_table(db: &obs_core::db::Db, table: &'static str) {
    db.write(move |tx| {
        match tx.dialect() {
            obs_core::db::Dialect::Sqlite => {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    tx.execute(
                        &format!(
                            "CREATE TRIGGER fault_{table}_{event} BEFORE {event} ON {table} \
                             BEGIN SELECT RAISE(FAIL, 'disk full'); END"
                        ),
                        &[],
                    )?;
                }
            }
            obs_core::db::Dialect::Postgres => {
                tx.execute(
                    "CREATE OR REPLACE FUNCTION fault() RETURNS trigger LANGUAGE plpgsql \
                     AS 'BEGIN RAISE EXCEPTION ''disk full''; END'",
                    &[],
                )?;
                tx.execute(
                    &format!(
                        "CREATE TRIGGER fault_{table} BEFORE INSERT OR UPDATE OR DELETE \
                         ON {table} FOR EACH ROW EXECUTE FUNCTION fault()"
                    ),
                    &[],
                )?;
            }
        }
        Ok(())
    })
    .await
    .expect("the fault is in place");
}

/// Undo [`break_table`].
pub async fn heal(db: &obs_core::db::Db, table: &'static str) {
    db.write(move |tx| {
        match tx.dialect() {
            obs_core::db::Dialect::Sqlite => {
                for event in ["INSERT", "UPDATE", "DELETE"] {
                    tx.execute(&format!("DROP TRIGGER fault_{table}_{event}"), &[])?;
                }
            }
            obs_core::db::Dialect::Postgres => {
                tx.execute(&format!("DROP TRIGGER fault_{table} ON {table}"), &[])?;
            }
        }
        Ok(())
    })
    .await
    .expect("the fault is removed");
}

/// A 503 saying nothing was stored, because of the fault.
pub fn assert_nothing_stored(status: u16, body: &Value) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("nothing was stored") && message.contains("disk full"),
        "{body}"
    );
}
