//! The synthesizer's own settings, read from the environment like every role's.
//!
//! Where the watcher and the archivist are (WATCHER_URL, ARCHIVIST_URL) is the kit's
//! `CoreConfig::peers`; what is here is the synthesizer's alone. Durations are seconds and
//! may be fractional. Everything is read as plain strings and numbers and checked here, so a
//! bad value names its variable.

use std::time::Duration;

use obs_core::config::{self, ConfigError, Seconds};
use obs_model::Severity;
use serde::Deserialize;

use crate::notify::route::Routing;

/// The range of each duration setting (docs/configuration.md lists them): no timer gets a
/// period of nothing, none is longer than a year.
pub mod bounds {
    use super::Seconds;

    const DAY: f64 = 24.0 * 3600.0;
    pub const NOTIFY_GROUP: Seconds = Seconds::new(0.01, 3600.0);
    /// 0 turns digests off; otherwise this range.
    pub const DIGEST_INTERVAL: Seconds = Seconds::new(1.0, 366.0 * DAY);
    pub const PEER_TIMEOUT: Seconds = Seconds::new(0.1, 300.0);
}
const SLACK_PREFIX: &str = "slack:";
const GENERIC_PREFIX: &str = "generic:";

#[derive(Debug, Clone)]
pub struct SynthesizerConfig {
    /// NOTIFY_WEBHOOKS: where notifications go (one route), unless NOTIFY_CONFIG is set.
    pub webhooks: Vec<Webhook>,
    /// NOTIFY_CONFIG: the routing tree read from its file; None: NOTIFY_WEBHOOKS.
    pub notify_config: Option<Routing>,
    /// NOTIFY_MIN_SEVERITY: incidents below it are not notified.
    pub notify_min_severity: Severity,
    /// NOTIFY_GROUP_SECONDS: changes arriving within this long of the first one go out
    /// together, as one message per webhook.
    pub notify_group: Duration,
    /// DIGEST_INTERVAL: how often the report is archived; None (0) turns it off.
    pub digest_interval: Option<Duration>,
    /// Whether DIGEST_INTERVAL was set, not defaulted: only then is a digest that cannot be
    /// archived (no ARCHIVIST_URL) worth a warning.
    pub digest_interval_set: bool,
    /// PEER_TIMEOUT_SECONDS: how long the watcher and the archivist get to answer before the
    /// page is drawn without them.
    pub peer_timeout: Duration,
    /// STATUS_EVENTS: recent events shown, 1 to 1000.
    pub status_events: usize,
    /// RESOLVED_PLANS_MAX: closed plans kept (for "resolved lately"); the oldest go first.
    pub resolved_plans_max: usize,
    /// MAX_OPEN_PLANS: open plans at most; a batch that would hold more is refused with 503.
    pub max_open_plans: usize,
}

/// How a webhook wants its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookKind {
    /// `{"text": "…"}`: Slack's incoming webhooks and the many chat tools that copy them.
    Slack,
    /// The grouped incidents as JSON (see docs/synthesizer.md).
    Generic,
}

impl WebhookKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookKind::Slack => "slack",
            WebhookKind::Generic => "generic",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub kind: WebhookKind,
    pub url: String,
}

#[derive(Debug, Deserialize)]
struct RawSynthesizerEnv {
    #[serde(default)]
    notify_webhooks: String,
    notify_config: Option<String>,
    #[serde(default = "default_min_severity")]
    notify_min_severity: String,
    #[serde(default = "default_group_seconds")]
    notify_group_seconds: f64,
    digest_interval: Option<f64>,
    #[serde(default = "default_peer_timeout")]
    peer_timeout_seconds: f64,
    #[serde(default = "default_status_events")]
    status_events: usize,
    #[serde(default = "default_resolved_plans_max")]
    resolved_plans_max: usize,
    #[serde(default = "default_max_open_plans")]
    max_open_plans: usize,
}

