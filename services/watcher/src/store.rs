//! The watcher's tables, and the statements every commit path shares.
//!
//! - `watcher_services`: one row per service — status, reason, phase, last contact, last
//!   successful beat, timeout and deadline (all times in Unix milliseconds). The checker finds
//!   due services through the partial index on `deadline` (up services, and services down for
//!   silence, whose deadline is when they are reported again; its predicate is
//!   `checker::CHECKED` word for word), so a pass costs what is due, not what is tracked;
//!   recoveries seen by other replicas through the partial index of down services.
//! - `watcher_issues`: every open issue (one per fingerprint: a unique partial index) and the
//!   newest RESOLVED_ISSUES_MAX resolved ones; the issue itself as JSON.
//! - `watcher_events`: the newest EVENTS_MAX events, in insertion order (`seq`).
//! - `watcher_containers`, `watcher_container_counts`: the containers last seen, and restarts
//!   and OOM kills counted per container name.
//!
//! Issue decisions (open or update, amend, resolve) are taken here, inside the transaction,
//! from the row the database holds: with several replicas on one PostgreSQL the in-memory
//! book is only a cache.

use std::collections::BTreeMap;

use anyhow::Context as _;
use chrono::{DateTime, TimeZone as _, Utc};
use obs_core::db::{Migration, Row, Schema, Tx, Value};
use obs_model::{Container, DownReason, Event, Issue, IssueKind, IssueState, ServiceState};
use serde::{Deserialize, Serialize};

use crate::issues::{self, Change, Detection};

pub const SCHEMA: Schema = Schema {
    component: "watcher",
    migrations: &[Migration {
        version: 1,
        name: "services, issues, events, containers",
        sqlite: concat!(
            include_str!("schema_common.sql"),
            "CREATE TABLE watcher_events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                id TEXT NOT NULL,
                service TEXT NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX watcher_events_by_service ON watcher_events (service, seq);"
        ),
        postgres: concat!(
            include_str!("schema_common.sql"),
            "CREATE TABLE watcher_events (
                seq BIGSERIAL PRIMARY KEY,
                id TEXT NOT NULL,
                service TEXT NOT NULL,
                body TEXT NOT NULL
            );
            CREATE INDEX watcher_events_by_service ON watcher_events (service, seq);"
        ),
    }],
};

/// Restarts and OOM kills counted for one container name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCounts {
    pub restarts: u64,
    pub oom_kills: u64,
}

pub fn millis(time: DateTime<Utc>) -> i64 {
    time.timestamp_millis()
}

pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

/// An enum as the text serde gives it (`up`, `timeout`, `heartbeat_missed`, …).
pub fn enum_text<T: Serialize>(value: &T) -> anyhow::Result<String> {
    match serde_json::to_value(value).context("an enum as text")? {
        serde_json::Value::String(text) => Ok(text),
        other => anyhow::bail!("expected a string, got {other}"),
    }
}

fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string()))
        .with_context(|| format!("'{text}' is not a known value"))
}

/// One service as its row holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRow {
    pub name: String,
    pub state: ServiceState,
    pub reason: Option<DownReason>,
    pub phase: Option<String>,
    pub last_seen: i64,
    pub last_beat: i64,
    pub timeout_ms: i64,
    pub deadline: i64,
    pub down_since: Option<i64>,
}

pub const SERVICE_COLUMNS: &str =
    "name, status, reason, phase, last_seen, last_beat, timeout_ms, deadline, down_since";

impl ServiceRow {
    pub fn from_row(row: &Row) -> anyhow::Result<ServiceRow> {
        Ok(ServiceRow {
            name: row.text(0)?.to_string(),
            state: parse_enum(row.text(1)?)?,
            reason: row.opt_text(2)?.map(parse_enum).transpose()?,
            phase: row.opt_text(3)?.map(str::to_string),
            last_seen: row.int(4)?,
            last_beat: row.int(5)?,
            timeout_ms: row.int(6)?,
            deadline: row.int(7)?,
            down_since: row.opt_int(8)?,
        })
    }

    pub fn status(&self) -> obs_model::ServiceStatus {
        obs_model::ServiceStatus {
            service: self.name.clone(),
            status: self.state,
            reason: self.reason,
            phase: self.phase.clone(),
            last_seen: from_millis(self.last_seen),
            timeout_seconds: self.timeout_ms as f64 / 1000.0,
            down_since: self.down_since.map(from_millis),
        }
    }

