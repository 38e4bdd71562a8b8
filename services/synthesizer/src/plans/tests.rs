use chrono::Utc;
use obs_model::{Incident, IncidentSource, IncidentState, IssueKind, Priority};

use super::*;

fn plan(
    id: Ulid,
    incident: Ulid,
    revision: u64,
    incident_revision: u64,
    change: IncidentChange,
) -> Plan {
    let now = Utc::now();
    let resolved = change == IncidentChange::Resolved;
    Plan {
        id,
        incident_id: incident,
        service: "api".into(),
        priority: Priority::P1,
        state: if resolved {
            PlanState::Closed
        } else {
            PlanState::Open
        },
        rule: "crashed".into(),
        summary: "restart it".into(),
        steps: vec![],
        created_at: now,
        updated_at: now,
        closed_at: resolved.then_some(now),
        incident: Incident {
            id: incident,
            fingerprint: "api/crashed/api-1".into(),
            source: IncidentSource::Watcher,
            service: "api".into(),
            kind: IssueKind::Crashed,
            subject: "api-1".into(),
            severity: Severity::Critical,
            state: if resolved {
                IncidentState::Resolved
            } else {
                IncidentState::Open
            },
            title: "api-1 crashed".into(),
            message: "exit 1".into(),
            recommendation: "look".into(),
            first_seen: now,
            last_seen: now,
            updated_at: now,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: resolved.then_some(now),
            resolved_by: None,
            comment: None,
            count: 1,
            reopened: 0,
            flapping: false,
            silenced: None,
            issue_ids: vec![],
            labels: Default::default(),
            annotations: Default::default(),
            facts: Default::default(),
            change,
            notify: true,
            revision: incident_revision,
        },
        revision,
    }
}

const RULES: NotifyRules = NotifyRules {
    enabled: true,
    min_severity: Severity::Warning,
};

/// The database, as far as decisions go: a view that every committed decision updates.
#[derive(Default)]
struct Book {
    view: View,
    plans: HashMap<Ulid, Plan>,
    pending: Vec<Notice>,
}

impl Book {
    fn accept(
        &mut self,
        batch: Vec<Plan>,
        rules: NotifyRules,
        max_open: usize,
        now: DateTime<Utc>,
    ) -> Result<Accepted, Full> {
        let (newest, left_out) = newest_copies(batch);
        let decision = decide(newest, left_out, &self.view, rules, max_open, now)?;
        self.view.apply(&decision);
        for plan in &decision.store {
            self.plans.insert(plan.id, plan.clone());
        }
        self.pending.extend(decision.notices.iter().cloned());
        Ok(decision.accepted)
    }
}

#[test]
fn the_highest_revision_wins_and_redeliveries_notify_nothing() {
    let mut book = Book::default();
    let (id, incident) = (Ulid::new(), Ulid::new());
    let now = Utc::now();
    let opened = plan(id, incident, 1, 1, IncidentChange::Opened);
    let accepted = book.accept(vec![opened.clone()], RULES, 10, now).unwrap();
    assert_eq!(
        (accepted.stored, accepted.stale, accepted.notify),
        (1, 0, 1)
    );
    // The same copy again, and a newer plan revision for the same incident revision (a
    // step outcome): stored, not news.
    let accepted = book.accept(vec![opened.clone()], RULES, 10, now).unwrap();
    assert_eq!(
        (accepted.stored, accepted.stale, accepted.notify),
        (0, 1, 0)
    );
    let mut outcome = plan(id, incident, 2, 1, IncidentChange::Opened);
    outcome.summary = "restarted".into();
    let accepted = book.accept(vec![outcome], RULES, 10, now).unwrap();
    assert_eq!((accepted.stored, accepted.notify), (1, 0));
    // Resolved, then a late copy of the open one: the resolution stays.
    let resolved = plan(id, incident, 3, 2, IncidentChange::Resolved);
    let accepted = book.accept(vec![resolved, opened], RULES, 10, now).unwrap();
    assert_eq!(
        (accepted.stored, accepted.stale, accepted.notify),
        (1, 1, 1)
    );
    assert_eq!(book.plans[&id].revision, 3);
    assert_eq!(book.view.open, 0);
    assert_eq!(book.pending.len(), 2);
    assert_eq!(
        book.pending.iter().map(Notice::kind).collect::<Vec<_>>(),
        ["open", "resolve"]
    );
}

