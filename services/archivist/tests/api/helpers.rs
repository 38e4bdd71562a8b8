//! One archivist per test, over real HTTP, on the backend the test asks for. PostgreSQL tests
//! share one throwaway server per test process (obs_testkit::postgres), each in a database of
//! its own.

use std::time::Duration;

use archivist::config::ArchiveConfig;
use archivist::{ArchiveLocation, Archivist};
use chrono::{DateTime, Utc};
use obs_core::{CoreConfig, Service};
use obs_testkit::TestApp;
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates, for each named `async fn test(backend: Backend)` in the enclosing module, one
/// test per backend: `<module>::sqlite::<test>` and `<module>::postgres::<test>`. Neither is
/// ever skipped: without PostgreSQL the postgres ones fail saying how to install it.
#[macro_export]
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[actix_web::test]
                async fn $test() {
                    super::$test($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[actix_web::test]
                async fn $test() {
                    super::$test($crate::helpers::Backend::Postgres).await
                }
            )*
        }
    };
}

/// A fresh, empty archive on `backend`, in a folder that lives as long as the returned guard.
pub fn fresh_location(backend: Backend) -> (ArchiveLocation, tempfile::TempDir) {
    let folder = tempfile::tempdir().expect("a temporary folder");
    let location = match backend {
        Backend::Sqlite => ArchiveLocation::Sqlite(folder.path().join("archivist.db")),
        Backend::Postgres => ArchiveLocation::Postgres(
            obs_testkit::postgres::shared()
                .create_database()
                .expect("a fresh PostgreSQL database"),
        ),
    };
    (location, folder)
}

pub struct TestArchive {
    pub app: TestApp,
    pub location: ArchiveLocation,
    _folders: Vec<tempfile::TempDir>,
}

/// An archivist with default settings on a fresh archive.
pub async fn spawn(backend: Backend) -> TestArchive {
    spawn_with(backend, |_, _| {}).await
}

/// An archivist on a fresh archive, with settings adjusted by `adjust`.
pub async fn spawn_with(
    backend: Backend,
    adjust: impl FnOnce(&mut ArchiveConfig, &mut CoreConfig),
) -> TestArchive {
    let (location, folder) = fresh_location(backend);
    let mut archive = spawn_at(location, adjust).await;
    archive._folders.push(folder);
    archive
}

/// An archivist on an existing archive (a restart, or a second replica).
pub async fn spawn_at(
    location: ArchiveLocation,
    adjust: impl FnOnce(&mut ArchiveConfig, &mut CoreConfig),
) -> TestArchive {
    let state = tempfile::tempdir().expect("a temporary folder");
    let app = try_start(location.clone(), state.path(), adjust)
        .await
        .expect("the archivist starts");
    TestArchive {
        app,
        location,
        _folders: vec![state],
    }
}

/// Start an archivist on `location` with `state` as its STATE_DIR; the error if it refuses.
pub async fn try_start(
    location: ArchiveLocation,
    state: &std::path::Path,
    adjust: impl FnOnce(&mut ArchiveConfig, &mut CoreConfig),
) -> anyhow::Result<TestApp> {
    let mut core = CoreConfig::for_tests(archivist::NAME, state);
    let mut config = ArchiveConfig::new(location);
    // The test records are dated 2024: with the default 30-day retention the purge at start
    // would race the test. Retention tests turn it back on.
    config.retention_days = 0;
    adjust(&mut config, &mut core);
    TestApp::spawn(core, async move |service: &Service| {
        Archivist::with_config(service, config).await
    })
    .await
}

impl TestArchive {
    /// A running `app` on `location` (the caller keeps its folders).
    pub fn new(app: TestApp, location: ArchiveLocation) -> TestArchive {
        TestArchive {
            app,
            location,
            _folders: Vec::new(),
        }
    }

    pub async fn post(&self, body: &Value) -> reqwest::Response {
        self.app
            .client
            .post(self.app.url("/v1/records"))
            .json(body)
            .send()
            .await
            .expect("POST /v1/records")
    }

    /// POST a batch that must be accepted; returns (stored, duplicates).
    pub async fn append(&self, records: &[Value]) -> (u64, u64) {
        let response = self.post(&Value::from(records.to_vec())).await;
        let status = response.status();
        let body: Value = response.json().await.expect("a JSON answer");
        assert_eq!(status, 201, "append answered {status}: {body}");
        (
            body["stored"].as_u64().expect("stored"),
            body["duplicates"].as_u64().expect("duplicates"),
        )
    }

