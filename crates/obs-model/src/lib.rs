//! Wire types shared by the roles and obsctl. Serde only: no I/O, no framework.
//!
//! Field names follow the original fleet where it had them (`event_type`, `phase`,
//! `timeout_seconds`, `recommendation`), so existing clients keep working.

use std::collections::BTreeMap;

pub mod dead_letters;
pub mod limits;
pub mod matcher;
pub mod page;
pub mod units;

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
    /// Kubernetes: a container's image cannot be pulled (ErrImagePull, ImagePullBackOff).
    ImagePullFailed,
    /// Kubernetes: the kubelet evicted the pod (its node ran short of a resource).
    Evicted,
    /// Kubernetes: the scheduler finds no node for the pod.
    Unschedulable,
}

impl IssueKind {
    /// The kind whose issue this one shares: a restart loop is a crash that keeps
    /// happening, so a container's crash and its loop are one issue (and one incident) that
    /// escalates, not two.
    pub fn family(self) -> IssueKind {
        match self {
            IssueKind::RestartLoop => IssueKind::Crashed,
            kind => kind,
        }
    }

    /// Whether an open issue of this kind stays what it is when `other`, of its family, is
    /// seen again: a crash inside a restart loop is one more sighting of the loop.
    pub fn supersedes(self, other: IssueKind) -> bool {
        self == IssueKind::RestartLoop && other == IssueKind::Crashed
    }

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
            IssueKind::ImagePullFailed => "image_pull_failed",
            IssueKind::Evicted => "evicted",
            IssueKind::Unschedulable => "unschedulable",
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
    /// See [`fingerprint`].
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.service, self.kind, &self.subject)
    }

    /// This issue as the curator takes it ([`limits`]): names, subject and texts fitted, facts
    /// bounded. A sender applies it so that nothing it produces is refused for shape; what
    /// fits is unchanged, and a cut value is the same at every update of the issue.
    pub fn fit_limits(mut self) -> Issue {
        use limits::{
            fit_name, fit_text, MAX_FACTS, MAX_NAME_CHARS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS,
        };
        self.service = fit_name(&self.service);
        self.subject = fit_text(&self.subject, MAX_SUBJECT_CHARS);
        self.message = fit_text(&self.message, MAX_TEXT_CHARS);
        self.recommendation = fit_text(&self.recommendation, MAX_TEXT_CHARS);
        let too_long = |key: &String| key.is_empty() || key.len() > MAX_NAME_CHARS;
        if self.facts.len() > MAX_FACTS || self.facts.keys().any(too_long) {
            let total = self.facts.len();
            let mut kept: BTreeMap<String, serde_json::Value> = self
                .facts
                .into_iter()
                .filter(|(key, _)| !too_long(key))
                .take(MAX_FACTS - 1)
                .collect();
            let omitted = total - kept.len();
            if omitted > 0 {
                kept.insert("facts_omitted".into(), serde_json::json!(omitted));
            }
            self.facts = kept;
        }
        if self.count == 0 {
            self.count = 1;
        }
        // A clock stepped back between two sightings: the curator refuses a last sighting
        // before the first, and first_seen must stay the same at every update of the issue.
        self.last_seen = self.last_seen.max(self.first_seen);
        self
    }
}

/// service + kind (its [`IssueKind::family`]) + subject: the same trouble in the same place.
pub fn fingerprint(service: &str, kind: IssueKind, subject: &str) -> String {
    format!("{service}/{}/{subject}", kind.family().as_str())
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

/// How many heartbeating services are in each state: all of them, not only a page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCounts {
    pub total: usize,
    pub up: usize,
    pub down: usize,
    /// Of the down ones, those that reported a failure (the rest stopped beating).
    pub failed: usize,
}

impl ServiceCounts {
    pub fn add(&mut self, state: ServiceState, reason: Option<DownReason>) {
        self.total += 1;
        match state {
            ServiceState::Up => self.up += 1,
            ServiceState::Down => {
                self.down += 1;
                if reason == Some(DownReason::Failed) {
                    self.failed += 1;
                }
            }
        }
    }
}

