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
