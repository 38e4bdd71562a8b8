//! The curator's own settings, read from the environment like every role's.
//!
//! Where the other roles are (PLANNER_URL, ARCHIVIST_URL, WATCHER_URL) is the kit's
//! `CoreConfig::peers`, shared by every role; what is here is the curator's alone. Durations
//! are seconds and may be fractional. Everything is read as plain strings and numbers and
//! checked here, so a bad value names its variable.

use std::time::Duration;

use obs_core::config::{self, ConfigError, Seconds};
use serde::Deserialize;

/// The range of each duration setting (docs/configuration.md lists them): no timer gets a
/// period of nothing, no window is longer than a year.
pub mod bounds {
    use super::Seconds;

    const DAY: f64 = 24.0 * 3600.0;
    pub const GOALS_CHECK_INTERVAL: Seconds = Seconds::new(0.1, DAY);
    pub const FLAP_WINDOW: Seconds = Seconds::new(1.0, 7.0 * DAY);
    pub const FLAP_SETTLE: Seconds = Seconds::new(1.0, 7.0 * DAY);
    pub const RESOLVED_INCIDENTS_MAX_AGE: Seconds = Seconds::new(1.0, 366.0 * DAY);
    pub const STATE_FLUSH_INTERVAL: Seconds = Seconds::new(0.01, 60.0);
    pub const HOUSEKEEPING_INTERVAL: Seconds = Seconds::new(0.01, 3600.0);
}

#[derive(Debug, Clone)]
pub struct CuratorConfig {
    /// GOALS_CHECK_INTERVAL: how often the watcher is asked.
    pub goals_check_interval: Duration,
    pub flapping: FlappingSettings,
    /// RESOLVED_INCIDENTS_MAX: resolved incidents kept; the oldest are pruned beyond it.
    pub resolved_max: usize,
    /// RESOLVED_INCIDENTS_MAX_AGE: resolved incidents older than this are pruned.
    pub resolved_max_age: Duration,
    /// MAX_INCIDENTS: unresolved incidents at most; signals that would open more are
    /// refused with 503 (the sender retries) until some resolve.
    pub max_incidents: usize,
    /// MAX_SILENCES: silences that have not ended, at most.
    pub max_silences: usize,
    /// STATE_FLUSH_INTERVAL: how often repeats (count, last_seen) reach the disk; lifecycle
    /// changes are durable before the request that caused them is answered.
    pub state_flush_interval: Duration,
    /// HOUSEKEEPING_INTERVAL: how often silences are expired, flapping incidents settled and
    /// old resolved incidents pruned.
    pub housekeeping_interval: Duration,
}

#[derive(Debug, Clone, Copy)]
pub struct FlappingSettings {
    /// FLAP_THRESHOLD: reopens within FLAP_WINDOW that make an incident flapping.
    pub threshold: usize,
    /// FLAP_WINDOW.
    pub window: Duration,
    /// FLAP_SETTLE: a flapping incident settles after this long without opening or resolving.
    pub settle: Duration,
}

#[derive(Debug, Deserialize)]
struct RawCuratorEnv {
    #[serde(default = "default_goals_check_interval")]
    goals_check_interval: f64,
    #[serde(default = "default_flap_threshold")]
    flap_threshold: usize,
    #[serde(default = "default_flap_window")]
    flap_window: f64,
    #[serde(default = "default_flap_settle")]
    flap_settle: f64,
    #[serde(default = "default_resolved_max")]
    resolved_incidents_max: usize,
    #[serde(default = "default_resolved_max_age")]
    resolved_incidents_max_age: f64,
    #[serde(default = "default_max_incidents")]
    max_incidents: usize,
    #[serde(default = "default_max_silences")]
    max_silences: usize,
    #[serde(default = "default_state_flush_interval")]
    state_flush_interval: f64,
    #[serde(default = "default_housekeeping_interval")]
    housekeeping_interval: f64,
}

