//! Goals: the services expected to exist, and what their absence means. An expected service
//! the watcher does not know becomes a `missing` incident; it resolves once the service
//! shows up (or is no longer expected).
//!
//! "Known" is what the watcher's `GET /status` lists (its heartbeating services) plus every
//! service that issues have come from. Without WATCHER_URL there is no way to tell, so no
//! check runs; when the watcher cannot be asked, the last verdict stands.

use std::collections::HashSet;
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::CancellationToken;
use obs_model::{ExpectedService, Goals, IncidentSource, IssueKind, Severity, WatcherStatus};

use crate::incidents::{Applied, Book, Sightings, Signal};
use crate::validate::{self, FieldError};
use crate::{Scope, Shared};

pub const MAX_GOALS: usize = 10_000;
const MAX_NOTE_CHARS: usize = 1024;

/// The goals and what the last check found.
#[derive(Debug, Default, Clone)]
pub struct GoalsState {
    pub services: Vec<ExpectedService>,
    pub missing: Option<Vec<String>>,
    pub checked_at: Option<DateTime<Utc>>,
    /// The revision of the goals row (0: none yet): what the next write expects to replace.
    pub revision: u64,
}

impl GoalsState {
    pub fn to_wire(&self) -> Goals {
        Goals {
            services: self.services.clone(),
            missing: self.missing.clone(),
            checked_at: self.checked_at,
        }
    }
}

/// Check a `PUT /v1/goals` body. `missing` and `checked_at` are what `GET` adds; they are
/// ignored, so what was read can be written back.
pub fn check(goals: Goals) -> Result<Vec<ExpectedService>, FieldError> {
    if goals.services.len() > MAX_GOALS {
        return Err(FieldError::new(
            "services",
            format!(
                "{} entries; at most {MAX_GOALS} are allowed (MAX_GOALS)",
                goals.services.len()
            ),
        ));
    }
    let mut seen = HashSet::new();
    for (index, goal) in goals.services.iter().enumerate() {
        let field = format!("services[{index}]");
        validate::name(&goal.service)
            .map_err(|why| FieldError::new(format!("{field}.service"), why))?;
        if !seen.insert(goal.service.as_str()) {
            return Err(FieldError::new(
                format!("{field}.service"),
                format!("'{}' is listed twice", goal.service),
            ));
        }
        if let Some(note) = &goal.note {
            validate::text(note, validate::limit!(MAX_NOTE_CHARS))
                .map_err(|why| FieldError::new(format!("{field}.note"), why))?;
        }
    }
    Ok(goals.services)
}

fn fingerprint(service: &str) -> String {
    format!("{service}/{}/", IssueKind::Missing.as_str())
}

fn signal(
    service: &str,
    severity: Severity,
    occurrence: String,
    now: DateTime<Utc>,
    found: bool,
) -> Signal {
    let (message, recommendation) = if found {
        (
            format!("expected service '{service}' is known again"),
            String::new(),
        )
    } else {
        (
            format!("expected service '{service}' is unknown to the watcher"),
            format!(
                "Deploy {service}, or check that it heartbeats to the watcher (MONITOR_ENDPOINT); \
                 if it is no longer expected, remove it from the goals (PUT /v1/goals)."
            ),
        )
    };
    Signal {
        fingerprint: fingerprint(service),
        source: IncidentSource::Goals,
        service: service.to_string(),
        kind: IssueKind::Missing,
        subject: String::new(),
        severity,
        title: format!("{service}: missing"),
        message,
        recommendation,
        facts: Default::default(),
        labels: Default::default(),
        annotations: Default::default(),
        occurrence,
        issue_id: None,
        sightings: Sightings::Total(1),
        first_seen: now,
        last_seen: now,
        resolved_at: found.then_some(now),
        incident_id: ulid::Ulid::new(),
    }
}

/// Open (or keep open) a `missing` incident for every expected service not in `known`, and
/// resolve those whose service is known again or no longer expected. Returns the missing.
pub fn reconcile(
    book: &mut Book,
    expected: &[ExpectedService],
    known: &HashSet<&str>,
    now: DateTime<Utc>,
    out: &mut Applied,
) -> Vec<String> {
    let mut missing = Vec::new();
    for goal in expected {
        if known.contains(goal.service.as_str()) {
            continue;
        }
        missing.push(goal.service.clone());
        // The same absence keeps its occurrence; a new one after a resolution gets its own.
        let occurrence = match book.latest_occurrence(&fingerprint(&goal.service)) {
            Some((incident, occurrence)) if incident.state.is_active() && !occurrence.resolved => {
                occurrence.key.clone()
            }
            _ => format!("missing@{}", now.timestamp_millis()),
        };
        book.apply(
            signal(&goal.service, goal.severity, occurrence, now, false),
            now,
            out,
        );
    }
    let still_missing: HashSet<&str> = missing.iter().map(String::as_str).collect();
    let found: Vec<(String, Severity)> = book
        .active_of_kind(IssueKind::Missing)
        .into_iter()
        .filter(|incident| {
            incident.source == IncidentSource::Goals
                && !still_missing.contains(incident.service.as_str())
        })
        .map(|incident| (incident.service.clone(), incident.severity))
        .collect();
    for (service, severity) in found {
        if let Some(key) = book
            .latest_occurrence(&fingerprint(&service))
            .map(|(_, occurrence)| occurrence.key.clone())
        {
            book.apply(signal(&service, severity, key, now, true), now, out);
        }
    }
    missing
}

