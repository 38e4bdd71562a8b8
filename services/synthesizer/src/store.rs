//! The plans, the notified revisions and the notifications not yet handed to the webhooks,
//! saved as one JSON file (STATE_DIR/synthesizer.json) written atomically after every change, so
//! a restart (or a crash) keeps everything a sender was told was taken.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use obs_core::durable::write_atomically;

use crate::plans::Saved;

// Its own name: roles run side by side may share one STATE_DIR (the watcher keeps a state.json).
const FILE: &str = "synthesizer.json";

pub struct Store {
    path: PathBuf,
}

impl Store {
    /// Open the state under `state_dir`, with what was saved there (nothing the first time).
    pub fn open(state_dir: &Path) -> anyhow::Result<(Store, Saved)> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating {}", state_dir.display()))?;
        let path = state_dir.join(FILE);
        let saved = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not the synthesizer's state (move it away to start empty)",
                    path.display()
                )
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Saved::default(),
            Err(error) => return Err(error).context(format!("reading {}", path.display())),
        };
        Ok((Store { path }, saved))
    }

    /// Write the serialized state durably (off the async threads: it fsyncs).
    pub async fn save(&self, bytes: Vec<u8>) -> anyhow::Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_atomically(&path, &bytes))
            .await
            .context("the state writer stopped")?
            .with_context(|| format!("saving {}", self.path.display()))
    }
}
