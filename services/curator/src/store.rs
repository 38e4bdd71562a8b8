//! The curator's tables, in the role's database (`obs_core::db`: SQLite at
//! `STATE_DIR/curator.db` by default, PostgreSQL with DATABASE_URL):
//!
//! - `curator_incidents`: one row per incident: its id, fingerprint, state, revision, the
//!   columns `GET /v1/incidents` filters and sorts on, and the whole [`Tracked`] as JSON. A
//!   unique index on the fingerprint of unresolved rows keeps ONE open incident per
//!   fingerprint, whichever replica tries to open a second.
//! - `curator_silences`: one row per silence that has not ended.
//! - `curator_goals`: one row, the expected services and the last check's verdict.
//!
//! Every update of a row names the revision it expects to replace (`… WHERE id = $1 AND
//! revision = $2`): zero rows means someone else changed it, reported as [`Conflict`].
//!
//! Files an earlier version kept under STATE_DIR (`incidents.snapshot`, `incidents.log`,
//! `silences.json`, `goals.json`) are imported once, in one transaction, then renamed to
//! `<name>.imported`; a file that cannot be read stops the curator with a line naming it.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use obs_core::db::{Db, Dialect, Migration, Row, Schema, Tx, Value};
use obs_model::{Goals, IncidentState, Silence};
use serde::Deserialize;
use ulid::Ulid;

use crate::incidents::Tracked;

pub const SCHEMA: Schema = Schema {
    component: "curator",
    migrations: &[Migration::portable(
        1,
        "incidents, silences, goals",
        "
CREATE TABLE curator_incidents (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    state TEXT NOT NULL,
    service TEXT NOT NULL,
    severity TEXT NOT NULL,
    active BIGINT NOT NULL,
    last_seen BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE UNIQUE INDEX curator_incidents_one_open ON curator_incidents (fingerprint)
    WHERE state <> 'resolved';
CREATE INDEX curator_incidents_by_fingerprint ON curator_incidents (fingerprint);
CREATE INDEX curator_incidents_by_order ON curator_incidents (active, last_seen, id);
CREATE TABLE curator_silences (
    id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE curator_goals (
    name TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    body TEXT NOT NULL
);",
    )],
};

/// The role name under which issue ids are remembered (`inbox`).
pub const INBOX_ROLE: &str = "curator";
const GOALS_ROW: &str = "goals";
/// Parameters per `IN (…)` list: far below both backends' limits.
const CHUNK: usize = 500;

/// A row was changed by someone else since this replica read it.
#[derive(Debug)]
pub struct Conflict {
    pub what: String,
    /// Its revision now; `None`: it no longer exists.
    pub current: Option<u64>,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.current {
            Some(revision) => write!(
                f,
                "{} was changed meanwhile: it is at revision {revision} now",
                self.what
            ),
            None => write!(f, "{} was removed meanwhile", self.what),
        }
    }
}

impl std::error::Error for Conflict {}

/// The conflict in `error`'s chain, if any.
pub fn conflict(error: &anyhow::Error) -> Option<&Conflict> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<Conflict>())
}

fn state_name(state: IncidentState) -> &'static str {
    match state {
        IncidentState::Open => "open",
        IncidentState::Acknowledged => "acknowledged",
        IncidentState::Resolved => "resolved",
    }
}

fn nanos(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_nanos_opt()
        .unwrap_or_else(|| at.timestamp_micros().saturating_mul(1000))
}

/// One incident row to write, serialized off the book's lock.
pub struct IncidentWrite {
    pub id: Ulid,
    pub revision: u64,
    /// The revision the row has now; `None`: there is no row yet.
    pub expected: Option<u64>,
    params: [Value; 8],
}

impl IncidentWrite {
    pub fn new(tracked: &Tracked, expected: Option<u64>) -> anyhow::Result<Self> {
        let incident = &tracked.incident;
        let body = serde_json::to_string(tracked).context("serializing an incident")?;
        Ok(IncidentWrite {
            id: incident.id,
            revision: incident.revision,
            expected,
            params: [
                incident.id.to_string().into(),
                incident.fingerprint.as_str().into(),
                state_name(incident.state).into(),
                incident.service.as_str().into(),
                incident.severity.as_str().into(),
                incident.state.is_active().into(),
                nanos(incident.last_seen).into(),
                Value::Text(body),
            ],
        })
    }
}

