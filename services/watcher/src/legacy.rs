//! The previous version's state: STATE_DIR/state.json (services, issues, recent events,
//! containers and their counts), imported once into the database at first start, in one
//! transaction, then renamed to `state.json.imported`. A file that cannot be parsed stops the
//! watcher with one line naming it: starting empty over it would lose what it holds.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::db::{now_millis, Db};
use obs_model::{Container, Event, Issue, IssueState, ServiceState, ServiceStatus};
use serde::Deserialize;

use crate::heartbeats::duration_millis;
use crate::store::{self, millis, ContainerCounts, ServiceRow};
use crate::WatcherConfig;

pub const FILE_NAME: &str = "state.json";

/// state.json as the previous version wrote it (layout version 1).
#[derive(Debug, Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub saved_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub services: Vec<ServiceStatus>,
    #[serde(default)]
    pub issues: Vec<Issue>,
    #[serde(default)]
    pub events: Vec<Event>,
    #[serde(default)]
    pub containers: Vec<Container>,
    #[serde(default)]
    pub container_counts: BTreeMap<String, ContainerCounts>,
}

/// Import `state_dir/state.json` if there is one; the file is then renamed aside.
pub async fn import(db: &Db, state_dir: &Path, config: &WatcherConfig) -> anyhow::Result<()> {
    let path = state_dir.join(FILE_NAME);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    let snapshot: Snapshot = serde_json::from_slice(&bytes).with_context(|| {
        format!(
            "{} is not a state file the watcher can read; fix it or move it away, then start again",
            path.display()
        )
    })?;
    anyhow::ensure!(
        snapshot.version == 1,
        "{} has layout version {}, which this watcher does not know; move it away, then start \
         again",
        path.display(),
        snapshot.version
    );
    // The file's identity: a second import of the same file (the rename failed after the
    // commit) changes nothing.
    let identity = format!(
        "state.json:{}:{}",
        snapshot
            .saved_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        bytes.len()
    );
    let (services, issues, events) = (
        snapshot.services.len(),
        snapshot.issues.len(),
        snapshot.events.len(),
    );
    let events_max = config.events_max;
    let mut snapshot = snapshot;
    snapshot.issues = one_open_per_fingerprint(snapshot.issues);
    db.write(move |tx| {
        if !tx.first_sighting("watcher-import", &identity)? {
            return Ok(());
        }
        let now = now_millis();
        for status in &snapshot.services {
            let timeout_ms = duration_millis(
                std::time::Duration::try_from_secs_f64(status.timeout_seconds)
                    .unwrap_or(std::time::Duration::from_secs(30))
                    .min(crate::config::MAX_HEARTBEAT_TIMEOUT),
            );
            let last_seen = millis(status.last_seen);
            let down_since = status.down_since.map(millis);
            ServiceRow {
                name: status.service.clone(),
                state: status.status,
                reason: status.reason,
                phase: status.phase.clone(),
                last_seen,
                // Its last beat is not told apart in the old file; for a down service it
                // must not count as after the fall.
                last_beat: match (status.status, down_since) {
                    (ServiceState::Down, Some(since)) => last_seen.min(since),
                    _ => last_seen,
                },
                timeout_ms,
                // Up services get a full timeout from now (see checker::grant_full_timeouts).
                deadline: now.saturating_add(timeout_ms),
                down_since,
            }
            .put(tx)?;
        }
        for issue in &snapshot.issues {
            store::put_issue(tx, issue)?;
        }
        for event in &snapshot.events {
            store::insert_event(tx, event, events_max)?;
        }
        for container in &snapshot.containers {
            store::put_container(tx, container)?;
        }
        for (name, counts) in &snapshot.container_counts {
            store::put_counts(tx, name, *counts)?;
        }
        Ok(())
    })
    .await
    .with_context(|| format!("importing {}", path.display()))?;
    let aside = path.with_extension("json.imported");
    std::fs::rename(&path, &aside)
        .with_context(|| format!("renaming {} to {}", path.display(), aside.display()))?;
    tracing::info!(
        from = %path.display(),
        moved_to = %aside.display(),
        services,
        issues,
        events,
        "imported the previous version's state into the database"
    );
    Ok(())
}

/// The previous version kept a crash and its restart loop as two issues; now they are one
/// family with one fingerprint, and one open issue per fingerprint. Of two open ones, the
/// graver kind (the loop) stands for both, else the one seen last.
fn one_open_per_fingerprint(issues: Vec<Issue>) -> Vec<Issue> {
    let mut kept: Vec<Issue> = Vec::with_capacity(issues.len());
    let mut open: BTreeMap<String, usize> = BTreeMap::new();
    for issue in issues {
        if issue.state != IssueState::Open {
            kept.push(issue);
            continue;
        }
        let key = issue.fingerprint();
        match open.get(&key) {
            Some(&at) => {
                let standing = &kept[at];
                let replaces = !standing.kind.supersedes(issue.kind)
                    && (issue.kind.supersedes(standing.kind)
                        || issue.last_seen >= standing.last_seen);
                if replaces {
                    kept[at] = issue;
                }
            }
            None => {
                open.insert(key, kept.len());
                kept.push(issue);
            }
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issues::{raised, resolved, Detection};
    use obs_model::{IssueKind, Severity};

    #[test]
    fn a_crash_and_its_loop_both_open_in_an_old_file_import_as_the_loop() {
        let now = Utc::now();
        let crash = |subject: &str| {
            raised(
                None,
                Detection::new(IssueKind::Crashed, subject, subject, Severity::Warning),
                now,
            )
            .1
        };
        let looping = raised(
            None,
            Detection::new(IssueKind::RestartLoop, "app", "app", Severity::Critical),
            now - chrono::Duration::seconds(5),
        )
        .1;
        let old = resolved(crash("app"), BTreeMap::new(), now);
        let other = crash("db");
        let kept = one_open_per_fingerprint(vec![
            old.clone(),
            looping.clone(),
            crash("app"),
            other.clone(),
        ]);
        let ids: Vec<_> = kept.iter().map(|issue| issue.id).collect();
        assert_eq!(
            ids,
            [old.id, looping.id, other.id],
            "the loop stands for the crash, seen later or not; resolved ones are all kept"
        );
    }
}
