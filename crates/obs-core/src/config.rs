//! Configuration from the environment, validated at start.
//!
//! Every role reads the same [`CoreConfig`] the same way; a role with settings of its own
//! reads them with [`from_env`] too, so a bad value anywhere ends the process the same way:
//! one line naming the variable, exit code 2 (see [`ConfigError::exit`]).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::outbox::OutboxSettings;

/// The settings every role shares (DESIGN §3).
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub role: String,
    pub host: IpAddr,
    pub port: u16,
    pub metrics_port: Option<u16>,
    /// What PORT and METRICS_PORT are called where this config came from: empty for a role
    /// binary, `WATCHER_` and so on in obs-stack. Errors about a port name the variable the
    /// operator set.
    pub port_prefix: String,
    pub trace_id: String,
    pub log_level: String,
    pub log_format: LogFormat,
    pub metrics_prefix: String,
    pub api_token: Option<String>,
    pub max_body_bytes: usize,
    pub shutdown_grace_seconds: u64,
    pub monitor_endpoint: Option<String>,
    pub monitor_heartbeat_interval: u64,
    /// The limits on each client connection: CLIENT_HEADER_TIMEOUT, CLIENT_BODY_TIMEOUT,
    /// KEEP_ALIVE_TIMEOUT, MAX_CONNECTIONS.
    pub connections: ConnectionLimits,
    pub state_dir: PathBuf,
    /// DATABASE_URL: every role's state in this PostgreSQL database instead of a SQLite file
    /// under `state_dir` (see [`crate::db`]).
    pub database_url: Option<String>,
    /// HTTP worker threads; defaults to the number of cores.
    pub workers: Option<usize>,
    /// OUTBOX_MAX_RECORDS, OUTBOX_BATCH_SIZE, OUTBOX_RETRY_MAX_SECONDS.
    pub outbox: OutboxSettings,
    /// Where the other roles are (WATCHER_URL, CURATOR_URL, …); a role sends only to those set.
    pub peers: Peers,
}

/// Base URLs of the other roles, without a trailing slash.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    pub watcher: Option<String>,
    pub curator: Option<String>,
    pub planner: Option<String>,
    pub synthesizer: Option<String>,
    pub archivist: Option<String>,
}

impl Peers {
    /// Every role at `http://<host>:<port>`, as obs-stack wires them.
    pub fn local(host: &str, ports: [u16; 5]) -> Peers {
        let url = |port: u16| Some(format!("http://{host}:{port}"));
        Peers {
            watcher: url(ports[0]),
            curator: url(ports[1]),
            planner: url(ports[2]),
            synthesizer: url(ports[3]),
            archivist: url(ports[4]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

impl std::str::FromStr for LogFormat {
    type Err = ConfigError;

    fn from_str(value: &str) -> Result<Self, ConfigError> {
        match value.to_ascii_lowercase().as_str() {
            "json" => Ok(LogFormat::Json),
            "text" => Ok(LogFormat::Text),
            _ => Err(ConfigError::new(format!(
                "LOG_FORMAT: '{value}' is not one of json, text"
            ))),
        }
    }
}

/// What one client connection may hold of a role, so a slow or idle client cannot keep
/// workers, sockets or file descriptors for ever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConnectionLimits {
    /// CLIENT_HEADER_TIMEOUT: the request line and headers must arrive within this.
    pub header_timeout: Duration,
    /// CLIENT_BODY_TIMEOUT: the whole request body must arrive within this of the headers;
    /// past it the request is answered 408 and the connection closed.
    pub body_timeout: Duration,
    /// KEEP_ALIVE_TIMEOUT: an idle connection is closed after this; zero turns keep-alive off.
    pub keep_alive: Duration,
    /// MAX_CONNECTIONS: connections open at once on the main port; past it new ones wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(5),
            body_timeout: Duration::from_secs(30),
            keep_alive: Duration::from_secs(5),
            max_connections: 512,
        }
    }
}

/// The range a duration setting may take, in seconds: every duration and interval a role
/// reads (from the environment or a request) is checked with one of these, so none can be
/// NaN, infinite, negative, round to nothing (an interval of zero panics a timer) or be so
/// long that adding it to now overflows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seconds {
    pub min: f64,
    pub max: f64,
}