impl ServiceState {
    /// Its place in a page of services: trouble first.
    pub fn rank(self) -> u8 {
        match self {
            ServiceState::Down => 0,
            ServiceState::Up => 1,
        }
    }
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

/// `GET /status`: one page of the heartbeating services (down first, then by name), every
/// service counted, and everything else the watcher knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatcherStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_name: Option<String>,
    /// One page of them: down first, then by name; only those the filters asked for.
    pub services: Vec<ServiceStatus>,
    /// Every heartbeating service by state, whatever the page and filters (absent from
    /// watchers older than paging, which listed every service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_counts: Option<ServiceCounts>,
    /// The cursor of the next page (`?after=`), when more services match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_next: Option<String>,
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

// ---------------------------------------------------------------- curator

/// Where an incident's signals come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentSource {
    /// Issues from a watcher (`POST /v1/issues`).
    Watcher,
    /// Prometheus alerts through Alertmanager's webhook (`POST /v1/alertmanager`).
    Alertmanager,
    /// The curator's own goals: an expected service nobody knows (`missing`).
    Goals,
}

impl IncidentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSource::Watcher => "watcher",
            IncidentSource::Alertmanager => "alertmanager",
            IncidentSource::Goals => "goals",
        }
    }
}

/// An incident's lifecycle: open → acknowledged → resolved; a new occurrence reopens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncidentState {
    Open,
    Acknowledged,
    Resolved,
}

impl IncidentState {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentState::Open => "open",
            IncidentState::Acknowledged => "acknowledged",
            IncidentState::Resolved => "resolved",
        }
    }

    /// Open or acknowledged: the trouble is still there.
    pub fn is_active(self) -> bool {
        self != IncidentState::Resolved
    }
}

/// What the latest notable change of an incident was. Mere repeats (count, last_seen, the
/// latest message and facts) are not notable: they are kept, and travel with the next
/// notable change, but are not forwarded on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentChange {
    Opened,
    /// A new occurrence after it was resolved.
    Reopened,
    /// A repeat with a higher severity.
    Escalated,
    Acknowledged,
    Resolved,
    /// It started flapping: reopened too often within the flapping window.
    Flapping,
    /// It stopped flapping: no open/resolve for the settle period.
    Settled,
    /// A silence started to match it.
    Silenced,
    /// Its silence ended (expired or deleted).
    Unsilenced,
}

impl IncidentChange {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentChange::Opened => "opened",
            IncidentChange::Reopened => "reopened",
            IncidentChange::Escalated => "escalated",
            IncidentChange::Acknowledged => "acknowledged",
            IncidentChange::Resolved => "resolved",
            IncidentChange::Flapping => "flapping",
            IncidentChange::Settled => "settled",
            IncidentChange::Silenced => "silenced",
            IncidentChange::Unsilenced => "unsilenced",
        }
    }
}

