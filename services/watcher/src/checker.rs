//! The heartbeat checker, the write-behind of beats, and the contacts that change a
//! service's state.
//!
//! - Write-behind: beats change memory only ([`crate::heartbeats`]); every
//!   STATE_SAVE_INTERVAL the services heard from since are upserted in one transaction.
//! - The checker runs under a lease (one replica at a time; on SQLite always this one). A pass
//!   writes this replica's pending beats, then asks the database for the due services through
//!   the index on `deadline`, and marks them down in one transaction with their events and
//!   `heartbeat_missed` issues. A service down for silence stays in that index, due again one
//!   timeout after each report: while it stays silent, each further timeout counts on its
//!   open `heartbeat_missed` issue again (count, last_seen; sent downstream like any issue
//!   update, where the curator takes it as a sighting), with no new `down` event and its
//!   `down_since` kept. It also brings back services whose beats reached the database
//!   through another replica while they were down. Between passes it sleeps until the next
//!   deadline (woken early when a beat brings an earlier one), at most once per
//!   MONITOR_HEARTBEAT_CHECK_INTERVAL, and polls at least once a second for deadlines other
//!   replicas wrote.
//! - With a shared PostgreSQL, beats taken by other replicas reach the database up to a
//!   write-behind later, so a service is called silent only once it is past its deadline by
//!   that much ([`SHARED_GRACE`]).
//! - A beat from a service that is down, and every `/ping/{service}/fail`, commit the state
//!   change with its event and issue before they are answered.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use obs_core::db::{now_millis, Dialect, Lease, Tx};
use obs_core::CancellationToken;
use obs_model::{DownReason, Event, EventSource, IssueKind, ServiceState, Severity};
use serde_json::Value;
use tokio::time::Instant;

use crate::heartbeats::{duration_millis, Tracker};
use crate::issues::Detection;
use crate::store::{self, from_millis, millis, ServiceRow, SERVICE_COLUMNS};
use crate::{Changes, Shared};

/// How late another replica's beats may reach the database: its write-behind interval and
/// the time to commit it.
pub const SHARED_GRACE: Duration = Duration::from_millis(1500);
/// Which services the index on `deadline` holds (the schema's partial index has the same
/// predicate, so both dialects use it): up ones, due to go down, and ones down for silence,
/// due to be reported again. A service that said it failed says so again itself.
const CHECKED: &str = "(status = 'up' OR reason = 'timeout')";
/// Services marked down or brought back per transaction; more wait for the next pass.
const PER_PASS: usize = 5000;
/// How often a replica on a shared PostgreSQL refreshes its memory from the database.
pub const REFRESH: Duration = Duration::from_secs(5);
/// The lease the checker runs under.
pub const LEASE: &str = "watcher-checker";

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Write the beats heard since the last write-behind, in one transaction. On failure they
/// stay pending (and are counted in `watcher_state_save_failures_total`).
pub async fn flush_beats(shared: &Shared) -> anyhow::Result<()> {
    let rows = crate::heartbeats::take_dirty(&shared.tracker);
    if rows.is_empty() {
        return Ok(());
    }
    let batch = Arc::new(rows);
    let written = batch.clone();
    let outcome = shared
        .db
        .write(move |tx| store::upsert_beats(tx, &written))
        .await;
    if let Err(error) = outcome {
        shared.metrics.state_save_failures.inc();
        let rows = Arc::try_unwrap(batch).unwrap_or_else(|shared_rows| (*shared_rows).clone());
        shared.tracker().unflushed(rows);
        return Err(error.context("writing heartbeats behind"));
    }
    Ok(())
}

/// Write beats behind every STATE_SAVE_INTERVAL until shutdown; the last write is
/// `Watcher::flush`'s. With a shared PostgreSQL, also refresh memory from the database every
/// [`REFRESH`], so this replica's per-service gauges and open-issue gauge show what the other
/// replicas and the checker changed.
pub async fn write_behind(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = shared.config.state_save_interval;
    let mut refreshed = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = flush_beats(&shared).await {
            tracing::error!(
                error = format!("{error:#}"),
                "heartbeats not written behind; retrying"
            );
        }
        if shared.db.dialect() == Dialect::Postgres && refreshed.elapsed() >= REFRESH {
            refreshed = Instant::now();
            if let Err(error) = shared.refresh().await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not refresh from the database; trying again"
                );
            }
        }
    }
}

