//! The report: what the others know, composed once and then written out as JSON, Markdown
//! or the HTML status page. Pure: facts and plans in, a [`Report`] out.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use obs_model::{
    DownReason, Event, IncidentChange, IncidentState, Plan, PlanStep, Priority, ServiceState,
    Severity,
};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::sources::{Facts, SourceStatus};
use crate::uptime::{self, Slot, Trouble, Uptime};

/// Resolved incidents listed, at most.
pub const RESOLVED_SHOWN: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Overall {
    Operational,
    Degraded,
    MajorOutage,
}

impl Overall {
    pub fn headline(self) -> &'static str {
        match self {
            Overall::Operational => "All systems operational",
            Overall::Degraded => "Degraded performance",
            Overall::MajorOutage => "Major outage",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Overall::Operational => "operational",
            Overall::Degraded => "degraded",
            Overall::MajorOutage => "major_outage",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Operational,
    Degraded,
    Down,
    /// Known only from an incident or the archive; nobody reports on it right now.
    Unknown,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Operational => "operational",
            Health::Degraded => "degraded",
            Health::Down => "down",
            Health::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceReport {
    pub name: String,
    pub health: Health,
    /// Where its state comes from: `heartbeat`, `probe`, `incident`, `archive`.
    pub via: String,
    /// One line for a human: why it is not operational, or its phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
    pub open_incidents: usize,
    /// Absent while the archive is unavailable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime: Option<Uptime>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanReport {
    pub id: Ulid,
    pub priority: Priority,
    pub summary: String,
    pub rule: String,
    pub steps: Vec<PlanStep>,
    pub revision: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub id: Ulid,
    pub service: String,
    pub title: String,
    pub severity: Severity,
    pub state: IncidentState,
    pub change: IncidentChange,
    pub message: String,
    pub recommendation: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<DateTime<Utc>>,
    pub count: u64,
    pub plan: PlanReport,
}

impl IncidentReport {
    pub fn from_plan(plan: &Plan) -> IncidentReport {
        let incident = &plan.incident;
        IncidentReport {
            id: incident.id,
            service: incident.service.clone(),
            title: incident.title.clone(),
            severity: incident.severity,
            state: incident.state,
            change: incident.change,
            message: incident.message.clone(),
            recommendation: incident.recommendation.clone(),
            first_seen: incident.first_seen,
            last_seen: incident.last_seen,
            acknowledged_by: incident.acknowledged_by.clone(),
            resolved_at: incident.resolved_at.or(plan.closed_at),
            count: incident.count,
            plan: PlanReport {
                id: plan.id,
                priority: plan.priority,
                summary: plan.summary.clone(),
                rule: plan.rule.clone(),
                steps: plan.steps.clone(),
                revision: plan.revision,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UptimeWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub slot_seconds: u64,
}

/// `GET /v1/report?format=json`, the digest's body, and what the page and Markdown show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    /// The watcher's APP_NAME, or "obs-fleet".
    pub title: String,
    pub overall: Overall,
    pub headline: String,
    pub sources: Vec<SourceStatus>,
    pub services: Vec<ServiceReport>,
    /// Open and acknowledged incidents with their plans, most urgent first.
    pub incidents: Vec<IncidentReport>,
    /// Incidents resolved in the uptime window, most recent first.
    pub resolved: Vec<IncidentReport>,
    /// The watcher's most recent events, newest first.
    pub events: Vec<Event>,
    pub window: UptimeWindow,
}

/// Compose a report from the peers' facts and the plans held.
pub fn compose(facts: &Facts, active: &[Plan], resolved: &[Plan], now: DateTime<Utc>) -> Report {
    let incidents: Vec<IncidentReport> = active.iter().map(IncidentReport::from_plan).collect();
    let troubles = facts
        .archive
        .ok()
        .map(|window| uptime::troubles(&window.records, now));
    let services = services(facts, &incidents, troubles.as_deref(), now);
    let overall = overall(&services, &incidents);
    let mut events = facts.events.ok().cloned().unwrap_or_default();
    events.reverse();
    let title = facts
        .status
        .ok()
        .and_then(|status| status.app_name.clone())
        .filter(|name| !name.trim().is_empty())
        .unwrap_or_else(|| "obs-fleet".into());
    Report {
        generated_at: now,
        title,
        overall,
        headline: overall.headline().into(),
        sources: facts.sources(),
        services,
        incidents,
        resolved: resolved.iter().map(IncidentReport::from_plan).collect(),
        events,
        window: UptimeWindow {
            start: now - uptime::window(),
            end: now,
            slot_seconds: (uptime::window().num_seconds() as u64) / uptime::SLOTS as u64,
        },
    }
}

/// Every service anyone knows of: the watcher's heartbeating services and probe targets,
/// then those only an incident or the archive mentions.
fn services(
    facts: &Facts,
    incidents: &[IncidentReport],
    troubles: Option<&[Trouble]>,
    now: DateTime<Utc>,
) -> Vec<ServiceReport> {
    let mut found: BTreeMap<String, ServiceReport> = BTreeMap::new();
    let blank = |name: &str, health: Health, via: &str| ServiceReport {
        name: name.to_string(),
        health,
        via: via.into(),
        detail: None,
        last_seen: None,
        open_incidents: 0,
        uptime: None,
    };
    if let Some(status) = facts.status.ok() {
        for service in &status.services {
            let mut report = blank(&service.service, Health::Operational, "heartbeat");
            report.last_seen = Some(service.last_seen);
            report.detail = service.phase.clone();
            if service.status == ServiceState::Down {
                report.health = Health::Down;
                report.detail = Some(match service.reason {
                    Some(DownReason::Failed) => "reported a failure".to_string(),
                    _ => "heartbeats stopped".to_string(),
                });
            }
            found.insert(service.service.clone(), report);
        }
        for probe in &status.probes {
            if found.contains_key(&probe.name) {
                continue;
            }
            let mut report = blank(&probe.name, Health::Unknown, "probe");
            report.last_seen = probe.last_success;
            match probe.up {
                Some(true) => report.health = Health::Operational,
                Some(false) => {
                    report.health = Health::Down;
                    report.detail = Some(
                        probe
                            .last_error
                            .clone()
                            .unwrap_or_else(|| "probe failing".into()),
                    );
                }
                None => report.detail = Some("not probed yet".into()),
            }
            found.insert(probe.name.clone(), report);
        }
    }
    for incident in incidents {
        let report = found
            .entry(incident.service.clone())
            .or_insert_with(|| blank(&incident.service, Health::Unknown, "incident"));
        report.open_incidents += 1;
        let from_incident = match incident.severity {
            Severity::Critical | Severity::Warning => Health::Degraded,
            Severity::Info => Health::Operational,
        };
        if report.health == Health::Operational && from_incident == Health::Degraded {
            report.health = Health::Degraded;
            report.detail = Some(incident.title.clone());
        }
        if report.health == Health::Unknown && report.detail.is_none() {
            report.detail = Some(incident.title.clone());
        }
    }
    if let Some(troubles) = troubles {
        for trouble in troubles {
            found
                .entry(trouble.service.clone())
                .or_insert_with(|| blank(&trouble.service, Health::Unknown, "archive"));
        }
        for report in found.values_mut() {
            let mine: Vec<&Trouble> = troubles
                .iter()
                .filter(|t| t.service == report.name)
                .collect();
            report.uptime = Some(uptime::uptime(&mine, now));
            if report.health == Health::Unknown && report.via == "archive" {
                report.health = if mine.iter().any(|t| t.end >= now && t.slot == Slot::Down) {
                    Health::Down
                } else {
                    Health::Unknown
                };
            }
        }
    }
    let mut services: Vec<ServiceReport> = found.into_values().collect();
    // Trouble first, then by name.
    services.sort_by(|a, b| {
        let rank = |s: &ServiceReport| match s.health {
            Health::Down => 0,
            Health::Degraded => 1,
            Health::Unknown => 2,
            Health::Operational => 3,
        };
        (rank(a), &a.name).cmp(&(rank(b), &b.name))
    });
    services
}

fn overall(services: &[ServiceReport], incidents: &[IncidentReport]) -> Overall {
    let critical = incidents.iter().any(|i| i.severity == Severity::Critical);
    if critical || services.iter().any(|s| s.health == Health::Down) {
        return Overall::MajorOutage;
    }
    let warning = incidents.iter().any(|i| i.severity == Severity::Warning);
    if warning || services.iter().any(|s| s.health == Health::Degraded) {
        return Overall::Degraded;
    }
    Overall::Operational
}

/// "3 s", "12 min", "5 h", "2 d": how long ago, for people.
pub fn ago(then: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let seconds = (now - then).num_seconds().max(0);
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=86_399 => {
            let hours = seconds / 3600;
            let minutes = (seconds % 3600) / 60;
            if minutes == 0 || hours >= 10 {
                format!("{hours} h")
            } else {
                format!("{hours} h {minutes} min")
            }
        }
        _ => format!("{} d", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_people_say_them() {
        let now = Utc::now();
        assert_eq!(ago(now - chrono::Duration::seconds(5), now), "5 s");
        assert_eq!(ago(now - chrono::Duration::minutes(12), now), "12 min");
        assert_eq!(ago(now - chrono::Duration::minutes(95), now), "1 h 35 min");
        assert_eq!(ago(now - chrono::Duration::hours(30), now), "1 d");
        assert_eq!(ago(now + chrono::Duration::seconds(5), now), "0 s");
    }
}
