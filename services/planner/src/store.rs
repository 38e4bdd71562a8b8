//! The plans in SQL (`obs_core::db`): the database is the truth, on SQLite and on
//! PostgreSQL alike, and every replica reads and writes it; nothing about plans is kept in
//! memory between requests.
//!
//! - `plans`: one row per plan (`incident_id` UNIQUE: one plan per incident), with the plan
//!   as JSON and what the queries need beside it: `revision`, the incident's revision, state,
//!   priority, service, `remediable` (open with a safe step waiting), the remediation
//!   `attempts`, `updated_at` (µs, the list order) and `closed_at` (µs, the pruning order).
//! - `planner_remediation_targets`: when each target was last restarted (or tried) — a
//!   container, a pod, or the Deployment a rollout restarts (`target::Target::key`) — so the
//!   cooldown holds across restarts and replicas.
//!
//! A change reads its row inside the transaction that writes it (`FOR UPDATE` on
//! PostgreSQL, where replicas write concurrently; SQLite has one writer at a time) and
//! writes it back only if the revision it read is still there, re-reading otherwise. The
//! records forwarded for the change are staged in the same transaction.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::db::{now_millis, Db, Dialect, Migration, Schema, Tx, Value};
use obs_model::{Incident, Plan, PlanState, Priority, StepOutcome, StepStatus};
use ulid::Ulid;

use crate::config::RemediationSettings;
use crate::forward::Forward;
use crate::plans::{
    apply, closed_since, is_remediable, next_safe_step, priority_named, record_outcome,
    state_named, Filter, Tally, Tracked,
};
use crate::render::human_duration;
use crate::rules::Rules;
use crate::target::Target;

pub const SCHEMA: Schema = Schema {
    component: "planner",
    migrations: &[Migration::portable(
        1,
        "plans, remediation targets",
        "
CREATE TABLE planner_plans (
    id TEXT PRIMARY KEY,
    incident_id TEXT NOT NULL UNIQUE,
    incident_revision BIGINT NOT NULL,
    revision BIGINT NOT NULL,
    state TEXT NOT NULL,
    priority TEXT NOT NULL,
    service TEXT NOT NULL,
    remediable BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    plan TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    closed_at BIGINT
);
CREATE INDEX planner_plans_by_update ON planner_plans (updated_at, id);
CREATE INDEX planner_plans_by_state ON planner_plans (state, updated_at, id);
CREATE INDEX planner_plans_by_service ON planner_plans (service, updated_at, id);
CREATE INDEX planner_plans_by_closing ON planner_plans (state, closed_at, id);
CREATE INDEX planner_plans_remediable ON planner_plans (updated_at) WHERE remediable = 1;
CREATE TABLE planner_remediation_targets (
    target TEXT PRIMARY KEY,
    last_attempt_at BIGINT NOT NULL
);",
    )],
};

/// A write that found its row changed under it this many times gives up (only concurrent
/// creations of one incident's plan by several replicas can make it retry at all).
const MAX_TRIES: usize = 4;

/// Plans counted by state and priority: a change to the `planner_plans` gauge.
pub type Counts = HashMap<(PlanState, Priority), i64>;

/// The planner's tables, with what a write needs: the rules, the outboxes, the bound on
/// closed plans. Cheap to clone (closures on the database's threads take a copy).
#[derive(Clone)]
pub struct Store {
    db: Db,
    rules: Arc<Rules>,
    forward: Forward,
    closed_max: usize,
}

/// What one `POST /v1/incidents` committed.
#[derive(Debug, Default)]
pub struct Committed {
    pub tally: Tally,
    /// The plans as changed, in order (already staged for the outboxes).
    pub changed: Vec<Plan>,
    pub counts: Counts,
    /// Some changed plan has a safe step waiting.
    pub remediable: bool,
}

