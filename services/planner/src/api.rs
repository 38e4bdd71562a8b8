//! The planner's HTTP API (DESIGN §4).
//!
//! `POST /v1/incidents` reads each item with the path of any field that does not fit, checks
//! them all, then applies them; every refusal is a 400 naming the field and nothing is
//! applied. Malformed JSON, a wrong content type and oversized bodies are answered by the
//! kit (400/415/413) before a handler runs.

use std::sync::Arc;

use chrono::Utc;
use obs_core::actix_web::{web, HttpResponse};
use obs_core::utoipa::{self, OpenApi};
use obs_core::ApiError;
use obs_model::{PlanList, PlanState};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use ulid::Ulid;

use crate::plans::Filter;
use crate::rules::{RuleSpec, Source};
use crate::{render, validate, Shared};

const DEFAULT_LIST_LIMIT: usize = 100;
const MAX_LIST_LIMIT: usize = 10_000;

pub fn routes(cfg: &mut web::ServiceConfig, shared: Arc<Shared>) {
    cfg.app_data(web::Data::from(shared))
        .service(web::resource("/v1/incidents").route(web::post().to(post_incidents)))
        .service(web::resource("/v1/plans").route(web::get().to(list_plans)))
        .service(web::resource("/v1/plans/{id}").route(web::get().to(get_plan)))
        .service(web::resource("/v1/rules").route(web::get().to(get_rules)));
}

#[derive(OpenApi)]
#[openapi(
    paths(post_incidents, list_plans, get_plan, get_rules),
    tags(
        (name = "incidents", description = "Incidents from the curator"),
        (name = "plans", description = "What to do about each incident"),
        (name = "rules", description = "The rules plans are made from")
    )
)]
struct PlannerApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    PlannerApi::openapi()
}

/// Incidents as the curator forwards them (a JSON array of `obs_model::Incident`). Each
/// makes or remakes its plan; a copy no newer (by `revision`) than what the plan has is
/// ignored, so redeliveries and late arrivals change nothing. The batch commits as a whole
/// or not at all (503: nothing was stored; sending it again is safe).
#[utoipa::path(post, path = "/v1/incidents", tag = "incidents",
    request_body(content = serde_json::Value, description = "[Incident]", example = json!([{
        "id": "01JC3Z8Q2J6W7V2N5Y4M1K0P9R", "fingerprint": "api/oom_killed/api-1",
        "source": "watcher", "kind": "oom_killed", "service": "api", "subject": "api-1",
        "severity": "critical", "state": "open", "title": "api-1 killed: out of memory",
        "message": "Container api-1 killed - out of memory (256 MiB; signal: oom_event)",
        "recommendation": "Raise the memory limit or find the leak",
        "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z",
        "updated_at": "2026-01-02T03:04:05Z", "count": 1, "change": "opened", "notify": true,
        "revision": 1, "facts": {"container": "api-1", "memory_limit_bytes": 268435456,
        "exit_code": 137, "signal": "oom_event", "restarts": 2}}])),
    responses(
        (status = 200, description = "applied", example = json!({"received": 1, "created": 1,
            "updated": 0, "closed": 0, "reopened": 0, "ignored": 0})),
        (status = 400, description = "an item is invalid; the field is named", body = obs_core::error::ErrorBody),
        (status = 503, description = "the database failed: nothing was stored, send it again", body = obs_core::error::ErrorBody)))]
async fn post_incidents(
    shared: web::Data<Shared>,
    items: obs_core::Json<Vec<Box<RawValue>>>,
) -> Result<HttpResponse, ApiError> {
    let incidents = validate::incidents(&items)?;
    drop(items);
    // A failed commit is a 503 saying nothing was stored (obs_core::ApiError), so the sender
    // retries, and the retry is applied like the first copy: nothing was kept in memory.
    let tally = shared.apply_incidents(incidents, Utc::now()).await?;
    Ok(HttpResponse::Ok().json(tally))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    service: Option<String>,
    limit: Option<String>,
}

fn parse_state(text: &str) -> Result<PlanState, ApiError> {
    match text {
        "open" => Ok(PlanState::Open),
        "closed" => Ok(PlanState::Closed),
        _ => Err(ApiError::invalid_field(
            "state",
            format!("'{text}' is not one of open, closed"),
        )),
    }
}

/// Plans, most recently changed first.
#[utoipa::path(get, path = "/v1/plans", tag = "plans",
    params(
        ("state" = Option<String>, Query, description = "open or closed"),
        ("service" = Option<String>, Query, description = "only this service's"),
        ("limit" = Option<usize>, Query, description = "1 to 10000, default 100")),
    responses((status = 200, description = "PlanList: {\"plans\": [Plan]}", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody)))]
async fn list_plans(
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
        limit,
    };
    let plans = shared.store().list(filter).await?;
    Ok(HttpResponse::Ok().json(PlanList { plans }))
}

/// One plan, by its id or by its incident's id.
#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "the plan's id, or its incident's (a ULID)")),
    responses((status = 200, description = "Plan", body = serde_json::Value),
        (status = 400, description = "not an id", body = obs_core::error::ErrorBody),
        (status = 404, description = "no such plan", body = obs_core::error::ErrorBody)))]
async fn get_plan(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Ulid::from_string(&id)
        .map_err(|_| ApiError::invalid_field("id", format!("'{id}' is not an id (a ULID)")))?;
    let plan = shared.store().get(id).await?.ok_or_else(|| {
        ApiError::not_found(format!("no plan {id}, nor one for an incident {id}"))
    })?;
    Ok(HttpResponse::Ok().json(plan))
}

#[derive(Serialize)]
struct RuleView<'a> {
    #[serde(flatten)]
    spec: &'a RuleSpec,
    source: Source,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    replaces_builtin: bool,
}

#[derive(Serialize)]
struct RulesView<'a> {
    rules_file: Option<String>,
    placeholders: &'a [&'a str],
    rules: Vec<RuleView<'a>>,
}

/// The effective rules: the built-in ones merged with RULES_FILE, each with where it came
/// from, and the placeholders templates may use.
#[utoipa::path(get, path = "/v1/rules", tag = "rules",
    responses((status = 200, description = "the effective rules", body = serde_json::Value, example = json!({
        "rules_file": "/etc/planner/rules.yaml",
        "placeholders": ["service", "container", "exit_code", "memory_limit", "down_for", "alertname"],
        "rules": [{"name": "unhealthy", "source": "rules_file", "replaces_builtin": true,
            "match": {"kind": "unhealthy"}, "priority": "P1", "summary": "{container} fails its HEALTHCHECK",
            "steps": [{"action": "restart_container", "title": "Restart {container}",
                "reason": "house rule", "safe": true, "target": "{container}"}]}]}))))]
async fn get_rules(shared: web::Data<Shared>) -> HttpResponse {
    let rules = shared.store().rules();
    let view = RulesView {
        rules_file: rules.file.as_ref().map(|path| path.display().to_string()),
        placeholders: render::PLACEHOLDERS,
        rules: rules
            .rules
            .iter()
            .map(|rule| RuleView {
                spec: &rule.spec,
                source: rule.source,
                replaces_builtin: rule.replaces_builtin,
            })
            .collect(),
    };
    HttpResponse::Ok().json(view)
}
