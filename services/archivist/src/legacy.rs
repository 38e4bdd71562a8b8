//! The archive an earlier version kept at `STATE_DIR/archive.sqlite3`, imported once.
//!
//! Versions before the one commit path kept their own SQLite file there; the archive is now
//! the role's database (`STATE_DIR/archivist.db`, or PostgreSQL). At start, if that old file
//! exists (and is not itself the archive, as with `ARCHIVE_URL=sqlite:…/archive.sqlite3`),
//! every record in it is copied into the archive in ONE transaction through obs-core's
//! [`Db`], then the file is renamed aside to `archive.sqlite3.imported`. Ids already in the
//! archive stay as they are, so a crash between the commit and the rename only repeats a
//! harmless import at the next start.
//!
//! The old file goes through the same checks as the archive itself, before anything opens
//! it: a damaged WAL (`obs_core::sqlite_wal`) or a failing `quick_check`, a file that is not
//! SQLite, or one without the archive's table stops the role with one line naming the file.
//! The role never starts without records it once acknowledged and says nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use obs_core::db::{Db, Tx, Value};
use rusqlite::{Connection, OpenFlags};

use crate::config::{ArchiveLocation, LEGACY_SQLITE_FILE};

/// Records per INSERT statement while importing: 5 parameters each, far below either
/// database's parameter limit, and few enough statements for a large archive.
const ROWS_PER_INSERT: usize = 200;

/// Import `state_dir/archive.sqlite3` into `db` if an earlier version left one there; returns
/// how many records were new to the archive (`None` when there was nothing to import).
pub async fn import(
    db: &Db,
    state_dir: &Path,
    location: &ArchiveLocation,
) -> anyhow::Result<Option<u64>> {
    let legacy = state_dir.join(LEGACY_SQLITE_FILE);
    if !legacy.exists() || is_the_archive(&legacy, location) {
        return Ok(None);
    }
    let source = legacy.clone();
    let (read, imported) = db
        .write(move |tx| copy_records(&source, tx))
        .await
        .with_context(|| {
            format!(
                "{} (the archive of an earlier version) cannot be imported; nothing was \
                 imported and the file is untouched: fix it or move it aside",
                legacy.display()
            )
        })?;
    for file in files_of(&legacy) {
        if file.exists() {
            let aside = with_suffix(&file, ".imported");
            std::fs::rename(&file, &aside).with_context(|| {
                format!(
                    "renaming {} to {} after importing it",
                    file.display(),
                    aside.display()
                )
            })?;
        }
    }
    tracing::info!(
        file = %legacy.display(),
        read,
        imported,
        "imported the archive of an earlier version; the file is renamed *.imported"
    );
    Ok(Some(imported))
}

/// The legacy path is where the archive itself lives (an explicit `ARCHIVE_URL=sqlite:` to
/// the old file): nothing to import, the file is used in place.
fn is_the_archive(legacy: &Path, location: &ArchiveLocation) -> bool {
    let ArchiveLocation::Sqlite(path) = location else {
        return false;
    };
    match (legacy.canonicalize(), path.canonicalize()) {
        (Ok(legacy), Ok(path)) => legacy == path,
        _ => legacy == path,
    }
}

/// Every record of the old file into `tx`; returns (records read, records new to the archive).
fn copy_records(legacy: &Path, tx: &mut Tx<'_>) -> anyhow::Result<(u64, u64)> {
    // Before SQLite opens it: opening would replay the intact part of a damaged WAL and
    // forget the rest without a word.
    obs_core::sqlite_wal::check(legacy)?;
    // Read-write (never create): SQLite needs it to replay a WAL the old version left.
    let old = Connection::open_with_flags(
        legacy,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let verdict: String = old.query_row("PRAGMA quick_check", [], |row| row.get(0))?;
    anyhow::ensure!(
        verdict == "ok",
        "it is damaged (quick_check: {})",
        verdict.lines().next().unwrap_or_default()
    );
    let mut select = old
        .prepare("SELECT id, kind, service, ts, record FROM records ORDER BY rowid")
        .context("it holds no archive (no readable records table)")?;
    let mut rows = select.query([])?;
    let (mut read, mut imported) = (0u64, 0u64);
    let mut chunk: Vec<Value> = Vec::with_capacity(ROWS_PER_INSERT * 5);
    while let Some(row) = rows.next()? {
        chunk.push(Value::Text(row.get(0)?));
        chunk.push(Value::Text(row.get(1)?));
        chunk.push(Value::Text(row.get(2)?));
        chunk.push(Value::Int(row.get(3)?));
        chunk.push(Value::Text(row.get(4)?));
        read += 1;
        if chunk.len() == ROWS_PER_INSERT * 5 {
            imported += insert(tx, &chunk)?;
            chunk.clear();
        }
    }
    if !chunk.is_empty() {
        imported += insert(tx, &chunk)?;
    }
    Ok((read, imported))
}

/// One multi-row INSERT of `values` (5 per record); returns the rows that were new.
fn insert(tx: &mut Tx<'_>, values: &[Value]) -> anyhow::Result<u64> {
    let rows = (0..values.len() / 5)
        .map(|row| {
            let first = row * 5 + 1;
            format!(
                "(${}, ${}, ${}, ${}, ${})",
                first,
                first + 1,
                first + 2,
                first + 3,
                first + 4
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    tx.execute(
        &format!(
            "INSERT INTO records (id, kind, service, ts, record) VALUES {rows} \
             ON CONFLICT (id) DO NOTHING"
        ),
        values,
    )
}

/// The database file and the WAL and shared-memory files SQLite keeps beside it.
fn files_of(path: &Path) -> [PathBuf; 3] {
    [
        path.to_path_buf(),
        with_suffix(path, "-wal"),
        with_suffix(path, "-shm"),
    ]
}

/// `path` with `suffix` appended to its name (not an extension: `a.sqlite3` → `a.sqlite3-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}