/// Write `rows`, each checked against the revision it expects.
pub fn write_incidents(tx: &mut Tx<'_>, rows: &[IncidentWrite]) -> anyhow::Result<()> {
    for row in rows {
        let mut params = row.params.to_vec();
        params.push(row.revision.into());
        match row.expected {
            None => {
                tx.execute(
                    "INSERT INTO curator_incidents
                        (id, fingerprint, state, service, severity, active, last_seen, body, revision)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &params,
                )
                .with_context(|| format!("storing incident {}", row.id))?;
            }
            Some(expected) => {
                params.push(expected.into());
                let changed = tx.execute(
                    "UPDATE curator_incidents
                        SET fingerprint = $2, state = $3, service = $4, severity = $5,
                            active = $6, last_seen = $7, body = $8, revision = $9
                      WHERE id = $1 AND revision = $10",
                    &params,
                )?;
                if changed == 0 {
                    return Err(incident_conflict(tx, row.id)?.into());
                }
            }
        }
    }
    Ok(())
}

/// The (id, revision) of each row written, and the ids of rows someone else changed.
pub type RepeatsSaved = (Vec<(Ulid, u64)>, Vec<Ulid>);

/// Write incidents changed by repeats: returns the (id, revision) written, and the ids whose
/// row another replica changed meanwhile (left as they are: theirs is newer).
pub fn write_repeats(tx: &mut Tx<'_>, rows: Vec<IncidentWrite>) -> anyhow::Result<RepeatsSaved> {
    let mut saved = Vec::with_capacity(rows.len());
    let mut conflicts = Vec::new();
    for row in rows {
        match row.expected {
            None => conflicts.push(row.id),
            Some(expected) => {
                // A repeat moves count, last_seen and text, never the fingerprint, state,
                // service or severity (those changes are written with their transaction):
                // only the columns it can move are set, so the fingerprint indexes are left
                // alone.
                let [id, _, _, _, _, _, last_seen, body] = row.params;
                let changed = tx.execute(
                    "UPDATE curator_incidents SET last_seen = $2, body = $3, revision = $4
                      WHERE id = $1 AND revision = $5",
                    &[id, last_seen, body, row.revision.into(), expected.into()],
                )?;
                if changed == 0 {
                    conflicts.push(row.id);
                } else {
                    saved.push((row.id, row.revision));
                }
            }
        }
    }
    Ok((saved, conflicts))
}

/// Delete pruned incidents, each checked against the revision it expects.
pub fn delete_incidents(tx: &mut Tx<'_>, pruned: &[(Ulid, Option<u64>)]) -> anyhow::Result<()> {
    for (id, expected) in pruned {
        let Some(expected) = expected else {
            continue;
        };
        let changed = tx.execute(
            "DELETE FROM curator_incidents WHERE id = $1 AND revision = $2",
            &[id.to_string().into(), (*expected).into()],
        )?;
        if changed == 0 {
            return Err(incident_conflict(tx, *id)?.into());
        }
    }
    Ok(())
}

fn incident_conflict(tx: &mut Tx<'_>, id: Ulid) -> anyhow::Result<Conflict> {
    let current = tx
        .query_opt(
            "SELECT revision FROM curator_incidents WHERE id = $1",
            &[id.to_string().into()],
        )?
        .map(|row| row.int(0))
        .transpose()?;
    Ok(Conflict {
        what: format!("incident {id}"),
        current: current.map(|revision| revision.max(0) as u64),
    })
}

fn tracked(row: &Row, column: usize) -> anyhow::Result<Tracked> {
    row.json(column)
}

/// Every incident.
pub fn all_incidents(tx: &mut Tx<'_>) -> anyhow::Result<Vec<Tracked>> {
    tx.query("SELECT id, body FROM curator_incidents", &[])?
        .iter()
        .map(|row| {
            tracked(row, 1).with_context(|| {
                format!(
                    "incident row {}",
                    row.text(0).unwrap_or("with an unreadable id")
                )
            })
        })
        .collect()
}

/// Every incident's id and revision.
pub fn revisions(tx: &mut Tx<'_>) -> anyhow::Result<HashMap<Ulid, u64>> {
    let mut found = HashMap::new();
    for row in tx.query("SELECT id, revision FROM curator_incidents", &[])? {
        let id = Ulid::from_string(row.text(0)?).context("an incident row's id")?;
        found.insert(id, row.int(1)?.max(0) as u64);
    }
    Ok(found)
}

