//! The one way out: every event the watcher records and every issue change (opened,
//! updated, resolved) is staged by [`Downstream::stage`], as an `obs_model::Record`, in the
//! same transaction as the change itself (see [`crate::Shared::commit`]): the records go out
//! if and only if the change committed.
//!
//! Delivery is obs-core's outbox: rows of the watcher's database, retried until the receiver
//! takes them (ARCHIVIST_URL gets every record, CURATOR_URL every issue change), by whichever
//! replica claims them.

use chrono::Utc;
use obs_core::db::{Db, Tx};
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
#[derive(Default, Clone)]
pub struct Downstream {
    archive: Option<Outbox>,
    curator: Option<Outbox>,
}

impl Downstream {
    pub fn new(db: &Db, service: &Service) -> anyhow::Result<Self> {
        let peers = &service.config().peers;
        let open = |destination: &str, url: Option<String>| {
            url.map(|url| Outbox::open(db, service, destination, &url))
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

    /// Stage `items` for the roles downstream in `tx`, in the order things happened.
    pub fn stage(&self, tx: &mut Tx<'_>, items: &[Published]) -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        if let Some(archive) = &self.archive {
            let records: Vec<Record> = items.iter().map(Published::to_record).collect();
            archive.stage(tx, &records)?;
        }
        if let Some(curator) = &self.curator {
            // Fitted to the curator's limits (a 157-character container name, a 300-character
            // probe URL): refused for shape, an issue would never become an incident.
            let issues: Vec<Issue> = items
                .iter()
                .filter_map(|item| match item {
                    Published::Issue(_, issue) => Some(issue.clone().fit_limits()),
                    Published::Event(_) => None,
                })
                .collect();
            if !issues.is_empty() {
                curator.stage(tx, &issues)?;
            }
        }
        Ok(())
    }

    /// After a commit: log the issue changes and deliver without waiting for the next poll.
    pub fn committed(&self, items: &[Published]) {
        for item in items {
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
        if items.is_empty() {
            return;
        }
        for outbox in self.archive.iter().chain(&self.curator) {
            outbox.wake();
        }
    }
}
