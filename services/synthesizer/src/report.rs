//! The report: what the others know, composed once and then written out as JSON, Markdown
//! or the HTML status page. Pure: facts and plans in, a [`Report`] out.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use obs_model::page::Cursor;
use obs_model::{
    DownReason, Event, IncidentChange, IncidentState, Plan, PlanStep, Priority, ServiceState,
    Severity,
};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::sources::{Facts, SourceStatus, WatcherPages};
use crate::uptime::{self, Slot, Trouble, Uptime};

/// Resolved incidents listed, at most.
pub const RESOLVED_SHOWN: usize = 10;
/// Services listed on one page of the report unless `limit` says otherwise: a fleet of
/// 100,000 services is summarised (counts by health) and paged, never listed whole.
pub const DEFAULT_SERVICES_SHOWN: usize = 100;
/// The largest `limit` a report or page accepts.
pub const MAX_SERVICES_SHOWN: usize = obs_model::page::MAX_PAGE;
/// Open incidents listed in full (with their plans), most urgent first; the rest are counted
/// (`incidents_total`) and listed by `GET /v1/plans?state=open`.
pub const INCIDENTS_SHOWN: usize = 50;

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

/// How many services are in each state, all of them, not only the page shown.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCounts {
    pub total: usize,
    pub down: usize,
    pub degraded: usize,
    pub unknown: usize,
    pub operational: usize,
}

impl ServiceCounts {
    fn count(services: &[Known]) -> Self {
        let mut counts = ServiceCounts {
            total: services.len(),
            ..ServiceCounts::default()
        };
        for service in services {
            match service.health {
                Health::Down => counts.down += 1,
                Health::Degraded => counts.degraded += 1,
                Health::Unknown => counts.unknown += 1,
                Health::Operational => counts.operational += 1,
            }
        }
        counts
    }

    /// The watcher's services it counted and did not send (those past the page): down or
    /// operational as the watcher says.
    fn add_unfetched(&mut self, facts: &Facts) {
        let Some(status) = facts.status.ok() else {
            return;
        };
        let Some(all) = status.service_counts else {
            return;
        };
        let sent_down = status
            .services
            .iter()
            .filter(|service| service.status == ServiceState::Down)
            .count();
        let down = all.down.saturating_sub(sent_down);
        let up = all.up.saturating_sub(status.services.len() - sent_down);
        self.down += down;
        self.operational += up;
        self.total += down + up;
    }
}

/// Which services a report lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    /// 1 to [`MAX_SERVICES_SHOWN`].
    pub limit: usize,
    pub after: Option<Cursor>,
}

impl Page {
    /// A cursor of the report's services: ranks 0 (down) to 3 (operational).
    pub fn cursor(text: &str) -> Result<Cursor, String> {
        Cursor::parse(text, rank(Health::Operational))
    }

    /// The watcher's services this page can show: its down ones from the cursor on while
    /// the page starts among the down, and a page of up ones (operational, or degraded by an
    /// incident) from the start or, once the page is among the operational, from the cursor.
    pub fn watcher_pages(&self, active: &[Plan]) -> WatcherPages {
        let watcher = |state: ServiceState, name: &str| Cursor::new(state.rank(), name);
        let (down, up) = match &self.after {
            None => (Some(None), None),
            Some(after) if after.rank == rank(Health::Down) => {
                (Some(Some(watcher(ServiceState::Down, &after.name))), None)
            }
            Some(after) if after.rank == rank(Health::Operational) => {
                (None, Some(watcher(ServiceState::Up, &after.name)))
            }
            Some(_) => (None, None),
        };
        WatcherPages {
            down,
            limit: self.limit.clamp(1, MAX_SERVICES_SHOWN),
            up,
            named: named(active),
        }
    }
}

/// Characters of names one `/status?names=` carries, at most: well inside a request line.
const NAMED_CHARS: usize = 8 * 1024;

/// The services open incidents name, most urgent first, as many as one `/status?names=`
/// carries: the watcher says how each is doing wherever it sorts in its pages.
fn named(active: &[Plan]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut named = Vec::new();
    let mut chars = 0;
    for plan in active {
        let service = plan.incident.service.as_str();
        // A name the watcher could not hold is not one of its services (and would make the
        // whole request a 400); its characters need no escaping in a URL.
        let watchable = service.len() <= obs_model::limits::MAX_NAME_CHARS
            && service.chars().all(obs_model::limits::is_name_char);
        if service.is_empty() || !watchable || !seen.insert(service) {
            continue;
        }
        chars += service.len() + 1;
        if chars > NAMED_CHARS || named.len() >= MAX_SERVICES_SHOWN {
            break;
        }
        named.push(service.to_string());
    }
    named
}

