//! HTTP probes: every PROBE_INTERVAL, GET each target; PROBE_FAILURE_THRESHOLD failures in a
//! row open a `probe_failed` issue, the next success resolves it.
//!
//! Targets come from PROBE_TARGETS and from [`ProbeTargets::add`], a handle taken from the
//! watcher before it is bound: obs-stack learns the other roles' ports only after binding
//! them, then registers their `/healthz`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use obs_core::CancellationToken;
use obs_model::{EventSource, IssueKind, ProbeStatus, Severity};
use tokio::sync::Notify;

use crate::config::ProbeSettings;
use crate::issues::Detection;
use crate::Shared;

/// The probe targets, shared between the watcher and whoever adds targets later.
#[derive(Clone, Default)]
pub struct ProbeTargets {
    inner: Arc<TargetsInner>,
}

#[derive(Default)]
struct TargetsInner {
    /// name → target; BTreeMap so /status lists them in order.
    targets: Mutex<BTreeMap<String, Target>>,
    added: Notify,
}

struct Target {
    /// What is probed, credentials and all.
    url: String,
    /// What is shown: its `url` is redacted (`obs_core::redact`), as in every issue, event
    /// and log line about the target.
    status: ProbeStatus,
}

/// A probe URL: http or https, with a host.
pub fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    let shown = obs_core::redact::url(url);
    let parsed =
        reqwest::Url::parse(url).map_err(|error| format!("'{shown}' is not a URL: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(format!(
            "'{shown}' must be an http:// or https:// URL with a host"
        ));
    }
    Ok(parsed)
}

impl ProbeTargets {
    /// Probe `url` as `name` from now on (replacing a target of the same name). The prober
    /// checks new targets at once rather than at its next tick.
    pub fn add(&self, name: &str, url: &str) -> anyhow::Result<()> {
        crate::validate::name(name).map_err(|why| anyhow::anyhow!("probe name '{name}': {why}"))?;
        parse_url(url).map_err(anyhow::Error::msg)?;
        let mut targets = self.lock();
        targets.insert(
            name.to_string(),
            Target {
                url: url.to_string(),
                status: ProbeStatus {
                    name: name.to_string(),
                    url: obs_core::redact::url(url),
                    up: None,
                    consecutive_failures: 0,
                    last_checked: None,
                    last_success: None,
                    last_duration_seconds: None,
                    last_error: None,
                },
            },
        );
        drop(targets);
        self.inner.added.notify_one();
        Ok(())
    }

    pub fn statuses(&self) -> Vec<ProbeStatus> {
        self.lock()
            .values()
            .map(|target| target.status.clone())
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Target>> {
        // A panic while holding this lock cannot leave the map half-updated in a way that
        // matters (each entry is replaced whole), so a poisoned lock is still usable.
        self.inner
            .targets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The prober: one pass every PROBE_INTERVAL (and one as soon as targets are added).
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let settings = shared.config.probes.clone();
    // Built at the first target: a watcher with nothing to probe never sets up an HTTP client
    // (its TLS roots and connection pool are most of what it would cost).
    let mut client = None;
    let mut ticker = tokio::time::interval(settings.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
            _ = shared.probes.inner.added.notified() => {}
        }
        if shared.probes.lock().is_empty() {
            continue;
        }
        if client.is_none() {
            client = match build_client(&settings) {
                Ok(client) => Some(client),
                Err(error) => {
                    tracing::error!(%error, "cannot build the HTTP client; probes are off");
                    return;
                }
            };
        }
        if let Some(client) = &client {
            probe_all(&shared, client).await;
        }
    }
}

fn build_client(settings: &ProbeSettings) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(settings.timeout)
        .redirect(reqwest::redirect::Policy::limited(3))
        .user_agent(concat!("obs-fleet-watcher/", env!("CARGO_PKG_VERSION")))
        .build()
}

async fn probe_all(shared: &Arc<Shared>, client: &reqwest::Client) {
    let targets: Vec<(String, String)> = shared
        .probes
        .lock()
        .iter()
        .map(|(name, target)| (name.clone(), target.url.clone()))
        .collect();
    let results =
        futures_util::future::join_all(targets.into_iter().map(|(name, url)| async move {
            let outcome = probe(client, &url).await;
            (name, url, outcome)
        }))
        .await;
    for (name, url, outcome) in results {
        settle(shared, &name, &url, outcome).await;
    }
}

struct Outcome {
    duration: Duration,
    /// None on success; otherwise why it failed.
    error: Option<String>,
    status_code: Option<u16>,
}

