//! The watcher role: what is happening? Heartbeats, events, container lifecycle and HTTP
//! probes, turned into issues (DESIGN §4; the seeds' monitoring service and BuildWatch).
//!
//! - [`heartbeats`] + [`checker`]: services and their deadlines; down and recovery.
//! - [`docker`]: the engine's event stream → OOM kills, restart loops, unhealthy, crashes.
//! - [`kubernetes`]: pods through the API server → the same, plus image pulls, evictions and
//!   unschedulable pods.
//! - [`probes`]: HTTP probes of PROBE_TARGETS (and, in obs-stack, of the other roles).
//! - [`host`]: load, memory and disk gauges.
//! - [`events`], [`issues`]: what the read API serves; [`downstream`]: the one way out.
//! - [`store`]: the tables; [`legacy`]: the one-time import of a previous version's
//!   state.json; [`api`]: the HTTP endpoints.
//!
//! # The commit path
//!
//! State lives in the watcher's database (obs-core's `Db`: STATE_DIR/watcher.db, or the shared
//! PostgreSQL of DATABASE_URL). Every change that matters downstream — an event, an issue
//! opened, updated or resolved, a service going down or coming back — goes through
//! [`Shared::commit`]: one transaction holds the rows and the outbox records for the curator
//! and the archivist, and memory (the read cache and the metrics) takes the change only once
//! the transaction committed. A failed commit changes nothing; `POST /events` answers it
//! with 503, so the client's retry is recorded normally.
//!
//! The heartbeat hot path is the exception by design: a beat from a live service changes
//! memory only and is written behind, in batches, at most STATE_SAVE_INTERVAL later. The
//! checker and the Docker follower run under leases, so with several replicas on one
//! PostgreSQL one of each runs at a time and another takes over when its holder dies.

pub mod api;
pub mod checker;
pub mod config;
pub mod docker;
pub mod downstream;
pub mod events;
pub mod heartbeats;
pub mod host;
pub mod issues;
pub mod kubernetes;
pub mod legacy;
pub mod metrics;
pub mod probes;
pub mod store;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use chrono::Utc;
use obs_core::actix_web::web;
use obs_core::db::{Db, Dialect, Tx};
use obs_core::{Role, RoleContext, Service};
use obs_model::{Container, Event, EventSource, Issue, IssueKind, IssueState, WatcherStatus};
use serde_json::Value;
use tokio::sync::Notify;
use ulid::Ulid;

pub use config::WatcherConfig;
pub use probes::ProbeTargets;

use crate::docker::{ContainerTable, DockerLink};
use crate::downstream::{Downstream, Published};
use crate::events::EventLog;
use crate::heartbeats::{ServicesPage, ServicesQuery, Tracker};
use crate::issues::{Change, Detection, IssueBook};
use crate::metrics::WatcherMetrics;
use crate::store::ServiceRow;

pub const NAME: &str = "watcher";
pub const DEFAULT_PORT: u16 = 8001;
/// Port 8001, or the seed monitoring service's MONITOR_HOST / MONITOR_PORT when HOST / PORT
/// are not set.
pub const LISTEN: obs_core::Listen = obs_core::Listen {
    port: DEFAULT_PORT,
    legacy: Some(obs_core::LegacyListen {
        host: "MONITOR_HOST",
        port: "MONITOR_PORT",
    }),
};

/// Everything the endpoints and background tasks share.
pub struct Shared {
    pub config: WatcherConfig,
    pub tracker: Arc<Mutex<Tracker>>,
    events: Mutex<EventLog>,
    issues: Mutex<IssueBook>,
    containers: Mutex<ContainerTable>,
    pub probes: ProbeTargets,
    pub docker: DockerLink,
    pub kubernetes: kubernetes::KubeLink,
    pub metrics: WatcherMetrics,
    pub db: Db,
    downstream: Downstream,
    /// One commit at a time from this process, so memory takes changes in commit order.
    writes: tokio::sync::Mutex<()>,
    /// Wakes the checker when a deadline earlier than the one it sleeps towards appears.
    pub checker_wake: Notify,
    /// The deadline (Unix ms) the checker sleeps towards; i64::MAX when none.
    pub next_due: AtomicI64,
}