/// Why a number of seconds was refused; its `Display` follows the variable or field name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutOfRange(String);

impl std::fmt::Display for OutOfRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Seconds {
    pub const fn new(min: f64, max: f64) -> Self {
        Seconds { min, max }
    }

    /// `value` seconds, if it is a finite number within the range.
    pub fn check(&self, value: f64) -> Result<Duration, OutOfRange> {
        let within = value.is_finite() && value >= self.min && value <= self.max;
        match within.then(|| Duration::try_from_secs_f64(value)) {
            Some(Ok(duration)) => Ok(duration),
            _ => Err(OutOfRange(format!(
                // Debug, not Display: 1e-300 is written as such, not as 300 zeros.
                "{value:?} is not a number of seconds from {} to {}",
                plain_number(self.min),
                plain_number(self.max)
            ))),
        }
    }

    /// A setting: the error is the one line that names `variable`.
    pub fn setting(&self, variable: &str, value: f64) -> Result<Duration, ConfigError> {
        self.check(value)
            .map_err(|why| ConfigError::new(format!("{variable}: {why}")))
    }

    /// A setting read as whole seconds.
    pub fn whole_setting(&self, variable: &str, value: u64) -> Result<u64, ConfigError> {
        self.setting(variable, value as f64).map(|_| value)
    }

    /// A field of a request: 400 naming `field`.
    pub fn field(&self, field: &str, value: f64) -> Result<Duration, crate::ApiError> {
        self.check(value)
            .map_err(|why| crate::ApiError::invalid_field(field, why))
    }
}

/// 0.01, 5, 2678400: a bound as an operator would write it.
fn plain_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// The bounds of the shared duration settings (docs/configuration.md lists them).
pub mod bounds {
    use super::Seconds;

    pub const SHUTDOWN_GRACE: Seconds = Seconds::new(0.0, 3600.0);
    pub const MONITOR_HEARTBEAT_INTERVAL: Seconds = Seconds::new(1.0, 86_400.0);
    pub const OUTBOX_RETRY_MAX: Seconds = Seconds::new(1.0, 86_400.0);
    // At least a second: actix's connection clock ticks every 500 ms, so shorter deadlines
    // would fire at random within it.
    pub const CLIENT_HEADER_TIMEOUT: Seconds = Seconds::new(1.0, 300.0);
    pub const CLIENT_BODY_TIMEOUT: Seconds = Seconds::new(1.0, 3600.0);
    /// 0 turns keep-alive off; otherwise this range.
    pub const KEEP_ALIVE_TIMEOUT: Seconds = Seconds::new(1.0, 3600.0);
    /// MAX_CONNECTIONS: at least one, at most a million (file descriptors run out first).
    pub const MAX_CONNECTIONS: (usize, usize) = (1, 1_000_000);
}

