//! Silences: Alertmanager-style matchers over an incident's service, kind, subject,
//! severity, source, fingerprint and (alerts) labels, in force from `starts_at` to `ends_at`.
//!
//! A silenced incident is still recorded and forwarded, marked `silenced`, with
//! `notify: false`. As in Alertmanager, regular expressions are anchored at both ends, a
//! name that is not a field matches the label of that name (an absent label is the empty
//! string), and at least one matcher must not match the empty string, so no silence can
//! match everything by accident.

use chrono::{DateTime, Utc};
pub use obs_model::limits::{
    MAX_COMMENT_CHARS, MAX_MATCHERS, MAX_MATCHER_VALUE_CHARS as MAX_VALUE_CHARS, MAX_REGEX_BYTES,
    MAX_REGEX_CACHE_BYTES, MAX_SILENCE_REGEX_BYTES,
};
use obs_model::matcher::{self, Compiled as CompiledMatcher};
use obs_model::{Incident, Matcher, Silence, SilenceIn, SilenceState};
use ulid::Ulid;

use crate::validate::{self, FieldError};
/// A silence longer than a year is a mistake, not a plan.
const MAX_SILENCE_DAYS: i64 = 366;

/// The shared matcher (obs_model::matcher), its refusal naming `field.value`.
fn compile_matcher(matcher: &Matcher, field: &str) -> Result<CompiledMatcher, FieldError> {
    CompiledMatcher::new(matcher).map_err(|why| FieldError::new(format!("{field}.value"), why))
}

/// A validated silence with its matchers compiled.
#[derive(Debug, Clone)]
pub struct Compiled {
    pub silence: Silence,
    matchers: Vec<CompiledMatcher>,
}

impl Compiled {
    /// Check a `POST /v1/silences` body; every refusal names its field.
    pub fn from_input(input: SilenceIn, now: DateTime<Utc>) -> Result<Self, FieldError> {
        let starts_at = input.starts_at.unwrap_or(now).max(now);
        if input.ends_at <= now {
            return Err(FieldError::new("ends_at", "must be in the future"));
        }
        if input.ends_at <= starts_at {
            return Err(FieldError::new("ends_at", "must be after starts_at"));
        }
        if input.ends_at - now > chrono::Duration::days(MAX_SILENCE_DAYS) {
            return Err(FieldError::new(
                "ends_at",
                format!("must be within {MAX_SILENCE_DAYS} days"),
            ));
        }
        if input.comment.trim().is_empty() {
            return Err(FieldError::new(
                "comment",
                "must say why (it must not be empty)",
            ));
        }
        validate::text(&input.comment, validate::limit!(MAX_COMMENT_CHARS))
            .map_err(|why| FieldError::new("comment", why))?;
        if let Some(created_by) = &input.created_by {
            validate::text(created_by, (validate::MAX_NAME_CHARS, "MAX_NAME_CHARS"))
                .map_err(|why| FieldError::new("created_by", why))?;
        }
        let silence = Silence {
            id: Ulid::new(),
            matchers: input.matchers,
            starts_at,
            ends_at: input.ends_at,
            comment: input.comment,
            created_by: input.created_by,
            created_at: now,
            state: SilenceState::Pending,
        };
        let mut compiled = Self::compile(silence)?;
        compiled.silence.state = state_at(&compiled.silence, now);
        Ok(compiled)
    }