/// A lock that a panicking holder cannot make unusable: every update in these tables is a
/// single insert or field write, so what a panic leaves behind is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one transaction changed, for memory once it committed. Built by the closure given to
/// [`Shared::commit`], whose every method writes its rows in the transaction at once.
pub struct Changes {
    published: Vec<Published>,
    services: Vec<ServiceRow>,
    events_max: usize,
    resolved_max: usize,
}

impl Changes {
    /// Keep `event` and send it downstream.
    pub fn event(&mut self, tx: &mut Tx<'_>, event: Event) -> anyhow::Result<()> {
        store::insert_event(tx, &event, self.events_max)?;
        self.published.push(Published::Event(event));
        Ok(())
    }

    /// Open an issue or update the open one with the same fingerprint.
    pub fn raise(&mut self, tx: &mut Tx<'_>, detection: Detection) -> anyhow::Result<()> {
        let (change, issue) = store::raise(tx, detection, Utc::now())?;
        self.published.push(Published::Issue(change, issue));
        Ok(())
    }

    /// Open an issue unless one with the same fingerprint is open already (a condition seen
    /// again, e.g. after a reconnect, is not a new occurrence; a crash seen again while its
    /// restart loop is open neither).
    pub fn raise_if_new(&mut self, tx: &mut Tx<'_>, detection: Detection) -> anyhow::Result<()> {
        let open = store::open_of_subject(tx, &detection.subject)?;
        if open.iter().any(|(service, kind)| {
            *service == detection.service && kind.family() == detection.kind.family()
        }) {
            return Ok(());
        }
        self.raise(tx, detection)
    }

    /// Add facts to an open issue without counting a new occurrence.
    pub fn amend(
        &mut self,
        tx: &mut Tx<'_>,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
    ) -> anyhow::Result<()> {
        if let Some(issue) = store::amend(tx, service, kind, subject, facts, Utc::now())? {
            self.published
                .push(Published::Issue(Change::Updated, issue));
        }
        Ok(())
    }

    /// Resolve the open issue with this fingerprint, if any (same id as when opened).
    pub fn resolve(
        &mut self,
        tx: &mut Tx<'_>,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
    ) -> anyhow::Result<()> {
        let resolved = store::resolve(
            tx,
            service,
            kind,
            subject,
            facts,
            Utc::now(),
            self.resolved_max,
        )?;
        if let Some(issue) = resolved {
            self.published
                .push(Published::Issue(Change::Resolved, issue));
        }
        Ok(())
    }

    /// Resolve every open issue of `subject` (a container that is gone).
    pub fn resolve_all_of(
        &mut self,
        tx: &mut Tx<'_>,
        subject: &str,
        facts: BTreeMap<String, Value>,
    ) -> anyhow::Result<()> {
        for (service, kind) in store::open_of_subject(tx, subject)? {
            self.resolve(tx, &service, kind, subject, facts.clone())?;
        }
        Ok(())
    }

    /// A service row as written in this transaction, for the heartbeat table.
    pub fn service(&mut self, tx: &mut Tx<'_>, row: ServiceRow) -> anyhow::Result<()> {
        row.put(tx)?;
        self.services.push(row);
        Ok(())
    }

    /// A row written by the caller itself, taken into memory after the commit.
    pub fn service_written(&mut self, row: ServiceRow) {
        self.services.push(row);
    }
}