/// The incidents with these ids.
pub fn incidents_by_id(tx: &mut Tx<'_>, ids: &[Ulid]) -> anyhow::Result<Vec<Tracked>> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT body FROM curator_incidents WHERE id IN ({})",
            placeholders(chunk.len())
        );
        let params: Vec<Value> = chunk.iter().map(|id| id.to_string().into()).collect();
        for row in tx.query(&sql, &params)? {
            found.push(tracked(&row, 0)?);
        }
    }
    Ok(found)
}

/// The incidents of these fingerprints (given sorted), their rows locked in that order until
/// the transaction ends (on PostgreSQL), so a replica deciding from them cannot be overtaken
/// by another.
pub fn incidents_by_fingerprint(
    tx: &mut Tx<'_>,
    fingerprints: &[&str],
) -> anyhow::Result<Vec<Tracked>> {
    let lock = match tx.dialect() {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    };
    let mut found = Vec::new();
    for chunk in fingerprints.chunks(CHUNK) {
        let sql = format!(
            "SELECT body FROM curator_incidents WHERE fingerprint IN ({}) \
             ORDER BY fingerprint, id{lock}",
            placeholders(chunk.len())
        );
        let params: Vec<Value> = chunk.iter().map(|fp| (*fp).into()).collect();
        for row in tx.query(&sql, &params)? {
            found.push(tracked(&row, 0)?);
        }
    }
    Ok(found)
}

/// One incident, its row locked until the transaction ends (on PostgreSQL).
pub fn incident(tx: &mut Tx<'_>, id: Ulid) -> anyhow::Result<Option<Tracked>> {
    let sql = match tx.dialect() {
        Dialect::Postgres => "SELECT body FROM curator_incidents WHERE id = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT body FROM curator_incidents WHERE id = $1",
    };
    tx.query_opt(sql, &[id.to_string().into()])?
        .map(|row| tracked(&row, 0))
        .transpose()
}

/// `GET /v1/incidents` from the table: unresolved first, then most recently seen first.
pub fn list(tx: &mut Tx<'_>, filter: &crate::incidents::Filter) -> anyhow::Result<Vec<Tracked>> {
    let mut sql = String::from("SELECT body FROM curator_incidents WHERE 1 = 1");
    let mut params: Vec<Value> = Vec::new();
    if let Some(state) = filter.state {
        params.push(state_name(state).into());
        sql.push_str(&format!(" AND state = ${}", params.len()));
    }
    if let Some(service) = &filter.service {
        params.push(service.as_str().into());
        sql.push_str(&format!(" AND service = ${}", params.len()));
    }
    if let Some(severity) = filter.severity {
        params.push(severity.as_str().into());
        sql.push_str(&format!(" AND severity = ${}", params.len()));
    }
    params.push(filter.limit.into());
    sql.push_str(&format!(
        " ORDER BY active DESC, last_seen DESC, id DESC LIMIT ${}",
        params.len()
    ));
    tx.query(&sql, &params)?
        .iter()
        .map(|row| tracked(row, 0))
        .collect()
}

