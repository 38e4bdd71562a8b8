//! The shared backend: a PostgreSQL database, for several archivist replicas (Knative).
//!
//! Durability: every connection runs with `synchronous_commit=on` whatever the server's
//! default, so a commit returns only once PostgreSQL has flushed its WAL. Replicas coordinate
//! through the database alone: ids are the primary key and `ON CONFLICT DO NOTHING` makes a
//! re-sent record a duplicate whichever replica receives it; the schema is migrated by
//! obs-core under its advisory lock before this pool connects (see [`crate::store::open`]);
//! the purge runs on one replica at a time under a lease ([`crate::retention`]), and its
//! deletes skip rows locked by anyone else all the same.
//!
//! Connections go through [`obs_core::pg_connect`], as the kit's own do: TLS with rustls as
//! the URL's `sslmode` (and `sslrootcert`) asks, `prefer` by default as in libpq.

use std::collections::HashSet;
use std::time::Duration;

use anyhow::Context as _;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::future::BoxFuture;
use obs_core::pg_connect::PgTarget;
use tokio_postgres::types::ToSql;

use super::{
    page_query, Cursor, NewRecord, PageRequest, SqlValue, Store, StoreStats, StoredRecord,
};

/// Connections per replica. Writes go through one group committer, so most of these serve
/// reads and exports.
const POOL_SIZE: usize = 8;
/// How long a request waits for a connection, or for a new one to be made, before the
/// archivist answers 503 (and the sender retries) instead of hanging.
const POOL_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct PostgresStore {
    pool: Pool,
}

