//! The curator role: what matters? Issues from watchers and alerts from Alertmanager,
//! deduplicated into incidents with a lifecycle, silences, flapping and goals (DESIGN §4).
//!
//! - [`incidents`]: the dedup and lifecycle core (pure; one HashMap lookup per signal).
//! - [`issues`], [`alertmanager`], [`goals`]: what each source's input means, as signals.
//! - [`silences`]: Alertmanager-style matchers.
//! - [`store`]: the curator's tables in the role's database (`obs_core::db`), and the import
//!   of the files an earlier version kept under STATE_DIR.
//! - [`forward`]: the one way out, to the planner and the archivist, through outboxes.
//! - [`api`]: the HTTP endpoints; [`housekeeping`]: the periodic work.
//!
//! Every change follows one path ([`Shared::change`]), one change at a time: it is computed
//! on the book (the incidents in memory), which is then put back as it was
//! ([`incidents::Book::capture`]); the changed rows, each checked against the revision it
//! replaces, the issue ids seen (`first_sighting`) and the records for the planner and the
//! archivist are written in ONE transaction; only once it committed does the book take the
//! change and the sender get its answer. A failed commit changes nothing anywhere and is
//! answered 503, so the sender's retry is applied as if it were the first.
//!
//! On SQLite (the default) this process is the only writer and the book is authoritative: a
//! batch of issues that only repeats what is open (count, last_seen) changes nothing
//! persistent and is answered without a transaction; repeats are saved behind, in batches
//! ([`Shared::save_repeats`]). On PostgreSQL (DATABASE_URL) replicas share the tables and
//! the book is a cache: a change first re-reads the rows it decides from, locked, inside
//! its transaction, and reads that list state are answered from the tables.

pub mod alertmanager;
pub mod api;
pub mod config;
pub mod forward;
pub mod goals;
pub mod housekeeping;
pub mod incidents;
pub mod issues;
pub mod metrics;
#[cfg(test)]
mod props;
pub mod silences;
pub mod store;
pub mod validate;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::actix_web::web;
use obs_core::db::{Db, Dialect, Lease, Tx};
use obs_core::{Role, RoleContext, Service};
use obs_model::{ExpectedService, Goals};
use tokio::sync::Notify;
use ulid::Ulid;

pub use config::CuratorConfig;

use crate::forward::Forward;
use crate::goals::GoalsState;
use crate::incidents::{Applied, Book, Change, Rules, Signal};
use crate::metrics::CuratorMetrics;
use crate::store::IncidentWrite;

pub const NAME: &str = "curator";
pub const DEFAULT_PORT: u16 = 8002;
/// How long a replica that died keeps the singleton jobs (housekeeping, goals) from others.
const LEASE_TTL: Duration = Duration::from_secs(15);
/// Attempts of a batch of signals that lost a race with another replica (PostgreSQL).
const SIGNAL_ATTEMPTS: usize = 3;
/// Incidents serialized per hold of the book's lock when repeats are saved.
const SAVE_CHUNK: usize = 256;

/// Everything the endpoints and background tasks share.
pub struct Shared {
    pub config: CuratorConfig,
    db: Db,
    book: Mutex<Book>,
    /// One change at a time, from computing it to putting it in place after its commit:
    /// a change is computed against the book as committed, so nothing else may change the
    /// book in between.
    turn: tokio::sync::Mutex<()>,
    forward: Forward,
    pub metrics: CuratorMetrics,
    goals: Mutex<GoalsState>,
    /// Wakes the goals check when the goals change.
    goals_changed: Notify,
    /// WATCHER_URL (`CoreConfig::peers`): asked which services exist, for the goals.
    watcher_url: Option<String>,
    http: reqwest::Client,
}

/// A lock that a panicking holder cannot make unusable: the book's updates keep it
/// consistent at every step a panic could interrupt (a count off by one at worst).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What a change must re-read before it is computed, on PostgreSQL (where other replicas
/// write too). On SQLite the book is the only writer's, and nothing is re-read.
pub enum Scope {
    /// The incident with this id, if the book does not hold it.
    Incident(Ulid),
    /// Everything: incidents, silences, goals (silence changes and the singleton jobs,
    /// which look at every incident).
    Everything,
}