/// What auto-remediation may do with a plan's safe step.
#[derive(Debug)]
pub enum Decision {
    /// Nothing waits (the plan closed, was pruned, or its step already has an outcome).
    Nothing,
    /// Not run, and why: the outcome is committed and staged for forwarding.
    Skipped { detail: String },
    /// Run it now: the attempt and the target's cooldown are already counted.
    Run {
        index: usize,
        target: Target,
        attempt: u32,
    },
}

/// A plan's row as a write reads it.
struct Current {
    revision: i64,
    incident_revision: i64,
    attempts: i64,
    plan: String,
}

impl Current {
    fn plan(&self) -> anyhow::Result<Plan> {
        serde_json::from_str(&self.plan).context("a plan in the database is not valid JSON")
    }
}

fn micros(at: DateTime<Utc>) -> i64 {
    at.timestamp_micros()
}

fn int(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Rows a write will change: locked on PostgreSQL until the commit, so two replicas take
/// turns on one plan instead of both deciding from the same old row.
fn for_update(tx: &Tx<'_>) -> &'static str {
    match tx.dialect() {
        Dialect::Postgres => " FOR UPDATE",
        Dialect::Sqlite => "",
    }
}

fn read_current(tx: &mut Tx<'_>, column: &str, id: Ulid) -> anyhow::Result<Option<Current>> {
    let sql = format!(
        "SELECT revision, incident_revision, attempts, plan FROM planner_plans WHERE {column} = $1{}",
        for_update(tx)
    );
    let row = tx.query_opt(&sql, &[id.to_string().into()])?;
    row.map(|row| {
        Ok(Current {
            revision: row.int(0)?,
            incident_revision: row.int(1)?,
            attempts: row.int(2)?,
            plan: row.text(3)?.to_string(),
        })
    })
    .transpose()
}

/// The columns of `plan` after the key, in the order the statements below bind them.
fn columns(plan: &Plan) -> anyhow::Result<[Value; 9]> {
    Ok([
        int(plan.incident.revision).into(),
        int(plan.revision).into(),
        plan.state.as_str().into(),
        plan.priority.as_str().into(),
        plan.service.as_str().into(),
        is_remediable(plan).into(),
        serde_json::to_string(plan)
            .context("serializing a plan")?
            .into(),
        micros(plan.updated_at).into(),
        closed_since(plan).map(micros).into(),
    ])
}

/// Insert a new plan with `attempts`; false if its incident (or id) already has a row.
fn insert(tx: &mut Tx<'_>, plan: &Plan, attempts: i64) -> anyhow::Result<bool> {
    let mut params = vec![
        plan.id.to_string().into(),
        plan.incident_id.to_string().into(),
    ];
    params.extend(columns(plan)?);
    params.push(attempts.into());
    let inserted = tx.execute(
        "INSERT INTO planner_plans (id, incident_id, incident_revision, revision, state, priority, \
         service, remediable, plan, updated_at, closed_at, attempts) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING",
        &params,
    )?;
    Ok(inserted == 1)
}

/// Write `plan` over its row if the row is still at `revision`; false if it changed.
/// `attempts` is not written here: only remediation counts attempts.
fn update(tx: &mut Tx<'_>, plan: &Plan, revision: i64) -> anyhow::Result<bool> {
    let mut params = vec![plan.id.to_string().into(), revision.into()];
    params.extend(columns(plan)?);
    let updated = tx.execute(
        "UPDATE planner_plans SET incident_revision = $3, revision = $4, state = $5, priority = $6, \
         service = $7, remediable = $8, plan = $9, updated_at = $10, closed_at = $11 \
         WHERE id = $1 AND revision = $2",
        &params,
    )?;
    Ok(updated == 1)
}

fn add(counts: &mut Counts, plan: &Plan, by: i64) {
    *counts.entry((plan.state, plan.priority)).or_default() += by;
}

/// Drop the longest-closed plans beyond `closed_max`; counts what went.
fn prune(tx: &mut Tx<'_>, closed_max: usize, counts: &mut Counts) -> anyhow::Result<()> {
    let closed = tx
        .query_opt(
            "SELECT COUNT(*) FROM planner_plans WHERE state = 'closed'",
            &[],
        )?
        .map(|row| row.int(0))
        .transpose()?
        .unwrap_or(0);
    let excess = closed - i64::try_from(closed_max).unwrap_or(i64::MAX);
    if excess <= 0 {
        return Ok(());
    }
    let pruned = tx.query(
        "DELETE FROM planner_plans WHERE id IN (SELECT id FROM planner_plans WHERE state = 'closed' \
         ORDER BY closed_at, id LIMIT $1) RETURNING priority",
        &[excess.into()],
    )?;
    for row in pruned {
        if let Some(priority) = priority_named(row.text(0)?) {
            *counts.entry((PlanState::Closed, priority)).or_default() -= 1;
        }
    }
    Ok(())
}

impl Store {
    pub fn new(db: Db, rules: Rules, forward: Forward, closed_max: usize) -> Self {
        Store {
            db,
            rules: Arc::new(rules),
            forward,
            closed_max,
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn forward(&self) -> &Forward {
        &self.forward
    }

    /// Make or remake the plans of `incidents`, in order, in one transaction with the
    /// records they forward. On error nothing was stored.
    pub async fn apply_incidents(
        &self,
        incidents: Vec<Incident>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Committed> {
        let store = self.clone();
        self.db
            .write(move |tx| store.apply_in(tx, &incidents, now))
            .await
    }

    fn apply_in(
        &self,
        tx: &mut Tx<'_>,
        incidents: &[Incident],
        now: DateTime<Utc>,
    ) -> anyhow::Result<Committed> {
        let mut committed = Committed::default();
        let mut closing = false;
        // Rows are locked in incident-id order, so two replicas applying overlapping batches
        // wait for each other instead of deadlocking; a stable sort keeps the copies of one
        // incident in the order they came.
        let mut ordered: Vec<&Incident> = incidents.iter().collect();
        ordered.sort_by_key(|incident| incident.id);
        for incident in ordered {
            let mut tries = 0;
            let effect = loop {
                tries += 1;
                anyhow::ensure!(
                    tries <= MAX_TRIES,
                    "the plan of incident {} kept changing under this write",
                    incident.id
                );
                let current = read_current(tx, "incident_id", incident.id)?;
                let old = match &current {
                    Some(row) if int(incident.revision) <= row.incident_revision => break None,
                    Some(row) => Some(row.plan()?),
                    None => None,
                };
                let Some((plan, effect)) = apply(&self.rules, old.as_ref(), incident, now) else {
                    break None;
                };
                let written = match (&current, &old) {
                    (Some(row), Some(_)) => update(tx, &plan, row.revision)?,
                    _ => insert(tx, &plan, 0)?,
                };
                if !written {
                    continue;
                }
                if let Some(old) = &old {
                    add(&mut committed.counts, old, -1);
                }
                add(&mut committed.counts, &plan, 1);
                closing |= plan.state == PlanState::Closed;
                committed.remediable |= is_remediable(&plan);
                committed.changed.push(plan);
                break Some(effect);
            };
            committed.tally.count(effect);
        }
        if closing {
            prune(tx, self.closed_max, &mut committed.counts)?;
        }
        self.forward.stage(tx, &committed.changed)?;
        Ok(committed)
    }

    /// One plan, by its id or by its incident's.
    pub async fn get(&self, id: Ulid) -> anyhow::Result<Option<Plan>> {
        self.db
            .read(move |tx| {
                tx.query_opt(
                    "SELECT plan FROM planner_plans WHERE id = $1 OR incident_id = $1",
                    &[id.to_string().into()],
                )?
                .map(|row| row.json(0))
                .transpose()
            })
            .await
    }

    /// Plans, most recently changed first.
    pub async fn list(&self, filter: Filter) -> anyhow::Result<Vec<Plan>> {
        self.db
            .read(move |tx| {
                let mut conditions = Vec::new();
                let mut params: Vec<Value> = Vec::new();
                if let Some(state) = filter.state {
                    params.push(state.as_str().into());
                    conditions.push(format!("state = ${}", params.len()));
                }
                if let Some(service) = filter.service {
                    params.push(service.into());
                    conditions.push(format!("service = ${}", params.len()));
                }
                let mut sql = String::from("SELECT plan FROM planner_plans");
                if !conditions.is_empty() {
                    sql.push_str(" WHERE ");
                    sql.push_str(&conditions.join(" AND "));
                }
                params.push(filter.limit.into());
                sql.push_str(&format!(
                    " ORDER BY updated_at DESC, id DESC LIMIT ${}",
                    params.len()
                ));
                tx.query(&sql, &params)?
                    .iter()
                    .map(|row| row.json(0))
                    .collect()
            })
            .await
    }

    /// Every plan counted by state and priority (the gauge, at start and on PostgreSQL
    /// now and then, where other replicas change plans too).
    pub async fn counts(&self) -> anyhow::Result<Counts> {
        self.db
            .read(|tx| {
                let mut counts = Counts::new();
                for row in tx.query(
                    "SELECT state, priority, COUNT(*) FROM planner_plans GROUP BY state, priority",
                    &[],
                )? {
                    if let (Some(state), Some(priority)) =
                        (state_named(row.text(0)?), priority_named(row.text(1)?))
                    {
                        counts.insert((state, priority), row.int(2)?);
                    }
                }
                Ok(counts)
            })
            .await
    }

    /// Open plans with a safe step waiting, longest waiting first.
    pub async fn remediable(&self, limit: usize) -> anyhow::Result<Vec<Ulid>> {
        self.db
            .read(move |tx| {
                tx.query(
                    "SELECT id FROM planner_plans WHERE remediable = 1 ORDER BY updated_at LIMIT $1",
                    &[limit.into()],
                )?
                .iter()
                .map(|row| Ulid::from_string(row.text(0)?).context("a plan id in the database"))
                .collect()
            })
            .await
    }

    /// Decide, in one transaction, what to do with `plan_id`'s safe step: skip it (the
    /// outcome written and staged), or run it (its attempt and the container's cooldown
    /// counted first, so neither a crash nor another replica can run it twice too soon).
    pub async fn decide(
        &self,
        plan_id: Ulid,
        settings: RemediationSettings,
    ) -> anyhow::Result<Decision> {
        let store = self.clone();
        self.db
            .write(move |tx| store.decide_in(tx, plan_id, settings))
            .await
    }

    fn decide_in(
        &self,
        tx: &mut Tx<'_>,
        plan_id: Ulid,
        settings: RemediationSettings,
    ) -> anyhow::Result<Decision> {
        let Some(current) = read_current(tx, "id", plan_id)? else {
            return Ok(Decision::Nothing);
        };
        let plan = current.plan()?;
        let Some((index, target)) = next_safe_step(&plan).filter(|_| is_remediable(&plan)) else {
            return Ok(Decision::Nothing);
        };
        let attempts = u32::try_from(current.attempts).unwrap_or(u32::MAX);
        let attempt = attempts.saturating_add(1);
        let skip = if attempts >= settings.max_attempts {
            Some(format!(
                "not run: this plan used its {} of {} restarts (REMEDIATE_MAX_ATTEMPTS)",
                attempts, settings.max_attempts
            ))
        } else {
            self.cooldown_in(tx, &target, settings.cooldown)?
        };
        match skip {
            Some(detail) => {
                let outcome = StepOutcome {
                    status: StepStatus::Skipped,
                    at: Utc::now(),
                    attempt,
                    detail: detail.clone(),
                };
                Ok(
                    match self.record_in(tx, plan_id, index, &target.text(), outcome)? {
                        Some(_) => Decision::Skipped { detail },
                        None => Decision::Nothing,
                    },
                )
            }
            None => {
                tx.execute(
                    "INSERT INTO planner_remediation_targets (target, last_attempt_at) VALUES ($1, $2) \
                     ON CONFLICT (target) DO UPDATE SET last_attempt_at = excluded.last_attempt_at",
                    &[target.key().as_str().into(), now_millis().into()],
                )?;
                tx.execute(
                    "UPDATE planner_plans SET attempts = attempts + 1 WHERE id = $1",
                    &[plan_id.to_string().into()],
                )?;
                Ok(Decision::Run {
                    index,
                    target,
                    attempt,
                })
            }
        }
    }

    /// Why `target` may not be restarted now, if it was within `cooldown`.
    fn cooldown_in(
        &self,
        tx: &mut Tx<'_>,
        target: &Target,
        cooldown: Duration,
    ) -> anyhow::Result<Option<String>> {
        let sql = format!(
            "SELECT last_attempt_at FROM planner_remediation_targets WHERE target = $1{}",
            for_update(tx)
        );
        let Some(row) = tx.query_opt(&sql, &[target.key().as_str().into()])? else {
            return Ok(None);
        };
        let ago = chrono::Duration::milliseconds(now_millis().saturating_sub(row.int(0)?));
        let cooldown = chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        Ok((ago < cooldown).then(|| {
            format!(
                "not run: {} was restarted {} ago, within the cooldown of {} (REMEDIATE_COOLDOWN_SECONDS)",
                target.describe(),
                human_duration(ago),
                human_duration(cooldown),
            )
        }))
    }

    /// Write what became of step `index` of `plan_id` (if it still waits) and stage the
    /// changed plan for forwarding; returns it.
    pub async fn record(
        &self,
        plan_id: Ulid,
        index: usize,
        target: String,
        outcome: StepOutcome,
    ) -> anyhow::Result<Option<Plan>> {
        let store = self.clone();
        self.db
            .write(move |tx| store.record_in(tx, plan_id, index, &target, outcome))
            .await
    }

    fn record_in(
        &self,
        tx: &mut Tx<'_>,
        plan_id: Ulid,
        index: usize,
        target: &str,
        outcome: StepOutcome,
    ) -> anyhow::Result<Option<Plan>> {
        for _ in 0..MAX_TRIES {
            let Some(current) = read_current(tx, "id", plan_id)? else {
                return Ok(None);
            };
            let mut plan = current.plan()?;
            if !record_outcome(&mut plan, index, target, outcome.clone(), Utc::now()) {
                return Ok(None);
            }
            if update(tx, &plan, current.revision)? {
                self.forward.stage(tx, std::slice::from_ref(&plan))?;
                return Ok(Some(plan));
            }
        }
        anyhow::bail!("plan {plan_id} kept changing under this write")
    }

    /// Plans saved by an earlier version: inserted (a plan already in the database wins,
    /// so importing twice changes nothing), and the cooldowns rebuilt from their outcomes.
    /// Returns how many were new.
    pub(crate) fn import_in(tx: &mut Tx<'_>, plans: &[Tracked]) -> anyhow::Result<usize> {
        let mut imported = 0;
        let mut last: HashMap<String, i64> = HashMap::new();
        for tracked in plans {
            if insert(tx, &tracked.plan, tracked.attempts.into())? {
                imported += 1;
            }
            for step in &tracked.plan.steps {
                let (Some(target), Some(outcome)) = (&step.target, &step.outcome) else {
                    continue;
                };
                let Some(target) = Target::of(&step.action, target, &tracked.plan.incident) else {
                    continue;
                };
                if matches!(outcome.status, StepStatus::Succeeded | StepStatus::Failed) {
                    let at = outcome.at.timestamp_millis();
                    let entry = last.entry(target.key()).or_insert(at);
                    *entry = (*entry).max(at);
                }
            }
        }
        for (target, at) in last {
            tx.execute(
                "INSERT INTO planner_remediation_targets (target, last_attempt_at) VALUES ($1, $2) \
                 ON CONFLICT (target) DO UPDATE SET last_attempt_at = excluded.last_attempt_at \
                 WHERE planner_remediation_targets.last_attempt_at < excluded.last_attempt_at",
                &[target.as_str().into(), at.into()],
            )?;
        }
        Ok(imported)
    }
}
