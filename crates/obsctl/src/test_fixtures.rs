//! Sample watcher answers for the unit tests of `render` and `tui`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use obs_model::{
    Container, DownReason, Event, EventSource, Issue, IssueKind, IssueState, ServiceState,
    ServiceStatus, Severity, WatcherStatus,
};
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 12, 0, 0).unwrap()
}

pub fn service(
    name: &str,
    state: ServiceState,
    reason: Option<DownReason>,
    ago: i64,
) -> ServiceStatus {
    ServiceStatus {
        service: name.into(),
        status: state,
        reason,
        phase: Some("edge_loop".into()),
        last_seen: now() - Duration::seconds(ago),
        timeout_seconds: 30.0,
        down_since: (state == ServiceState::Down).then(|| now() - Duration::seconds(ago - 30)),
    }
}

pub fn container(name: &str, state: &str, exit_code: Option<i64>, oom_killed: bool) -> Container {
    Container {
        id: "0123456789ab".into(),
        name: name.into(),
        image: "busybox:test".into(),
        state: state.into(),
        health: None,
        restart_count: 2,
        exit_code,
        oom_killed,
        memory_limit_bytes: None,
        started_at: None,
        finished_at: None,
    }
}

pub fn watcher_status() -> WatcherStatus {
    WatcherStatus {
        deployment_id: Some("d-42".into()),
        app_name: Some("shop".into()),
        services: vec![
            service("api", ServiceState::Up, None, 3),
            service("worker", ServiceState::Down, Some(DownReason::Timeout), 45),
        ],
        service_counts: None,
        services_next: None,
        containers: vec![
            container("web", "running", None, false),
            container("hog", "exited", Some(137), true),
        ],
        docker: true,
        open_issues: 1,
        timestamp: now(),
        probes: Vec::new(),
    }
}

pub fn event(event_type: &str, service: &str, exit_code: Option<i64>) -> Event {
    Event {
        id: ulid::Ulid::new(),
        timestamp: now() - Duration::seconds(10),
        service: service.into(),
        event_type: event_type.into(),
        source: EventSource::Docker,
        detail: None,
        component: None,
        container: Some("hog".into()),
        image: None,
        exit_code,
    }
}

pub fn issue(severity: Severity, state: IssueState) -> Issue {
    Issue {
        id: ulid::Ulid::new(),
        kind: IssueKind::HeartbeatMissed,
        service: "worker".into(),
        subject: String::new(),
        severity,
        state,
        message: "no heartbeat from worker for 45s".into(),
        recommendation: "check that worker runs and can reach the watcher".into(),
        first_seen: now() - Duration::seconds(45),
        last_seen: now(),
        resolved_at: None,
        count: 3,
        facts: BTreeMap::new(),
    }
}

pub fn incident(severity: Severity, state: obs_model::IncidentState) -> obs_model::Incident {
    obs_model::Incident {
        id: ulid::Ulid::from_string("01JC3Z8Q2J6W7V2N5Y4M1K0P9R").unwrap(),
        fingerprint: "api/oom_killed/api-1".into(),
        source: obs_model::IncidentSource::Watcher,
        service: "api".into(),
        kind: IssueKind::OomKilled,
        subject: "api-1".into(),
        severity,
        state,
        title: "api-1 killed: out of memory".into(),
        message: "Container api-1 killed - out of memory (256 MiB)".into(),
        recommendation: "Raise the memory limit or find the leak".into(),
        first_seen: now() - Duration::minutes(30),
        last_seen: now() - Duration::seconds(20),
        updated_at: now() - Duration::seconds(20),
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        comment: None,
        count: 3,
        reopened: 0,
        flapping: false,
        silenced: None,
        issue_ids: Vec::new(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        facts: BTreeMap::from([
            ("exit_code".to_string(), serde_json::json!(137)),
            ("container".to_string(), serde_json::json!("api-1")),
        ]),
        change: obs_model::IncidentChange::Opened,
        notify: true,
        revision: 1,
    }
}

pub fn silence() -> obs_model::Silence {
    obs_model::Silence {
        id: ulid::Ulid::from_string("01JC40000000000000000000AB").unwrap(),
        matchers: vec![
            obs_model::Matcher {
                name: "service".into(),
                value: "api".into(),
                is_regex: false,
                is_equal: true,
            },
            obs_model::Matcher {
                name: "kind".into(),
                value: "oom.*".into(),
                is_regex: true,
                is_equal: true,
            },
        ],
        starts_at: now() - Duration::minutes(5),
        ends_at: now() + Duration::hours(2),
        comment: "deploying api".into(),
        created_by: Some("alice".into()),
        created_at: now() - Duration::minutes(5),
        state: obs_model::SilenceState::Active,
    }
}

pub fn plan(priority: obs_model::Priority) -> obs_model::Plan {
    let incident = incident(Severity::Critical, obs_model::IncidentState::Open);
    obs_model::Plan {
        id: ulid::Ulid::from_string("01JC4P0000000000000000000Q").unwrap(),
        incident_id: incident.id,
        service: "api".into(),
        priority,
        state: obs_model::PlanState::Open,
        rule: "oom_killed".into(),
        summary: "api-1 was killed for running out of memory (2 restarts so far)".into(),
        steps: vec![
            obs_model::PlanStep {
                action: "restart_container".into(),
                title: "Restart api-1".into(),
                reason: "It is not running".into(),
                safe: true,
                target: Some("api-1".into()),
                outcome: Some(obs_model::StepOutcome {
                    status: obs_model::StepStatus::Succeeded,
                    at: now() - Duration::seconds(5),
                    attempt: 1,
                    detail: "the watcher restarted it".into(),
                }),
            },
            obs_model::PlanStep {
                action: "raise_memory_limit".into(),
                title: "Raise the memory limit of api-1 from 256 MiB to 512 MiB".into(),
                reason: "It was killed at its 256 MiB limit".into(),
                safe: false,
                target: Some("api-1".into()),
                outcome: None,
            },
        ],
        created_at: now() - Duration::minutes(30),
        updated_at: now() - Duration::seconds(5),
        closed_at: None,
        incident,
        revision: 2,
    }
}
