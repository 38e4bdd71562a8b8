//! The synthesizer role: what do we tell people? (DESIGN §4)
//!
//! - [`plans`]: the plans the planner sends (`POST /v1/plans`), newest revision wins, and
//!   which incident changes are owed a notification; [`store`] keeps them across restarts.
//! - [`sources`]: what the watcher and the archivist know, asked fresh for each report.
//! - [`report`]: facts and plans composed into one [`report::Report`]; [`uptime`] draws the
//!   24 h bars from the archive; [`render`] writes it as the HTML status page or Markdown.
//! - [`notify`]: grouped webhook messages through outboxes; [`tasks`]: the grouping and the
//!   periodic digest (archived as a `report` record through the archivist's outbox).
//! - [`api`]: the HTTP endpoints.
//!
//! A batch of plans is applied in memory, saved, then answered: once the planner's outbox
//! hears 200 the plans and the notifications they owe are on disk. Notifications leave the
//! state file only once every webhook's outbox holds them.

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

use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::Context as _;
use chrono::Utc;
use obs_core::actix_web::web;
use obs_core::{ApiError, Outbox, Role, RoleContext, Service};
use obs_model::Plan;
use tokio::sync::Notify;

pub use config::SynthesizerConfig;

use crate::metrics::SynthesizerMetrics;
use crate::notify::Notifier;
use crate::plans::{Accepted, Book, NotifyRules};
use crate::report::Report;
use crate::sources::Sources;
use crate::store::Store;

pub const NAME: &str = "synthesizer";
pub const DEFAULT_PORT: u16 = 8004;

/// Everything the endpoints and background tasks share.
pub struct Shared {
    pub config: SynthesizerConfig,
    book: Mutex<Book>,
    store: Store,
    /// One save at a time, held from taking the snapshot to writing it, so an older
    /// snapshot never overwrites a newer one.
    saving: tokio::sync::Mutex<()>,
    notifier: Notifier,
    /// Wakes the grouping task when notifications are owed.
    notices_queued: Notify,
    sources: Sources,
    /// ARCHIVIST_URL's records endpoint, for the digest.
    archivist: Option<Outbox>,
    pub metrics: SynthesizerMetrics,
}

/// A lock that a panicking holder cannot make unusable: every update of the book leaves it
/// consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    fn rules(&self) -> NotifyRules {
        NotifyRules {
            enabled: self.notifier.is_enabled(),
            min_severity: self.config.notify_min_severity,
        }
    }

    /// Take a validated batch: apply, save, then return (the caller answers).
    pub async fn accept(&self, plans: Vec<Plan>) -> Result<Accepted, ApiError> {
        self.metrics.plans_received.inc_by(plans.len() as u64);
        let _saving = self.saving.lock().await;
        let (accepted, snapshot) = {
            let mut book = self.book();
            let accepted = book
                .accept(plans, self.rules(), self.config.max_open_plans, Utc::now())
                .map_err(|full| {
                    ApiError::Unavailable(format!(
                        "the batch would hold {} open plans, more than MAX_OPEN_PLANS ({}); \
                         nothing was applied, retry once some have closed",
                        full.open, full.max
                    ))
                })?;
            let snapshot = if accepted.stored > 0 {
                book.prune(self.config.resolved_plans_max);
                self.metrics.set_open(book.active_counts());
                Some(serde_json::to_vec(&book.to_saved()).context("serializing the state")?)
            } else {
                None
            };
            (accepted, snapshot)
        };
        self.metrics.plans_stale.inc_by(accepted.stale as u64);
        if accepted.notify > 0 {
            // Even if the save below fails: the changes are owed either way.
            self.notices_queued.notify_one();
        }
        if let Some(snapshot) = snapshot {
            if let Err(error) = self.store.save(snapshot).await {
                self.metrics.state_save_failures.inc();
                return Err(error.into());
            }
        }
        Ok(accepted)
    }

    /// Save the book as it is now.
    pub async fn save(&self) -> anyhow::Result<()> {
        let _saving = self.saving.lock().await;
        let snapshot =
            serde_json::to_vec(&self.book().to_saved()).context("serializing the state")?;
        let saved = self.store.save(snapshot).await;
        if saved.is_err() {
            self.metrics.state_save_failures.inc();
        }
        saved
    }

    /// Ask the peers and compose the report.
    pub async fn report(&self) -> Report {
        let timer = self.metrics.report_seconds.start_timer();
        let now = Utc::now();
        let since = now - uptime::window();
        let facts = self.sources.gather(self.config.status_events, since).await;
        for source in facts.sources() {
            if !source.available {
                self.metrics
                    .peer_failures
                    .with_label_values(&[&source.name])
                    .inc();
            }
        }
        let (active, resolved) = {
            let book = self.book();
            (
                book.active(),
                book.resolved_since(since, report::RESOLVED_SHOWN),
            )
        };
        let report = report::compose(&facts, &active, &resolved, now);
        timer.observe_duration();
        report
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
        let (store, saved) = Store::open(&core.state_dir).context("opening the state")?;
        let book = Book::restore(saved);
        if !book.is_empty() {
            tracing::info!(
                plans = book.len(),
                pending = book.pending().len(),
                "plans restored"
            );
        }
        metrics.set_open(book.active_counts());
        let archivist = core
            .peers
            .archivist
            .as_ref()
            .map(|url| Outbox::open(service, "archivist", &format!("{url}/v1/records")))
            .transpose()?;
        let sources = Sources::new(
            core.peers.watcher.clone(),
            core.peers.archivist.clone(),
            config.peer_timeout,
        )?;
        let shared = Arc::new(Shared {
            notifier: Notifier::open(service, &config.webhooks)?,
            notices_queued: Notify::new(),
            book: Mutex::new(book),
            store,
            saving: tokio::sync::Mutex::new(()),
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

    async fn flush(&self) -> anyhow::Result<()> {
        self.shared.save().await
    }
}