/// The same trouble in the same place, deduplicated by the curator: what `GET /v1/incidents`
/// lists and what the curator forwards to the planner (`POST /v1/incidents`, a JSON array)
/// and, wrapped in a [`Record`] of kind `incident`, to the archivist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: Ulid,
    /// What repeats are recognised by: `service/kind/subject` for issues,
    /// `alertmanager/<fingerprint>` for alerts.
    pub fingerprint: String,
    pub source: IncidentSource,
    pub service: String,
    pub kind: IssueKind,
    /// A container, probe target or component; the alert's name for alerts; may be empty.
    #[serde(default)]
    pub subject: String,
    /// The highest severity seen since it (re)opened.
    pub severity: Severity,
    pub state: IncidentState,
    /// One short line: what and where.
    pub title: String,
    /// The latest signal's message.
    pub message: String,
    /// What to do about it.
    pub recommendation: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// When anything about it last changed, repeats included.
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    /// Who resolved it: a person (by hand) or the source (`watcher`, `alertmanager`, `goals`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The comment given with the latest acknowledge or resolve by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Sightings folded into it, across all its occurrences.
    pub count: u64,
    /// How often it reopened after being resolved.
    #[serde(default)]
    pub reopened: u64,
    /// Reopened too often lately: changes are recorded and forwarded with `notify: false`.
    #[serde(default)]
    pub flapping: bool,
    /// The id of the silence that matches it, if one does: changes are recorded and
    /// forwarded with `notify: false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced: Option<Ulid>,
    /// The watcher issues behind it, most recent last (the last few occurrences).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issue_ids: Vec<Ulid>,
    /// Alerts: the alert's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Alerts: the alert's annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// The facts a plan can use, from the latest signal: exit_code, memory_limit_bytes,
    /// down_since, url, generator_url, …
    #[serde(default)]
    pub facts: BTreeMap<String, serde_json::Value>,
    /// The latest notable change.
    pub change: IncidentChange,
    /// Whether that change should reach people: true when it opened, reopened, escalated or
    /// resolved something people have not heard about yet, and no silence or flapping holds
    /// it back.
    #[serde(default)]
    pub notify: bool,
    /// Grows with every change; of two copies of one incident, the higher revision is newer.
    pub revision: u64,
}

/// `GET /v1/incidents`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentList {
    pub incidents: Vec<Incident>,
}

/// One condition of a silence, as Alertmanager writes them. `name` is `service`, `kind`,
/// `subject`, `severity`, `source`, `fingerprint` or an alert label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Matcher {
    pub name: String,
    pub value: String,
    /// `value` is a regular expression, anchored at both ends.
    #[serde(default, rename = "isRegex", alias = "is_regex")]
    pub is_regex: bool,
    /// False turns the matcher around (`!=`, `!~`).
    #[serde(default = "yes", rename = "isEqual", alias = "is_equal")]
    pub is_equal: bool,
}

fn yes() -> bool {
    true
}

/// `POST /v1/silences`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceIn {
    pub matchers: Vec<Matcher>,
    /// Defaults to now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    Active,
}

/// A silence: incidents it matches are still recorded, marked `silenced`, and forwarded
/// with `notify: false` until it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Silence {
    pub id: Ulid,
    pub matchers: Vec<Matcher>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub comment: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub state: SilenceState,
}

/// `GET /v1/silences`: the silences that have not ended, soonest end first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceList {
    pub silences: Vec<Silence>,
}

/// A service that is expected to exist, and what its absence means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExpectedService {
    pub service: String,
    /// The severity of its `missing` incident.
    #[serde(default = "critical")]
    pub severity: Severity,
    /// Free text for people: who owns it, why it matters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn critical() -> Severity {
    Severity::Critical
}

/// `PUT /v1/goals` (the whole list) and `GET /v1/goals` (with what the last check found).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Goals {
    pub services: Vec<ExpectedService>,
    /// `GET` only: expected services the watcher did not know at the last check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing: Option<Vec<String>>,
    /// `GET` only: when the watcher was last asked successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<DateTime<Utc>>,
}

// ---------------------------------------------------------------- planner

/// How urgently a plan should be worked: P1 first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "P1",
            Priority::P2 => "P2",
            Priority::P3 => "P3",
            Priority::P4 => "P4",
        }
    }
}

/// A plan is open while its incident is active; a resolved incident closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanState {
    Open,
    Closed,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Open => "open",
            PlanState::Closed => "closed",
        }
    }
}

/// What became of a step the planner ran itself (auto-remediation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    /// Waiting for a person, or for auto-remediation to get to it.
    Pending,
    Succeeded,
    Failed,
    /// Not run: cooldown, attempt limit reached, or auto-remediation is off.
    Skipped,
}

/// One attempt at running a safe step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    pub status: StepStatus,
    pub at: DateTime<Utc>,
    /// Which attempt this was (1-based).
    pub attempt: u32,
    /// One line for a human: what happened (the watcher's answer, the error, why skipped).
    pub detail: String,
}