/// The raw environment, before role defaults are applied.
#[derive(Debug, Deserialize)]
struct RawCoreConfig {
    role: Option<String>,
    host: Option<IpAddr>,
    port: Option<u16>,
    metrics_port: Option<u16>,
    #[serde(default)]
    trace_id: String,
    #[serde(default = "default_log_level")]
    log_level: String,
    // A string, not the enum: envy cannot name the variable in an enum's error.
    #[serde(default = "default_log_format")]
    log_format: String,
    #[serde(default = "default_metrics_prefix")]
    metrics_prefix: String,
    api_token: Option<String>,
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: usize,
    #[serde(default = "default_shutdown_grace_seconds")]
    shutdown_grace_seconds: u64,
    monitor_endpoint: Option<String>,
    #[serde(default = "default_heartbeat_interval")]
    monitor_heartbeat_interval: u64,
    #[serde(default = "default_header_timeout")]
    client_header_timeout: f64,
    #[serde(default = "default_body_timeout")]
    client_body_timeout: f64,
    #[serde(default = "default_keep_alive_timeout")]
    keep_alive_timeout: f64,
    #[serde(default = "default_max_connections")]
    max_connections: usize,
    state_dir: Option<PathBuf>,
    database_url: Option<String>,
    workers: Option<usize>,
    #[serde(default = "default_outbox_max_records")]
    outbox_max_records: usize,
    #[serde(default = "default_outbox_max_bytes")]
    outbox_max_bytes: usize,
    #[serde(default = "default_outbox_batch_size")]
    outbox_batch_size: usize,
    #[serde(default = "default_outbox_retry_max_seconds")]
    outbox_retry_max_seconds: u64,
    watcher_url: Option<String>,
    curator_url: Option<String>,
    planner_url: Option<String>,
    synthesizer_url: Option<String>,
    archivist_url: Option<String>,
}

/// Loopback unless HOST says otherwise: a role started by hand (or `make run`) is not open to
/// the network by accident. The container image sets HOST=0.0.0.0 for itself.
fn default_host() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}
fn default_log_level() -> String {
    "info".into()
}
fn default_log_format() -> String {
    "json".into()
}
fn default_metrics_prefix() -> String {
    "hello_ai".into()
}
fn default_max_body_bytes() -> usize {
    1024 * 1024
}
fn default_shutdown_grace_seconds() -> u64 {
    10
}
fn default_heartbeat_interval() -> u64 {
    10
}
fn default_header_timeout() -> f64 {
    ConnectionLimits::default().header_timeout.as_secs_f64()
}
fn default_body_timeout() -> f64 {
    ConnectionLimits::default().body_timeout.as_secs_f64()
}
fn default_keep_alive_timeout() -> f64 {
    ConnectionLimits::default().keep_alive.as_secs_f64()
}
fn default_max_connections() -> usize {
    ConnectionLimits::default().max_connections
}
fn default_outbox_max_records() -> usize {
    100_000
}
fn default_outbox_max_bytes() -> usize {
    64 * 1024 * 1024
}
fn default_outbox_batch_size() -> usize {
    100
}
fn default_outbox_retry_max_seconds() -> u64 {
    30
}
fn default_outbox() -> OutboxSettings {
    OutboxSettings {
        max_records: default_outbox_max_records(),
        max_bytes: default_outbox_max_bytes(),
        batch_size: default_outbox_batch_size(),
        max_retry_delay: Duration::from_secs(default_outbox_retry_max_seconds()),
    }
}

/// A configuration value that cannot be used. Its `Display` is the one line printed at exit.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }

    /// Print the one line and leave with exit code 2 — no panic trace, no backtrace.
    pub fn exit(&self) -> ! {
        eprintln!("{self}");
        std::process::exit(2)
    }
}

/// Read a role's settings from the environment with envy, turning envy's error into a line
/// that names the variable.
pub fn from_env<T: DeserializeOwned>() -> Result<T, ConfigError> {
    envy::from_env::<T>().map_err(describe_envy_error)
}

/// As [`from_env`], for variables that share a prefix (`CURATOR_PORT` → field `port`).
pub fn from_env_prefixed<T: DeserializeOwned>(prefix: &str) -> Result<T, ConfigError> {
    envy::prefixed(prefix)
        .from_env::<T>()
        .map_err(|error| describe_envy_error_prefixed(error, prefix))
}

fn describe_envy_error(error: envy::Error) -> ConfigError {
    describe_envy_error_prefixed(error, "")
}

fn describe_envy_error_prefixed(error: envy::Error, prefix: &str) -> ConfigError {
    match error {
        envy::Error::MissingValue(field) => ConfigError(format!(
            "{prefix}{} is required but not set",
            field.to_uppercase()
        )),
        // envy says "<cause> while parsing value '<v>' provided by <VAR>"; put the variable first.
        envy::Error::Custom(message) => match message.rsplit_once(" provided by ") {
            Some((cause, variable)) => ConfigError(format!("{prefix}{variable}: {cause}")),
            None => ConfigError(message),
        },
    }
}

