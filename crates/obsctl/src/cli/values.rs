//! Values people type that clap cannot check alone: silence matchers in amtool's syntax and
//! durations like `2h` or `1h30m`. A bad one is a usage error (exit 2) naming the flag.

use std::time::Duration;

/// The longest `--for` accepted here; the curator has its own, shorter, limit.
const MAX_DURATION_SECONDS: u64 = 10 * 366 * 86_400;

// Matchers in amtool's syntax are obs-model's, shared with the curator and the synthesizer.
pub use obs_model::matcher::{parse as parse_matcher, text as matcher_text};

/// `90s`, `15m`, `2h`, `1h30m`, `3d`, `1w`: whole numbers, each with its unit.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err("is empty; write e.g. 30m, 2h or 1h30m".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in trimmed.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => {
                return Err(format!(
                    "`{c}` is not a unit (whole numbers with s, m, h, d or w; e.g. 1h30m)"
                ))
            }
        };
        if digits.is_empty() {
            return Err(format!("a number must come before `{c}`"));
        }
        let count: u64 = digits.parse().map_err(|_| "is too long".to_string())?;
        digits.clear();
        total = count
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .filter(|seconds| *seconds <= MAX_DURATION_SECONDS)
            .ok_or_else(|| "is too long".to_string())?;
    }
    if !digits.is_empty() {
        return Err(format!(
            "`{digits}` needs a unit (s, m, h, d or w; e.g. {digits}m)"
        ));
    }
    if total == 0 {
        return Err("must be longer than zero".into());
    }
    Ok(Duration::from_secs(total))
}

/// An RFC 3339 time (`2026-03-04T18:00:00Z`, `2026-03-04T19:00:00+01:00`).
pub fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|at| at.with_timezone(&chrono::Utc))
        .map_err(|error| format!("not an RFC 3339 time like 2026-03-04T18:00:00Z ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_model::Matcher;

    fn matcher(name: &str, value: &str, is_equal: bool, is_regex: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn matchers_take_the_four_operators() {
        assert_eq!(
            parse_matcher("service=api").unwrap(),
            matcher("service", "api", true, false)
        );
        assert_eq!(
            parse_matcher("service!=api").unwrap(),
            matcher("service", "api", false, false)
        );
        assert_eq!(
            parse_matcher("kind=~oom.*").unwrap(),
            matcher("kind", "oom.*", true, true)
        );
        assert_eq!(
            parse_matcher("severity!~warning|info").unwrap(),
            matcher("severity", "warning|info", false, true)
        );
    }

    #[test]
    fn matcher_values_may_be_quoted_empty_or_hold_operators() {
        assert_eq!(
            parse_matcher(r#"subject="api-1 (blue)""#).unwrap(),
            matcher("subject", "api-1 (blue)", true, false)
        );
        assert_eq!(
            parse_matcher("team=").unwrap(),
            matcher("team", "", true, false)
        );
        assert_eq!(
            parse_matcher("query=a=b").unwrap(),
            matcher("query", "a=b", true, false)
        );
        assert_eq!(
            parse_matcher(" service = api ").unwrap(),
            matcher("service", "api", true, false)
        );
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        assert!(parse_matcher("service")
            .unwrap_err()
            .contains("no operator"));
        assert!(parse_matcher("=api").unwrap_err().contains("no name"));
        assert!(parse_matcher("service!api")
            .unwrap_err()
            .contains("one of = != =~ !~"));
        assert!(parse_matcher("service~api").unwrap_err().contains("one of"));
        assert!(parse_matcher("1st=x")
            .unwrap_err()
            .contains("not a matcher name"));
        assert!(parse_matcher("my-label=x")
            .unwrap_err()
            .contains("not a matcher name"));
    }

    #[test]
    fn matchers_read_back_as_typed() {
        for text in [
            r#"service="api""#,
            r#"service!="api""#,
            r#"kind=~"oom.*""#,
            r#"kind!~"oom.*""#,
        ] {
            assert_eq!(matcher_text(&parse_matcher(text).unwrap()), text);
        }
    }

    #[test]
    fn durations_add_their_parts() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7_200));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5_400));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86_400));
        assert_eq!(
            parse_duration("1w2d").unwrap(),
            Duration::from_secs(9 * 86_400)
        );
    }

    #[test]
    fn bad_durations_say_what_is_wrong() {
        assert!(parse_duration("").unwrap_err().contains("empty"));
        assert!(parse_duration("90").unwrap_err().contains("needs a unit"));
        assert!(parse_duration("2x").unwrap_err().contains("not a unit"));
        assert!(parse_duration("1.5h").unwrap_err().contains("not a unit"));
        assert!(parse_duration("h")
            .unwrap_err()
            .contains("number must come before"));
        assert!(parse_duration("0m")
            .unwrap_err()
            .contains("longer than zero"));
        assert!(parse_duration("-1h").unwrap_err().contains("not a unit"));
        assert!(parse_duration("99999999999999999999h")
            .unwrap_err()
            .contains("too long"));
        assert!(parse_duration("20000d").unwrap_err().contains("too long"));
    }

    #[test]
    fn times_are_rfc3339_in_any_offset() {
        assert_eq!(
            parse_time("2026-03-04T19:00:00+01:00")
                .unwrap()
                .to_rfc3339(),
            "2026-03-04T18:00:00+00:00"
        );
        assert!(parse_time("tomorrow").unwrap_err().contains("RFC 3339"));
        assert!(parse_time("2026-03-04 18:00").is_err());
    }
}
