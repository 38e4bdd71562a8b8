//! Storage: one trait, two backends. SQLite ([`sqlite`]) is the embedded default, PostgreSQL
//! ([`postgres`]) is what several replicas share. Both keep the same table — the record's
//! canonical JSON plus the columns the filters need — and answer the same page query, built
//! once here, so paging, filters and ordering cannot drift apart between them.
//!
//! [`open`] brings the archive onto the fleet's one persistence layer (obs-core's
//! [`obs_core::db`]) in a fixed order: first an [`obs_core::db::Db`] opens the location, which
//! refuses a damaged SQLite WAL or a failing `quick_check` with one line naming the file,
//! applies the archivist's [`SCHEMA`] migrations under the lock, and refuses an archive whose
//! schema is newer than this binary. Only then do the backend's own connections open it. That
//! `Db` stays open for what the kit does (leases, the legacy import); the hot paths (group
//! commits, pages, exports) keep their own tuned connections, because the kit's generic
//! `Tx` would cost them their speed: on SQLite the group committer owns a writer with a
//! larger page cache and a rarer checkpoint (85,000 durable records/s), on PostgreSQL an
//! async pool inserts a whole group as one `unnest` statement, which the kit's scalar
//! parameters cannot express.
//!
//! The archive's order is `(ts, id)`: the record's own timestamp, then its ULID to break ties.
//! A page cursor is the last `(ts, id)` returned, so paging is a range scan of an index
//! (keyset paging), as cheap on page 10,000 as on page 1.

pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::future::BoxFuture;
use obs_core::db::{Db, Migration, Schema};

use crate::config::ArchiveLocation;

/// The archivist's tables, versioned in `schema_migrations` under the component `archivist`.
///
/// Version 1 is the table earlier versions created themselves, with `IF NOT EXISTS` so an
/// archive they left (an explicit `ARCHIVE_URL=sqlite:…` file, or a PostgreSQL database) is
/// adopted in place.
///
/// SQLite: STRICT, so SQLite checks the column types as PostgreSQL would. One index per
/// equality filter, each `(filter, ts, id)` so a page is a range scan in order, and each
/// carrying the other filter's column so a `kind` + `service` query filters inside the index
/// without reading rows it will drop. There is deliberately no `(kind, service, …)` index:
/// every distinct pair would be one more place each commit writes a page (hundreds of pages
/// per group commit in a fleet with many services), which costs more append throughput than
/// it saves on reads.
///
/// PostgreSQL: `COLLATE "C"`, so ids and names compare byte by byte as in SQLite and both
/// backends page in the same order whatever the database's locale. Unlike SQLite it keeps a
/// `(kind, service, ts, id)` index: PostgreSQL's WAL logs the inserted tuples, not whole
/// pages, so the extra index costs an append little, while a plain index scan there could not
/// filter on a trailing non-key column without visiting the table.
pub const SCHEMA: Schema = Schema {
    component: "archivist",
    migrations: &[Migration {
        version: 1,
        name: "records",
        sqlite: "
CREATE TABLE IF NOT EXISTS records (
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    service TEXT NOT NULL,
    ts INTEGER NOT NULL,
    record TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS records_by_ts ON records (ts, id);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, ts, id, service);
CREATE INDEX IF NOT EXISTS records_by_service ON records (service, ts, id, kind);
",
        postgres: r#"
CREATE TABLE IF NOT EXISTS records (
    id TEXT COLLATE "C" PRIMARY KEY,
    kind TEXT COLLATE "C" NOT NULL,
    service TEXT COLLATE "C" NOT NULL,
    ts BIGINT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_ts ON records (ts, id);
CREATE INDEX IF NOT EXISTS records_by_kind ON records (kind, ts, id);
CREATE INDEX IF NOT EXISTS records_by_service ON records (service, ts, id);
CREATE INDEX IF NOT EXISTS records_by_kind_service ON records (kind, service, ts, id);
"#,
    }],
};

/// A record ready to store: validated, with its canonical JSON rendered once, by the HTTP
/// worker that received it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// The ULID in its canonical (upper-case) text form.
    pub id: String,
    pub kind: String,
    pub service: String,
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// The whole record as JSON, exactly as reads and exports return it.
    pub json: String,
}

impl NewRecord {
    pub fn cursor(&self) -> Cursor {
        Cursor {
            ts: self.ts,
            id: self.id.clone(),
        }
    }
}

/// A position in the archive's `(ts, id)` order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor {
    pub ts: i64,
    pub id: String,
}

/// What a read selects. Empty fields select everything.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    pub kind: Option<String>,
    pub service: Option<String>,
    /// Inclusive lower bound on `ts`, in nanoseconds.
    pub since: Option<i64>,
    /// Exclusive upper bound on `ts`, in nanoseconds.
    pub until: Option<i64>,
}

/// One page: the records matching `filter` strictly after `after`, in order, at most `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub filter: Filter,
    pub after: Option<Cursor>,
    pub limit: usize,
}

/// A stored record as a read returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRecord {
    pub cursor: Cursor,
    pub json: String,
}

/// What `GET /v1/stats` reports about the stored records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    pub records: u64,
    pub by_kind: BTreeMap<String, u64>,
    pub by_service: BTreeMap<String, u64>,
    pub oldest: Option<i64>,
    pub newest: Option<i64>,
    /// Bytes on disk (database and WAL files; the table and its indexes for PostgreSQL).
    pub size_bytes: Option<u64>,
}

