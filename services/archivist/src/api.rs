//! The archivist's HTTP API (DESIGN §4): append, page, export, stats.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures_util::stream;
use obs_core::actix_web::{web, HttpResponse};
use obs_core::error::ErrorBody;
use obs_core::ApiError;
use serde::Serialize;
use serde_json::Value;
use utoipa::{OpenApi, ToSchema};

use crate::batch::parse_batch;
use crate::commit::Committer;
use crate::metrics::ArchiveMetrics;
use crate::query::{encode_cursor, ExportParams, RecordsParams};
use crate::retention::LastPurge;
use crate::store::{Cursor, Filter, PageRequest, Store, StoredRecord};

/// Records per database read while exporting: big enough that per-query overhead vanishes,
/// small enough that a page in memory stays a few hundred kilobytes.
const EXPORT_PAGE: usize = 1000;

/// What every handler shares.
pub struct Archive {
    pub store: Arc<dyn Store>,
    pub committer: Committer,
    pub metrics: ArchiveMetrics,
    pub max_batch: usize,
    pub retention_days: u32,
    pub last_purge: LastPurge,
}

pub fn routes(cfg: &mut web::ServiceConfig, archive: web::Data<Archive>) {
    cfg.app_data(archive)
        .service(
            web::resource("/v1/records")
                .route(web::post().to(append_records))
                .route(web::get().to(list_records)),
        )
        .service(web::resource("/v1/export").route(web::get().to(export_records)))
        .service(web::resource("/v1/stats").route(web::get().to(archive_stats)));
}

#[derive(OpenApi)]
#[openapi(
    paths(append_records, list_records, export_records, archive_stats),
    components(schemas(RecordDoc, AppendResponse, RecordPageDoc, StatsResponse, PurgeDoc)),
    tags((name = "archive", description = "Durable, queryable, exportable history"))
)]
pub struct ArchiveApi;

/// The record envelope (obs_model::Record), as stored and returned.
#[derive(ToSchema)]
#[schema(as = Record)]
#[allow(dead_code)] // documentation only: records travel as JSON text
struct RecordDoc {
    /// ULID; unique across the archive.
    #[schema(example = "01HZX3K6Q7W1V2B3N4M5P6R7S8")]
    id: String,
    /// `event`, `issue`, `incident`, `plan`, `report`, … (letters, digits, `_ - . :`).
    kind: String,
    service: String,
    /// RFC 3339; stored in UTC with nanosecond precision.
    ts: DateTime<Utc>,
    /// Any JSON.
    #[schema(value_type = Object)]
    body: Value,
}

#[derive(Serialize, ToSchema)]
struct AppendResponse {
    /// Records newly archived by this batch.
    stored: usize,
    /// Records whose id was already archived (or repeated in the batch): not stored again.
    duplicates: usize,
}

/// One page of records.
#[derive(ToSchema)]
#[schema(as = RecordPage)]
#[allow(dead_code)] // documentation only: pages are rendered from stored JSON directly
struct RecordPageDoc {
    records: Vec<RecordDoc>,
    /// Pass as `after` for the next page; null when this is the last one.
    next: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct StatsResponse {
    /// `sqlite` or `postgres`.
    backend: &'static str,
    records: u64,
    by_kind: BTreeMap<String, u64>,
    by_service: BTreeMap<String, u64>,
    /// `ts` of the oldest and newest record; null when the archive is empty.
    oldest: Option<DateTime<Utc>>,
    newest: Option<DateTime<Utc>>,
    /// Bytes on disk: SQLite file and WAL, or the PostgreSQL table with its indexes.
    size_bytes: Option<u64>,
    /// ARCHIVE_RETENTION_DAYS; 0 keeps everything.
    retention_days: u32,
    /// The last retention purge by this process, if any.
    #[schema(value_type = Option<PurgeDoc>)]
    last_purge: Option<PurgeSummary>,
}

#[derive(Serialize)]
struct PurgeSummary {
    at: DateTime<Utc>,
    purged: u64,
}

#[derive(ToSchema)]
#[schema(as = Purge)]
#[allow(dead_code)] // documentation only
struct PurgeDoc {
    at: DateTime<Utc>,
    /// Records deleted by that purge.
    purged: u64,
}

/// Append a batch of records.
///
/// Answers 201 only once the whole batch is durable (committed and flushed). Ids already in
/// the archive are counted as duplicates and not stored again, so re-sending a batch is safe.
/// The batch is checked whole first: any invalid record rejects it with 400 and nothing of it
/// is stored.
#[utoipa::path(post, path = "/v1/records", tag = "archive",
    request_body(content = Vec<RecordDoc>, description = "A JSON array of records (at most ARCHIVE_MAX_BATCH)"),
    responses(
        (status = 201, description = "Durable", body = AppendResponse),
        (status = 400, description = "Invalid batch; the message names the field", body = ErrorBody),
        (status = 413, description = "Body larger than MAX_BODY_BYTES", body = ErrorBody),
        (status = 503, description = "Nothing was stored (a failed commit, or stopping); sending the same batch again is safe", body = ErrorBody),
    ))]
async fn append_records(
    archive: web::Data<Archive>,
    body: obs_core::Json<Value>,
) -> Result<HttpResponse, ApiError> {
    let records = parse_batch(body.into_inner(), archive.max_batch)?;
    archive.metrics.batch_records.observe(records.len() as f64);
    let outcome = archive
        .committer
        .append(records)
        .await
        .map_err(|error| ApiError::Unavailable(error.to_string()))?;
    Ok(HttpResponse::Created().json(AppendResponse {
        stored: outcome.stored,
        duplicates: outcome.duplicates,
    }))
}