/// At start: services that were up get a full timeout from now, since while the watcher was
/// away nobody could reach it, so their silence proves nothing. With a shared database this is
/// done only when no replica holds the checker's lease (the whole watcher was away); a replica
/// joining a running fleet changes nothing.
pub async fn grant_full_timeouts(shared: &Shared) -> anyhow::Result<()> {
    let shared_db = shared.db.dialect() == Dialect::Postgres;
    shared
        .db
        .write(move |tx| {
            let now = now_millis();
            if shared_db {
                let held = tx.query_opt(
                    "SELECT 1 FROM leases WHERE name = $1 AND expires_at >= $2",
                    &[LEASE.into(), now.into()],
                )?;
                if held.is_some() {
                    return Ok(());
                }
            }
            tx.execute(
                "UPDATE watcher_services SET deadline = $1 + timeout_ms
                 WHERE status = 'up' AND deadline < $1 + timeout_ms",
                &[now.into()],
            )?;
            Ok(())
        })
        .await
}

/// The checker: under its lease, until shutdown.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    if !shared.config.heartbeat.enabled {
        tracing::info!("heartbeat checking is off (MONITOR_HEARTBEAT_ENABLED=0)");
        return;
    }
    let lease = Lease::new(&shared.db, LEASE, shared.config.lease_ttl);
    lease
        .run(shutdown, |held| check_while_held(shared.clone(), held))
        .await;
}

async fn check_while_held(shared: Arc<Shared>, held: CancellationToken) {
    let min_gap = shared.config.heartbeat.check_interval;
    let poll = min_gap.max(Duration::from_secs(1));
    let grace = match shared.db.dialect() {
        Dialect::Postgres => duration_millis(SHARED_GRACE),
        Dialect::Sqlite => 0,
    };
    loop {
        let last_pass = Instant::now();
        let next = match pass(&shared, grace).await {
            Ok(next) => next,
            Err(error) => {
                shared.metrics.state_save_failures.inc();
                tracing::error!(
                    error = format!("{error:#}"),
                    "the heartbeat check failed; nothing was changed, trying again"
                );
                now_millis().saturating_add(duration_millis(min_gap))
            }
        };
        shared
            .next_due
            .store(next, std::sync::atomic::Ordering::Relaxed);
        loop {
            let target = shared
                .next_due
                .load(std::sync::atomic::Ordering::Relaxed)
                .saturating_add(grace);
            let wait = u64::try_from(target.saturating_sub(now_millis())).unwrap_or(0);
            let wake = (Instant::now() + Duration::from_millis(wait.min(3_600_000)))
                .max(last_pass + min_gap)
                .min(last_pass + poll);
            tokio::select! {
                _ = held.cancelled() => return,
                _ = shared.checker_wake.notified() => continue,
                _ = tokio::time::sleep_until(wake) => break,
            }
        }
    }
}

/// One pass; returns the earliest deadline left (Unix ms), or i64::MAX.
async fn pass(shared: &Arc<Shared>, grace: i64) -> anyhow::Result<i64> {
    flush_beats(shared).await?;
    let cutoff = now_millis().saturating_sub(grace);
    let work = shared
        .db
        .read(move |tx| {
            let due = tx
                .query_opt(
                    &format!(
                        "SELECT 1 FROM watcher_services WHERE {CHECKED} AND deadline <= $1 LIMIT 1"
                    ),
                    &[cutoff.into()],
                )?
                .is_some();
            let back = tx
                .query_opt(
                    "SELECT 1 FROM watcher_services
                     WHERE status = 'down' AND last_beat > down_since LIMIT 1",
                    &[],
                )?
                .is_some();
            Ok(due || back)
        })
        .await?;
    if work {
        let tracker = shared.tracker.clone();
        shared
            .commit(move |tx, changes| {
                mark_silent_down(tx, changes, &tracker, cutoff)?;
                bring_back(tx, changes)
            })
            .await?;
    }
    let next = shared
        .db
        .read(|tx| {
            tx.query_opt(
                &format!("SELECT MIN(deadline) FROM watcher_services WHERE {CHECKED}"),
                &[],
            )?
            .map(|row| row.opt_int(0))
            .transpose()
            .map(|next| next.flatten())
        })
        .await?;
    Ok(next.unwrap_or(i64::MAX))
}

