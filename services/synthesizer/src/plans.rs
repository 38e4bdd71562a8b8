//! What the synthesizer decides about a batch of plans (and, through them, incidents), and
//! which changes are owed a notification. Pure: no I/O, no clock of its own; [`crate::store`]
//! reads the [`View`] a batch needs inside the batch's transaction and writes the
//! [`Decision`] in that same transaction.
//!
//! The planner delivers at least once, so copies arrive again and out of order: of two
//! copies of one plan the higher `revision` wins and an older or equal one changes nothing.
//! A notification is owed once per incident revision (`incident.revision` grows with every
//! incident change; a plan's own revision also grows with step outcomes, which are not news),
//! so a redelivered plan never notifies twice.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use obs_model::{IncidentChange, Plan, PlanState, Severity};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// A change owed to the webhooks: the plan as it was when the change arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub plan: Plan,
    pub queued_at: DateTime<Utc>,
}

impl Notice {
    /// The `notified` key's last part: whether people hear of trouble or of its end.
    pub fn kind(&self) -> &'static str {
        match self.plan.incident.change {
            IncidentChange::Resolved => "resolve",
            _ => "open",
        }
    }
}

/// Which changes reach people.
#[derive(Debug, Clone, Copy)]
pub struct NotifyRules {
    /// No webhooks: nothing is owed.
    pub enabled: bool,
    pub min_severity: Severity,
}

impl NotifyRules {
    fn wants(&self, plan: &Plan) -> bool {
        let incident = &plan.incident;
        self.enabled
            && incident.notify
            && incident.severity >= self.min_severity
            && matches!(
                incident.change,
                IncidentChange::Opened
                    | IncidentChange::Reopened
                    | IncidentChange::Escalated
                    | IncidentChange::Resolved
            )
    }
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Accepted {
    pub received: usize,
    /// New plans and newer revisions of known ones.
    pub stored: usize,
    /// Copies at or below the revision already held (redeliveries, late arrivals).
    pub stale: usize,
    /// Changes queued for the webhooks.
    pub notify: usize,
}

/// A batch that would hold more open plans than allowed.
#[derive(Debug)]
pub struct Full {
    pub open: usize,
    pub max: usize,
}

/// What the database holds of a plan, as far as a batch needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub revision: u64,
    pub open: bool,
}

/// The part of the book a batch touches, read in the batch's transaction.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// The batch's plans that are held already.
    pub held: HashMap<Ulid, Held>,
    /// The batch's incidents → the highest revision already owed a notification.
    pub owed: HashMap<Ulid, u64>,
    /// Open plans held, all of them.
    pub open: usize,
}

/// What a batch changes: written in one transaction, or not at all.
#[derive(Debug, Default)]
pub struct Decision {
    pub accepted: Accepted,
    /// New plans and newer revisions, each plan once.
    pub store: Vec<Plan>,
    /// Changes owed to the webhooks, in the order they arrived.
    pub notices: Vec<Notice>,
}

/// The newest copy of each plan in `batch`, in the order first seen, and how many copies
/// were left out.
pub fn newest_copies(batch: Vec<Plan>) -> (Vec<Plan>, usize) {
    let mut newest: Vec<Plan> = Vec::with_capacity(batch.len());
    let mut index: HashMap<Ulid, usize> = HashMap::new();
    let mut stale = 0;
    for plan in batch {
        match index.get(&plan.id) {
            Some(&at) if newest[at].revision >= plan.revision => stale += 1,
            Some(&at) => {
                newest[at] = plan;
                stale += 1;
            }
            None => {
                index.insert(plan.id, newest.len());
                newest.push(plan);
            }
        }
    }
    (newest, stale)
}

/// Decide what a batch (already validated, each plan once: [`newest_copies`]) changes,
/// given what `view` says is held. All or nothing: a batch that would exceed `max_open`
/// changes nothing.
pub fn decide(
    newest: Vec<Plan>,
    copies_left_out: usize,
    view: &View,
    rules: NotifyRules,
    max_open: usize,
    now: DateTime<Utc>,
) -> Result<Decision, Full> {
    let mut accepted = Accepted {
        received: newest.len() + copies_left_out,
        stale: copies_left_out,
        ..Accepted::default()
    };
    let (fresh, stale): (Vec<Plan>, Vec<Plan>) = newest.into_iter().partition(|plan| {
        view.held
            .get(&plan.id)
            .is_none_or(|held| plan.revision > held.revision)
    });
    accepted.stale += stale.len();

    let is_open = |plan: &Plan| plan.state == PlanState::Open;
    let opening = fresh.iter().filter(|p| is_open(p)).count();
    let replaced_open = fresh
        .iter()
        .filter(|p| view.held.get(&p.id).is_some_and(|held| held.open))
        .count();
    let open_after = (view.open + opening).saturating_sub(replaced_open);
    if open_after > max_open && opening > replaced_open {
        return Err(Full {
            open: open_after,
            max: max_open,
        });
    }

    let mut owed_now: HashMap<Ulid, u64> = HashMap::new();
    let mut notices = Vec::new();
    for plan in &fresh {
        let incident = &plan.incident;
        let owed_before = owed_now
            .get(&incident.id)
            .or_else(|| view.owed.get(&incident.id))
            .copied();
        if rules.wants(plan) && owed_before.is_none_or(|revision| incident.revision > revision) {
            owed_now.insert(incident.id, incident.revision);
            notices.push(Notice {
                plan: plan.clone(),
                queued_at: now,
            });
        }
    }
    accepted.stored = fresh.len();
    accepted.notify = notices.len();
    Ok(Decision {
        accepted,
        store: fresh,
        notices,
    })
}

impl View {
    /// What the view holds once `decision` is committed (tests, and the legacy import).
    pub fn apply(&mut self, decision: &Decision) {
        for plan in &decision.store {
            let open = plan.state == PlanState::Open;
            let before = self.held.insert(
                plan.id,
                Held {
                    revision: plan.revision,
                    open,
                },
            );
            if before.is_some_and(|held| held.open) {
                self.open -= 1;
            }
            if open {
                self.open += 1;
            }
        }
        for notice in &decision.notices {
            self.owed
                .insert(notice.plan.incident.id, notice.plan.incident.revision);
        }
    }
}

/// Plans whose incident is still active, most urgent first (priority, then severity, then
/// the oldest trouble).
pub fn sort_active(active: &mut [Plan]) {
    active.sort_by(|a, b| {
        (
            a.priority,
            std::cmp::Reverse(a.incident.severity),
            a.incident.first_seen,
        )
            .cmp(&(
                b.priority,
                std::cmp::Reverse(b.incident.severity),
                b.incident.first_seen,
            ))
    });
}

/// Whether a plan counts as active trouble: open, and its incident not resolved.
pub fn is_active(plan: &Plan) -> bool {
    plan.state == PlanState::Open && plan.incident.state.is_active()
}

/// The state file the previous version kept (STATE_DIR/synthesizer.json), imported once.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub notified: Vec<(Ulid, u64, DateTime<Utc>)>,
    #[serde(default)]
    pub pending: Vec<Notice>,
}

/// When a plan's trouble ended: its incident's resolution, or the plan's closing.
pub fn resolved_at(plan: &Plan) -> DateTime<Utc> {
    plan.incident
        .resolved_at
        .or(plan.closed_at)
        .unwrap_or(plan.updated_at)
}

#[cfg(test)]
mod tests;
