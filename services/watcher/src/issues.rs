//! Issues: open ones by fingerprint (service + kind's family + subject), resolved ones in a bounded
//! ring. The same trouble in the same place updates the open issue (count, last_seen,
//! facts) instead of opening another; a recovery resolves it under the same id.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{DateTime, Utc};
use obs_core::prometheus::IntGaugeVec;
use obs_model::{fingerprint, Issue, IssueKind, IssueState, Severity};
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

    /// Open an issue, or update the open one with the same fingerprint: count + 1,
    /// last_seen, the new message, recommendation and severity, facts merged.
    pub fn raise(&mut self, detection: Detection, now: DateTime<Utc>) -> (Change, Issue) {
        let key = fingerprint(&detection.service, detection.kind, &detection.subject);
        if let Some(issue) = self.open.get_mut(&key) {
            issue.count += 1;
            issue.last_seen = now;
            issue.facts.extend(detection.facts);
            if issue.kind.supersedes(detection.kind) {
                return (Change::Updated, issue.clone());
            }
            // The same kind, or its family's graver one (a crash becoming a restart loop):
            // the issue takes the detection's kind, severity and words.
            if (issue.kind, issue.severity) != (detection.kind, detection.severity) {
                gauge_add(&self.gauge, issue.kind, issue.severity, -1);
                gauge_add(&self.gauge, detection.kind, detection.severity, 1);
                issue.kind = detection.kind;
                issue.severity = detection.severity;
            }
            issue.message = detection.message;
            issue.recommendation = detection.recommendation;
            return (Change::Updated, issue.clone());
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
        gauge_add(&self.gauge, issue.kind, issue.severity, 1);
        self.open.insert(key, issue.clone());
        (Change::Opened, issue)
    }

    /// Add facts to an open issue without counting a new occurrence (a second signal of
    /// the same event, e.g. the exit code that follows an `oom` event).
    pub fn amend(
        &mut self,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Issue> {
        let issue = self.open.get_mut(&fingerprint(service, kind, subject))?;
        issue.facts.extend(facts);
        issue.last_seen = now;
        Some(issue.clone())
    }

    /// Resolve the open issue with this fingerprint, if there is one; same id as opened.
    pub fn resolve(
        &mut self,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
        now: DateTime<Utc>,
    ) -> Option<Issue> {
        let mut issue = self.open.remove(&fingerprint(service, kind, subject))?;
        gauge_add(&self.gauge, issue.kind, issue.severity, -1);
        issue.state = IssueState::Resolved;
        issue.resolved_at = Some(now);
        issue.last_seen = now;
        issue.facts.extend(facts);
        self.keep_resolved(issue.clone());
        Some(issue)
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

    /// Open issues of `subject` (a container), for resolving them together.
    pub fn open_for_subject(&self, subject: &str) -> Vec<(String, IssueKind)> {
        self.open
            .values()
            .filter(|issue| issue.subject == subject)
            .map(|issue| (issue.service.clone(), issue.kind))
            .collect()
    }

    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Open issues first (most severe, then most recent), then resolved ones, newest first.
    pub fn list(&self, state: Option<IssueState>, limit: usize) -> Vec<Issue> {
        let mut list = Vec::new();
        if state != Some(IssueState::Resolved) {
            let mut open: Vec<&Issue> = self.open.values().collect();
            open.sort_by(|a, b| {
                b.severity
                    .cmp(&a.severity)
                    .then(b.last_seen.cmp(&a.last_seen))
            });
            list.extend(open.into_iter().take(limit).cloned());
        }
        if state != Some(IssueState::Open) {
            let room = limit.saturating_sub(list.len());
            list.extend(self.resolved.iter().rev().take(room).cloned());
        }
        list
    }

    /// Everything, for state.json: open issues, then the resolved ring oldest first.
    pub fn snapshot(&self) -> Vec<Issue> {
        let mut all: Vec<Issue> = self.open.values().cloned().collect();
        all.sort_by_key(|issue| issue.first_seen);
        all.extend(self.resolved.iter().cloned());
        all
    }

    /// Put back an issue from state.json.
    pub fn restore(&mut self, issue: Issue) {
        match issue.state {
            IssueState::Open => {
                gauge_add(&self.gauge, issue.kind, issue.severity, 1);
                let key = fingerprint(&issue.service, issue.kind, &issue.subject);
                // A state saved before a crash and its loop were one issue may hold both:
                // the later (the loop; open issues are saved oldest first) stands for both.
                if let Some(displaced) = self.open.insert(key, issue) {
                    gauge_add(&self.gauge, displaced.kind, displaced.severity, -1);
                }
            }
            IssueState::Resolved => self.keep_resolved(issue),
        }
    }
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
    fn a_crash_becomes_its_restart_loop_and_later_crashes_count_on_the_loop() {
        let mut book = book();
        let now = Utc::now();
        let (_, crashed) = book.raise(crash(Severity::Warning), now);
        let looping = Detection::new(IssueKind::RestartLoop, "app", "app", Severity::Critical)
            .message("app started 3 times in 300 s - restart loop")
            .fact("starts_in_window", 3);
        let (change, escalated) = book.raise(looping, now);
        assert_eq!(change, Change::Updated);
        assert_eq!(
            escalated.id, crashed.id,
            "one issue, one incident downstream"
        );
        assert_eq!(escalated.kind, IssueKind::RestartLoop);
        assert_eq!(escalated.severity, Severity::Critical);
        assert_eq!(
            escalated.facts["exit_code"], 3,
            "the crash's facts are kept"
        );
        // The next crash of the loop is one more sighting of it, not a step back.
        let (_, again) = book.raise(crash(Severity::Warning), now);
        assert_eq!(again.kind, IssueKind::RestartLoop);
        assert_eq!(again.severity, Severity::Critical);
        assert_eq!(again.message, "app started 3 times in 300 s - restart loop");
        assert_eq!(again.count, 3);
        assert_eq!(book.open_count(), 1);
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
        let resolved = book
            .resolve("app", IssueKind::Crashed, "app", BTreeMap::new(), now)
            .expect("resolving the crash resolves the loop it became");
        assert_eq!(resolved.kind, IssueKind::RestartLoop);
    }

    #[test]
    fn a_repeat_updates_and_a_recovery_resolves_the_same_issue() {
        let mut book = book();
        let now = Utc::now();
        let (change, opened) = book.raise(crash(Severity::Warning), now);
        assert_eq!(change, Change::Opened);
        let (change, updated) = book.raise(crash(Severity::Critical), now);
        assert_eq!(change, Change::Updated);
        assert_eq!(updated.id, opened.id);
        assert_eq!(updated.count, 2);
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "critical"]).get(),
            1
        );
        assert_eq!(
            book.gauge.with_label_values(&["crashed", "warning"]).get(),
            0
        );
        let resolved = book
            .resolve("app", IssueKind::Crashed, "app", BTreeMap::new(), now)
            .unwrap();
        assert_eq!(resolved.id, opened.id);
        assert_eq!(resolved.state, IssueState::Resolved);
        assert_eq!(book.open_count(), 0);
        assert_eq!(book.list(Some(IssueState::Resolved), 10).len(), 1);
    }

    #[test]
    fn resolved_issues_are_bounded() {
        let mut book = book();
        let now = Utc::now();
        for _ in 0..5 {
            book.raise(crash(Severity::Warning), now);
            book.resolve("app", IssueKind::Crashed, "app", BTreeMap::new(), now);
        }
        assert_eq!(book.list(None, 100).len(), 2);
    }
}