#[test]
fn within_a_batch_the_newest_copy_is_kept_whatever_the_order() {
    let mut book = Book::default();
    let (id, incident) = (Ulid::new(), Ulid::new());
    let batch = vec![
        plan(id, incident, 5, 3, IncidentChange::Escalated),
        plan(id, incident, 4, 2, IncidentChange::Opened),
    ];
    let accepted = book.accept(batch, RULES, 10, Utc::now()).unwrap();
    assert_eq!(
        (accepted.stored, accepted.stale, accepted.notify),
        (1, 1, 1)
    );
    assert_eq!(
        book.pending[0].plan.incident.change,
        IncidentChange::Escalated
    );
}

#[test]
fn a_pruned_plan_redelivered_is_not_news_again() {
    let mut book = Book::default();
    let (id, incident) = (Ulid::new(), Ulid::new());
    let resolved = plan(id, incident, 2, 2, IncidentChange::Resolved);
    book.accept(vec![resolved.clone()], RULES, 10, Utc::now())
        .unwrap();
    // The closed plan is pruned; its owed revision is remembered.
    book.view.held.clear();
    let accepted = book.accept(vec![resolved], RULES, 10, Utc::now()).unwrap();
    assert_eq!((accepted.stored, accepted.notify), (1, 0));
}

#[test]
fn quiet_changes_low_severities_and_disabled_webhooks_owe_nothing() {
    let mut book = Book::default();
    let now = Utc::now();
    let mut acknowledged = plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Acknowledged);
    acknowledged.incident.notify = false;
    let mut info = plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Opened);
    info.incident.severity = Severity::Info;
    let mut silenced = plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Opened);
    silenced.incident.notify = false;
    let accepted = book
        .accept(vec![acknowledged, info, silenced], RULES, 10, now)
        .unwrap();
    assert_eq!((accepted.stored, accepted.notify), (3, 0));
    let off = NotifyRules {
        enabled: false,
        ..RULES
    };
    let accepted = book
        .accept(
            vec![plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Opened)],
            off,
            10,
            now,
        )
        .unwrap();
    assert_eq!(accepted.notify, 0);
}

#[test]
fn a_batch_beyond_the_open_bound_changes_nothing_and_closing_makes_room() {
    let mut book = Book::default();
    let now = Utc::now();
    let batch: Vec<Plan> = (0..3)
        .map(|_| plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Opened))
        .collect();
    let full = book.accept(batch.clone(), RULES, 2, now).unwrap_err();
    assert_eq!((full.open, full.max), (3, 2));
    assert!(book.plans.is_empty());
    assert!(book.pending.is_empty());

    book.accept(batch[..2].to_vec(), RULES, 2, now).unwrap();
    assert_eq!(book.view.open, 2);
    book.accept(batch[2..].to_vec(), RULES, 2, now).unwrap_err();
    // Closing one makes room for another in the same batch.
    let mut closing = batch[0].clone();
    closing.revision += 1;
    closing.state = PlanState::Closed;
    book.accept(vec![closing, batch[2].clone()], RULES, 2, now)
        .unwrap();
    assert_eq!(book.view.open, 2);
}

#[test]
fn the_legacy_file_still_parses() {
    let notice = Notice {
        plan: plan(Ulid::new(), Ulid::new(), 1, 1, IncidentChange::Opened),
        queued_at: Utc::now(),
    };
    let saved = Saved {
        plans: vec![notice.plan.clone()],
        notified: vec![(notice.plan.incident.id, 1, Utc::now())],
        pending: vec![notice],
    };
    let text = serde_json::to_string(&saved).unwrap();
    let back: Saved = serde_json::from_str(&text).unwrap();
    assert_eq!(back.plans, saved.plans);
    assert_eq!(back.pending.len(), 1);
    let minimal: Saved = serde_json::from_str(r#"{"plans": []}"#).unwrap();
    assert!(minimal.notified.is_empty() && minimal.pending.is_empty());
}