fn placeholders(count: usize) -> String {
    (1..=count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------------- silences, goals

pub fn silences(tx: &mut Tx<'_>) -> anyhow::Result<Vec<Silence>> {
    tx.query("SELECT id, body FROM curator_silences", &[])?
        .iter()
        .map(|row| {
            row.json(1).with_context(|| {
                format!(
                    "silence row {}",
                    row.text(0).unwrap_or("with an unreadable id")
                )
            })
        })
        .collect()
}

pub fn insert_silence(tx: &mut Tx<'_>, silence: &Silence) -> anyhow::Result<()> {
    let body = serde_json::to_string(silence).context("serializing a silence")?;
    tx.execute(
        "INSERT INTO curator_silences (id, revision, body) VALUES ($1, 1, $2)
         ON CONFLICT (id) DO NOTHING",
        &[silence.id.to_string().into(), body.into()],
    )?;
    Ok(())
}

/// Delete a silence; a silence another replica deleted first is a [`Conflict`].
pub fn delete_silence(tx: &mut Tx<'_>, id: Ulid) -> anyhow::Result<()> {
    let changed = tx.execute(
        "DELETE FROM curator_silences WHERE id = $1",
        &[id.to_string().into()],
    )?;
    if changed == 0 {
        return Err(Conflict {
            what: format!("silence {id}"),
            current: None,
        }
        .into());
    }
    Ok(())
}

/// Silences that ended (housekeeping): gone whoever noticed first.
pub fn drop_silences(tx: &mut Tx<'_>, ids: &[Ulid]) -> anyhow::Result<()> {
    for id in ids {
        tx.execute(
            "DELETE FROM curator_silences WHERE id = $1",
            &[id.to_string().into()],
        )?;
    }
    Ok(())
}

/// No goals: what there is before any were put.
pub fn no_goals() -> Goals {
    Goals {
        services: Vec::new(),
        missing: None,
        checked_at: None,
    }
}

/// The goals row: what it holds and its revision (0: no row yet).
pub fn goals(tx: &mut Tx<'_>) -> anyhow::Result<(Option<Goals>, u64)> {
    let sql = match tx.dialect() {
        Dialect::Postgres => "SELECT body, revision FROM curator_goals WHERE name = $1 FOR UPDATE",
        Dialect::Sqlite => "SELECT body, revision FROM curator_goals WHERE name = $1",
    };
    match tx.query_opt(sql, &[GOALS_ROW.into()])? {
        None => Ok((None, 0)),
        Some(row) => Ok((
            Some(row.json(0).context("the goals row")?),
            row.int(1)?.max(0) as u64,
        )),
    }
}

/// Replace the goals row at revision `expected` (0: there is none); returns the new revision.
pub fn put_goals(tx: &mut Tx<'_>, value: &Goals, expected: u64) -> anyhow::Result<u64> {
    let body = serde_json::to_string(value).context("serializing the goals")?;
    let revision = expected + 1;
    let changed = if expected == 0 {
        tx.execute(
            "INSERT INTO curator_goals (name, revision, body) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[GOALS_ROW.into(), revision.into(), body.into()],
        )?
    } else {
        tx.execute(
            "UPDATE curator_goals SET body = $3, revision = $2 WHERE name = $1 AND revision = $4",
            &[
                GOALS_ROW.into(),
                revision.into(),
                body.into(),
                expected.into(),
            ],
        )?
    };
    if changed == 0 {
        let (_, current) = goals(tx)?;
        return Err(Conflict {
            what: "the goals".into(),
            current: Some(current),
        }
        .into());
    }
    Ok(revision)
}

// ---------------------------------------------------------------------- the earlier files

const JOURNAL: &str = "incidents.log";
const SNAPSHOT: &str = "incidents.snapshot";
const SILENCES: &str = "silences.json";
const GOALS: &str = "goals.json";

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Incident(Box<Tracked>),
    Pruned { id: Ulid, revision: u64 },
}

#[derive(Deserialize)]
struct SilencesFile {
    silences: Vec<Silence>,
}

/// What the files of an earlier version held.
#[derive(Default)]
struct Legacy {
    incidents: Vec<Tracked>,
    silences: Vec<Silence>,
    goals: Option<Goals>,
    files: Vec<PathBuf>,
}

/// Import the files an earlier version kept in `dir`, once: all in one transaction, then
/// each renamed to `<name>.imported`. A file that cannot be read is an error naming it.
pub async fn import_legacy(db: &Db, dir: &Path) -> anyhow::Result<()> {
    let legacy = read_legacy(dir)?;
    if legacy.files.is_empty() {
        return Ok(());
    }
    let counts = (
        legacy.incidents.len(),
        legacy.silences.len(),
        legacy.goals.is_some(),
    );
    let files = legacy.files.clone();
    db.write(move |tx| {
        let mut rows = Vec::with_capacity(legacy.incidents.len());
        for tracked in &legacy.incidents {
            rows.push(IncidentWrite::new(tracked, None)?);
        }
        for row in &rows {
            let mut params = row.params.to_vec();
            params.push(row.revision.into());
            // Already there: an import that committed before its files were renamed.
            tx.execute(
                "INSERT INTO curator_incidents
                    (id, fingerprint, state, service, severity, active, last_seen, body, revision)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT DO NOTHING",
                &params,
            )?;
        }
        for silence in &legacy.silences {
            insert_silence(tx, silence)?;
        }
        if let Some(imported) = &legacy.goals {
            if goals(tx)?.0.is_none() {
                put_goals(tx, imported, 0)?;
            }
        }
        Ok(())
    })
    .await
    .context("importing the state files of an earlier version")?;
    for file in &files {
        let mut aside = file.clone().into_os_string();
        aside.push(".imported");
        std::fs::rename(file, &aside)
            .with_context(|| format!("renaming {} aside after importing it", file.display()))?;
    }
    tracing::info!(
        incidents = counts.0,
        silences = counts.1,
        goals = counts.2,
        files = ?files,
        "imported the state files of an earlier version"
    );
    Ok(())
}

fn read_legacy(dir: &Path) -> anyhow::Result<Legacy> {
    let mut legacy = Legacy::default();
    // Per id, the highest revision seen: live (Some) or pruned (None).
    let mut latest: HashMap<Ulid, (u64, Option<Tracked>)> = HashMap::new();
    for name in [SNAPSHOT, JOURNAL] {
        let path = dir.join(name);
        let Some(text) = read_text(&path)? else {
            continue;
        };
        read_lines(&path, &text, name == JOURNAL, &mut latest)?;
        legacy.files.push(path);
    }
    legacy.incidents = latest.into_values().filter_map(|(_, live)| live).collect();
    let path = dir.join(SILENCES);
    if let Some(text) = read_text(&path)? {
        let file: SilencesFile = serde_json::from_str(&text)
            .with_context(|| format!("{} cannot be read as silences", path.display()))?;
        legacy.silences = file.silences;
        legacy.files.push(path);
    }
    let path = dir.join(GOALS);
    if let Some(text) = read_text(&path)? {
        let goals: Goals = serde_json::from_str(&text)
            .with_context(|| format!("{} cannot be read as goals", path.display()))?;
        legacy.goals = Some(Goals {
            missing: None,
            checked_at: None,
            ..goals
        });
        legacy.files.push(path);
    }
    Ok(legacy)
}

fn read_text(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .with_context(|| format!("{} is not UTF-8 text", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("reading {}", path.display())),
    }
}

/// Journal or snapshot lines, the highest revision of each id winning (the order of lines
/// never mattered). The journal's last line without its newline is an append that was
/// never acknowledged: left out. Any other line that does not parse is an error naming it.
fn read_lines(
    path: &Path,
    text: &str,
    journal: bool,
    latest: &mut HashMap<Ulid, (u64, Option<Tracked>)>,
) -> anyhow::Result<()> {
    let complete = if journal && !text.ends_with('\n') {
        match text.rfind('\n') {
            Some(end) => {
                tracing::warn!(path = %path.display(), "leaving out a torn last line, never acknowledged");
                &text[..=end]
            }
            None => "",
        }
    } else {
        text
    };
    for (index, line) in complete.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed: Line = serde_json::from_str(line)
            .with_context(|| format!("{} line {} cannot be read", path.display(), index + 1))?;
        let (id, revision, live) = match parsed {
            Line::Incident(tracked) => (
                tracked.incident.id,
                tracked.incident.revision,
                Some(*tracked),
            ),
            Line::Pruned { id, revision } => (id, revision, None),
        };
        if latest.get(&id).is_none_or(|(seen, _)| revision >= *seen) {
            latest.insert(id, (revision, live));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::tests::tracked;

    #[test]
    fn the_highest_revision_wins_and_a_torn_last_line_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut newer = tracked("api");
        newer.incident.revision = 7;
        let mut older = newer.clone();
        older.incident.revision = 3;
        let gone = tracked("db");
        let line = |tracked: &Tracked| {
            format!(
                "{{\"incident\":{}}}\n",
                serde_json::to_string(tracked).unwrap()
            )
        };
        let mut journal = line(&newer) + &line(&older) + &line(&gone);
        journal.push_str(&format!(
            "{{\"pruned\":{{\"id\":\"{}\",\"revision\":99}}}}\n",
            gone.incident.id
        ));
        let torn = line(&tracked("web"));
        journal.push_str(&torn[..torn.len() / 2]);
        std::fs::write(dir.path().join(JOURNAL), journal).unwrap();
        let legacy = read_legacy(dir.path()).unwrap();
        assert_eq!(legacy.incidents.len(), 1);
        assert_eq!(legacy.incidents[0].incident.revision, 7);
    }

    #[test]
    fn a_damaged_line_is_an_error_naming_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(SNAPSHOT), "{\"incident\":\n").unwrap();
        let error = format!("{:#}", read_legacy(dir.path()).err().unwrap());
        assert!(error.contains("incidents.snapshot line 1"), "{error}");
    }
}
