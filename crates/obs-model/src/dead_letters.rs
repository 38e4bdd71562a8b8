//! Dead letters on the wire: records a receiver refused, as every role lists them
//! (`GET /v1/dead-letters`) and replays them (`POST /v1/dead-letters/replay`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One refused record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Where it was going (`planner`, `archivist`, `webhook-slack-…`).
    pub destination: String,
    /// Its place in the role's outbox: what a replay names.
    pub seq: i64,
    pub failed_at: DateTime<Utc>,
    /// What the receiver answered.
    pub reason: String,
    /// The record as it was sent.
    pub record: serde_json::Value,
}

/// A page of dead letters, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    /// Pass as `after` for the next page; null on the last.
    pub next: Option<i64>,
}

/// What to put back in the outbox: both optional (`{}`: every dead letter).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Only this destination's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    /// Only these (their `seq` from a listing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Vec<i64>>,
}

/// What a replay did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Replayed {
    /// Put back in the outbox.
    pub replayed: u64,
    /// Dead letters the request covered that are left (more than one request takes).
    pub remaining: u64,
}
