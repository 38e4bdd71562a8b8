//! The plans in memory: one per incident, made and remade by the rules as copies of the
//! incident arrive (pure: no I/O; the caller forwards and saves what changed).
//!
//! Copies arrive at least once and in any order: of two copies of one incident the higher
//! `revision` is newer, and an older or equal one changes nothing. An active incident keeps
//! its plan open (steps re-rendered from the newest facts, outcomes kept); a resolved one
//! closes it; a reopened one reopens it with fresh steps.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use obs_model::{Incident, Plan, PlanState, PlanStep, Priority, StepOutcome};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::rules::{Rules, RESTART_CONTAINER};

/// A plan and what the planner must remember about it that is not on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tracked {
    pub plan: Plan,
    /// Remediation attempts over the plan's whole life, reopenings included, so a flapping
    /// incident cannot restart a container without end.
    #[serde(default)]
    pub attempts: u32,
}

/// What one `POST /v1/incidents` did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub received: u64,
    pub created: u64,
    pub updated: u64,
    pub closed: u64,
    pub reopened: u64,
    /// Copies no newer than what the plan already had (redeliveries, late arrivals).
    pub ignored: u64,
}

/// What an operation changed, for the caller to forward, save and act on.
#[derive(Debug, Default)]
pub struct Applied {
    pub tally: Tally,
    /// Copies of the plans at each change, in order: what is forwarded.
    pub changed: Vec<Plan>,
    /// Plans to save (their latest state is saved).
    pub to_save: Vec<Ulid>,
    /// Closed plans pruned beyond CLOSED_PLANS_MAX.
    pub pruned: Vec<Ulid>,
    /// Open plans with a safe step waiting to run.
    pub to_remediate: Vec<Ulid>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.pruned.is_empty()
    }

    fn changed(&mut self, tracked: &Tracked) {
        self.changed.push(tracked.plan.clone());
        self.to_save.push(tracked.plan.id);
        if tracked.plan.state == PlanState::Open && next_safe_step(&tracked.plan).is_some() {
            self.to_remediate.push(tracked.plan.id);
        }
    }
}

/// `GET /v1/plans` filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub state: Option<PlanState>,
    pub service: Option<String>,
    pub limit: usize,
}

/// A safe step that has not run: its index and target.
pub fn next_safe_step(plan: &Plan) -> Option<(usize, String)> {
    plan.steps.iter().enumerate().find_map(|(index, step)| {
        let runnable = step.safe && step.action == RESTART_CONTAINER && step.outcome.is_none();
        runnable
            .then(|| step.target.clone())
            .flatten()
            .map(|target| (index, target))
    })
}

pub struct Book {
    rules: Rules,
    closed_max: usize,
    plans: HashMap<Ulid, Tracked>,
    by_incident: HashMap<Ulid, Ulid>,
    closed: usize,
}

impl Book {
    pub fn new(rules: Rules, closed_max: usize) -> Self {
        Book {
            rules,
            closed_max,
            plans: HashMap::new(),
            by_incident: HashMap::new(),
            closed: 0,
        }
    }

    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    /// Plans saved by an earlier run.
    pub fn restore(&mut self, saved: Vec<Tracked>) {
        for tracked in saved {
            self.insert(tracked);
        }
    }

    fn insert(&mut self, tracked: Tracked) {
        if tracked.plan.state == PlanState::Closed {
            self.closed += 1;
        }
        self.by_incident
            .insert(tracked.plan.incident_id, tracked.plan.id);
        self.plans.insert(tracked.plan.id, tracked);
    }

    /// By plan id, or by the id of its incident.
    pub fn get(&self, id: &Ulid) -> Option<&Tracked> {
        self.plans.get(id).or_else(|| {
            self.by_incident
                .get(id)
                .and_then(|plan| self.plans.get(plan))
        })
    }

    pub fn all(&self) -> impl Iterator<Item = &Tracked> {
        self.plans.values()
    }

    /// Most recently changed first.
    pub fn list(&self, filter: &Filter) -> Vec<Plan> {
        let mut found: Vec<&Plan> = self
            .plans
            .values()
            .map(|tracked| &tracked.plan)
            .filter(|plan| filter.state.is_none_or(|state| plan.state == state))
            .filter(|plan| {
                filter
                    .service
                    .as_ref()
                    .is_none_or(|service| plan.service == *service)
            })
            .collect();
        found.sort_by(|a, b| b.updated_at.cmp(&a.updated_at).then(b.id.cmp(&a.id)));
        found.into_iter().take(filter.limit).cloned().collect()
    }

