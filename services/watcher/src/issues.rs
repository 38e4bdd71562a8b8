//! Issues: open ones by fingerprint (service + kind's family + subject), resolved ones in a
//! bounded ring. The same trouble in the same place updates the open issue (count, last_seen,
//! facts) instead of opening another; a recovery resolves it under the same id. A crash and
//! its restart loop are one family ([`IssueKind::family`]): one issue that escalates.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use obs_core::prometheus::IntGaugeVec;
use obs_model::{Issue, IssueKind, IssueState, Severity};
use serde_json::Value;
use ulid::Ulid;

/// What a detector found: everything an issue needs but its identity and times.
#[derive(Debug, Clone)]
pub struct Detection {
    pub kind: IssueKind,
    pub service: String,
    pub subject: String,
    pub severity: Severity,
    pub message: String,
    pub recommendation: String,
    pub facts: BTreeMap<String, Value>,
}

impl Detection {
    pub fn new(kind: IssueKind, service: &str, subject: &str, severity: Severity) -> Self {
        Detection {
            kind,
            service: service.to_string(),
            subject: subject.to_string(),
            severity,
            message: String::new(),
            recommendation: String::new(),
            facts: BTreeMap::new(),
        }
    }

    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    pub fn recommend(mut self, recommendation: impl Into<String>) -> Self {
        self.recommendation = recommendation.into();
        self
    }

    pub fn fact(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.facts.insert(key.to_string(), value.into());
        self
    }
}

/// How an issue changed, for logs and downstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Opened,
    Updated,
    Resolved,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Opened => "opened",
            Change::Updated => "updated",
            Change::Resolved => "resolved",
        }
    }
}

/// service + kind's family + subject (see [`obs_model::fingerprint`]): a crash and its
/// restart loop share one.
pub use obs_model::fingerprint;

/// Open an issue, or update `existing` (the open one with the same fingerprint): count + 1,
/// last_seen, facts merged, and the detection's kind, severity, message and recommendation —
/// unless the open issue is of a graver kind of the same family (a restart loop seeing one
/// more of its crashes), which it stays, words and all.
pub fn raised(
    existing: Option<Issue>,
    detection: Detection,
    now: DateTime<Utc>,
) -> (Change, Issue) {
    if let Some(mut issue) = existing {
        issue.count += 1;
        issue.last_seen = now;
        issue.facts.extend(detection.facts);
        if issue.kind.supersedes(detection.kind) {
            return (Change::Updated, issue);
        }
        // The same kind, or its family's graver one (a crash becoming a restart loop): the
        // issue takes the detection's kind, severity and words, under the same id.
        issue.kind = detection.kind;
        issue.severity = detection.severity;
        issue.message = detection.message;
        issue.recommendation = detection.recommendation;
        return (Change::Updated, issue);
    }
    let issue = Issue {
        id: Ulid::new(),
        kind: detection.kind,
        service: detection.service,
        subject: detection.subject,
        severity: detection.severity,
        state: IssueState::Open,
        message: detection.message,
        recommendation: detection.recommendation,
        first_seen: now,
        last_seen: now,
        resolved_at: None,
        count: 1,
        facts: detection.facts,
    };
    (Change::Opened, issue)
}

/// Facts added to an open issue without counting a new occurrence (a second signal of the
/// same event, e.g. the exit code that follows an `oom` event).
pub fn amended(mut issue: Issue, facts: BTreeMap<String, Value>, now: DateTime<Utc>) -> Issue {
    issue.facts.extend(facts);
    issue.last_seen = now;
    issue
}

/// The open issue resolved: same id as opened.
pub fn resolved(mut issue: Issue, facts: BTreeMap<String, Value>, now: DateTime<Utc>) -> Issue {
    issue.state = IssueState::Resolved;
    issue.resolved_at = Some(now);
    issue.last_seen = now;
    issue.facts.extend(facts);
    issue
}

