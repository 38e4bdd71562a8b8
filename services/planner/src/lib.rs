//! The planner role: what should we do? A plan per incident — priority and ordered steps
//! with the reason for each, filled in from the incident's facts — made by rules (DESIGN §4).
//!
//! - [`rules`]: the built-in rules and RULES_FILE, checked at start; [`render`]: what the
//!   placeholders stand for.
//! - [`plans`]: how an incident copy makes or remakes its plan (pure).
//! - [`store`]: the plans in SQL (`obs_core::db`: SQLite under STATE_DIR, or PostgreSQL with
//!   DATABASE_URL), the only place they live; [`legacy`]: the plan files of earlier
//!   versions, imported once.
//! - [`forward`]: the one way out, to the synthesizer and the archivist, through outboxes.
//! - [`remediate`]: AUTO_REMEDIATE's background job (container restarts via the watcher),
//!   a singleton under a lease.
//! - [`api`]: the HTTP endpoints.
//!
//! The commit path: a batch of incident copies is applied in ONE transaction, each copy
//! against its plan's row as the transaction reads it (highest incident revision wins; a
//! redelivered copy is no newer, so it changes nothing), together with the records
//! forwarded for the changes. Only after the commit are the metrics moved, the outboxes and
//! the remediation job woken, and the sender answered. A failed commit stores nothing and
//! answers 503, and the sender's retry is applied as if it were the first copy. Reads go to
//! the database too, so every replica on one PostgreSQL database answers alike.

pub mod api;
pub mod config;
pub mod forward;
pub mod legacy;
pub mod metrics;
pub mod plans;
pub mod remediate;
pub mod render;
pub mod rules;
pub mod store;
pub mod target;
pub mod validate;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::actix_web::web;
use obs_core::db::Dialect;
use obs_core::{Role, RoleContext, Service};
use obs_model::Incident;
use tokio::sync::Notify;

pub use config::PlannerConfig;

use crate::forward::Forward;
use crate::metrics::PlannerMetrics;
use crate::plans::Tally;
use crate::store::Store;

pub const NAME: &str = "planner";
pub const DEFAULT_PORT: u16 = 8003;

/// How often, on PostgreSQL, the `planner_plans` gauge is recounted from the database, where
/// other replicas change plans too (on SQLite this process makes every change, and moves the
/// gauge itself).
const RECOUNT_EVERY: Duration = Duration::from_secs(10);

/// Everything the endpoints and the remediation job share.
pub struct Shared {
    pub config: PlannerConfig,
    store: Store,
    pub metrics: PlannerMetrics,
    /// Woken after a commit left a safe step waiting.
    remediation_wake: Notify,
    /// WATCHER_URL (`CoreConfig::peers`): who restarts containers.
    watcher_url: Option<String>,
    api_token: Option<String>,
    http: reqwest::Client,
}

impl Shared {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Apply incident copies (one transaction with what they forward); memory — metrics,
    /// wake-ups — moves only once it committed.
    pub async fn apply_incidents(
        &self,
        incidents: Vec<Incident>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Tally> {
        let committed = self.store.apply_incidents(incidents, now).await?;
        self.metrics.record(&committed.tally);
        self.metrics.add_plans(&committed.counts);
        if !committed.changed.is_empty() {
            self.store.forward().wake();
        }
        if committed.remediable && self.config.remediation.enabled {
            self.remediation_wake.notify_one();
        }
        Ok(committed.tally)
    }
}

/// The planner role.
pub struct Planner {
    shared: Arc<Shared>,
}

impl Planner {
    /// From the environment (RULES_FILE, AUTO_REMEDIATE, …; the peers' URLs are the kit's).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = PlannerConfig::from_env()?;
        Self::with_config(service, config).await
    }

    /// With explicit settings (tests, obs-stack).
    pub async fn with_config(service: &Service, config: PlannerConfig) -> anyhow::Result<Self> {
        let rules = config.load_rules()?;
        let metrics = PlannerMetrics::register(service.metrics())
            .context("registering the planner's metrics")?;
        let core = service.config();
        let db = service.open_db(store::SCHEMA).await?;
        legacy::import(&db, &core.state_dir).await?;
        let forward = Forward::open(&db, service)?;
        let store = Store::new(db, rules, forward, config.closed_plans_max);
        let counts = store.counts().await.context("counting the plans")?;
        let plans: i64 = counts.values().sum();
        if plans > 0 {
            tracing::info!(plans, "plans in the database");
        }
        metrics.set_plans(&counts);
        let shared = Arc::new(Shared {
            store,
            watcher_url: core.peers.watcher.clone(),
            api_token: core.api_token.clone(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client")?,
            config,
            metrics,
            remediation_wake: Notify::new(),
        });
        Ok(Planner { shared })
    }

    pub fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }
}

impl Role for Planner {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        api::routes(cfg, self.shared.clone());
    }

    fn openapi(&self) -> obs_core::utoipa::openapi::OpenApi {
        api::openapi()
    }

    fn start(&self, context: &RoleContext) {
        let shared = &self.shared;
        shared.store.forward().start(context);
        if shared.config.remediation.enabled {
            context.spawn(remediate::run(shared.clone(), context.shutdown.clone()));
        }
        if shared.store.db().dialect() == Dialect::Postgres {
            context.spawn(recount(shared.clone(), context.shutdown.clone()));
        }
    }
}

/// Keep the `planner_plans` gauge true to the shared database.
async fn recount(shared: Arc<Shared>, shutdown: obs_core::CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(RECOUNT_EVERY) => {}
        }
        match shared.store.counts().await {
            Ok(counts) => shared.metrics.set_plans(&counts),
            Err(error) => {
                tracing::warn!(error = format!("{error:#}"), "could not count the plans")
            }
        }
    }
}
