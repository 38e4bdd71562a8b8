//! `POST /v1/issues`: a JSON array of `obs_model::Issue` from a watcher, turned into signals.
//!
//! Each item is an issue as the watcher lists it. The archive envelope (an
//! `obs_model::Record` of kind `issue` with the issue as its body) is accepted too, so a
//! watcher may send the same records to the curator and to the archivist. An issue carries a
//! stable id per occurrence and its own running count, which is what makes applying the same
//! item twice a no-op.

use obs_model::{IncidentSource, Issue, IssueState};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::incidents::{Sightings, Signal};
use crate::validate::{self, limit, FieldError, MAX_FACTS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS};

/// The archive envelope around an issue.
#[derive(Deserialize)]
struct Envelope {
    kind: String,
    body: Box<RawValue>,
}

/// Parse and check every item of a batch; the first bad one fails the batch, named by its
/// index, so a sender's outbox can isolate it.
pub fn parse_batch(items: &[Box<RawValue>]) -> Result<Vec<Issue>, FieldError> {
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let prefix = format!("[{index}]");
            let issue = parse_item(item.get()).map_err(|error| error.within(&prefix))?;
            check(&issue).map_err(|error| error.within(&prefix))?;
            Ok(issue)
        })
        .collect()
}

fn parse_item(json: &str) -> Result<Issue, FieldError> {
    match validate::parse::<Issue>(json) {
        Ok(issue) => Ok(issue),
        // Only an object with a body can be an envelope; anything else keeps its own error.
        Err(error) if json.contains("\"body\"") => match validate::parse::<Envelope>(json) {
            Ok(envelope) if envelope.kind == "issue" => {
                validate::parse::<Issue>(envelope.body.get()).map_err(|e| e.within("body"))
            }
            Ok(envelope) => Err(FieldError::new(
                "kind",
                format!(
                    "a record of kind '{}' is not an issue",
                    validate::shown(&envelope.kind)
                ),
            )),
            Err(_) => Err(error),
        },
        Err(error) => Err(error),
    }
}

/// What serde cannot check: names, bounds, times that make sense.
pub fn check(issue: &Issue) -> Result<(), FieldError> {
    validate::name(&issue.service).map_err(|why| FieldError::new("service", why))?;
    validate::text(&issue.subject, limit!(MAX_SUBJECT_CHARS))
        .map_err(|why| FieldError::new("subject", why))?;
    validate::text(&issue.message, limit!(MAX_TEXT_CHARS))
        .map_err(|why| FieldError::new("message", why))?;
    validate::text(&issue.recommendation, limit!(MAX_TEXT_CHARS))
        .map_err(|why| FieldError::new("recommendation", why))?;
    if issue.facts.len() > MAX_FACTS {
        return Err(FieldError::new(
            "facts",
            format!(
                "has {} entries; at most {MAX_FACTS} are allowed (MAX_FACTS)",
                issue.facts.len()
            ),
        ));
    }
    if let Some(key) = issue
        .facts
        .keys()
        .find(|key| key.is_empty() || key.len() > validate::MAX_NAME_CHARS)
    {
        return Err(FieldError::new(
            "facts",
            format!(
                "key '{}' must have 1 to {} characters (MAX_NAME_CHARS)",
                validate::shown(key),
                validate::MAX_NAME_CHARS
            ),
        ));
    }
    if issue.count == 0 {
        return Err(FieldError::new("count", "must be at least 1"));
    }
    if issue.last_seen < issue.first_seen {
        return Err(FieldError::new("last_seen", "is before first_seen"));
    }
    Ok(())
}

