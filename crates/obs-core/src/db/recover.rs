//! Damaged state: one policy for every role. Detect it at open (a WAL that would silently
//! drop committed transactions, a failing `quick_check`), refuse to start with one line naming
//! the file, and offer `<role> --recover`, which keeps what is intact and says what it kept.
//! A role never starts empty, or with less than it acknowledged, without being told to.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rusqlite::{Connection, OpenFlags};

/// Refuse a database whose WAL is damaged before SQLite opens it (opening would replay the
/// intact prefix, checkpoint it, and forget the rest without a word).
pub(crate) fn check_before_open(path: &Path) -> anyhow::Result<()> {
    crate::sqlite_wal::check(path).map_err(|error| {
        anyhow::anyhow!("{error:#}; `--recover` keeps what is intact and says what it kept")
    })
}

/// What `--recover` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    /// Where the damaged files were moved (kept for a post-mortem).
    pub damaged_copy: PathBuf,
    /// Rows copied, per table.
    pub kept: Vec<(String, u64)>,
    /// Tables that could not be read at all.
    pub unreadable: Vec<String>,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rows: u64 = self.kept.iter().map(|(_, n)| n).sum();
        write!(
            f,
            "kept {rows} rows in {} tables ({}); the damaged files are at {}",
            self.kept.len(),
            self.kept
                .iter()
                .map(|(table, n)| format!("{table}: {n}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.damaged_copy.display()
        )?;
        if !self.unreadable.is_empty() {
            write!(f, "; unreadable: {}", self.unreadable.join(", "))?;
        }
        Ok(())
    }
}

/// Move the damaged database (and its WAL) aside and rebuild it from every row SQLite can
/// still read, table by table. The new file then opens normally.
pub fn recover_sqlite(path: &Path) -> anyhow::Result<Recovery> {
    anyhow::ensure!(path.exists(), "{} does not exist", path.display());
    let stamp = chrono_stamp();
    let damaged = path.with_extension(format!("db.damaged-{stamp}"));
    for suffix in ["", "-wal", "-shm"] {
        let from = PathBuf::from(format!("{}{suffix}", path.display()));
        if from.exists() {
            let to = PathBuf::from(format!("{}{suffix}", damaged.display()));
            std::fs::rename(&from, &to)
                .with_context(|| format!("moving {} aside", from.display()))?;
        }
    }
    // The damaged copy's WAL stays with it; SQLite reads what of it is intact.
    let old = Connection::open_with_flags(&damaged, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .with_context(|| format!("opening {}", damaged.display()))?;
    let new = Connection::open(path).with_context(|| format!("creating {}", path.display()))?;
    new.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")?;
    let tables: Vec<(String, String)> = {
        let mut statement = old.prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'table' AND sql IS NOT NULL \
             AND name NOT LIKE 'sqlite_%' ORDER BY rowid",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let indexes: Vec<String> = {
        let mut statement =
            old.prepare("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.filter_map(Result::ok).collect()
    };
    let mut kept = Vec::new();
    let mut unreadable = Vec::new();
    for (table, sql) in &tables {
        new.execute_batch(sql)
            .with_context(|| format!("recreating table {table}"))?;
        match copy_rows(&old, &new, table) {
            Ok(rows) => kept.push((table.clone(), rows)),
            Err(error) => {
                tracing::warn!(table, error = %format!("{error:#}"), "a table could not be read");
                unreadable.push(table.clone());
            }
        }
    }
    for sql in &indexes {
        new.execute_batch(sql).context("recreating an index")?;
    }
    Ok(Recovery {
        damaged_copy: damaged,
        kept,
        unreadable,
    })
}

/// Copy row by row, so one unreadable page costs the rows on it, not the table.
fn copy_rows(old: &Connection, new: &Connection, table: &str) -> anyhow::Result<u64> {
    let quoted = format!("\"{}\"", table.replace('"', "\"\""));
    let mut select = old.prepare(&format!("SELECT * FROM {quoted}"))?;
    let columns = select.column_count();
    let placeholders = (1..=columns)
        .map(|i| format!("?{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut insert = new.prepare(&format!("INSERT INTO {quoted} VALUES ({placeholders})"))?;
    let mut rows = select.query([])?;
    let mut copied = 0;
    new.execute_batch("BEGIN")?;
    loop {
        match rows.next() {
            Ok(Some(row)) => {
                let values: Vec<rusqlite::types::Value> =
                    (0..columns).map(|i| row.get(i)).collect::<Result<_, _>>()?;
                insert.execute(rusqlite::params_from_iter(values))?;
                copied += 1;
            }
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(table, %error, "stopped reading a damaged table; keeping the rows before");
                break;
            }
        }
    }
    new.execute_batch("COMMIT")?;
    Ok(copied)
}

fn chrono_stamp() -> String {
    let millis = super::now_millis();
    format!("{millis}")
}
