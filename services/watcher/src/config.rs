//! The watcher's own settings (DESIGN §4), read from the environment like every role's.
//!
//! Env names are the seeds' (MONITOR_HEARTBEAT_*, DEPLOYMENT_ID, APP_NAME) plus the design's
//! (DOCKER_*, PROBE_*, RESTART_LOOP_*, HOST_METRICS_INTERVAL). Durations are seconds and may
//! be fractional. Enums and lists are read as strings and parsed here, so a bad value names
//! its variable.

use std::path::PathBuf;
use std::time::Duration;

use obs_core::config::{self, ConfigError, Seconds};
use serde::Deserialize;

pub use crate::docker::filter::ContainerFilter;

/// Longest timeout a heartbeat may ask for: a monthly cron job still fits.
pub const MAX_HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(31 * 24 * 3600);

/// The range of each duration setting (docs/configuration.md lists them): wide enough for
/// any real use, narrow enough that no timer gets a period of nothing and no deadline
/// overflows.
pub mod bounds {
    use super::Seconds;

    /// MONITOR_HEARTBEAT_TIMEOUT and a heartbeat's `timeout_seconds`.
    pub const HEARTBEAT_TIMEOUT: Seconds =
        Seconds::new(0.01, super::MAX_HEARTBEAT_TIMEOUT.as_secs_f64());
    pub const CHECK_INTERVAL: Seconds = Seconds::new(0.01, 3600.0);
    pub const RESTART_LOOP_WINDOW: Seconds = Seconds::new(1.0, 7.0 * 24.0 * 3600.0);
    pub const PROBE_INTERVAL: Seconds = Seconds::new(0.1, 86_400.0);
    pub const PROBE_TIMEOUT: Seconds = Seconds::new(0.01, 300.0);
    /// 0 turns the host gauges off; otherwise this range.
    pub const HOST_METRICS_INTERVAL: Seconds = Seconds::new(1.0, 86_400.0);
    pub const STATE_SAVE_INTERVAL: Seconds = Seconds::new(0.001, 60.0);
    pub const LEASE_TTL: Seconds = Seconds::new(0.5, 3600.0);
    /// KUBERNETES_NOT_READY_AFTER and KUBERNETES_UNSCHEDULABLE_AFTER.
    pub const KUBERNETES_GRACE: Seconds = Seconds::new(0.01, 86_400.0);
    /// KUBERNETES_TIMEOUT: at least 2 s, so a watch (asked to end after three quarters of it)
    /// lasts a whole second; at most 5 min, the longest watch the API server grants.
    pub const KUBERNETES_TIMEOUT: Seconds = Seconds::new(2.0, 300.0);
}

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    pub heartbeat: HeartbeatSettings,
    pub docker: DockerSettings,
    pub kubernetes: KubernetesSettings,
    pub probes: ProbeSettings,
    /// HOST_METRICS_INTERVAL; 0 turns the host gauges off.
    pub host_metrics_interval: Option<Duration>,
    /// HOST_DISK_PATH: the filesystem whose used ratio is reported.
    pub host_disk_path: PathBuf,
    pub deployment_id: Option<String>,
    pub app_name: Option<String>,
    /// EVENTS_MAX: events kept (in the database, and in memory) for `GET /events`.
    pub events_max: usize,
    /// MAX_EVENT_SERIES: label sets of `monitoring_events_total` and the task counters, each;
    /// past it new ones are counted under `_other`.
    pub max_event_series: usize,
    /// RESOLVED_ISSUES_MAX: resolved issues kept for `GET /issues`; open ones are all kept.
    pub resolved_issues_max: usize,
    /// STATE_SAVE_INTERVAL: how often the beats heard since are written behind to the
    /// database, in one transaction; state changes (issues, events, a service going down or
    /// coming back) are committed before they are answered.
    pub state_save_interval: Duration,
    /// LEASE_TTL: how long a replica that died keeps the checker and the Docker follower
    /// (their leases) before another takes over.
    pub lease_ttl: Duration,
}