    /// Plans by state and priority, for the gauge.
    pub fn counts(&self) -> HashMap<(PlanState, Priority), i64> {
        let mut counts = HashMap::new();
        for tracked in self.plans.values() {
            *counts
                .entry((tracked.plan.state, tracked.plan.priority))
                .or_default() += 1;
        }
        counts
    }

    /// Make or remake the plan of `incident`.
    pub fn apply(&mut self, incident: Incident, now: DateTime<Utc>, applied: &mut Applied) {
        applied.tally.received += 1;
        let Some(plan_id) = self.by_incident.get(&incident.id).copied() else {
            self.create(incident, now, applied);
            return;
        };
        let Some(tracked) = self.plans.get_mut(&plan_id) else {
            return;
        };
        let plan = &mut tracked.plan;
        if incident.revision <= plan.incident.revision {
            applied.tally.ignored += 1;
            return;
        }
        let active = incident.state.is_active();
        match (plan.state, active) {
            (PlanState::Open, true) => {
                let rendered = self.rules.render(&incident, now);
                let old_steps = std::mem::take(&mut plan.steps);
                plan.steps = rendered
                    .steps
                    .into_iter()
                    .map(|step| keep_outcome(step, &old_steps))
                    .collect();
                plan.rule = rendered.rule;
                plan.priority = rendered.priority;
                plan.summary = rendered.summary;
                applied.tally.updated += 1;
            }
            (PlanState::Closed, true) => {
                let rendered = self.rules.render(&incident, now);
                plan.state = PlanState::Open;
                plan.closed_at = None;
                plan.rule = rendered.rule;
                plan.priority = rendered.priority;
                plan.summary = rendered.summary;
                plan.steps = rendered.steps;
                self.closed -= 1;
                applied.tally.reopened += 1;
            }
            (PlanState::Open, false) => {
                plan.state = PlanState::Closed;
                plan.closed_at = Some(incident.resolved_at.unwrap_or(now));
                self.closed += 1;
                applied.tally.closed += 1;
            }
            // Still closed: a later copy (a comment by hand, say) is kept all the same.
            (PlanState::Closed, false) => applied.tally.updated += 1,
        }
        plan.incident = incident;
        plan.updated_at = now;
        plan.revision += 1;
        applied.changed(tracked);
        self.prune(applied);
    }

    fn create(&mut self, incident: Incident, now: DateTime<Utc>, applied: &mut Applied) {
        let rendered = self.rules.render(&incident, now);
        let active = incident.state.is_active();
        let plan = Plan {
            id: Ulid::new(),
            incident_id: incident.id,
            service: incident.service.clone(),
            priority: rendered.priority,
            state: if active {
                PlanState::Open
            } else {
                PlanState::Closed
            },
            rule: rendered.rule,
            summary: rendered.summary,
            steps: rendered.steps,
            created_at: now,
            updated_at: now,
            closed_at: (!active).then(|| incident.resolved_at.unwrap_or(now)),
            incident,
            revision: 1,
        };
        if active {
            applied.tally.created += 1;
        } else {
            // First heard of when it was already over (its earlier copies are late).
            applied.tally.closed += 1;
        }
        let tracked = Tracked { plan, attempts: 0 };
        applied.changed(&tracked);
        self.insert(tracked);
        self.prune(applied);
    }

    /// Record what became of safe step `index` of `plan_id`, if the plan still has that
    /// step waiting; returns the changed plan.
    pub fn record_outcome(
        &mut self,
        plan_id: Ulid,
        index: usize,
        target: &str,
        outcome: StepOutcome,
        attempted: bool,
        now: DateTime<Utc>,
    ) -> Option<Plan> {
        let tracked = self.plans.get_mut(&plan_id)?;
        let plan = &mut tracked.plan;
        let step = plan.steps.get_mut(index)?;
        if plan.state != PlanState::Open
            || step.outcome.is_some()
            || step.target.as_deref() != Some(target)
        {
            return None;
        }
        step.outcome = Some(outcome);
        if attempted {
            tracked.attempts += 1;
        }
        plan.updated_at = now;
        plan.revision += 1;
        Some(plan.clone())
    }

    /// Drop the longest-closed plans beyond CLOSED_PLANS_MAX.
    fn prune(&mut self, applied: &mut Applied) {
        if self.closed <= self.closed_max {
            return;
        }
        let mut closed: Vec<(DateTime<Utc>, Ulid)> = self
            .plans
            .values()
            .filter(|tracked| tracked.plan.state == PlanState::Closed)
            .map(|tracked| {
                let plan = &tracked.plan;
                (plan.closed_at.unwrap_or(plan.updated_at), plan.id)
            })
            .collect();
        closed.sort();
        let excess = self.closed - self.closed_max;
        for (_, id) in closed.into_iter().take(excess) {
            if let Some(tracked) = self.plans.remove(&id) {
                self.by_incident.remove(&tracked.plan.incident_id);
                self.closed -= 1;
                applied.pruned.push(id);
            }
        }
    }
}

