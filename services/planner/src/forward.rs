//! The one way out: plan changes go to the synthesizer (`POST <SYNTHESIZER_URL>/v1/plans`,
//! a JSON array of plans) and to the archivist (`POST <ARCHIVIST_URL>/v1/records`, a JSON
//! array of `obs_model::Record` of kind `plan`), each through its own `obs_core::Outbox`:
//! rows of the planner's database, staged in the transaction that changes the plans, so
//! they go out if and only if the change commits; retried, bounded, delivered by any
//! replica. A destination whose URL is not set gets nothing.
//!
//! Receivers see at-least-once delivery. The synthesizer orders copies of one plan by
//! `revision`; each archive record has a fresh ULID of its own (the plan is in the body), so
//! every change is one record of history.

use chrono::Utc;
use obs_core::db::{Db, Tx};
use obs_core::{Outbox, RoleContext, Service};
use obs_model::{Plan, Record};
use ulid::Ulid;

#[derive(Clone)]
pub struct Forward {
    synthesizer: Option<Outbox>,
    archivist: Option<Outbox>,
}

impl Forward {
    /// One outbox per peer that is set (`CoreConfig::peers`: SYNTHESIZER_URL, ARCHIVIST_URL).
    pub fn open(db: &Db, service: &Service) -> anyhow::Result<Self> {
        let peers = &service.config().peers;
        let open = |destination: &str, base: &Option<String>, path: &str| {
            base.as_ref()
                .map(|url| Outbox::open(db, service, destination, &format!("{url}{path}")))
                .transpose()
        };
        Ok(Forward {
            synthesizer: open("synthesizer", &peers.synthesizer, "/v1/plans")?,
            archivist: open("archivist", &peers.archivist, "/v1/records")?,
        })
    }

    fn outboxes(&self) -> impl Iterator<Item = &Outbox> {
        [&self.synthesizer, &self.archivist].into_iter().flatten()
    }

    pub fn start(&self, context: &RoleContext) {
        for outbox in self.outboxes() {
            outbox.start(context);
        }
    }

    /// Stage `plans` (copies at each change, in order) for both destinations in `tx`: they
    /// are delivered once it commits. Call [`Forward::wake`] after the commit.
    pub fn stage(&self, tx: &mut Tx<'_>, plans: &[Plan]) -> anyhow::Result<()> {
        if plans.is_empty() {
            return Ok(());
        }
        if let Some(synthesizer) = &self.synthesizer {
            synthesizer.stage(tx, plans)?;
        }
        if let Some(archivist) = &self.archivist {
            let records = plans
                .iter()
                .map(record)
                .collect::<anyhow::Result<Vec<_>>>()?;
            archivist.stage(tx, &records)?;
        }
        Ok(())
    }

    /// Deliver what was just committed without waiting for the next poll.
    pub fn wake(&self) {
        for outbox in self.outboxes() {
            outbox.wake();
        }
    }
}

/// The archive envelope of one plan change.
pub fn record(plan: &Plan) -> anyhow::Result<Record> {
    Ok(Record {
        id: Ulid::new(),
        kind: "plan".into(),
        service: plan.service.clone(),
        ts: Utc::now(),
        body: serde_json::to_value(plan)?,
    })
}
