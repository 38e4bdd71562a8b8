//! What a rule's placeholders stand for: the incident's fields, facts, labels and
//! annotations, made readable (`268435456` → `256 MiB`, a `down_since` → `12 min 5 s`).
//!
//! The facts are the ones the watcher and the curator put in (see `obs_model::Issue::facts`
//! and the curator's alert signals); a placeholder without a value renders as `(unknown)`,
//! and a step can say it needs one (`when`) or its absence (`unless`).

use chrono::{DateTime, Utc};
use obs_model::units::{docker_bytes, human_bytes};
use obs_model::{Incident, IssueKind};
use serde_json::Value;

/// Placeholders a template may use, besides `fact.<name>`, `label.<name>` and
/// `annotation.<name>` for anything else the incident carries.
pub const PLACEHOLDERS: &[&str] = &[
    // The incident itself.
    "service",
    "subject",
    "kind",
    "severity",
    "title",
    "message",
    "recommendation",
    "count",
    // Derived, made readable.
    "container",
    "exit_meaning",
    "memory_limit",
    "memory_limit_suggested",
    "memory_limit_suggested_docker",
    "pod_restart",
    "down_for",
    "down_since",
    // Alerts: from the facts or the labels and annotations.
    "alertname",
    "instance",
    "job",
    "pod",
    "namespace",
    "runbook_url",
    "summary",
    "description",
    // Facts as the watcher and the curator write them.
    "exit_code",
    "image",
    "restarts",
    "restart_policy",
    "signal",
    "starts_in_window",
    "window_seconds",
    "failing_streak",
    "last_output",
    "url",
    "error",
    "status_code",
    "consecutive_failures",
    "last_success",
    "phase",
    "timeout_seconds",
    "last_seen",
    "detail",
    "generator_url",
];

const PREFIXES: &[&str] = &["fact.", "label.", "annotation."];

/// What a placeholder with no value renders as.
pub const UNKNOWN: &str = "(unknown)";

pub fn is_known(name: &str) -> bool {
    PLACEHOLDERS.contains(&name)
        || PREFIXES.iter().any(|prefix| {
            name.strip_prefix(prefix)
                .is_some_and(|rest| !rest.is_empty())
        })
}

/// The values of one incident's placeholders, as of `now` (for `down_for`).
pub struct Values<'a> {
    incident: &'a Incident,
    now: DateTime<Utc>,
}

impl<'a> Values<'a> {
    pub fn new(incident: &'a Incident, now: DateTime<Utc>) -> Self {
        Values { incident, now }
    }

    fn fact(&self, name: &str) -> Option<String> {
        self.incident.facts.get(name).and_then(fact_text)
    }

    fn label(&self, name: &str) -> Option<String> {
        non_empty(self.incident.labels.get(name).cloned())
    }

    fn annotation(&self, name: &str) -> Option<String> {
        non_empty(self.incident.annotations.get(name).cloned())
    }

    pub fn incident(&self) -> &'a Incident {
        self.incident
    }

    /// A fact's text, for rules that match on facts.
    pub fn raw_fact(&self, name: &str) -> Option<String> {
        self.fact(name)
    }

    /// The value of `name`, if the incident has one.
    pub fn get(&self, name: &str) -> Option<String> {
        let incident = self.incident;
        if let Some(fact) = name.strip_prefix("fact.") {
            return self.fact(fact);
        }
        if let Some(label) = name.strip_prefix("label.") {
            return self.label(label);
        }
        if let Some(annotation) = name.strip_prefix("annotation.") {
            return self.annotation(annotation);
        }
        match name {
            "service" => Some(incident.service.clone()),
            "subject" => non_empty(Some(incident.subject.clone())),
            "kind" => Some(incident.kind.as_str().to_string()),
            "severity" => Some(incident.severity.as_str().to_string()),
            "title" => non_empty(Some(incident.title.clone())),
            "message" => non_empty(Some(incident.message.clone())),
            "recommendation" => non_empty(Some(incident.recommendation.clone())),
            "count" => Some(incident.count.to_string()),
            "container" => self.container(),
            "exit_meaning" => self
                .incident
                .facts
                .get("exit_code")
                .and_then(Value::as_i64)
                .map(|code| exit_meaning(code).to_string()),
            "memory_limit" => self.memory_limit().map(human_bytes),
            "memory_limit_suggested" => self
                .memory_limit()
                .map(|limit| human_bytes(limit.saturating_mul(2))),
            "memory_limit_suggested_docker" => self
                .memory_limit()
                .map(|limit| docker_bytes(limit.saturating_mul(2))),
            "pod_restart" => self.pod_restart(),
            "down_since" => Some(self.down_since().to_rfc3339()),
            "down_for" => Some(human_duration(self.now - self.down_since())),
            "alertname" | "instance" | "job" | "pod" | "namespace" => {
                self.fact(name).or_else(|| self.label(name))
            }
            "runbook_url" | "summary" | "description" => self.annotation(name),
            other => self.fact(other),
        }
    }

    /// The container the incident is about: a fact or label says so, or the subject of a
    /// container issue is its name.
    pub fn container(&self) -> Option<String> {
        let incident = self.incident;
        self.fact("container")
            .or_else(|| self.label("container"))
            .or_else(|| {
                let container_kind = matches!(
                    incident.kind,
                    IssueKind::OomKilled
                        | IssueKind::Crashed
                        | IssueKind::RestartLoop
                        | IssueKind::Unhealthy
                );
                (container_kind && !incident.subject.is_empty()).then(|| incident.subject.clone())
            })
    }

    /// The kubectl command for what auto-remediation would do to the incident's pod; none
    /// when nothing would recreate it (`crate::target`).
    fn pod_restart(&self) -> Option<String> {
        let how = crate::target::incident_pod_restart(self.incident)?;
        Some(crate::target::kubectl(
            &self.fact("namespace")?,
            &self.fact("pod")?,
            &how,
        ))
    }

    fn memory_limit(&self) -> Option<u64> {
        self.incident
            .facts
            .get("memory_limit_bytes")
            .and_then(Value::as_u64)
            .filter(|limit| *limit > 0)
    }

    /// Since when the trouble lasts: the watcher's `down_since`, else the incident's
    /// first sighting.
    fn down_since(&self) -> DateTime<Utc> {
        self.incident
            .facts
            .get("down_since")
            .and_then(Value::as_str)
            .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
            .map(|since| since.with_timezone(&Utc))
            .unwrap_or(self.incident.first_seen)
    }
}