    /// Write the whole row (a state change: recovery, failure, import).
    pub fn put(&self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        tx.execute(
            &format!(
                "INSERT INTO watcher_services ({SERVICE_COLUMNS})
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (name) DO UPDATE SET
                    status = excluded.status, reason = excluded.reason,
                    phase = excluded.phase, last_seen = excluded.last_seen,
                    last_beat = excluded.last_beat, timeout_ms = excluded.timeout_ms,
                    deadline = excluded.deadline, down_since = excluded.down_since"
            ),
            &[
                self.name.as_str().into(),
                enum_text(&self.state)?.into(),
                self.reason.as_ref().map(enum_text).transpose()?.into(),
                self.phase.clone().into(),
                self.last_seen.into(),
                self.last_beat.into(),
                self.timeout_ms.into(),
                self.deadline.into(),
                self.down_since.into(),
            ],
        )?;
        Ok(())
    }
}

pub fn service(tx: &mut Tx<'_>, name: &str) -> anyhow::Result<Option<ServiceRow>> {
    tx.query_opt(
        &format!("SELECT {SERVICE_COLUMNS} FROM watcher_services WHERE name = $1"),
        &[name.into()],
    )?
    .map(|row| ServiceRow::from_row(&row))
    .transpose()
}

pub fn services(tx: &mut Tx<'_>) -> anyhow::Result<Vec<ServiceRow>> {
    tx.query(
        &format!("SELECT {SERVICE_COLUMNS} FROM watcher_services ORDER BY name"),
        &[],
    )?
    .iter()
    .map(ServiceRow::from_row)
    .collect()
}

/// A beat written behind: when it was heard, its deadline, phase and timeout.
#[derive(Debug, Clone)]
pub struct BeatRow {
    pub name: std::sync::Arc<str>,
    pub phase: Option<String>,
    pub last_seen: i64,
    pub timeout_ms: i64,
    pub deadline: i64,
}

/// Rows per statement: well under both dialects' parameter limits.
const BEATS_PER_STATEMENT: usize = 400;

/// Write beats behind in as few statements as the dialects allow. A beat never changes a
/// service's status (only the transactions that open or resolve its issue do), and an older
/// beat never overwrites a newer one taken by another replica.
pub fn upsert_beats(tx: &mut Tx<'_>, beats: &[BeatRow]) -> anyhow::Result<()> {
    let up = enum_text(&ServiceState::Up)?;
    for chunk in beats.chunks(BEATS_PER_STATEMENT) {
        let mut sql = String::with_capacity(128 + chunk.len() * 48);
        sql.push_str(
            "INSERT INTO watcher_services \
             (name, status, phase, last_seen, last_beat, timeout_ms, deadline) VALUES ",
        );
        let mut params = Vec::with_capacity(chunk.len() * 7);
        for (index, beat) in chunk.iter().enumerate() {
            let base = index * 7;
            if index > 0 {
                sql.push(',');
            }
            sql.push_str(&format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                base + 1,
                base + 2,
                base + 3,
                base + 4,
                base + 5,
                base + 6,
                base + 7
            ));
            params.extend([
                Value::from(&*beat.name),
                up.as_str().into(),
                beat.phase.clone().into(),
                beat.last_seen.into(),
                beat.last_seen.into(),
                beat.timeout_ms.into(),
                beat.deadline.into(),
            ]);
        }
        sql.push_str(
            " ON CONFLICT (name) DO UPDATE SET
                phase = COALESCE(excluded.phase, watcher_services.phase),
                last_seen = excluded.last_seen, last_beat = excluded.last_beat,
                timeout_ms = excluded.timeout_ms, deadline = excluded.deadline
              WHERE excluded.last_seen >= watcher_services.last_seen",
        );
        tx.execute(&sql, &params)?;
    }
    Ok(())
}

// --- issues -------------------------------------------------------------------------------

fn open_issue(
    tx: &mut Tx<'_>,
    service: &str,
    kind: IssueKind,
    subject: &str,
) -> anyhow::Result<Option<Issue>> {
    tx.query_opt(
        "SELECT body FROM watcher_issues WHERE fingerprint = $1 AND state = 'open'",
        &[issues::fingerprint(service, kind, subject).into()],
    )?
    .map(|row| row.json::<Issue>(0))
    .transpose()
}

/// Write `issue` (insert, or replace the row with its id).
pub fn put_issue(tx: &mut Tx<'_>, issue: &Issue) -> anyhow::Result<()> {
    let body = serde_json::to_string(issue).context("serializing an issue")?;
    tx.execute(
        "INSERT INTO watcher_issues (id, fingerprint, kind, service, subject, state, changed_at, body)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (id) DO UPDATE SET state = excluded.state, kind = excluded.kind,
            fingerprint = excluded.fingerprint, changed_at = excluded.changed_at,
            body = excluded.body",
        &[
            issue.id.to_string().into(),
            issues::fingerprint(&issue.service, issue.kind, &issue.subject).into(),
            issue.kind.as_str().into(),
            issue.service.as_str().into(),
            issue.subject.as_str().into(),
            enum_text(&issue.state)?.into(),
            millis(issue.last_seen).into(),
            body.into(),
        ],
    )?;
    Ok(())
}

