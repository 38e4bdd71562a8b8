//! Per-service uptime over the last 24 h, from the archive's issue records. Pure.
//!
//! Every change of a watcher issue is archived (kind `issue`, the `obs_model::Issue` as the
//! body, its own id shared by all its changes), so the latest record of an issue says when
//! the trouble began (`first_seen`) and whether and when it ended (`resolved_at`). Kinds that
//! mean the service is not serving count as down; kinds that mean it serves but badly count
//! as degraded (shown, not subtracted from the uptime percentage).

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use obs_model::{Issue, IssueKind, IssueState, Record};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

pub const SLOTS: usize = 96;

pub fn window() -> Duration {
    Duration::hours(24)
}

/// One slot of an uptime bar: the worst thing seen in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Up,
    Degraded,
    Down,
}

impl Slot {
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Up => "up",
            Slot::Degraded => "degraded",
            Slot::Down => "down",
        }
    }
}

/// A stretch of trouble of one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trouble {
    pub service: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub slot: Slot,
}

/// A service's bar and figure for the window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Uptime {
    /// Share of the window not down, in percent, two decimals.
    pub percent: f64,
    pub down_seconds: u64,
    /// Oldest first; each covers window / SLOTS (15 minutes).
    pub slots: Vec<Slot>,
}

/// How a kind of issue counts; None for those that say nothing about serving.
pub fn counts_as(kind: IssueKind) -> Option<Slot> {
    match kind {
        IssueKind::HeartbeatMissed
        | IssueKind::ServiceFailed
        | IssueKind::Crashed
        | IssueKind::ProbeFailed
        | IssueKind::Missing => Some(Slot::Down),
        IssueKind::OomKilled
        | IssueKind::RestartLoop
        | IssueKind::Unhealthy
        | IssueKind::ImagePullFailed
        | IssueKind::Evicted
        | IssueKind::Unschedulable => Some(Slot::Degraded),
        IssueKind::Alert => None,
    }
}

/// The troubles the archived issue records describe; bodies that are not issues are skipped.
pub fn troubles(records: &[Record], now: DateTime<Utc>) -> Vec<Trouble> {
    let mut latest: HashMap<Ulid, (DateTime<Utc>, Ulid, Issue)> = HashMap::new();
    for record in records {
        let Ok(issue) = serde_json::from_value::<Issue>(record.body.clone()) else {
            continue;
        };
        let newer = latest
            .get(&issue.id)
            .is_none_or(|(ts, id, _)| (record.ts, record.id) > (*ts, *id));
        if newer {
            latest.insert(issue.id, (record.ts, record.id, issue));
        }
    }
    let mut found: Vec<Trouble> = latest
        .into_values()
        .filter_map(|(_, _, issue)| {
            let slot = counts_as(issue.kind)?;
            let end = match issue.state {
                IssueState::Open => now,
                IssueState::Resolved => issue.resolved_at.unwrap_or(issue.last_seen),
            };
            Some(Trouble {
                service: issue.service,
                start: issue.first_seen,
                end: end.max(issue.first_seen),
                slot,
            })
        })
        .collect();
    found.sort_by(|a, b| (&a.service, a.start).cmp(&(&b.service, b.start)));
    found
}

/// The bar of one service's troubles over `[now - window, now)`.
pub fn uptime(troubles: &[&Trouble], now: DateTime<Utc>) -> Uptime {
    let start = now - window();
    let slot_length = window() / SLOTS as i32;
    let slots = (0..SLOTS)
        .map(|index| {
            let from = start + slot_length * index as i32;
            let to = from + slot_length;
            troubles
                .iter()
                .filter(|t| t.start < to && t.end > from)
                .map(|t| t.slot)
                .max()
                .unwrap_or(Slot::Up)
        })
        .collect();
    let down_seconds = down_seconds(troubles, start, now);
    let total = window().num_seconds() as f64;
    let percent = ((total - down_seconds as f64) / total * 100.0 * 100.0).round() / 100.0;
    Uptime {
        percent: percent.clamp(0.0, 100.0),
        down_seconds,
        slots,
    }
}

