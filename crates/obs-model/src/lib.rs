//! Wire types shared by the roles. Serde only: no I/O, no framework.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// The archive's envelope: every record any role produces travels and is stored in this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable id; receivers ignore ids they already have, so retries never duplicate.
    pub id: Ulid,
    /// `event`, `issue`, `incident`, `plan`, `report`, …
    pub kind: String,
    pub service: String,
    pub ts: DateTime<Utc>,
    #[serde(default)]
    pub body: serde_json::Value,
}

/// How bad an issue or incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_as_the_design_writes_them() {
        let text = r#"{"id":"01ARZ3NDEKTSV4RRFFQ69G5FAV","kind":"event","service":"api","ts":"2026-01-02T03:04:05Z","body":{"a":1}}"#;
        let record: Record = serde_json::from_str(text).unwrap();
        assert_eq!(record.kind, "event");
        assert_eq!(serde_json::to_string(&record).unwrap(), text);
    }

    #[test]
    fn severities_order_from_info_to_critical() {
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
    }
}
