//! The curator's HTTP API (DESIGN §4).
//!
//! Bodies are read as raw JSON and deserialized here with the path of any field that does
//! not fit (`[3].kind`, `alerts[0].startsAt`, `matchers[1].isRegex`), then checked before
//! anything changes; every refusal is a 400 naming the field. Malformed JSON, a wrong
//! content type and oversized bodies are answered by the kit (400/415/413) before a handler
//! runs. Mutations go through [`Shared::commit`]: forwarded, then saved, then answered.

use std::sync::Arc;

use chrono::Utc;
use obs_core::actix_web::{web, HttpResponse};
use obs_core::utoipa::{self, OpenApi};
use obs_core::ApiError;
use obs_model::{Goals, IncidentList, IncidentState, Severity, SilenceIn, SilenceList};
use serde::Deserialize;
use serde_json::value::RawValue;
use ulid::Ulid;

use crate::incidents::{Applied, Filter, ManualError, Signal, Tally};
use crate::silences::Compiled;
use crate::validate;
use crate::{alertmanager, goals, issues, Shared};

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

/// Apply signals, forward and save what changed, answer with the tally.
async fn apply_signals(shared: &Shared, signals: Vec<Signal>) -> Result<Tally, ApiError> {
    let now = Utc::now();
    let mut applied = Applied::default();
    {
        let mut book = shared.book();
        for signal in signals {
            book.apply(signal, now, &mut applied);
        }
        shared.seal(&mut book, &mut applied);
    }
    let tally = applied.tally;
    shared.commit(applied).await?;
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
        (status = 503, description = "MAX_INCIDENTS reached; retry later", body = obs_core::error::ErrorBody)))]
async fn post_issues(
    shared: web::Data<Shared>,
    items: obs_core::Json<Vec<Box<RawValue>>>,
) -> Result<HttpResponse, ApiError> {
    let issues = issues::parse_batch(&items)?;
    drop(items);
    let signals: Vec<Signal> = issues.into_iter().map(issues::signal).collect();
    shared.metrics.issues_received.inc_by(signals.len() as u64);
    let tally = apply_signals(&shared, signals).await;
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
        (status = 503, description = "MAX_INCIDENTS reached; retry later", body = obs_core::error::ErrorBody)))]
async fn post_alertmanager(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let payload: alertmanager::Payload = body(&raw)?;
    let signals = alertmanager::signals(payload, Utc::now())?;
    shared.metrics.alerts_received.inc_by(signals.len() as u64);
    let tally = apply_signals(&shared, signals).await;
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
    let incidents = shared.book().list(&filter);
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
    let incident = shared
        .book()
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no incident {id}")))?;
    Ok(HttpResponse::Ok().json(incident))
}

/// Who acted, when the request does not say: the curator cannot know, and naming the API
/// would read as if something automatic had acted.
const UNKNOWN_ACTOR: &str = "unknown";

/// Who acted, and why; both optional, and so is the body.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ByHand {
    by: Option<String>,
    comment: Option<String>,
}

fn by_hand(bytes: &[u8]) -> Result<ByHand, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(ByHand::default());
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|_| ApiError::invalid_field("request body", "is not UTF-8"))?;
    let input: ByHand = validate::parse(text)?;
    if let Some(by) = &input.by {
        validate::text(by, validate::MAX_NAME_CHARS)
            .map_err(|why| ApiError::invalid_field("by", why))?;
    }
    if let Some(comment) = &input.comment {
        validate::text(comment, crate::silences::MAX_COMMENT_CHARS)
            .map_err(|why| ApiError::invalid_field("comment", why))?;
    }
    Ok(input)
}

async fn by_hand_change(
    shared: &Shared,
    id: &str,
    bytes: &[u8],
    change: impl FnOnce(
        &mut crate::incidents::Book,
        Ulid,
        ByHand,
        &mut Applied,
    ) -> Result<obs_model::Incident, ManualError>,
) -> Result<HttpResponse, ApiError> {
    let id = incident_id(id)?;
    let input = by_hand(bytes)?;
    let mut applied = Applied::default();
    let incident = {
        let mut book = shared.book();
        let result = change(&mut book, id, input, &mut applied);
        shared.seal(&mut book, &mut applied);
        result
    };
    let incident = incident.map_err(|error| match error {
        ManualError::NotFound => ApiError::not_found(format!("no incident {id}")),
        ManualError::Resolved => ApiError::Conflict(format!(
            "incident {id} is resolved; there is nothing to acknowledge"
        )),
    })?;
    shared.commit(applied).await?;
    Ok(HttpResponse::Ok().json(incident))
}

/// Acknowledge: someone is on it. Acknowledging twice changes nothing.
#[utoipa::path(post, path = "/v1/incidents/{id}/ack", tag = "incidents",
    params(("id" = String, Path, description = "the incident's id (a ULID)")),
    request_body(content = serde_json::Value, description = "optional: {\"by\", \"comment\"}",
        example = json!({"by": "alice", "comment": "looking into it"})),
    responses((status = 200, description = "the incident", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody),
        (status = 409, description = "it is resolved", body = obs_core::error::ErrorBody)))]