async fn probe(client: &reqwest::Client, url: &str) -> Outcome {
    let started = Instant::now();
    let result = client.get(url).send().await;
    let duration = started.elapsed();
    match result {
        Ok(response) if response.status().is_success() => Outcome {
            duration,
            error: None,
            status_code: Some(response.status().as_u16()),
        },
        Ok(response) => Outcome {
            duration,
            error: Some(format!("status {}", response.status().as_u16())),
            status_code: Some(response.status().as_u16()),
        },
        Err(error) => Outcome {
            duration,
            error: Some(describe(error)),
            status_code: None,
        },
    }
}

/// A short, stable reason: what an operator reads in /status and in the issue.
fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        "timeout".into()
    } else if error.is_connect() {
        "connection failed".into()
    } else if error.is_redirect() {
        "too many redirects".into()
    } else {
        // Without the URL (reqwest's text names it): the target may carry credentials, and
        // the issue names the target anyway.
        let mut text = error.without_url().to_string();
        text.truncate(200);
        text
    }
}

/// Record one probe's outcome; open or resolve the issue when the state flips.
async fn settle(shared: &Arc<Shared>, name: &str, url: &str, outcome: Outcome) {
    let threshold = shared.config.probes.failure_threshold;
    let metrics = &shared.metrics;
    metrics
        .probe_duration
        .with_label_values(&[name])
        .set(outcome.duration.as_secs_f64());
    let now = Utc::now();
    let (failures, last_success) = {
        let mut targets = shared.probes.lock();
        // Removed or replaced meanwhile: this result is about an old target.
        let Some(status) = targets
            .get_mut(name)
            .filter(|target| target.url == url)
            .map(|target| &mut target.status)
        else {
            return;
        };
        status.last_checked = Some(now);
        status.last_duration_seconds = Some(outcome.duration.as_secs_f64());
        match &outcome.error {
            None => {
                status.consecutive_failures = 0;
                status.last_success = Some(now);
                status.last_error = None;
                status.up = Some(true);
            }
            Some(error) => {
                status.consecutive_failures = status.consecutive_failures.saturating_add(1);
                status.last_error = Some(error.clone());
                if status.consecutive_failures >= threshold || status.up.is_none() {
                    // Down once the threshold is reached; a target that has never answered
                    // is shown down at once, but the issue still waits for the threshold.
                    status.up = Some(false);
                }
            }
        }
        (status.consecutive_failures, status.last_success)
    };
    let result = if outcome.error.is_none() {
        "success"
    } else {
        "failure"
    };
    metrics.probes.with_label_values(&[name, result]).inc();
    metrics
        .probe_success
        .with_label_values(&[name])
        .set(i64::from(outcome.error.is_none()));

    // Everything below is seen by people: the target as shown, never its credentials.
    let url = obs_core::redact::url(url);
    let url = url.as_str();
    match outcome.error {
        None => {
            if shared.issue_is_open(name, IssueKind::ProbeFailed, url) {
                let mut event = shared.new_event(name, "probe_recovered", EventSource::Probe);
                event.detail = Some(format!("{url} answers again"));
                shared.record_event(event).await;
                let mut facts = BTreeMap::new();
                facts.insert(
                    "recovered_after_ms".into(),
                    serde_json::json!(outcome.duration.as_millis() as u64),
                );
                shared
                    .resolve(name, IssueKind::ProbeFailed, url, facts)
                    .await;
            }
        }
        // Raised once, when the threshold is reached: a target down for an hour is one
        // issue, not one update per probe; /status shows the running count meanwhile.
        Some(error) if failures == threshold => {
            let mut event = shared.new_event(name, "probe_failed", EventSource::Probe);
            event.detail = Some(format!("{url}: {error}"));
            shared.record_event(event).await;
            let mut detection =
                Detection::new(IssueKind::ProbeFailed, name, url, Severity::Critical)
                    .message(format!(
                        "{name}: GET {url} failed {failures} times in a row ({error})"
                    ))
                    .recommend(format!(
                        "Check that {name} is running and reachable from the watcher at {url}: \
                     look at its logs and its /readyz, and at the network path; if it was \
                     moved, update PROBE_TARGETS."
                    ))
                    .fact("url", url)
                    .fact("consecutive_failures", failures)
                    .fact("error", error.as_str());
            if let Some(code) = outcome.status_code {
                detection = detection.fact("status_code", code);
            }
            if let Some(last_success) = last_success {
                detection = detection.fact("last_success", last_success.to_rfc3339());
            }
            shared.raise(detection).await;
        }
        // Below PROBE_FAILURE_THRESHOLD (one blip is not an issue), or already raised.
        Some(_) => {}
    }
}
