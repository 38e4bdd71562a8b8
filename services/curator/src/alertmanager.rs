//! `POST /v1/alertmanager`: Alertmanager's webhook payload (version 4), so Prometheus alerts
//! become incidents too.
//!
//! ```json
//! {"version": "4", "groupKey": "…", "truncatedAlerts": 0, "status": "firing",
//!  "receiver": "curator", "groupLabels": {…}, "commonLabels": {…},
//!  "commonAnnotations": {…}, "externalURL": "http://alertmanager:9093",
//!  "alerts": [{"status": "firing", "labels": {"alertname": "…", …}, "annotations": {…},
//!              "startsAt": "…", "endsAt": "…", "generatorURL": "…", "fingerprint": "…"}]}
//! ```
//!
//! An alert's incident is keyed by Alertmanager's fingerprint (or, from senders that omit
//! it, a hash of its labels); each firing occurrence by its `startsAt`. Every notification of
//! a firing alert is a sighting; a resolved one resolves the incident. The service is the
//! `service` label, else `job`, else `instance`; severity comes from the `severity` label.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike as _, Utc};
use obs_model::{IncidentSource, IssueKind, Severity};
use serde::Deserialize;
use serde_json::Value;

use crate::incidents::{derived_id, fnv1a, Sightings, Signal};
use crate::validate::{shown, FieldError, MAX_NAME_CHARS, MAX_SUBJECT_CHARS};
use obs_model::limits::{
    MAX_ALERT_ANNOTATIONS, MAX_ALERT_LABELS, MAX_ANNOTATION_CHARS, MAX_LABEL_VALUE_CHARS,
    MAX_URL_CHARS,
};
/// Alertmanager writes a zero time for "not ended yet".
const ZERO_TIME_YEAR: i32 = 1;

/// The payload as sent. Fields are optional here so that a missing one is reported by name
/// ("alerts[0].startsAt: required") rather than by serde's position.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload {
    pub version: Option<String>,
    pub group_key: Option<String>,
    pub truncated_alerts: Option<u64>,
    pub status: Option<String>,
    pub receiver: Option<String>,
    #[serde(default)]
    pub group_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub common_labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub common_annotations: Option<BTreeMap<String, String>>,
    #[serde(rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Option<Vec<Alert>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub status: Option<String>,
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub annotations: Option<BTreeMap<String, String>>,
    pub starts_at: Option<String>,
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: Option<String>,
    pub fingerprint: Option<String>,
}

/// Check the payload and turn each alert into a signal; `now` is when it arrived.
pub fn signals(payload: Payload, now: DateTime<Utc>) -> Result<Vec<Signal>, FieldError> {
    match payload.version.as_deref() {
        Some("4") => {}
        Some(other) => {
            return Err(FieldError::new(
                "version",
                format!("'{}' is not supported; this endpoint takes Alertmanager's webhook payload version 4", shown(other)),
            ))
        }
        None => return Err(FieldError::new("version", "required (Alertmanager sends \"4\")")),
    }
    status(payload.status.as_deref(), "status")?;
    let alerts = payload
        .alerts
        .ok_or_else(|| FieldError::new("alerts", "required (a list of alerts)"))?;
    if let Some(truncated) = payload.truncated_alerts.filter(|&n| n > 0) {
        tracing::warn!(
            truncated,
            group_key = payload.group_key.as_deref().unwrap_or(""),
            "Alertmanager left alerts out of this notification (max_alerts)"
        );
    }
    alerts
        .into_iter()
        .enumerate()
        .map(|(index, alert)| signal(alert, now).map_err(|e| e.within(&format!("alerts[{index}]"))))
        .collect()
}

fn status(value: Option<&str>, field: &str) -> Result<bool, FieldError> {
    match value {
        Some("firing") => Ok(true),
        Some("resolved") => Ok(false),
        Some(other) => Err(FieldError::new(
            field,
            format!("'{}' is not one of firing, resolved", shown(other)),
        )),
        None => Err(FieldError::new(field, "required (firing or resolved)")),
    }
}

fn time(value: &str, field: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(value)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|error| {
            FieldError::new(
                field,
                format!("'{}' is not an RFC 3339 time: {error}", shown(value)),
            )
        })
}