/// The signal an issue stands for.
pub fn signal(issue: Issue) -> Signal {
    let fingerprint = issue.fingerprint();
    let title = if issue.subject.is_empty() {
        format!("{}: {}", issue.service, issue.kind.as_str())
    } else {
        format!(
            "{}: {} ({})",
            issue.service,
            issue.kind.as_str(),
            issue.subject
        )
    };
    let resolved_at = match issue.state {
        IssueState::Open => None,
        IssueState::Resolved => Some(issue.resolved_at.unwrap_or(issue.last_seen)),
    };
    Signal {
        fingerprint,
        source: IncidentSource::Watcher,
        service: issue.service,
        kind: issue.kind,
        subject: issue.subject,
        severity: issue.severity,
        title,
        message: issue.message,
        recommendation: issue.recommendation,
        facts: issue.facts,
        labels: Default::default(),
        annotations: Default::default(),
        occurrence: issue.id.to_string(),
        issue_id: Some(issue.id),
        sightings: Sightings::Total(issue.count),
        first_seen: issue.first_seen,
        last_seen: issue.last_seen,
        resolved_at,
        incident_id: issue.id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: &str = r#"{"id":"01JC0000000000000000000001","kind":"oom_killed","service":"api","subject":"api-1","severity":"critical","state":"open","message":"killed","recommendation":"raise the limit","first_seen":"2026-01-02T03:04:05Z","last_seen":"2026-01-02T03:04:05Z","count":1,"facts":{"memory_limit_bytes":268435456}}"#;

    /// What the watcher makes of a container with a 157-character name probed at a
    /// 303-character URL, with a message full of terminal escapes and too many facts.
    fn oversized_issue() -> Issue {
        let mut issue: Issue = serde_json::from_str(ISSUE).unwrap();
        issue.service = "c".repeat(157);
        issue.subject = format!("http://probe.example/{}", "p".repeat(282));
        issue.message = format!("\u{1b}[31m{}", "m".repeat(5000));
        issue.facts = (0..100)
            .map(|n| (format!("fact_{n}"), serde_json::json!(n)))
            .collect();
        issue
    }

    #[test]
    fn an_issue_past_every_limit_is_refused_as_is_and_taken_once_the_sender_fits_it() {
        let issue = oversized_issue();
        assert!(check(&issue).is_err());
        let fitted = issue.clone().fit_limits();
        check(&fitted).unwrap_or_else(|error| panic!("the fitted issue is refused: {error:?}"));
        // The same cut at every update: one incident, not one per sighting.
        assert_eq!(fitted.fingerprint(), issue.fit_limits().fingerprint());
        assert_eq!(fitted.facts["facts_omitted"], 37);
    }

    fn batch(items: &[&str]) -> Vec<Box<RawValue>> {
        items
            .iter()
            .map(|item| RawValue::from_string(item.to_string()).unwrap())
            .collect()
    }

    #[test]
    fn issues_and_archive_envelopes_both_parse() {
        let envelope = format!(
            r#"{{"id":"01JC0000000000000000000009","kind":"issue","service":"api","ts":"2026-01-02T03:04:05Z","body":{ISSUE}}}"#
        );
        let issues = parse_batch(&batch(&[ISSUE, &envelope])).unwrap();
        assert_eq!(issues.len(), 2);
        assert_eq!(issues[0], issues[1]);
        let signal = signal(issues[0].clone());
        assert_eq!(signal.fingerprint, "api/oom_killed/api-1");
        assert_eq!(signal.incident_id, issues[0].id);
    }

    #[test]
    fn bad_items_are_named_by_index_and_field() {
        let unknown_kind = ISSUE.replace("oom_killed", "gremlins");
        let error = parse_batch(&batch(&[ISSUE, &unknown_kind])).unwrap_err();
        assert_eq!(error.field, "[1].kind");
        assert!(error.why.contains("gremlins"), "{}", error.why);

        let bad_service = ISSUE.replace(r#""service":"api""#, r#""service":"a b""#);
        assert_eq!(
            parse_batch(&batch(&[&bad_service])).unwrap_err().field,
            "[0].service"
        );
        let zero = ISSUE.replace(r#""count":1"#, r#""count":0"#);
        assert_eq!(
            parse_batch(&batch(&[&zero])).unwrap_err().field,
            "[0].count"
        );
        let event_record = r#"{"id":"01JC0000000000000000000009","kind":"event","service":"api","ts":"2026-01-02T03:04:05Z","body":{}}"#;
        let error = parse_batch(&batch(&[event_record])).unwrap_err();
        assert_eq!(error.field, "[0].kind");
        let bad_body = format!(
            r#"{{"id":"01JC0000000000000000000009","kind":"issue","service":"api","ts":"2026-01-02T03:04:05Z","body":{}}}"#,
            unknown_kind
        );
        assert_eq!(
            parse_batch(&batch(&[&bad_body])).unwrap_err().field,
            "[0].body.kind"
        );
    }
}
