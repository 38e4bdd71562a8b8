//! The one commit path: every role's state, outbox and seen ids in SQL.
//!
//! - Embedded default: one SQLite database per role, `STATE_DIR/<role>.db` (WAL, durable
//!   commits), for obs-stack, a laptop or one pod with a volume.
//! - Shared: PostgreSQL when `DATABASE_URL=postgres://…` is set, one database for every role
//!   and every replica, so pods can come and go with empty disks (DESIGN §9).
//!
//! A role describes its tables as a [`Schema`] of numbered [`Migration`]s; [`Db::open`]
//! applies the missing ones under a lock (an advisory lock on PostgreSQL, the write lock on
//! SQLite) and refuses a database whose schema is newer than the binary. Work is a closure over
//! a [`Tx`], run on a blocking thread: [`Db::write`] commits it or changes nothing, so a role
//! applies a change in memory only after `write` returned. SQL is written once with `$1`-style
//! parameters and portable types (`BIGINT`, `TEXT`, `DOUBLE PRECISION`); where the dialects
//! differ, a migration carries both texts and code asks [`Tx::dialect`].
//!
//! Failures of the database itself (disk full, connection lost, a read-only file) come back as
//! [`StorageError`], which the HTTP layer answers with 503 "nothing was stored": the
//! transaction was rolled back, so a retry is safe.

mod lease;
mod postgres;
mod recover;
mod sqlite;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

pub use lease::{Lease, LeaseHandle};
pub use recover::{recover_sqlite, Recovery};

/// Where a role's state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created with its folder if missing).
    Sqlite(PathBuf),
    /// A `postgres://` or `postgresql://` URL.
    Postgres(String),
}

impl Location {
    /// `DATABASE_URL` when it names PostgreSQL, else `<state_dir>/<file_stem>.db`.
    pub fn choose(
        database_url: Option<&str>,
        state_dir: &std::path::Path,
        file_stem: &str,
    ) -> Self {
        match database_url {
            Some(url) => Location::Postgres(url.to_string()),
            None => Location::Sqlite(state_dir.join(format!("{file_stem}.db"))),
        }
    }

    /// For logs and error lines: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Location::Sqlite(path) => path.display().to_string(),
            Location::Postgres(url) => crate::pg_connect::redact(url),
        }
    }
}

/// The SQL dialect behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Sqlite => "sqlite",
            Dialect::Postgres => "postgres",
        }
    }
}

/// One step of a schema. Versions start at 1 and never change once released.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Migration {
    /// The same SQL for both dialects.
    pub const fn portable(version: i64, name: &'static str, sql: &'static str) -> Self {
        Migration {
            version,
            name,
            sqlite: sql,
            postgres: sql,
        }
    }

    fn sql(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// The tables of one component (`core`, `curator`, …): roles sharing a PostgreSQL database
/// keep their versions apart.
#[derive(Debug, Clone, Copy)]
pub struct Schema {
    pub component: &'static str,
    pub migrations: &'static [Migration],
}

impl Schema {
    fn latest(&self) -> i64 {
        self.migrations.iter().map(|m| m.version).max().unwrap_or(0)
    }
}

/// The kit's tables after the outbox's key column, the one thing the dialects spell apart.
macro_rules! core_tables_after_outbox_key {
    () => {
        "
    role TEXT NOT NULL,
    destination TEXT NOT NULL,
    body TEXT NOT NULL,
    bytes BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    claim TEXT,
    claimed_until BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_by_destination ON outbox (role, destination, seq);
CREATE INDEX outbox_by_claim ON outbox (claim);
CREATE TABLE outbox_dead (
    seq BIGINT NOT NULL,
    role TEXT NOT NULL,
    destination TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    failed_at BIGINT NOT NULL,
    PRIMARY KEY (role, destination, seq)
);
CREATE TABLE inbox (
    role TEXT NOT NULL,
    id TEXT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (role, id)
);
CREATE INDEX inbox_by_age ON inbox (seen_at);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);"
    };
}