#[derive(Debug, Clone)]
pub struct HeartbeatSettings {
    /// MONITOR_HEARTBEAT_ENABLED: whether missed heartbeats mark services down.
    pub enabled: bool,
    /// MONITOR_HEARTBEAT_TIMEOUT: silence after which a service is down, unless its
    /// heartbeats say otherwise (`timeout_seconds`).
    pub timeout: Duration,
    /// MONITOR_HEARTBEAT_CHECK_INTERVAL: the checker wakes at most this often (it wakes at the
    /// next deadline, not on a fixed tick), so thousands of deadlines cost one pass.
    pub check_interval: Duration,
    /// MAX_SERVICES: services tracked at most; a heartbeat from one more is refused.
    pub max_services: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DockerMode {
    /// Follow the engine if one answers; otherwise run without it (and keep looking).
    Auto,
    /// Refuse to start without an engine.
    On,
    Off,
}

#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// DOCKER_HOST: `unix:///var/run/docker.sock` (default), `tcp://host:2375`, `http://…`.
    pub host: String,
    pub mode: DockerMode,
    /// RESTART_LOOP_THRESHOLD starts within RESTART_LOOP_WINDOW make a restart loop.
    pub restart_loop_threshold: usize,
    pub restart_loop_window: Duration,
    /// DOCKER_INCLUDE_LABELS, DOCKER_EXCLUDE_LABELS, DOCKER_INCLUDE_NAMES,
    /// DOCKER_EXCLUDE_NAMES: the containers followed.
    pub filter: ContainerFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KubernetesMode {
    /// Watch the API server the configuration points at; keep trying while it does not answer.
    Watch,
    /// KUBERNETES_WATCH=on: as `Watch`, but refuse to start without a usable configuration.
    Required,
    Off,
}

#[derive(Debug, Clone)]
pub struct KubernetesSettings {
    /// KUBERNETES_WATCH=auto|on|off; auto watches when KUBERNETES_SERVICE_HOST is set (in a
    /// pod), so the same image runs in and out of a cluster.
    pub mode: KubernetesMode,
    /// KUBERNETES_NAMESPACES: the namespaces watched; empty watches all.
    pub namespaces: Vec<String>,
    /// KUBERNETES_LABEL_SELECTOR: only pods it selects (the API server filters).
    pub label_selector: Option<String>,
    /// KUBECONFIG: outside a cluster, the kubeconfig file (its current context); unset, the
    /// in-cluster service account, then ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    /// KUBERNETES_NOT_READY_AFTER: a running container not ready this long is `unhealthy`.
    pub not_ready_after: Duration,
    /// KUBERNETES_UNSCHEDULABLE_AFTER: a pod the scheduler cannot place this long is
    /// `unschedulable` (a pod waits a moment for a node to scale up without being trouble).
    pub unschedulable_after: Duration,
    /// KUBERNETES_TIMEOUT: the longest silence of the API server on any request (a list, a
    /// watch stream, a log fetch) before it is given up and retried with backoff; watches ask
    /// the server to end them after three quarters of it, so a healthy idle watch never hits it.
    pub timeout: Duration,
}

impl KubernetesSettings {
    pub fn off() -> Self {
        KubernetesSettings {
            mode: KubernetesMode::Off,
            namespaces: Vec::new(),
            label_selector: None,
            kubeconfig: None,
            not_ready_after: Duration::from_secs(default_kubernetes_grace() as u64),
            unschedulable_after: Duration::from_secs(default_kubernetes_grace() as u64),
            timeout: Duration::from_secs(default_kubernetes_timeout() as u64),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    pub targets: Vec<(String, String)>,
    pub interval: Duration,
    /// PROBE_TIMEOUT; defaults to the interval, at most 5 s.
    pub timeout: Duration,
    /// PROBE_FAILURE_THRESHOLD consecutive failures open a `probe_failed` issue.
    pub failure_threshold: u32,
}

#[derive(Debug, Deserialize)]
struct RawWatcherEnv {
    #[serde(default = "default_enabled")]
    monitor_heartbeat_enabled: String,
    #[serde(default = "default_heartbeat_timeout")]
    monitor_heartbeat_timeout: f64,
    #[serde(default = "default_check_interval")]
    monitor_heartbeat_check_interval: f64,
    #[serde(default = "default_max_services")]
    max_services: usize,
    #[serde(default = "default_max_event_series")]
    max_event_series: usize,
    docker_host: Option<String>,
    #[serde(default = "default_docker_watch")]
    docker_watch: String,
    #[serde(default)]
    docker_include_labels: String,
    #[serde(default)]
    docker_exclude_labels: String,
    #[serde(default)]
    docker_include_names: String,
    #[serde(default)]
    docker_exclude_names: String,
    #[serde(default = "default_kubernetes_watch")]
    kubernetes_watch: String,
    kubernetes_service_host: Option<String>,
    #[serde(default)]
    kubernetes_namespaces: String,
    #[serde(default)]
    kubernetes_label_selector: String,
    kubeconfig: Option<PathBuf>,
    #[serde(default = "default_kubernetes_grace")]
    kubernetes_not_ready_after: f64,
    #[serde(default = "default_kubernetes_grace")]
    kubernetes_unschedulable_after: f64,
    #[serde(default = "default_kubernetes_timeout")]
    kubernetes_timeout: f64,
    #[serde(default = "default_restart_loop_threshold")]
    restart_loop_threshold: usize,
    #[serde(default = "default_restart_loop_window")]
    restart_loop_window: f64,
    #[serde(default)]
    probe_targets: String,
    #[serde(default = "default_probe_interval")]
    probe_interval: f64,
    probe_timeout: Option<f64>,
    #[serde(default = "default_probe_failure_threshold")]
    probe_failure_threshold: u32,
    #[serde(default = "default_host_metrics_interval")]
    host_metrics_interval: f64,
    #[serde(default = "default_host_disk_path")]
    host_disk_path: PathBuf,
    deployment_id: Option<String>,
    app_name: Option<String>,
    #[serde(default = "default_events_max")]
    events_max: usize,
    #[serde(default = "default_resolved_issues_max")]
    resolved_issues_max: usize,
    #[serde(default = "default_state_save_interval")]
    state_save_interval: f64,
    #[serde(default = "default_lease_ttl")]
    lease_ttl: f64,
}

fn default_enabled() -> String {
    "1".into()
}
fn default_heartbeat_timeout() -> f64 {
    30.0
}
fn default_check_interval() -> f64 {
    5.0
}
fn default_max_event_series() -> usize {
    10_000
}
fn default_max_services() -> usize {
    100_000
}
fn default_docker_watch() -> String {
    "auto".into()
}
fn default_kubernetes_watch() -> String {
    "auto".into()
}
fn default_kubernetes_grace() -> f64 {
    60.0
}
fn default_kubernetes_timeout() -> f64 {
    60.0
}
fn default_restart_loop_threshold() -> usize {
    3
}
fn default_restart_loop_window() -> f64 {
    300.0
}
fn default_probe_interval() -> f64 {
    10.0
}
fn default_probe_failure_threshold() -> u32 {
    3
}
fn default_host_metrics_interval() -> f64 {
    60.0
}
fn default_host_disk_path() -> PathBuf {
    PathBuf::from("/")
}
fn default_events_max() -> usize {
    1000
}
fn default_resolved_issues_max() -> usize {
    1000
}
fn default_state_save_interval() -> f64 {
    0.5
}
fn default_lease_ttl() -> f64 {
    10.0
}

pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";

impl WatcherConfig {
    pub fn from_env() -> Result<Self, ConfigError> {
        let raw: RawWatcherEnv = config::from_env()?;
        let interval = bounds::PROBE_INTERVAL.setting("PROBE_INTERVAL", raw.probe_interval)?;
        let probe_timeout = match raw.probe_timeout {
            Some(value) => bounds::PROBE_TIMEOUT.setting("PROBE_TIMEOUT", value)?,
            None => interval.min(Duration::from_secs(5)),
        };
        let config = WatcherConfig {
            heartbeat: HeartbeatSettings {
                enabled: flag("MONITOR_HEARTBEAT_ENABLED", &raw.monitor_heartbeat_enabled)?,
                timeout: bounds::HEARTBEAT_TIMEOUT
                    .setting("MONITOR_HEARTBEAT_TIMEOUT", raw.monitor_heartbeat_timeout)?,
                check_interval: bounds::CHECK_INTERVAL.setting(
                    "MONITOR_HEARTBEAT_CHECK_INTERVAL",
                    raw.monitor_heartbeat_check_interval,
                )?,
                max_services: at_least_one("MAX_SERVICES", raw.max_services)?,
            },
            docker: DockerSettings {
                host: docker_host(raw.docker_host)?,
                mode: docker_mode(&raw.docker_watch)?,
                restart_loop_threshold: at_least_one(
                    "RESTART_LOOP_THRESHOLD",
                    raw.restart_loop_threshold,
                )?,
                restart_loop_window: bounds::RESTART_LOOP_WINDOW
                    .setting("RESTART_LOOP_WINDOW", raw.restart_loop_window)?,
                filter: ContainerFilter::parse(
                    &raw.docker_include_labels,
                    &raw.docker_exclude_labels,
                    &raw.docker_include_names,
                    &raw.docker_exclude_names,
                )?,
            },
            kubernetes: KubernetesSettings {
                mode: kubernetes_mode(
                    &raw.kubernetes_watch,
                    raw.kubernetes_service_host
                        .as_deref()
                        .is_some_and(|host| !host.trim().is_empty()),
                )?,
                namespaces: kubernetes_namespaces(&raw.kubernetes_namespaces)?,
                label_selector: label_selector(&raw.kubernetes_label_selector)?,
                kubeconfig: raw.kubeconfig.filter(|path| !path.as_os_str().is_empty()),
                not_ready_after: bounds::KUBERNETES_GRACE
                    .setting("KUBERNETES_NOT_READY_AFTER", raw.kubernetes_not_ready_after)?,
                unschedulable_after: bounds::KUBERNETES_GRACE.setting(
                    "KUBERNETES_UNSCHEDULABLE_AFTER",
                    raw.kubernetes_unschedulable_after,
                )?,
                timeout: bounds::KUBERNETES_TIMEOUT
                    .setting("KUBERNETES_TIMEOUT", raw.kubernetes_timeout)?,
            },
            probes: ProbeSettings {
                targets: probe_targets(&raw.probe_targets)?,
                interval,
                timeout: probe_timeout,
                failure_threshold: at_least_one(
                    "PROBE_FAILURE_THRESHOLD",
                    raw.probe_failure_threshold as usize,
                )? as u32,
            },
            host_metrics_interval: if raw.host_metrics_interval == 0.0 {
                None
            } else {
                Some(
                    bounds::HOST_METRICS_INTERVAL
                        .setting("HOST_METRICS_INTERVAL", raw.host_metrics_interval)?,
                )
            },
            host_disk_path: raw.host_disk_path,
            deployment_id: raw.deployment_id.filter(|id| !id.is_empty()),
            app_name: raw.app_name.filter(|name| !name.is_empty()),
            events_max: at_least_one("EVENTS_MAX", raw.events_max)?,
            max_event_series: at_least_one("MAX_EVENT_SERIES", raw.max_event_series)?,
            resolved_issues_max: raw.resolved_issues_max,
            state_save_interval: bounds::STATE_SAVE_INTERVAL
                .setting("STATE_SAVE_INTERVAL", raw.state_save_interval)?,
            lease_ttl: bounds::LEASE_TTL.setting("LEASE_TTL", raw.lease_ttl)?,
        };
        Ok(config)
    }

    /// The defaults with Docker off: what tests start from.
    pub fn for_tests() -> Self {
        WatcherConfig {
            heartbeat: HeartbeatSettings {
                enabled: true,
                timeout: Duration::from_secs(30),
                check_interval: Duration::from_millis(50),
                max_services: default_max_services(),
            },
            docker: DockerSettings {
                host: DEFAULT_DOCKER_HOST.into(),
                mode: DockerMode::Off,
                restart_loop_threshold: 3,
                restart_loop_window: Duration::from_secs(300),
                filter: ContainerFilter::default(),
            },
            kubernetes: KubernetesSettings::off(),
            probes: ProbeSettings {
                targets: Vec::new(),
                interval: Duration::from_secs(10),
                timeout: Duration::from_secs(5),
                failure_threshold: 3,
            },
            host_metrics_interval: None,
            host_disk_path: default_host_disk_path(),
            deployment_id: None,
            app_name: None,
            events_max: default_events_max(),
            max_event_series: default_max_event_series(),
            resolved_issues_max: default_resolved_issues_max(),
            state_save_interval: Duration::from_millis(500),
            lease_ttl: Duration::from_secs(2),
        }
    }
}

fn flag(variable: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::new(format!(
            "{variable}: '{value}' is not one of 1, 0, true, false"
        ))),
    }
}

fn at_least_one(variable: &str, value: usize) -> Result<usize, ConfigError> {
    if value == 0 {
        return Err(ConfigError::new(format!("{variable}: must be at least 1")));
    }
    Ok(value)
}

/// `auto`, `on` or `off` (also 1/0, true/false), for the watch settings.
enum Switch {
    Auto,
    On,
    Off,
}

fn switch(variable: &str, value: &str) -> Result<Switch, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "auto" => Ok(Switch::Auto),
        "on" | "1" | "true" => Ok(Switch::On),
        "off" | "0" | "false" => Ok(Switch::Off),
        _ => Err(ConfigError::new(format!(
            "{variable}: '{value}' is not one of auto, on, off"
        ))),
    }
}