impl Default for Page {
    fn default() -> Self {
        Page {
            limit: DEFAULT_SERVICES_SHOWN,
            after: None,
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
    /// Every service known, by state.
    pub service_counts: ServiceCounts,
    /// One page of them, trouble first (down, degraded, unknown, operational), then by name.
    pub services: Vec<ServiceReport>,
    /// The cursor of the next page (`?after=`), when there are more services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services_next: Option<String>,
    /// Open and acknowledged incidents with their plans, most urgent first; at most
    /// [`INCIDENTS_SHOWN`].
    pub incidents: Vec<IncidentReport>,
    /// Open and acknowledged incidents in all.
    pub incidents_total: usize,
    /// Incidents resolved in the uptime window, most recent first.
    pub resolved: Vec<IncidentReport>,
    /// The watcher's most recent events, newest first.
    pub events: Vec<Event>,
    pub window: UptimeWindow,
}

/// Compose a report from the peers' facts and the plans held: every service counted, one
/// page of them listed (with uptime bars), the most urgent incidents in full.
pub fn compose(
    facts: &Facts,
    active: &[Plan],
    resolved: &[Plan],
    page: &Page,
    now: DateTime<Utc>,
) -> Report {
    let incidents: Vec<IncidentReport> = active.iter().map(IncidentReport::from_plan).collect();
    let troubles = facts
        .archive
        .ok()
        .map(|window| uptime::troubles(&window.records, now));
    let by_service = troubles.as_deref().map(|troubles| {
        let mut by_service: HashMap<&str, Vec<&Trouble>> = HashMap::new();
        for trouble in troubles {
            by_service
                .entry(trouble.service.as_str())
                .or_default()
                .push(trouble);
        }
        by_service
    });
    let all = services(facts, &incidents, by_service.as_ref(), now);
    let mut service_counts = ServiceCounts::count(&all);
    service_counts.add_unfetched(facts);
    let overall = overall(&service_counts, &incidents);
    let start = match &page.after {
        Some(after) => all.partition_point(|service| !after.precedes(service.rank(), service.name)),
        None => 0,
    };
    let end = start.saturating_add(page.limit.max(1)).min(all.len());
    // Services the watcher did not send sort after the last it did: more follow this page.
    let more = end < all.len() || facts.status_more;
    let services_next = (more && end > start).then(|| all[end - 1].cursor().to_string());
    let mut services: Vec<ServiceReport> = all[start..end].iter().map(Known::report).collect();
    drop(all);
    // Bars only for the page: 96 slots for each of 100,000 services is what made the page 1 GB.
    if let Some(by_service) = &by_service {
        for service in &mut services {
            let mine = by_service
                .get(service.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            service.uptime = Some(uptime::uptime(mine, now));
        }
    }
    let incidents_total = incidents.len();
    let incidents = incidents.into_iter().take(INCIDENTS_SHOWN).collect();
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
        service_counts,
        services,
        services_next,
        incidents,
        incidents_total,
        resolved: resolved.iter().map(IncidentReport::from_plan).collect(),
        events,
        window: UptimeWindow {
            start: now - uptime::window(),
            end: now,
            slot_seconds: (uptime::window().num_seconds() as u64) / uptime::SLOTS as u64,
        },
    }
}

fn rank(health: Health) -> u8 {
    match health {
        Health::Down => 0,
        Health::Degraded => 1,
        Health::Unknown => 2,
        Health::Operational => 3,
    }
}

/// A service as the facts describe it, borrowing from them: 100,000 of these are built,
/// counted and sorted for every page, and only the page listed becomes [`ServiceReport`]s.
struct Known<'a> {
    name: &'a str,
    health: Health,
    via: &'static str,
    detail: Option<&'a str>,
    last_seen: Option<DateTime<Utc>>,
    open_incidents: usize,
}

impl Known<'_> {
    fn rank(&self) -> u8 {
        rank(self.health)
    }

    fn cursor(&self) -> Cursor {
        Cursor::new(self.rank(), self.name)
    }