/// A re-rendered step keeps what became of the same step (same action and target) before.
fn keep_outcome(mut step: PlanStep, old: &[PlanStep]) -> PlanStep {
    step.outcome = old
        .iter()
        .find(|previous| previous.action == step.action && previous.target == step.target)
        .and_then(|previous| previous.outcome.clone());
    step
}

#[cfg(test)]
mod tests {
    use obs_model::{IncidentState, IssueKind, StepStatus};
    use serde_json::json;

    use super::*;
    use crate::rules::tests::incident;

    fn book() -> Book {
        Book::new(Rules::builtin().unwrap(), 2)
    }

    fn copy(base: &Incident, revision: u64, state: IncidentState) -> Incident {
        let mut copy = base.clone();
        copy.revision = revision;
        copy.state = state;
        if state == IncidentState::Resolved {
            copy.resolved_at = Some(Utc::now());
        }
        copy
    }

    #[test]
    fn the_highest_revision_wins_whatever_the_order() {
        let mut book = book();
        let base = incident(IssueKind::Crashed, json!({"exit_code": 1}));
        let mut applied = Applied::default();
        book.apply(
            copy(&base, 3, IncidentState::Resolved),
            Utc::now(),
            &mut applied,
        );
        book.apply(
            copy(&base, 1, IncidentState::Open),
            Utc::now(),
            &mut applied,
        );
        book.apply(
            copy(&base, 3, IncidentState::Open),
            Utc::now(),
            &mut applied,
        );
        assert_eq!(applied.tally.closed, 1);
        assert_eq!(applied.tally.ignored, 2);
        let plan = &book.get(&base.id).unwrap().plan;
        assert_eq!(plan.state, PlanState::Closed);
        assert_eq!(plan.revision, 1);
        assert!(plan.closed_at.is_some());
    }

    #[test]
    fn updates_keep_outcomes_and_reopening_starts_fresh() {
        let mut book = book();
        let base = incident(IssueKind::Unhealthy, json!({"container": "api-1"}));
        let mut applied = Applied::default();
        book.apply(
            copy(&base, 1, IncidentState::Open),
            Utc::now(),
            &mut applied,
        );
        assert_eq!(applied.to_remediate.len(), 1);
        let plan_id = book.get(&base.id).unwrap().plan.id;
        let (index, target) = next_safe_step(&book.get(&plan_id).unwrap().plan).unwrap();
        let outcome = StepOutcome {
            status: StepStatus::Succeeded,
            at: Utc::now(),
            attempt: 1,
            detail: "restarted".into(),
        };
        assert!(book
            .record_outcome(plan_id, index, &target, outcome.clone(), true, Utc::now())
            .is_some());
        assert!(
            book.record_outcome(plan_id, index, &target, outcome, true, Utc::now())
                .is_none(),
            "once only"
        );
        book.apply(
            copy(&base, 2, IncidentState::Acknowledged),
            Utc::now(),
            &mut applied,
        );
        let plan = &book.get(&plan_id).unwrap().plan;
        assert_eq!(
            plan.steps[index].outcome.as_ref().unwrap().detail,
            "restarted"
        );
        book.apply(
            copy(&base, 3, IncidentState::Resolved),
            Utc::now(),
            &mut applied,
        );
        book.apply(
            copy(&base, 4, IncidentState::Open),
            Utc::now(),
            &mut applied,
        );
        let tracked = book.get(&plan_id).unwrap();
        assert_eq!(tracked.plan.state, PlanState::Open);
        assert!(tracked.plan.closed_at.is_none());
        assert!(tracked.plan.steps.iter().all(|step| step.outcome.is_none()));
        assert_eq!(tracked.attempts, 1, "attempts count over reopenings");
        assert_eq!(applied.tally.reopened, 1);
    }

    #[test]
    fn the_longest_closed_plans_are_pruned_beyond_the_bound() {
        let mut book = book();
        let mut applied = Applied::default();
        let mut ids = vec![];
        for _ in 0..3 {
            let base = incident(IssueKind::Missing, json!({}));
            ids.push(base.id);
            book.apply(
                copy(&base, 1, IncidentState::Resolved),
                Utc::now(),
                &mut applied,
            );
        }
        assert_eq!(book.len(), 2);
        assert_eq!(applied.pruned.len(), 1);
        assert!(book.get(&ids[0]).is_none());
    }
}
