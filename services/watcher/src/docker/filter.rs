//! Which containers the watcher follows. On a shared engine most containers are someone
//! else's: DOCKER_INCLUDE_LABELS / DOCKER_EXCLUDE_LABELS (`key` or `key=value`) and
//! DOCKER_INCLUDE_NAMES / DOCKER_EXCLUDE_NAMES (glob patterns: `*` any run of characters,
//! `?` one), each a comma-separated list.
//!
//! A container is followed when it matches an entry of each include list that is set, and
//! no entry of either exclude list. With nothing set, every container is followed.

use std::collections::HashMap;

use obs_core::config::ConfigError;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerFilter {
    include_labels: Vec<LabelMatch>,
    exclude_labels: Vec<LabelMatch>,
    include_names: Vec<String>,
    exclude_names: Vec<String>,
}

/// `key` (the label is there, whatever its value) or `key=value`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LabelMatch {
    key: String,
    value: Option<String>,
}

impl LabelMatch {
    fn matches(&self, labels: &HashMap<String, String>) -> bool {
        labels
            .get(&self.key)
            .is_some_and(|value| self.value.as_ref().is_none_or(|want| want == value))
    }
}

impl ContainerFilter {
    /// From the four variables' values (empty: not set).
    pub fn parse(
        include_labels: &str,
        exclude_labels: &str,
        include_names: &str,
        exclude_names: &str,
    ) -> Result<Self, ConfigError> {
        Ok(ContainerFilter {
            include_labels: labels("DOCKER_INCLUDE_LABELS", include_labels)?,
            exclude_labels: labels("DOCKER_EXCLUDE_LABELS", exclude_labels)?,
            include_names: names(include_names),
            exclude_names: names(exclude_names),
        })
    }

    /// Whether the container named `name` (without Docker's leading `/`) with `labels` is
    /// followed.
    pub fn admits(&self, name: &str, labels: &HashMap<String, String>) -> bool {
        let name = name.trim_start_matches('/');
        let included = (self.include_labels.is_empty()
            || self.include_labels.iter().any(|m| m.matches(labels)))
            && (self.include_names.is_empty()
                || self
                    .include_names
                    .iter()
                    .any(|glob| glob_matches(glob, name)));
        included
            && !self.exclude_labels.iter().any(|m| m.matches(labels))
            && !self
                .exclude_names
                .iter()
                .any(|glob| glob_matches(glob, name))
    }
}

fn entries(text: &str) -> impl Iterator<Item = &str> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
}

fn labels(variable: &str, text: &str) -> Result<Vec<LabelMatch>, ConfigError> {
    entries(text)
        .map(|entry| {
            let (key, value) = match entry.split_once('=') {
                Some((key, value)) => (key.trim(), Some(value.trim().to_string())),
                None => (entry, None),
            };
            if key.is_empty() {
                return Err(ConfigError::new(format!(
                    "{variable}: '{entry}' has no label key (key or key=value)"
                )));
            }
            Ok(LabelMatch {
                key: key.to_string(),
                value,
            })
        })
        .collect()
}

fn names(text: &str) -> Vec<String> {
    entries(text).map(str::to_string).collect()
}

/// `*` matches any run of characters (none included), `?` exactly one; the rest itself.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it has been tried up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and try again from there.
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    star = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels_of(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(glob_matches("web-*", "web-1"));
        assert!(glob_matches("web-*", "web-"));
        assert!(!glob_matches("web-*", "api-1"));
        assert!(glob_matches("*-db", "orders-db"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "ac"));
        assert!(glob_matches("*a*b*", "xxaxxbxx"));
        assert!(!glob_matches("*a*b", "xxbxxa"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(glob_matches("*", ""));
    }

    #[test]
    fn includes_must_match_and_excludes_must_not() {
        let none = ContainerFilter::default();
        assert!(none.admits("anything", &HashMap::new()));

        let filter =
            ContainerFilter::parse("obs.watch, team=payments", "obs.ignore=true", "", "*-tmp")
                .unwrap();
        assert!(filter.admits("api", &labels_of(&[("obs.watch", "")])));
        assert!(filter.admits("/api", &labels_of(&[("team", "payments")])));
        assert!(!filter.admits("api", &labels_of(&[("team", "search")])));
        assert!(!filter.admits("api", &HashMap::new()));
        assert!(!filter.admits("api-tmp", &labels_of(&[("obs.watch", "1")])));
        assert!(!filter.admits(
            "api",
            &labels_of(&[("obs.watch", "1"), ("obs.ignore", "true")])
        ));
        assert!(filter.admits(
            "api",
            &labels_of(&[("obs.watch", "1"), ("obs.ignore", "false")])
        ));

        let names = ContainerFilter::parse("", "", "web-*,api", "").unwrap();
        assert!(names.admits("web-3", &HashMap::new()));
        assert!(names.admits("api", &HashMap::new()));
        assert!(!names.admits("db", &HashMap::new()));
    }

    #[test]
    fn a_label_without_a_key_names_its_variable() {
        let error = ContainerFilter::parse("", "=x", "", "").unwrap_err();
        assert_eq!(
            error.to_string(),
            "configuration error: DOCKER_EXCLUDE_LABELS: '=x' has no label key (key or key=value)"
        );
    }
}
