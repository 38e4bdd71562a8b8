//! Property tests of every parser a client reaches in the curator: issue batches, Alertmanager
//! payloads, silences (matchers and their regex budget), acknowledge/resolve bodies. They
//! check that nothing panics, that a refusal names its field and, for a limit, the limit,
//! and that what a sender fits (`Issue::fit_limits`) is always accepted. The fuzz targets in
//! fuzz/ drive the same functions with coverage guidance (`make fuzz`).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone as _, Utc};
use obs_core::ApiError;
use obs_model::limits::{
    MAX_ALERT_ANNOTATIONS, MAX_ALERT_LABELS, MAX_COMMENT_CHARS, MAX_FACTS, MAX_LABEL_VALUE_CHARS,
    MAX_MATCHERS, MAX_NAME_CHARS, MAX_SILENCE_REGEX_BYTES, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS,
};
use obs_model::{Issue, IssueKind, IssueState, Matcher, Severity, Silence, SilenceState};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::silences::Compiled;
use crate::{alertmanager, api, issues};

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + seconds, 0).unwrap()
}

/// Any text, weighted towards the awkward: control characters, multi-byte characters, `…`,
/// and lengths around the limits.
fn text(max_len: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(any::<char>(), 0..max_len).prop_map(String::from_iter),
        "[a-z0-9 _./:@-]{0,20}",
        (
            prop::sample::select(vec!['x', 'é', '…', '\u{1b}', '\n', '\r', '/', '😀']),
            0usize..max_len
        )
            .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
    ]
}

fn kind() -> impl Strategy<Value = IssueKind> {
    prop::sample::select(vec![
        IssueKind::HeartbeatMissed,
        IssueKind::ServiceFailed,
        IssueKind::OomKilled,
        IssueKind::RestartLoop,
        IssueKind::Crashed,
        IssueKind::ProbeFailed,
        IssueKind::Alert,
    ])
}

