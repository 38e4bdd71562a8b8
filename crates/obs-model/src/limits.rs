//! How much one request may make a role hold: the bounds on names, texts, alerts and
//! silences, defined once so that receivers check them and senders can apply them before
//! sending. docs/configuration.md lists them in one table ("Input and response limits"); a
//! value past a limit is refused with a 400 naming the field and the limit.

/// Service and person names (`service`, `acknowledged_by`, `created_by`, label names).
pub const MAX_NAME_CHARS: usize = 128;
/// Subjects: container names, probe targets, alert names.
pub const MAX_SUBJECT_CHARS: usize = 256;
/// Messages and recommendations.
pub const MAX_TEXT_CHARS: usize = 4096;
/// Facts of one issue.
pub const MAX_FACTS: usize = 64;

/// Labels of one alert (Alertmanager payloads).
pub const MAX_ALERT_LABELS: usize = 64;
/// Characters of one label value.
pub const MAX_LABEL_VALUE_CHARS: usize = 1024;
/// Characters of a URL kept with an alert (Alertmanager's `generatorURL`, the Prometheus
/// graph of its expression, which long expressions make long).
pub const MAX_URL_CHARS: usize = 8192;
/// Annotations of one alert.
pub const MAX_ALERT_ANNOTATIONS: usize = 64;
/// Characters of one annotation value.
pub const MAX_ANNOTATION_CHARS: usize = 16 * 1024;

/// Matchers of one silence.
pub const MAX_MATCHERS: usize = 32;
/// Characters of one matcher's value (a literal or a regular expression).
pub const MAX_MATCHER_VALUE_CHARS: usize = 1024;
/// A silence's or an acknowledgement's comment.
pub const MAX_COMMENT_CHARS: usize = 1024;
/// Memory one compiled regular expression may take. Unicode classes are large: `\w+` takes
/// about 56 KiB, `\w{5}` 275 KiB, and `\w{20}` (1.1 MiB) is refused; `[A-Za-z0-9_]{20}` takes
/// 7 KiB.
pub const MAX_REGEX_BYTES: usize = 512 * 1024;
/// Memory all the regular expressions of one silence may take together, so a silence costs
/// at most about this much however its matchers are written.
pub const MAX_SILENCE_REGEX_BYTES: usize = 1024 * 1024;
/// The lazy DFA cache of one compiled regular expression (per thread that matches with it);
/// past it the matcher falls back to a slower engine rather than growing.
pub const MAX_REGEX_CACHE_BYTES: usize = 64 * 1024;
