//! Plans survive a restart: one file per plan, `STATE_DIR/plans/<plan id>.json`, written
//! atomically (`obs_core::durable::write_atomically`: temp file, fsync, rename), removed
//! when the plan is pruned.
//!
//! Writes take turns, and each writes the plan as it is in memory at that moment, not the
//! copy of the change that asked for it: whichever order two changes finish in, the last
//! write holds the latest revision. A file that cannot be read (edited by hand) is moved
//! aside and the rest load.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use obs_core::durable::write_atomically;
use ulid::Ulid;

use crate::plans::Tracked;

pub struct Store {
    dir: PathBuf,
    /// One writer at a time (see the module docs).
    turn: tokio::sync::Mutex<()>,
}

impl Store {
    /// Open `dir`, returning the plans it holds.
    pub fn open(dir: &Path) -> anyhow::Result<(Store, Vec<Tracked>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut plans = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            match serde_json::from_slice::<Tracked>(&bytes) {
                Ok(tracked) => plans.push(tracked),
                Err(error) => {
                    let aside = path.with_extension("json.unreadable");
                    std::fs::rename(&path, &aside)
                        .with_context(|| format!("moving {} aside", path.display()))?;
                    tracing::error!(%error, moved_to = %aside.display(), "a plan file could not be read; starting without it");
                }
            }
        }
        Ok((
            Store {
                dir: dir.to_path_buf(),
                turn: tokio::sync::Mutex::new(()),
            },
            plans,
        ))
    }

    fn path(&self, id: Ulid) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Save the plans `ids` as `current` finds them now (None: gone, so removed).
    pub async fn save(
        &self,
        ids: Vec<Ulid>,
        current: impl Fn(Ulid) -> Option<Tracked>,
    ) -> anyhow::Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let _turn = self.turn.lock().await;
        let mut writes = Vec::with_capacity(ids.len());
        for id in ids {
            let contents = current(id)
                .map(|tracked| serde_json::to_vec(&tracked).context("serializing a plan"))
                .transpose()?;
            writes.push((self.path(id), contents));
        }
        let done = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            for (path, contents) in writes {
                match contents {
                    Some(bytes) => write_atomically(&path, &bytes)?,
                    None => match std::fs::remove_file(&path) {
                        Ok(()) => {}
                        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                        Err(error) => {
                            return Err(error)
                                .with_context(|| format!("removing {}", path.display()))
                        }
                    },
                }
            }
            Ok(())
        });
        done.await.context("the plan writer panicked")?
    }
}