/// Where a role listens unless HOST and PORT say otherwise: its port, and the variables the
/// service it replaces listened by (the seeds' monitoring service: MONITOR_HOST,
/// MONITOR_PORT), honoured when HOST or PORT is not set, so old manifests keep working.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    pub port: u16,
    pub legacy: Option<LegacyListen>,
}

#[derive(Debug, Clone, Copy)]
pub struct LegacyListen {
    pub host: &'static str,
    pub port: &'static str,
}

impl From<u16> for Listen {
    fn from(port: u16) -> Self {
        Listen { port, legacy: None }
    }
}

impl Listen {
    /// HOST and PORT, or the legacy variables where those are not set.
    fn resolve(
        &self,
        host: Option<IpAddr>,
        port: Option<u16>,
    ) -> Result<(IpAddr, u16), ConfigError> {
        let legacy = self.legacy;
        let host = match host {
            Some(host) => host,
            None => {
                legacy_value(legacy.map(|l| l.host), "an IP address")?.unwrap_or_else(default_host)
            }
        };
        let port = match port {
            Some(port) => port,
            None => legacy_value(legacy.map(|l| l.port), "a port")?.unwrap_or(self.port),
        };
        Ok((host, port))
    }
}

/// The legacy variable `name`, parsed, if it is set.
fn legacy_value<T>(name: Option<&'static str>, what: &str) -> Result<Option<T>, ConfigError>
where
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let Some(name) = name else { return Ok(None) };
    let Ok(value) = std::env::var(name) else {
        return Ok(None);
    };
    value
        .trim()
        .parse()
        .map(Some)
        .map_err(|error| ConfigError::new(format!("{name}: '{value}' is not {what} ({error})")))
}

impl CoreConfig {
    /// The shared settings for `role`, listening as `listen` says unless HOST and PORT say
    /// otherwise.
    pub fn from_env(role: &str, listen: impl Into<Listen>) -> Result<Self, ConfigError> {
        let raw: RawCoreConfig = from_env()?;
        let role = raw.role.unwrap_or_else(|| role.to_string());
        let (host, port) = listen.into().resolve(raw.host, raw.port)?;
        let config = CoreConfig {
            state_dir: raw
                .state_dir
                .unwrap_or_else(|| PathBuf::from("./data").join(&role)),
            database_url: database_url(raw.database_url)?,
            role,
            host,
            port,
            metrics_port: raw.metrics_port,
            port_prefix: String::new(),
            trace_id: raw.trace_id,
            log_level: raw.log_level,
            log_format: raw.log_format.parse()?,
            metrics_prefix: raw.metrics_prefix,
            api_token: raw.api_token.filter(|token| !token.is_empty()),
            max_body_bytes: raw.max_body_bytes,
            shutdown_grace_seconds: bounds::SHUTDOWN_GRACE
                .whole_setting("SHUTDOWN_GRACE_SECONDS", raw.shutdown_grace_seconds)?,
            monitor_endpoint: raw
                .monitor_endpoint
                .filter(|url| !url.is_empty())
                .map(|url| url.trim_end_matches('/').to_string()),
            monitor_heartbeat_interval: bounds::MONITOR_HEARTBEAT_INTERVAL
                .whole_setting("MONITOR_HEARTBEAT_INTERVAL", raw.monitor_heartbeat_interval)?,
            connections: ConnectionLimits {
                header_timeout: bounds::CLIENT_HEADER_TIMEOUT
                    .setting("CLIENT_HEADER_TIMEOUT", raw.client_header_timeout)?,
                body_timeout: bounds::CLIENT_BODY_TIMEOUT
                    .setting("CLIENT_BODY_TIMEOUT", raw.client_body_timeout)?,
                keep_alive: if raw.keep_alive_timeout == 0.0 {
                    Duration::ZERO
                } else {
                    bounds::KEEP_ALIVE_TIMEOUT
                        .setting("KEEP_ALIVE_TIMEOUT", raw.keep_alive_timeout)?
                },
                max_connections: raw.max_connections,
            },
            workers: raw.workers,
            outbox: OutboxSettings {
                max_records: raw.outbox_max_records,
                max_bytes: raw.outbox_max_bytes,
                batch_size: raw.outbox_batch_size,
                max_retry_delay: Duration::from_secs(
                    bounds::OUTBOX_RETRY_MAX
                        .whole_setting("OUTBOX_RETRY_MAX_SECONDS", raw.outbox_retry_max_seconds)?,
                ),
            },
            peers: Peers {
                watcher: peer_url("WATCHER_URL", raw.watcher_url)?,
                curator: peer_url("CURATOR_URL", raw.curator_url)?,
                planner: peer_url("PLANNER_URL", raw.planner_url)?,
                synthesizer: peer_url("SYNTHESIZER_URL", raw.synthesizer_url)?,
                archivist: peer_url("ARCHIVIST_URL", raw.archivist_url)?,
            },
        };
        config.validate()?;
        Ok(config)
    }

