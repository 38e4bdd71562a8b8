//! Dead letters: the records a receiver refused as invalid, kept in `outbox_dead` by the
//! outbox (never dropped in silence). Every role with a database serves them:
//!
//! - `GET /v1/dead-letters?destination=&limit=&after=`: a page, oldest first, each with its
//!   reason and the record itself (with API_TOKEN set, the token is needed: a record may hold
//!   what is secret);
//! - `POST /v1/dead-letters/replay` `{"destination": …, "seq": [...]}`: put them back in the
//!   outbox, after whatever is pending, once the receiver was fixed; both fields optional
//!   (`{}`: everything).
//!
//! `obsctl dead-letters` lists and replays them. At most [`KEPT_PER_DESTINATION`] are kept per
//! destination; past that the oldest go, counted in `outbox_dropped_total{reason="dead_letters_full"}`.

use actix_web::{web, HttpResponse};
use chrono::DateTime;
use serde::Deserialize;

use crate::auth::SensitiveRead;
use crate::db::{now_millis, Db, Tx};
use crate::error::ApiError;
use crate::json::Json;

/// Dead letters kept per destination.
pub const KEPT_PER_DESTINATION: usize = 10_000;
/// Page size: default and maximum.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1000;
/// Records one replay request may name, or put back when it names none.
pub const MAX_REPLAY: usize = 10_000;

pub use obs_model::dead_letters::{DeadLetter, DeadLetterPage, ReplayRequest, Replayed};

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    destination: Option<String>,
    limit: Option<String>,
    after: Option<String>,
}

/// What the handlers share: the role's database and name.
#[derive(Clone)]
pub(crate) struct DeadLetters {
    db: Db,
    role: String,
}

pub(crate) fn routes(db: Db, role: String) -> impl Fn(&mut web::ServiceConfig) + Clone {
    let state = web::Data::new(DeadLetters { db, role });
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(state.clone())
            .service(web::resource("/v1/dead-letters").route(web::get().to(list)))
            .service(web::resource("/v1/dead-letters/replay").route(web::post().to(replay)));
    }
}

fn whole_number(
    field: &str,
    text: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = text else { return Ok(default) };
    match text.trim().parse::<usize>() {
        Ok(value) if (1..=max).contains(&value) => Ok(value),
        _ => Err(ApiError::invalid_field(
            field,
            format!("'{text}' is not a whole number from 1 to {max}"),
        )),
    }
}

fn destination_filter(destination: Option<&str>) -> Result<Option<String>, ApiError> {
    match destination.map(str::trim) {
        None | Some("") => Ok(None),
        Some(name)
            if name.len() <= 200
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(name.to_string()))
        }
        Some(_) => Err(ApiError::invalid_field(
            "destination",
            "a destination is [A-Za-z0-9_-]+, at most 200 characters",
        )),
    }
}

/// The dead letters of this role, a page at a time, oldest first (needs the API token when
/// API_TOKEN is set: a record may hold what is secret).
#[utoipa::path(get, path = "/v1/dead-letters", tag = "dead letters",
    params(("destination" = Option<String>, Query, description = "only this destination's"),
        ("limit" = Option<usize>, Query, description = "1 to 1000, default 100"),
        ("after" = Option<i64>, Query, description = "`next` of the previous page")),
    responses((status = 200, description = "DeadLetterPage: {dead_letters: [{destination, seq, failed_at, reason, record}], next}", body = serde_json::Value),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody)))]