/// The issues as committed: open ones by fingerprint, resolved ones in a bounded ring. Changed
/// only with what a transaction committed ([`IssueBook::apply`]).
pub struct IssueBook {
    open: HashMap<String, Issue>,
    resolved: VecDeque<Issue>,
    resolved_max: usize,
    /// `watcher_issues_open{kind,severity}`, kept in step with `open`.
    gauge: IntGaugeVec,
}

impl IssueBook {
    pub fn new(resolved_max: usize, gauge: IntGaugeVec) -> Self {
        IssueBook {
            open: HashMap::new(),
            resolved: VecDeque::new(),
            resolved_max,
            gauge,
        }
    }

    /// Take in a committed change of `issue`.
    pub fn apply(&mut self, issue: Issue) {
        let key = fingerprint(&issue.service, issue.kind, &issue.subject);
        match issue.state {
            IssueState::Open => {
                if let Some(previous) = self.open.get(&key) {
                    gauge_add(&self.gauge, previous.kind, previous.severity, -1);
                }
                gauge_add(&self.gauge, issue.kind, issue.severity, 1);
                self.open.insert(key, issue);
            }
            IssueState::Resolved => {
                if let Some(previous) = self.open.remove(&key) {
                    gauge_add(&self.gauge, previous.kind, previous.severity, -1);
                }
                self.keep_resolved(issue);
            }
        }
    }

    /// Take the open issues as the database holds them now (with a shared PostgreSQL other
    /// replicas open and resolve issues too): the gauge follows.
    pub fn replace_open(&mut self, open: Vec<Issue>) {
        for issue in self.open.values() {
            gauge_add(&self.gauge, issue.kind, issue.severity, -1);
        }
        self.open.clear();
        for issue in open {
            self.apply(issue);
        }
    }

    fn keep_resolved(&mut self, issue: Issue) {
        if self.resolved_max == 0 {
            return;
        }
        if self.resolved.len() == self.resolved_max {
            self.resolved.pop_front();
        }
        self.resolved.push_back(issue);
    }