    fn report(&self) -> ServiceReport {
        ServiceReport {
            name: self.name.to_string(),
            health: self.health,
            via: self.via.to_string(),
            detail: self.detail.map(str::to_string),
            last_seen: self.last_seen,
            open_incidents: self.open_incidents,
            uptime: None,
        }
    }
}

/// Every service anyone knows of: the watcher's heartbeating services and probe targets,
/// then those only an incident or the archive mentions; trouble first (down, degraded,
/// unknown, operational), then by name.
fn services<'a>(
    facts: &'a Facts,
    incidents: &'a [IncidentReport],
    troubles: Option<&HashMap<&'a str, Vec<&'a Trouble>>>,
    now: DateTime<Utc>,
) -> Vec<Known<'a>> {
    let heard = facts.status.ok().map_or(0, |status| status.services.len());
    let mut found: HashMap<&str, Known> = HashMap::with_capacity(heard);
    let blank = |name: &'a str, health: Health, via: &'static str| Known {
        name,
        health,
        via,
        detail: None,
        last_seen: None,
        open_incidents: 0,
    };
    if let Some(status) = facts.status.ok() {
        for service in &status.services {
            let mut known = blank(&service.service, Health::Operational, "heartbeat");
            known.last_seen = Some(service.last_seen);
            known.detail = service.phase.as_deref();
            if service.status == ServiceState::Down {
                known.health = Health::Down;
                known.detail = Some(match service.reason {
                    Some(DownReason::Failed) => "reported a failure",
                    _ => "heartbeats stopped",
                });
            }
            found.insert(&service.service, known);
        }
        for probe in &status.probes {
            if found.contains_key(probe.name.as_str()) {
                continue;
            }
            let mut known = blank(&probe.name, Health::Unknown, "probe");
            known.last_seen = probe.last_success;
            match probe.up {
                Some(true) => known.health = Health::Operational,
                Some(false) => {
                    known.health = Health::Down;
                    known.detail = Some(probe.last_error.as_deref().unwrap_or("probe failing"));
                }
                None => known.detail = Some("not probed yet"),
            }
            found.insert(&probe.name, known);
        }
    }
    for incident in incidents {
        let known = found
            .entry(&incident.service)
            .or_insert_with(|| blank(&incident.service, Health::Unknown, "incident"));
        known.open_incidents += 1;
        let from_incident = match incident.severity {
            Severity::Critical | Severity::Warning => Health::Degraded,
            Severity::Info => Health::Operational,
        };
        if known.health == Health::Operational && from_incident == Health::Degraded {
            known.health = Health::Degraded;
            known.detail = Some(&incident.title);
        }
        if known.health == Health::Unknown && known.detail.is_none() {
            known.detail = Some(&incident.title);
        }
    }
    if let Some(by_service) = troubles {
        for (service, mine) in by_service {
            let known = found
                .entry(service)
                .or_insert_with(|| blank(service, Health::Unknown, "archive"));
            if known.health == Health::Unknown && known.via == "archive" {
                known.health = if mine.iter().any(|t| t.end >= now && t.slot == Slot::Down) {
                    Health::Down
                } else {
                    Health::Unknown
                };
            }
        }
    }
    let mut services: Vec<Known> = found.into_values().collect();
    // Names are unique: an unstable sort gives one order.
    services.sort_unstable_by(|a, b| (a.rank(), a.name).cmp(&(b.rank(), b.name)));
    services
}

