//! The one way out: every event the watcher records and every issue change (opened,
//! updated, resolved) passes through [`Downstream::publish`], as an `obs_model::Record`.
//!
//! Delivery is obs-core's outbox: persisted before `publish` returns, retried until the
//! receiver takes it (ARCHIVIST_URL gets every record, CURATOR_URL every issue change).
//! Callers hand every record here after releasing their locks, in the order things happened.

use chrono::Utc;
use obs_core::{Outbox, RoleContext, Service};
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

/// The watcher's outboxes: everything to the archivist, issue changes to the curator —
/// each only when its URL (ARCHIVIST_URL, CURATOR_URL) is set.
#[derive(Default)]
pub struct Downstream {
    archive: Option<Outbox>,
    curator: Option<Outbox>,
}

impl Downstream {
    pub fn new(service: &Service) -> anyhow::Result<Self> {
        let peers = &service.config().peers;
        let open = |destination: &str, url: Option<String>| {
            url.map(|url| Outbox::open(service, destination, &url))
                .transpose()
        };
        Ok(Downstream {
            archive: open(
                "archivist",
                peers.archivist.as_ref().map(|u| format!("{u}/v1/records")),
            )?,
            curator: open(
                "curator",
                peers.curator.as_ref().map(|u| format!("{u}/v1/issues")),
            )?,
        })
    }

    /// Start delivering; called from `Watcher::start`.
    pub fn start(&self, context: &RoleContext) {
        for outbox in self.archive.iter().chain(&self.curator) {
            outbox.start(context);
        }
    }

    /// Hand `items` to the roles downstream. Called with no lock held; returns once they
    /// are persisted in the outboxes, or the first outbox's error (logged here already) if
    /// one could not persist them.
    pub async fn publish(&self, items: Vec<Published>) -> anyhow::Result<()> {
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
        let mut outcome = Ok(());
        if let Some(archive) = &self.archive {
            let records: Vec<Record> = items.iter().map(Published::to_record).collect();
            if let Err(error) = archive.push(&records).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "records not queued for the archivist"
                );
                outcome = Err(error);
            }
        }
        if let Some(curator) = &self.curator {
            let issues: Vec<&Issue> = items
                .iter()
                .filter_map(|item| match item {
                    Published::Issue(_, issue) => Some(issue),
                    Published::Event(_) => None,
                })
                .collect();
            if let Err(error) = curator.push(&issues).await {
                tracing::error!(
                    error = format!("{error:#}"),
                    "issues not queued for the curator"
                );
                outcome = outcome.and(Err(error));
            }
        }
        outcome
    }
}
