//! Typed helpers: a synthesizer with explicit settings, a real watcher and archivist to
//! feed it, plans as the planner sends them, and a webhook receiver that can go down and
//! come back on the same port.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use archivist::config::{ArchiveConfig, ArchiveLocation};
use chrono::{DateTime, Utc};
use obs_core::config::Peers;
use obs_core::{CoreConfig, Service};
use obs_model::{
    Incident, IncidentChange, IncidentSource, IncidentState, IssueKind, Plan, PlanState, PlanStep,
    Priority, Severity,
};
use obs_testkit::{eventually, test_config, TestApp};
use serde_json::{json, Value};
use synthesizer::{Synthesizer, SynthesizerConfig};
use ulid::Ulid;

pub struct Running {
    pub app: TestApp,
    /// Kept so the state folder lives as long as the server.
    _state: tempfile::TempDir,
}

impl std::ops::Deref for Running {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

/// A synthesizer with `settings` and `peers`, fresh state.
pub async fn spawn(settings: SynthesizerConfig, peers: Peers) -> Running {
    let (mut config, state) = test_config("synthesizer");
    config.peers = peers;
    let app = spawn_with(config, settings).await;
    Running { app, _state: state }
}

/// A synthesizer keeping its state in `state_dir` (to restart it on the same state).
pub async fn spawn_in(state_dir: &Path, settings: SynthesizerConfig, peers: Peers) -> TestApp {
    let mut config = CoreConfig::for_tests("synthesizer", state_dir);
    config.peers = peers;
    config.outbox.max_retry_delay = Duration::from_millis(300);
    spawn_with(config, settings).await
}

pub async fn spawn_with(mut config: CoreConfig, settings: SynthesizerConfig) -> TestApp {
    config.outbox.max_retry_delay = Duration::from_millis(300);
    TestApp::spawn(config, async move |service: &Service| {
        Synthesizer::with_config(service, settings).await
    })
    .await
    .expect("the synthesizer starts")
}

/// A real watcher (Docker off), with APP_NAME set.
pub async fn watcher() -> Running {
    let (config, state) = test_config("watcher");
    let mut settings = watcher::WatcherConfig::for_tests();
    settings.app_name = Some("Acme fleet".into());
    let app = TestApp::spawn(config, async move |service: &Service| {
        watcher::Watcher::with_config(service, settings).await
    })
    .await
    .expect("the watcher starts");
    Running { app, _state: state }
}

/// A real archivist on SQLite.
pub async fn archivist() -> Running {
    let (config, state) = test_config("archivist");
    let mut settings = ArchiveConfig::new(ArchiveLocation::Sqlite(
        state.path().join("archive.sqlite3"),
    ));
    settings.retention_days = 0;
    let app = TestApp::spawn(config, async move |service: &Service| {
        archivist::Archivist::with_config(service, settings).await
    })
    .await
    .expect("the archivist starts");
    Running { app, _state: state }
}

pub fn peers(watcher: Option<&TestApp>, archivist: Option<&TestApp>) -> Peers {
    Peers {
        watcher: watcher.map(|w| w.address.clone()),
        archivist: archivist.map(|a| a.address.clone()),
        ..Peers::default()
    }
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

pub async fn text(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = app.get(path).await;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, content_type, response.text().await.expect("a body"))
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

/// POST plans; they must be accepted. Returns the tally.
pub async fn post_plans(app: &TestApp, plans: &[Plan]) -> Value {
    let (status, tally) = post(app, "/v1/plans", &json!(plans)).await;
    assert_eq!(status, 200, "{tally}");
    tally
}

/// A plan as the planner sends it for a freshly opened incident: P1 for critical, P2 for
/// warning, P3 otherwise; three steps.
pub fn plan(service: &str, title: &str, severity: Severity) -> Plan {
    plan_at(service, title, severity, Utc::now())
}

pub fn plan_at(service: &str, title: &str, severity: Severity, opened: DateTime<Utc>) -> Plan {
    let incident_id = Ulid::new();
    let priority = match severity {
        Severity::Critical => Priority::P1,
        Severity::Warning => Priority::P2,
        Severity::Info => Priority::P3,
    };
    let step = |action: &str, title: &str, reason: &str, safe: bool| PlanStep {
        action: action.into(),
        title: title.into(),
        reason: reason.into(),
        safe,
        target: safe.then(|| format!("{service}-1")),
        outcome: None,
    };
    Plan {
        id: Ulid::new(),
        incident_id,
        service: service.into(),
        priority,
        state: PlanState::Open,
        rule: "crashed".into(),
        summary: format!("Bring {service} back"),
        steps: vec![
            step(
                "restart_container",
                &format!("Restart container {service}-1"),
                "it exited with code 1 and is not restarting by itself",
                true,
            ),
            step(
                "inspect_logs",
                &format!("Read the last 200 log lines of {service}-1"),
                "the exit code says the process failed, not the host",
                false,
            ),
            step(
                "check_recent_deploys",
                "Check what was deployed in the last hour",
                "crashes right after a deploy usually mean a bad release",
                false,
            ),
        ],
        created_at: opened,
        updated_at: opened,
        closed_at: None,
        incident: Incident {
            id: incident_id,
            fingerprint: format!("{service}/crashed/{service}-1"),
            source: IncidentSource::Watcher,
            service: service.into(),
            kind: IssueKind::Crashed,
            subject: format!("{service}-1"),
            severity,
            state: IncidentState::Open,
            title: title.into(),
            message: format!("{service}-1 exited with code 1"),
            recommendation: "Read its logs, then restart it".into(),
            first_seen: opened,
            last_seen: opened,
            updated_at: opened,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            comment: None,
            count: 3,
            reopened: 0,
            flapping: false,
            silenced: None,
            issue_ids: vec![],
            labels: Default::default(),
            annotations: Default::default(),
            facts: Default::default(),
            change: IncidentChange::Opened,
            notify: true,
            revision: 1,
        },
        revision: 1,
    }
}

/// The next copy of `plan` after its incident changed.
pub fn changed(plan: &Plan, change: IncidentChange) -> Plan {
    let mut next = plan.clone();
    let now = Utc::now();
    next.revision += 1;
    next.updated_at = now;
    next.incident.revision += 1;
    next.incident.change = change;
    next.incident.updated_at = now;
    next.incident.notify = matches!(
        change,
        IncidentChange::Opened
            | IncidentChange::Reopened
            | IncidentChange::Escalated
            | IncidentChange::Resolved
    );
    match change {
        IncidentChange::Resolved => {
            next.state = PlanState::Closed;
            next.closed_at = Some(now);
            next.incident.state = IncidentState::Resolved;
            next.incident.resolved_at = Some(now);
            next.incident.resolved_by = Some("watcher".into());
        }
        IncidentChange::Acknowledged => {
            next.incident.state = IncidentState::Acknowledged;
            next.incident.acknowledged_by = Some("alice".into());
        }
        IncidentChange::Escalated => next.incident.severity = Severity::Critical,
        _ => {}
    }
    next
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

/// What a [`Hook`] took: each request's JSON body and whether it carried Authorization.
type Taken = Arc<Mutex<Vec<(Value, bool)>>>;

/// A webhook receiver: a real HTTP server taking one JSON object per POST, that can be
/// stopped and started again on the same port.
pub struct Hook {
    pub port: u16,
    taken: Taken,
    handle: Option<actix_web::dev::ServerHandle>,
}

impl Hook {
    pub fn start() -> Hook {
        Self::serve(0, Taken::default())
    }

    fn serve(port: u16, taken: Taken) -> Hook {
        let app_taken = taken.clone();
        let server = HttpServer::new(move || {
            let taken = app_taken.clone();
            App::new().default_service(web::to(move |request: HttpRequest, body: web::Bytes| {
                let taken = taken.clone();
                async move {
                    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
                        return HttpResponse::BadRequest().body("invalid_payload");
                    };
                    let authorized = request.headers().contains_key("authorization");
                    taken.lock().unwrap().push((value, authorized));
                    HttpResponse::Ok().body("ok")
                }
            }))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("the webhook binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Hook {
            port,
            taken,
            handle: Some(handle),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(false).await;
        }
    }

    pub async fn restart(&mut self) {
        self.stop().await;
        *self = Self::serve(self.port, self.taken.clone());
    }

    pub fn messages(&self) -> Vec<Value> {
        self.taken
            .lock()
            .unwrap()
            .iter()
            .map(|(v, _)| v.clone())
            .collect()
    }

    pub fn any_authorized(&self) -> bool {
        self.taken.lock().unwrap().iter().any(|(_, a)| *a)
    }

    /// Wait until at least `count` messages arrived.
    pub async fn wait_for(&self, count: usize) -> Vec<Value> {
        eventually(
            &format!("{count} webhook messages"),
            Duration::from_secs(20),
            || async {
                let messages = self.messages();
                (messages.len() >= count).then_some(messages)
            },
        )
        .await
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        if let Some(handle) = self.handle.take() {
            actix_web::rt::spawn(async move { handle.stop(false).await });
        }
    }
}

/// A record of one change of issue `issue_id`, as the watcher archives it.
pub fn issue_record(
    issue_id: Ulid,
    service: &str,
    kind: &str,
    began: DateTime<Utc>,
    resolved: Option<DateTime<Utc>>,
) -> Value {
    json!({
        "id": Ulid::new().to_string(),
        "kind": "issue",
        "service": service,
        "ts": resolved.unwrap_or(began),
        "body": {
            "id": issue_id.to_string(),
            "kind": kind,
            "service": service,
            "subject": "",
            "severity": "critical",
            "state": if resolved.is_some() { "resolved" } else { "open" },
            "message": format!("{service} {kind}"),
            "recommendation": "look",
            "first_seen": began,
            "last_seen": resolved.unwrap_or(began),
            "resolved_at": resolved,
            "count": 1,
            "facts": {}
        }
    })
}

/// Archive `records` in the real archivist.
pub async fn archive(archivist: &TestApp, records: &[Value]) {
    let (status, body) = post(archivist, "/v1/records", &json!(records)).await;
    assert_eq!(status, 201, "{body}");
}