/// Open an issue, or update the open one with the same fingerprint.
pub fn raise(
    tx: &mut Tx<'_>,
    detection: Detection,
    now: DateTime<Utc>,
) -> anyhow::Result<(Change, Issue)> {
    let existing = open_issue(tx, &detection.service, detection.kind, &detection.subject)?;
    let (change, issue) = issues::raised(existing, detection, now);
    put_issue(tx, &issue)?;
    Ok((change, issue))
}

/// Add facts to the open issue with this fingerprint, if any.
pub fn amend(
    tx: &mut Tx<'_>,
    service: &str,
    kind: IssueKind,
    subject: &str,
    facts: BTreeMap<String, serde_json::Value>,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Issue>> {
    let Some(existing) = open_issue(tx, service, kind, subject)? else {
        return Ok(None);
    };
    let issue = issues::amended(existing, facts, now);
    put_issue(tx, &issue)?;
    Ok(Some(issue))
}

/// Resolve the open issue with this fingerprint, if any, keeping the newest `keep` resolved.
pub fn resolve(
    tx: &mut Tx<'_>,
    service: &str,
    kind: IssueKind,
    subject: &str,
    facts: BTreeMap<String, serde_json::Value>,
    now: DateTime<Utc>,
    keep: usize,
) -> anyhow::Result<Option<Issue>> {
    let Some(existing) = open_issue(tx, service, kind, subject)? else {
        return Ok(None);
    };
    let issue = issues::resolved(existing, facts, now);
    put_issue(tx, &issue)?;
    trim_resolved(tx, keep)?;
    Ok(Some(issue))
}

fn trim_resolved(tx: &mut Tx<'_>, keep: usize) -> anyhow::Result<()> {
    tx.execute(
        "DELETE FROM watcher_issues WHERE state = 'resolved' AND id NOT IN (
            SELECT id FROM watcher_issues WHERE state = 'resolved'
            ORDER BY changed_at DESC, id DESC LIMIT $1)",
        &[keep.into()],
    )?;
    Ok(())
}

/// Open issues of `subject` (a container), as (service, kind).
pub fn open_of_subject(tx: &mut Tx<'_>, subject: &str) -> anyhow::Result<Vec<(String, IssueKind)>> {
    tx.query(
        "SELECT service, kind FROM watcher_issues WHERE subject = $1 AND state = 'open' ORDER BY id",
        &[subject.into()],
    )?
    .iter()
    .map(|row| Ok((row.text(0)?.to_string(), parse_enum(row.text(1)?)?)))
    .collect()
}

/// Every open issue, then the resolved ones oldest first (what the book is loaded from).
pub fn issues(tx: &mut Tx<'_>) -> anyhow::Result<(Vec<Issue>, Vec<Issue>)> {
    let open = tx
        .query(
            "SELECT body FROM watcher_issues WHERE state = 'open' ORDER BY id",
            &[],
        )?
        .iter()
        .map(|row| row.json::<Issue>(0))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let resolved = tx
        .query(
            "SELECT body FROM watcher_issues WHERE state = 'resolved' ORDER BY changed_at, id",
            &[],
        )?
        .iter()
        .map(|row| row.json::<Issue>(0))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((open, resolved))
}

pub fn open_issue_count(tx: &mut Tx<'_>) -> anyhow::Result<usize> {
    let count = tx
        .query_opt(
            "SELECT COUNT(*) FROM watcher_issues WHERE state = 'open'",
            &[],
        )?
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    Ok(usize::try_from(count).unwrap_or(0))
}

/// For the read API on PostgreSQL: open issues (all) and the newest `limit` resolved.
pub fn issues_for_listing(
    tx: &mut Tx<'_>,
    state: Option<IssueState>,
    limit: usize,
) -> anyhow::Result<(Vec<Issue>, Vec<Issue>)> {
    let mut open = Vec::new();
    if state != Some(IssueState::Resolved) {
        open = tx
            .query("SELECT body FROM watcher_issues WHERE state = 'open'", &[])?
            .iter()
            .map(|row| row.json::<Issue>(0))
            .collect::<anyhow::Result<Vec<_>>>()?;
    }
    let mut resolved = Vec::new();
    if state != Some(IssueState::Open) {
        resolved = tx
            .query(
                "SELECT body FROM watcher_issues WHERE state = 'resolved'
                 ORDER BY changed_at DESC, id DESC LIMIT $1",
                &[limit.into()],
            )?
            .iter()
            .map(|row| row.json::<Issue>(0))
            .collect::<anyhow::Result<Vec<_>>>()?;
        resolved.reverse();
    }
    Ok((open, resolved))
}

