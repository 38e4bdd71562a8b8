//! How a plan is made and remade (pure: no I/O). The caller ([`crate::store`]) reads the
//! plan's row inside its transaction, asks [`apply`] what an incident copy changes, and
//! writes the result with the records it forwards.
//!
//! Copies arrive at least once and in any order: of two copies of one incident the higher
//! `revision` is newer, and an older or equal one changes nothing. An active incident keeps
//! its plan open (steps re-rendered from the newest facts, outcomes kept); a resolved one
//! closes it; a reopened one reopens it with fresh steps.

use chrono::{DateTime, Utc};
use obs_model::{Incident, Plan, PlanState, PlanStep, Priority, StepOutcome};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

use crate::rules::Rules;
use crate::target::Target;

/// A plan and what the planner must remember about it that is not on the wire. Also the
/// format of the plan files of earlier versions (imported once, see [`crate::legacy`]).
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

/// What one incident copy did to its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Created,
    Updated,
    Closed,
    Reopened,
}

impl Tally {
    pub fn count(&mut self, effect: Option<Effect>) {
        self.received += 1;
        match effect {
            None => self.ignored += 1,
            Some(Effect::Created) => self.created += 1,
            Some(Effect::Updated) => self.updated += 1,
            Some(Effect::Closed) => self.closed += 1,
            Some(Effect::Reopened) => self.reopened += 1,
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

/// A safe step that has not run: its index and what it acts on.
pub fn next_safe_step(plan: &Plan) -> Option<(usize, Target)> {
    plan.steps.iter().enumerate().find_map(|(index, step)| {
        if !step.safe || step.outcome.is_some() {
            return None;
        }
        let target = Target::of(&step.action, step.target.as_deref()?, &plan.incident)?;
        Some((index, target))
    })
}

/// An open plan with a safe step waiting: what auto-remediation looks for.
pub fn is_remediable(plan: &Plan) -> bool {
    plan.state == PlanState::Open && next_safe_step(plan).is_some()
}

/// The plan `incident` makes of `current` (None: it has no plan yet), or None when the copy
/// is no newer than what the plan has.
pub fn apply(
    rules: &Rules,
    current: Option<&Plan>,
    incident: &Incident,
    now: DateTime<Utc>,
) -> Option<(Plan, Effect)> {
    let Some(current) = current else {
        return Some(create(rules, incident, now));
    };
    if incident.revision <= current.incident.revision {
        return None;
    }
    let mut plan = current.clone();
    let active = incident.state.is_active();
    let effect = match (plan.state, active) {
        (PlanState::Open, true) => {
            let rendered = rules.render(incident, now);
            let old_steps = std::mem::take(&mut plan.steps);
            plan.steps = rendered
                .steps
                .into_iter()
                .map(|step| keep_outcome(step, &old_steps))
                .collect();
            plan.rule = rendered.rule;
            plan.priority = rendered.priority;
            plan.summary = rendered.summary;
            Effect::Updated
        }
        (PlanState::Closed, true) => {
            let rendered = rules.render(incident, now);
            plan.state = PlanState::Open;
            plan.closed_at = None;
            plan.rule = rendered.rule;
            plan.priority = rendered.priority;
            plan.summary = rendered.summary;
            plan.steps = rendered.steps;
            Effect::Reopened
        }
        (PlanState::Open, false) => {
            plan.state = PlanState::Closed;
            plan.closed_at = Some(incident.resolved_at.unwrap_or(now));
            Effect::Closed
        }
        // Still closed: a later copy (a comment by hand, say) is kept all the same.
        (PlanState::Closed, false) => Effect::Updated,
    };
    plan.incident = incident.clone();
    plan.updated_at = now;
    plan.revision += 1;
    Some((plan, effect))
}

fn create(rules: &Rules, incident: &Incident, now: DateTime<Utc>) -> (Plan, Effect) {
    let rendered = rules.render(incident, now);
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
        incident: incident.clone(),
        revision: 1,
    };
    // First heard of when it was already over (its earlier copies are late): counted as
    // closed, not created.
    let effect = if active {
        Effect::Created
    } else {
        Effect::Closed
    };
    (plan, effect)
}

/// Write what became of safe step `index` into `plan`, if the plan still has that step
/// waiting; true if it changed (one revision up).
pub fn record_outcome(
    plan: &mut Plan,
    index: usize,
    target: &str,
    outcome: StepOutcome,
    now: DateTime<Utc>,
) -> bool {
    if plan.state != PlanState::Open {
        return false;
    }
    let Some(step) = plan.steps.get_mut(index) else {
        return false;
    };
    if step.outcome.is_some() || step.target.as_deref() != Some(target) {
        return false;
    }
    step.outcome = Some(outcome);
    plan.updated_at = now;
    plan.revision += 1;
    true
}

/// The instant that orders closed plans for pruning: longest closed first.
pub fn closed_since(plan: &Plan) -> Option<DateTime<Utc>> {
    (plan.state == PlanState::Closed).then(|| plan.closed_at.unwrap_or(plan.updated_at))
}

/// `Priority` from its name (the `priority` column).
pub fn priority_named(name: &str) -> Option<Priority> {
    [Priority::P1, Priority::P2, Priority::P3, Priority::P4]
        .into_iter()
        .find(|priority| priority.as_str() == name)
}

/// `PlanState` from its name (the `state` column).
pub fn state_named(name: &str) -> Option<PlanState> {
    [PlanState::Open, PlanState::Closed]
        .into_iter()
        .find(|state| state.as_str() == name)
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

    fn rules() -> Rules {
        Rules::builtin().unwrap()
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

    /// Apply `incident` to `plan` as the store does; the tally counts what happened.
    fn step(
        rules: &Rules,
        plan: &mut Option<Plan>,
        incident: Incident,
        tally: &mut Tally,
    ) -> Option<Effect> {
        let applied = apply(rules, plan.as_ref(), &incident, Utc::now());
        let effect = applied.as_ref().map(|(_, effect)| *effect);
        if let Some((next, _)) = applied {
            *plan = Some(next);
        }
        tally.count(effect);
        effect
    }

    #[test]
    fn the_highest_revision_wins_whatever_the_order() {
        let rules = rules();
        let base = incident(IssueKind::Crashed, json!({"exit_code": 1}));
        let mut plan = None;
        let mut tally = Tally::default();
        step(
            &rules,
            &mut plan,
            copy(&base, 3, IncidentState::Resolved),
            &mut tally,
        );
        step(
            &rules,
            &mut plan,
            copy(&base, 1, IncidentState::Open),
            &mut tally,
        );
        step(
            &rules,
            &mut plan,
            copy(&base, 3, IncidentState::Open),
            &mut tally,
        );
        assert_eq!(tally.closed, 1);
        assert_eq!(tally.ignored, 2);
        let plan = plan.unwrap();
        assert_eq!(plan.state, PlanState::Closed);
        assert_eq!(plan.revision, 1);
        assert!(plan.closed_at.is_some());
    }

    #[test]
    fn updates_keep_outcomes_and_reopening_starts_fresh() {
        let rules = rules();
        let base = incident(IssueKind::Unhealthy, json!({"container": "api-1"}));
        let mut plan = None;
        let mut tally = Tally::default();
        step(
            &rules,
            &mut plan,
            copy(&base, 1, IncidentState::Open),
            &mut tally,
        );
        assert!(is_remediable(plan.as_ref().unwrap()));
        let current = plan.as_mut().unwrap();
        let (index, target) = next_safe_step(current).unwrap();
        let outcome = StepOutcome {
            status: StepStatus::Succeeded,
            at: Utc::now(),
            attempt: 1,
            detail: "restarted".into(),
        };
        assert!(record_outcome(
            current,
            index,
            &target.text(),
            outcome.clone(),
            Utc::now()
        ));
        assert!(
            !record_outcome(current, index, &target.text(), outcome, Utc::now()),
            "once only"
        );
        assert!(!is_remediable(current));
        step(
            &rules,
            &mut plan,
            copy(&base, 2, IncidentState::Acknowledged),
            &mut tally,
        );
        let current = plan.as_ref().unwrap();
        assert_eq!(
            current.steps[index].outcome.as_ref().unwrap().detail,
            "restarted"
        );
        step(
            &rules,
            &mut plan,
            copy(&base, 3, IncidentState::Resolved),
            &mut tally,
        );
        assert!(!is_remediable(plan.as_ref().unwrap()), "closed");
        step(
            &rules,
            &mut plan,
            copy(&base, 4, IncidentState::Open),
            &mut tally,
        );
        let current = plan.unwrap();
        assert_eq!(current.state, PlanState::Open);
        assert!(current.closed_at.is_none());
        assert!(current.steps.iter().all(|step| step.outcome.is_none()));
        assert!(is_remediable(&current), "fresh steps may run again");
        assert_eq!(tally.reopened, 1);
        assert_eq!(current.revision, 5);
    }

    #[test]
    fn names_of_states_and_priorities_read_back() {
        for priority in [Priority::P1, Priority::P2, Priority::P3, Priority::P4] {
            assert_eq!(priority_named(priority.as_str()), Some(priority));
        }
        for state in [PlanState::Open, PlanState::Closed] {
            assert_eq!(state_named(state.as_str()), Some(state));
        }
        assert_eq!(priority_named("P9"), None);
    }
}
