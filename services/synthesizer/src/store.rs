//! The synthesizer's tables, in the role's database (`obs_core::db`: SQLite at
//! STATE_DIR/synthesizer.db, or the fleet's PostgreSQL with DATABASE_URL). The database is
//! the book: nothing of it is cached in memory, so nothing can run ahead of a commit, and
//! every replica reads what every other one committed.
//!
//! - `synthesizer_plans`: one row per plan, its highest revision (upserts are
//!   revision-checked, so a lower or equal copy changes nothing).
//! - `synthesizer_owed`: per incident, the highest revision owed a notification: a
//!   redelivered plan (even one pruned since) is not news twice.
//! - `synthesizer_pending`: changes owed and waiting for their groups (kept so a crash
//!   inside a group's wait loses nothing); `synthesizer_routed`: each routed change in the
//!   group of each route it goes to (route path, `group_by` values); `synthesizer_groups`:
//!   when each group last sent, for its `group_interval`.
//! - `synthesizer_notified`: UNIQUE (webhook, incident, revision, open/resolve). A group's
//!   message is staged in each webhook's outbox in the transaction that inserts these rows
//!   and deletes the pending ones; a replica whose insert meets an existing row (another
//!   replica sent it) stages nothing for it. So each webhook hears of an incident revision
//!   exactly once across replicas and restarts.
//!
//! The previous version's state file, STATE_DIR/synthesizer.json, is imported once in one
//! transaction and renamed to `synthesizer.json.imported`; a file that cannot be read stops
//! the role with one line naming it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use chrono::{DateTime, TimeZone as _, Utc};
use obs_core::db::{Db, Dialect, Migration, Row, Schema, Tx, Value};
use obs_model::{Plan, PlanState, Severity};
use ulid::Ulid;

use crate::config::WebhookKind;
use crate::notify::route::Routing;
use crate::notify::Notifier;
use crate::plans::{
    self, decide, newest_copies, Accepted, Decision, Full, Held, Notice, NotifyRules, Saved, View,
};

/// The previous version's state file, under STATE_DIR.
pub const LEGACY_FILE: &str = "synthesizer.json";

/// How long the owed revisions and the notified keys are remembered: far longer than any
/// redelivery of a plan takes, short enough that the tables stay small.
const REMEMBER_MILLIS: i64 = 30 * 24 * 3600 * 1000;

/// Ids looked up per statement (well under either backend's parameter limit).
const LOOKUP_CHUNK: usize = 500;

/// Taken (PostgreSQL) by every batch of plans, so replicas deciding about the same plans
/// take turns and each sees what the other committed. Released at commit.
const BATCH_LOCK: i64 = 7_345_120_404;
/// Taken (PostgreSQL) by every flush of the notification groups.
const FLUSH_LOCK: i64 = 7_345_120_405;

