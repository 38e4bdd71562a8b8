//! The curator's HTTP API (DESIGN §4).
//!
//! Bodies are read as raw JSON and deserialized here with the path of any field that does
//! not fit (`[3].kind`, `alerts[0].startsAt`, `matchers[1].isRegex`), then checked before
//! anything changes; every refusal is a 400 naming the field. Malformed JSON, a wrong
//! content type and oversized bodies are answered by the kit (400/415/413) before a handler
//! runs. Mutations go through [`Shared::change`] (signals through
//! [`Shared::apply_signals`]): stored in one transaction with what they forward, then put in
//! place, then answered; a failed commit is 503 "nothing was stored", and a change made
//! from a copy another replica has changed since is 409 naming the current revision. On
//! PostgreSQL, reads are answered from the tables, so every replica answers the same.

use std::sync::Arc;

use chrono::Utc;
use obs_core::actix_web::{web, HttpResponse};
use obs_core::utoipa::{self, OpenApi};
use obs_core::ApiError;
use obs_model::{Goals, IncidentList, IncidentState, Severity, SilenceIn, SilenceList};
use serde::Deserialize;
use serde_json::value::RawValue;
use ulid::Ulid;

use obs_core::db::Dialect;

use crate::incidents::{Filter, ManualError, Signal, Tally};
use crate::silences::{Compiled, Silences};
use crate::validate;
use crate::{alertmanager, goals, issues, store, Scope, Shared};

const DEFAULT_LIST_LIMIT: usize = 1000;
const MAX_LIST_LIMIT: usize = 10_000;

pub fn routes(cfg: &mut web::ServiceConfig, shared: Arc<Shared>) {
    cfg.app_data(web::Data::from(shared))
        .service(web::resource("/v1/issues").route(web::post().to(post_issues)))
        .service(web::resource("/v1/alertmanager").route(web::post().to(post_alertmanager)))
        .service(web::resource("/v1/incidents").route(web::get().to(list_incidents)))
        .service(web::resource("/v1/incidents/{id}").route(web::get().to(get_incident)))
        .service(web::resource("/v1/incidents/{id}/ack").route(web::post().to(acknowledge)))
        .service(web::resource("/v1/incidents/{id}/resolve").route(web::post().to(resolve)))
        .service(
            web::resource("/v1/silences")
                .route(web::post().to(post_silence))
                .route(web::get().to(list_silences)),
        )
        .service(web::resource("/v1/silences/{id}").route(web::delete().to(delete_silence)))
        .service(
            web::resource("/v1/goals")
                .route(web::get().to(get_goals))
                .route(web::put().to(put_goals)),
        );
}

#[derive(OpenApi)]
#[openapi(
    paths(
        post_issues, post_alertmanager, list_incidents, get_incident, acknowledge, resolve,
        post_silence, list_silences, delete_silence, get_goals, put_goals
    ),
    tags(
        (name = "signals", description = "Issues from watchers, alerts from Alertmanager"),
        (name = "incidents", description = "Deduplicated incidents and their lifecycle"),
        (name = "silences", description = "Matchers that hold notifications back"),
        (name = "goals", description = "Services expected to exist")
    )
)]
struct CuratorApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    CuratorApi::openapi()
}

/// Deserialize a raw JSON body, naming the field that does not fit.
fn body<T: serde::de::DeserializeOwned>(raw: &RawValue) -> Result<T, ApiError> {
    Ok(validate::parse(raw.get())?)
}

fn incident_id(text: &str) -> Result<Ulid, ApiError> {
    Ulid::from_string(text)
        .map_err(|_| ApiError::invalid_field("id", format!("'{text}' is not an id (a ULID)")))
}

/// Apply signals, store and forward what changed, answer with the tally.
async fn apply_signals(shared: &Arc<Shared>, signals: Vec<Signal>) -> Result<Tally, ApiError> {
    let tally = shared
        .apply_signals(signals, Utc::now())
        .await
        .map_err(|error| match store::conflict(&error) {
            // Lost every race with other replicas: nothing was stored; a retry is safe.
            Some(conflict) => ApiError::Unavailable(format!(
                "nothing was stored ({conflict}); sending the same request again is safe"
            )),
            None => ApiError::from(error),
        })?
        .tally;
    if tally.refused > 0 {
        return Err(ApiError::Unavailable(format!(
            "{} of {} signals would open incidents beyond MAX_INCIDENTS ({} unresolved); the rest \
             were applied, and sending the same batch again is safe",
            tally.refused, tally.received, shared.config.max_incidents
        )));
    }
    Ok(tally)
}

