//! What survives a restart: STATE_DIR/state.json (the seed's file name) with the services and
//! when they were last seen, the issues (open and recently resolved), the recent events and
//! the containers with their restart and OOM counts.
//!
//! Writes go through `obs_core::durable::write_atomically` (temp file, fsync, rename, fsync
//! the folder), so a crash at any instant leaves the old file or the new one, never a torn
//! one. One save runs at a time. Issue and service changes are saved at once (coalesced);
//! mere heartbeat times every STATE_SAVE_INTERVAL, so a busy fleet does not turn into a
//! stream of fsyncs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::CancellationToken;
use obs_model::{Container, Event, Issue, ServiceStatus};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::Shared;

pub const FILE_NAME: &str = "state.json";
/// The layout of state.json; bumped if a field ever changes meaning.
pub const VERSION: u32 = 1;
/// Bursts of changes (a restart loop, many services timing out together) share one write.
const COALESCE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub saved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default)]
    pub events: Vec<Event>,
    /// The containers last seen, for `/containers` before the engine answers again.
    #[serde(default)]
    pub containers: Vec<Container>,
    /// Per container name: restarts and OOM kills counted so far.
    #[serde(default)]
    pub container_counts: BTreeMap<String, ContainerCounts>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerCounts {
    pub restarts: u64,
    pub oom_kills: u64,
}

pub struct Store {
    path: PathBuf,
    /// Something changed since the last save.
    dirty: AtomicBool,
    /// Something changed that should be saved now rather than at the next interval.
    urgent: Notify,
    /// One writer at a time: the saver task and the final flush may overlap.
    writing: tokio::sync::Mutex<()>,
}

impl Store {
    pub fn new(state_dir: &Path) -> Self {
        Store {
            path: state_dir.join(FILE_NAME),
            dirty: AtomicBool::new(false),
            urgent: Notify::new(),
            writing: tokio::sync::Mutex::new(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A heartbeat time moved: saved within STATE_SAVE_INTERVAL.
    pub fn touch(&self) {
        // Checked first so the hot path does not write a shared cache line every beat.
        if !self.dirty.load(Ordering::Relaxed) {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// An issue, a service's state or a count changed: saved within moments.
    pub fn changed(&self) {
        self.dirty.store(true, Ordering::Relaxed);
        self.urgent.notify_one();
    }

    /// Read state.json. A missing file is a first start. An unreadable one (edited by hand,
    /// a disk fault: the atomic writes never leave one) is moved aside so it can be
    /// inspected, and the watcher starts empty rather than not at all.
    pub fn load(&self) -> anyhow::Result<Option<Snapshot>> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => {
                return Err(error).with_context(|| format!("reading {}", self.path.display()))
            }
        };
        match serde_json::from_slice::<Snapshot>(&bytes) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(error) => {
                let aside = self.path.with_extension(format!(
                    "json.unreadable-{}",
                    Utc::now().format("%Y%m%dT%H%M%SZ")
                ));
                std::fs::rename(&self.path, &aside)
                    .with_context(|| format!("moving {} aside", self.path.display()))?;
                tracing::error!(
                    error = %error,
                    moved_to = %aside.display(),
                    "state.json could not be read; starting with empty state"
                );
                Ok(None)
            }
        }
    }

    /// Write what `snapshot` copies, now. The copy is taken once this writer's turn has
    /// come, so a save that started earlier can never land after it with older state; and
    /// on a blocking thread, since at 100,000 services copying and serializing take tens of
    /// milliseconds that the request threads should not wait for.
    async fn save(
        &self,
        snapshot: impl FnOnce() -> Snapshot + Send + 'static,
    ) -> anyhow::Result<()> {
        let _writing = self.writing.lock().await;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let bytes = serde_json::to_vec(&snapshot()).context("serializing the state")?;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            obs_core::durable::write_atomically(&path, &bytes)
        })
        .await
        .context("the state writer panicked")?
    }

    fn take_dirty(&self) -> bool {
        self.dirty.swap(false, Ordering::Relaxed)
    }
}

/// Save whatever changed: at once (coalesced) for urgent changes, every `interval` for the
/// rest, until shutdown. The final save is `Watcher::flush`'s.
pub async fn run_saver(shared: Arc<Shared>, shutdown: CancellationToken) {
    let interval = shared.config.state_save_interval;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.store.urgent.notified() => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(COALESCE) => {}
                }
            }
            _ = tokio::time::sleep(interval) => {}
        }
        if shared.store.take_dirty() {
            if let Err(error) = save(&shared).await {
                // Dirty again, so the next change or interval retries.
                shared.store.dirty.store(true, Ordering::Relaxed);
                shared.metrics.state_save_failures.inc();
                tracing::error!(error = format!("{error:#}"), "saving state.json failed");
            }
        }
    }
}

pub async fn save(shared: &Arc<Shared>) -> anyhow::Result<()> {
    let copied = shared.clone();
    shared.store.save(move || copied.snapshot()).await
}