fn docker_mode(value: &str) -> Result<DockerMode, ConfigError> {
    Ok(match switch("DOCKER_WATCH", value)? {
        Switch::Auto => DockerMode::Auto,
        Switch::On => DockerMode::On,
        Switch::Off => DockerMode::Off,
    })
}

fn kubernetes_mode(value: &str, in_cluster: bool) -> Result<KubernetesMode, ConfigError> {
    Ok(match switch("KUBERNETES_WATCH", value)? {
        Switch::Auto if in_cluster => KubernetesMode::Watch,
        Switch::On => KubernetesMode::Required,
        Switch::Auto | Switch::Off => KubernetesMode::Off,
    })
}

/// `a,b`: namespace names (DNS-1123 labels), each once.
fn kubernetes_namespaces(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut namespaces: Vec<String> = Vec::new();
    for name in value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let valid = name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid {
            return Err(ConfigError::new(format!(
                "KUBERNETES_NAMESPACES: '{name}' is not a namespace name (lowercase letters, \
                 digits and '-', at most 63)"
            )));
        }
        if namespaces.iter().any(|known| known == name) {
            return Err(ConfigError::new(format!(
                "KUBERNETES_NAMESPACES: '{name}' appears twice"
            )));
        }
        namespaces.push(name.to_string());
    }
    Ok(namespaces)
}