fn default_min_severity() -> String {
    "warning".into()
}
fn default_group_seconds() -> f64 {
    2.0
}
fn default_digest_interval() -> f64 {
    3600.0
}
fn default_peer_timeout() -> f64 {
    2.0
}
fn default_status_events() -> usize {
    20
}
fn default_resolved_plans_max() -> usize {
    1000
}
fn default_max_open_plans() -> usize {
    10_000
}

impl SynthesizerConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawSynthesizerEnv = config::from_env()?;
        let digest = raw.digest_interval.unwrap_or_else(default_digest_interval);
        let notify_group =
            bounds::NOTIFY_GROUP.setting("NOTIFY_GROUP_SECONDS", raw.notify_group_seconds)?;
        let webhooks = webhooks(&raw.notify_webhooks)?;
        let notify_config = notify_config(raw.notify_config.as_deref(), &webhooks, notify_group)?;
        Ok(SynthesizerConfig {
            webhooks,
            notify_config,
            notify_min_severity: severity(&raw.notify_min_severity)?,
            notify_group,
            digest_interval: if digest == 0.0 {
                None
            } else {
                Some(bounds::DIGEST_INTERVAL.setting("DIGEST_INTERVAL", digest)?)
            },
            digest_interval_set: raw.digest_interval.is_some(),
            peer_timeout: bounds::PEER_TIMEOUT
                .setting("PEER_TIMEOUT_SECONDS", raw.peer_timeout_seconds)?,
            status_events: within("STATUS_EVENTS", raw.status_events, 1, 1000)?,
            resolved_plans_max: raw.resolved_plans_max,
            max_open_plans: within("MAX_OPEN_PLANS", raw.max_open_plans, 1, usize::MAX)?,
        })
    }

    /// The defaults with nothing wired, quick grouping and no digest: what tests start from.
    pub fn for_tests() -> Self {
        SynthesizerConfig {
            webhooks: Vec::new(),
            notify_config: None,
            notify_min_severity: Severity::Warning,
            notify_group: Duration::from_millis(200),
            digest_interval: None,
            digest_interval_set: false,
            peer_timeout: Duration::from_secs(2),
            status_events: default_status_events(),
            resolved_plans_max: default_resolved_plans_max(),
            max_open_plans: default_max_open_plans(),
        }
    }
}

