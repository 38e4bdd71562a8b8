//! Alertmanager's matchers, shared by everything that selects incidents: the curator's
//! silences, `obsctl`'s `-m` flags and the synthesizer's notification routes.
//!
//! - [`parse`] / [`parse_list`]: amtool's text (`name=value`, `name!=value`, `name=~regex`,
//!   `name!~regex`; a value may be double-quoted with `\"`, `\\` and `\n` escapes), and a
//!   route's `{a="b", c=~"d"}` list.
//! - [`Compiled`]: a matcher ready to test, its regular expression anchored at both ends as
//!   Alertmanager anchors them, and bounded ([`MAX_REGEX_BYTES`]) so no pattern takes
//!   megabytes.
//! - [`Incident::label`]: the names an incident offers to matchers: `service`, `kind`,
//!   `subject`, `severity`, `source`, `fingerprint`, and any other name its alert label of
//!   that name (an absent label is the empty string, as in Alertmanager).

use regex_automata::meta::{self, Regex};

use crate::limits::{MAX_REGEX_BYTES, MAX_REGEX_CACHE_BYTES};
use crate::{Incident, Matcher};

/// The incident's own fields that matchers can name, besides its labels.
pub const FIELDS: [&str; 6] = [
    "service",
    "kind",
    "subject",
    "severity",
    "source",
    "fingerprint",
];

impl Incident {
    /// The value a matcher named `name` tests: one of [`FIELDS`], or the alert label of that
    /// name ("" when absent).
    pub fn label(&self, name: &str) -> &str {
        match name {
            "service" => self.service.as_str(),
            "kind" => self.kind.as_str(),
            "subject" => self.subject.as_str(),
            "severity" => self.severity.as_str(),
            "source" => self.source.as_str(),
            "fingerprint" => self.fingerprint.as_str(),
            label => self.labels.get(label).map(String::as_str).unwrap_or(""),
        }
    }

    /// Every name [`Incident::label`] answers with something, and its value: the fields, then
    /// the labels that do not share a field's name.
    pub fn label_set(&self) -> Vec<(&str, &str)> {
        let mut all: Vec<(&str, &str)> = FIELDS.iter().map(|f| (*f, self.label(f))).collect();
        for (name, value) in &self.labels {
            if !FIELDS.contains(&name.as_str()) {
                all.push((name.as_str(), value.as_str()));
            }
        }
        all
    }
}

/// `name=value`, `name!=value`, `name=~regex`, `name!~regex` (amtool's syntax); the value may
/// be wrapped in double quotes, inside which `\"`, `\\` and `\n` are escapes.
pub fn parse(text: &str) -> Result<Matcher, String> {
    let Some(at) = text.find(['=', '!', '~']) else {
        return Err(
            "no operator; write name=value, name!=value, name=~regex or name!~regex".into(),
        );
    };
    let name = text[..at].trim();
    let rest = &text[at..];
    let (operator, is_equal, is_regex) = [
        ("=~", true, true),
        ("!~", false, true),
        ("!=", false, false),
        ("=", true, false),
    ]
    .into_iter()
    .find(|(operator, _, _)| rest.starts_with(operator))
    .ok_or_else(|| "the operator must be one of = != =~ !~".to_string())?;
    if name.is_empty() {
        return Err(format!("no name before {operator}"));
    }
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!(
            "`{name}` is not a matcher name (letters, digits and _, not starting with a digit)"
        ));
    }
    let raw = rest[operator.len()..].trim();
    let value = match raw.strip_prefix('"') {
        Some(quoted) => unquote(quoted)
            .ok_or_else(|| format!("the value {raw} has an unescaped or missing double quote"))?,
        None => raw.to_string(),
    };
    Ok(Matcher {
        name: name.to_string(),
        value,
        is_regex,
        is_equal,
    })
}

/// The inside of a double-quoted value (after its opening quote): Alertmanager's escapes, a
/// backslash before anything else kept as it is; None if the closing quote is not last.
fn unquote(quoted: &str) -> Option<String> {
    let mut value = String::with_capacity(quoted.len());
    let mut chars = quoted.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => value.push('\n'),
                Some(escaped @ ('"' | '\\')) => value.push(escaped),
                Some(other) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            },
            '"' => return chars.peek().is_none().then_some(value),
            other => value.push(other),
        }
    }
    None
}

/// One entry of a route's `matchers:` list: one matcher, or several separated by commas
/// (outside quotes), optionally in braces, as Alertmanager reads them.
pub fn parse_list(text: &str) -> Result<Vec<Matcher>, String> {
    let inner = text.trim();
    let inner = inner.strip_prefix('{').unwrap_or(inner);
    let inner = inner.strip_suffix('}').unwrap_or(inner);
    let mut tokens = Vec::new();
    let (mut quoted, mut escaped, mut start) = (false, false, 0);
    for (at, c) in inner.char_indices() {
        match c {
            ',' if !quoted => {
                tokens.push(&inner[start..at]);
                start = at + 1;
            }
            '"' if !escaped => quoted = !quoted,
            _ => {}
        }
        escaped = c == '\\' && !escaped;
    }
    if !inner[start..].trim().is_empty() {
        tokens.push(&inner[start..]);
    }
    tokens.into_iter().map(parse).collect()
}

/// How a matcher reads on a command line or in a route, the inverse of [`parse`].
pub fn text(matcher: &Matcher) -> String {
    let operator = match (matcher.is_equal, matcher.is_regex) {
        (true, false) => "=",
        (false, false) => "!=",
        (true, true) => "=~",
        (false, true) => "!~",
    };
    let value = matcher
        .value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n");
    format!("{}{operator}\"{value}\"", matcher.name)
}