/// A label selector as `kubectl -l` takes it (`app=api,tier!=db,env in (a,b),!canary`): checked
/// for its shape here, so a typo stops the start instead of failing every list later.
fn label_selector(value: &str) -> Result<Option<String>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    let bad = |why: &str| {
        ConfigError::new(format!(
            "KUBERNETES_LABEL_SELECTOR: '{value}' is not a label selector ({why})"
        ))
    };
    if value.len() > 4096 {
        return Err(bad("longer than 4096 characters"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_./=!(), ".contains(c);
    if let Some(c) = value.chars().find(|c| !allowed(*c)) {
        return Err(bad(&format!("'{c}' is not allowed")));
    }
    // Commas inside `in (a,b)` do not separate requirements.
    let mut depth = 0i32;
    let mut requirement = String::new();
    let mut requirements = Vec::new();
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if !(0..=1).contains(&depth) {
            return Err(bad("unbalanced parentheses"));
        }
        if c == ',' && depth == 0 {
            requirements.push(std::mem::take(&mut requirement));
        } else {
            requirement.push(c);
        }
    }
    if depth != 0 {
        return Err(bad("unbalanced parentheses"));
    }
    requirements.push(requirement);
    for requirement in &requirements {
        let requirement = requirement.trim();
        let key = requirement
            .trim_start_matches('!')
            .split(['=', '!', ' '])
            .next()
            .unwrap_or_default();
        if key.is_empty() {
            return Err(bad("a requirement without a label key"));
        }
    }
    Ok(Some(value.to_string()))
}

fn docker_host(value: Option<String>) -> Result<String, ConfigError> {
    let host = value
        .filter(|host| !host.is_empty())
        .unwrap_or_else(|| DEFAULT_DOCKER_HOST.into());
    let supported = ["unix://", "tcp://", "http://"];
    if !supported.iter().any(|scheme| host.starts_with(scheme)) {
        return Err(ConfigError::new(format!(
            "DOCKER_HOST: '{host}' must start with unix://, tcp:// or http://"
        )));
    }
    Ok(host)
}

/// `name=url,name=url`; names follow the service-name rules, URLs are http(s).
pub fn probe_targets(value: &str) -> Result<Vec<(String, String)>, ConfigError> {
    let mut targets: Vec<(String, String)> = Vec::new();
    for item in value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        let (name, url) = item
            .split_once('=')
            .ok_or_else(|| ConfigError::new(format!("PROBE_TARGETS: '{item}' is not name=url")))?;
        let (name, url) = (name.trim(), url.trim());
        crate::validate::name(name)
            .map_err(|why| ConfigError::new(format!("PROBE_TARGETS: name '{name}': {why}")))?;
        crate::probes::parse_url(url)
            .map_err(|why| ConfigError::new(format!("PROBE_TARGETS: {name}: {why}")))?;
        if targets.iter().any(|(existing, _)| existing == name) {
            return Err(ConfigError::new(format!(
                "PROBE_TARGETS: '{name}' appears twice"
            )));
        }
        targets.push((name.to_string(), url.to_string()));
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_targets_parse_and_name_their_mistakes() {
        let targets = probe_targets(" api=http://127.0.0.1:8080/healthz, db=https://db/ready ")
            .expect("valid targets");
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].0, "api");
        for (bad, why) in [
            ("api", "not name=url"),
            ("api=ftp://x", "http"),
            ("bad name=http://x", "name"),
            ("a=http://x,a=http://y", "twice"),
        ] {
            let error = probe_targets(bad).expect_err(bad).to_string();
            assert!(
                error.contains("PROBE_TARGETS") && error.contains(why),
                "{error}"
            );
        }
    }

    #[test]
    fn kubernetes_namespaces_and_selectors_name_their_mistakes() {
        assert_eq!(
            kubernetes_namespaces(" default, prod-1 ").unwrap(),
            vec!["default".to_string(), "prod-1".to_string()]
        );
        assert!(kubernetes_namespaces("").unwrap().is_empty());
        for bad in ["Prod", "a_b", "-x", "a,a", &"n".repeat(64)] {
            let error = kubernetes_namespaces(bad).expect_err(bad).to_string();
            assert!(error.contains("KUBERNETES_NAMESPACES"), "{error}");
        }
        assert_eq!(label_selector("  ").unwrap(), None);
        for good in [
            "app=api",
            "app=api,tier!=db",
            "env in (a,b),!canary",
            "app.kubernetes.io/name==x",
        ] {
            assert_eq!(
                label_selector(good).unwrap().as_deref(),
                Some(good),
                "{good}"
            );
        }
        for bad in ["app=api;rm", "env in (a,b", ",app", "=x", "a)(b"] {
            let error = label_selector(bad).expect_err(bad).to_string();
            assert!(error.contains("KUBERNETES_LABEL_SELECTOR"), "{error}");
        }
    }

    #[test]
    fn durations_and_flags_are_checked() {
        let every = [
            bounds::HEARTBEAT_TIMEOUT,
            bounds::CHECK_INTERVAL,
            bounds::RESTART_LOOP_WINDOW,
            bounds::PROBE_INTERVAL,
            bounds::PROBE_TIMEOUT,
            bounds::HOST_METRICS_INTERVAL,
            bounds::STATE_SAVE_INTERVAL,
            bounds::LEASE_TTL,
            bounds::KUBERNETES_GRACE,
            bounds::KUBERNETES_TIMEOUT,
        ];
        for range in every {
            // Nothing that rounds to zero (a timer's period) or overflows a deadline.
            assert!(
                range.min >= 0.001 && range.max <= 366.0 * 86_400.0,
                "{range:?}"
            );
            for bad in [0.0, 1e-300, 1e-10, -1.0, f64::NAN, f64::INFINITY, 1e300] {
                assert!(range.check(bad).is_err(), "{bad} in {range:?}");
            }
        }
        assert_eq!(
            bounds::STATE_SAVE_INTERVAL.check(0.5).unwrap(),
            Duration::from_millis(500)
        );
        assert!(flag("X", "yes").unwrap());
        assert!(!flag("X", "0").unwrap());
        assert!(flag("X", "maybe").unwrap_err().to_string().contains("X:"));
        assert!(docker_mode("sometimes").is_err());
        assert_eq!(
            kubernetes_mode("auto", true).unwrap(),
            KubernetesMode::Watch
        );
        assert_eq!(kubernetes_mode("auto", false).unwrap(), KubernetesMode::Off);
        assert_eq!(
            kubernetes_mode("on", false).unwrap(),
            KubernetesMode::Required
        );
        assert!(kubernetes_mode("yes please", true)
            .unwrap_err()
            .to_string()
            .contains("KUBERNETES_WATCH"));
        assert!(docker_host(Some("ssh://x".into())).is_err());
        assert_eq!(docker_host(None).unwrap(), DEFAULT_DOCKER_HOST);
    }
}
