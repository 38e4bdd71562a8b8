//! The shared backend: PostgreSQL, one database for every role and replica.
//!
//! Blocking clients (the `postgres` crate) in a small pool, used from tokio's blocking
//! threads, so role code is the same synchronous closure on both backends. Commits use the
//! server's `synchronous_commit` promise, forced `on` per session so a database configured
//! with it off still never acknowledges a write that a crash could take back.

use std::error::Error as StdError;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::Client;

use super::{Row, StorageError, Tx, TxInner, Value};

const MAX_CONNECTIONS: usize = 8;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a caller waits for a free connection before the work fails (503).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) struct PostgresDb {
    target: crate::pg_connect::PgTarget,
    pool: Mutex<Pool>,
    returned: Condvar,
}

#[derive(Default)]
struct Pool {
    idle: Vec<Client>,
    open: usize,
}

fn lock(pool: &Mutex<Pool>) -> MutexGuard<'_, Pool> {
    pool.lock().unwrap_or_else(PoisonError::into_inner)
}

impl PostgresDb {
    pub(crate) fn open(url: &str) -> anyhow::Result<PostgresDb> {
        let mut target = crate::pg_connect::parse(url)?;
        target.config.connect_timeout(CONNECT_TIMEOUT);
        let db = PostgresDb {
            target,
            pool: Mutex::new(Pool::default()),
            returned: Condvar::new(),
        };
        // Fail at start, with the server's reason, rather than on the first request.
        let client = db.checkout()?;
        db.checkin(client);
        Ok(db)
    }

    fn connect(&self) -> anyhow::Result<Client> {
        let config = postgres::Config::from(self.target.config.clone());
        let mut client = config
            .connect(self.target.tls.clone())
            .map_err(storage_error)?;
        client
            .batch_execute("SET synchronous_commit = on")
            .map_err(storage_error)?;
        Ok(client)
    }

    fn checkout(&self) -> anyhow::Result<Client> {
        let deadline = std::time::Instant::now() + CHECKOUT_TIMEOUT;
        let mut pool = lock(&self.pool);
        loop {
            if let Some(client) = pool.idle.pop() {
                if client.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(client);
            }
            if pool.open < MAX_CONNECTIONS {
                pool.open += 1;
                drop(pool);
                return self.connect().inspect_err(|_| {
                    lock(&self.pool).open -= 1;
                });
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StorageError::new(
                    format!(
                        "all {MAX_CONNECTIONS} database connections stayed busy for {}s",
                        CHECKOUT_TIMEOUT.as_secs()
                    ),
                    false,
                )
                .into());
            }
            pool = self
                .returned
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn checkin(&self, client: Client) {
        let mut pool = lock(&self.pool);
        if client.is_closed() {
            pool.open -= 1;
        } else {
            pool.idle.push(client);
        }
        drop(pool);
        self.returned.notify_one();
    }

    pub(crate) fn transaction<T>(
        &self,
        work: impl FnOnce(&mut Tx<'_>) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let mut client = self.checkout()?;
        let result = (|| {
            let transaction = client.transaction().map_err(storage_error)?;
            let mut tx = Tx {
                inner: TxInner::Postgres(Some(transaction)),
            };
            let value = work(&mut tx)?;
            if let TxInner::Postgres(Some(transaction)) = tx.inner {
                transaction.commit().map_err(storage_error)?;
            }
            Ok(value)
        })();
        self.checkin(client);
        result
    }
}

impl Drop for PostgresDb {
    /// A blocking client closes its connection by blocking on its own runtime, which panics
    /// on an async thread, where the last handle is often dropped: close them on a thread of
    /// their own.
    fn drop(&mut self) {
        let clients = std::mem::take(&mut lock(&self.pool).idle);
        if !clients.is_empty() {
            let _ = std::thread::Builder::new()
                .name("postgres-close".into())
                .spawn(move || drop(clients));
        }
    }
}

impl ToSql for Value {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(value) => match *ty {
                Type::INT2 => i16::try_from(*value)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*value)?.to_sql(ty, out),
                Type::BOOL => (*value != 0).to_sql(ty, out),
                Type::FLOAT8 => (*value as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => value.to_string().to_sql(ty, out),
                _ => value.to_sql(ty, out),
            },
            Value::Real(value) => match *ty {
                Type::FLOAT4 => (*value as f32).to_sql(ty, out),
                _ => value.to_sql(ty, out),
            },
            Value::Text(value) => value.as_str().to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn bind(params: &[Value]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// The transaction a [`Tx`] holds while its work runs.
pub(crate) fn live<'t, 'c>(
    tx: &'t mut Option<postgres::Transaction<'c>>,
) -> anyhow::Result<&'t mut postgres::Transaction<'c>> {
    tx.as_mut()
        .ok_or_else(|| anyhow::anyhow!("the transaction has already ended"))
}

pub(crate) fn execute(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    params: &[Value],
) -> anyhow::Result<u64> {
    tx.execute(sql, &bind(params)).map_err(storage_error)
}

pub(crate) fn query(
    tx: &mut postgres::Transaction<'_>,
    sql: &str,
    params: &[Value],
) -> anyhow::Result<Vec<Row>> {
    let rows = tx.query(sql, &bind(params)).map_err(storage_error)?;
    rows.iter().map(convert_row).collect()
}

fn convert_row(row: &postgres::Row) -> anyhow::Result<Row> {
    let mut values = Vec::with_capacity(row.len());
    for (index, column) in row.columns().iter().enumerate() {
        let ty = column.type_();
        let value = match *ty {
            Type::INT2 => row
                .try_get::<_, Option<i16>>(index)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(index)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::INT8 => row
                .try_get::<_, Option<i64>>(index)?
                .map_or(Value::Null, Value::Int),
            Type::OID => row
                .try_get::<_, Option<u32>>(index)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(index)?
                .map_or(Value::Null, |v| Value::Int(v.into())),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(index)?
                .map_or(Value::Null, |v| Value::Real(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(index)?
                .map_or(Value::Null, Value::Real),
            Type::TEXT | Type::VARCHAR | Type::NAME | Type::BPCHAR | Type::UNKNOWN => row
                .try_get::<_, Option<String>>(index)?
                .map_or(Value::Null, Value::Text),
            Type::VOID => Value::Null,
            _ => anyhow::bail!(
                "column '{}' is of type {ty}, which the kit does not read (cast it to BIGINT, \
                 DOUBLE PRECISION or TEXT)",
                column.name()
            ),
        };
        values.push(value);
    }
    Ok(Row(values))
}

pub(crate) fn storage_error(error: postgres::Error) -> anyhow::Error {
    let code = error.code().cloned();
    let unique = code.as_ref() == Some(&postgres::error::SqlState::UNIQUE_VIOLATION);
    let message = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = error.to_string();
            if let Some(source) = error.source() {
                text = format!("{text}: {source}");
            }
            text
        }
    };
    let message = if code.as_ref() == Some(&postgres::error::SqlState::DISK_FULL) {
        format!("the database's disk is full ({message})")
    } else {
        message
    };
    StorageError::new(message, unique).into()
}