impl PostgresStore {
    /// A pool on `target` (from [`obs_core::pg_connect::parse`]); connects once, so an
    /// unreachable database or a refused certificate stops the start.
    pub(crate) async fn open(target: PgTarget) -> anyhow::Result<PostgresStore> {
        let PgTarget {
            mut config, tls, ..
        } = target;
        let options = match config.get_options() {
            Some(existing) => format!("{existing} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_string(),
        };
        config.options(&options);
        if config.get_application_name().is_none() {
            config.application_name("archivist");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .build()
            .context("building the PostgreSQL connection pool")?;
        // Fail at start with the server's (or the TLS handshake's) reason, not on the first
        // request.
        drop(pool.get().await.context("connecting")?);
        Ok(PostgresStore { pool })
    }

    async fn insert_all(&self, records: Vec<NewRecord>) -> anyhow::Result<Vec<bool>> {
        // Sorted by id, so two replicas inserting overlapping batches lock rows in the same
        // order and cannot deadlock.
        let mut order: Vec<usize> = (0..records.len()).collect();
        order.sort_by(|&a, &b| records[a].id.cmp(&records[b].id));
        let column = |pick: fn(&NewRecord) -> &str| -> Vec<&str> {
            order.iter().map(|&i| pick(&records[i])).collect()
        };
        let ids = column(|r| &r.id);
        let kinds = column(|r| &r.kind);
        let services = column(|r| &r.service);
        let jsons = column(|r| &r.json);
        let timestamps: Vec<i64> = order.iter().map(|&i| records[i].ts).collect();

        let client = self.pool.get().await.context("getting a connection")?;
        // One statement is one transaction: committed (and, with synchronous_commit=on,
        // flushed) when it returns. RETURNING names the rows that were new.
        let statement = client
            .prepare_cached(
                "INSERT INTO records (id, kind, service, ts, record) \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::text[]) \
                 ON CONFLICT (id) DO NOTHING RETURNING id",
            )
            .await?;
        let rows = client
            .query(&statement, &[&ids, &kinds, &services, &timestamps, &jsons])
            .await?;
        let mut new_ids = HashSet::with_capacity(rows.len());
        for row in &rows {
            new_ids.insert(row.try_get::<_, String>(0)?);
        }
        Ok(records.iter().map(|r| new_ids.contains(&r.id)).collect())
    }

    async fn read_page(&self, request: PageRequest) -> anyhow::Result<Vec<StoredRecord>> {
        let (sql, params) = page_query(&request, |n| format!("${n}"));
        let client = self.pool.get().await.context("getting a connection")?;
        let statement = client.prepare_cached(&sql).await?;
        let params: Vec<&(dyn ToSql + Sync)> = params
            .iter()
            .map(|value| match value {
                SqlValue::Text(text) => text as &(dyn ToSql + Sync),
                SqlValue::Integer(number) => number as &(dyn ToSql + Sync),
            })
            .collect();
        let rows = client.query(&statement, &params).await?;
        rows.iter()
            .map(|row| {
                Ok(StoredRecord {
                    cursor: Cursor {
                        ts: row.try_get(0)?,
                        id: row.try_get(1)?,
                    },
                    json: row.try_get(2)?,
                })
            })
            .collect()
    }

    async fn read_stats(&self) -> anyhow::Result<StoreStats> {
        let mut client = self.pool.get().await.context("getting a connection")?;
        // One snapshot, so the figures describe one moment.
        let snapshot = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut stats = StoreStats::default();
        for (column, counts) in [
            ("kind", &mut stats.by_kind),
            ("service", &mut stats.by_service),
        ] {
            let sql = format!("SELECT {column}, count(*) FROM records GROUP BY {column}");
            for row in snapshot.query(sql.as_str(), &[]).await? {
                let count: i64 = row.try_get(1)?;
                counts.insert(row.try_get(0)?, count.max(0) as u64);
            }
        }
        let bounds = snapshot
            .query_one(
                "SELECT (SELECT min(ts) FROM records), (SELECT max(ts) FROM records), \
                 pg_total_relation_size('records')",
                &[],
            )
            .await?;
        stats.oldest = bounds.try_get(0)?;
        stats.newest = bounds.try_get(1)?;
        stats.size_bytes = Some(bounds.try_get::<_, i64>(2)?.max(0) as u64);
        stats.records = stats.by_kind.values().sum();
        snapshot.commit().await?;
        Ok(stats)
    }

    async fn delete_oldest(&self, cutoff: i64, max: usize) -> anyhow::Result<u64> {
        let client = self.pool.get().await.context("getting a connection")?;
        let limit = i64::try_from(max).unwrap_or(i64::MAX);
        // SKIP LOCKED: two replicas purging at once split the work instead of waiting.
        Ok(client
            .execute(
                "DELETE FROM records WHERE id IN (SELECT id FROM records WHERE ts < $1 \
                 ORDER BY ts LIMIT $2 FOR UPDATE SKIP LOCKED)",
                &[&cutoff, &limit],
            )
            .await?)
    }
}

/// Where the archive is, for error messages: host, port and database, never the password.
pub(crate) fn describe(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => "localhost".to_string(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().unwrap_or("(default database)");
    format!("PostgreSQL database {database} on {host}:{port}")
}

impl Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn insert(&self, records: Vec<NewRecord>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
        Box::pin(async move {
            self.insert_all(records)
                .await
                .context("inserting records into PostgreSQL")
        })
    }

    fn page(&self, request: PageRequest) -> BoxFuture<'_, anyhow::Result<Vec<StoredRecord>>> {
        Box::pin(async move {
            self.read_page(request)
                .await
                .context("reading a page of records from PostgreSQL")
        })
    }

    fn stats(&self) -> BoxFuture<'_, anyhow::Result<StoreStats>> {
        Box::pin(async move {
            self.read_stats()
                .await
                .context("reading archive statistics from PostgreSQL")
        })
    }

    fn purge_before(&self, cutoff: i64, max_records: usize) -> BoxFuture<'_, anyhow::Result<u64>> {
        Box::pin(async move {
            self.delete_oldest(cutoff, max_records)
                .await
                .context("purging old records from PostgreSQL")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Acknowledged means committed and flushed: every connection of the archivist runs with
    /// synchronous_commit=on, even on a server whose default is off (a SIGKILL test cannot
    /// tell the difference; a crash of the server's machine would).
    #[tokio::test]
    async fn every_connection_commits_synchronously_whatever_the_server_default() {
        let server = obs_testkit::postgres::shared();
        let url = server.create_database().expect("a fresh database");
        let database = url.rsplit('/').next().unwrap_or_default().to_string();
        server
            .psql(
                "postgres",
                &format!("ALTER DATABASE \"{database}\" SET synchronous_commit = off"),
            )
            .expect("the server default is turned off for this database");
        let target = obs_core::pg_connect::parse(&url).unwrap();
        let store = PostgresStore::open(target).await.unwrap();
        for _ in 0..2 {
            let client = store.pool.get().await.unwrap();
            let row = client
                .query_one("SHOW synchronous_commit", &[])
                .await
                .unwrap();
            let setting: String = row.get(0);
            assert_eq!(setting, "on");
        }
    }
}