/// A label or annotation map within its limits: `max_entries` entries (named by
/// `entries_limit` in the refusal), names of 1 to MAX_NAME_CHARS characters, values of at
/// most `max_value` (named by `value_limit`).
fn bounded(
    map: &BTreeMap<String, String>,
    field: &str,
    (max_entries, entries_limit): (usize, &str),
    (max_value, value_limit): (usize, &str),
) -> Result<(), FieldError> {
    if map.len() > max_entries {
        return Err(FieldError::new(
            field,
            format!(
                "has {} entries; at most {max_entries} are allowed ({entries_limit})",
                map.len()
            ),
        ));
    }
    for (name, value) in map {
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            let shown: String = name.chars().take(MAX_NAME_CHARS).collect();
            return Err(FieldError::new(
                field,
                format!(
                    "name '{shown}' must have 1 to {MAX_NAME_CHARS} characters (MAX_NAME_CHARS)"
                ),
            ));
        }
        if value.len() > max_value && value.chars().count() > max_value {
            return Err(FieldError::new(
                format!("{field}.{name}"),
                format!("is longer than {max_value} characters ({value_limit})"),
            ));
        }
    }
    Ok(())
}

fn signal(alert: Alert, now: DateTime<Utc>) -> Result<Signal, FieldError> {
    let firing = status(alert.status.as_deref(), "status")?;
    let labels = alert
        .labels
        .ok_or_else(|| FieldError::new("labels", "required (the alert's labels)"))?;
    bounded(
        &labels,
        "labels",
        (MAX_ALERT_LABELS, "MAX_ALERT_LABELS"),
        (MAX_LABEL_VALUE_CHARS, "MAX_LABEL_VALUE_CHARS"),
    )?;
    let alertname = labels
        .get("alertname")
        .filter(|name| !name.is_empty())
        .ok_or_else(|| FieldError::new("labels.alertname", "required"))?
        .clone();
    if alertname.chars().count() > MAX_SUBJECT_CHARS {
        return Err(FieldError::new(
            "labels.alertname",
            format!("is longer than {MAX_SUBJECT_CHARS} characters (MAX_SUBJECT_CHARS)"),
        ));
    }
    let annotations = alert.annotations.unwrap_or_default();
    bounded(
        &annotations,
        "annotations",
        (MAX_ALERT_ANNOTATIONS, "MAX_ALERT_ANNOTATIONS"),
        (MAX_ANNOTATION_CHARS, "MAX_ANNOTATION_CHARS"),
    )?;
    if let Some(url) = &alert.generator_url {
        if url.len() > MAX_URL_CHARS && url.chars().count() > MAX_URL_CHARS {
            return Err(FieldError::new(
                "generatorURL",
                format!("is longer than {MAX_URL_CHARS} characters (MAX_URL_CHARS)"),
            ));
        }
    }
    let starts_at = time(
        alert.starts_at.as_deref().ok_or_else(|| {
            FieldError::new("startsAt", "required (when the alert started firing)")
        })?,
        "startsAt",
    )?;
    let ends_at = match alert.ends_at.as_deref() {
        Some(text) => Some(time(text, "endsAt")?).filter(|at| at.year() > ZERO_TIME_YEAR),
        None => None,
    };
    let fingerprint = match alert.fingerprint.filter(|f| !f.is_empty()) {
        Some(fingerprint) => {
            if fingerprint.len() > 64 || !fingerprint.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(FieldError::new(
                    "fingerprint",
                    "must be up to 64 letters and digits (Alertmanager's is 16 hex digits)",
                ));
            }
            fingerprint
        }
        // Senders that omit it: the labels identify the alert, as in Alertmanager.
        None => label_fingerprint(&labels),
    };
    let service = ["service", "job", "instance"]
        .iter()
        .find_map(|name| labels.get(*name).filter(|value| !value.is_empty()))
        .map(|value| value.chars().take(MAX_NAME_CHARS).collect())
        .unwrap_or_else(|| "unknown".to_string());
    let summary = annotations.get("summary").filter(|text| !text.is_empty());
    let description = annotations
        .get("description")
        .filter(|text| !text.is_empty());
    let title = summary.cloned().unwrap_or_else(|| alertname.clone());
    let message = description
        .or(summary)
        .cloned()
        .unwrap_or_else(|| format!("{alertname} is firing"));
    let recommendation = match (annotations.get("runbook_url"), &alert.generator_url) {
        (Some(runbook), _) if !runbook.is_empty() => format!("Follow the runbook: {runbook}"),
        (_, Some(generator)) if !generator.is_empty() => {
            format!("Look at the alert's expression in Prometheus: {generator}")
        }
        _ => "Look at the alert's rule and the metrics behind it in Prometheus.".to_string(),
    };
    let mut facts = BTreeMap::new();
    facts.insert("alertname".to_string(), Value::from(alertname.clone()));
    facts.insert(
        "alert_fingerprint".to_string(),
        Value::from(fingerprint.clone()),
    );
    facts.insert("starts_at".to_string(), Value::from(starts_at.to_rfc3339()));
    if let Some(generator) = alert.generator_url.filter(|url| !url.is_empty()) {
        facts.insert("generator_url".to_string(), Value::from(generator));
    }
    // The labels a plan's rules look for, as facts too.
    for name in ["container", "instance", "job", "pod", "namespace"] {
        if let Some(value) = labels.get(name) {
            facts.insert(name.to_string(), Value::from(value.clone()));
        }
    }
    let fingerprint = format!("alertmanager/{fingerprint}");
    Ok(Signal {
        incident_id: derived_id(starts_at, &fingerprint),
        fingerprint,
        source: IncidentSource::Alertmanager,
        service,
        kind: IssueKind::Alert,
        subject: alertname,
        severity: severity(labels.get("severity").map(String::as_str)),
        title,
        message,
        recommendation,
        facts,
        labels,
        annotations,
        occurrence: starts_at.to_rfc3339(),
        issue_id: None,
        sightings: Sightings::One,
        first_seen: starts_at,
        last_seen: if firing {
            now.max(starts_at)
        } else {
            ends_at.unwrap_or(now)
        },
        resolved_at: if firing {
            None
        } else {
            Some(ends_at.unwrap_or(now))
        },
    })
}

