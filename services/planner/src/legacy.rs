//! Plans saved by earlier versions, one file per plan (`STATE_DIR/plans/<plan id>.json`),
//! imported into the database once at start: every file in one transaction, then the folder
//! renamed aside to `plans.imported` (kept for a post-mortem; delete it at will).
//!
//! A file that cannot be read or parsed stops the planner (exit code 2, as damaged state
//! does) with one line naming it: starting without a plan the previous version acknowledged
//! would silently forget it. A crash
//! between the commit and the rename only imports the same files again, which changes
//! nothing (a plan already in the database wins).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use obs_core::db::{Db, UnusableState};

use crate::plans::Tracked;
use crate::store::Store;

/// The folder earlier versions kept plans in.
pub fn folder(state_dir: &Path) -> PathBuf {
    state_dir.join("plans")
}

/// Import `STATE_DIR/plans` if it is there; returns how many plans were new.
pub async fn import(db: &Db, state_dir: &Path) -> anyhow::Result<usize> {
    let folder = folder(state_dir);
    if !folder.is_dir() {
        return Ok(0);
    }
    let reading = folder.clone();
    let plans = tokio::task::spawn_blocking(move || read(&reading))
        .await
        .context("reading the plan files stopped")?
        // Damaged state, like a damaged database: exit 2 with this one line.
        .map_err(|error| UnusableState(format!("{error:#}")))?;
    let found = plans.len();
    let imported = db
        .write(move |tx| Store::import_in(tx, &plans))
        .await
        .with_context(|| format!("importing the plan files of {}", folder.display()))?;
    let aside = set_aside(&folder)?;
    tracing::info!(
        found,
        imported,
        moved_to = %aside.display(),
        "plans saved by an earlier version imported into the database"
    );
    Ok(imported)
}

/// Every `*.json` file of `folder` (the old writer's `*.tmp` leftovers and the files it had
/// already moved aside as `*.json.unreadable` are not plans).
fn read(folder: &Path) -> anyhow::Result<Vec<Tracked>> {
    let mut plans = Vec::new();
    let entries =
        std::fs::read_dir(folder).with_context(|| format!("listing {}", folder.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("listing {}", folder.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let bytes = std::fs::read(&path)
            .with_context(|| format!("the plan file {} cannot be read", path.display()))?;
        let tracked = serde_json::from_slice::<Tracked>(&bytes).with_context(|| {
            format!(
                "the plan file {} is not a plan (fix or remove it, then start again)",
                path.display()
            )
        })?;
        plans.push(tracked);
    }
    Ok(plans)
}

/// Rename `folder` to `<folder>.imported` (or `.imported-<millis>` if an earlier import
/// already took that name).
fn set_aside(folder: &Path) -> anyhow::Result<PathBuf> {
    let mut aside = folder.with_extension("imported");
    if aside.exists() {
        aside = folder.with_extension(format!("imported-{}", obs_core::db::now_millis()));
    }
    std::fs::rename(folder, &aside).with_context(|| {
        format!(
            "the plans were imported, but {} could not be renamed to {}",
            folder.display(),
            aside.display()
        )
    })?;
    Ok(aside)
}