    /// The variable that set the main port: `PORT`, or `WATCHER_PORT` in obs-stack.
    pub fn port_variable(&self) -> String {
        format!("{}PORT", self.port_prefix)
    }

    /// The variable that set the metrics port: `METRICS_PORT`, or `WATCHER_METRICS_PORT`.
    pub fn metrics_port_variable(&self) -> String {
        format!("{}METRICS_PORT", self.port_prefix)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.role.is_empty() {
            return Err(ConfigError::new("ROLE: must not be empty"));
        }
        if !is_metric_name(&self.metrics_prefix) {
            return Err(ConfigError::new(format!(
                "METRICS_PREFIX: '{}' is not a valid Prometheus metric name prefix ([a-zA-Z_][a-zA-Z0-9_]*)",
                self.metrics_prefix
            )));
        }
        if self.max_body_bytes == 0 {
            return Err(ConfigError::new("MAX_BODY_BYTES: must be at least 1"));
        }
        let (min_connections, max_connections) = bounds::MAX_CONNECTIONS;
        if !(min_connections..=max_connections).contains(&self.connections.max_connections) {
            return Err(ConfigError::new(format!(
                "MAX_CONNECTIONS: {} is not from {min_connections} to {max_connections}",
                self.connections.max_connections
            )));
        }
        if self.outbox.max_records == 0 {
            return Err(ConfigError::new("OUTBOX_MAX_RECORDS: must be at least 1"));
        }
        if self.outbox.max_bytes < 64 * 1024 {
            return Err(ConfigError::new(
                "OUTBOX_MAX_BYTES: must be at least 65536 (64 KiB)",
            ));
        }
        if self.outbox.batch_size == 0 {
            return Err(ConfigError::new("OUTBOX_BATCH_SIZE: must be at least 1"));
        }
        if self.workers == Some(0) {
            return Err(ConfigError::new("WORKERS: must be at least 1"));
        }
        if let Some(endpoint) = &self.monitor_endpoint {
            if reqwest::Url::parse(endpoint).is_err() {
                return Err(ConfigError::new(format!(
                    "MONITOR_ENDPOINT: '{endpoint}' is not a URL"
                )));
            }
        }
        if self.metrics_port.is_some() && self.metrics_port == Some(self.port) && self.port != 0 {
            return Err(ConfigError::new(
                "METRICS_PORT: must differ from PORT (it opens a second listener)",
            ));
        }
        Ok(())
    }