pub const SCHEMA: Schema = Schema {
    component: "synthesizer",
    migrations: &[
        Migration::portable(
            1,
            "plans, owed revisions, pending and notified changes",
            "
CREATE TABLE synthesizer_plans (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    open BIGINT NOT NULL,
    active BIGINT NOT NULL,
    severity TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    resolved_at BIGINT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX synthesizer_plans_by_update ON synthesizer_plans (updated_at, id);
CREATE INDEX synthesizer_plans_by_state ON synthesizer_plans (open, updated_at);
CREATE INDEX synthesizer_plans_active ON synthesizer_plans (active, severity);
CREATE INDEX synthesizer_plans_by_resolution ON synthesizer_plans (resolved_at);
CREATE TABLE synthesizer_owed (
    incident_id TEXT PRIMARY KEY,
    revision BIGINT NOT NULL,
    owed_at BIGINT NOT NULL
);
CREATE INDEX synthesizer_owed_by_age ON synthesizer_owed (owed_at);
CREATE TABLE synthesizer_pending (
    incident_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    notice TEXT NOT NULL,
    PRIMARY KEY (incident_id, revision)
);
CREATE INDEX synthesizer_pending_by_age ON synthesizer_pending (queued_at);
CREATE TABLE synthesizer_notified (
    webhook TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    kind TEXT NOT NULL,
    notified_at BIGINT NOT NULL,
    UNIQUE (webhook, incident_id, revision, kind)
);
CREATE INDEX synthesizer_notified_by_age ON synthesizer_notified (notified_at);",
        ),
        Migration::portable(
            2,
            "notification routes: each pending change in the groups of the routes it goes to",
            "
ALTER TABLE synthesizer_pending ADD COLUMN routed BIGINT NOT NULL DEFAULT 0;
CREATE TABLE synthesizer_routed (
    route TEXT NOT NULL,
    grp TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    queued_at BIGINT NOT NULL,
    PRIMARY KEY (route, grp, incident_id, revision)
);
CREATE INDEX synthesizer_routed_by_change ON synthesizer_routed (incident_id, revision);
CREATE TABLE synthesizer_groups (
    route TEXT NOT NULL,
    grp TEXT NOT NULL,
    last_sent BIGINT NOT NULL,
    PRIMARY KEY (route, grp)
);
CREATE INDEX synthesizer_groups_by_age ON synthesizer_groups (last_sent);",
        ),
    ],
};

/// What a committed batch did, and the open incidents by severity after it.
pub struct Committed {
    pub accepted: Accepted,
    pub open: [(Severity, usize); 3],
}

/// What a flush sent.
pub struct Sent {
    /// Changes sent in a group (one change in two groups counts twice).
    pub changes: usize,
    /// The kind of each webhook a message was staged for.
    pub messages: Vec<WebhookKind>,
    /// When the next group waiting is due, if one is.
    pub next_due: Option<DateTime<Utc>>,
    /// Changes no route delivers (their receiver has no channel).
    pub dropped: usize,
}

/// What routing the pending changes did.
struct Routed {
    dropped: usize,
}

/// Put each pending change not routed yet in the group of each route it goes to.
fn route_pending(tx: &mut Tx<'_>, routing: &Routing) -> anyhow::Result<Routed> {
    let rows = tx.query(
        "SELECT incident_id, revision, notice FROM synthesizer_pending WHERE routed = 0 \
         ORDER BY queued_at, incident_id, revision",
        &[],
    )?;
    let mut dropped = 0;
    for row in &rows {
        let (incident_id, revision) = (row.text(0)?.to_string(), row.int(1)?);
        let notice: Notice = row.json(2).with_context(|| {
            format!("the pending change of incident {incident_id} revision {revision}")
        })?;
        let incident = &notice.plan.incident;
        let mut groups = 0;
        for route in routing.pick(incident) {
            let delivers = routing.receivers[route.receiver]
                .targets
                .iter()
                .any(|target| target.wants(incident.change));
            if !delivers {
                continue;
            }
            groups += tx.execute(
                "INSERT INTO synthesizer_routed (route, grp, incident_id, revision, queued_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                &[
                    route.path.as_str().into(),
                    route.group_key(incident).into(),
                    incident_id.as_str().into(),
                    revision.into(),
                    notice.queued_at.timestamp_millis().into(),
                ],
            )?;
        }
        if groups == 0 {
            dropped += 1;
            tx.execute(
                "DELETE FROM synthesizer_pending WHERE incident_id = $1 AND revision = $2",
                &[incident_id.as_str().into(), revision.into()],
            )?;
        } else {
            tx.execute(
                "UPDATE synthesizer_pending SET routed = 1 WHERE incident_id = $1 AND revision = $2",
                &[incident_id.as_str().into(), revision.into()],
            )?;
        }
    }
    Ok(Routed { dropped })
}

/// Insert the (webhook, incident, revision, open/resolve) key; false if it was there already
/// (this webhook heard of it, through another group or from another replica).
fn mark_notified(
    tx: &mut Tx<'_>,
    destination: &str,
    notice: &Notice,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let incident = &notice.plan.incident;
    let inserted = tx.execute(
        "INSERT INTO synthesizer_notified \
         (webhook, incident_id, revision, kind, notified_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            destination.into(),
            incident.id.to_string().into(),
            incident.revision.into(),
            notice.kind().into(),
            now.timestamp_millis().into(),
        ],
    )?;
    Ok(inserted == 1)
}

fn chrono_duration(duration: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// The synthesizer's tables in the role's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
}