/// One thing to do, in order, with the reason for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanStep {
    /// A short machine name: `restart_container`, `inspect_logs`, `raise_memory_limit`, …
    pub action: String,
    /// The step for a human, with the incident's facts filled in.
    pub title: String,
    /// Why this step, from the incident's facts.
    pub reason: String,
    /// Only safe steps may run automatically (AUTO_REMEDIATE=1): `restart_container` with a
    /// container to restart, or `restart_pod` with a `namespace/pod` to restart.
    #[serde(default)]
    pub safe: bool,
    /// The container (or `namespace/pod`, or other target) the step acts on, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The latest outcome, when the planner ran (or skipped) it itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<StepOutcome>,
}

/// What to do about one incident: what the planner forwards to the synthesizer
/// (`POST /v1/plans`, a JSON array) and, wrapped in a [`Record`] of kind `plan`, to the
/// archivist. It carries the incident it was made for, so a reader needs nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub id: Ulid,
    pub incident_id: Ulid,
    pub service: String,
    pub priority: Priority,
    pub state: PlanState,
    /// The name of the rule that made it (a built-in one or one from RULES_FILE).
    pub rule: String,
    /// One line: what this plan is about.
    pub summary: String,
    pub steps: Vec<PlanStep>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// The incident as the planner last saw it (its `change` and `notify` included).
    pub incident: Incident,
    /// Grows with every change; of two copies of one plan, the higher revision is newer.
    pub revision: u64,
}

/// `GET /v1/plans`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanList {
    pub plans: Vec<Plan>,
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
    fn matchers_read_alertmanager_spelling_and_default_to_equal() {
        let matcher: Matcher =
            serde_json::from_str(r#"{"name": "service", "value": "a.*", "isRegex": true}"#)
                .unwrap();
        assert!(matcher.is_regex && matcher.is_equal);
        let snake: Matcher =
            serde_json::from_str(r#"{"name": "job", "value": "x", "is_equal": false}"#).unwrap();
        assert!(!snake.is_regex && !snake.is_equal);
    }

    #[test]
    fn incident_states_and_changes_serialize_as_their_names() {
        assert_eq!(
            serde_json::to_value(IncidentState::Acknowledged).unwrap(),
            IncidentState::Acknowledged.as_str()
        );
        assert_eq!(
            serde_json::to_value(IncidentChange::Unsilenced).unwrap(),
            IncidentChange::Unsilenced.as_str()
        );
        assert_eq!(
            serde_json::to_value(IncidentSource::Alertmanager).unwrap(),
            "alertmanager"
        );
        let goals: Goals = serde_json::from_str(r#"{"services": [{"service": "api"}]}"#).unwrap();
        assert_eq!(goals.services[0].severity, Severity::Critical);
    }

    /// Found by the property test `a_fitted_issue_is_always_accepted` (curator): an issue
    /// whose last sighting is before its first (a clock stepped back) was fitted unchanged
    /// and the curator refused it (`last_seen: is before first_seen`).
    #[test]
    fn fitting_orders_the_sightings_and_keeps_the_first() {
        let issue: Issue = serde_json::from_str(
            r#"{"id":"01JC0000000000000000000001","kind":"crashed","service":"api","severity":"warning","state":"open","message":"m","recommendation":"r","first_seen":"2026-01-02T03:25:55Z","last_seen":"2026-01-02T00:00:43Z","count":1}"#,
        )
        .unwrap();
        let fitted = issue.clone().fit_limits();
        assert_eq!(fitted.first_seen, issue.first_seen);
        assert_eq!(fitted.last_seen, issue.first_seen);
    }

    #[test]
    fn issue_kinds_serialize_as_their_names() {
        for kind in [
            IssueKind::HeartbeatMissed,
            IssueKind::OomKilled,
            IssueKind::ProbeFailed,
            IssueKind::ImagePullFailed,
            IssueKind::Evicted,
            IssueKind::Unschedulable,
        ] {
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
    }
}