    /// Settings for tests: loopback, port 0, quiet, state in `state_dir`.
    pub fn for_tests(role: &str, state_dir: impl Into<PathBuf>) -> Self {
        CoreConfig {
            role: role.to_string(),
            host: IpAddr::from([127, 0, 0, 1]),
            port: 0,
            metrics_port: None,
            port_prefix: String::new(),
            trace_id: String::new(),
            log_level: "warn".into(),
            log_format: LogFormat::Json,
            metrics_prefix: default_metrics_prefix(),
            api_token: None,
            max_body_bytes: default_max_body_bytes(),
            shutdown_grace_seconds: 5,
            monitor_endpoint: None,
            monitor_heartbeat_interval: default_heartbeat_interval(),
            connections: ConnectionLimits::default(),
            state_dir: state_dir.into(),
            database_url: None,
            workers: Some(1),
            outbox: default_outbox(),
            peers: Peers::default(),
        }
    }
}

/// DATABASE_URL: unset or empty means the embedded SQLite; otherwise a PostgreSQL URL that
/// parses (sslmode and all), checked here so a typo stops the role at start with one line.
fn database_url(value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(url) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let url = url.trim().to_string();
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ConfigError::new(format!(
            "DATABASE_URL: '{}' is not a PostgreSQL URL (postgres://user:password@host/db); \
             leave it unset for the embedded SQLite under STATE_DIR",
            crate::pg_connect::redact(&url)
        )));
    }
    crate::pg_connect::parse(&url)
        .map_err(|error| ConfigError::new(format!("DATABASE_URL: {error:#}")))?;
    Ok(Some(url))
}