fn issue() -> impl Strategy<Value = Issue> {
    (
        (kind(), text(300), text(600), text(5000), text(200)),
        proptest::collection::btree_map(text(200), any::<i64>(), 0..100),
        (
            any::<u64>(),
            -100_000i64..100_000,
            -100_000i64..100_000,
            any::<bool>(),
        ),
    )
        .prop_map(
            |(
                (kind, service, subject, message, recommendation),
                facts,
                (count, first, last, open),
            )| {
                Issue {
                    id: ulid::Ulid::nil(),
                    kind,
                    service,
                    subject,
                    severity: Severity::Warning,
                    state: if open {
                        IssueState::Open
                    } else {
                        IssueState::Resolved
                    },
                    message,
                    recommendation,
                    first_seen: at(first),
                    last_seen: at(last),
                    resolved_at: None,
                    count,
                    facts: facts
                        .into_iter()
                        .map(|(k, v)| (k, Value::from(v)))
                        .collect(),
                }
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// What a sender fits is always taken: the watcher never produces an issue the curator
    /// refuses for shape, and fitting twice changes nothing.
    #[test]
    fn a_fitted_issue_is_always_accepted(issue in issue()) {
        let fitted = issue.fit_limits();
        if let Err(error) = issues::check(&fitted) {
            return Err(TestCaseError::fail(format!("refused: {error}")));
        }
        prop_assert_eq!(fitted.clone().fit_limits(), fitted);
    }

    /// A refusal of an issue for a limit names the limit.
    #[test]
    fn refusals_of_issues_name_their_limit(issue in issue()) {
        if let Err(error) = issues::check(&issue) {
            let limit = match error.field.as_str() {
                "service" if issue.service.chars().count() > MAX_NAME_CHARS => Some("MAX_NAME_CHARS"),
                "subject" if issue.subject.chars().count() > MAX_SUBJECT_CHARS => Some("MAX_SUBJECT_CHARS"),
                "message" if issue.message.chars().count() > MAX_TEXT_CHARS => Some("MAX_TEXT_CHARS"),
                "facts" if issue.facts.len() > MAX_FACTS => Some("MAX_FACTS"),
                "facts" => Some("MAX_NAME_CHARS"),
                _ => None,
            };
            if let Some(limit) = limit {
                prop_assert!(error.why.contains(limit), "{}: {}", error.field, error.why);
            }
            prop_assert!(error.why.chars().count() < 400, "the refusal echoes too much: {}", error.why);
        }
    }

    /// Any JSON array reaches a decision, and a refusal names the item.
    #[test]
    fn issue_batches_never_panic(items in proptest::collection::vec(json_value(), 0..4)) {
        let raw: Vec<Box<serde_json::value::RawValue>> = items
            .iter()
            .map(|item| serde_json::value::to_raw_value(item).unwrap())
            .collect();
        if let Err(error) = issues::parse_batch(&raw) {
            prop_assert!(error.field.starts_with('['), "{error:?}");
        }
    }
}

/// JSON of any shape, with the keys an issue or alert has, so some of it gets deep.
fn json_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "id",
        "kind",
        "service",
        "subject",
        "severity",
        "state",
        "message",
        "recommendation",
        "first_seen",
        "last_seen",
        "count",
        "facts",
        "body",
        "labels",
        "alertname",
        "x",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        text(40).prop_map(Value::from),
        Just(json!("01JC0000000000000000000001")),
        Just(json!("2026-01-02T03:04:05Z")),
        Just(json!("oom_killed")),
        Just(json!("critical")),
        Just(json!("open")),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(key.clone(), inner, 0..12).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// An alert with `labels` labels and `annotations` annotations, values of the given lengths.
fn alert_payload(
    labels: usize,
    label_chars: usize,
    annotations: usize,
    annotation_chars: usize,
) -> Value {
    let mut label_map: BTreeMap<String, String> = (0..labels.saturating_sub(1))
        .map(|n| (format!("l{n}"), "v".repeat(label_chars)))
        .collect();
    label_map.insert("alertname".into(), "Disk".into());
    let annotation_map: BTreeMap<String, String> = (0..annotations)
        .map(|n| (format!("a{n}"), "é".repeat(annotation_chars)))
        .collect();
    json!({"version": "4", "status": "firing", "alerts": [{
        "status": "firing", "labels": label_map, "annotations": annotation_map,
        "startsAt": "2026-01-02T03:04:05Z"}]})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// An alert is taken exactly when it keeps within its limits, and a refusal names the
    /// limit it passed.
    #[test]
    fn alerts_are_taken_within_their_limits_and_refused_by_name(
        labels in 1usize..(MAX_ALERT_LABELS + 8),
        label_chars in prop_oneof![0usize..8, (MAX_LABEL_VALUE_CHARS - 2)..(MAX_LABEL_VALUE_CHARS + 2)],
        annotations in 0usize..(MAX_ALERT_ANNOTATIONS + 8),
        annotation_chars in 0usize..8,
    ) {
        let payload = alert_payload(labels, label_chars, annotations, annotation_chars);
        let parsed: alertmanager::Payload = serde_json::from_value(payload).unwrap();
        let result = alertmanager::signals(parsed, at(0));
        let too_many_labels = labels > MAX_ALERT_LABELS;
        let too_long = labels > 1 && label_chars > MAX_LABEL_VALUE_CHARS;
        let too_many_annotations = annotations > MAX_ALERT_ANNOTATIONS;
        match result {
            Ok(signals) => {
                prop_assert!(!too_many_labels && !too_long && !too_many_annotations);
                prop_assert_eq!(signals.len(), 1);
            }
            Err(error) => {
                let expected = if too_many_labels {
                    "MAX_ALERT_LABELS"
                } else if too_long {
                    "MAX_LABEL_VALUE_CHARS"
                } else if too_many_annotations {
                    "MAX_ALERT_ANNOTATIONS"
                } else {
                    return Err(TestCaseError::fail(format!("refused within limits: {error}")));
                };
                prop_assert!(error.why.contains(expected), "{}", error);
            }
        }
    }

    /// Any JSON is decoded or refused; what decodes reaches a decision without panicking.
    #[test]
    fn alertmanager_payloads_never_panic(value in json_value()) {
        if let Ok(payload) = serde_json::from_value::<alertmanager::Payload>(value) {
            let _ = alertmanager::signals(payload, at(0));
        }
    }
}

/// Regular expressions built from the pieces that cost: Unicode classes, counted
/// repetitions, alternations, nesting; and junk.
fn pattern() -> impl Strategy<Value = String> {
    let atom = prop::sample::select(vec![
        "a",
        "\\w",
        "\\d",
        "\\pL",
        ".",
        "[A-Za-z0-9_]",
        "[^x]",
        "(?i)k",
        "\\b",
        "(",
        ")",
        "[",
        "|",
        "*",
        "+",
        "?",
        "{",
        "}",
        "\\",
        "é",
    ]);
    let repeat = prop_oneof![
        Just(String::new()),
        (0u32..40).prop_map(|n| format!("{{{n}}}")),
        (0u32..5, 0u32..30).prop_map(|(a, b)| format!("{{{a},{b}}}"))
    ];
    proptest::collection::vec((atom, repeat), 1..6).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(atom, repeat)| format!("{atom}{repeat}"))
            .collect()
    })
}