// --- events -------------------------------------------------------------------------------

/// Keep `event`, and only the newest `max`.
pub fn insert_event(tx: &mut Tx<'_>, event: &Event, max: usize) -> anyhow::Result<()> {
    let body = serde_json::to_string(event).context("serializing an event")?;
    tx.execute(
        "INSERT INTO watcher_events (id, service, body) VALUES ($1, $2, $3)",
        &[
            event.id.to_string().into(),
            event.service.as_str().into(),
            body.into(),
        ],
    )?;
    // By sequence number: an index lookup, not a count of the table.
    tx.execute(
        "DELETE FROM watcher_events WHERE seq <= (SELECT MAX(seq) FROM watcher_events) - $1",
        &[max.into()],
    )?;
    Ok(())
}

/// The newest `limit` events (of `service`, if given), oldest first.
pub fn recent_events(
    tx: &mut Tx<'_>,
    limit: usize,
    service: Option<&str>,
) -> anyhow::Result<Vec<Event>> {
    let rows = match service {
        Some(service) => tx.query(
            "SELECT body FROM watcher_events WHERE service = $1 ORDER BY seq DESC LIMIT $2",
            &[service.into(), limit.into()],
        )?,
        None => tx.query(
            "SELECT body FROM watcher_events ORDER BY seq DESC LIMIT $1",
            &[limit.into()],
        )?,
    };
    let mut events = rows
        .iter()
        .map(|row| row.json::<Event>(0))
        .collect::<anyhow::Result<Vec<_>>>()?;
    events.reverse();
    Ok(events)
}

// --- containers ---------------------------------------------------------------------------

pub fn put_container(tx: &mut Tx<'_>, container: &Container) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO watcher_containers (id, name, body) VALUES ($1, $2, $3)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, body = excluded.body",
        &[
            container.id.as_str().into(),
            container.name.as_str().into(),
            serde_json::to_string(container)
                .context("serializing a container")?
                .into(),
        ],
    )?;
    Ok(())
}

pub fn delete_container(tx: &mut Tx<'_>, id: &str) -> anyhow::Result<()> {
    tx.execute("DELETE FROM watcher_containers WHERE id = $1", &[id.into()])?;
    Ok(())
}

pub fn put_counts(tx: &mut Tx<'_>, name: &str, counts: ContainerCounts) -> anyhow::Result<()> {
    tx.execute(
        "INSERT INTO watcher_container_counts (name, restarts, oom_kills) VALUES ($1, $2, $3)
         ON CONFLICT (name) DO UPDATE SET restarts = excluded.restarts,
            oom_kills = excluded.oom_kills",
        &[name.into(), counts.restarts.into(), counts.oom_kills.into()],
    )?;
    Ok(())
}

pub fn containers(tx: &mut Tx<'_>) -> anyhow::Result<Vec<Container>> {
    tx.query("SELECT body FROM watcher_containers ORDER BY name", &[])?
        .iter()
        .map(|row| row.json::<Container>(0))
        .collect()
}

pub fn container_counts(tx: &mut Tx<'_>) -> anyhow::Result<BTreeMap<String, ContainerCounts>> {
    tx.query(
        "SELECT name, restarts, oom_kills FROM watcher_container_counts",
        &[],
    )?
    .iter()
    .map(|row| {
        Ok((
            row.text(0)?.to_string(),
            ContainerCounts {
                restarts: u64::try_from(row.int(1)?).unwrap_or(0),
                oom_kills: u64::try_from(row.int(2)?).unwrap_or(0),
            },
        ))
    })
    .collect()
}

/// Everything loaded at start.
pub struct Loaded {
    pub services: Vec<ServiceRow>,
    pub open_issues: Vec<Issue>,
    pub resolved_issues: Vec<Issue>,
    pub events: Vec<Event>,
    pub containers: Vec<Container>,
    pub counts: BTreeMap<String, ContainerCounts>,
}

pub fn load(tx: &mut Tx<'_>, events_max: usize) -> anyhow::Result<Loaded> {
    let services = services(tx)?;
    let (open_issues, resolved_issues) = issues(tx)?;
    Ok(Loaded {
        services,
        open_issues,
        resolved_issues,
        events: recent_events(tx, events_max, None)?,
        containers: containers(tx)?,
        counts: container_counts(tx)?,
    })
}
