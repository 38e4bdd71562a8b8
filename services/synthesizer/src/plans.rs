//! What the synthesizer knows of plans (and, through them, incidents), and which changes
//! are owed a notification. Pure: no I/O, no clock of its own.
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

/// Incident revisions remembered as notified, at most: enough to outlast any redelivery of
/// a plan that was pruned, small enough to be nothing (a few MB).
const NOTIFIED_MEMORY: usize = 100_000;

/// A change owed to the webhooks: the plan as it was when the change arrived.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notice {
    pub plan: Plan,
    pub queued_at: DateTime<Utc>,
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

#[derive(Debug, Default)]
pub struct Book {
    plans: HashMap<Ulid, Plan>,
    /// Incident id → (highest incident revision already owed a notification, when).
    notified: HashMap<Ulid, (u64, DateTime<Utc>)>,
    /// Owed and not yet handed to the webhooks' outboxes, oldest first.
    pending: Vec<Notice>,
}

/// The book as saved under STATE_DIR.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Saved {
    pub plans: Vec<Plan>,
    #[serde(default)]
    pub notified: Vec<(Ulid, u64, DateTime<Utc>)>,
    #[serde(default)]
    pub pending: Vec<Notice>,
}

impl Book {
    pub fn restore(saved: Saved) -> Book {
        Book {
            plans: saved
                .plans
                .into_iter()
                .map(|plan| (plan.id, plan))
                .collect(),
            notified: saved
                .notified
                .into_iter()
                .map(|(id, revision, at)| (id, (revision, at)))
                .collect(),
            pending: saved.pending,
        }
    }

    /// Everything, for saving.
    pub fn to_saved(&self) -> Saved {
        let mut plans: Vec<Plan> = self.plans.values().cloned().collect();
        plans.sort_by_key(|plan| plan.id);
        Saved {
            plans,
            notified: self
                .notified
                .iter()
                .map(|(id, (revision, at))| (*id, *revision, *at))
                .collect(),
            pending: self.pending.clone(),
        }
    }

    pub fn len(&self) -> usize {
        self.plans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.plans.is_empty()
    }

    fn is_newer(&self, plan: &Plan) -> bool {
        self.plans
            .get(&plan.id)
            .is_none_or(|held| plan.revision > held.revision)
    }

    /// Take a batch (already validated). All or nothing: a batch that would exceed
    /// `max_open` changes nothing.
    pub fn accept(
        &mut self,
        batch: Vec<Plan>,
        rules: NotifyRules,
        max_open: usize,
        now: DateTime<Utc>,
    ) -> Result<Accepted, Full> {
        let mut accepted = Accepted {
            received: batch.len(),
            ..Accepted::default()
        };
        // The newest copy of each plan in the batch, in the order first seen.
        let mut newest: Vec<Plan> = Vec::with_capacity(batch.len());
        let mut index: HashMap<Ulid, usize> = HashMap::new();
        for plan in batch {
            match index.get(&plan.id) {
                Some(&at) if newest[at].revision >= plan.revision => accepted.stale += 1,
                Some(&at) => {
                    newest[at] = plan;
                    accepted.stale += 1;
                }
                None => {
                    index.insert(plan.id, newest.len());
                    newest.push(plan);
                }
            }
        }
        let (fresh, stale): (Vec<Plan>, Vec<Plan>) =
            newest.into_iter().partition(|plan| self.is_newer(plan));
        accepted.stale += stale.len();

        let is_open = |plan: &Plan| plan.state == PlanState::Open;
        let open_now = self.plans.values().filter(|p| is_open(p)).count();
        let opening = fresh.iter().filter(|p| is_open(p)).count();
        let replaced_open = fresh
            .iter()
            .filter(|p| self.plans.get(&p.id).is_some_and(is_open))
            .count();
        let open_after = open_now + opening - replaced_open;
        if open_after > max_open && opening > replaced_open {
            return Err(Full {
                open: open_after,
                max: max_open,
            });
        }

        for plan in fresh {
            accepted.stored += 1;
            let incident = &plan.incident;
            let owed = rules.wants(&plan)
                && self
                    .notified
                    .get(&incident.id)
                    .is_none_or(|(revision, _)| incident.revision > *revision);
            if owed {
                self.notified.insert(incident.id, (incident.revision, now));
                self.pending.push(Notice {
                    plan: plan.clone(),
                    queued_at: now,
                });
                accepted.notify += 1;
            }
            self.plans.insert(plan.id, plan);
        }
        Ok(accepted)
    }