/// A batch of issues from a watcher: a JSON array of `obs_model::Issue` (or of archive
/// records of kind `issue` wrapping one). Applying the same batch twice changes nothing.
#[utoipa::path(post, path = "/v1/issues", tag = "signals",
    request_body(content = serde_json::Value, description = "[Issue]", example = json!([{
        "id": "01JC3Z8Q2J6W7V2N5Y4M1K0P9R", "kind": "oom_killed", "service": "api",
        "subject": "api-1", "severity": "critical", "state": "open",
        "message": "api-1 was killed: out of memory (limit 256 MiB)",
        "recommendation": "Raise the memory limit or find the leak",
        "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z",
        "count": 1, "facts": {"memory_limit_bytes": 268435456, "exit_code": 137}}])),
    responses(
        (status = 200, description = "applied", example = json!({"received": 1, "opened": 1,
            "reopened": 0, "resolved": 0, "deduplicated": 0, "duplicates": 0, "refused": 0})),
        (status = 400, description = "an item is invalid; the field is named", body = obs_core::error::ErrorBody),
        (status = 503, description = "MAX_INCIDENTS reached, or nothing was stored (the database failed); sending the same batch again is safe", body = obs_core::error::ErrorBody)))]
async fn post_issues(
    shared: web::Data<Shared>,
    items: obs_core::Json<Vec<Box<RawValue>>>,
) -> Result<HttpResponse, ApiError> {
    let issues = issues::parse_batch(&items)?;
    drop(items);
    let signals: Vec<Signal> = issues.into_iter().map(issues::signal).collect();
    shared.metrics.issues_received.inc_by(signals.len() as u64);
    let tally = apply_signals(&shared.clone().into_inner(), signals).await;
    if let Ok(tally) = &tally {
        shared
            .metrics
            .issues_deduplicated
            .inc_by(tally.deduplicated + tally.duplicates);
    }
    Ok(HttpResponse::Ok().json(tally?))
}

/// Alertmanager's webhook (`webhook_configs: [{url: http://curator:8002/v1/alertmanager,
/// send_resolved: true}]`), payload version 4.
#[utoipa::path(post, path = "/v1/alertmanager", tag = "signals",
    request_body(content = serde_json::Value, description = "Alertmanager webhook payload, version 4",
        example = json!({"version": "4", "groupKey": "{}:{alertname=\"HighErrorRate\"}",
            "truncatedAlerts": 0, "status": "firing", "receiver": "curator",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {"alertname": "HighErrorRate", "job": "api", "severity": "critical"},
            "commonAnnotations": {"summary": "api answers 5xx"},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{"status": "firing",
                "labels": {"alertname": "HighErrorRate", "job": "api", "severity": "critical"},
                "annotations": {"summary": "api answers 5xx"},
                "startsAt": "2026-01-02T03:04:05Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": "1a30ba71cca2921f"}]})),
    responses(
        (status = 200, description = "applied (same tally as /v1/issues)"),
        (status = 400, description = "a field is missing or invalid; it is named", body = obs_core::error::ErrorBody),
        (status = 503, description = "MAX_INCIDENTS reached, or nothing was stored (the database failed); sending the same batch again is safe", body = obs_core::error::ErrorBody)))]
async fn post_alertmanager(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let payload: alertmanager::Payload = body(&raw)?;
    let signals = alertmanager::signals(payload, Utc::now())?;
    shared.metrics.alerts_received.inc_by(signals.len() as u64);
    let tally = apply_signals(&shared.clone().into_inner(), signals).await;
    if let Ok(tally) = &tally {
        shared
            .metrics
            .alerts_deduplicated
            .inc_by(tally.deduplicated + tally.duplicates);
    }
    Ok(HttpResponse::Ok().json(tally?))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    service: Option<String>,
    severity: Option<String>,
    limit: Option<String>,
}

fn parse_state(text: &str) -> Result<IncidentState, ApiError> {
    match text {
        "open" => Ok(IncidentState::Open),
        "acknowledged" => Ok(IncidentState::Acknowledged),
        "resolved" => Ok(IncidentState::Resolved),
        _ => Err(ApiError::invalid_field(
            "state",
            format!("'{text}' is not one of open, acknowledged, resolved"),
        )),
    }
}