pub(crate) async fn list(
    _: SensitiveRead,
    state: web::Data<DeadLetters>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let destination = destination_filter(query.destination.as_deref())?;
    let limit = whole_number("limit", query.limit.as_deref(), DEFAULT_LIMIT, MAX_LIMIT)?;
    let after = match query.after.as_deref().map(str::trim) {
        None | Some("") => i64::MIN,
        Some(text) => text.parse::<i64>().map_err(|_| {
            ApiError::invalid_field("after", format!("'{text}' is not a seq from a listing"))
        })?,
    };
    let role = state.role.clone();
    let page = state
        .db
        .read(move |tx| page(tx, &role, destination.as_deref(), after, limit))
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

fn page(
    tx: &mut Tx<'_>,
    role: &str,
    destination: Option<&str>,
    after: i64,
    limit: usize,
) -> anyhow::Result<DeadLetterPage> {
    let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
    let rows = tx.query(
        "SELECT destination, seq, failed_at, reason, body FROM outbox_dead \
         WHERE role = $1 AND ($2 = '' OR destination = $2) AND seq > $3 \
         ORDER BY seq LIMIT $4",
        &[
            role.into(),
            destination.unwrap_or("").into(),
            after.into(),
            fetch.into(),
        ],
    )?;
    let mut dead_letters = Vec::with_capacity(rows.len().min(limit));
    for row in rows.iter().take(limit) {
        let body = row.text(4)?;
        dead_letters.push(DeadLetter {
            destination: row.text(0)?.to_string(),
            seq: row.int(1)?,
            failed_at: DateTime::from_timestamp_millis(row.int(2)?).unwrap_or_default(),
            reason: row.text(3)?.to_string(),
            // Stored as it was sent, which was JSON; shown as text if it somehow is not.
            record: serde_json::from_str(body)
                .unwrap_or_else(|_| serde_json::Value::String(body.to_string())),
        });
    }
    let next = (rows.len() > limit)
        .then(|| dead_letters.last().map(|letter| letter.seq))
        .flatten();
    Ok(DeadLetterPage { dead_letters, next })
}

/// Put dead letters back in the outbox (after the receiver was fixed); delivery picks them
/// up at its next poll. `{}` puts back all of them (up to 10,000 a request).
#[utoipa::path(post, path = "/v1/dead-letters/replay", tag = "dead letters",
    request_body(content = serde_json::Value, description = "{destination?, seq?: [seq, ...]}",
        example = json!({"destination": "curator", "seq": [1, 2]})),
    responses((status = 200, description = "{replayed, remaining}", body = serde_json::Value),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub(crate) async fn replay(
    state: web::Data<DeadLetters>,
    request: Json<ReplayRequest>,
) -> Result<HttpResponse, ApiError> {
    let request = request.into_inner();
    let destination = destination_filter(request.destination.as_deref())?;
    if let Some(seq) = &request.seq {
        if seq.is_empty() || seq.len() > MAX_REPLAY {
            return Err(ApiError::invalid_field(
                "seq",
                format!("name 1 to {MAX_REPLAY} dead letters, or leave it out for all"),
            ));
        }
    }
    let role = state.role.clone();
    let replayed = state
        .db
        .write(move |tx| put_back(tx, &role, destination.as_deref(), request.seq.as_deref()))
        .await?;
    if replayed.replayed > 0 {
        tracing::info!(
            replayed = replayed.replayed,
            remaining = replayed.remaining,
            "dead letters put back in the outbox"
        );
    }
    Ok(HttpResponse::Ok().json(replayed))
}

fn put_back(
    tx: &mut Tx<'_>,
    role: &str,
    destination: Option<&str>,
    seq: Option<&[i64]>,
) -> anyhow::Result<Replayed> {
    let rows = tx.query(
        "SELECT destination, seq, body FROM outbox_dead \
         WHERE role = $1 AND ($2 = '' OR destination = $2) ORDER BY seq",
        &[role.into(), destination.unwrap_or("").into()],
    )?;
    let wanted: Option<std::collections::HashSet<i64>> =
        seq.map(|seq| seq.iter().copied().collect());
    let now = now_millis();
    let mut replayed = 0u64;
    let mut remaining = 0u64;
    for row in &rows {
        let seq = row.int(1)?;
        if wanted.as_ref().is_some_and(|wanted| !wanted.contains(&seq)) {
            continue;
        }
        if replayed as usize >= MAX_REPLAY {
            remaining += 1;
            continue;
        }
        let destination = row.text(0)?.to_string();
        let body = row.text(2)?.to_string();
        let bytes = body.len();
        tx.execute(
            "INSERT INTO outbox (role, destination, body, bytes, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                role.into(),
                destination.as_str().into(),
                body.into(),
                bytes.into(),
                now.into(),
            ],
        )?;
        tx.execute(
            "DELETE FROM outbox_dead WHERE role = $1 AND destination = $2 AND seq = $3",
            &[role.into(), destination.into(), seq.into()],
        )?;
        replayed += 1;
    }
    Ok(Replayed {
        replayed,
        remaining,
    })
}

/// Keep at most [`KEPT_PER_DESTINATION`] dead letters for `destination`, the newest; returns
/// how many older ones went.
pub(crate) fn trim(tx: &mut Tx<'_>, role: &str, destination: &str) -> anyhow::Result<u64> {
    let offset = i64::try_from(KEPT_PER_DESTINATION).unwrap_or(i64::MAX);
    let cut = tx.query_opt(
        "SELECT seq FROM outbox_dead WHERE role = $1 AND destination = $2 \
         ORDER BY seq DESC LIMIT 1 OFFSET $3",
        &[role.into(), destination.into(), offset.into()],
    )?;
    let Some(cut) = cut else { return Ok(0) };
    tx.execute(
        "DELETE FROM outbox_dead WHERE role = $1 AND destination = $2 AND seq <= $3",
        &[role.into(), destination.into(), cut.int(0)?.into()],
    )
}