/// The kit's own tables: the outbox, the ids a receiver has seen, the leases.
pub(crate) const CORE_SCHEMA: Schema = Schema {
    component: "core",
    migrations: &[Migration {
        version: 1,
        name: "outbox, inbox, leases",
        sqlite: concat!(
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,",
            core_tables_after_outbox_key!()
        ),
        postgres: concat!(
            "CREATE TABLE outbox (seq BIGSERIAL PRIMARY KEY,",
            core_tables_after_outbox_key!()
        ),
    }],
};

/// The failure of the database itself in `error`'s chain, if any: then nothing was stored.
pub fn storage_error(error: &anyhow::Error) -> Option<&StorageError> {
    error
        .chain()
        .find_map(|cause| cause.downcast_ref::<StorageError>())
}

/// True when `error` (or a cause) is a failure of the database itself: nothing was stored.
pub fn is_storage_error(error: &anyhow::Error) -> bool {
    storage_error(error).is_some()
}

/// A bound parameter or a column's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::Int(value)
    }
}
impl From<u64> for Value {
    /// Saturates: no count or time here comes near 2^63.
    fn from(value: u64) -> Self {
        Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}
impl From<usize> for Value {
    fn from(value: usize) -> Self {
        Value::Int(i64::try_from(value).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::Int(value.into())
    }
}
impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Int(value.into())
    }
}
impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::Real(value)
    }
}
impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::Text(value)
    }
}
impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::Text(value.to_string())
    }
}
impl From<&String> for Value {
    fn from(value: &String) -> Self {
        Value::Text(value.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(value: Option<T>) -> Self {
        value.map_or(Value::Null, Into::into)
    }
}

/// One result row, its values in select order.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub(crate) Vec<Value>);

impl Row {
    fn value(&self, index: usize) -> anyhow::Result<&Value> {
        self.0
            .get(index)
            .with_context(|| format!("the query returned no column {index}"))
    }

    pub fn int(&self, index: usize) -> anyhow::Result<i64> {
        match self.value(index)? {
            Value::Int(value) => Ok(*value),
            other => anyhow::bail!("column {index}: expected an integer, found {other:?}"),
        }
    }

    pub fn opt_int(&self, index: usize) -> anyhow::Result<Option<i64>> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.int(index).map(Some),
        }
    }

    pub fn real(&self, index: usize) -> anyhow::Result<f64> {
        match self.value(index)? {
            Value::Real(value) => Ok(*value),
            Value::Int(value) => Ok(*value as f64),
            other => anyhow::bail!("column {index}: expected a number, found {other:?}"),
        }
    }

    pub fn text(&self, index: usize) -> anyhow::Result<&str> {
        match self.value(index)? {
            Value::Text(value) => Ok(value),
            other => anyhow::bail!("column {index}: expected text, found {other:?}"),
        }
    }

    pub fn opt_text(&self, index: usize) -> anyhow::Result<Option<&str>> {
        match self.value(index)? {
            Value::Null => Ok(None),
            _ => self.text(index).map(Some),
        }
    }

    /// The column's text parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, index: usize) -> anyhow::Result<T> {
        serde_json::from_str(self.text(index)?)
            .with_context(|| format!("column {index} does not hold the expected JSON"))
    }
}

/// The database itself failed (disk full, connection lost, read-only): the transaction was
/// rolled back and nothing was stored. Answered as 503.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StorageError {
    message: String,
    /// A unique or primary-key constraint refused the write.
    unique_violation: bool,
}

impl StorageError {
    pub fn new(message: impl Into<String>, unique_violation: bool) -> Self {
        StorageError {
            message: message.into(),
            unique_violation,
        }
    }

    pub fn is_unique_violation(&self) -> bool {
        self.unique_violation
    }
}

/// The role's state cannot be used (damaged, too new, unreachable at start): the role stops
/// with exit 2 and this one line, never starting empty over it.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UnusableState(pub String);

