//! The planner role: what should we do? A plan per incident — priority and ordered steps
//! with the reason for each, filled in from the incident's facts — made by rules (DESIGN §4).
//!
//! - [`rules`]: the built-in rules and RULES_FILE, checked at start; [`render`]: what the
//!   placeholders stand for.
//! - [`plans`]: the plans in memory, made and remade as incident copies arrive (pure).
//! - [`store`]: one file per plan under STATE_DIR, so plans survive a restart.
//! - [`forward`]: the one way out, to the synthesizer and the archivist, through outboxes.
//! - [`remediate`]: AUTO_REMEDIATE's background task (container restarts via the watcher).
//! - [`api`]: the HTTP endpoints.
//!
//! Every change follows one path ([`Shared::commit`]): applied to the book in memory, then
//! handed to the outboxes, then saved, then answered. A crash in between loses nothing the
//! curator will not send again (its delivery is answered last, and a redelivered copy of an
//! incident the planner already has is ignored by revision).

pub mod api;
pub mod config;
pub mod forward;
pub mod metrics;
pub mod plans;
pub mod remediate;
pub mod render;
pub mod rules;
pub mod store;
pub mod validate;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use obs_core::actix_web::web;
use obs_core::{Role, RoleContext, Service};
use obs_model::{Plan, PlanState};

pub use config::PlannerConfig;

use crate::forward::Forward;
use crate::metrics::PlannerMetrics;
use crate::plans::{next_safe_step, Applied, Book};
use crate::remediate::{Cooldowns, Queue};
use crate::store::Store;

pub const NAME: &str = "planner";
pub const DEFAULT_PORT: u16 = 8003;

/// Everything the endpoints and the remediation task share.
pub struct Shared {
    pub config: PlannerConfig,
    book: Mutex<Book>,
    store: Store,
    forward: Forward,
    pub metrics: PlannerMetrics,
    remediation: Queue,
    cooldowns: Cooldowns,
    /// WATCHER_URL (`CoreConfig::peers`): who restarts containers.
    watcher_url: Option<String>,
    api_token: Option<String>,
    http: reqwest::Client,
}

/// A lock that a panicking holder cannot make unusable: every update of the book leaves
/// it consistent at each step a panic could interrupt.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    /// Forward and save what an operation changed, then queue its safe steps.
    pub async fn commit(&self, applied: Applied) -> anyhow::Result<()> {
        if applied.is_empty() {
            return Ok(());
        }
        let mut to_save = applied.to_save;
        to_save.extend(applied.pruned);
        self.forward
            .send(&applied.changed)
            .await
            .context("handing plan changes to the outboxes")?;
        self.save(to_save).await?;
        if self.config.remediation.enabled {
            self.remediation.push(applied.to_remediate);
        }
        Ok(())
    }

    /// Forward and save plans changed outside a request (remediation outcomes).
    pub(crate) async fn publish(&self, plans: Vec<Plan>) -> anyhow::Result<()> {
        self.forward.send(&plans).await?;
        self.save(plans.iter().map(|plan| plan.id).collect()).await
    }

    async fn save(&self, ids: Vec<ulid::Ulid>) -> anyhow::Result<()> {
        self.store
            .save(ids, |id| {
                let book = self.book();
                book.get(&id)
                    .filter(|tracked| tracked.plan.id == id)
                    .cloned()
            })
            .await
            .context("saving plans")
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
        let (store, saved) = Store::open(&service.config().state_dir.join("plans"))
            .context("opening the plans folder")?;
        let mut book = Book::new(rules, config.closed_plans_max);
        book.restore(saved);
        metrics.set_plans(&book.counts());
        if !book.is_empty() {
            tracing::info!(plans = book.len(), "plans restored");
        }
        let cooldowns = Cooldowns::from_plans(book.all().map(|tracked| &tracked.plan));
        let remediation = Queue::default();
        if config.remediation.enabled {
            remediation.push(
                book.all()
                    .filter(|tracked| {
                        tracked.plan.state == PlanState::Open
                            && next_safe_step(&tracked.plan).is_some()
                    })
                    .map(|tracked| tracked.plan.id),
            );
        }
        let core = service.config();
        let shared = Arc::new(Shared {
            forward: Forward::open(service)?,
            watcher_url: core.peers.watcher.clone(),
            api_token: core.api_token.clone(),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client")?,
            config,
            book: Mutex::new(book),
            store,
            metrics,
            remediation,
            cooldowns,
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
        shared.forward.start(context);
        if shared.config.remediation.enabled {
            context.spawn(remediate::run(shared.clone(), context.shutdown.clone()));
        }
    }
}