impl Shared {
    pub fn tracker(&self) -> MutexGuard<'_, Tracker> {
        lock(&self.tracker)
    }

    pub fn containers(&self) -> MutexGuard<'_, ContainerTable> {
        lock(&self.containers)
    }

    pub fn new_event(&self, service: &str, event_type: &str, source: EventSource) -> Event {
        Event {
            id: Ulid::new(),
            timestamp: Utc::now(),
            service: service.to_string(),
            event_type: event_type.to_string(),
            source,
            detail: None,
            component: None,
            container: None,
            image: None,
            exit_code: None,
        }
    }

    /// Run `work` in one transaction with the outbox records its changes produce, then —
    /// only if it committed — apply those changes to memory and wake delivery.
    pub async fn commit<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>, &mut Changes) -> anyhow::Result<T> + Send + 'static,
    {
        let _turn = self.writes.lock().await;
        let downstream = self.downstream.clone();
        let mut changes = Changes {
            published: Vec::new(),
            services: Vec::new(),
            events_max: self.config.events_max,
            resolved_max: self.config.resolved_issues_max,
        };
        let (value, changes) = self
            .db
            .write(move |tx| {
                let value = work(tx, &mut changes)?;
                downstream.stage(tx, &changes.published)?;
                Ok((value, changes))
            })
            .await?;
        self.apply(&changes);
        self.downstream.committed(&changes.published);
        Ok(value)
    }

    fn apply(&self, changes: &Changes) {
        if !changes.services.is_empty() {
            let mut tracker = self.tracker();
            for row in &changes.services {
                tracker.apply(row);
            }
        }
        for item in &changes.published {
            match item {
                Published::Event(event) => self.keep_event(event.clone()),
                Published::Issue(_, issue) => lock(&self.issues).apply(issue.clone()),
            }
        }
    }

    /// A failed commit of the watcher's own detection: nothing changed, and it is logged.
    fn log_failed(&self, what: &str, error: &anyhow::Error) {
        self.metrics.state_save_failures.inc();
        tracing::error!(
            error = format!("{error:#}"),
            "{what} was not recorded: the commit failed"
        );
    }

    /// An event the watcher saw itself: kept for `/events`, counted and sent downstream.
    pub async fn record_event(&self, event: Event) {
        if let Err(error) = self
            .commit(move |tx, changes| changes.event(tx, event))
            .await
        {
            self.log_failed("an event", &error);
        }
    }

    /// An event a client sent: recorded only if its transaction commits, so a client told
    /// it failed can send it again without it counting twice.
    pub async fn accept_event(&self, event: Event) -> anyhow::Result<()> {
        self.commit(move |tx, changes| changes.event(tx, event))
            .await
    }

    fn keep_event(&self, event: Event) {
        self.metrics
            .events
            .inc(&[&event.service, &event.event_type]);
        if let Some(component) = &event.component {
            match event.event_type.as_str() {
                "failure" => self.metrics.task_failures.inc(&[&event.service, component]),
                "success" => self
                    .metrics
                    .task_successes
                    .inc(&[&event.service, component]),
                _ => {}
            }
        }
        lock(&self.events).push(event);
    }

    /// Open an issue or update the open one with the same fingerprint.
    pub async fn raise(&self, detection: Detection) {
        if let Err(error) = self
            .commit(move |tx, changes| changes.raise(tx, detection))
            .await
        {
            self.log_failed("an issue", &error);
        }
    }

    /// Resolve the open issue with this fingerprint, if any (same id as when opened).
    pub async fn resolve(
        &self,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
    ) {
        let (service, subject) = (service.to_string(), subject.to_string());
        if let Err(error) = self
            .commit(move |tx, changes| changes.resolve(tx, &service, kind, &subject, facts))
            .await
        {
            self.log_failed("an issue's resolution", &error);
        }
    }

    /// Whether this replica knows the issue as open (a hint; decisions are taken from the
    /// database inside the transaction).
    pub fn issue_is_open(&self, service: &str, kind: IssueKind, subject: &str) -> bool {
        lock(&self.issues).is_open(service, kind, subject)
    }

    fn shared_database(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    /// `/status`: one page of services and the count of all. With a shared PostgreSQL the
    /// services, containers and open issues come from the database, so every replica answers
    /// alike; on SQLite memory is the database's exact copy (plus the beats still to be
    /// written behind).
    pub async fn status(&self, query: ServicesQuery) -> anyhow::Result<WatcherStatus> {
        let (page, containers, open_issues) = if self.shared_database() {
            self.db
                .read(move |tx| {
                    let rows = store::services(tx)?;
                    let page = query.page(
                        &rows,
                        |row| (row.state, row.reason),
                        |row| row.name.as_str(),
                        |row| row.status(),
                    );
                    Ok((page, store::containers(tx)?, store::open_issue_count(tx)?))
                })
                .await?
        } else {
            (
                self.services_page(query).await?,
                self.containers().list(),
                lock(&self.issues).open_count(),
            )
        };
        Ok(WatcherStatus {
            deployment_id: self.config.deployment_id.clone(),
            app_name: self.config.app_name.clone(),
            services: page.services,
            service_counts: Some(page.counts),
            services_next: page.next.map(|cursor| cursor.to_string()),
            containers,
            docker: self.docker.is_connected(),
            open_issues,
            timestamp: Utc::now(),
            probes: self.probes.statuses(),
        })
    }

    /// `/issues`: open ones first (most severe, then most recent), then resolved, newest first.
    pub async fn list_issues(
        &self,
        state: Option<IssueState>,
        limit: usize,
    ) -> anyhow::Result<Vec<Issue>> {
        if !self.shared_database() {
            return Ok(lock(&self.issues).list(state, limit));
        }
        let (open, resolved) = self
            .db
            .read(move |tx| store::issues_for_listing(tx, state, limit))
            .await?;
        Ok(issues::list(
            open.iter().collect(),
            resolved.iter().collect(),
            state,
            limit,
        ))
    }

    /// `/events`: the most recent, oldest first.
    pub async fn list_events(
        &self,
        limit: usize,
        service: Option<String>,
    ) -> anyhow::Result<Vec<Event>> {
        if !self.shared_database() {
            return Ok(lock(&self.events).recent(limit, service.as_deref()));
        }
        self.db
            .read(move |tx| store::recent_events(tx, limit, service.as_deref()))
            .await
    }

    /// `/containers`: as last seen by whichever replica follows the engine.
    pub async fn list_containers(&self) -> anyhow::Result<Vec<Container>> {
        if !self.shared_database() {
            return Ok(self.containers().list());
        }
        self.db.read(store::containers).await
    }

    /// One page of services, from the table's ordered index: the lock is held for at most a
    /// page's walk (tens of µs), whatever the number of services, so it runs right here.
    async fn services_page(&self, query: ServicesQuery) -> anyhow::Result<ServicesPage> {
        Ok(heartbeats::page(&self.tracker, &query))
    }

    /// With a shared PostgreSQL: take in the services and open issues as the database holds
    /// them now. Beats heard here and not yet written behind are kept.
    pub async fn refresh(&self) -> anyhow::Result<()> {
        // Under the commit turn, so a change this replica commits meanwhile is not undone by
        // an older read.
        let _turn = self.writes.lock().await;
        let (services, (open, _)) = self
            .db
            .read(|tx| {
                Ok((
                    store::services(tx)?,
                    store::issues_for_listing(tx, Some(IssueState::Open), 0)?,
                ))
            })
            .await?;
        {
            let mut tracker = self.tracker();
            for row in &services {
                tracker.apply(row);
            }
        }
        lock(&self.issues).replace_open(open);
        Ok(())
    }

    /// Fill memory from what the database holds (at start).
    fn restore(&self, loaded: store::Loaded) {
        {
            let mut tracker = self.tracker();
            for row in &loaded.services {
                tracker.apply(row);
            }
        }
        {
            let mut issues = lock(&self.issues);
            for issue in loaded.open_issues.into_iter().chain(loaded.resolved_issues) {
                issues.apply(issue);
            }
        }
        {
            let mut events = lock(&self.events);
            for event in loaded.events {
                events.push(event);
            }
        }
        for (name, counts) in &loaded.counts {
            self.metrics
                .container_restarts
                .with_label_values(&[name])
                .inc_by(counts.restarts);
            self.metrics
                .container_oom_kills
                .with_label_values(&[name])
                .inc_by(counts.oom_kills);
        }
        self.containers().restore(loaded.containers, loaded.counts);
    }
}

