//! The embedded backend: one SQLite file per role.
//!
//! Durability: WAL with `synchronous=FULL`, so a commit returns after the WAL is fsynced. One
//! write connection, taken in turn (`BEGIN IMMEDIATE`), and a few read connections, which WAL
//! lets read while the writer writes. On open the file is checked before anything is
//! written: a damaged WAL that would silently drop committed transactions, or a failing
//! `PRAGMA quick_check`, stops the role with one line (see [`crate::db::recover`]).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use super::{Row, StorageError, Tx, TxInner, Value};

/// How long a connection waits for another's lock (a checkpoint, a second process).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
const IDLE_READERS: usize = 4;
const STATEMENT_CACHE: usize = 128;
/// The writer's page cache, in KiB (SQLite's default is 2 MiB). A role's working set (the
/// curator's incidents, the archivist's recent pages) outgrows 2 MiB quickly; then every
/// transaction re-reads pages through the kernel and spills dirty pages to the WAL before it
/// commits. Pages are allocated as they are used: an idle role stays small.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

pub(crate) struct SqliteDb {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SqliteDb {
    pub(crate) fn open(path: &Path) -> anyhow::Result<SqliteDb> {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
        }
        let existed = path.exists();
        if existed {
            super::recover::check_before_open(path)?;
        }
        let writer = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage_error)?;
        configure(&writer)?;
        if existed {
            let verdict: String = writer
                .query_row("PRAGMA quick_check", [], |row| row.get(0))
                .map_err(storage_error)?;
            if verdict != "ok" {
                anyhow::bail!(
                    "it is damaged (quick_check: {}); start with --recover to keep what is \
                     intact",
                    verdict.lines().next().unwrap_or_default()
                );
            }
        }
        // Only after quick_check, which reads every page: with the larger cache those pages
        // would stay resident from the start.
        writer
            .execute_batch(&format!("PRAGMA cache_size=-{WRITER_CACHE_KIB};"))
            .map_err(storage_error)?;
        Ok(SqliteDb {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// A database under construction at `staging` (see [`super::create_sqlite`]): WAL like
    /// every database here, but with durability off. Nothing in it is worth a sync until it is
    /// whole; [`publish`] then syncs it once.
    pub(crate) fn create_staging(staging: &Path) -> anyhow::Result<SqliteDb> {
        let writer = Connection::open_with_flags(
            staging,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(storage_error)?;
        // Before the switch to WAL, which would otherwise sync the rollback journal it leaves.
        writer
            .execute_batch("PRAGMA synchronous=OFF;")
            .map_err(storage_error)?;
        configure(&writer)?;
        writer
            .execute_batch("PRAGMA synchronous=OFF;")
            .map_err(storage_error)?;
        Ok(SqliteDb {
            path: staging.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
        })
    }

    /// Checkpoint everything into the main file and close: after this the file alone holds
    /// the database.
    pub(crate) fn close(self) -> anyhow::Result<()> {
        drop(self.readers);
        let writer = self
            .writer
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(storage_error)?;
        writer.close().map_err(|(_, error)| storage_error(error))
    }

    pub(crate) fn write<T>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut connection = lock(&self.writer);
        let transaction = connection
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(storage_error)?;
        let value = work(&mut Tx {
            inner: TxInner::Sqlite(&transaction),
        })?;
        transaction.commit().map_err(storage_error)?;
        Ok(value)
    }

    pub(crate) fn read<T>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let reader = lock(&self.readers).pop();
        let mut connection = match reader {
            Some(connection) => connection,
            None => {
                let connection = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(storage_error)?;
                connection
                    .busy_timeout(BUSY_TIMEOUT)
                    .map_err(storage_error)?;
                connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                connection
            }
        };
        let result = (|| {
            let transaction = connection
                .transaction_with_behavior(TransactionBehavior::Deferred)
                .map_err(storage_error)?;
            let value = work(&mut Tx {
                inner: TxInner::Sqlite(&transaction),
            });
            value
        })();
        let mut idle = lock(&self.readers);
        if idle.len() < IDLE_READERS {
            idle.push(connection);
        }
        result
    }
}

/// A name beside `path` for building it: unique per process and attempt, and recognisably
/// ours (`<file>.creating-<pid>-<n>`) so a crash's leftover can be cleared.
pub(crate) fn staging_path(path: &Path) -> PathBuf {
    static ATTEMPT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let attempt = ATTEMPT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".creating-{}-{attempt}", std::process::id()));
    PathBuf::from(name)
}