fn parse_severity(text: &str) -> Result<Severity, ApiError> {
    match text {
        "info" => Ok(Severity::Info),
        "warning" => Ok(Severity::Warning),
        "critical" => Ok(Severity::Critical),
        _ => Err(ApiError::invalid_field(
            "severity",
            format!("'{text}' is not one of info, warning, critical"),
        )),
    }
}

/// Incidents, unresolved first, then most recently seen first.
#[utoipa::path(get, path = "/v1/incidents", tag = "incidents",
    params(
        ("state" = Option<String>, Query, description = "open, acknowledged or resolved"),
        ("service" = Option<String>, Query, description = "only this service's"),
        ("severity" = Option<String>, Query, description = "info, warning or critical"),
        ("limit" = Option<usize>, Query, description = "1 to 10000, default 1000")),
    responses((status = 200, description = "IncidentList: {\"incidents\": [Incident]}", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody)))]
async fn list_incidents(
    shared: web::Data<Shared>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIST_LIMIT,
        Some(text) => match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid_field(
                    "limit",
                    format!("'{text}' is not a whole number from 1 to {MAX_LIST_LIMIT}"),
                ))
            }
        },
    };
    let filter = Filter {
        state: query.state.as_deref().map(parse_state).transpose()?,
        service: query.service.clone(),
        severity: query.severity.as_deref().map(parse_severity).transpose()?,
        limit,
    };
    let incidents = if shared.db().dialect() == Dialect::Postgres {
        shared
            .db()
            .read(move |tx| store::list(tx, &filter))
            .await?
            .into_iter()
            .map(|tracked| tracked.incident)
            .collect()
    } else {
        shared.book().list(&filter)
    };
    Ok(HttpResponse::Ok().json(IncidentList { incidents }))
}

#[utoipa::path(get, path = "/v1/incidents/{id}", tag = "incidents",
    params(("id" = String, Path, description = "the incident's id (a ULID)")),
    responses((status = 200, description = "Incident", body = serde_json::Value),
        (status = 400, description = "not an id", body = obs_core::error::ErrorBody),
        (status = 404, description = "no such incident", body = obs_core::error::ErrorBody)))]
async fn get_incident(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = incident_id(&id)?;
    let incident = if shared.db().dialect() == Dialect::Postgres {
        shared
            .db()
            .read(move |tx| store::incident(tx, id))
            .await?
            .map(|tracked| tracked.incident)
    } else {
        shared.book().get(&id).cloned()
    };
    let incident = incident.ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(HttpResponse::Ok().json(incident))
}

/// Who acted, when the request does not say: the curator cannot know, and naming the API
/// would read as if something automatic had acted.
const UNKNOWN_ACTOR: &str = "unknown";

/// Who acted, and why; both optional, and so is the body.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ByHand {
    pub by: Option<String>,
    pub comment: Option<String>,
}

/// The body of an acknowledge or resolve, checked (public for the fuzz targets).
pub fn by_hand(bytes: &[u8]) -> Result<ByHand, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ByHand::default());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::invalid_field("request body", "is not UTF-8"))?;
    let input: ByHand = validate::parse(text)?;
    if let Some(by) = &input.by {
        validate::text(by, (validate::MAX_NAME_CHARS, "MAX_NAME_CHARS"))
            .map_err(|why| ApiError::invalid_field("by", why))?;
    }
    if let Some(comment) = &input.comment {
        validate::text(
            comment,
            (crate::silences::MAX_COMMENT_CHARS, "MAX_COMMENT_CHARS"),
        )
        .map_err(|why| ApiError::invalid_field("comment", why))?;
    }
    Ok(input)
}

async fn by_hand_change(
    shared: &Arc<Shared>,
    id: &str,
    bytes: &[u8],
    change: impl FnOnce(
            &mut crate::incidents::Book,
            Ulid,
            ByHand,
            &mut crate::incidents::Applied,
        ) -> Result<obs_model::Incident, ManualError>
        + Send
        + 'static,
) -> Result<HttpResponse, ApiError> {
    let id = incident_id(id)?;
    let input = by_hand(bytes)?;
    let result = shared
        .change(
            Scope::Incident(id),
            move |book, applied| change(book, id, input, applied),
            |_, _| Ok(()),
        )
        .await;
    let incident = match result {
        Ok((incident, _)) => incident,
        Err(error) => return Err(stale(shared, id, error).await),
    };
    let incident = incident.map_err(|error| match error {
        ManualError::NotFound => ApiError::not_found(format!("no incident {id}")),
        ManualError::Resolved => ApiError::Conflict(format!(
            "incident {id} is resolved; there is nothing to acknowledge"
        )),
    })?;
    Ok(HttpResponse::Ok().json(incident))
}