/// What every backend provides. Methods return boxed futures so the role can hold either
/// backend as `Arc<dyn Store>`, chosen at start from ARCHIVE_URL.
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// Insert `records` (their ids are distinct) in ONE transaction, and return only once it
    /// is durable: committed and flushed to stable storage. The answer says, per record,
    /// whether it was new (`true`) or its id was already archived (`false`, nothing written).
    fn insert(&self, records: Vec<NewRecord>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>>;

    /// The records of one page, in `(ts, id)` order.
    fn page(&self, request: PageRequest) -> BoxFuture<'_, anyhow::Result<Vec<StoredRecord>>>;

    fn stats(&self) -> BoxFuture<'_, anyhow::Result<StoreStats>>;

    /// Delete up to `max_records` of the oldest records with `ts < cutoff`, in one
    /// transaction; returns how many were deleted. Retention calls it until it returns less
    /// than `max_records`, so a large purge never holds the writer for long.
    fn purge_before(&self, cutoff: i64, max_records: usize) -> BoxFuture<'_, anyhow::Result<u64>>;
}

/// An open archive: the kit's handle on its database, and the backend's hot paths.
#[derive(Clone)]
pub struct Opened {
    pub db: Db,
    pub store: Arc<dyn Store>,
}

/// Open (creating if needed) the archive at `location`: checked and migrated through
/// obs-core first, then the backend's own connections (see the module doc). Any failure is
/// one line naming the file or database; the role does not start.
pub async fn open(location: &ArchiveLocation) -> anyhow::Result<Opened> {
    Ok(match location {
        ArchiveLocation::Sqlite(path) => {
            let db = Db::open(&location.database(), SCHEMA).await?;
            let store = sqlite::SqliteStore::open(path)
                .await
                .with_context(|| format!("opening the archive {}", path.display()))?;
            Opened {
                db,
                store: Arc::new(store),
            }
        }
        ArchiveLocation::Postgres(url) => {
            let target = obs_core::pg_connect::parse(url)?;
            let described = postgres::describe(&target.config);
            let db = Db::open(&location.database(), SCHEMA)
                .await
                .with_context(|| format!("preparing the archive in {described}"))?;
            let store = postgres::PostgresStore::open(target)
                .await
                .with_context(|| format!("connecting to the archive in {described}"))?;
            Opened {
                db,
                store: Arc::new(store),
            }
        }
    })
}

/// A bound query parameter, for either backend.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SqlValue {
    Text(String),
    Integer(i64),
}

/// The page query, shared by both backends; `placeholder(n)` spells the n-th (1-based)
/// parameter in the backend's dialect (`?1` for SQLite, `$1` for PostgreSQL).
pub(crate) fn page_query(
    request: &PageRequest,
    placeholder: fn(usize) -> String,
) -> (String, Vec<SqlValue>) {
    let mut params = Vec::new();
    let mut next = |value: SqlValue| {
        params.push(value);
        placeholder(params.len())
    };
    let mut conditions = Vec::new();
    if let Some(kind) = &request.filter.kind {
        conditions.push(format!("kind = {}", next(SqlValue::Text(kind.clone()))));
    }
    if let Some(service) = &request.filter.service {
        conditions.push(format!(
            "service = {}",
            next(SqlValue::Text(service.clone()))
        ));
    }
    if let Some(since) = request.filter.since {
        conditions.push(format!("ts >= {}", next(SqlValue::Integer(since))));
    }
    if let Some(until) = request.filter.until {
        conditions.push(format!("ts < {}", next(SqlValue::Integer(until))));
    }
    if let Some(after) = &request.after {
        // A row value comparison: both SQLite and PostgreSQL turn it into an index range.
        let ts = next(SqlValue::Integer(after.ts));
        let id = next(SqlValue::Text(after.id.clone()));
        conditions.push(format!("(ts, id) > ({ts}, {id})"));
    }
    let limit = next(SqlValue::Integer(
        i64::try_from(request.limit).unwrap_or(i64::MAX),
    ));
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    (
        format!("SELECT ts, id, record FROM records{filter} ORDER BY ts, id LIMIT {limit}"),
        params,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_query_binds_every_filter_in_order() {
        let request = PageRequest {
            filter: Filter {
                kind: Some("incident".into()),
                service: Some("api".into()),
                since: Some(10),
                until: Some(20),
            },
            after: Some(Cursor {
                ts: 15,
                id: "01ARZ3NDEKTSV4RRFFQ69G5FAV".into(),
            }),
            limit: 100,
        };
        let (sql, params) = page_query(&request, |n| format!("${n}"));
        assert_eq!(
            sql,
            "SELECT ts, id, record FROM records WHERE kind = $1 AND service = $2 AND ts >= $3 \
             AND ts < $4 AND (ts, id) > ($5, $6) ORDER BY ts, id LIMIT $7"
        );
        assert_eq!(params.len(), 7);
        assert_eq!(params[6], SqlValue::Integer(100));
    }

    #[test]
    fn page_query_without_filters_scans_in_order() {
        let request = PageRequest {
            filter: Filter::default(),
            after: None,
            limit: 5,
        };
        let (sql, params) = page_query(&request, |n| format!("?{n}"));
        assert_eq!(
            sql,
            "SELECT ts, id, record FROM records ORDER BY ts, id LIMIT ?1"
        );
        assert_eq!(params, vec![SqlValue::Integer(5)]);
    }
}