/// NOTIFY_WEBHOOKS: comma-separated URLs. `slack:<url>` (or a `hooks.slack.com` host) is
/// Slack-shaped, `generic:<url>` or a plain URL the generic JSON.
pub fn webhooks(text: &str) -> Result<Vec<Webhook>, ConfigError> {
    let mut found: Vec<Webhook> = Vec::new();
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (forced, url) = if let Some(url) = entry.strip_prefix(SLACK_PREFIX) {
            (Some(WebhookKind::Slack), url)
        } else if let Some(url) = entry.strip_prefix(GENERIC_PREFIX) {
            (Some(WebhookKind::Generic), url)
        } else {
            (None, entry)
        };
        let parsed = reqwest::Url::parse(url).ok().filter(|u| {
            matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        let Some(parsed) = parsed else {
            return Err(ConfigError::new(format!(
                "NOTIFY_WEBHOOKS: '{}' is not an http(s) URL (optionally prefixed slack: or generic:)",
                obs_core::redact::url(entry)
            )));
        };
        let kind = forced.unwrap_or(if parsed.host_str() == Some("hooks.slack.com") {
            WebhookKind::Slack
        } else {
            WebhookKind::Generic
        });
        let webhook = Webhook {
            kind,
            url: url.to_string(),
        };
        if found.iter().any(|known| known.url == webhook.url) {
            return Err(ConfigError::new(format!(
                "NOTIFY_WEBHOOKS: a webhook of {} is listed twice",
                obs_core::redact::origin(url)
            )));
        }
        found.push(webhook);
    }
    Ok(found)
}

/// NOTIFY_CONFIG: the routing file, read and checked now (one line naming the file, the
/// route and the field if anything is wrong). Setting NOTIFY_WEBHOOKS too is refused: two
/// places saying where notifications go would be one too many.
fn notify_config(
    path: Option<&str>,
    webhooks: &[Webhook],
    group: Duration,
) -> Result<Option<Routing>, ConfigError> {
    let Some(path) = path.map(str::trim).filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if !webhooks.is_empty() {
        return Err(ConfigError::new(
            "NOTIFY_CONFIG and NOTIFY_WEBHOOKS are both set: list the webhooks as receivers in \
             NOTIFY_CONFIG's file and unset NOTIFY_WEBHOOKS",
        ));
    }
    Routing::load(std::path::Path::new(path), group)
        .map(Some)
        .map_err(|why| ConfigError::new(format!("NOTIFY_CONFIG: {why}")))
}

fn severity(text: &str) -> Result<Severity, ConfigError> {
    match text.trim().to_ascii_lowercase().as_str() {
        "info" => Ok(Severity::Info),
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        _ => Err(ConfigError::new(format!(
            "NOTIFY_MIN_SEVERITY: '{text}' is not one of info, warning, critical"
        ))),
    }
}

fn within(variable: &str, value: usize, min: usize, max: usize) -> Result<usize, ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::new(format!(
            "{variable}: {value} is not from {min} to {max}"
        )));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhooks_are_slack_by_prefix_or_host_and_generic_otherwise() {
        let hooks = webhooks(
            " slack:http://127.0.0.1:9/chat , https://hooks.slack.com/services/T/B/X,\
             http://example.test/hook, generic:https://hooks.slack.com/raw ",
        )
        .unwrap();
        let kinds: Vec<_> = hooks.iter().map(|h| (h.kind, h.url.as_str())).collect();
        assert_eq!(
            kinds,
            [
                (WebhookKind::Slack, "http://127.0.0.1:9/chat"),
                (WebhookKind::Slack, "https://hooks.slack.com/services/T/B/X"),
                (WebhookKind::Generic, "http://example.test/hook"),
                (WebhookKind::Generic, "https://hooks.slack.com/raw"),
            ]
        );
        assert!(webhooks("").unwrap().is_empty());
    }

    #[test]
    fn bad_settings_name_their_variable() {
        for bad in ["ftp://x/y", "slack:", "not a url", "http://a/x,http://a/x"] {
            let error = webhooks(bad).unwrap_err().to_string();
            assert!(error.contains("NOTIFY_WEBHOOKS"), "{bad}: {error}");
        }
        assert!(severity("loud")
            .unwrap_err()
            .to_string()
            .contains("NOTIFY_MIN_SEVERITY"));
        assert_eq!(severity("Critical").unwrap(), Severity::Critical);
        assert!(bounds::NOTIFY_GROUP
            .setting("NOTIFY_GROUP_SECONDS", -1.0)
            .unwrap_err()
            .to_string()
            .contains("NOTIFY_GROUP_SECONDS"));
        for range in [
            bounds::NOTIFY_GROUP,
            bounds::DIGEST_INTERVAL,
            bounds::PEER_TIMEOUT,
        ] {
            // Nothing that rounds to zero (a timer's period) or overflows a deadline.
            for bad in [0.0, 1e-300, 1e-10, -1.0, f64::NAN, f64::INFINITY, 1e300] {
                assert!(range.check(bad).is_err(), "{bad} in {range:?}");
            }
        }
        assert!(within("STATUS_EVENTS", 0, 1, 1000).is_err());
    }

    #[test]
    fn notify_config_is_refused_beside_webhooks_and_names_its_file() {
        let group = Duration::from_secs(2);
        let hooks = webhooks("http://a/x").unwrap();
        let error = notify_config(Some("/etc/notify.yml"), &hooks, group)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("NOTIFY_CONFIG and NOTIFY_WEBHOOKS are both set"),
            "{error}"
        );
        let error = notify_config(Some("/nonexistent/notify.yml"), &[], group)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("NOTIFY_CONFIG: /nonexistent/notify.yml: cannot be read"),
            "{error}"
        );
        assert!(notify_config(Some(" "), &hooks, group).unwrap().is_none());
    }
}
