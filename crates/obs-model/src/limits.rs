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

/// Marks where a sender cut a text to fit a receiver's limit.
pub const CUT_MARKER: &str = "…";

/// A short, stable tag of a whole value (FNV-1a, 32 bits, 8 hex digits): kept at the end of a
/// cut value so that two values that differ only past the cut stay apart.
fn tag(value: &str) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in value.bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    format!("{hash:08x}")
}

/// `value` as a receiver takes it in a text field of at most `max` characters: control
/// characters other than newline and tab become spaces, and a longer value is cut, ending
/// with `…` and the whole value's [`tag`]. What fits is returned unchanged.
pub fn fit_text(value: &str, max: usize) -> String {
    let clean: String = value
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let suffix = format!("{CUT_MARKER}{}", tag(value));
    let keep = max.saturating_sub(suffix.chars().count());
    clean.chars().take(keep).chain(suffix.chars()).collect()
}

/// Whether `c` may appear in a name (service names, label names).
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')
}

/// `value` as a receiver takes it as a name: other characters become `_`, an empty name is
/// `unnamed`, and a name longer than [`MAX_NAME_CHARS`] is cut, ending with `@` and the whole
/// value's [`tag`] (names allow no `…`).
pub fn fit_name(value: &str) -> String {
    let clean: String = value
        .chars()
        .map(|c| if is_name_char(c) { c } else { '_' })
        .collect();
    if clean.is_empty() {
        return "unnamed".into();
    }
    if clean.chars().count() <= MAX_NAME_CHARS {
        return clean;
    }
    let suffix = format!("@{}", tag(value));
    let keep = MAX_NAME_CHARS - suffix.len();
    clean.chars().take(keep).chain(suffix.chars()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_fits_is_unchanged() {
        assert_eq!(fit_text("db down\n\tsince 3", 100), "db down\n\tsince 3");
        assert_eq!(fit_name("web-1.prod:8080"), "web-1.prod:8080");
    }

    #[test]
    fn long_values_are_cut_with_a_marker_and_stay_apart() {
        let url = format!("http://probe.example/{}", "x".repeat(300));
        let fitted = fit_text(&url, MAX_SUBJECT_CHARS);
        assert_eq!(fitted.chars().count(), MAX_SUBJECT_CHARS);
        assert!(fitted.starts_with("http://probe.example/xxx"));
        assert!(fitted.contains(CUT_MARKER));
        let other = fit_text(&format!("{url}y"), MAX_SUBJECT_CHARS);
        assert_ne!(fitted, other, "values differing past the cut stay apart");
        assert_eq!(
            fitted,
            fit_text(&url, MAX_SUBJECT_CHARS),
            "the same value, the same cut"
        );

        let container = "c".repeat(157);
        let name = fit_name(&container);
        assert_eq!(name.chars().count(), MAX_NAME_CHARS);
        assert!(name.chars().all(is_name_char), "{name}");
    }

    #[test]
    fn what_receivers_refuse_is_replaced() {
        assert_eq!(fit_text("a\u{1b}[31mred\r", 100), "a [31mred ");
        assert_eq!(fit_name("my app/1"), "my_app_1");
        assert_eq!(fit_name(""), "unnamed");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        /// Any text, weighted towards control and multi-byte characters and long runs.
        fn value() -> impl Strategy<Value = String> {
            prop_oneof![
                proptest::collection::vec(any::<char>(), 0..300).prop_map(String::from_iter),
                "[a-z0-9 _./:@-]{0,140}",
                (
                    prop::sample::select(vec!['x', 'é', '…', '\u{1b}', '\n', '\t', '\r', '😀']),
                    0usize..300
                )
                    .prop_map(|(c, n)| std::iter::repeat_n(c, n).collect()),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(256))]

            /// A fitted name is a name: 1 to MAX_NAME_CHARS name characters; a name stays as it
            /// is, and fitting twice changes nothing.
            #[test]
            fn fitted_names_are_names(value in value()) {
                let name = fit_name(&value);
                prop_assert!(!name.is_empty() && name.chars().count() <= MAX_NAME_CHARS, "{name:?}");
                prop_assert!(name.chars().all(is_name_char), "{name:?}");
                prop_assert_eq!(fit_name(&name), name.clone());
                let is_name = !value.is_empty()
                    && value.chars().count() <= MAX_NAME_CHARS
                    && value.chars().all(is_name_char);
                if is_name {
                    prop_assert_eq!(name, value);
                }
            }

            /// A fitted text keeps within `max` characters and has no control characters
            /// other than newline and tab; what fits is unchanged; fitting is stable.
            #[test]
            fn fitted_texts_fit(value in value(), max in prop_oneof![Just(16usize), Just(MAX_NAME_CHARS), Just(MAX_SUBJECT_CHARS)]) {
                let text = fit_text(&value, max);
                prop_assert!(text.chars().count() <= max);
                prop_assert!(!text.chars().any(|c| c.is_control() && c != '\n' && c != '\t'));
                prop_assert_eq!(fit_text(&text, max), text.clone());
                let fits = value.chars().count() <= max
                    && !value.chars().any(|c| c.is_control() && c != '\n' && c != '\t');
                if fits {
                    prop_assert_eq!(text, value);
                }
            }
        }
    }
}