/// Seconds in `[from, to)` covered by at least one down trouble (overlaps counted once).
fn down_seconds(troubles: &[&Trouble], from: DateTime<Utc>, to: DateTime<Utc>) -> u64 {
    let mut spans: Vec<(DateTime<Utc>, DateTime<Utc>)> = troubles
        .iter()
        .filter(|t| t.slot == Slot::Down)
        .map(|t| (t.start.max(from), t.end.min(to)))
        .filter(|(start, end)| start < end)
        .collect();
    spans.sort();
    let mut total = Duration::zero();
    let mut current: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    for (start, end) in spans {
        current = match current {
            Some((open, close)) if start <= close => Some((open, close.max(end))),
            Some((open, close)) => {
                total += close - open;
                Some((start, end))
            }
            None => Some((start, end)),
        };
    }
    if let Some((open, close)) = current {
        total += close - open;
    }
    total.num_seconds().max(0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_model::Severity;

    fn at(hours_ago: f64, now: DateTime<Utc>) -> DateTime<Utc> {
        now - Duration::milliseconds((hours_ago * 3_600_000.0) as i64)
    }

    fn issue_record(
        issue_id: Ulid,
        kind: IssueKind,
        began: DateTime<Utc>,
        resolved: Option<DateTime<Utc>>,
    ) -> Record {
        let issue = Issue {
            id: issue_id,
            kind,
            service: "api".into(),
            subject: String::new(),
            severity: Severity::Critical,
            state: if resolved.is_some() {
                IssueState::Resolved
            } else {
                IssueState::Open
            },
            message: "x".into(),
            recommendation: "y".into(),
            first_seen: began,
            last_seen: resolved.unwrap_or(began),
            resolved_at: resolved,
            count: 1,
            facts: Default::default(),
        };
        Record {
            id: Ulid::new(),
            kind: "issue".into(),
            service: "api".into(),
            ts: resolved.unwrap_or(began),
            body: serde_json::to_value(issue).unwrap(),
        }
    }

    #[test]
    fn the_latest_record_of_an_issue_decides_and_overlaps_count_once() {
        let now = Utc::now();
        let outage = Ulid::new();
        let records = vec![
            // Opened 6 h ago, resolved 3 h ago: two records of one issue.
            issue_record(outage, IssueKind::HeartbeatMissed, at(6.0, now), None),
            issue_record(
                outage,
                IssueKind::HeartbeatMissed,
                at(6.0, now),
                Some(at(3.0, now)),
            ),
            // Overlapping the last hour of it.
            issue_record(
                Ulid::new(),
                IssueKind::Crashed,
                at(4.0, now),
                Some(at(3.5, now)),
            ),
            // Degraded only: shown, not subtracted.
            issue_record(Ulid::new(), IssueKind::RestartLoop, at(1.0, now), None),
            // Began before the window: clipped to it.
            issue_record(
                Ulid::new(),
                IssueKind::ProbeFailed,
                at(30.0, now),
                Some(at(23.0, now)),
            ),
        ];
        let found = troubles(&records, now);
        assert_eq!(found.len(), 4);
        let refs: Vec<&Trouble> = found.iter().collect();
        let bar = uptime(&refs, now);
        assert_eq!(bar.slots.len(), SLOTS);
        // 3 h + 1 h down in 24 h.
        assert_eq!(bar.down_seconds, 4 * 3600);
        assert_eq!(bar.percent, 83.33);
        assert_eq!(bar.slots[0], Slot::Down, "the first hour of the window");
        assert_eq!(bar.slots[4], Slot::Up);
        assert_eq!(bar.slots[SLOTS - 24 - 1], Slot::Up, "just before 6 h ago");
        assert_eq!(bar.slots[SLOTS - 24], Slot::Down, "6 h ago");
        assert_eq!(bar.slots[SLOTS - 1], Slot::Degraded);
        assert_eq!(
            bar.slots.iter().filter(|s| **s == Slot::Down).count(),
            4 + 12
        );
    }

    #[test]
    fn no_trouble_is_a_full_green_bar_and_junk_is_skipped() {
        let now = Utc::now();
        let junk = Record {
            id: Ulid::new(),
            kind: "issue".into(),
            service: "api".into(),
            ts: now,
            body: serde_json::json!({"not": "an issue"}),
        };
        assert!(troubles(&[junk], now).is_empty());
        let bar = uptime(&[], now);
        assert_eq!(bar.percent, 100.0);
        assert!(bar.slots.iter().all(|s| *s == Slot::Up));
    }
}
