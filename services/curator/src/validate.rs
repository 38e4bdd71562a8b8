//! Bounds on what clients send, and the one error every check returns: the field (a path
//! like `[3].service` or `alerts[0].labels.alertname`) and what is wrong with it.
//!
//! The name rules are the watcher's (it validates the same services before they get here),
//! so a service the watcher accepts is one the curator accepts.

use obs_core::ApiError;
use serde::de::DeserializeOwned;

// The bounds themselves are obs-model's, shared with the senders.
pub use obs_model::limits::{MAX_FACTS, MAX_NAME_CHARS, MAX_SUBJECT_CHARS, MAX_TEXT_CHARS};

/// A bound and the name a refusal gives it (the name in docs/configuration.md's table), so a
/// client reads which limit it hit: `limit!(MAX_TEXT_CHARS)`.
pub type Limit = (usize, &'static str);

macro_rules! limit {
    ($name:ident) => {
        ($name, stringify!($name))
    };
}
pub(crate) use limit;

/// An invalid field: where and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub why: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, why: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            why: why.into(),
        }
    }

    /// The same error one level down: `service` inside item 3 becomes `[3].service`.
    pub fn within(self, prefix: &str) -> Self {
        let field = if self.field.is_empty() {
            prefix.to_string()
        } else if self.field.starts_with('[') {
            format!("{prefix}{}", self.field)
        } else {
            format!("{prefix}.{}", self.field)
        };
        FieldError { field, ..self }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.why)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        let field = if error.field.is_empty() {
            "request body"
        } else {
            &error.field
        };
        ApiError::invalid_field(field, error.why)
    }
}

/// Deserialize JSON text into `T`, naming the field that did not fit (obs-core's parser, the
/// one every role's JSON bodies go through).
pub fn parse<T: DeserializeOwned>(json: &str) -> Result<T, FieldError> {
    obs_core::json::from_str(json).map_err(|error| FieldError::new(error.path, error.why))
}

/// A client's value quoted in a refusal: at most 64 characters, so an error never echoes a
/// body's megabyte back.
pub fn shown(value: &str) -> String {
    const MAX_SHOWN: usize = 64;
    match value.char_indices().nth(MAX_SHOWN) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_string(),
    }
}

/// A name: 1 to 128 characters from letters, digits and `-_.:@`. No spaces, no `/` (it
/// separates the parts of a fingerprint).
pub fn name(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let length = value.chars().count();
    if length > MAX_NAME_CHARS {
        return Err(format!(
            "is {length} characters long; at most {MAX_NAME_CHARS} are allowed (MAX_NAME_CHARS)"
        ));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '@')))
    {
        return Err(format!(
            "contains {bad:?}; only letters, digits and - _ . : @ are allowed"
        ));
    }
    Ok(())
}

/// A Prometheus label name: `[A-Za-z_][A-Za-z0-9_]*`, at most 128 characters.
pub fn label_name(value: &str) -> Result<(), String> {
    let mut chars = value.chars();
    let valid = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid || value.len() > MAX_NAME_CHARS {
        return Err(format!(
            "'{}' is not a label name ([A-Za-z_][A-Za-z0-9_]*, at most {MAX_NAME_CHARS} characters: MAX_NAME_CHARS)",
            shown(value)
        ));
    }
    Ok(())
}

/// Free text of at most `max` characters (the limit named `limit`), without control
/// characters other than newline and tab.
pub fn text(value: &str, (max, limit): Limit) -> Result<(), String> {
    // Byte length bounds character count from above: most text skips the count.
    if value.len() > max {
        let length = value.chars().count();
        if length > max {
            return Err(format!(
                "is {length} characters long; at most {max} are allowed ({limit})"
            ));
        }
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_label_names_are_bounded_and_plain() {
        assert!(name("edge-cam01").is_ok());
        assert!(name("").is_err());
        assert!(name("a/b").is_err());
        assert!(name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(label_name("alertname").is_ok());
        assert!(label_name("_x1").is_ok());
        assert!(label_name("1x").is_err());
        assert!(label_name("a-b").is_err());
        assert!(label_name("").is_err());
    }

    #[test]
    fn text_is_bounded() {
        assert!(text("line one\nline two", (100, "MAX")).is_ok());
        assert!(text("bell\u{7}", (100, "MAX")).is_err());
        assert!(text(&"é".repeat(11), (10, "MAX")).is_err());
        assert!(text(&"é".repeat(10), (10, "MAX")).is_ok());
    }

    #[test]
    fn parse_errors_name_the_path() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct Inner {
            count: u64,
        }
        let error = parse::<Vec<Inner>>(r#"[{"count": 1}, {"count": "x"}]"#).unwrap_err();
        assert_eq!(error.field, "[1].count");
        assert!(error.why.contains("invalid type"), "{}", error.why);
        assert!(!error.why.contains("line 1"), "{}", error.why);
        let error = parse::<Vec<Inner>>(r#"[{}]"#).unwrap_err();
        assert_eq!(error.field, "[0]");
        assert!(error.why.contains("missing field `count`"), "{}", error.why);
        assert_eq!(
            FieldError::new("service", "bad").within("[3]").field,
            "[3].service"
        );
        assert_eq!(FieldError::new("", "bad").within("[3]").field, "[3]");
    }
}