/// A change decided from a copy someone else has changed since: 409 naming the revision
/// now stored (the copy is refreshed, so looking again and retrying works); anything else
/// as it is.
async fn stale(shared: &Shared, id: Ulid, error: anyhow::Error) -> ApiError {
    let Some(conflict) = store::conflict(&error) else {
        return ApiError::from(error);
    };
    let message = format!("{conflict}; nothing was changed: look at it again and send the change again if it still applies");
    if let Err(reload) = shared.reload_incident(id).await {
        tracing::warn!(error = format!("{reload:#}"), %id, "could not reload an incident after a conflict");
    }
    ApiError::Conflict(message)
}

/// Acknowledge: someone is on it. Acknowledging twice changes nothing.
#[utoipa::path(post, path = "/v1/incidents/{id}/ack", tag = "incidents",
    params(("id" = String, Path, description = "the incident's id (a ULID)")),
    request_body(content = serde_json::Value, description = "optional: {\"by\", \"comment\"}",
        example = json!({"by": "alice", "comment": "looking into it"})),
    responses((status = 200, description = "the incident", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody),
        (status = 409, description = "it is resolved, or another replica changed it meanwhile (its revision now is named)", body = obs_core::error::ErrorBody),
        (status = 503, description = "nothing was stored (the database failed); sending the same request again is safe", body = obs_core::error::ErrorBody)))]
async fn acknowledge(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    // The kit's raw body: optional, any content type, and its errors (too large, too slow,
    // badly compressed) in the JSON shape like every other.
    bytes: obs_core::json::Body,
) -> Result<HttpResponse, ApiError> {
    by_hand_change(
        &shared.into_inner(),
        &id,
        &bytes,
        |book, id, input, applied| {
            let by = Some(input.by.unwrap_or_else(|| UNKNOWN_ACTOR.into()));
            book.acknowledge(id, by, input.comment, Utc::now(), applied)
        },
    )
    .await
}

/// Resolve by hand. If its source still reports the trouble afterwards, it reopens.
#[utoipa::path(post, path = "/v1/incidents/{id}/resolve", tag = "incidents",
    params(("id" = String, Path, description = "the incident's id (a ULID)")),
    request_body(content = serde_json::Value, description = "optional: {\"by\", \"comment\"}",
        example = json!({"by": "alice", "comment": "fixed the config"})),
    responses((status = 200, description = "the incident", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody),
        (status = 409, description = "another replica changed it meanwhile (its revision now is named)", body = obs_core::error::ErrorBody),
        (status = 503, description = "nothing was stored (the database failed); sending the same request again is safe", body = obs_core::error::ErrorBody)))]
async fn resolve(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    // The kit's raw body: optional, any content type, and its errors (too large, too slow,
    // badly compressed) in the JSON shape like every other.
    bytes: obs_core::json::Body,
) -> Result<HttpResponse, ApiError> {
    by_hand_change(
        &shared.into_inner(),
        &id,
        &bytes,
        |book, id, input, applied| {
            let by = Some(input.by.unwrap_or_else(|| UNKNOWN_ACTOR.into()));
            book.resolve(id, by, input.comment, Utc::now(), applied)
        },
    )
    .await
}

/// Create a silence. Matchers are Alertmanager's (`name`, `value`, `isRegex`, `isEqual`) over
/// `service`, `kind`, `subject`, `severity`, `source`, `fingerprint` and alert labels.
#[utoipa::path(post, path = "/v1/silences", tag = "silences",
    request_body(content = serde_json::Value, description = "SilenceIn", example = json!({
        "matchers": [{"name": "service", "value": "api"}, {"name": "severity", "value": "warning|info", "isRegex": true}],
        "ends_at": "2026-01-02T06:00:00Z", "comment": "deploying api", "created_by": "alice"})),
    responses((status = 201, description = "the silence", body = serde_json::Value),
        (status = 400, description = "invalid; the field is named", body = obs_core::error::ErrorBody),
        (status = 409, description = "MAX_SILENCES reached", body = obs_core::error::ErrorBody),
        (status = 503, description = "nothing was stored (the database failed); sending the same request again is safe", body = obs_core::error::ErrorBody)))]