/// True when `error` (or its cause) is a unique-constraint violation.
pub fn is_unique_violation(error: &anyhow::Error) -> bool {
    storage_error(error).is_some_and(StorageError::is_unique_violation)
}

/// A transaction in progress. Statements use `$1`, `$2`, … for parameters.
pub struct Tx<'a> {
    inner: TxInner<'a>,
}

enum TxInner<'a> {
    Sqlite(&'a rusqlite::Transaction<'a>),
    /// Owned, so it can be committed after the work; always `Some` while the work runs.
    Postgres(Option<::postgres::Transaction<'a>>),
}

impl Tx<'_> {
    pub fn dialect(&self) -> Dialect {
        match self.inner {
            TxInner::Sqlite(_) => Dialect::Sqlite,
            TxInner::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Run one statement; returns the rows it changed.
    pub fn execute(&mut self, sql: &str, params: &[Value]) -> anyhow::Result<u64> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::execute(tx, sql, params),
            TxInner::Postgres(tx) => postgres::execute(postgres::live(tx)?, sql, params),
        }
    }

    /// Run a query; returns every row.
    pub fn query(&mut self, sql: &str, params: &[Value]) -> anyhow::Result<Vec<Row>> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => sqlite::query(tx, sql, params),
            TxInner::Postgres(tx) => postgres::query(postgres::live(tx)?, sql, params),
        }
    }

    /// Run a query expected to return at most one row.
    pub fn query_opt(&mut self, sql: &str, params: &[Value]) -> anyhow::Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// Record `id` as seen by `role`; true the first time. Receivers call it in the same
    /// transaction as the change the record makes, so a redelivery (from any replica, after
    /// any restart) is recognised and changes nothing.
    pub fn first_sighting(&mut self, role: &str, id: &str) -> anyhow::Result<bool> {
        let changed = self.execute(
            "INSERT INTO inbox (role, id, seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            &[role.into(), id.into(), now_millis().into()],
        )?;
        Ok(changed == 1)
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// A role's database handle. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Backend>,
    location: Arc<Location>,
}

enum Backend {
    Sqlite(sqlite::SqliteDb),
    Postgres(postgres::PostgresDb),
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Db")
            .field("location", &self.location.describe())
            .finish()
    }
}

impl Db {
    /// Open (creating if needed) the database at `location`, check it, and bring the kit's
    /// tables and `schema` up to date. Any failure is one line naming the file or URL; the
    /// caller stops (never starting empty over data it could not read).
    pub async fn open(location: &Location, schema: Schema) -> anyhow::Result<Db> {
        let described = location.describe();
        if let Location::Sqlite(path) = location {
            if !path.exists() {
                create_sqlite(path, schema)
                    .await
                    .with_context(|| format!("creating the database {described}"))?;
            }
        }
        let location_owned = location.clone();
        let backend = blocking(move || -> anyhow::Result<Backend> {
            Ok(match &location_owned {
                Location::Sqlite(path) => Backend::Sqlite(sqlite::SqliteDb::open(path)?),
                Location::Postgres(url) => Backend::Postgres(postgres::PostgresDb::open(url)?),
            })
        })
        .await
        .with_context(|| format!("opening the database {described}"))?;
        let db = Db {
            inner: Arc::new(backend),
            location: Arc::new(location.clone()),
        };
        for schema in [CORE_SCHEMA, schema] {
            db.migrate(schema)
                .await
                .with_context(|| format!("the database {described}"))?;
        }
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        match *self.inner {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    pub fn location(&self) -> &Location {
        &self.location
    }

    /// Run `work` in one transaction and commit it durably; on any error nothing is changed.
    pub async fn write<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || match &*inner {
            Backend::Sqlite(db) => db.write(work),
            Backend::Postgres(db) => db.transaction(work),
        })
        .await
    }

