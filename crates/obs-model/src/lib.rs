//! Wire types shared by the roles and obsctl. Serde only: no I/O, no framework.
//!
//! Field names follow the original fleet where it had them (`event_type`, `phase`,
//! `timeout_seconds`, `recommendation`), so existing clients keep working.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// The archive's envelope: every record any role produces travels and is stored in this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable id; receivers ignore ids they already have, so retries never duplicate.
    pub id: Ulid,
    /// `event`, `issue`, `incident`, `plan`, `report`, …
    pub kind: String,
    pub service: String,
    pub ts: DateTime<Utc>,
    #[serde(default)]
    pub body: serde_json::Value,
}

/// How bad an issue or incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

// ---------------------------------------------------------------- watcher: input

/// `POST /heartbeat`. Unknown fields are ignored, as the original service did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeartbeatIn {
    pub service: String,
    /// Free text: where the service's pipeline is (`edge_loop`, `working_phase`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Overrides MONITOR_HEARTBEAT_TIMEOUT for this service from this beat on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<f64>,
}

/// `POST /events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventIn {
    pub service: String,
    /// Free text; `failure`/`success` with a `component` feed the task counters.
    pub event_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
}

// ---------------------------------------------------------------- watcher: output

/// Where an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventSource {
    /// Posted to `/events` or `/ping/...`.
    Api,
    /// A heartbeat state change seen by the checker (down, recovered).
    Heartbeat,
    /// The Docker engine's event stream.
    Docker,
    /// An HTTP probe of PROBE_TARGETS.
    Probe,
}

/// One thing that happened, as `GET /events` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub id: Ulid,
    pub timestamp: DateTime<Utc>,
    pub service: String,
    /// `start`, `die`, `oom`, `restart`, `stop`, `health_status`, `failure`, `down`, …
    pub event_type: String,
    pub source: EventSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// Docker events: the container's name, image and exit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
}

/// What kind of trouble an issue is. The curator's fingerprint is service + kind + subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    /// Heartbeats stopped (a missed beat, not an explicit failure).
    HeartbeatMissed,
    /// The service said so itself: `/ping/{service}/fail`.
    ServiceFailed,
    OomKilled,
    RestartLoop,
    Unhealthy,
    Crashed,
    ProbeFailed,
    /// Expected by the curator's goals, unknown to the watcher.
    Missing,
    /// From a Prometheus alert via Alertmanager.
    Alert,
}

impl IssueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueKind::HeartbeatMissed => "heartbeat_missed",
            IssueKind::ServiceFailed => "service_failed",
            IssueKind::OomKilled => "oom_killed",
            IssueKind::RestartLoop => "restart_loop",
            IssueKind::Unhealthy => "unhealthy",
            IssueKind::Crashed => "crashed",
            IssueKind::ProbeFailed => "probe_failed",
            IssueKind::Missing => "missing",
            IssueKind::Alert => "alert",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IssueState {
    Open,
    Resolved,
}

/// A detected problem, as `GET /issues` lists it and as the watcher sends it downstream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Issue {
    /// Stable per occurrence: a recovery of the same issue carries the same id.
    pub id: Ulid,
    pub kind: IssueKind,
    pub service: String,
    /// What inside the service: a container name, a probe target, a component; may be empty.
    #[serde(default)]
    pub subject: String,
    pub severity: Severity,
    pub state: IssueState,
    /// One line for a human.
    pub message: String,
    /// What to do about it.
    pub recommendation: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// How many times it was seen while open.
    pub count: u64,
    /// The facts a plan can use: exit_code, memory_limit_bytes, signal (which OOM signal
    /// fired), restarts, down_since, url, …
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
}

impl Issue {
    /// service + kind + subject: the same trouble in the same place.
    pub fn fingerprint(&self) -> String {
        format!("{}/{}/{}", self.service, self.kind.as_str(), self.subject)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    Up,
    Down,
}

/// Why a service is down: keep a missed beat apart from an explicit failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DownReason {
    Timeout,
    Failed,
}

/// A heartbeating service, as `GET /status` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub service: String,
    pub status: ServiceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DownReason>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    pub last_seen: DateTime<Utc>,
    pub timeout_seconds: f64,
    /// When it went down; absent while up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<DateTime<Utc>>,
}

/// A container, as `GET /containers` and `/container?name=` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub image: String,
    /// `running`, `exited`, `restarting`, …
    pub state: String,
    /// `healthy`, `unhealthy`, `starting`, or absent without a HEALTHCHECK.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<String>,
    pub restart_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// `GET /status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatcherStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    pub services: Vec<ServiceStatus>,
    pub containers: Vec<Container>,
    /// Whether the Docker engine is being followed right now.
    pub docker: bool,
    pub open_issues: usize,
    pub timestamp: DateTime<Utc>,
    /// The HTTP probes of PROBE_TARGETS (and, in obs-stack, of the other roles).
    #[serde(default)]
    pub probes: Vec<ProbeStatus>,
}

/// One HTTP probe target, as `GET /status` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeStatus {
    pub name: String,
    pub url: String,
    /// None until the first probe has answered or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub up: Option<bool>,
    pub consecutive_failures: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_duration_seconds: Option<f64>,
    /// Why the last probe failed: `status 503`, `timeout`, `connection refused`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// `GET /events`: the most recent events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventList {
    pub events: Vec<Event>,
}

/// `GET /issues`: open issues first, then resolved ones, each group newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IssueList {
    pub issues: Vec<Issue>,
}

/// `GET /containers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerList {
    /// Whether the Docker engine is being followed right now; if not, the list is the last known.
    pub docker: bool,
    pub containers: Vec<Container>,
}

/// `GET /logs?container=&lines=`: the container's last lines, stdout and stderr interleaved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerLogs {
    pub container: String,
    pub lines: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_the_design_writes_them() {
        let text = r#"{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","kind":"event","service":"api","ts":"2026-01-02T03:04:05Z","body":{"a":1}}"#;
        let record: Record = serde_json::from_str(text).unwrap();
        assert_eq!(record.kind, "event");
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
    }

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
    }

    #[test]
    fn seed_payloads_parse() {
        let beat: HeartbeatIn =
            serde_json::from_str(r#"{"service": "edge-cam01", "phase": "edge_loop"}"#).unwrap();
        assert_eq!(beat.phase.as_deref(), Some("edge_loop"));
        let event: EventIn = serde_json::from_str(
            r#"{"service": "edge-cam01", "event_type": "error", "detail": "model timeout"}"#,
        )
        .unwrap();
        assert_eq!(event.detail.as_deref(), Some("model timeout"));
    }

    #[test]
    fn issue_kinds_serialize_as_their_names() {
        for kind in [
            IssueKind::HeartbeatMissed,
            IssueKind::OomKilled,
            IssueKind::ProbeFailed,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