fn silence(matchers: Vec<Matcher>) -> Silence {
    Silence {
        id: ulid::Ulid::nil(),
        matchers,
        starts_at: at(0),
        ends_at: at(3600),
        comment: "maintenance".into(),
        created_by: None,
        created_at: at(0),
        state: SilenceState::Active,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any matchers compile or are refused by field; an accepted silence keeps within
    /// MAX_MATCHERS and its regex budget, and a refusal for size names the budget.
    #[test]
    fn matchers_compile_within_their_budget(
        patterns in proptest::collection::vec((pattern(), any::<bool>(), any::<bool>()), 1..(MAX_MATCHERS + 3)),
    ) {
        let count = patterns.len();
        let matchers = patterns
            .into_iter()
            .map(|(value, is_regex, is_equal)| Matcher { name: "service".into(), value, is_regex, is_equal })
            .collect();
        match Compiled::compile(silence(matchers)) {
            Ok(compiled) => {
                prop_assert!(count <= MAX_MATCHERS);
                prop_assert!(compiled.regex_bytes() <= MAX_SILENCE_REGEX_BYTES);
            }
            Err(error) => {
                prop_assert!(error.field.starts_with("matchers"), "{error:?}");
                if count > MAX_MATCHERS {
                    prop_assert!(error.why.contains("MAX_MATCHERS"), "{error}");
                }
                if error.why.contains("compile") {
                    prop_assert!(error.why.contains("MAX_REGEX_BYTES") || error.why.contains("MAX_SILENCE_REGEX_BYTES"), "{error}");
                }
            }
        }
    }

    /// An acknowledge or resolve body: any bytes are taken or refused with a 400 and a stable
    /// code; an over-long `by` or `comment` names its limit.
    #[test]
    fn by_hand_bodies_are_taken_or_refused_by_name(
        bytes in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            (text(200), text(1100)).prop_map(|(by, comment)| json!({"by": by, "comment": comment}).to_string().into_bytes()),
        ],
    ) {
        match api::by_hand(&bytes) {
            Ok(input) => {
                prop_assert!(input.by.is_none_or(|by| by.chars().count() <= MAX_NAME_CHARS));
                prop_assert!(input.comment.is_none_or(|c| c.chars().count() <= MAX_COMMENT_CHARS));
            }
            Err(ApiError::BadRequest { code, message }) => {
                prop_assert!(code == "invalid_json" || code == "invalid_field", "{code}");
                if message.contains("characters long") {
                    prop_assert!(message.contains("(MAX_NAME_CHARS)") || message.contains("(MAX_COMMENT_CHARS)"), "{message}");
                }
            }
            Err(other) => return Err(TestCaseError::fail(format!("not a 400: {other:?}"))),
        }
    }
}