fn mark_silent_down(
    tx: &mut Tx<'_>,
    changes: &mut Changes,
    tracker: &Mutex<Tracker>,
    cutoff: i64,
) -> anyhow::Result<()> {
    let due = tx.query(
        &format!(
            "SELECT {SERVICE_COLUMNS} FROM watcher_services
             WHERE {CHECKED} AND deadline <= $1 ORDER BY deadline LIMIT $2"
        ),
        &[cutoff.into(), PER_PASS.into()],
    )?;
    let now = Utc::now();
    for row in due {
        let mut service = ServiceRow::from_row(&row)?;
        // Heard here since this pass wrote the beats behind: not silent.
        if lock(tracker)
            .deadline_of(&service.name)
            .is_some_and(|deadline| deadline > cutoff)
        {
            continue;
        }
        // Reported again one timeout from now, while it stays silent.
        let next = millis(now).saturating_add(service.timeout_ms);
        let again = service.state == ServiceState::Down;
        if again {
            // Its beats reached the database through another replica: not silent, it is
            // brought back below.
            if service
                .down_since
                .is_none_or(|since| service.last_beat > since)
            {
                continue;
            }
            let changed = tx.execute(
                "UPDATE watcher_services SET deadline = $2
                 WHERE name = $1 AND status = 'down' AND reason = 'timeout' AND deadline <= $3",
                &[service.name.as_str().into(), next.into(), cutoff.into()],
            )?;
            if changed != 1 {
                continue;
            }
        } else {
            let changed = tx.execute(
                "UPDATE watcher_services
                 SET status = 'down', reason = 'timeout', down_since = $2, deadline = $4
                 WHERE name = $1 AND status = 'up' AND deadline <= $3",
                &[
                    service.name.as_str().into(),
                    millis(now).into(),
                    cutoff.into(),
                    next.into(),
                ],
            )?;
            if changed != 1 {
                continue;
            }
            service.state = ServiceState::Down;
            service.reason = Some(DownReason::Timeout);
            service.down_since = Some(millis(now));
        }
        service.deadline = next;
        let (event, detection) = timed_out(&service, now, again);
        // Going down is an event; staying down is not news, only one more sighting.
        if let Some(event) = event {
            changes.event(tx, event)?;
        }
        changes.raise(tx, detection)?;
        changes.service_written(service);
    }
    Ok(())
}

/// Services down whose beats reached the database since (through another replica).
fn bring_back(tx: &mut Tx<'_>, changes: &mut Changes) -> anyhow::Result<()> {
    let back = tx.query(
        &format!(
            "SELECT {SERVICE_COLUMNS} FROM watcher_services
             WHERE status = 'down' AND last_beat > down_since LIMIT $1"
        ),
        &[PER_PASS.into()],
    )?;
    for row in back {
        let before = ServiceRow::from_row(&row)?;
        let changed = tx.execute(
            "UPDATE watcher_services SET status = 'up', reason = NULL, down_since = NULL
             WHERE name = $1 AND status = 'down' AND last_beat > down_since",
            &[before.name.as_str().into()],
        )?;
        if changed != 1 {
            continue;
        }
        let after = ServiceRow {
            state: ServiceState::Up,
            reason: None,
            down_since: None,
            ..before.clone()
        };
        came_back(tx, changes, &before)?;
        changes.service_written(after);
    }
    Ok(())
}

/// The event and issue of a service silent past its deadline; `again`: it was down for
/// silence already (one more timeout of it: no event, `down_since` kept).
fn timed_out(service: &ServiceRow, now: DateTime<Utc>, again: bool) -> (Option<Event>, Detection) {
    let name = service.name.as_str();
    let silence = now - from_millis(service.last_seen);
    let timeout = service.timeout_ms as f64 / 1000.0;
    let event = (!again).then(|| {
        let mut event = event(name, "down", EventSource::Heartbeat);
        event.detail = Some(format!(
            "no heartbeat for {} s (timeout {timeout} s)",
            silence.num_seconds(),
        ));
        event
    });
    let mut detection = Detection::new(IssueKind::HeartbeatMissed, name, "", Severity::Critical)
        .message(format!(
            "{name} stopped sending heartbeats: none for {} s (timeout {timeout} s)",
            silence.num_seconds(),
        ))
        .recommend(format!(
            "Check whether {name} is still running (its process, container or pod) and \
             can reach the watcher (MONITOR_ENDPOINT); read its last logs. If it beats less \
             often on purpose, send a longer timeout_seconds with its heartbeats."
        ))
        .fact("last_seen", from_millis(service.last_seen).to_rfc3339())
        .fact("timeout_seconds", timeout);
    if !again {
        detection = detection.fact("down_since", now.to_rfc3339());
    }
    if let Some(phase) = &service.phase {
        detection = detection.fact("phase", phase.as_str());
    }
    (event, detection)
}

fn event(service: &str, event_type: &str, source: EventSource) -> Event {
    Event {
        id: ulid::Ulid::new(),
        timestamp: Utc::now(),
        service: service.to_string(),
        event_type: event_type.to_string(),
        source,
        detail: None,
        component: None,
        container: None,
        image: None,
        exit_code: None,
    }
}

