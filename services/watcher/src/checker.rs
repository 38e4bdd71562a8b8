//! The heartbeat checker, and what heartbeat state changes mean downstream.
//!
//! One task sleeps until the earliest deadline (or until woken because an earlier one
//! appeared), runs a pass over what is due, and sleeps again. It wakes at most once per
//! MONITOR_HEARTBEAT_CHECK_INTERVAL, so deadlines that fall close together share one pass
//! however many services there are. A missed beat opens `heartbeat_missed`, and each further
//! timeout of silence counts on it again (downstream, a sighting); an explicit
//! `/ping/{service}/fail` opens `service_failed`; contact again resolves whichever is open,
//! under the same id.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use obs_core::CancellationToken;
use obs_model::{DownReason, EventSource, IssueKind, Severity};
use serde_json::Value;
use tokio::time::Instant;

use crate::heartbeats::{Contact, Expired};
use crate::issues::Detection;
use crate::Shared;

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    if !shared.config.heartbeat.enabled {
        tracing::info!("heartbeat checking is off (MONITOR_HEARTBEAT_ENABLED=0)");
        return;
    }
    let min_gap = shared.config.heartbeat.check_interval;
    let mut last_pass = Instant::now();
    loop {
        let next = shared.tracker().next_deadline();
        let wake = next.map(|due| due.max(last_pass + min_gap));
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.checker_wake.notified() => continue,
            _ = sleep_until(wake) => {}
        }
        last_pass = Instant::now();
        let pass = shared.tracker().check(last_pass, Utc::now());
        for expired in pass.expired {
            timed_out(&shared, expired).await;
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

async fn timed_out(shared: &Shared, expired: Expired) {
    let service = &*expired.service;
    let silence = Utc::now() - expired.last_seen;
    // Going down is an event; staying down is not news, only one more sighting of the issue.
    if !expired.again {
        let mut event = shared.new_event(service, "down", EventSource::Heartbeat);
        event.detail = Some(format!(
            "no heartbeat for {} s (timeout {} s)",
            silence.num_seconds(),
            expired.timeout.as_secs_f64()
        ));
        shared.record_event(event).await;
    }
    let mut detection = Detection::new(IssueKind::HeartbeatMissed, service, "", Severity::Critical)
        .message(format!(
            "{service} stopped sending heartbeats: none for {} s (timeout {} s)",
            silence.num_seconds(),
            expired.timeout.as_secs_f64()
        ))
        .recommend(format!(
            "Check whether {service} is still running (its process, container or pod) and \
             can reach the watcher (MONITOR_ENDPOINT); read its last logs. If it beats less \
             often on purpose, send a longer timeout_seconds with its heartbeats."
        ))
        .fact("last_seen", expired.last_seen.to_rfc3339())
        .fact("timeout_seconds", expired.timeout.as_secs_f64());
    if !expired.again {
        detection = detection.fact("down_since", Utc::now().to_rfc3339());
    }
    if let Some(phase) = expired.phase {
        detection = detection.fact("phase", phase);
    }
    shared.raise(detection).await;
}

/// A heartbeat, ping or failure ping changed something: record it and raise or resolve.
pub async fn contact_changed(
    shared: &Shared,
    service: &str,
    contact: Contact,
    detail: Option<&str>,
) {
    match contact {
        Contact::New | Contact::Alive => {}
        Contact::Recovered { reason, down_since } => {
            recovered(shared, service, reason, down_since).await
        }
        Contact::Failed { first } => failed(shared, service, first, detail).await,
    }
}

async fn recovered(
    shared: &Shared,
    service: &str,
    reason: DownReason,
    down_since: Option<DateTime<Utc>>,
) {
    let mut event = shared.new_event(service, "recovered", EventSource::Heartbeat);
    let downtime = down_since.map(|since| (Utc::now() - since).num_milliseconds() as f64 / 1000.0);
    event.detail = Some(match downtime {
        Some(seconds) => format!("back after {seconds:.1} s down"),
        None => "back".into(),
    });
    shared.record_event(event).await;
    let kind = match reason {
        DownReason::Timeout => IssueKind::HeartbeatMissed,
        DownReason::Failed => IssueKind::ServiceFailed,
    };
    let mut facts = BTreeMap::from([("resolution".to_string(), Value::from("heartbeats resumed"))]);
    if let Some(seconds) = downtime {
        facts.insert("downtime_seconds".into(), Value::from(seconds));
    }
    shared.resolve(service, kind, "", facts).await;
}

async fn failed(shared: &Shared, service: &str, first: bool, detail: Option<&str>) {
    let mut event = shared.new_event(service, "failed", EventSource::Api);
    event.detail = detail.map(str::to_string);
    shared.record_event(event).await;
    // Heard from, so not silent: a missed-heartbeat issue is over, the failure is what is open.
    if first {
        let facts = BTreeMap::from([(
            "resolution".to_string(),
            Value::from("the service reported a failure instead"),
        )]);
        shared
            .resolve(service, IssueKind::HeartbeatMissed, "", facts)
            .await;
    }
    let mut detection = Detection::new(IssueKind::ServiceFailed, service, "", Severity::Critical)
        .message(format!(
            "{service} reported a failure{}",
            detail.map(|d| format!(": {d}")).unwrap_or_default()
        ))
        .recommend(format!(
            "{service} called /ping/{service}/fail: its own check or job failed. Read its \
             output and logs for the cause; it counts as up again at its next successful \
             ping or heartbeat."
        ));
    if first {
        detection = detection.fact("down_since", Utc::now().to_rfc3339());
    }
    if let Some(detail) = detail {
        detection = detection.fact("detail", detail);
    }
    shared.raise(detection).await;
}