    /// Forget the oldest closed plans beyond `keep`, and the oldest notified revisions
    /// beyond what is worth remembering.
    pub fn prune(&mut self, keep_closed: usize) {
        let mut closed: Vec<(DateTime<Utc>, Ulid)> = self
            .plans
            .values()
            .filter(|plan| plan.state == PlanState::Closed)
            .map(|plan| (plan.updated_at, plan.id))
            .collect();
        if closed.len() > keep_closed {
            closed.sort_unstable();
            for (_, id) in &closed[..closed.len() - keep_closed] {
                self.plans.remove(id);
            }
        }
        if self.notified.len() > NOTIFIED_MEMORY {
            let mut by_age: Vec<(DateTime<Utc>, Ulid)> = self
                .notified
                .iter()
                .map(|(id, (_, at))| (*at, *id))
                .collect();
            by_age.sort_unstable();
            for (_, id) in &by_age[..by_age.len() - NOTIFIED_MEMORY] {
                self.notified.remove(id);
            }
        }
    }

    pub fn get(&self, id: &Ulid) -> Option<&Plan> {
        self.plans.get(id)
    }

    /// Plans whose incident is still active: most urgent first (priority, then severity,
    /// then the oldest trouble).
    pub fn active(&self) -> Vec<Plan> {
        let mut active: Vec<Plan> = self
            .plans
            .values()
            .filter(|plan| plan.state == PlanState::Open && plan.incident.state.is_active())
            .cloned()
            .collect();
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
        active
    }

    /// Plans closed (or whose incident resolved) since `since`, most recent first.
    pub fn resolved_since(&self, since: DateTime<Utc>, limit: usize) -> Vec<Plan> {
        let mut resolved: Vec<Plan> = self
            .plans
            .values()
            .filter(|plan| plan.state == PlanState::Closed || !plan.incident.state.is_active())
            .filter(|plan| resolved_at(plan) >= since)
            .cloned()
            .collect();
        resolved.sort_by_key(|plan| std::cmp::Reverse(resolved_at(plan)));
        resolved.truncate(limit);
        resolved
    }

    /// Every plan, optionally only those in `state`, most recently updated first.
    pub fn list(&self, state: Option<PlanState>, limit: usize) -> Vec<Plan> {
        let mut plans: Vec<Plan> = self
            .plans
            .values()
            .filter(|plan| state.is_none_or(|wanted| plan.state == wanted))
            .cloned()
            .collect();
        plans.sort_by_key(|plan| std::cmp::Reverse((plan.updated_at, plan.id)));
        plans.truncate(limit);
        plans
    }

    /// Active plans by incident severity.
    pub fn active_counts(&self) -> [(Severity, usize); 3] {
        let mut counts = [
            (Severity::Info, 0),
            (Severity::Warning, 0),
            (Severity::Critical, 0),
        ];
        for plan in self.plans.values() {
            if plan.state == PlanState::Open && plan.incident.state.is_active() {
                counts[plan.incident.severity as usize].1 += 1;
            }
        }
        counts
    }

    /// When the oldest owed notification was queued, if any is.
    pub fn oldest_pending(&self) -> Option<DateTime<Utc>> {
        self.pending.first().map(|notice| notice.queued_at)
    }

    /// The owed notifications, oldest first (left in place until [`Book::delivered`]).
    pub fn pending(&self) -> &[Notice] {
        &self.pending
    }

    /// The first `count` owed notifications are in the outboxes now.
    pub fn delivered(&mut self, count: usize) {
        self.pending.drain(..count.min(self.pending.len()));
    }
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