fn non_empty(text: Option<String>) -> Option<String> {
    text.filter(|text| !text.is_empty())
}

/// A fact as text: strings as they are, whole numbers without `.0`, lists joined.
pub fn fact_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => non_empty(Some(text.clone())),
        Value::Number(number) => Some(match number.as_f64() {
            Some(float) if number.is_f64() && float.fract() == 0.0 && float.abs() < 1e15 => {
                format!("{}", float as i64)
            }
            _ => number.to_string(),
        }),
        Value::Bool(flag) => Some(flag.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(fact_text).collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        }
        Value::Object(_) => Some(value.to_string()),
    }
}

/// What an exit code usually means, for people deciding what to do next.
pub fn exit_meaning(code: i64) -> &'static str {
    match code {
        0 => "a normal exit",
        1 => "a general application error: the program gave up on its own",
        2 => "bad arguments or a misused shell builtin",
        126 => "the command is not executable",
        127 => "the command was not found",
        134 => "SIGABRT: the program aborted (an assertion or a panic)",
        137 => "SIGKILL: killed from outside, most often for running out of memory",
        139 => "SIGSEGV: a segmentation fault (a bug or a bad native library)",
        143 => "SIGTERM: asked to stop",
        code if code > 128 && code < 160 => "killed by a signal",
        _ => "an application-specific error",
    }
}

/// A duration for people, two units at most: `45 s`, `3 min 20 s`, `2 h 5 min`, `3 d 4 h`.
pub fn human_duration(duration: chrono::Duration) -> String {
    let seconds = duration.num_seconds().max(0);
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
        seconds % 60,
    );
    let pair = |big: i64, big_unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big} {big_unit}")
        } else {
            format!("{big} {big_unit} {small} {small_unit}")
        }
    };
    if days > 0 {
        pair(days, "d", hours, "h")
    } else if hours > 0 {
        pair(hours, "h", minutes, "min")
    } else if minutes > 0 {
        pair(minutes, "min", secs, "s")
    } else {
        format!("{secs} s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(human_duration(chrono::Duration::seconds(45)), "45 s");
        assert_eq!(human_duration(chrono::Duration::seconds(200)), "3 min 20 s");
        assert_eq!(human_duration(chrono::Duration::seconds(7500)), "2 h 5 min");
        assert_eq!(human_duration(chrono::Duration::seconds(3600)), "1 h");
        assert_eq!(
            human_duration(chrono::Duration::seconds(3 * 86_400 + 4 * 3600)),
            "3 d 4 h"
        );
        assert_eq!(human_duration(chrono::Duration::seconds(-5)), "0 s");
    }

    #[test]
    fn facts_read_as_text() {
        assert_eq!(fact_text(&Value::from(30.0)).as_deref(), Some("30"));
        assert_eq!(fact_text(&Value::from(0.5)).as_deref(), Some("0.5"));
        assert_eq!(fact_text(&Value::from(137)).as_deref(), Some("137"));
        assert_eq!(
            fact_text(&serde_json::json!(["oom_event", "state_oom_killed"])).as_deref(),
            Some("oom_event, state_oom_killed")
        );
        assert_eq!(fact_text(&Value::from("")), None);
        assert_eq!(fact_text(&Value::Null), None);
    }

    #[test]
    fn placeholders_are_known_by_name_or_prefix() {
        assert!(is_known("memory_limit"));
        assert!(is_known("label.team"));
        assert!(!is_known("label."));
        assert!(!is_known("contaner"));
    }
}
