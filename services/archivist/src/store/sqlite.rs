//! The embedded backend: one SQLite file under STATE_DIR (`archivist.db`).
//!
//! Opened only after obs-core's [`obs_core::db::Db`] has checked the file (a damaged WAL or a
//! failing `quick_check` is refused before any connection here replays it) and created the
//! schema; see [`crate::store::open`].
//!
//! Durability: WAL journal with `synchronous=FULL`, so a commit returns only after the WAL is
//! fsynced. One write connection, owned by whoever holds its lock — in practice the group
//! committer ([`crate::commit`]), which puts many batches in one transaction so they share one
//! fsync — and a few read-only connections, which WAL lets read while the writer writes.
//! SQLite calls block, so each runs on tokio's blocking pool, never on an HTTP worker. The
//! kit's own connection on the same file (leases) writes a few rows a minute; SQLite's write
//! lock and busy timeout keep the two apart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};

use super::{
    page_query, Cursor, NewRecord, PageRequest, SqlValue, Store, StoreStats, StoredRecord,
};

/// How long a connection waits for another's lock (a second process on the same file, or
/// a checkpoint) before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer's page cache, at most (SQLite's default is 2 MiB).
const WRITER_CACHE_KIB: i64 = 32 * 1024;
/// WAL pages (4 KiB each) between automatic checkpoints.
const WAL_CHECKPOINT_PAGES: i64 = 8192;
/// After a checkpoint, the WAL file is truncated back to this size.
const WAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;
/// Read connections kept open between requests.
const IDLE_READERS: usize = 4;
/// One statement per combination of filters and cursor, plus a few.
const STATEMENT_CACHE: usize = 64;

pub struct SqliteStore {
    path: PathBuf,
    writer: Arc<Mutex<Connection>>,
    readers: Arc<Readers>,
}

impl SqliteStore {
    /// Open the archive at `path`, which [`crate::store::open`] has already checked and
    /// migrated through obs-core (never call it before that: this connection would replay a
    /// damaged WAL's intact prefix and overwrite the rest).
    pub(crate) async fn open(path: &Path) -> anyhow::Result<SqliteStore> {
        let path = path.to_path_buf();
        run_blocking(move || {
            let writer = open_writer(&path)?;
            Ok(SqliteStore {
                readers: Arc::new(Readers {
                    path: path.clone(),
                    idle: Mutex::new(Vec::new()),
                }),
                writer: Arc::new(Mutex::new(writer)),
                path,
            })
        })
        .await
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn open_writer(path: &Path) -> anyhow::Result<Connection> {
    // No CREATE: the file exists, obs-core made or checked it; if it vanished since, an error
    // beats a fresh empty archive.
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        connection.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    // Without WAL, readers would block the writer and synchronous=FULL would mean something
    // else; refuse rather than run with weaker guarantees than documented.
    anyhow::ensure!(
        mode.eq_ignore_ascii_case("wal"),
        "journal_mode is {mode}: WAL could not be enabled (is the folder on a network file system?)"
    );
    // FULL: the WAL is fsynced at every commit, so an acknowledged batch survives power loss
    // (NORMAL would only survive a process crash).
    connection.pragma_update(None, "synchronous", "FULL")?;
    // Appends touch the right edge of every index; keeping those pages cached saves reading
    // them back for each commit. Grown only as used, so idle memory is unaffected.
    connection.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Checkpoint every ~32 MiB of WAL rather than SQLite's 4 MiB: the same hot index pages
    // are rewritten by commit after commit, and each checkpoint copies them (and fsyncs the
    // database file) only once.
    connection.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
    connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT_BYTES)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(connection)
}

/// Read-only connections, opened on demand and a few kept for the next request.
struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(&self, read: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> anyhow::Result<T> {
        let pooled = lock(&self.idle).pop();
        let connection = match pooled {
            Some(connection) => connection,
            None => open_reader(&self.path)
                .with_context(|| format!("opening {} for reading", self.path.display()))?,
        };
        let result = read(&connection);
        // A connection that just failed may be in a bad state; let it go.
        if result.is_ok() {
            let mut idle = lock(&self.idle);
            if idle.len() < IDLE_READERS {
                idle.push(connection);
            }
        }
        Ok(result?)
    }
}

/// A poisoned lock only means another thread panicked while holding it; a SQLite connection
/// stays consistent (an open transaction is rolled back when its guard drops), so carry on.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .context("a SQLite task panicked")?
}

