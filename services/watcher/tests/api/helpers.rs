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

/// The service's entry in /status (asked by name, so it is found in a fleet of any size).
pub async fn service_status(app: &TestApp, service: &str) -> Option<Value> {
    let (_, status) = get(app, &format!("/status?prefix={service}")).await;
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

/// Where a watcher keeps its state: a fresh folder, and for PostgreSQL a fresh database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct Place {
    pub state: tempfile::TempDir,
    pub database_url: Option<String>,
}

impl Place {
    pub fn new(backend: Backend) -> Place {
        let database_url = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                obs_testkit::postgres::shared()
                    .create_database()
                    .expect("a test database"),
            ),
        };
        Place {
            state: tempfile::tempdir().expect("a temporary folder"),
            database_url,
        }
    }

    /// Another replica's view of the same database: its own empty folder.
    pub fn replica(&self) -> Place {
        Place {
            state: tempfile::tempdir().expect("a temporary folder"),
            database_url: self.database_url.clone(),
        }
    }

    pub fn config(&self) -> CoreConfig {
        let mut config = CoreConfig::for_tests("watcher", self.state.path());
        config.database_url = self.database_url.clone();
        config
    }

    /// Run `sql` beside the watcher: a second connection to STATE_DIR/watcher.db, or psql.
    pub async fn run_sql(&self, sqlite: &str, postgres: &str) {
        match &self.database_url {
            None => {
                let location = obs_core::db::Location::Sqlite(self.state.path().join("watcher.db"));
                let db = obs_core::db::Db::open(&location, watcher::store::SCHEMA)
                    .await
                    .expect("the watcher's database opens beside it");
                let sql = sqlite.to_string();
                db.write(move |tx| tx.execute(&sql, &[]))
                    .await
                    .expect("the SQL runs");
            }
            Some(url) => {
                let database = url.rsplit('/').next().unwrap_or_default();
                obs_testkit::postgres::shared()
                    .psql(database, postgres)
                    .expect("the SQL runs");
            }
        }
    }

    /// Make every insert into `table` fail, as a full disk would.
    pub async fn fail_inserts(&self, table: &str) {
        let sqlite = format!(
            "CREATE TRIGGER disk_full BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(FAIL, 'disk full'); END"
        );
        let postgres = format!(
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
             CREATE TRIGGER disk_full BEFORE INSERT ON {table} \
             FOR EACH ROW EXECUTE FUNCTION disk_full()"
        );
        self.run_sql(&sqlite, &postgres).await;
    }

    pub async fn heal(&self, table: &str) {
        let postgres = format!("DROP TRIGGER disk_full ON {table}; DROP FUNCTION disk_full()");
        self.run_sql("DROP TRIGGER disk_full", &postgres).await;
    }
}

/// A watcher at `place` with `settings`, its outboxes posting to `downstream` if given.
pub async fn spawn_at(place: &Place, settings: WatcherConfig, downstream: Option<&str>) -> TestApp {
    let mut config = place.config();
    if let Some(url) = downstream {
        config.peers.archivist = Some(url.to_string());
        config.peers.curator = Some(url.to_string());
    }
    spawn_with(config, settings).await
}

/// The `error`/`message` of a 503 that says nothing was stored because of the fault.
pub fn assert_nothing_stored(status: u16, body: &Value) {
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(message.starts_with("nothing was stored ("), "{message}");
    assert!(message.contains("disk full"), "{message}");
    assert!(
        message.ends_with("sending the same request again is safe"),
        "{message}"
    );
}