    /// Compile a silence's matchers (also for silences loaded from disk).
    pub fn compile(silence: Silence) -> Result<Self, FieldError> {
        if silence.matchers.is_empty() {
            return Err(FieldError::new(
                "matchers",
                "at least one matcher is needed",
            ));
        }
        if silence.matchers.len() > MAX_MATCHERS {
            return Err(FieldError::new(
                "matchers",
                format!(
                    "{} matchers; at most {MAX_MATCHERS} are allowed (MAX_MATCHERS)",
                    silence.matchers.len()
                ),
            ));
        }
        let mut matchers = Vec::with_capacity(silence.matchers.len());
        let mut regex_bytes = 0;
        for (index, matcher) in silence.matchers.iter().enumerate() {
            let field = format!("matchers[{index}]");
            validate::label_name(&matcher.name)
                .map_err(|why| FieldError::new(format!("{field}.name"), why))?;
            if matcher.value.len() > MAX_VALUE_CHARS
                && matcher.value.chars().count() > MAX_VALUE_CHARS
            {
                return Err(FieldError::new(
                    format!("{field}.value"),
                    format!(
                        "is longer than {MAX_VALUE_CHARS} characters (MAX_MATCHER_VALUE_CHARS)"
                    ),
                ));
            }
            let compiled = compile_matcher(matcher, &field)?;
            regex_bytes += compiled.regex_bytes();
            // Counted as they compile: the budget is checked before the next one is built.
            if regex_bytes > MAX_SILENCE_REGEX_BYTES {
                return Err(FieldError::new(
                    "matchers",
                    format!(
                        "the regular expressions up to matchers[{index}] take {} compiled; at most \
                         {} are allowed in one silence (MAX_SILENCE_REGEX_BYTES)",
                        matcher::size(regex_bytes),
                        matcher::size(MAX_SILENCE_REGEX_BYTES)
                    ),
                ));
            }
            matchers.push(compiled);
        }
        if matchers.iter().all(|matcher| matcher.matches_value("")) {
            return Err(FieldError::new(
                "matchers",
                "at least one matcher must not match the empty string (this silence would match everything)",
            ));
        }
        Ok(Compiled { silence, matchers })
    }

    /// Heap taken by this silence's compiled regular expressions.
    pub fn regex_bytes(&self) -> usize {
        self.matchers.iter().map(CompiledMatcher::regex_bytes).sum()
    }

    fn matches(&self, incident: &Incident) -> bool {
        self.matchers
            .iter()
            .all(|matcher| matcher.matches(incident))
    }

    fn in_force(&self, now: DateTime<Utc>) -> bool {
        self.silence.starts_at <= now && now < self.silence.ends_at
    }
}

fn state_at(silence: &Silence, now: DateTime<Utc>) -> SilenceState {
    if silence.starts_at <= now {
        SilenceState::Active
    } else {
        SilenceState::Pending
    }
}

/// The silences that have not ended; ended ones are dropped by [`Silences::tick`].
#[derive(Debug, Default, Clone)]
pub struct Silences {
    list: Vec<Compiled>,
}

impl Silences {
    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn add(&mut self, silence: Compiled) {
        self.list.push(silence);
    }

    pub fn restore(&mut self, silence: Silence) -> Result<(), FieldError> {
        self.list.push(Compiled::compile(silence)?);
        Ok(())
    }

    pub fn contains(&self, id: Ulid) -> bool {
        self.list.iter().any(|entry| entry.silence.id == id)
    }

    pub fn remove(&mut self, id: Ulid, now: DateTime<Utc>) -> Option<Silence> {
        let index = self.list.iter().position(|entry| entry.silence.id == id)?;
        let mut removed = self.list.remove(index).silence;
        removed.state = state_at(&removed, now);
        Some(removed)
    }

    /// The first silence in force now that matches `incident`.
    pub fn matching(&self, incident: &Incident, now: DateTime<Utc>) -> Option<Ulid> {
        self.list
            .iter()
            .find(|entry| entry.in_force(now) && entry.matches(incident))
            .map(|entry| entry.silence.id)
    }

    /// Drop ended silences and start pending ones; true if anything changed.
    pub fn tick(&mut self, now: DateTime<Utc>) -> bool {
        let before = self.list.len();
        self.list.retain(|entry| entry.silence.ends_at > now);
        let mut changed = self.list.len() != before;
        for entry in &mut self.list {
            let state = state_at(&entry.silence, now);
            if state != entry.silence.state {
                entry.silence.state = state;
                changed = true;
            }
        }
        changed
    }

