//! The one way out: notable incident changes go to the planner (`POST <PLANNER_URL>/v1/incidents`,
//! a JSON array of incidents) and to the archivist (`POST <ARCHIVIST_URL>/v1/records`, a JSON
//! array of `obs_model::Record` of kind `incident`), each through its own `obs_core::Outbox`:
//! records staged in the same transaction as the incident rows, retried, bounded. A
//! destination whose URL is not set gets nothing.
//!
//! Receivers see at-least-once delivery. The planner can order copies of one incident by
//! `revision`; each archive record has a fresh ULID of its own (the incident's id is in the
//! body), so every change is one record of history.

use chrono::Utc;
use obs_core::db::{Db, Tx};
use obs_core::{Outbox, RoleContext, Service};
use obs_model::{Incident, Record};
use ulid::Ulid;

pub struct Forward {
    planner: Option<Outbox>,
    archivist: Option<Outbox>,
}

impl Forward {
    /// One outbox per peer that is set (`CoreConfig::peers`: PLANNER_URL, ARCHIVIST_URL),
    /// its records kept in `db`.
    pub fn open(db: &Db, service: &Service) -> anyhow::Result<Self> {
        let peers = &service.config().peers;
        let open = |destination: &str, url: Option<String>| {
            url.map(|url| Outbox::open(db, service, destination, &url))
                .transpose()
        };
        Ok(Forward {
            planner: open(
                "planner",
                peers
                    .planner
                    .as_ref()
                    .map(|url| format!("{url}/v1/incidents")),
            )?,
            archivist: open(
                "archivist",
                peers
                    .archivist
                    .as_ref()
                    .map(|url| format!("{url}/v1/records")),
            )?,
        })
    }

    pub fn start(&self, context: &RoleContext) {
        for outbox in [&self.planner, &self.archivist].into_iter().flatten() {
            outbox.start(context);
        }
    }

    /// Stage `incidents` (copies at each notable change, in order) for both destinations in
    /// `tx`: they go out if and only if it commits. Call [`Forward::wake`] after the commit.
    pub fn stage(&self, tx: &mut Tx<'_>, incidents: &[Incident]) -> anyhow::Result<()> {
        if incidents.is_empty() {
            return Ok(());
        }
        if let Some(planner) = &self.planner {
            planner.stage(tx, incidents)?;
        }
        if let Some(archivist) = &self.archivist {
            let records = incidents
                .iter()
                .map(record)
                .collect::<anyhow::Result<Vec<_>>>()?;
            archivist.stage(tx, &records)?;
        }
        Ok(())
    }

    /// Deliver what was just committed without waiting for the next poll.
    pub fn wake(&self) {
        for outbox in [&self.planner, &self.archivist].into_iter().flatten() {
            outbox.wake();
        }
    }
}

/// The archive envelope of one incident change.
pub fn record(incident: &Incident) -> anyhow::Result<Record> {
    Ok(Record {
        id: Ulid::new(),
        kind: "incident".into(),
        service: incident.service.clone(),
        ts: Utc::now(),
        body: serde_json::to_value(incident)?,
    })
}