/// A change computed on the book and not yet stored.
struct Prepared<R> {
    result: R,
    applied: Applied,
    change: Change,
    writes: Vec<IncidentWrite>,
    pruned: Vec<(Ulid, Option<u64>)>,
}

impl Shared {
    pub fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    pub fn goals(&self) -> MutexGuard<'_, GoalsState> {
        lock(&self.goals)
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    fn shared_db(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    /// Compute `op` on the book and put the book back as it was: the change is returned, with
    /// the rows to write.
    fn compute<R>(
        &self,
        op: impl FnOnce(&mut Book, &mut Applied) -> R,
    ) -> anyhow::Result<Prepared<R>> {
        let mut applied = Applied::default();
        let mut book = self.book();
        book.begin();
        let result = op(&mut book, &mut applied);
        book.seal(&mut applied);
        let writes = applied
            .to_save
            .iter()
            .map(|tracked| IncidentWrite::new(tracked, book.stored_revision(&tracked.incident.id)))
            .collect::<anyhow::Result<Vec<_>>>();
        let pruned = applied
            .pruned
            .iter()
            .map(|(id, _)| (*id, book.stored_revision(id)))
            .collect();
        let change = book.capture();
        drop(book);
        Ok(Prepared {
            result,
            applied,
            change,
            writes: writes?,
            pruned,
        })
    }

    /// Write a computed change in `tx`: its rows and the records it forwards.
    fn store<R>(&self, tx: &mut Tx<'_>, prepared: &Prepared<R>) -> anyhow::Result<()> {
        store::write_incidents(tx, &prepared.writes)?;
        store::delete_incidents(tx, &prepared.pruned)?;
        self.forward.stage(tx, &prepared.applied.notable)
    }

    /// The change committed: the book takes it, the gauges follow, delivery starts.
    fn finish<R>(&self, prepared: Prepared<R>) -> (R, Applied) {
        let stored: Vec<(Ulid, Option<u64>)> = prepared
            .writes
            .iter()
            .map(|row| (row.id, Some(row.revision)))
            .chain(prepared.pruned.iter().map(|(id, _)| (*id, None)))
            .collect();
        {
            let mut book = self.book();
            book.redo(prepared.change, &stored);
            self.metrics.set_open(book.active_counts());
            self.metrics.silences.set(book.silences.len() as i64);
        }
        self.metrics.record(&prepared.applied);
        if !prepared.applied.notable.is_empty() {
            self.forward.wake();
        }
        (prepared.result, prepared.applied)
    }

    /// The one commit path: re-read what `scope` names (PostgreSQL), compute `op` on the
    /// book, write its rows, its records and whatever `persist` adds in one transaction,
    /// and only once that committed put the change in place. On any error nothing changed.
    pub async fn change<R, Op, Persist>(
        self: &Arc<Self>,
        scope: Scope,
        op: Op,
        persist: Persist,
    ) -> anyhow::Result<(R, Applied)>
    where
        R: Send + 'static,
        Op: FnOnce(&mut Book, &mut Applied) -> R + Send + 'static,
        Persist: FnOnce(&mut Tx<'_>, &R) -> anyhow::Result<()> + Send + 'static,
    {
        let _turn = self.turn.lock().await;
        let shared = self.clone();
        let prepared = self
            .db
            .write(move |tx| {
                if shared.shared_db() {
                    shared.sync(tx, &scope)?;
                }
                let prepared = shared.compute(op)?;
                shared.store(tx, &prepared)?;
                persist(tx, &prepared.result)?;
                Ok(prepared)
            })
            .await?;
        Ok(self.finish(prepared))
    }

    /// Apply a batch of signals (issues, alerts, goals' verdicts) in one transaction.
    pub async fn apply_signals(
        self: &Arc<Self>,
        signals: Vec<Signal>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Applied> {
        let _turn = self.turn.lock().await;
        if !self.shared_db() {
            // A batch that only repeats what is open (every issue one the book knows) changes
            // what is saved behind: applied in place, under one turn of the book's lock.
            let mut book = self.book();
            if book.only_repeats(&signals) {
                let mut applied = Applied::default();
                for signal in signals {
                    book.apply(signal, now, &mut applied);
                }
                drop(book);
                self.metrics.record(&applied);
                return Ok(applied);
            }
        }
        if !self.shared_db() && self.book().unknown_issues(&signals).is_empty() {
            // Every issue is one the book knows: nothing to look up in the database, and
            // if the batch changes nothing durable, nothing to write either.
            let prepared = self.compute(|book, applied| {
                for signal in signals {
                    book.apply(signal, now, applied);
                }
            })?;
            if prepared.applied.nothing_to_store() {
                return Ok(self.finish(prepared).1);
            }
            let shared = self.clone();
            let prepared = self
                .db
                .write(move |tx| {
                    for issue_id in &prepared.applied.new_issue_ids {
                        tx.first_sighting(store::INBOX_ROLE, &issue_id.to_string())?;
                    }
                    shared.store(tx, &prepared)?;
                    Ok(prepared)
                })
                .await?;
            return Ok(self.finish(prepared).1);
        }
        let attempts = if self.shared_db() { SIGNAL_ATTEMPTS } else { 1 };
        let mut signals = Some(signals);
        for attempt in 1..=attempts {
            let batch = if attempt < attempts {
                signals.clone().unwrap_or_default()
            } else {
                signals.take().unwrap_or_default()
            };
            let shared = self.clone();
            let result = self
                .db
                .write(move |tx| {
                    let prepared = shared.stage_signals(tx, batch, now)?;
                    shared.store(tx, &prepared)?;
                    Ok(prepared)
                })
                .await;
            match result {
                Ok(prepared) => return Ok(self.finish(prepared).1),
                // Another replica opened or changed one of these incidents first: the next
                // attempt re-reads it.
                Err(error)
                    if attempt < attempts
                        && (obs_core::db::is_unique_violation(&error)
                            || store::conflict(&error).is_some()) =>
                {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "a batch lost a race with another replica; applying it again"
                    );
                }
                Err(error) => return Err(error),
            }
        }
        anyhow::bail!("a batch of signals could not be applied")
    }

    /// Inside a batch's transaction: re-read its incidents (PostgreSQL), remember the issue
    /// ids it starts, and compute it; redeliveries of issues applied before are duplicates.
    fn stage_signals(
        &self,
        tx: &mut Tx<'_>,
        signals: Vec<Signal>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Prepared<()>> {
        if self.shared_db() {
            // Sorted: replicas lock rows in one order, so two batches cannot deadlock.
            let fingerprints: Vec<&str> = signals
                .iter()
                .map(|signal| signal.fingerprint.as_str())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            self.sync_fingerprints(tx, &fingerprints)?;
            self.sync_silences(tx)?;
        }
        let unknown = self.book().unknown_issues(&signals);
        let mut first = HashSet::new();
        let mut seen_before = HashSet::new();
        for issue_id in unknown {
            if tx.first_sighting(store::INBOX_ROLE, &issue_id.to_string())? {
                first.insert(issue_id);
            } else {
                seen_before.insert(issue_id);
            }
        }
        let prepared = self.compute(|book, applied| {
            for signal in signals {
                if signal.issue_id.is_some_and(|id| seen_before.contains(&id)) {
                    applied.tally.received += 1;
                    applied.tally.duplicates += 1;
                } else {
                    book.apply(signal, now, applied);
                }
            }
        })?;
        // An issue that changed nothing (refused at MAX_INCIDENTS, out of date) is not
        // remembered: the sender's retry must be applied.
        let started: HashSet<Ulid> = prepared.applied.new_issue_ids.iter().copied().collect();
        for issue_id in first.difference(&started) {
            tx.execute(
                "DELETE FROM inbox WHERE role = $1 AND id = $2",
                &[store::INBOX_ROLE.into(), issue_id.to_string().into()],
            )?;
        }
        Ok(prepared)
    }

    /// Take into the book what other replicas wrote, as far as `scope` reaches.
    fn sync(&self, tx: &mut Tx<'_>, scope: &Scope) -> anyhow::Result<()> {
        match scope {
            Scope::Incident(id) => {
                // Only when the book lacks it: a stale copy is what the revision check
                // is for (409).
                if self.book().get(id).is_none() {
                    if let Some(tracked) = store::incident(tx, *id)? {
                        self.book().adopt(*id, Some(tracked));
                    }
                }
                Ok(())
            }
            Scope::Everything => {
                let stored = store::revisions(tx)?;
                let (changed, gone) = {
                    let book = self.book();
                    let changed: Vec<Ulid> = stored
                        .iter()
                        .filter(|(id, revision)| book.stored_revision(id) != Some(**revision))
                        .map(|(id, _)| *id)
                        .collect();
                    let gone: Vec<Ulid> = book
                        .ids()
                        .into_iter()
                        .filter(|id| !stored.contains_key(id))
                        .collect();
                    (changed, gone)
                };
                let rows = store::incidents_by_id(tx, &changed)?;
                {
                    let mut book = self.book();
                    for tracked in rows {
                        book.adopt(tracked.incident.id, Some(tracked));
                    }
                    for id in gone {
                        book.adopt(id, None);
                    }
                }
                self.sync_silences(tx)?;
                let (goals, revision) = store::goals(tx)?;
                let mut state = self.goals();
                if revision != state.revision {
                    let goals = goals.unwrap_or_else(store::no_goals);
                    state.services = goals.services;
                    state.missing = goals.missing;
                    state.checked_at = goals.checked_at;
                    state.revision = revision;
                }
                Ok(())
            }
        }
    }

    fn sync_fingerprints(&self, tx: &mut Tx<'_>, fingerprints: &[&str]) -> anyhow::Result<()> {
        let rows = store::incidents_by_fingerprint(tx, fingerprints)?;
        let mut book = self.book();
        let found: HashSet<Ulid> = rows.iter().map(|tracked| tracked.incident.id).collect();
        let gone: Vec<Ulid> = fingerprints
            .iter()
            .filter_map(|fingerprint| book.by_fingerprint(fingerprint).map(|i| i.id))
            .filter(|id| !found.contains(id))
            .collect();
        for id in gone {
            book.adopt(id, None);
        }
        for tracked in rows {
            if book.stored_revision(&tracked.incident.id) != Some(tracked.incident.revision) {
                book.adopt(tracked.incident.id, Some(tracked));
            }
        }
        Ok(())
    }

    fn sync_silences(&self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        let silences = store::silences(tx)?;
        self.book().adopt_silences(silences);
        Ok(())
    }

    /// Replace the expected services (`PUT /v1/goals`) over whatever is stored last (by this
    /// replica's goals check or any other replica).
    pub async fn put_goals(
        self: &Arc<Self>,
        services: Vec<ExpectedService>,
    ) -> anyhow::Result<Goals> {
        let _turn = self.turn.lock().await;
        let goals = Goals {
            services: services.clone(),
            missing: None,
            checked_at: None,
        };
        // A PUT replaces the whole list and carries no revision of its own: it is checked
        // against the row as read in its own transaction, never against a cached revision
        // that the goals check (which stores its verdict in the same row) may have moved on.
        let revision = self
            .db
            .write(move |tx| {
                let expected = store::goals(tx)?.1;
                store::put_goals(tx, &goals, expected)
            })
            .await?;
        let stored = {
            let mut state = self.goals();
            state.services = services;
            // The last verdict was about the old list.
            state.missing = None;
            state.checked_at = None;
            state.revision = revision;
            state.to_wire()
        };
        self.goals_changed.notify_one();
        Ok(stored)
    }

    /// After a conflict: take the incident as the database has it now, so the next request
    /// decides from it.
    pub async fn reload_incident(&self, id: Ulid) -> anyhow::Result<()> {
        let row = self.db.read(move |tx| store::incident(tx, id)).await?;
        self.book().adopt(id, row);
        Ok(())
    }

    /// Save the incidents changed by repeats since they were last saved, in one
    /// transaction. A row another replica changed meanwhile keeps its newer state.
    pub async fn save_repeats(&self) -> anyhow::Result<()> {
        let _turn = self.turn.lock().await;
        // Serialized straight from the book (no copies), a chunk per hold of its lock so
        // that readers wait at most one chunk; the turn keeps the book still in between.
        let ids = self.book().dirty_ids();
        let mut rows = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(SAVE_CHUNK) {
            let book = self.book();
            for id in chunk {
                if let Some(tracked) = book.tracked(id) {
                    rows.push(IncidentWrite::new(tracked, book.stored_revision(id))?);
                }
            }
        }
        if rows.is_empty() {
            return Ok(());
        }
        let (saved, conflicts) = self
            .db
            .write(move |tx| store::write_repeats(tx, rows))
            .await
            .context("saving incident repeats")?;
        self.book().mark_saved(&saved);
        for id in conflicts {
            self.reload_incident(id).await?;
        }
        Ok(())
    }
}

/// The curator role.
pub struct Curator {
    shared: Arc<Shared>,
}

impl Curator {
    /// From the environment (FLAP_*, GOALS_CHECK_INTERVAL, …; the peers' URLs and the
    /// database are the kit's).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = CuratorConfig::from_env()?;
        Self::with_config(service, config).await
    }

    /// With explicit settings (tests, obs-stack).
    pub async fn with_config(service: &Service, config: CuratorConfig) -> anyhow::Result<Self> {
        let metrics = CuratorMetrics::register(service.metrics())
            .context("registering the curator's metrics")?;
        let db = service.open_db(store::SCHEMA).await?;
        store::import_legacy(&db, &service.config().state_dir).await?;
        let (saved, silences, (goals, goals_revision)) = db
            .read(|tx| {
                Ok((
                    store::all_incidents(tx)?,
                    store::silences(tx)?,
                    store::goals(tx)?,
                ))
            })
            .await
            .with_context(|| {
                format!(
                    "loading the curator's state from {}",
                    db.location().describe()
                )
            })?;
        let mut book = Book::new(rules(&config)?);
        book.restore(saved, silences);
        metrics.set_open(book.active_counts());
        metrics.silences.set(book.silences.len() as i64);
        let goals = goals.unwrap_or_else(store::no_goals);
        let goals = GoalsState {
            services: goals.services,
            missing: goals.missing,
            checked_at: goals.checked_at,
            revision: goals_revision,
        };
        if !book.is_empty() {
            tracing::info!(incidents = book.len(), "incidents restored");
        }
        let shared = Arc::new(Shared {
            forward: Forward::open(&db, service)?,
            watcher_url: service.config().peers.watcher.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client")?,
            config,
            db,
            book: Mutex::new(book),
            turn: tokio::sync::Mutex::new(()),
            metrics,
            goals: Mutex::new(goals),
            goals_changed: Notify::new(),
        });
        Ok(Curator { shared })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

fn rules(config: &CuratorConfig) -> anyhow::Result<Rules> {
    let duration = |value: Duration, name: &str| {
        chrono::Duration::from_std(value).with_context(|| format!("{name} is too long"))
    };
    Ok(Rules {
        flap_threshold: config.flapping.threshold,
        flap_window: duration(config.flapping.window, "FLAP_WINDOW")?,
        flap_settle: duration(config.flapping.settle, "FLAP_SETTLE")?,
        max_active: config.max_incidents,
        resolved_max: config.resolved_max,
        resolved_max_age: duration(config.resolved_max_age, "RESOLVED_INCIDENTS_MAX_AGE")?,
    })
}

impl Role for Curator {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        api::routes(cfg, self.shared.clone());
    }

    fn openapi(&self) -> obs_core::utoipa::openapi::OpenApi {
        api::openapi()
    }

    fn start(&self, context: &RoleContext) {
        let shared = &self.shared;
        shared.forward.start(context);
        context.spawn(housekeeping::flush(
            shared.clone(),
            context.shutdown.clone(),
        ));
        // Singletons: one replica at a time tidies and checks the goals.
        let tidy = Lease::new(&shared.db, "curator-housekeeping", LEASE_TTL);
        let tidying = shared.clone();
        context.spawn(tidy.run(context.shutdown.clone(), move |held| {
            housekeeping::run(tidying.clone(), held)
        }));
        if shared.watcher_url.is_none() {
            tracing::info!("WATCHER_URL is not set: goals are kept but not checked");
            return;
        }
        let check = Lease::new(&shared.db, "curator-goals", LEASE_TTL);
        let checking = shared.clone();
        context.spawn(check.run(context.shutdown.clone(), move |held| {
            goals::run(checking.clone(), held)
        }));
    }

    async fn flush(&self) -> anyhow::Result<()> {
        self.shared.save_repeats().await
    }
}