impl Store {
    /// Use `db` (already migrated to [`SCHEMA`]), importing the legacy state file under
    /// `state_dir` first if there is one.
    pub async fn open(db: Db, state_dir: &Path) -> anyhow::Result<Store> {
        let store = Store { db };
        store.import_legacy(&state_dir.join(LEGACY_FILE)).await?;
        Ok(store)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Decide about `batch` and write the decision, in one transaction. `Ok(Err(full))`
    /// when the batch would exceed `max_open` (nothing written).
    pub async fn accept(
        &self,
        batch: Vec<Plan>,
        rules: NotifyRules,
        max_open: usize,
        keep_closed: usize,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Result<Committed, Full>> {
        self.db
            .write(move |tx| {
                if tx.dialect() == Dialect::Postgres {
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[BATCH_LOCK.into()])?;
                }
                let (newest, left_out) = newest_copies(batch);
                let view = read_view(tx, &newest)?;
                let decision = match decide(newest, left_out, &view, rules, max_open, now) {
                    Ok(decision) => decision,
                    Err(full) => return Ok(Err(full)),
                };
                let accepted = write_decision(tx, &decision, now)?;
                if decision.store.iter().any(|p| p.state == PlanState::Closed) {
                    prune_closed(tx, keep_closed)?;
                }
                Ok(Ok(Committed {
                    accepted,
                    open: open_counts(tx)?,
                }))
            })
            .await
            .context("storing the plans")
    }

    /// Active plans by severity, now.
    pub async fn open_counts(&self) -> anyhow::Result<[(Severity, usize); 3]> {
        self.db.read(open_counts).await
    }

    pub async fn get(&self, id: Ulid) -> anyhow::Result<Option<Plan>> {
        self.db
            .read(move |tx| {
                tx.query_opt(
                    "SELECT body FROM synthesizer_plans WHERE id = $1",
                    &[id.to_string().into()],
                )?
                .map(|row| row.json(0))
                .transpose()
            })
            .await
    }

    /// Every plan, optionally only those in `state`, most recently updated first.
    pub async fn list(&self, state: Option<PlanState>, limit: usize) -> anyhow::Result<Vec<Plan>> {
        self.db
            .read(move |tx| {
                let rows = match state {
                    None => tx.query(
                        "SELECT body FROM synthesizer_plans \
                         ORDER BY updated_at DESC, id DESC LIMIT $1",
                        &[limit.into()],
                    )?,
                    Some(state) => tx.query(
                        "SELECT body FROM synthesizer_plans WHERE open = $1 \
                         ORDER BY updated_at DESC, id DESC LIMIT $2",
                        &[(state == PlanState::Open).into(), limit.into()],
                    )?,
                };
                bodies(&rows)
            })
            .await
    }

    /// The active plans, most urgent first, and up to `limit` resolved since `since`, most
    /// recent first: what a report shows, from one snapshot.
    pub async fn for_report(
        &self,
        since: DateTime<Utc>,
        limit: usize,
    ) -> anyhow::Result<(Vec<Plan>, Vec<Plan>)> {
        self.db
            .read(move |tx| {
                let mut active =
                    bodies(&tx.query("SELECT body FROM synthesizer_plans WHERE active = 1", &[])?)?;
                plans::sort_active(&mut active);
                let resolved = bodies(&tx.query(
                    "SELECT body FROM synthesizer_plans WHERE active = 0 AND resolved_at >= $1 \
                     ORDER BY resolved_at DESC, id DESC LIMIT $2",
                    &[since.timestamp_millis().into(), limit.into()],
                )?)?;
                Ok((active, resolved))
            })
            .await
    }

    /// Route what is pending and send every group that is due, in one transaction:
    ///
    /// 1. each change not routed yet is put in the group of every route it goes to
    ///    (`synthesizer_routed`; a change no route delivers is dropped);
    /// 2. a group is due at `max(oldest change + group_wait, last message + group_interval)`;
    ///    a due group's changes go to each channel of its route's receiver: the `notified`
    ///    keys inserted, one message staged (of the changes whose key was new) in the
    ///    channel's outbox, the group's rows deleted;
    /// 3. a change no group holds any more leaves `synthesizer_pending`.
    ///
    /// Returns what was sent and when the next group is due. The caller wakes the outboxes.
    pub async fn flush(&self, notifier: Notifier, now: DateTime<Utc>) -> anyhow::Result<Sent> {
        self.db
            .write(move |tx| {
                if tx.dialect() == Dialect::Postgres {
                    // Replicas flush in turn: one routes and sends, the next finds it done.
                    tx.execute("SELECT pg_advisory_xact_lock($1)", &[FLUSH_LOCK.into()])?;
                }
                let routing = notifier.routing();
                let routed = route_pending(tx, routing)?;
                let groups = tx.query(
                    "SELECT route, grp, MIN(queued_at) FROM synthesizer_routed \
                     GROUP BY route, grp ORDER BY MIN(queued_at), route, grp",
                    &[],
                )?;
                let mut sent = Sent {
                    changes: 0,
                    messages: Vec::new(),
                    next_due: None,
                    dropped: routed.dropped,
                };
                for group in &groups {
                    let (path, key) = (group.text(0)?.to_string(), group.text(1)?.to_string());
                    let oldest = from_millis(group.int(2)?);
                    let last_sent = tx
                        .query_opt(
                            "SELECT last_sent FROM synthesizer_groups WHERE route = $1 AND grp = $2",
                            &[path.as_str().into(), key.as_str().into()],
                        )?
                        .map(|row| row.int(0))
                        .transpose()?
                        .map(from_millis);
                    // A route gone since (the file changed) sends at once, to the root's
                    // receiver: nothing owed is lost.
                    let route = routing.route(&path).unwrap_or(&routing.root);
                    let mut due = oldest + chrono_duration(route.group_wait);
                    if let Some(last) = last_sent {
                        due = due.max(last + chrono_duration(route.group_interval));
                    }
                    if due > now && routing.route(&path).is_some() {
                        sent.next_due = Some(sent.next_due.map_or(due, |next: DateTime<Utc>| next.min(due)));
                        continue;
                    }
                    let rows = tx.query(
                        "SELECT p.notice FROM synthesizer_routed r JOIN synthesizer_pending p \
                         ON p.incident_id = r.incident_id AND p.revision = r.revision \
                         WHERE r.route = $1 AND r.grp = $2 \
                         ORDER BY r.queued_at, r.incident_id, r.revision",
                        &[path.as_str().into(), key.as_str().into()],
                    )?;
                    let notices = rows
                        .iter()
                        .map(|row| row.json::<Notice>(0).context("a pending change"))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let mut staged = false;
                    for target in &routing.receivers[route.receiver].targets {
                        let hook = &notifier.hooks()[target.channel];
                        let mut fresh: Vec<Notice> = Vec::with_capacity(notices.len());
                        for notice in notices
                            .iter()
                            .filter(|n| target.wants(n.plan.incident.change))
                        {
                            if mark_notified(tx, hook.destination(), notice, now)? {
                                fresh.push(notice.clone());
                            }
                        }
                        if !fresh.is_empty() {
                            hook.stage(tx, &fresh, now)?;
                            sent.messages.push(hook.kind());
                            staged = true;
                        }
                    }
                    sent.changes += notices.len();
                    tx.execute(
                        "DELETE FROM synthesizer_routed WHERE route = $1 AND grp = $2",
                        &[path.as_str().into(), key.as_str().into()],
                    )?;
                    if staged {
                        tx.execute(
                            "INSERT INTO synthesizer_groups (route, grp, last_sent) \
                             VALUES ($1, $2, $3) ON CONFLICT (route, grp) \
                             DO UPDATE SET last_sent = excluded.last_sent",
                            &[path.as_str().into(), key.as_str().into(), now.timestamp_millis().into()],
                        )?;
                    }
                }
                tx.execute(
                    "DELETE FROM synthesizer_pending WHERE routed = 1 AND NOT EXISTS (\
                        SELECT 1 FROM synthesizer_routed r \
                        WHERE r.incident_id = synthesizer_pending.incident_id \
                        AND r.revision = synthesizer_pending.revision)",
                    &[],
                )?;
                let cutoff = now.timestamp_millis() - REMEMBER_MILLIS;
                for table in ["synthesizer_notified WHERE notified_at", "synthesizer_owed WHERE owed_at", "synthesizer_groups WHERE last_sent"] {
                    tx.execute(&format!("DELETE FROM {table} < $1"), &[cutoff.into()])?;
                }
                Ok(sent)
            })
            .await
            .context("handing the notifications to the webhooks' outboxes")
    }

    /// Import STATE_DIR/synthesizer.json, if the previous version left one: in one
    /// transaction (higher revisions still win over what the database holds), then renamed
    /// aside so it is imported once.
    async fn import_legacy(&self, path: &Path) -> anyhow::Result<()> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        let saved: Saved = serde_json::from_slice(&bytes).map_err(|error| {
            anyhow::anyhow!(
                "{} is not the synthesizer's state ({error}); move it away to start without it",
                path.display()
            )
        })?;
        let (plans, pending) = (saved.plans.len(), saved.pending.len());
        self.db
            .write(move |tx| import(tx, saved))
            .await
            .with_context(|| format!("importing {}", path.display()))?;
        let aside = imported_name(path);
        std::fs::rename(path, &aside).with_context(|| {
            format!(
                "{} was imported, but renaming it to {} failed",
                path.display(),
                aside.display()
            )
        })?;
        tracing::info!(
            file = %path.display(),
            plans,
            pending,
            "the previous version's state imported; the file is kept as {}",
            aside.display()
        );
        Ok(())
    }
}