/// Leftovers of a creation that a crash interrupted (its process is gone): removed, so they
/// neither pile up nor get mistaken for state.
pub(crate) fn remove_stale_staging(path: &Path) {
    let (Some(folder), Some(file)) = (path.parent(), path.file_name()) else {
        return;
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    let prefix = format!("{}.creating-", file.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(folder) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(&prefix) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        // Without /proc nothing is known of the process: its file is kept.
        let alive = pid == std::process::id().to_string()
            || Path::new("/proc").join(pid).exists()
            || !Path::new("/proc/self").exists();
        if !alive {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Put the finished staging database at `path`: synced, then linked into place (never over
/// an existing file: if another opener got there first, its database is the one), then the
/// folder synced so the new name survives a crash.
pub(crate) fn publish(staging: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(staging)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("syncing {}", staging.display()))?;
    match std::fs::hard_link(staging, path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
        // A file system without hard links: a rename, which may replace a file that appeared
        // since the check (only a second process creating the same database at once).
        Err(_) => std::fs::rename(staging, path)
            .with_context(|| format!("moving {} into place", staging.display()))?,
    }
    remove_with_sidecars(staging);
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::File::open(folder)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("syncing the folder {}", folder.display()))?;
    }
    Ok(())
}

/// Remove a database file and its WAL and shared-memory files, if present.
pub(crate) fn remove_with_sidecars(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut name = path.as_os_str().to_os_string();
        name.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(name));
    }
}

fn configure(connection: &Connection) -> anyhow::Result<()> {
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(storage_error)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = connection
        .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
        .map_err(storage_error)?;
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "SQLite refused WAL mode (got '{mode}')"
    );
    connection
        .execute_batch("PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;")
        .map_err(storage_error)?;
    Ok(())
}

/// `$1` → `?1`: one SQL text for both dialects. Quoted text and identifiers are left alone.
pub(crate) fn translate(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    let mut out = String::with_capacity(sql.len());
    let mut quote: Option<char> = None;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                if c == q {
                    quote = None;
                }
                out.push(c);
            }
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                out.push(c);
            }
            None if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) => out.push('?'),
            None => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

struct Param<'a>(&'a Value);

impl rusqlite::ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self.0 {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(value) => ToSqlOutput::Borrowed(ValueRef::Integer(*value)),
            Value::Real(value) => ToSqlOutput::Borrowed(ValueRef::Real(*value)),
            Value::Text(value) => ToSqlOutput::Borrowed(ValueRef::Text(value.as_bytes())),
        })
    }
}

fn bind(params: &[Value]) -> Vec<Param<'_>> {
    params.iter().map(Param).collect()
}

pub(crate) fn execute(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: &[Value],
) -> anyhow::Result<u64> {
    let mut statement = tx.prepare_cached(&translate(sql)).map_err(storage_error)?;
    let changed = statement
        .execute(rusqlite::params_from_iter(bind(params)))
        .map_err(storage_error)?;
    Ok(changed as u64)
}

pub(crate) fn query(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    params: &[Value],
) -> anyhow::Result<Vec<Row>> {
    let mut statement = tx.prepare_cached(&translate(sql)).map_err(storage_error)?;
    let columns = statement.column_count();
    let mut rows = statement
        .query(rusqlite::params_from_iter(bind(params)))
        .map_err(storage_error)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(storage_error)? {
        let mut values = Vec::with_capacity(columns);
        for index in 0..columns {
            values.push(match row.get_ref(index).map_err(storage_error)? {
                ValueRef::Null => Value::Null,
                ValueRef::Integer(value) => Value::Int(value),
                ValueRef::Real(value) => Value::Real(value),
                ValueRef::Text(bytes) => Value::Text(
                    std::str::from_utf8(bytes)
                        .context("a text column is not UTF-8")?
                        .to_string(),
                ),
                ValueRef::Blob(_) => anyhow::bail!("column {index} is a blob; none is expected"),
            });
        }
        out.push(Row(values));
    }
    Ok(out)
}

pub(crate) fn storage_error(error: rusqlite::Error) -> anyhow::Error {
    let unique = matches!(
        &error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    );
    let message = match &error {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::DiskFull =>
        {
            format!("the disk is full ({error})")
        }
        _ => error.to_string(),
    };
    StorageError::new(message, unique).into()
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn parameters_become_numbered_question_marks_outside_quotes() {
        assert_eq!(
            translate("SELECT '$1', \"a$2\" FROM t WHERE a = $1 AND b = $12"),
            "SELECT '$1', \"a$2\" FROM t WHERE a = ?1 AND b = ?12"
        );
        assert_eq!(translate("SELECT 1"), "SELECT 1");
    }
}