    /// All silences, soonest end first, their state as of `now`.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<Silence> {
        let mut silences: Vec<Silence> = self
            .list
            .iter()
            .map(|entry| Silence {
                state: state_at(&entry.silence, now),
                ..entry.silence.clone()
            })
            .collect();
        silences.sort_by(|a, b| a.ends_at.cmp(&b.ends_at).then(a.id.cmp(&b.id)));
        silences
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_model::{IncidentChange, IncidentSource, IncidentState, IssueKind, Severity};
    use std::collections::BTreeMap;

    fn incident(service: &str, labels: &[(&str, &str)]) -> Incident {
        let now = Utc::now();
        Incident {
            id: Ulid::new(),
            fingerprint: format!("{service}/crashed/web"),
            source: IncidentSource::Watcher,
            service: service.into(),
            kind: IssueKind::Crashed,
            subject: "web".into(),
            severity: Severity::Critical,
            state: IncidentState::Open,
            title: String::new(),
            message: String::new(),
            recommendation: String::new(),
            first_seen: now,
            last_seen: now,
            updated_at: now,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            comment: None,
            count: 1,
            reopened: 0,
            flapping: false,
            silenced: None,
            issue_ids: Vec::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            annotations: BTreeMap::new(),
            facts: BTreeMap::new(),
            change: IncidentChange::Opened,
            notify: false,
            revision: 1,
        }
    }