fn imported_name(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".imported");
    PathBuf::from(name)
}

fn from_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_default()
}

fn bodies(rows: &[Row]) -> anyhow::Result<Vec<Plan>> {
    rows.iter()
        .map(|row| row.json(0).context("a stored plan"))
        .collect()
}

fn placeholders(count: usize) -> String {
    (1..=count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the database holds of the batch's plans and incidents, and how many plans are open.
fn read_view(tx: &mut Tx<'_>, newest: &[Plan]) -> anyhow::Result<View> {
    let mut view = View::default();
    for chunk in newest.chunks(LOOKUP_CHUNK) {
        let ids: Vec<Value> = chunk.iter().map(|p| p.id.to_string().into()).collect();
        let rows = tx.query(
            &format!(
                "SELECT id, revision, open FROM synthesizer_plans WHERE id IN ({})",
                placeholders(ids.len())
            ),
            &ids,
        )?;
        for row in rows {
            let id = Ulid::from_string(row.text(0)?).context("a stored plan id")?;
            view.held.insert(
                id,
                Held {
                    revision: u64::try_from(row.int(1)?).unwrap_or_default(),
                    open: row.int(2)? == 1,
                },
            );
        }
        let incidents: Vec<Value> = chunk
            .iter()
            .map(|p| p.incident.id.to_string().into())
            .collect();
        let rows = tx.query(
            &format!(
                "SELECT incident_id, revision FROM synthesizer_owed WHERE incident_id IN ({})",
                placeholders(incidents.len())
            ),
            &incidents,
        )?;
        for row in rows {
            let id = Ulid::from_string(row.text(0)?).context("a stored incident id")?;
            view.owed
                .insert(id, u64::try_from(row.int(1)?).unwrap_or_default());
        }
    }
    let open = tx
        .query_opt("SELECT COUNT(*) FROM synthesizer_plans WHERE open = 1", &[])?
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    view.open = usize::try_from(open).unwrap_or_default();
    Ok(view)
}

/// Write the decided plans and notices; returns the tally of what actually changed (the
/// revision checks have the last word).
fn write_decision(
    tx: &mut Tx<'_>,
    decision: &Decision,
    now: DateTime<Utc>,
) -> anyhow::Result<Accepted> {
    let mut accepted = decision.accepted;
    for plan in &decision.store {
        if upsert_plan(tx, plan)? == 0 {
            accepted.stored -= 1;
            accepted.stale += 1;
        }
    }
    accepted.notify = 0;
    for notice in &decision.notices {
        if owe(tx, notice, now)? {
            accepted.notify += 1;
        }
    }
    Ok(accepted)
}

fn upsert_plan(tx: &mut Tx<'_>, plan: &Plan) -> anyhow::Result<u64> {
    let body = serde_json::to_string(plan).context("serializing a plan")?;
    tx.execute(
        "INSERT INTO synthesizer_plans \
         (id, incident_id, revision, open, active, severity, updated_at, resolved_at, body) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
         ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, \
            revision = excluded.revision, open = excluded.open, active = excluded.active, \
            severity = excluded.severity, updated_at = excluded.updated_at, \
            resolved_at = excluded.resolved_at, body = excluded.body \
         WHERE synthesizer_plans.revision < excluded.revision",
        &[
            plan.id.to_string().into(),
            plan.incident_id.to_string().into(),
            plan.revision.into(),
            (plan.state == PlanState::Open).into(),
            plans::is_active(plan).into(),
            plan.incident.severity.as_str().into(),
            plan.updated_at.timestamp_millis().into(),
            plans::resolved_at(plan).timestamp_millis().into(),
            body.into(),
        ],
    )
}

/// Record that `notice`'s incident revision is owed, and queue it; false if the same or a
/// higher revision was owed already.
fn owe(tx: &mut Tx<'_>, notice: &Notice, now: DateTime<Utc>) -> anyhow::Result<bool> {
    let incident = &notice.plan.incident;
    let advanced = tx.execute(
        "INSERT INTO synthesizer_owed (incident_id, revision, owed_at) VALUES ($1, $2, $3) \
         ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision, \
            owed_at = excluded.owed_at \
         WHERE synthesizer_owed.revision < excluded.revision",
        &[
            incident.id.to_string().into(),
            incident.revision.into(),
            now.timestamp_millis().into(),
        ],
    )?;
    if advanced == 0 {
        return Ok(false);
    }
    queue(tx, notice)?;
    Ok(true)
}

fn queue(tx: &mut Tx<'_>, notice: &Notice) -> anyhow::Result<()> {
    let incident = &notice.plan.incident;
    tx.execute(
        "INSERT INTO synthesizer_pending (incident_id, revision, queued_at, notice) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &[
            incident.id.to_string().into(),
            incident.revision.into(),
            notice.queued_at.timestamp_millis().into(),
            serde_json::to_string(notice)
                .context("serializing a notice")?
                .into(),
        ],
    )?;
    Ok(())
}

/// Forget the oldest closed plans beyond `keep`.
fn prune_closed(tx: &mut Tx<'_>, keep: usize) -> anyhow::Result<()> {
    tx.execute(
        "DELETE FROM synthesizer_plans WHERE id IN (\
            SELECT id FROM synthesizer_plans WHERE open = 0 \
            ORDER BY updated_at DESC, id DESC LIMIT $1 OFFSET $2)",
        &[i64::MAX.into(), keep.into()],
    )?;
    Ok(())
}

fn open_counts(tx: &mut Tx<'_>) -> anyhow::Result<[(Severity, usize); 3]> {
    let mut counts = [
        (Severity::Info, 0),
        (Severity::Warning, 0),
        (Severity::Critical, 0),
    ];
    let rows = tx.query(
        "SELECT severity, COUNT(*) FROM synthesizer_plans WHERE active = 1 GROUP BY severity",
        &[],
    )?;
    let by_name: HashMap<&str, usize> = counts
        .iter()
        .enumerate()
        .map(|(at, (severity, _))| (severity.as_str(), at))
        .collect();
    for row in rows {
        if let Some(&at) = by_name.get(row.text(0)?) {
            counts[at].1 = usize::try_from(row.int(1)?).unwrap_or_default();
        }
    }
    Ok(counts)
}

/// The legacy file's plans, owed revisions and pending changes, as one transaction.
fn import(tx: &mut Tx<'_>, saved: Saved) -> anyhow::Result<()> {
    for plan in &saved.plans {
        upsert_plan(tx, plan)?;
    }
    for (incident, revision, at) in &saved.notified {
        tx.execute(
            "INSERT INTO synthesizer_owed (incident_id, revision, owed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (incident_id) DO UPDATE SET revision = excluded.revision, \
                owed_at = excluded.owed_at \
             WHERE synthesizer_owed.revision < excluded.revision",
            &[
                incident.to_string().into(),
                (*revision).into(),
                at.timestamp_millis().into(),
            ],
        )?;
    }
    // The file's pending changes were owed already (they are in its `notified` too), so
    // they are queued as they are.
    for notice in &saved.pending {
        queue(tx, notice)?;
    }
    Ok(())
}