    /// GET `path` that must answer 200 with JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.app.get(path).await;
        let status = response.status();
        let text = response.text().await.expect("a body");
        assert_eq!(status, 200, "GET {path} answered {status}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|error| panic!("GET {path}: {error}: {text}"))
    }

    /// Every record matching `query` (without limit/after), following `next` page by page.
    pub async fn all(&self, query: &str, limit: usize) -> Vec<Value> {
        let mut records = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..100_000 {
            let mut path = format!("/v1/records?limit={limit}");
            if !query.is_empty() {
                path.push('&');
                path.push_str(query);
            }
            if let Some(cursor) = &after {
                path.push_str(&format!("&after={cursor}"));
            }
            let page = self.get_json(&path).await;
            let batch = page["records"].as_array().expect("records").clone();
            assert!(batch.len() <= limit, "page larger than limit");
            records.extend(batch);
            match page["next"].as_str() {
                Some(cursor) => after = Some(cursor.to_string()),
                None => return records,
            }
        }
        panic!("paging did not end");
    }

    /// `GET /v1/export?query`, every line parsed.
    pub async fn export(&self, query: &str) -> Vec<Value> {
        let response = self.app.get(&format!("/v1/export?{query}")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"].to_str().unwrap(),
            "application/x-ndjson"
        );
        let text = response.text().await.expect("the export");
        text.lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON record"))
            .collect()
    }

    pub async fn stats(&self) -> Value {
        self.get_json("/v1/stats").await
    }

    pub async fn metrics(&self) -> String {
        self.app
            .get("/metrics")
            .await
            .text()
            .await
            .expect("metrics")
    }

    /// The value of the sample `series` (name and labels, as exposed) in /metrics; 0 when
    /// the series has not been touched yet.
    pub async fn metric(&self, series: &str) -> f64 {
        let metrics = self.metrics().await;
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().expect("a number"))
    }

    /// Stop as SIGTERM would; hands back the folders, to keep a SQLite archive for a restart.
    pub async fn stop(self) -> Vec<tempfile::TempDir> {
        self.app.shutdown().await.expect("a clean shutdown");
        self._folders
    }
}

/// A record with a fresh id.
pub fn record(kind: &str, service: &str, ts: DateTime<Utc>) -> Value {
    record_with_id(&ulid::Ulid::new().to_string(), kind, service, ts)
}

pub fn record_with_id(id: &str, kind: &str, service: &str, ts: DateTime<Utc>) -> Value {
    json!({
        "id": id,
        "kind": kind,
        "service": service,
        "ts": ts,
        "body": {"n": id, "note": "ünïcödé ✓"},
    })
}

/// 2024-05-01T00:00:00Z plus `seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_714_521_600 + seconds, 0).expect("a valid instant")
}

/// The order the archive promises: by ts, then id.
pub fn sorted(mut records: Vec<Value>) -> Vec<Value> {
    records.sort_by_key(|r| {
        (
            r["ts"]
                .as_str()
                .and_then(|ts| DateTime::parse_from_rfc3339(ts).ok())
                .expect("ts"),
            r["id"].as_str().expect("id").to_string(),
        )
    });
    records
}

/// `records` as the archive returns them: canonical JSON of obs_model::Record.
pub fn canonical(records: &[Value]) -> Vec<Value> {
    records
        .iter()
        .map(|r| {
            let record: obs_model::Record =
                serde_json::from_value(r.clone()).expect("a valid record");
            serde_json::to_value(record).expect("serialises")
        })
        .collect()
}

pub const PATIENCE: Duration = Duration::from_secs(20);

/// The database name at the end of a test PostgreSQL URL (`…/test_1_2?…`).
pub fn database_name(url: &str) -> String {
    let path = url.rsplit('/').next().unwrap_or_default();
    path.split('?').next().unwrap_or_default().to_string()
}

/// Run `sql` in the archive at `location`, beside the archivist (a second connection to the
/// SQLite file, or psql on the test server).
pub fn run_sql(location: &ArchiveLocation, sql: &str) -> String {
    match location {
        ArchiveLocation::Sqlite(path) => {
            let connection = rusqlite::Connection::open(path).expect("the archive file opens");
            connection
                .busy_timeout(Duration::from_secs(10))
                .expect("a busy timeout");
            connection.execute_batch(sql).expect("the SQL runs");
            String::new()
        }
        ArchiveLocation::Postgres(url) => obs_testkit::postgres::shared()
            .psql(&database_name(url), sql)
            .expect("the SQL runs"),
    }
}