    fn matcher(name: &str, value: &str, is_regex: bool, is_equal: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    fn silence(matchers: Vec<Matcher>) -> Result<Compiled, FieldError> {
        let now = Utc::now();
        Compiled::from_input(
            SilenceIn {
                matchers,
                starts_at: None,
                ends_at: now + chrono::Duration::hours(1),
                comment: "maintenance".into(),
                created_by: Some("alice".into()),
            },
            now,
        )
    }

    #[test]
    fn matchers_test_fields_and_labels_like_alertmanager() {
        let api = incident("api", &[("team", "blue")]);
        let db = incident("db", &[]);
        let by_service = silence(vec![matcher("service", "api", false, true)]).unwrap();
        assert!(by_service.matches(&api) && !by_service.matches(&db));
        let regex = silence(vec![matcher("service", "a.*", true, true)]).unwrap();
        assert!(regex.matches(&api) && !regex.matches(&db));
        // Anchored: "p" alone does not match "api".
        let partial = silence(vec![matcher("service", "p", true, true)]).unwrap();
        assert!(!partial.matches(&api));
        let not_blue = silence(vec![
            matcher("kind", "crashed", false, true),
            matcher("team", "blue", false, false),
        ])
        .unwrap();
        assert!(!not_blue.matches(&api) && not_blue.matches(&db));
        let severity = silence(vec![matcher("severity", "warning|critical", true, true)]).unwrap();
        assert!(severity.matches(&api));
    }

    #[test]
    fn silences_that_would_match_everything_or_nothing_sensible_are_refused() {
        let everything = silence(vec![matcher("service", ".*", true, true)]).unwrap_err();
        assert_eq!(everything.field, "matchers");
        assert!(silence(vec![]).unwrap_err().field == "matchers");
        let bad_regex = silence(vec![matcher("service", "(", true, true)]).unwrap_err();
        assert_eq!(bad_regex.field, "matchers[0].value");
        let bad_name = silence(vec![matcher("bad name", "x", false, true)]).unwrap_err();
        assert_eq!(bad_name.field, "matchers[0].name");
    }

    #[test]
    fn the_hostile_silence_of_issue_18_is_refused_naming_the_limit() {
        // 32 matchers of \w{20}: 1.1 MiB of regex each, 36 MiB a silence before the limits.
        let hostile: Vec<Matcher> = (0..32)
            .map(|_| matcher("service", "\\w{20}", true, true))
            .collect();
        let error = silence(hostile).unwrap_err();
        assert_eq!(error.field, "matchers[0].value");
        assert!(error.why.contains("MAX_REGEX_BYTES"), "{}", error.why);
        // The same shape with ASCII classes is small and accepted.
        let ascii: Vec<Matcher> = (0..32)
            .map(|_| matcher("service", "[A-Za-z0-9_]{20}", true, true))
            .collect();
        let accepted = silence(ascii).unwrap();
        assert!(accepted.regex_bytes() <= MAX_SILENCE_REGEX_BYTES);
        // Pathological repetition is refused while the NFA is built, not after.
        let huge = silence(vec![matcher("service", "\\w{1000}{1000}", true, true)]).unwrap_err();
        assert!(huge.why.contains("MAX_REGEX_BYTES"), "{}", huge.why);
    }

    #[test]
    fn one_silence_s_regular_expressions_share_one_budget() {
        // Each fits MAX_REGEX_BYTES on its own (about 275 KiB); 32 of them do not fit a silence.
        let one = compile_matcher(&matcher("service", "\\w{5}", true, true), "matchers[0]")
            .unwrap()
            .regex_bytes();
        assert!(one <= MAX_REGEX_BYTES);
        let per_silence = MAX_SILENCE_REGEX_BYTES / one;
        assert!(per_silence < MAX_MATCHERS);
        let many: Vec<Matcher> = (0..MAX_MATCHERS)
            .map(|_| matcher("service", "\\w{5}", true, true))
            .collect();
        let error = silence(many).unwrap_err();
        assert_eq!(error.field, "matchers");
        assert!(
            error.why.contains("MAX_SILENCE_REGEX_BYTES"),
            "{}",
            error.why
        );
        assert!(
            error.why.contains(&format!("matchers[{per_silence}]")),
            "{}",
            error.why
        );
        let within: Vec<Matcher> = (0..per_silence)
            .map(|_| matcher("service", "\\w{5}", true, true))
            .collect();
        let accepted = silence(within).unwrap();
        assert!(accepted.regex_bytes() <= MAX_SILENCE_REGEX_BYTES);
        // Common expressions stay well inside.
        for common in [
            "\\w+",
            "(foo|bar|baz)-\\d+",
            "(?i)edge-cam.*",
            "warning|critical",
        ] {
            assert!(
                compile_matcher(&matcher("m", common, true, true), "m").is_ok(),
                "{common}"
            );
        }
    }

    #[test]
    fn matcher_counts_and_lengths_are_bounded_naming_the_limit() {
        let too_many: Vec<Matcher> = (0..=MAX_MATCHERS)
            .map(|_| matcher("service", "api", false, true))
            .collect();
        let error = silence(too_many).unwrap_err();
        assert_eq!(error.field, "matchers");
        assert!(error.why.contains("MAX_MATCHERS"), "{}", error.why);
        let long = "a".repeat(MAX_VALUE_CHARS + 1);
        let error = silence(vec![matcher("service", &long, false, true)]).unwrap_err();
        assert_eq!(error.field, "matchers[0].value");
        assert!(
            error.why.contains("MAX_MATCHER_VALUE_CHARS"),
            "{}",
            error.why
        );
    }

    #[test]
    fn silences_are_in_force_between_start_and_end() {
        let now = Utc::now();
        let mut silences = Silences::default();
        let pending = Compiled::from_input(
            SilenceIn {
                matchers: vec![matcher("service", "api", false, true)],
                starts_at: Some(now + chrono::Duration::minutes(10)),
                ends_at: now + chrono::Duration::minutes(20),
                comment: "later".into(),
                created_by: None,
            },
            now,
        )
        .unwrap();
        assert_eq!(pending.silence.state, SilenceState::Pending);
        silences.add(pending);
        let api = incident("api", &[]);
        assert_eq!(silences.matching(&api, now), None);
        let during = now + chrono::Duration::minutes(15);
        assert!(silences.matching(&api, during).is_some());
        assert!(silences.tick(during));
        assert!(silences.tick(now + chrono::Duration::minutes(21)));
        assert!(silences.is_empty());
    }
}
