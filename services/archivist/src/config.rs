//! The archivist's own settings: where the archive lives, how long it keeps records, how big a
//! batch may be. Read from the environment once at start; a bad value ends the process with
//! exit code 2 and one line naming the variable (obs-core's [`ConfigError`]).
//!
//! Where the archive lives follows the fleet's rule (DESIGN §9): `DATABASE_URL=postgres://…`
//! when set, else the role's SQLite file `STATE_DIR/archivist.db`. `ARCHIVE_URL` is kept as
//! an alias (and is the only way to name another SQLite file, `sqlite:<path>`); set to a
//! different place than `DATABASE_URL`, the start is refused rather than one silently
//! winning.

use std::path::{Path, PathBuf};
use std::time::Duration;

use obs_core::config::{self, ConfigError};
use serde::Deserialize;

/// The SQLite file's name under STATE_DIR when neither DATABASE_URL nor ARCHIVE_URL is set:
/// the role's database, as every role's is `STATE_DIR/<role>.db`.
pub const DEFAULT_SQLITE_FILE: &str = "archivist.db";

/// Where versions before the one commit path kept the archive under STATE_DIR; imported once
/// into the archive (see [`crate::legacy`]).
pub const LEGACY_SQLITE_FILE: &str = "archive.sqlite3";

/// How long a dead replica keeps the retention lease before another takes the purge over.
const DEFAULT_PURGE_LEASE: Duration = Duration::from_secs(30);
/// ARCHIVE_PURGE_INTERVAL, whole seconds: a second to a week.
pub const PURGE_INTERVAL: obs_core::config::Seconds =
    obs_core::config::Seconds::new(1.0, 7.0 * 24.0 * 3600.0);
/// ARCHIVE_RETENTION_DAYS: a century at most (0 keeps everything).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub location: ArchiveLocation,
    /// Records older than this many days are purged; 0 keeps everything.
    pub retention_days: u32,
    /// Time between two retention purges (the first runs at start).
    pub purge_interval: Duration,
    /// The most records one `POST /v1/records` may carry.
    pub max_batch: usize,
    /// Time to live of the lease that keeps the purge on one replica at a time.
    pub purge_lease_ttl: Duration,
}

/// Which backend holds the archive.
#[derive(Clone, PartialEq, Eq)]
pub enum ArchiveLocation {
    /// An embedded SQLite file: the single-process default.
    Sqlite(PathBuf),
    /// A PostgreSQL database (`postgres://…`): what several replicas share.
    Postgres(String),
}

// Hand-written so a PostgreSQL password in the URL never reaches a log line.
impl std::fmt::Debug for ArchiveLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ArchiveLocation::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            ArchiveLocation::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl ArchiveLocation {
    /// The same place as obs-core's database layer names it.
    pub fn database(&self) -> obs_core::db::Location {
        match self {
            ArchiveLocation::Sqlite(path) => obs_core::db::Location::Sqlite(path.clone()),
            ArchiveLocation::Postgres(url) => obs_core::db::Location::Postgres(url.clone()),
        }
    }
}

/// The environment as envy reads it; parsed further by hand so errors name the variable.
#[derive(Debug, Deserialize)]
struct ArchiveEnv {
    archive_url: Option<String>,
    #[serde(default = "default_retention_days")]
    archive_retention_days: u32,
    #[serde(default = "default_purge_interval")]
    archive_purge_interval: u64,
    #[serde(default = "default_max_batch")]
    archive_max_batch: usize,
}

fn default_retention_days() -> u32 {
    30
}
fn default_purge_interval() -> u64 {
    3600
}
fn default_max_batch() -> usize {
    1000
}

