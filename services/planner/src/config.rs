//! The planner's own settings, read from the environment like every role's.
//!
//! Where the watcher, the synthesizer and the archivist are (WATCHER_URL, SYNTHESIZER_URL,
//! ARCHIVIST_URL) is the kit's `CoreConfig::peers`; what is here is the planner's alone.
//! A bad value, or a RULES_FILE that does not pass its checks, names its variable and ends
//! the process with exit code 2.

use std::path::PathBuf;
use std::time::Duration;

use obs_core::config::{self, ConfigError, Seconds};
use serde::Deserialize;

use crate::rules::Rules;

/// REMEDIATE_COOLDOWN_SECONDS: none at all, up to a week. Anything longer is a typo.
pub const COOLDOWN: Seconds = Seconds::new(0.0, 7.0 * 24.0 * 3600.0);

#[derive(Debug, Clone)]
pub struct PlannerConfig {
    /// RULES_FILE: YAML rules that replace and extend the built-in ones.
    pub rules_file: Option<PathBuf>,
    pub remediation: RemediationSettings,
    /// CLOSED_PLANS_MAX: closed plans kept; the longest closed are pruned beyond it.
    pub closed_plans_max: usize,
}

#[derive(Debug, Clone, Copy)]
pub struct RemediationSettings {
    /// AUTO_REMEDIATE: run safe steps (container restarts) through the watcher.
    pub enabled: bool,
    /// REMEDIATE_COOLDOWN_SECONDS: at most one restart per container within this time.
    pub cooldown: Duration,
    /// REMEDIATE_MAX_ATTEMPTS: restarts per plan, over all its reopenings.
    pub max_attempts: u32,
}

#[derive(Debug, Deserialize)]
struct RawPlannerEnv {
    rules_file: Option<String>,
    #[serde(default)]
    auto_remediate: Option<String>,
    #[serde(default = "default_cooldown")]
    remediate_cooldown_seconds: f64,
    #[serde(default = "default_max_attempts")]
    remediate_max_attempts: u32,
    #[serde(default = "default_closed_plans_max")]
    closed_plans_max: usize,
}

fn default_cooldown() -> f64 {
    300.0
}
fn default_max_attempts() -> u32 {
    3
}
fn default_closed_plans_max() -> usize {
    10_000
}

impl PlannerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawPlannerEnv = config::from_env()?;
        let cooldown =
            COOLDOWN.setting("REMEDIATE_COOLDOWN_SECONDS", raw.remediate_cooldown_seconds)?;
        if raw.remediate_max_attempts == 0 {
            return Err(ConfigError::new(
                "REMEDIATE_MAX_ATTEMPTS: must be at least 1 (AUTO_REMEDIATE=0 turns remediation off)",
            ));
        }
        if raw.closed_plans_max == 0 {
            return Err(ConfigError::new("CLOSED_PLANS_MAX: must be at least 1"));
        }
        Ok(PlannerConfig {
            rules_file: raw
                .rules_file
                .filter(|path| !path.trim().is_empty())
                .map(PathBuf::from),
            remediation: RemediationSettings {
                enabled: switch("AUTO_REMEDIATE", raw.auto_remediate.as_deref())?,
                cooldown,
                max_attempts: raw.remediate_max_attempts,
            },
            closed_plans_max: raw.closed_plans_max,
        })
    }

    /// The defaults, built-in rules only, remediation off: what tests start from.
    pub fn for_tests() -> Self {
        PlannerConfig {
            rules_file: None,
            remediation: RemediationSettings {
                enabled: false,
                cooldown: Duration::from_secs_f64(default_cooldown()),
                max_attempts: default_max_attempts(),
            },
            closed_plans_max: default_closed_plans_max(),
        }
    }

    /// The effective rules: the built-in ones with RULES_FILE's merged in.
    pub fn load_rules(&self) -> Result<Rules, ConfigError> {
        Rules::load(self.rules_file.as_deref())
    }
}

/// An on/off variable: 1/0, true/false, yes/no, on/off; unset is off.
fn switch(variable: &str, value: Option<&str>) -> Result<bool, ConfigError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None | Some("" | "0" | "false" | "no" | "off") => Ok(false),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some(other) => Err(ConfigError::new(format!(
            "{variable}: '{other}' is not one of 0, 1, true, false, yes, no, on, off"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_read_the_usual_spellings_and_name_their_variable() {
        assert!(!switch("AUTO_REMEDIATE", None).unwrap());
        assert!(switch("AUTO_REMEDIATE", Some("On")).unwrap());
        assert!(!switch("AUTO_REMEDIATE", Some("0")).unwrap());
        let error = switch("AUTO_REMEDIATE", Some("maybe")).unwrap_err();
        assert!(error.to_string().contains("AUTO_REMEDIATE: 'maybe'"));
    }
}
