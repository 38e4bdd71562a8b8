//! The synthesizer role: what do we tell people? (DESIGN §4)
//!
//! - [`plans`]: what a batch of plans (`POST /v1/plans`) changes, newest revision wins, and
//!   which incident changes are owed a notification; [`store`] keeps plans, owed revisions,
//!   pending changes and notified keys as tables of the role's database.
//! - [`sources`]: what the watcher and the archivist know, asked fresh for each report.
//! - [`report`]: facts and plans composed into one [`report::Report`]; [`uptime`] draws the
//!   24 h bars from the archive; [`render`] writes it as the HTML status page or Markdown.
//! - [`notify`]: grouped webhook messages through outboxes; [`tasks`]: the grouping and the
//!   periodic digest (archived as a `report` record through the archivist's outbox, on one
//!   replica at a time under a lease).
//! - [`api`]: the HTTP endpoints.
//!
//! The commit path: a batch of plans is decided and written in ONE transaction (the plans,
//! the revisions they make owed, the changes queued for their group window), then answered.
//! Nothing is applied anywhere before the commit, so a failed commit answers 503 "nothing
//! was stored" and the planner's retry is applied as if it were the first copy. A group of
//! changes leaves the pending table in the transaction that stages its message in every
//! webhook's outbox and inserts the (webhook, incident, revision) keys whose uniqueness makes
//! each notification go out once, across replicas and restarts. The database (SQLite under
//! STATE_DIR, or PostgreSQL with DATABASE_URL) is the only copy of the state, so replicas
//! answer alike.

pub mod api;
pub mod config;
pub mod metrics;
pub mod notify;
pub mod plans;
pub mod render;
pub mod report;
pub mod sources;
pub mod store;
pub mod tasks;
pub mod uptime;

use std::sync::Arc;

use anyhow::Context as _;
use chrono::Utc;
use obs_core::actix_web::web;
use obs_core::db::Db;
use obs_core::{ApiError, Outbox, Role, RoleContext, Service};
use obs_model::Plan;
use tokio::sync::Notify;

pub use config::SynthesizerConfig;

use crate::metrics::SynthesizerMetrics;
use crate::notify::route::Routing;
use crate::notify::Notifier;
use crate::plans::{Accepted, NotifyRules};
use crate::report::Report;
use crate::sources::Sources;
use crate::store::Store;

pub const NAME: &str = "synthesizer";
pub const DEFAULT_PORT: u16 = 8004;

/// Everything the endpoints and background tasks share.
pub struct Shared {
    pub config: SynthesizerConfig,
    store: Store,
    notifier: Notifier,
    /// Wakes the grouping task when this replica queued notifications.
    notices_queued: Notify,
    sources: Sources,
    /// ARCHIVIST_URL's records endpoint, for the digest.
    archivist: Option<Outbox>,
    pub metrics: SynthesizerMetrics,
}

impl Shared {
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn db(&self) -> &Db {
        self.store.db()
    }

    /// Where notifications go: the routing tree and its channels.
    pub fn routing(&self) -> &notify::route::Routing {
        self.notifier.routing()
    }

    fn rules(&self) -> NotifyRules {
        NotifyRules {
            enabled: self.notifier.is_enabled(),
            min_severity: self.config.notify_min_severity,
        }
    }

    /// Take a validated batch: decide and commit it in one transaction, then return (the
    /// caller answers). A failed commit changed nothing: 503, and a retry is safe.
    pub async fn accept(&self, plans: Vec<Plan>) -> Result<Accepted, ApiError> {
        self.metrics.plans_received.inc_by(plans.len() as u64);
        let committed = self
            .store
            .accept(
                plans,
                self.rules(),
                self.config.max_open_plans,
                self.config.resolved_plans_max,
                Utc::now(),
            )
            .await
            .inspect_err(|_| self.metrics.state_save_failures.inc())?
            .map_err(|full| {
                ApiError::Unavailable(format!(
                    "the batch would hold {} open plans, more than MAX_OPEN_PLANS ({}); \
                     nothing was applied, retry once some have closed",
                    full.open, full.max
                ))
            })?;
        let accepted = committed.accepted;
        self.metrics.plans_stale.inc_by(accepted.stale as u64);
        self.metrics.set_open(committed.open);
        if accepted.notify > 0 {
            self.notices_queued.notify_one();
        }
        Ok(accepted)
    }

    /// Ask the peers and compose the report, listing one page of services.
    pub async fn report(&self, page: &report::Page) -> anyhow::Result<Report> {
        let timer = self.metrics.report_seconds.start_timer();
        let now = Utc::now();
        let since = now - uptime::window();
        // The plans first: the watcher is asked about the services they name.
        let (active, resolved) = self
            .store
            .for_report(since, report::RESOLVED_SHOWN)
            .await
            .context("reading the plans")?;
        let pages = page.watcher_pages(&active);
        let facts = self
            .sources
            .gather(self.config.status_events, since, &pages)
            .await;
        for source in facts.sources() {
            if !source.available {
                self.metrics
                    .peer_failures
                    .with_label_values(&[&source.name])
                    .inc();
            }
        }
        let report = report::compose(&facts, &active, &resolved, page, now);
        timer.observe_duration();
        Ok(report)
    }
}

/// The synthesizer role.
pub struct Synthesizer {
    shared: Arc<Shared>,
}

impl Synthesizer {
    /// From the environment (NOTIFY_*, DIGEST_INTERVAL, …; the peers' URLs are the kit's).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = SynthesizerConfig::from_env()?;
        Self::with_config(service, config).await
    }

    /// With explicit settings (tests, obs-stack).
    pub async fn with_config(service: &Service, config: SynthesizerConfig) -> anyhow::Result<Self> {
        let core = service.config();
        let metrics = SynthesizerMetrics::register(service.metrics())
            .context("registering the synthesizer's metrics")?;
        let db = service.open_db(store::SCHEMA).await?;
        let store = Store::open(db.clone(), &core.state_dir).await?;
        metrics.set_open(
            store
                .open_counts()
                .await
                .context("counting the open incidents")?,
        );
        let archivist = core
            .peers
            .archivist
            .as_ref()
            .map(|url| Outbox::open(&db, service, "archivist", &format!("{url}/v1/records")))
            .transpose()?;
        let sources = Sources::new(
            core.peers.watcher.clone(),
            core.peers.archivist.clone(),
            config.peer_timeout,
            core.api_token.as_deref(),
        )?;
        let routing = match &config.notify_config {
            Some(routing) => routing.clone(),
            None => Routing::webhooks(&config.webhooks, config.notify_group),
        };
        for warning in &routing.warnings {
            tracing::warn!(
                file = %routing.file.as_deref().unwrap_or(std::path::Path::new("")).display(),
                "NOTIFY_CONFIG: {warning}"
            );
        }
        let shared = Arc::new(Shared {
            notifier: Notifier::open(&db, service, routing)?,
            notices_queued: Notify::new(),
            store,
            sources,
            archivist,
            metrics,
            config,
        });
        Ok(Synthesizer { shared })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Role for Synthesizer {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        api::routes(cfg, self.shared.clone());
    }

    fn openapi(&self) -> obs_core::utoipa::openapi::OpenApi {
        api::openapi()
    }

    fn start(&self, context: &RoleContext) {
        let shared = &self.shared;
        shared.notifier.start(context);
        if let Some(archivist) = &shared.archivist {
            archivist.start(context);
        }
        context.spawn(tasks::notify(shared.clone(), context.shutdown.clone()));
        context.spawn(tasks::digest(shared.clone(), context.shutdown.clone()));
    }
}