/// Ask the watcher every GOALS_CHECK_INTERVAL (and at once when the goals change), while
/// this replica holds the goals lease (`held` is cancelled when it is lost or at shutdown).
pub async fn run(shared: Arc<Shared>, held: CancellationToken) {
    let Some(watcher_url) = shared.watcher_url.clone() else {
        // Not started without WATCHER_URL; should it be, it holds the lease idle.
        held.cancelled().await;
        return;
    };
    let status_url = format!("{watcher_url}/status");
    // For the logs: the URL may carry credentials.
    let shown_url = obs_core::redact::url(&status_url);
    let mut failing = false;
    loop {
        match check_once(&shared, &status_url).await {
            Ok(()) => {
                if failing {
                    tracing::info!(url = %shown_url, "goals: the watcher answers again");
                }
                failing = false;
            }
            Err(error) if crate::store::conflict(&error).is_some() => {
                // The goals were replaced meanwhile: the verdict was about the old list.
                tracing::debug!(error = format!("{error:#}"), "goals: checking again");
                continue;
            }
            Err(error) => {
                shared.metrics.goals_check_failures.inc();
                if !failing {
                    tracing::warn!(url = %shown_url, error = format!("{error:#}"), "goals: cannot ask the watcher or store the verdict; keeping the last verdict");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = held.cancelled() => return,
            _ = shared.goals_changed.notified() => {}
            _ = tokio::time::sleep(shared.config.goals_check_interval) => {}
        }
    }
}

/// Pages of the watcher's `/status` read for one check, at most: 1,000 services each, so
/// far more than any watcher's MAX_SERVICES.
const MAX_STATUS_PAGES: usize = 1000;

/// Every service the watcher hears from: `/status` page after page (its cursor), so no one
/// answer is larger than a page.
async fn watcher_services(shared: &Shared, status_url: &str) -> anyhow::Result<Vec<String>> {
    let mut services = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_STATUS_PAGES {
        let mut url = reqwest::Url::parse(status_url)
            .with_context(|| format!("WATCHER_URL: '{}'", obs_core::redact::url(status_url)))?;
        url.query_pairs_mut()
            .append_pair("limit", &obs_model::page::MAX_PAGE.to_string());
        if let Some(after) = &after {
            url.query_pairs_mut().append_pair("after", after);
        }
        let status: WatcherStatus = shared
            .http
            .get(url)
            .send()
            .await
            .map_err(obs_core::redact::reqwest_error)
            .context("GET /status")?
            .error_for_status()
            .map_err(obs_core::redact::reqwest_error)
            .context("GET /status")?
            .json()
            .await
            .map_err(obs_core::redact::reqwest_error)
            .context("reading the watcher's /status")?;
        services.extend(status.services.into_iter().map(|entry| entry.service));
        match status.services_next {
            Some(next) => after = Some(next),
            None => return Ok(services),
        }
    }
    anyhow::bail!("the watcher's /status had more than {MAX_STATUS_PAGES} pages")
}

async fn check_once(shared: &Arc<Shared>, status_url: &str) -> anyhow::Result<()> {
    let (expected, revision) = {
        let goals = shared.goals();
        (goals.services.clone(), goals.revision)
    };
    let services: Vec<String> = if expected.is_empty() {
        // Nothing to look for; still resolve what an earlier goal left open.
        Vec::new()
    } else {
        watcher_services(shared, status_url).await?
    };
    let now = Utc::now();
    let goals = expected.clone();
    let (missing, _) = shared
        .change(
            Scope::Everything,
            move |book, applied| {
                let from_issues: HashSet<String> = book
                    .services_from(IncidentSource::Watcher)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                let known: HashSet<&str> = services
                    .iter()
                    .chain(from_issues.iter())
                    .map(String::as_str)
                    .collect();
                reconcile(book, &goals, &known, now, applied)
            },
            move |tx, missing: &Vec<String>| {
                let verdict = Goals {
                    services: expected,
                    missing: Some(missing.clone()),
                    checked_at: Some(now),
                };
                crate::store::put_goals(tx, &verdict, revision).map(|_| ())
            },
        )
        .await?;
    shared.metrics.goals_missing.set(missing.len() as i64);
    let mut goals = shared.goals();
    goals.missing = Some(missing);
    goals.checked_at = Some(now);
    goals.revision = revision + 1;
    Ok(())
}