/// "1.1 MiB", "275 KiB": sizes in refusals, for people.
pub fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{} KiB", bytes.div_ceil(1024))
    }
}

#[derive(Debug, Clone)]
enum Test {
    Equal(String),
    Regex(Regex),
}

/// A matcher ready to test.
#[derive(Debug, Clone)]
pub struct Compiled {
    name: String,
    test: Test,
    equal: bool,
}

/// Compile an anchored regular expression within [`MAX_REGEX_BYTES`]. The NFA is bounded
/// while it is built (a pattern like `\w{1000}` never gets to allocate its megabytes), and
/// the lazy DFA's cache cannot grow past [`MAX_REGEX_CACHE_BYTES`]. The error says why (the
/// field is the caller's: the matcher's value).
fn compile_regex(pattern: &str) -> Result<Regex, String> {
    let anchored = format!("^(?:{pattern})$");
    let config = meta::Config::new()
        .nfa_size_limit(Some(MAX_REGEX_BYTES))
        .onepass_size_limit(Some(MAX_REGEX_BYTES))
        .dfa_size_limit(Some(MAX_REGEX_BYTES))
        .hybrid_cache_capacity(MAX_REGEX_CACHE_BYTES)
        // The bounded backtracker keeps a visited set of up to 256 KiB per expression and
        // thread; the PikeVM's state is proportional to the (bounded) NFA instead, and a
        // value to match is at most a label's length.
        .backtrack(false);
    let regex = meta::Builder::new()
        .configure(config)
        .build(&anchored)
        .map_err(|error| {
            if error.size_limit().is_some() {
                format!(
                    "the regular expression compiles to more than {} (MAX_REGEX_BYTES); \
                     write it with fewer repetitions or ASCII classes ([A-Za-z0-9_] rather than \\w)",
                    size(MAX_REGEX_BYTES)
                )
            } else {
                format!("is not a valid regular expression: {error}")
            }
        })?;
    let bytes = regex.memory_usage();
    if bytes > MAX_REGEX_BYTES {
        return Err(format!(
            "the regular expression takes {} compiled; at most {} are allowed (MAX_REGEX_BYTES)",
            size(bytes),
            size(MAX_REGEX_BYTES)
        ));
    }
    Ok(regex)
}

impl Compiled {
    /// Compile `matcher`; the error is about its value (a regular expression that is not
    /// valid or too large).
    pub fn new(matcher: &Matcher) -> Result<Self, String> {
        let test = if matcher.is_regex {
            Test::Regex(compile_regex(&matcher.value)?)
        } else {
            Test::Equal(matcher.value.clone())
        };
        Ok(Compiled {
            name: matcher.name.clone(),
            test,
            equal: matcher.is_equal,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Heap taken by the compiled regular expression, if any.
    pub fn regex_bytes(&self) -> usize {
        match &self.test {
            Test::Equal(_) => 0,
            Test::Regex(regex) => regex.memory_usage(),
        }
    }

    pub fn matches_value(&self, value: &str) -> bool {
        let found = match &self.test {
            Test::Equal(expected) => expected == value,
            Test::Regex(regex) => regex.is_match(value),
        };
        found == self.equal
    }

    /// Whether the value `labels` gives this matcher's name matches.
    pub fn matches_with<'a>(&self, labels: impl Fn(&str) -> &'a str) -> bool {
        self.matches_value(labels(&self.name))
    }

    pub fn matches(&self, incident: &Incident) -> bool {
        self.matches_value(incident.label(&self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(name: &str, value: &str, is_equal: bool, is_regex: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
            is_equal,
        }
    }

    #[test]
    fn quoted_values_take_alertmanagers_escapes() {
        assert_eq!(
            parse(r#"a="x\"y\\z\nw\.""#).unwrap(),
            matcher("a", "x\"y\\z\nw\\.", true, false)
        );
        assert!(parse(r#"a="x"y""#).is_err());
        assert!(parse(r#"a="x"#).is_err());
        let odd = matcher("a", "q\"\\\n", false, true);
        assert_eq!(parse(&text(&odd)).unwrap(), odd);
    }

    #[test]
    fn lists_split_on_commas_outside_quotes() {
        assert_eq!(
            parse_list(r#"{service="api", team=~"a,b" , x!="\"," }"#).unwrap(),
            vec![
                matcher("service", "api", true, false),
                matcher("team", "a,b", true, true),
                matcher("x", "\",", false, false),
            ]
        );
        assert_eq!(
            parse_list("severity=critical").unwrap(),
            vec![matcher("severity", "critical", true, false)]
        );
        assert!(parse_list("{service}").is_err());
    }

    #[test]
    fn compiled_matchers_are_anchored_and_bounded() {
        let compiled = Compiled::new(&matcher("service", "a.*", true, true)).unwrap();
        assert!(compiled.matches_value("api") && !compiled.matches_value("db-api"));
        let not = Compiled::new(&matcher("team", "", false, false)).unwrap();
        assert!(not.matches_with(|_| "blue") && !not.matches_with(|_| ""));
        assert!(Compiled::new(&matcher("a", "(", true, true))
            .unwrap_err()
            .contains("not a valid regular expression"));
        assert!(Compiled::new(&matcher("a", r"\w{1000}", true, true))
            .unwrap_err()
            .contains("MAX_REGEX_BYTES"));
    }
}