/// `before` was down and is heard from again: its event, and its issue resolved.
fn came_back(tx: &mut Tx<'_>, changes: &mut Changes, before: &ServiceRow) -> anyhow::Result<()> {
    let name = before.name.as_str();
    let mut event = event(name, "recovered", EventSource::Heartbeat);
    let downtime = before
        .down_since
        .map(|since| (Utc::now() - from_millis(since)).num_milliseconds() as f64 / 1000.0);
    event.detail = Some(match downtime {
        Some(seconds) => format!("back after {seconds:.1} s down"),
        None => "back".into(),
    });
    changes.event(tx, event)?;
    let kind = match before.reason {
        Some(DownReason::Failed) => IssueKind::ServiceFailed,
        _ => IssueKind::HeartbeatMissed,
    };
    let mut facts = BTreeMap::from([("resolution".to_string(), Value::from("heartbeats resumed"))]);
    if let Some(seconds) = downtime {
        facts.insert("downtime_seconds".into(), Value::from(seconds));
    }
    changes.resolve(tx, name, kind, "", facts)
}

/// A beat (or ping) from a service this replica knows as down: the recovery commits with
/// its event and resolved issue before the beat is answered. Decided from the database's
/// row, so a recovery another replica already committed is not made twice.
pub async fn recover(
    shared: &Shared,
    service: &str,
    phase: Option<&str>,
    timeout: Option<Duration>,
    wall: DateTime<Utc>,
) -> anyhow::Result<()> {
    let default_timeout = shared.config.heartbeat.timeout;
    let (service, phase) = (service.to_string(), phase.map(str::to_string));
    shared
        .commit(move |tx, changes| {
            let existing = store::service(tx, &service)?;
            let now = millis(wall);
            let timeout_ms = timeout
                .map(duration_millis)
                .or(existing.as_ref().map(|row| row.timeout_ms))
                .unwrap_or(duration_millis(default_timeout));
            let row = ServiceRow {
                name: service.clone(),
                state: ServiceState::Up,
                reason: None,
                phase: phase.or(existing.as_ref().and_then(|row| row.phase.clone())),
                last_seen: now,
                last_beat: now,
                timeout_ms,
                deadline: now.saturating_add(timeout_ms),
                down_since: None,
            };
            if let Some(before) = existing.filter(|row| row.state == ServiceState::Down) {
                came_back(tx, changes, &before)?;
            }
            changes.service(tx, row)
        })
        .await
}

/// `/ping/{service}/fail`: down (reason `failed`) until its next successful contact; the
/// `service_failed` issue opens (or counts again) in the same transaction.
pub async fn fail(
    shared: &Shared,
    service: &str,
    timeout: Option<Duration>,
    detail: Option<&str>,
) -> anyhow::Result<()> {
    let default_timeout = shared.config.heartbeat.timeout;
    let (service, detail) = (service.to_string(), detail.map(str::to_string));
    shared
        .commit(move |tx, changes| {
            let existing = store::service(tx, &service)?;
            let now = Utc::now();
            let now_ms = millis(now);
            let first = existing.as_ref().is_none_or(|row| {
                row.state != ServiceState::Down || row.reason != Some(DownReason::Failed)
            });
            let timeout_ms = timeout
                .map(duration_millis)
                .or(existing.as_ref().map(|row| row.timeout_ms))
                .unwrap_or(duration_millis(default_timeout));
            let row = ServiceRow {
                name: service.clone(),
                state: ServiceState::Down,
                reason: Some(DownReason::Failed),
                phase: existing.as_ref().and_then(|row| row.phase.clone()),
                last_seen: now_ms,
                // Not a successful beat: it must not count as coming back.
                last_beat: existing
                    .as_ref()
                    .map_or(now_ms, |row| row.last_beat.min(now_ms)),
                timeout_ms,
                deadline: now_ms.saturating_add(timeout_ms),
                down_since: if first {
                    Some(now_ms)
                } else {
                    existing.as_ref().and_then(|row| row.down_since)
                },
            };
            changes.service(tx, row)?;
            let mut failed = event(&service, "failed", EventSource::Api);
            failed.detail = detail.clone();
            changes.event(tx, failed)?;
            // Heard from, so not silent: a missed-heartbeat issue is over, the failure is
            // what is open.
            if first {
                let facts = BTreeMap::from([(
                    "resolution".to_string(),
                    Value::from("the service reported a failure instead"),
                )]);
                changes.resolve(tx, &service, IssueKind::HeartbeatMissed, "", facts)?;
            }
            let mut detection =
                Detection::new(IssueKind::ServiceFailed, &service, "", Severity::Critical)
                    .message(format!(
                        "{service} reported a failure{}",
                        detail
                            .as_deref()
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    ))
                    .recommend(format!(
                        "{service} called /ping/{service}/fail: its own check or job failed. \
                         Read its output and logs for the cause; it counts as up again at its \
                         next successful ping or heartbeat."
                    ));
            if first {
                detection = detection.fact("down_since", now.to_rfc3339());
            }
            if let Some(detail) = &detail {
                detection = detection.fact("detail", detail.as_str());
            }
            changes.raise(tx, detection)
        })
        .await
}