    pub fn is_open(&self, service: &str, kind: IssueKind, subject: &str) -> bool {
        self.open.contains_key(&fingerprint(service, kind, subject))
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Open issues first (most severe, then most recent), then resolved ones, newest first.
    pub fn list(&self, state: Option<IssueState>, limit: usize) -> Vec<Issue> {
        let open: Vec<&Issue> = self.open.values().collect();
        let resolved: Vec<&Issue> = self.resolved.iter().collect();
        list(open, resolved, state, limit)
    }
}

/// Open issues first (most severe, then most recent), then `resolved` (oldest first as
/// given) newest first.
pub fn list(
    mut open: Vec<&Issue>,
    resolved: Vec<&Issue>,
    state: Option<IssueState>,
    limit: usize,
) -> Vec<Issue> {
    let mut list = Vec::new();
    if state != Some(IssueState::Resolved) {
        open.sort_by(|a, b| {
            b.severity
                .cmp(&a.severity)
                .then(b.last_seen.cmp(&a.last_seen))
        });
        list.extend(open.into_iter().take(limit).cloned());
    }
    if state != Some(IssueState::Open) {
        let room = limit.saturating_sub(list.len());
        list.extend(resolved.into_iter().rev().take(room).cloned());
    }
    list
}

fn gauge_add(gauge: &IntGaugeVec, kind: IssueKind, severity: Severity, delta: i64) {
    gauge
        .with_label_values(&[kind.as_str(), severity.as_str()])
        .add(delta);
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_core::prometheus::Opts;

    fn book() -> IssueBook {
        let gauge = IntGaugeVec::new(Opts::new("open", "open"), &["kind", "severity"]).unwrap();
        IssueBook::new(2, gauge)
    }

    fn crash(severity: Severity) -> Detection {
        Detection::new(IssueKind::Crashed, "app", "app", severity)
            .message("app exited with 3")
            .fact("exit_code", 3)
    }

    #[test]
    fn a_repeat_updates_and_a_recovery_resolves_the_same_issue() {
        let mut book = book();
        let now = Utc::now();
        let (change, opened) = raised(None, crash(Severity::Warning), now);
        assert_eq!(change, Change::Opened);
        book.apply(opened.clone());
        let (change, updated) = raised(Some(opened.clone()), crash(Severity::Critical), now);
        assert_eq!(change, Change::Updated);
        assert_eq!(updated.id, opened.id);
        assert_eq!(updated.count, 2);
        book.apply(updated.clone());
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "critical"]).get(),
            1
        );
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "warning"]).get(),
            0
        );
        let done = resolved(updated, BTreeMap::new(), now);
        assert_eq!(done.id, opened.id);
        assert_eq!(done.state, IssueState::Resolved);
        book.apply(done);
        assert_eq!(book.open_count(), 0);
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "critical"]).get(),
            0
        );
        assert_eq!(book.list(Some(IssueState::Resolved), 10).len(), 1);
    }

    #[test]
    fn a_crash_becomes_its_restart_loop_and_later_crashes_count_on_the_loop() {
        let mut book = book();
        let now = Utc::now();
        let (_, crashed) = raised(None, crash(Severity::Warning), now);
        book.apply(crashed.clone());
        assert_eq!(
            fingerprint("app", IssueKind::RestartLoop, "app"),
            fingerprint("app", IssueKind::Crashed, "app"),
            "one fingerprint for the family: the unique open index holds"
        );
        let looping = Detection::new(IssueKind::RestartLoop, "app", "app", Severity::Critical)
            .message("app started 3 times in 300 s - restart loop")
            .recommend("look at its logs")
            .fact("starts_in_window", 3);
        let (change, escalated) = raised(Some(crashed.clone()), looping, now);
        assert_eq!(change, Change::Updated);
        assert_eq!(
            escalated.id, crashed.id,
            "one issue, one incident downstream"
        );
        assert_eq!(escalated.kind, IssueKind::RestartLoop);
        assert_eq!(escalated.severity, Severity::Critical);
        assert_eq!(escalated.recommendation, "look at its logs");
        assert_eq!(
            escalated.facts["exit_code"], 3,
            "the crash's facts are kept"
        );
        book.apply(escalated.clone());
        // The next crash of the loop is one more sighting of it, not a step back.
        let later = crash(Severity::Warning).fact("exit_code", 4);
        let (change, again) = raised(Some(escalated), later, now);
        assert_eq!(change, Change::Updated);
        assert_eq!(again.id, crashed.id);
        assert_eq!(again.kind, IssueKind::RestartLoop);
        assert_eq!(again.severity, Severity::Critical);
        assert_eq!(again.message, "app started 3 times in 300 s - restart loop");
        assert_eq!(again.recommendation, "look at its logs");
        assert_eq!(again.count, 3);
        assert_eq!(again.facts["exit_code"], 4, "facts merged");
        assert_eq!(again.facts["starts_in_window"], 3);
        book.apply(again.clone());
        assert_eq!(book.open_count(), 1);
        assert!(book.is_open("app", IssueKind::Crashed, "app"));
        assert_eq!(
            book.gauge
                .with_label_values(&["restart_loop", "critical"])
                .get(),
            1
        );
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "warning"]).get(),
            0
        );
        // Resolving the crash resolves the loop it became.
        let done = resolved(again, BTreeMap::new(), now);
        assert_eq!(done.kind, IssueKind::RestartLoop);
        book.apply(done);
        assert_eq!(book.open_count(), 0);
        assert_eq!(
            book.gauge
                .with_label_values(&["restart_loop", "critical"])
                .get(),
            0
        );
    }

    #[test]
    fn resolved_issues_are_bounded() {
        let mut book = book();
        let now = Utc::now();
        for _ in 0..5 {
            let (_, issue) = raised(None, crash(Severity::Warning), now);
            book.apply(issue.clone());
            book.apply(resolved(issue, BTreeMap::new(), now));
        }
        assert_eq!(book.list(None, 100).len(), 2);
    }
}
