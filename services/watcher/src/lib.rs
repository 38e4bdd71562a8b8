//! The watcher role: what is happening? Heartbeats, events, container lifecycle and HTTP
//! probes, turned into issues (DESIGN §4; the seeds' monitoring service and BuildWatch).
//!
//! - [`heartbeats`] + [`checker`]: services and their deadlines; down and recovery.
//! - [`docker`]: the engine's event stream → OOM kills, restart loops, unhealthy, crashes.
//! - [`probes`]: HTTP probes of PROBE_TARGETS (and, in obs-stack, of the other roles).
//! - [`host`]: load, memory and disk gauges.
//! - [`events`], [`issues`]: what the read API serves; [`downstream`]: the one way out.
//! - [`state`]: state.json, written atomically; [`api`]: the HTTP endpoints.

pub mod api;
pub mod checker;
pub mod config;
pub mod docker;
pub mod downstream;
pub mod events;
pub mod heartbeats;
pub mod host;
pub mod issues;
pub mod metrics;
pub mod probes;
pub mod state;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use chrono::Utc;
use obs_core::actix_web::web;
use obs_core::{Role, RoleContext, Service};
use obs_model::{Event, EventSource, IssueKind, ServiceStatus, WatcherStatus};
use serde_json::Value;
use tokio::sync::Notify;
use ulid::Ulid;

pub use config::WatcherConfig;
pub use probes::ProbeTargets;

use crate::docker::{ContainerTable, DockerLink};
use crate::downstream::{Downstream, Published};
use crate::events::EventLog;
use crate::heartbeats::Tracker;
use crate::issues::{Change, Detection, IssueBook};
use crate::metrics::WatcherMetrics;
use crate::state::{Snapshot, Store};

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
    pub metrics: WatcherMetrics,
    pub store: Store,
    downstream: Downstream,
    /// Wakes the checker when a deadline earlier than all others appears.
    pub checker_wake: Notify,
}

/// A lock that a panicking holder cannot make unusable: every update in these tables is a
/// single insert or field write, so what a panic leaves behind is still consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

    /// An event the watcher saw itself: sent downstream, kept for `/events` and counted,
    /// whatever happens downstream (a failure to queue it is logged by `publish`).
    pub async fn record_event(&self, event: Event) {
        let _ = self
            .downstream
            .publish(vec![Published::Event(event.clone())])
            .await;
        self.keep_event(event);
    }

    /// An event a client sent: kept only once it is queued for delivery, so a client told it
    /// failed (the error says why) can send it again without it counting twice.
    pub async fn accept_event(&self, event: Event) -> anyhow::Result<()> {
        self.downstream
            .publish(vec![Published::Event(event.clone())])
            .await?;
        self.keep_event(event);
        Ok(())
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
        self.store.touch();
    }

    /// Open an issue or update the open one with the same fingerprint.
    pub async fn raise(&self, detection: Detection) {
        let (change, issue) = lock(&self.issues).raise(detection, Utc::now());
        self.store.changed();
        // Kept here either way; a failure to queue it downstream is logged by `publish`.
        let _ = self
            .downstream
            .publish(vec![Published::Issue(change, issue)])
            .await;
    }

    /// Add facts to an open issue without counting a new occurrence.
    pub async fn amend(
        &self,
        service: &str,
        kind: IssueKind,
        subject: &str,
        facts: BTreeMap<String, Value>,
    ) {
        let amended = lock(&self.issues).amend(service, kind, subject, facts, Utc::now());
        if let Some(issue) = amended {
            self.store.changed();
            let _ = self
                .downstream
                .publish(vec![Published::Issue(Change::Updated, issue)])
                .await;
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
        let resolved = lock(&self.issues).resolve(service, kind, subject, facts, Utc::now());
        if let Some(issue) = resolved {
            self.store.changed();
            let _ = self
                .downstream
                .publish(vec![Published::Issue(Change::Resolved, issue)])
                .await;
        }
    }

    pub fn issue_is_open(&self, service: &str, kind: IssueKind, subject: &str) -> bool {
        lock(&self.issues).is_open(service, kind, subject)
    }

    pub fn open_issues_of(&self, subject: &str) -> Vec<(String, IssueKind)> {
        lock(&self.issues).open_for_subject(subject)
    }

    pub fn issues(&self) -> MutexGuard<'_, IssueBook> {
        lock(&self.issues)
    }

    pub fn events(&self) -> MutexGuard<'_, EventLog> {
        lock(&self.events)
    }

    pub fn status(&self) -> WatcherStatus {
        WatcherStatus {
            deployment_id: self.config.deployment_id.clone(),
            app_name: self.config.app_name.clone(),
            services: self.sorted_statuses(),
            containers: self.containers().list(),
            docker: self.docker.is_connected(),
            open_issues: lock(&self.issues).open_count(),
            timestamp: Utc::now(),
            probes: self.probes.statuses(),
        }
    }

    /// Every service by name; the table is locked only for the copy.
    fn sorted_statuses(&self) -> Vec<ServiceStatus> {
        let mut statuses = self.tracker().statuses();
        heartbeats::sort_statuses(&mut statuses);
        statuses
    }

    /// Everything state.json keeps, copied under the locks (one at a time).
    pub fn snapshot(&self) -> Snapshot {
        let services = self.sorted_statuses();
        let issues = lock(&self.issues).snapshot();
        let events = lock(&self.events).all();
        let (containers, container_counts) = {
            let table = self.containers();
            (table.list(), table.counts().clone())
        };
        Snapshot {
            version: state::VERSION,
            saved_at: Some(Utc::now()),
            services,
            issues,
            events,
            containers,
            container_counts,
        }
    }

    fn restore(&self, snapshot: Snapshot) {
        let now = tokio::time::Instant::now();
        {
            let mut tracker = self.tracker();
            for service in &snapshot.services {
                tracker.restore(service, now);
            }
        }
        {
            let mut issues = lock(&self.issues);
            for issue in snapshot.issues {
                issues.restore(issue);
            }
        }
        {
            let mut events = lock(&self.events);
            for event in snapshot.events {
                events.push(event);
            }
        }
        for (name, counts) in &snapshot.container_counts {
            self.metrics
                .container_restarts
                .with_label_values(&[name])
                .inc_by(counts.restarts);
            self.metrics
                .container_oom_kills
                .with_label_values(&[name])
                .inc_by(counts.oom_kills);
        }
        self.containers()
            .restore(snapshot.containers, snapshot.container_counts);
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
        let tracker = Arc::new(Mutex::new(Tracker::new(
            config.heartbeat.enabled,
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
            metrics,
            store: Store::new(&service.config().state_dir),
            downstream: Downstream::new(service).context("opening the watcher's outboxes")?,
            checker_wake: Notify::new(),
            config,
        });
        if let Some(snapshot) = shared.store.load()? {
            shared.restore(snapshot);
        }
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
        context.spawn(checker::run(shared.clone(), context.shutdown.clone()));
        context.spawn(state::run_saver(shared.clone(), context.shutdown.clone()));
        context.spawn(docker::follow(shared.clone(), context.shutdown.clone()));
        context.spawn(probes::run(shared.clone(), context.shutdown.clone()));
        context.spawn(host::run(shared.clone(), context.shutdown.clone()));
    }

    async fn flush(&self) -> anyhow::Result<()> {
        state::save(&self.shared).await.context("saving state.json")
    }
}
