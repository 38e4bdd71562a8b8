//! Typed helpers: a planner with explicit settings, JSON over real HTTP, and incidents as
//! the curator forwards them, with the facts the watcher and the curator put in.

use obs_core::config::Peers;
use obs_core::{CoreConfig, Service};
use obs_testkit::{test_config, TestApp};
use planner::{Planner, PlannerConfig};
use serde_json::{json, Value};
use ulid::Ulid;

pub use obs_testkit::receiver::Receiver;

pub struct Running {
    pub app: TestApp,
    /// Kept so the state folder lives as long as the planner.
    _state: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A planner with `settings` (start from `PlannerConfig::for_tests()`) and fresh state.
pub async fn spawn(settings: PlannerConfig) -> Running {
    spawn_wired(settings, Peers::default()).await
}

/// A planner that knows where its peers are (SYNTHESIZER_URL, ARCHIVIST_URL, WATCHER_URL).
pub async fn spawn_wired(settings: PlannerConfig, peers: Peers) -> Running {
    let (mut config, state) = test_config("planner");
    config.peers = peers;
    let app = spawn_with(config, settings).await;
    Running { app, _state: state }
}

pub async fn spawn_with(config: CoreConfig, settings: PlannerConfig) -> TestApp {
    TestApp::spawn(config, async move |service: &Service| {
        Planner::with_config(service, settings).await
    })
    .await
    .expect("the planner starts")
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

/// POST incidents; they must be accepted. Returns the tally.
pub async fn post_incidents(app: &TestApp, incidents: &[Value]) -> Value {
    let (status, tally) = post(app, "/v1/incidents", &json!(incidents)).await;
    assert_eq!(status, 200, "{tally}");
    tally
}

/// An incident as the curator forwards it: open, revision 1, with `facts`.
pub fn incident(kind: &str, service: &str, subject: &str, facts: Value) -> Value {
    json!({
        "id": Ulid::new().to_string(),
        "fingerprint": format!("{service}/{kind}/{subject}"),
        "source": if kind == "alert" { "alertmanager" } else { "watcher" },
        "kind": kind,
        "service": service,
        "subject": subject,
        "severity": "critical",
        "state": "open",
        "title": format!("{service} {kind}"),
        "message": format!("{service} has a {kind} incident"),
        "recommendation": "look at it",
        "first_seen": "2026-01-02T03:04:05Z",
        "last_seen": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z",
        "count": 1,
        "facts": facts,
        "change": "opened",
        "notify": true,
        "revision": 1
    })
}

/// The same incident at a later revision in another state.
pub fn revised(incident: &Value, revision: u64, state: &str, change: &str) -> Value {
    let mut copy = incident.clone();
    copy["revision"] = json!(revision);
    copy["state"] = json!(state);
    copy["change"] = json!(change);
    if state == "resolved" {
        copy["resolved_at"] = json!("2026-01-02T04:00:00Z");
        copy["resolved_by"] = json!("watcher");
    }
    copy
}

/// The plan made for `incident` (GET /v1/plans/{incident id}).
pub async fn plan_of(app: &TestApp, incident: &Value) -> Value {
    let id = incident["id"].as_str().expect("an incident id");
    let (status, plan) = get(app, &format!("/v1/plans/{id}")).await;
    assert_eq!(status, 200, "{plan}");
    plan
}

pub async fn plans(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = get(app, &format!("/v1/plans?{query}")).await;
    assert_eq!(status, 200, "{body}");
    body["plans"].as_array().expect("a plans array").clone()
}

pub fn titles(plan: &Value) -> Vec<String> {
    plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|step| step["title"].as_str().unwrap_or_default().to_string())
        .collect()
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

/// Where a planner under test keeps its state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// STATE_DIR/planner.db, the embedded default.
    Sqlite,
    /// A fresh database on the test PostgreSQL (DATABASE_URL).
    Postgres,
}

/// Config for a planner on `backend`, with a fresh STATE_DIR (and a fresh PostgreSQL
/// database): start several planners from clones of it to share one database.
pub fn config_on(backend: Backend) -> (CoreConfig, tempfile::TempDir) {
    let (mut config, state) = test_config("planner");
    if backend == Backend::Postgres {
        let url = obs_testkit::postgres::shared()
            .create_database()
            .expect("a fresh PostgreSQL database");
        config.database_url = Some(url);
    }
    (config, state)
}

/// A second connection to the planner's database, as an operator (or a fault) would have.
pub async fn open_db(config: &CoreConfig) -> obs_core::db::Db {
    let location = obs_core::db::Location::choose(
        config.database_url.as_deref(),
        &config.state_dir,
        "planner",
    );
    obs_core::db::Db::open(&location, planner::store::SCHEMA)
        .await
        .expect("the planner's database opens")
}

/// Make every write to `table` fail, as a full disk would, until [`heal`].
pub async fn break_table(db: &obs_core::db::Db, table: &'static str) {
    db.write(move |tx| {
        match tx.dialect() {
            obs_core::db::Dialect::Sqlite => {
                for event in ["INSERT", "UPDATE"] {
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
                        "CREATE TRIGGER fault_{table} BEFORE INSERT OR UPDATE ON {table} \
                         FOR EACH ROW EXECUTE FUNCTION fault()"
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
                for event in ["INSERT", "UPDATE"] {
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