/// The `severity` label, read generously: alert rules spell it many ways.
fn severity(label: Option<&str>) -> Severity {
    match label.map(str::to_ascii_lowercase).as_deref() {
        Some("critical" | "page" | "error" | "high" | "fatal" | "emergency") => Severity::Critical,
        Some("info" | "informational" | "low" | "none" | "notice") => Severity::Info,
        _ => Severity::Warning,
    }
}

/// A stable fingerprint of a label set, for alerts that come without Alertmanager's.
fn label_fingerprint(labels: &BTreeMap<String, String>) -> String {
    let mut text = String::new();
    for (name, value) in labels {
        text.push_str(name);
        text.push('\u{1}');
        text.push_str(value);
        text.push('\u{2}');
    }
    format!("{:016x}", fnv1a(text.as_bytes(), 0xcbf2_9ce4_8422_2325))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Alertmanager's documented webhook payload (version 4).
    const PAYLOAD: &str = r#"{
      "receiver": "curator",
      "status": "firing",
      "alerts": [
        {
          "status": "firing",
          "labels": {"alertname": "HighErrorRate", "job": "api", "instance": "api:8080", "severity": "critical"},
          "annotations": {"summary": "api answers 5xx", "description": "5 % of api requests fail", "runbook_url": "https://runbooks.example/api"},
          "startsAt": "2026-01-02T03:04:05.123Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
          "fingerprint": "1a30ba71cca2921f"
        }
      ],
      "groupLabels": {"alertname": "HighErrorRate"},
      "commonLabels": {"alertname": "HighErrorRate", "job": "api", "instance": "api:8080", "severity": "critical"},
      "commonAnnotations": {"summary": "api answers 5xx"},
      "externalURL": "http://alertmanager:9093",
      "version": "4",
      "groupKey": "{}:{alertname=\"HighErrorRate\"}",
      "truncatedAlerts": 0
    }"#;

    fn parse(text: &str) -> Result<Vec<Signal>, FieldError> {
        let payload: Payload = crate::validate::parse(text)?;
        signals(payload, Utc::now())
    }

    #[test]
    fn a_documented_payload_becomes_signals() {
        let signals = parse(PAYLOAD).unwrap();
        assert_eq!(signals.len(), 1);
        let signal = &signals[0];
        assert_eq!(signal.fingerprint, "alertmanager/1a30ba71cca2921f");
        assert_eq!(signal.service, "api");
        assert_eq!(signal.subject, "HighErrorRate");
        assert_eq!(signal.severity, Severity::Critical);
        assert_eq!(signal.title, "api answers 5xx");
        assert!(signal.recommendation.contains("runbooks.example"));
        assert!(signal.resolved_at.is_none());
        assert_eq!(signal.first_seen.year(), 2026);
        // The same alert always derives the same incident id.
        assert_eq!(signal.incident_id, parse(PAYLOAD).unwrap()[0].incident_id);
    }

    #[test]
    fn resolved_alerts_carry_their_end() {
        let resolved = PAYLOAD
            .replace(r#""status": "firing""#, r#""status": "resolved""#)
            .replace("0001-01-01T00:00:00Z", "2026-01-02T03:14:05Z");
        let signal = &parse(&resolved).unwrap()[0];
        assert_eq!(
            signal.resolved_at.map(|at| at.to_rfc3339()),
            Some("2026-01-02T03:14:05+00:00".into())
        );
    }

    #[test]
    fn missing_and_wrong_fields_are_named() {
        let cases = [
            (PAYLOAD.replace(r#""version": "4","#, ""), "version"),
            (
                PAYLOAD.replace(r#""version": "4""#, r#""version": "1""#),
                "version",
            ),
            (
                PAYLOAD.replace(
                    r#""status": "firing",
      "alerts""#,
                    r#""status": "burning",
      "alerts""#,
                ),
                "status",
            ),
            (
                PAYLOAD.replace(r#""startsAt": "2026-01-02T03:04:05.123Z","#, ""),
                "alerts[0].startsAt",
            ),
            (
                PAYLOAD.replace("2026-01-02T03:04:05.123Z", "yesterday"),
                "alerts[0].startsAt",
            ),
            (
                PAYLOAD.replace(r#""alertname": "HighErrorRate", "job""#, r#""job""#),
                "alerts[0].labels.alertname",
            ),
            (
                PAYLOAD.replace(
                    r#""fingerprint": "1a30ba71cca2921f""#,
                    r#""fingerprint": "not/hex""#,
                ),
                "alerts[0].fingerprint",
            ),
        ];
        for (text, field) in cases {
            let error = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{field} accepted"));
            assert_eq!(error.field, field, "{error}");
        }
        let no_alerts = r#"{"version": "4", "status": "firing"}"#;
        assert_eq!(parse(no_alerts).unwrap_err().field, "alerts");
        let wrong_type = PAYLOAD.replace(r#""severity": "critical"}"#, r#""severity": 3}"#);
        let error = parse(&wrong_type).unwrap_err();
        assert!(error.field.starts_with("alerts[0].labels"), "{error}");
    }

    /// An alert whose labels or annotations are set to `entries` (replacing its own).
    fn alert_with(field: &str, entries: &[(String, String)]) -> String {
        let mut payload: serde_json::Value = serde_json::from_str(PAYLOAD).unwrap();
        let map = &mut payload["alerts"][0][field];
        for (name, value) in entries {
            map[name] = serde_json::Value::from(value.as_str());
        }
        payload.to_string()
    }

    #[test]
    fn labels_and_annotations_are_bounded_in_count_and_length_naming_the_limit() {
        let many = |n: usize| -> Vec<(String, String)> {
            (0..n).map(|i| (format!("x{i}"), "v".to_string())).collect()
        };
        let cases = [
            (
                alert_with("labels", &many(MAX_ALERT_LABELS)),
                "alerts[0].labels",
                "MAX_ALERT_LABELS",
            ),
            (
                alert_with("annotations", &many(MAX_ALERT_ANNOTATIONS + 1)),
                "alerts[0].annotations",
                "MAX_ALERT_ANNOTATIONS",
            ),
            (
                alert_with(
                    "labels",
                    &[("team".into(), "t".repeat(MAX_LABEL_VALUE_CHARS + 1))],
                ),
                "alerts[0].labels.team",
                "MAX_LABEL_VALUE_CHARS",
            ),
            (
                alert_with(
                    "annotations",
                    &[("description".into(), "d".repeat(MAX_ANNOTATION_CHARS + 1))],
                ),
                "alerts[0].annotations.description",
                "MAX_ANNOTATION_CHARS",
            ),
            (
                alert_with("labels", &[("n".repeat(MAX_NAME_CHARS + 1), "v".into())]),
                "alerts[0].labels",
                "MAX_NAME_CHARS",
            ),
        ];
        for (text, field, limit) in cases {
            let error = parse(&text)
                .err()
                .unwrap_or_else(|| panic!("{field} past {limit} accepted"));
            assert_eq!(error.field, field, "{error}");
            assert!(error.why.contains(limit), "{error}");
        }
        let mut payload: serde_json::Value = serde_json::from_str(PAYLOAD).unwrap();
        payload["alerts"][0]["generatorURL"] = "u".repeat(MAX_URL_CHARS + 1).into();
        let error = parse(&payload.to_string()).unwrap_err();
        assert_eq!(error.field, "alerts[0].generatorURL");
        assert!(error.why.contains("MAX_URL_CHARS"), "{error}");
        // At the limits exactly, accepted.
        let at_limit = alert_with(
            "annotations",
            &[("description".into(), "é".repeat(MAX_ANNOTATION_CHARS))],
        );
        assert!(parse(&at_limit).is_ok());
    }

    #[test]
    fn alerts_without_a_fingerprint_are_keyed_by_their_labels() {
        let bare = PAYLOAD.replace(r#","fingerprint": "1a30ba71cca2921f""#, "");
        let bare = bare.replace(
            r#",
          "fingerprint": "1a30ba71cca2921f""#,
            "",
        );
        let first = parse(&bare).unwrap();
        let second = parse(&bare).unwrap();
        assert_eq!(first[0].fingerprint, second[0].fingerprint);
        assert_ne!(first[0].fingerprint, "alertmanager/1a30ba71cca2921f");
    }
}