/// An optional base URL: empty means unset; anything else must parse as http(s).
fn peer_url(variable: &str, value: Option<String>) -> Result<Option<String>, ConfigError> {
    let Some(value) = value.filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    match reqwest::Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => {
            Ok(Some(value.trim().trim_end_matches('/').to_string()))
        }
        _ => Err(ConfigError::new(format!(
            "{variable}: '{}' is not an http(s) URL",
            crate::redact::url(&value)
        ))),
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_is_checked_at_start_naming_the_variable_and_hiding_the_password() {
        assert_eq!(database_url(None).unwrap(), None);
        assert_eq!(database_url(Some("  ".into())).unwrap(), None);
        let url = "postgres://fleet:s3cret@db.internal:5432/fleet?sslmode=verify-full";
        assert_eq!(
            database_url(Some(url.into())).unwrap().as_deref(),
            Some(url)
        );

        let wrong = database_url(Some("mysql://fleet:s3cret@db/fleet".into()))
            .unwrap_err()
            .to_string();
        assert!(
            wrong.contains("DATABASE_URL") && wrong.contains("not a PostgreSQL URL"),
            "{wrong}"
        );
        assert!(!wrong.contains("s3cret"), "{wrong}");

        let bad_mode = database_url(Some("postgres://fleet:s3cret@db/fleet?sslmode=on".into()))
            .unwrap_err()
            .to_string();
        assert!(
            bad_mode.contains("DATABASE_URL") && bad_mode.contains("sslmode"),
            "{bad_mode}"
        );
        assert!(!bad_mode.contains("s3cret"), "{bad_mode}");
    }

    #[test]
    fn without_host_a_role_listens_on_loopback_only() {
        let (host, port) = Listen::from(8001).resolve(None, None).unwrap();
        assert_eq!((host, port), (IpAddr::from([127, 0, 0, 1]), 8001));
        let everywhere = IpAddr::from([0, 0, 0, 0]);
        let (host, _) = Listen::from(8001).resolve(Some(everywhere), None).unwrap();
        assert_eq!(host, everywhere);
    }

    #[test]
    fn envy_parse_errors_name_the_variable_first() {
        let error = describe_envy_error(envy::Error::Custom(
            "invalid digit found in string while parsing value 'abc' provided by PORT".into(),
        ));
        assert_eq!(
            error.to_string(),
            "configuration error: PORT: invalid digit found in string while parsing value 'abc'"
        );
    }

    #[test]
    fn durations_are_finite_within_their_range_and_never_round_to_nothing() {
        let range = Seconds::new(0.01, 3600.0);
        assert_eq!(range.check(0.5), Ok(Duration::from_millis(500)));
        assert_eq!(range.check(0.01), Ok(Duration::from_millis(10)));
        assert_eq!(range.check(3600.0), Ok(Duration::from_secs(3600)));
        for bad in [
            1e-300,
            1e-10,
            0.0,
            -1.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            1e300,
            3600.001,
        ] {
            let why = range.check(bad).expect_err("out of range").to_string();
            assert!(why.contains("from 0.01 to 3600"), "{bad}: {why}");
        }
        assert_eq!(
            range.check(1e-300).unwrap_err().to_string(),
            "1e-300 is not a number of seconds from 0.01 to 3600"
        );
        let line = range
            .setting("PROBE_INTERVAL", 1e-10)
            .unwrap_err()
            .to_string();
        assert_eq!(
            line,
            "configuration error: PROBE_INTERVAL: 1e-10 is not a number of seconds from 0.01 to 3600"
        );
        let api = range.field("timeout_seconds", f64::NAN).unwrap_err();
        assert_eq!(api.code(), "invalid_field");
        assert!(api.to_string().starts_with("timeout_seconds: NaN"), "{api}");
        // Zero may be a range's minimum (a cooldown, keep-alive off).
        assert_eq!(Seconds::new(0.0, 1.0).check(0.0), Ok(Duration::ZERO));
        assert_eq!(
            bounds::MONITOR_HEARTBEAT_INTERVAL.whole_setting("X", u64::MAX).unwrap_err().to_string(),
            "configuration error: X: 1.8446744073709552e19 is not a number of seconds from 1 to 86400"
        );
    }

    #[test]
    fn metric_prefixes_are_checked() {
        assert!(is_metric_name("hello_ai"));
        assert!(is_metric_name("_x1"));
        assert!(!is_metric_name("1x"));
        assert!(!is_metric_name("a-b"));
        assert!(!is_metric_name(""));
    }

    mod props {
        use super::super::{bounds, Seconds};
        use proptest::prelude::*;

        /// Every range a role reads durations with, the shared ones and a request's.
        const RANGES: [Seconds; 5] = [
            bounds::SHUTDOWN_GRACE,
            bounds::CLIENT_HEADER_TIMEOUT,
            bounds::KEEP_ALIVE_TIMEOUT,
            Seconds::new(0.001, 60.0),
            Seconds::new(0.01, 2_678_400.0),
        ];

        /// Any f64: special values, tiny and huge magnitudes, and any bit pattern.
        fn seconds() -> impl Strategy<Value = f64> {
            prop_oneof![
                any::<f64>(),
                prop::num::f64::ANY,
                (-320i32..320).prop_map(|exp| 10f64.powi(exp)),
                -10.0f64..3_000_000.0,
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            /// Accepted exactly when finite and within the range; then a duration that is not
            /// zero (unless zero is the minimum), close to the value, and that adding to now
            /// cannot overflow. A refusal names the range.
            #[test]
            fn seconds_are_accepted_exactly_within_their_range(value in seconds()) {
                for range in RANGES {
                    let within = value.is_finite() && value >= range.min && value <= range.max;
                    match range.check(value) {
                        Ok(duration) => {
                            prop_assert!(within, "{value:?} accepted by {range:?}");
                            prop_assert!(range.min == 0.0 || !duration.is_zero());
                            prop_assert!((duration.as_secs_f64() - value).abs() <= 1e-9 * value.max(1.0));
                            prop_assert!(std::time::Instant::now().checked_add(duration).is_some());
                            // The printer's value reads back as the same duration.
                            prop_assert_eq!(range.check(duration.as_secs_f64()), Ok(duration));
                        }
                        Err(why) => {
                            prop_assert!(!within, "{value:?} refused by {range:?}: {why}");
                            prop_assert!(why.to_string().contains("is not a number of seconds from"));
                        }
                    }
                }
            }
        }
    }
}