    /// Run `work` in a read transaction (a consistent snapshot); nothing it does is kept.
    pub async fn read<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> anyhow::Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || match &*inner {
            Backend::Sqlite(db) => db.read(work),
            Backend::Postgres(db) => db.transaction(work),
        })
        .await
    }

    async fn migrate(&self, schema: Schema) -> anyhow::Result<()> {
        let latest = schema.latest();
        let applied = self
            .write(move |tx| {
                if tx.dialect() == Dialect::Postgres {
                    // One migrator at a time across every replica and role; released at commit.
                    tx.execute("SELECT pg_advisory_xact_lock(7345120019)", &[])?;
                }
                tx.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (
                        component TEXT NOT NULL,
                        version BIGINT NOT NULL,
                        name TEXT NOT NULL,
                        applied_at BIGINT NOT NULL,
                        PRIMARY KEY (component, version))",
                    &[],
                )?;
                let current = tx
                    .query_opt(
                        "SELECT MAX(version) FROM schema_migrations WHERE component = $1",
                        &[schema.component.into()],
                    )?
                    .map(|row| row.opt_int(0))
                    .transpose()?
                    .flatten()
                    .unwrap_or(0);
                if current > latest {
                    anyhow::bail!(
                        "its {} schema is at version {current}, newer than this binary knows \
                         ({latest}): run the newer release, or point at another database",
                        schema.component
                    );
                }
                let mut applied = Vec::new();
                for migration in schema.migrations.iter().filter(|m| m.version > current) {
                    tx.batch(migration.sql(tx.dialect())).with_context(|| {
                        format!(
                            "applying {} migration {} ({})",
                            schema.component, migration.version, migration.name
                        )
                    })?;
                    tx.execute(
                        "INSERT INTO schema_migrations (component, version, name, applied_at)
                         VALUES ($1, $2, $3, $4)",
                        &[
                            schema.component.into(),
                            migration.version.into(),
                            migration.name.into(),
                            now_millis().into(),
                        ],
                    )?;
                    applied.push(migration.version);
                }
                Ok((current, applied))
            })
            .await?;
        let (from, applied) = applied;
        // Upgrading existing state is news for an operator; creating a fresh schema is not.
        if !applied.is_empty() && from > 0 {
            tracing::info!(
                component = schema.component,
                from,
                versions = ?applied,
                "database schema migrated"
            );
        } else if !applied.is_empty() {
            tracing::debug!(component = schema.component, "database schema created");
        }
        Ok(())
    }
}

/// Create a SQLite database whole or not at all: built under a staging name with durability
/// off, then synced once and linked into place. A crash leaves either no database or a
/// complete one (never a half-made file the next start would refuse as damaged), and a start
/// on an empty folder pays two syncs instead of one per migration step.
async fn create_sqlite(path: &std::path::Path, schema: Schema) -> anyhow::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    sqlite::remove_stale_staging(path);
    let staging = sqlite::staging_path(path);
    let built = async {
        let opened = staging.clone();
        let backend = blocking(move || sqlite::SqliteDb::create_staging(&opened)).await?;
        let db = Db {
            inner: Arc::new(Backend::Sqlite(backend)),
            location: Arc::new(Location::Sqlite(staging.clone())),
        };
        for schema in [CORE_SCHEMA, schema] {
            db.migrate(schema).await?;
        }
        let Ok(Backend::Sqlite(backend)) = Arc::try_unwrap(db.inner) else {
            anyhow::bail!("the new database is still in use");
        };
        let (staging, path) = (staging.clone(), path.to_path_buf());
        blocking(move || {
            backend.close()?;
            sqlite::publish(&staging, &path)
        })
        .await
    }
    .await;
    if built.is_err() {
        sqlite::remove_with_sidecars(&staging);
    }
    built
}

impl Tx<'_> {
    /// Several statements separated by `;`, without parameters (migrations).
    fn batch(&mut self, sql: &str) -> anyhow::Result<()> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => tx.execute_batch(sql).map_err(sqlite::storage_error),
            TxInner::Postgres(tx) => postgres::live(tx)?
                .batch_execute(sql)
                .map_err(postgres::storage_error),
        }
    }
}

/// Run blocking database work off the async threads.
async fn blocking<T, F>(work: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> anyhow::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .context("a database task stopped")?
}