async fn post_silence(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let input: SilenceIn = body(&raw)?;
    let now = Utc::now();
    let compiled = Compiled::from_input(input, now)?;
    let silence = compiled.silence.clone();
    let max_silences = shared.config.max_silences;
    let (added, _) = shared
        .into_inner()
        .change(
            Scope::Everything,
            move |book, applied| {
                if book.silences.len() >= max_silences {
                    return Err(ApiError::Conflict(format!(
                        "MAX_SILENCES ({max_silences}) silences exist; delete one first"
                    )));
                }
                let silence = compiled.silence.clone();
                book.add_silence(compiled, now, applied);
                Ok(silence)
            },
            |tx, added: &Result<obs_model::Silence, ApiError>| match added {
                Ok(silence) => store::insert_silence(tx, silence),
                Err(_) => Ok(()),
            },
        )
        .await?;
    added?;
    Ok(HttpResponse::Created().json(silence))
}

/// The silences that have not ended, soonest end first.
#[utoipa::path(get, path = "/v1/silences", tag = "silences",
    responses((status = 200, description = "SilenceList: {\"silences\": [Silence]}", body = serde_json::Value)))]
async fn list_silences(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    let now = Utc::now();
    let silences = if shared.db().dialect() == Dialect::Postgres {
        let stored = shared.db().read(store::silences).await?;
        let mut silences = Silences::default();
        for silence in stored {
            if let Err(error) = silences.restore(silence) {
                tracing::warn!(%error, "ignoring a stored silence that no longer compiles");
            }
        }
        silences.list(now)
    } else {
        shared.book().silences.list(now)
    };
    Ok(HttpResponse::Ok().json(SilenceList { silences }))
}

/// End a silence now; the incidents it held are unsilenced (and notified if people have
/// not heard of them).
#[utoipa::path(delete, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "the silence's id (a ULID)")),
    responses((status = 200, description = "the silence that was removed", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody),
        (status = 503, description = "nothing was stored (the database failed); sending the same request again is safe", body = obs_core::error::ErrorBody)))]
async fn delete_silence(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = incident_id(&id)?;
    let now = Utc::now();
    let (removed, _) = shared
        .into_inner()
        .change(
            Scope::Everything,
            move |book, applied| book.remove_silence(id, now, applied),
            move |tx, removed: &Option<obs_model::Silence>| match removed {
                Some(_) => store::delete_silence(tx, id),
                None => Ok(()),
            },
        )
        .await
        .map_err(|error| match store::conflict(&error) {
            Some(conflict) => ApiError::Conflict(format!("{conflict}; nothing was changed")),
            None => ApiError::from(error),
        })?;
    let removed = removed.ok_or_else(|| ApiError::not_found(format!("no silence {id}")))?;
    Ok(HttpResponse::Ok().json(removed))
}

/// The expected services, and what the last check found (`missing`, `checked_at`).
#[utoipa::path(get, path = "/v1/goals", tag = "goals",
    responses((status = 200, description = "Goals", body = serde_json::Value, example = json!({
        "services": [{"service": "api", "severity": "critical", "note": "the public API"}],
        "missing": ["api"], "checked_at": "2026-01-02T03:04:05Z"}))))]
async fn get_goals(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    if shared.db().dialect() == Dialect::Postgres {
        let (goals, _) = shared.db().read(store::goals).await?;
        return Ok(HttpResponse::Ok().json(goals.unwrap_or_else(store::no_goals)));
    }
    Ok(HttpResponse::Ok().json(shared.goals().to_wire()))
}

/// Replace the expected services. Each missing one (unknown to the watcher at WATCHER_URL)
/// becomes a `missing` incident of its severity (default critical).
#[utoipa::path(put, path = "/v1/goals", tag = "goals",
    request_body(content = serde_json::Value, description = "Goals", example = json!({
        "services": [{"service": "api", "severity": "critical", "note": "the public API"},
                     {"service": "nightly-backup", "severity": "warning"}]})),
    responses((status = 200, description = "the goals as stored", body = serde_json::Value),
        (status = 400, description = "invalid; the field is named", body = obs_core::error::ErrorBody),
        (status = 503, description = "nothing was stored (the database failed); sending the same request again is safe", body = obs_core::error::ErrorBody)))]
async fn put_goals(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let input: Goals = body(&raw)?;
    let services = goals::check(input).map_err(ApiError::from)?;
    let stored = shared
        .into_inner()
        .put_goals(services)
        .await
        .map_err(|error| match store::conflict(&error) {
            Some(conflict) => ApiError::Conflict(format!("{conflict}; nothing was changed")),
            None => ApiError::from(error),
        })?;
    Ok(HttpResponse::Ok().json(stored))
}