/// A page of records, oldest first (by `ts`, then `id`).
#[utoipa::path(get, path = "/v1/records", tag = "archive", params(RecordsParams),
    responses(
        (status = 200, description = "One page", body = RecordPageDoc),
        (status = 400, description = "Invalid parameter; the message names it", body = ErrorBody),
        (status = 503, description = "The archive cannot be read right now", body = ErrorBody),
    ))]
async fn list_records(
    _: obs_core::SensitiveRead,
    archive: web::Data<Archive>,
    query: web::Query<RecordsParams>,
) -> Result<HttpResponse, ApiError> {
    let page = query.parse()?;
    // One more than asked: if it comes back, there is a next page.
    let mut records = archive
        .store
        .page(PageRequest {
            filter: page.filter,
            after: page.after,
            limit: page.limit + 1,
        })
        .await
        .map_err(unavailable)?;
    let next = if records.len() > page.limit {
        records.truncate(page.limit);
        records.last().map(|record| encode_cursor(&record.cursor))
    } else {
        None
    };
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(render_page(&records, next.as_deref())))
}

/// `{"records":[…],"next":…}` straight from the stored JSON, without parsing it again.
fn render_page(records: &[StoredRecord], next: Option<&str>) -> String {
    let size = records.iter().map(|r| r.json.len() + 1).sum::<usize>() + 64;
    let mut body = String::with_capacity(size);
    body.push_str(r#"{"records":["#);
    for (index, record) in records.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(&record.json);
    }
    body.push_str(r#"],"next":"#);
    match next {
        Some(cursor) => body.push_str(&Value::from(cursor).to_string()),
        None => body.push_str("null"),
    }
    body.push('}');
    body
}

/// Every matching record as NDJSON (one record per line), oldest first.
///
/// Streamed page by page from the database, so memory stays flat however large the archive.
/// If the archive fails mid-way the connection is cut without the final chunk, so a client
/// can always tell a complete export from a truncated one.
#[utoipa::path(get, path = "/v1/export", tag = "archive", params(ExportParams),
    responses(
        (status = 200, description = "NDJSON stream", content_type = "application/x-ndjson", body = RecordDoc),
        (status = 400, description = "Invalid parameter; the message names it", body = ErrorBody),
        (status = 503, description = "The archive cannot be read right now", body = ErrorBody),
    ))]
async fn export_records(
    _: obs_core::SensitiveRead,
    archive: web::Data<Archive>,
    query: web::Query<ExportParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, after) = query.parse()?;
    let mut export = Export {
        store: archive.store.clone(),
        filter,
        after,
        finished: false,
    };
    // The first page is read before answering, so an unreachable archive is a 503, not a
    // 200 that stops short.
    let first = export.next_page().await?;
    let chunks = stream::try_unfold((export, Some(first)), next_chunk);
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .streaming(chunks))
}

/// The export in progress, and a page already read but not yet sent.
type ExportState = (Export, Option<Vec<StoredRecord>>);

/// The next NDJSON chunk (one page), or None when the export is complete. Pages are read one
/// at a time as actix asks for more, which it does only when the client keeps up: a slow
/// reader holds one page in memory, never the archive.
async fn next_chunk(
    (mut export, read_ahead): ExportState,
) -> Result<Option<(web::Bytes, ExportState)>, ApiError> {
    let page = match read_ahead {
        Some(page) => page,
        None => export.next_page().await?,
    };
    if page.is_empty() {
        return Ok(None);
    }
    Ok(Some((ndjson(&page), (export, None))))
}

struct Export {
    store: Arc<dyn Store>,
    filter: Filter,
    after: Option<Cursor>,
    finished: bool,
}

impl Export {
    async fn next_page(&mut self) -> Result<Vec<StoredRecord>, ApiError> {
        if self.finished {
            return Ok(Vec::new());
        }
        let page = self
            .store
            .page(PageRequest {
                filter: self.filter.clone(),
                after: self.after.clone(),
                limit: EXPORT_PAGE,
            })
            .await
            .map_err(unavailable)?;
        self.finished = page.len() < EXPORT_PAGE;
        self.after = page.last().map(|record| record.cursor.clone());
        Ok(page)
    }
}

fn ndjson(page: &[StoredRecord]) -> web::Bytes {
    let mut chunk = String::with_capacity(page.iter().map(|r| r.json.len() + 1).sum());
    for record in page {
        chunk.push_str(&record.json);
        chunk.push('\n');
    }
    web::Bytes::from(chunk)
}

/// What the archive holds.
#[utoipa::path(get, path = "/v1/stats", tag = "archive",
    responses(
        (status = 200, description = "Archive statistics", body = StatsResponse),
        (status = 503, description = "The archive cannot be read right now", body = ErrorBody),
    ))]
async fn archive_stats(archive: web::Data<Archive>) -> Result<HttpResponse, ApiError> {
    let stats = archive.store.stats().await.map_err(unavailable)?;
    Ok(HttpResponse::Ok().json(StatsResponse {
        backend: archive.store.backend(),
        records: stats.records,
        by_kind: stats.by_kind,
        by_service: stats.by_service,
        oldest: stats.oldest.map(DateTime::from_timestamp_nanos),
        newest: stats.newest.map(DateTime::from_timestamp_nanos),
        size_bytes: stats.size_bytes,
        retention_days: archive.retention_days,
        last_purge: archive.last_purge.get().map(|report| PurgeSummary {
            at: report.at,
            purged: report.purged,
        }),
    }))
}

/// A failed read: the cause is logged, the client is told to retry (503).
fn unavailable(error: anyhow::Error) -> ApiError {
    tracing::error!(error = format!("{error:#}"), "archive read failed");
    ApiError::Unavailable("the archive cannot be read right now; retry".into())
}