fn insert_all(connection: &mut Connection, records: &[NewRecord]) -> rusqlite::Result<Vec<bool>> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut inserted = Vec::with_capacity(records.len());
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO records (id, kind, service, ts, record) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO NOTHING",
        )?;
        for record in records {
            let changed = insert.execute(params![
                record.id,
                record.kind,
                record.service,
                record.ts,
                record.json
            ])?;
            inserted.push(changed == 1);
        }
    }
    // synchronous=FULL: this returns after the WAL is on stable storage.
    transaction.commit()?;
    Ok(inserted)
}

fn read_page(
    connection: &Connection,
    request: &PageRequest,
) -> rusqlite::Result<Vec<StoredRecord>> {
    let (sql, params) = page_query(request, |n| format!("?{n}"));
    let mut statement = connection.prepare_cached(&sql)?;
    let rows = statement.query_map(
        rusqlite::params_from_iter(params.into_iter().map(|value| match value {
            SqlValue::Text(text) => rusqlite::types::Value::Text(text),
            SqlValue::Integer(number) => rusqlite::types::Value::Integer(number),
        })),
        |row| {
            Ok(StoredRecord {
                cursor: Cursor {
                    ts: row.get(0)?,
                    id: row.get(1)?,
                },
                json: row.get(2)?,
            })
        },
    )?;
    rows.collect()
}

fn count_by(connection: &Connection, column: &str) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {column}, count(*) FROM records GROUP BY {column}"
    ))?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?.max(0) as u64,
        ))
    })?;
    rows.collect()
}

fn read_stats(connection: &Connection) -> rusqlite::Result<StoreStats> {
    // One read transaction, so the figures describe one moment.
    let snapshot = connection.unchecked_transaction()?;
    let by_kind = count_by(&snapshot, "kind")?;
    let by_service = count_by(&snapshot, "service")?;
    // Two statements: SQLite answers a lone min() or max() from the index, both together by
    // scanning the table.
    let oldest = snapshot.query_row("SELECT min(ts) FROM records", [], |row| row.get(0))?;
    let newest = snapshot.query_row("SELECT max(ts) FROM records", [], |row| row.get(0))?;
    snapshot.finish()?;
    Ok(StoreStats {
        records: by_kind.iter().map(|(_, count)| count).sum(),
        by_kind: by_kind.into_iter().collect(),
        by_service: by_service.into_iter().collect(),
        oldest,
        newest,
        size_bytes: None,
    })
}

fn delete_oldest(connection: &mut Connection, cutoff: i64, max: usize) -> rusqlite::Result<u64> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let deleted = transaction.execute(
        "DELETE FROM records WHERE rowid IN \
         (SELECT rowid FROM records WHERE ts < ?1 ORDER BY ts LIMIT ?2)",
        params![cutoff, i64::try_from(max).unwrap_or(i64::MAX)],
    )?;
    transaction.commit()?;
    Ok(deleted as u64)
}

/// The database file and its WAL, as they are on disk now.
fn files_size(path: &Path) -> u64 {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .filter_map(|file| std::fs::metadata(file).ok())
        .map(|metadata| metadata.len())
        .sum()
}

impl Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn insert(&self, records: Vec<NewRecord>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
        let writer = self.writer.clone();
        Box::pin(run_blocking(move || {
            insert_all(&mut lock(&writer), &records).context("inserting records into SQLite")
        }))
    }

    fn page(&self, request: PageRequest) -> BoxFuture<'_, anyhow::Result<Vec<StoredRecord>>> {
        let readers = self.readers.clone();
        Box::pin(run_blocking(move || {
            readers
                .with(|connection| read_page(connection, &request))
                .context("reading a page of records from SQLite")
        }))
    }

    fn stats(&self) -> BoxFuture<'_, anyhow::Result<StoreStats>> {
        let readers = self.readers.clone();
        let path = self.path.clone();
        Box::pin(run_blocking(move || {
            let mut stats = readers
                .with(read_stats)
                .context("reading archive statistics from SQLite")?;
            stats.size_bytes = Some(files_size(&path));
            Ok(stats)
        }))
    }

    fn purge_before(&self, cutoff: i64, max_records: usize) -> BoxFuture<'_, anyhow::Result<u64>> {
        let writer = self.writer.clone();
        Box::pin(run_blocking(move || {
            delete_oldest(&mut lock(&writer), cutoff, max_records)
                .context("purging old records from SQLite")
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What makes an acknowledged batch survive a power cut, not only a crash: WAL, fsynced
    /// at every commit. A SIGKILL test cannot tell these from weaker settings (the page cache
    /// survives a killed process), so they are checked here.
    #[test]
    fn the_writer_commits_durably() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("archivist.db");
        Connection::open(&path).unwrap();
        let connection = open_writer(&path).unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let synchronous: i64 = connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .unwrap();
        assert_eq!(synchronous, 2, "FULL");
    }
}