fn overall(counts: &ServiceCounts, incidents: &[IncidentReport]) -> Overall {
    let critical = incidents.iter().any(|i| i.severity == Severity::Critical);
    if critical || counts.down > 0 {
        return Overall::MajorOutage;
    }
    let warning = incidents.iter().any(|i| i.severity == Severity::Warning);
    if warning || counts.degraded > 0 {
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
    use crate::render::{html, markdown};
    use crate::sources::{ArchiveWindow, Fetched};
    use obs_model::{ServiceStatus, WatcherStatus};
    use std::time::{Duration, Instant};

    const FLEET: usize = 100_000;
    /// The issue's bound on one page or report.
    const MAX_BYTES: usize = 1 << 20;

    /// `size` heartbeating services, some of them down (named to sort last by name), and no
    /// archive trouble, as after a client posted 100,000 heartbeat names.
    fn fleet(size: usize, now: DateTime<Utc>) -> Facts {
        let services = (0..size)
            .map(|n| {
                let down = n % 40_000 == 7;
                ServiceStatus {
                    service: if down {
                        format!("zz-down-{n:06}")
                    } else {
                        format!("edge-cam{n:06}")
                    },
                    status: if down {
                        ServiceState::Down
                    } else {
                        ServiceState::Up
                    },
                    reason: None,
                    phase: None,
                    last_seen: now,
                    timeout_seconds: 60.0,
                    down_since: None,
                }
            })
            .collect();
        Facts {
            status: Fetched::Got(WatcherStatus {
                deployment_id: None,
                app_name: Some("edge".into()),
                services,
                service_counts: None,
                services_next: None,
                containers: Vec::new(),
                docker: false,
                open_issues: 0,
                timestamp: now,
                probes: Vec::new(),
            }),
            status_more: false,
            events: Fetched::Got(Vec::new()),
            archive: Fetched::Got(ArchiveWindow::default()),
        }
    }

    /// Release builds render this in a few tens of ms; unoptimised test builds get room.
    fn time_bound() -> Duration {
        if cfg!(debug_assertions) {
            Duration::from_secs(3)
        } else {
            Duration::from_millis(100)
        }
    }

    #[test]
    fn a_fleet_of_100000_services_is_summarised_trouble_first_and_paged() {
        let now = Utc::now();
        let facts = fleet(FLEET, now);
        let started = Instant::now();
        let report = compose(&facts, &[], &[], &Page::default(), now);
        let page = html::render(&report);
        let elapsed = started.elapsed();
        eprintln!(
            "100,000 services: composed and rendered in {elapsed:?}, {} bytes of HTML",
            page.len()
        );
        assert!(
            elapsed < time_bound(),
            "composed and rendered in {elapsed:?}"
        );
        assert!(page.len() < MAX_BYTES, "the page is {} bytes", page.len());
        assert_eq!(report.service_counts.total, FLEET);
        assert_eq!(report.service_counts.down, 3);
        assert_eq!(report.service_counts.operational, FLEET - 3);
        assert_eq!(report.overall, Overall::MajorOutage);
        assert_eq!(report.services.len(), DEFAULT_SERVICES_SHOWN);
        let first: Vec<&str> = report.services[..3]
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(
            first,
            ["zz-down-000007", "zz-down-040007", "zz-down-080007"]
        );
        assert!(report.services[3..]
            .iter()
            .all(|s| s.health == Health::Operational));
        assert!(page.contains("100000 services"), "the page counts them all");
        let down_at = page
            .find("zz-down-000007")
            .expect("the down service is on the page");
        assert!(down_at < page.find("edge-cam000000").unwrap_or(usize::MAX));

        for format in ["json", "md"] {
            let body = match format {
                "json" => serde_json::to_string(&report).unwrap(),
                _ => markdown::render(&report),
            };
            eprintln!("{format}: {} bytes", body.len());
            assert!(body.len() < MAX_BYTES, "{format}: {} bytes", body.len());
        }

        // The largest page a client may ask for is bounded too.
        let widest = Page {
            limit: MAX_SERVICES_SHOWN,
            after: None,
        };
        let report = compose(&facts, &[], &[], &widest, now);
        for (format, body) in [
            ("html", html::render(&report)),
            ("md", markdown::render(&report)),
            ("json", serde_json::to_string(&report).unwrap()),
        ] {
            eprintln!(
                "{format} at limit {MAX_SERVICES_SHOWN}: {} bytes",
                body.len()
            );
            assert!(
                body.len() < MAX_BYTES,
                "{format} at limit {MAX_SERVICES_SHOWN}: {} bytes",
                body.len()
            );
        }
    }

    #[test]
    fn the_cursor_pages_through_every_service_once() {
        let now = Utc::now();
        let size = 5_500;
        let facts = fleet(size, now);
        let mut page = Page {
            limit: MAX_SERVICES_SHOWN,
            after: None,
        };
        let mut seen = 0;
        let mut previous: Option<(u8, String)> = None;
        loop {
            let report = compose(&facts, &[], &[], &page, now);
            for service in &report.services {
                let key = (rank(service.health), service.name.clone());
                assert!(
                    previous.as_ref().is_none_or(|p| *p < key),
                    "in order, no repeats"
                );
                previous = Some(key);
            }
            seen += report.services.len();
            match report.services_next {
                Some(next) => page.after = Some(Page::cursor(&next).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, size);
    }

    #[test]
    fn cursors_of_the_report_have_its_four_ranks() {
        assert!(Page::cursor("3.61").is_ok());
        assert!(Page::cursor("4.61").is_err());
    }

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