fn default_goals_check_interval() -> f64 {
    30.0
}
fn default_flap_threshold() -> usize {
    3
}
fn default_flap_window() -> f64 {
    600.0
}
fn default_flap_settle() -> f64 {
    300.0
}
fn default_resolved_max() -> usize {
    10_000
}
fn default_resolved_max_age() -> f64 {
    7.0 * 24.0 * 3600.0
}
fn default_max_incidents() -> usize {
    50_000
}
fn default_max_silences() -> usize {
    1000
}
fn default_state_flush_interval() -> f64 {
    1.0
}
fn default_housekeeping_interval() -> f64 {
    1.0
}

impl CuratorConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawCuratorEnv = config::from_env()?;
        Ok(CuratorConfig {
            goals_check_interval: bounds::GOALS_CHECK_INTERVAL
                .setting("GOALS_CHECK_INTERVAL", raw.goals_check_interval)?,
            flapping: FlappingSettings {
                threshold: at_least_one("FLAP_THRESHOLD", raw.flap_threshold)?,
                window: bounds::FLAP_WINDOW.setting("FLAP_WINDOW", raw.flap_window)?,
                settle: bounds::FLAP_SETTLE.setting("FLAP_SETTLE", raw.flap_settle)?,
            },
            resolved_max: raw.resolved_incidents_max,
            resolved_max_age: bounds::RESOLVED_INCIDENTS_MAX_AGE
                .setting("RESOLVED_INCIDENTS_MAX_AGE", raw.resolved_incidents_max_age)?,
            max_incidents: at_least_one("MAX_INCIDENTS", raw.max_incidents)?,
            max_silences: at_least_one("MAX_SILENCES", raw.max_silences)?,
            state_flush_interval: bounds::STATE_FLUSH_INTERVAL
                .setting("STATE_FLUSH_INTERVAL", raw.state_flush_interval)?,
            housekeeping_interval: bounds::HOUSEKEEPING_INTERVAL
                .setting("HOUSEKEEPING_INTERVAL", raw.housekeeping_interval)?,
        })
    }

    /// The defaults with nothing wired and quick background ticks: what tests start from.
    pub fn for_tests() -> Self {
        CuratorConfig {
            goals_check_interval: Duration::from_millis(100),
            flapping: FlappingSettings {
                threshold: default_flap_threshold(),
                window: Duration::from_secs_f64(default_flap_window()),
                settle: Duration::from_secs_f64(default_flap_settle()),
            },
            resolved_max: default_resolved_max(),
            resolved_max_age: Duration::from_secs_f64(default_resolved_max_age()),
            max_incidents: default_max_incidents(),
            max_silences: default_max_silences(),
            state_flush_interval: Duration::from_millis(100),
            housekeeping_interval: Duration::from_millis(50),
        }
    }
}

fn at_least_one(variable: &str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(format!("{variable}: must be at least 1")));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_counts_name_their_variable() {
        assert!(bounds::FLAP_WINDOW
            .setting("FLAP_WINDOW", 0.0)
            .unwrap_err()
            .to_string()
            .contains("FLAP_WINDOW"));
        for range in [
            bounds::GOALS_CHECK_INTERVAL,
            bounds::FLAP_WINDOW,
            bounds::FLAP_SETTLE,
            bounds::RESOLVED_INCIDENTS_MAX_AGE,
            bounds::STATE_FLUSH_INTERVAL,
            bounds::HOUSEKEEPING_INTERVAL,
        ] {
            // Nothing that rounds to zero (a timer's period) or overflows a deadline.
            for bad in [0.0, 1e-300, 1e-10, -1.0, f64::NAN, f64::INFINITY, 1e300] {
                assert!(range.check(bad).is_err(), "{bad} in {range:?}");
            }
        }
        assert_eq!(
            bounds::STATE_FLUSH_INTERVAL.check(0.25).unwrap(),
            Duration::from_millis(250)
        );
        assert!(at_least_one("FLAP_THRESHOLD", 0)
            .unwrap_err()
            .to_string()
            .contains("FLAP_THRESHOLD"));
    }
}
