//! The one way out: every event the watcher records and every issue change (opened,
//! updated, resolved) passes through [`Downstream::publish`], as an `obs_model::Record`.
//!
//! DELIVERY IS NOT DONE HERE YET. The lead plugs `obs_core::outbox` in at the marked spot
//! (ARCHIVIST_URL for everything, CURATOR_URL for issues): build the outboxes in
//! `Downstream::new` from the `Service`, start them from `Watcher::start`, and push the
//! records below. Nothing else in the watcher needs to change: callers already hand every
//! record to this function, after releasing their locks, in the order things happened.

use chrono::Utc;
use obs_model::{Event, Issue, Record};
use ulid::Ulid;

use crate::issues::Change;

/// Something downstream roles should hear about.
#[derive(Debug, Clone)]
pub enum Published {
    Event(Event),
    Issue(Change, Issue),
}

impl Published {
    /// The archive envelope. Each record has its own id (receivers dedupe by it); an issue's
    /// own id stays in the body, so all changes of one issue share it.
    pub fn to_record(&self) -> Record {
        match self {
            Published::Event(event) => Record {
                // An event is recorded once: its id can be the record's.
                id: event.id,
                kind: "event".into(),
                service: event.service.clone(),
                ts: event.timestamp,
                body: serde_json::to_value(event).unwrap_or_default(),
            },
            Published::Issue(_, issue) => Record {
                id: Ulid::new(),
                kind: "issue".into(),
                service: issue.service.clone(),
                ts: Utc::now(),
                body: serde_json::to_value(issue).unwrap_or_default(),
            },
        }
    }
}

#[derive(Default)]
pub struct Downstream {}

impl Downstream {
    pub fn new() -> Self {
        Downstream {}
    }

    /// Hand `items` to the roles downstream. Called with no lock held.
    pub async fn publish(&self, items: Vec<Published>) {
        for item in &items {
            if let Published::Issue(change, issue) = item {
                tracing::info!(
                    issue = %issue.id,
                    change = change.as_str(),
                    kind = issue.kind.as_str(),
                    service = %issue.service,
                    subject = %issue.subject,
                    severity = issue.severity.as_str(),
                    "{}",
                    issue.message
                );
            }
        }
        // Outbox goes here: `self.archive.push(&records).await` (all records) and
        // `self.curator.push(&issue_records).await`, the records built with
        // `Published::to_record`.
    }
}
