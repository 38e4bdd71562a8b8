//! What the live view knows: the last good snapshot, whether the watcher answers right now,
//! and which events are new since the previous refresh.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use obs_model::{Event, Issue, WatcherStatus};
use ulid::Ulid;

use crate::client::ClientError;

/// One refresh's worth of answers from the watcher.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub status: WatcherStatus,
    /// Oldest first, as the client returns them.
    pub events: Vec<Event>,
    /// Open issues, worst first.
    pub issues: Vec<Issue>,
}

/// Why a refresh failed, short enough for the header line.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Not there at all (refused, timed out), as opposed to answering with an error.
    pub unreachable: bool,
    pub detail: String,
}

impl From<&ClientError> for Failure {
    fn from(error: &ClientError) -> Failure {
        Failure {
            unreachable: error.is_unreachable(),
            detail: error.short(),
        }
    }
}

#[derive(Debug)]
pub struct Screen {
    pub watcher_url: String,
    pub interval: Duration,
    pub snapshot: Option<Snapshot>,
    /// When the last snapshot arrived.
    pub updated_at: Option<DateTime<Utc>>,
    /// Why the last refresh failed; None while the watcher answers.
    pub failure: Option<Failure>,
    /// Events that appeared in the latest refresh (none on the first one).
    pub fresh: HashSet<Ulid>,
}

impl Screen {
    pub fn new(watcher_url: String, interval: Duration) -> Screen {
        Screen {
            watcher_url,
            interval,
            snapshot: None,
            updated_at: None,
            failure: None,
            fresh: HashSet::new(),
        }
    }

    /// Take a refresh's outcome. A failure keeps the last data (shown as stale).
    pub fn apply(&mut self, update: Result<Snapshot, Failure>, now: DateTime<Utc>) {
        match update {
            Ok(snapshot) => {
                self.fresh = match &self.snapshot {
                    Some(previous) => {
                        let known: HashSet<Ulid> = previous.events.iter().map(|e| e.id).collect();
                        snapshot
                            .events
                            .iter()
                            .map(|e| e.id)
                            .filter(|id| !known.contains(id))
                            .collect()
                    }
                    None => HashSet::new(),
                };
                self.snapshot = Some(snapshot);
                self.updated_at = Some(now);
                self.failure = None;
            }
            Err(failure) => {
                self.failure = Some(failure);
                self.fresh.clear();
            }
        }
    }
}
