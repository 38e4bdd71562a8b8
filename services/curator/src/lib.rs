//! The curator role: what matters? Issues from watchers and alerts from Alertmanager,
//! deduplicated into incidents with a lifecycle, silences, flapping and goals (DESIGN §4).
//!
//! - [`incidents`]: the dedup and lifecycle core (pure; one HashMap lookup per signal).
//! - [`issues`], [`alertmanager`], [`goals`]: what each source's input means, as signals.
//! - [`silences`]: Alertmanager-style matchers.
//! - [`store`]: the incidents' journal and the settings files under STATE_DIR.
//! - [`forward`]: the one way out, to the planner and the archivist, through outboxes.
//! - [`api`]: the HTTP endpoints; [`housekeeping`]: the periodic work.
//!
//! Every change follows one path ([`Shared::commit`]): applied to the book in memory, then
//! handed to the outboxes, then written to the journal, then answered. A crash anywhere in
//! between loses nothing a sender will not send again: the sender's delivery is answered
//! last, and a redelivered signal opens the same incident (its id is derived from the
//! signal), so at worst downstream hears of a change twice.

pub mod alertmanager;
pub mod api;
pub mod config;
pub mod forward;
pub mod goals;
pub mod housekeeping;
pub mod incidents;
pub mod issues;
pub mod metrics;
pub mod silences;
pub mod store;
pub mod validate;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use obs_core::actix_web::web;
use obs_core::{Role, RoleContext, Service};
use tokio::sync::Notify;

pub use config::CuratorConfig;

use crate::forward::Forward;
use crate::goals::GoalsState;
use crate::incidents::{Applied, Book, Rules};
use crate::metrics::CuratorMetrics;
use crate::store::{Entry, Journal, Settings};

pub const NAME: &str = "curator";
pub const DEFAULT_PORT: u16 = 8002;

/// Everything the endpoints and background tasks share.
pub struct Shared {
    pub config: CuratorConfig,
    book: Mutex<Book>,
    journal: Journal,
    settings: Settings,
    /// One writer of silences.json and goals.json at a time, holding it from reading the
    /// state to writing the file, so an older list never overwrites a newer one.
    settings_write: tokio::sync::Mutex<()>,
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

impl Shared {
    pub fn book(&self) -> MutexGuard<'_, Book> {
        lock(&self.book)
    }

    pub fn goals(&self) -> MutexGuard<'_, GoalsState> {
        lock(&self.goals)
    }

    /// Finish an operation while still holding the book: copy what must be saved and bring
    /// the open-incidents gauge up to date.
    pub fn seal(&self, book: &mut Book, applied: &mut Applied) {
        book.seal(applied);
        self.metrics.set_open(book.active_counts());
    }

    /// Forward, then persist, what an operation changed (see the crate docs for the order).
    pub async fn commit(&self, applied: Applied) -> anyhow::Result<()> {
        self.metrics.record(&applied);
        if applied.is_empty() {
            return Ok(());
        }
        self.forward
            .send(&applied.notable)
            .await
            .context("handing incident changes to the outboxes")?;
        let mut entries = applied
            .to_save
            .iter()
            .map(Entry::incident)
            .collect::<anyhow::Result<Vec<_>>>()?;
        for (id, revision) in &applied.pruned {
            entries.push(Entry::pruned(*id, *revision)?);
        }
        self.journal.append(entries).await
    }

    /// Save the incidents changed by repeats since the last save.
    pub async fn save_repeats(&self) -> anyhow::Result<()> {
        let dirty = self.book().take_dirty();
        if dirty.is_empty() {
            return Ok(());
        }
        let entries = dirty
            .iter()
            .map(Entry::incident)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Err(error) = self.journal.append(entries).await {
            // Dirty again, so the next interval retries.
            self.book()
                .mark_dirty(dirty.iter().map(|tracked| tracked.incident.id));
            return Err(error);
        }
        Ok(())
    }
}

/// The curator role.
pub struct Curator {
    shared: Arc<Shared>,
}

impl Curator {
    /// From the environment (FLAP_*, GOALS_CHECK_INTERVAL, …; the peers' URLs are the
    /// kit's).
    pub async fn new(service: &Service) -> anyhow::Result<Self> {
        let config = CuratorConfig::from_env()?;
        Self::with_config(service, config).await
    }

    /// With explicit settings (tests, obs-stack).
    pub async fn with_config(service: &Service, config: CuratorConfig) -> anyhow::Result<Self> {
        let state_dir = &service.config().state_dir;
        let metrics = CuratorMetrics::register(service.metrics())
            .context("registering the curator's metrics")?;
        let (journal, saved) = Journal::open(state_dir).context("opening the incidents journal")?;
        let settings = Settings::new(state_dir);
        let mut book = Book::new(rules(&config)?);
        book.restore(saved, settings.load_silences()?);
        metrics.set_open(book.active_counts());
        metrics.silences.set(book.silences.len() as i64);
        let goals = GoalsState {
            services: settings
                .load_goals()?
                .map(|goals| goals.services)
                .unwrap_or_default(),
            ..GoalsState::default()
        };
        if !book.is_empty() {
            tracing::info!(incidents = book.len(), "incidents restored");
        }
        let shared = Arc::new(Shared {
            forward: Forward::open(service)?,
            watcher_url: service.config().peers.watcher.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .context("building the HTTP client")?,
            config,
            book: Mutex::new(book),
            journal,
            settings,
            settings_write: tokio::sync::Mutex::new(()),
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
        context.spawn(housekeeping::run(shared.clone(), context.shutdown.clone()));
        context.spawn(goals::run(shared.clone(), context.shutdown.clone()));
    }

    async fn flush(&self) -> anyhow::Result<()> {
        self.shared
            .save_repeats()
            .await
            .context("saving incident repeats")
    }
}