/// The watcher role.
pub struct Watcher {
    shared: Arc<Shared>,
}

impl Watcher {
    /// From the environment (MONITOR_HEARTBEAT_*, DOCKER_*, PROBE_*, …).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = WatcherConfig::from_env()?;
        Self::with_config(service, config).await
    }

    /// With explicit settings (tests, obs-stack).
    pub async fn with_config(service: &Service, config: WatcherConfig) -> anyhow::Result<Self> {
        if config.docker.mode == config::DockerMode::On {
            docker::connect(&config.docker.host)
                .await
                .with_context(|| {
                    format!(
                        "DOCKER_WATCH=on but no Docker engine answers at DOCKER_HOST={}",
                        config.docker.host
                    )
                })?;
        }
        if config.kubernetes.mode == config::KubernetesMode::Required {
            kubernetes::check_configuration(&config.kubernetes)
                .await
                .context("KUBERNETES_WATCH=on but no usable Kubernetes configuration")?;
        }
        let db = service
            .open_db(store::SCHEMA)
            .await
            .context("opening the watcher's database")?;
        legacy::import(&db, &service.config().state_dir, &config).await?;
        let tracker = Arc::new(Mutex::new(Tracker::new(
            config.heartbeat.max_services,
            config.heartbeat.timeout,
        )));
        let metrics =
            WatcherMetrics::register(service.metrics(), tracker.clone(), config.max_event_series)
                .context("registering the watcher's metrics")?;
        let probes = ProbeTargets::default();
        for (name, url) in &config.probes.targets {
            probes.add(name, url)?;
        }
        let shared = Arc::new(Shared {
            tracker,
            events: Mutex::new(EventLog::new(config.events_max)),
            issues: Mutex::new(IssueBook::new(
                config.resolved_issues_max,
                metrics.issues_open.clone(),
            )),
            containers: Mutex::new(ContainerTable::default()),
            probes,
            docker: DockerLink::default(),
            kubernetes: kubernetes::KubeLink::default(),
            metrics,
            downstream: Downstream::new(&db, service).context("opening the watcher's outboxes")?,
            db,
            writes: tokio::sync::Mutex::new(()),
            checker_wake: Notify::new(),
            next_due: AtomicI64::new(i64::MAX),
            config,
        });
        checker::grant_full_timeouts(&shared)
            .await
            .context("the watcher's database")?;
        let events_max = shared.config.events_max;
        let loaded = shared
            .db
            .read(move |tx| store::load(tx, events_max))
            .await
            .context("loading the watcher's state from its database")?;
        shared.restore(loaded);
        Ok(Watcher { shared })
    }

    /// A handle to add probe targets after construction (obs-stack registers the other
    /// roles' `/healthz` once their ports are known).
    pub fn probe_targets(&self) -> ProbeTargets {
        self.shared.probes.clone()
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Role for Watcher {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        api::routes(cfg, self.shared.clone());
    }

    fn openapi(&self) -> obs_core::utoipa::openapi::OpenApi {
        api::openapi()
    }

    fn start(&self, context: &RoleContext) {
        let shared = &self.shared;
        shared.downstream.start(context);
        context.spawn(checker::write_behind(
            shared.clone(),
            context.shutdown.clone(),
        ));
        context.spawn(checker::run(shared.clone(), context.shutdown.clone()));
        context.spawn(docker::follow(shared.clone(), context.shutdown.clone()));
        context.spawn(kubernetes::follow(shared.clone(), context.shutdown.clone()));
        context.spawn(probes::run(shared.clone(), context.shutdown.clone()));
        context.spawn(host::run(shared.clone(), context.shutdown.clone()));
    }

    async fn flush(&self) -> anyhow::Result<()> {
        checker::flush_beats(&self.shared)
            .await
            .context("writing the last heartbeats behind")
    }
}