async fn acknowledge(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    by_hand_change(&shared, &id, &bytes, |book, id, input, applied| {
        let by = Some(input.by.unwrap_or_else(|| UNKNOWN_ACTOR.into()));
        book.acknowledge(id, by, input.comment, Utc::now(), applied)
    })
    .await
}

/// Resolve by hand. If its source still reports the trouble afterwards, it reopens.
#[utoipa::path(post, path = "/v1/incidents/{id}/resolve", tag = "incidents",
    params(("id" = String, Path, description = "the incident's id (a ULID)")),
    request_body(content = serde_json::Value, description = "optional: {\"by\", \"comment\"}",
        example = json!({"by": "alice", "comment": "fixed the config"})),
    responses((status = 200, description = "the incident", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody)))]
async fn resolve(
    shared: web::Data<Shared>,
    id: web::Path<String>,
    bytes: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    by_hand_change(&shared, &id, &bytes, |book, id, input, applied| {
        let by = Some(input.by.unwrap_or_else(|| UNKNOWN_ACTOR.into()));
        book.resolve(id, by, input.comment, Utc::now(), applied)
    })
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
        (status = 409, description = "MAX_SILENCES reached", body = obs_core::error::ErrorBody)))]
async fn post_silence(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let input: SilenceIn = body(&raw)?;
    let now = Utc::now();
    let compiled = Compiled::from_input(input, now)?;
    let silence = compiled.silence.clone();
    let mut applied = Applied::default();
    let _writing = shared.settings_write.lock().await;
    let silences = {
        let mut book = shared.book();
        if book.silences.len() >= shared.config.max_silences {
            return Err(ApiError::Conflict(format!(
                "MAX_SILENCES ({}) silences exist; delete one first",
                shared.config.max_silences
            )));
        }
        book.add_silence(compiled, now, &mut applied);
        shared.seal(&mut book, &mut applied);
        shared.metrics.silences.set(book.silences.len() as i64);
        book.silences.list(now)
    };
    shared.settings.save_silences(silences).await?;
    shared.commit(applied).await?;
    Ok(HttpResponse::Created().json(silence))
}

/// The silences that have not ended, soonest end first.
#[utoipa::path(get, path = "/v1/silences", tag = "silences",
    responses((status = 200, description = "SilenceList: {\"silences\": [Silence]}", body = serde_json::Value)))]
async fn list_silences(shared: web::Data<Shared>) -> HttpResponse {
    let silences = shared.book().silences.list(Utc::now());
    HttpResponse::Ok().json(SilenceList { silences })
}

/// End a silence now; the incidents it held are unsilenced (and notified if people have
/// not heard of them).
#[utoipa::path(delete, path = "/v1/silences/{id}", tag = "silences",
    params(("id" = String, Path, description = "the silence's id (a ULID)")),
    responses((status = 200, description = "the silence that was removed", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody)))]
async fn delete_silence(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = incident_id(&id)?;
    let now = Utc::now();
    let mut applied = Applied::default();
    let _writing = shared.settings_write.lock().await;
    let (removed, silences) = {
        let mut book = shared.book();
        let removed = book
            .remove_silence(id, now, &mut applied)
            .ok_or_else(|| ApiError::not_found(format!("no silence {id}")))?;
        shared.seal(&mut book, &mut applied);
        shared.metrics.silences.set(book.silences.len() as i64);
        (removed, book.silences.list(now))
    };
    shared.settings.save_silences(silences).await?;
    shared.commit(applied).await?;
    Ok(HttpResponse::Ok().json(removed))
}

/// The expected services, and what the last check found (`missing`, `checked_at`).
#[utoipa::path(get, path = "/v1/goals", tag = "goals",
    responses((status = 200, description = "Goals", body = serde_json::Value, example = json!({
        "services": [{"service": "api", "severity": "critical", "note": "the public API"}],
        "missing": ["api"], "checked_at": "2026-01-02T03:04:05Z"}))))]
async fn get_goals(shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.goals().to_wire())
}

/// Replace the expected services. Each missing one (unknown to the watcher at WATCHER_URL)
/// becomes a `missing` incident of its severity (default critical).
#[utoipa::path(put, path = "/v1/goals", tag = "goals",
    request_body(content = serde_json::Value, description = "Goals", example = json!({
        "services": [{"service": "api", "severity": "critical", "note": "the public API"},
                     {"service": "nightly-backup", "severity": "warning"}]})),
    responses((status = 200, description = "the goals as stored", body = serde_json::Value),
        (status = 400, description = "invalid; the field is named", body = obs_core::error::ErrorBody)))]
async fn put_goals(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let input: Goals = body(&raw)?;
    let services = goals::check(input).map_err(ApiError::from)?;
    let _writing = shared.settings_write.lock().await;
    shared
        .settings
        .save_goals(Goals {
            services: services.clone(),
            missing: None,
            checked_at: None,
        })
        .await?;
    let stored = {
        let mut goals = shared.goals();
        goals.services = services;
        // The last verdict was about the old list.
        goals.missing = None;
        goals.checked_at = None;
        goals.to_wire()
    };
    shared.goals_changed.notify_one();
    Ok(HttpResponse::Ok().json(stored))
}