impl ArchiveConfig {
    /// ARCHIVE_URL, ARCHIVE_RETENTION_DAYS, ARCHIVE_PURGE_INTERVAL and ARCHIVE_MAX_BATCH,
    /// with `database_url` (DATABASE_URL, already checked by obs-core); with neither URL the
    /// archive is the SQLite file `state_dir/archivist.db`.
    pub fn from_env(state_dir: &Path, database_url: Option<&str>) -> Result<Self, ConfigError> {
        let env: ArchiveEnv = config::from_env()?;
        let archive_url = env
            .archive_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty());
        let location = match (archive_url, database_url) {
            (None, None) => ArchiveLocation::Sqlite(state_dir.join(DEFAULT_SQLITE_FILE)),
            (None, Some(url)) => ArchiveLocation::Postgres(url.to_string()),
            (Some(alias), None) => parse_location(alias)?,
            (Some(alias), Some(url)) if alias == url => ArchiveLocation::Postgres(url.to_string()),
            // Never echo the values: they may hold passwords.
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "ARCHIVE_URL: names another database than DATABASE_URL; ARCHIVE_URL is only \
                     an alias of DATABASE_URL now, so set one of them",
                ))
            }
        };
        let purge_interval =
            PURGE_INTERVAL.whole_setting("ARCHIVE_PURGE_INTERVAL", env.archive_purge_interval)?;
        // A cut-off further back than the calendar goes would panic the purge.
        if env.archive_retention_days > MAX_RETENTION_DAYS {
            return Err(ConfigError::new(format!(
                "ARCHIVE_RETENTION_DAYS: {} is not from 0 to {MAX_RETENTION_DAYS}",
                env.archive_retention_days
            )));
        }
        if env.archive_max_batch == 0 {
            return Err(ConfigError::new("ARCHIVE_MAX_BATCH: must be at least 1"));
        }
        Ok(ArchiveConfig {
            location,
            retention_days: env.archive_retention_days,
            purge_interval: Duration::from_secs(purge_interval),
            max_batch: env.archive_max_batch,
            purge_lease_ttl: DEFAULT_PURGE_LEASE,
        })
    }

    /// The defaults, with the archive at `location` (for tests and embedding).
    pub fn new(location: ArchiveLocation) -> Self {
        ArchiveConfig {
            location,
            retention_days: default_retention_days(),
            purge_interval: Duration::from_secs(default_purge_interval()),
            max_batch: default_max_batch(),
            purge_lease_ttl: DEFAULT_PURGE_LEASE,
        }
    }

    /// How far back records are kept, if retention is on.
    pub fn retention(&self) -> Option<chrono::Duration> {
        (self.retention_days > 0).then(|| chrono::Duration::days(i64::from(self.retention_days)))
    }
}

/// `sqlite:<path>` (also `sqlite://<path>`) or `postgres://…` / `postgresql://…`.
pub fn parse_location(url: &str) -> Result<ArchiveLocation, ConfigError> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        // Checked here, at start, so a typo (or an sslrootcert that cannot be read) stops the
        // process with the variable's name instead of failing on the first write. The error
        // shows the URL only with its password hidden.
        obs_core::pg_connect::parse(url).map_err(|error| {
            ConfigError::new(format!(
                "ARCHIVE_URL: not a usable PostgreSQL URL ({error:#})"
            ))
        })?;
        return Ok(ArchiveLocation::Postgres(url.to_string()));
    }
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.strip_prefix("//").unwrap_or(rest);
        if path.is_empty() {
            return Err(ConfigError::new(
                "ARCHIVE_URL: sqlite: needs a file path, e.g. sqlite:///var/lib/archivist/archive.sqlite3",
            ));
        }
        return Ok(ArchiveLocation::Sqlite(PathBuf::from(path)));
    }
    // Never echo the value: it may hold a password.
    let scheme = url.split_once(':').map_or("(none)", |(scheme, _)| scheme);
    Err(ConfigError::new(format!(
        "ARCHIVE_URL: scheme '{scheme}' is not supported; use sqlite:<path> or postgres://…"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse() {
        assert_eq!(
            parse_location("sqlite:///var/lib/a.db").unwrap(),
            ArchiveLocation::Sqlite("/var/lib/a.db".into())
        );
        assert_eq!(
            parse_location("sqlite:rel/a.db").unwrap(),
            ArchiveLocation::Sqlite("rel/a.db".into())
        );
        assert!(matches!(
            parse_location("postgres://u:p@127.0.0.1:5432/db").unwrap(),
            ArchiveLocation::Postgres(_)
        ));
        assert!(matches!(
            parse_location("postgresql://127.0.0.1/db").unwrap(),
            ArchiveLocation::Postgres(_)
        ));
    }

    #[test]
    fn bad_locations_name_the_variable_and_hide_the_value() {
        let error = parse_location("mysql://root:secret@db/x")
            .unwrap_err()
            .to_string();
        assert!(error.contains("ARCHIVE_URL"), "{error}");
        assert!(!error.contains("secret"), "{error}");
        assert!(parse_location("sqlite:").is_err());
        assert!(parse_location("postgres://h:notaport/db").is_err());
    }

    #[test]
    fn debug_never_shows_a_postgres_password() {
        let location = ArchiveLocation::Postgres("postgres://u:secret@h/db".into());
        assert!(!format!("{location:?}").contains("secret"));
    }
}
