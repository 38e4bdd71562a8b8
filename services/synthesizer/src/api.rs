//! The synthesizer's HTTP API (DESIGN §4): plans in, the report and the status page out.
//!
//! A batch of plans is read as raw JSON and deserialized here with the path of any field
//! that does not fit (`[3].incident.severity`), then checked whole before anything changes;
//! every refusal is a 400 naming the field. Malformed JSON, a wrong content type and
//! oversized bodies are answered by the kit (400/415/413) before a handler runs.

use std::sync::Arc;

use obs_core::actix_web::{web, HttpResponse};
use obs_core::utoipa::{self, OpenApi};
use obs_core::ApiError;
use obs_model::{Plan, PlanList, PlanState};
use serde::Deserialize;
use serde_json::value::RawValue;
use ulid::Ulid;

use crate::render::{html, markdown};
use crate::report::{Page, DEFAULT_SERVICES_SHOWN, MAX_SERVICES_SHOWN};
use crate::Shared;

/// Plans in one batch, at most.
pub const MAX_BATCH: usize = 1000;
/// Steps in one plan, at most.
pub const MAX_STEPS: usize = 100;
const MAX_NAME_CHARS: usize = 256;
const MAX_TEXT_CHARS: usize = 4096;
const DEFAULT_LIST_LIMIT: usize = 1000;
const MAX_LIST_LIMIT: usize = 10_000;

pub fn routes(cfg: &mut web::ServiceConfig, shared: Arc<Shared>) {
    cfg.app_data(web::Data::from(shared))
        .service(web::resource("/").route(web::get().to(status_page)))
        .service(
            web::resource("/v1/plans")
                .route(web::post().to(post_plans))
                .route(web::get().to(list_plans)),
        )
        .service(web::resource("/v1/plans/{id}").route(web::get().to(get_plan)))
        .service(web::resource("/v1/report").route(web::get().to(report)))
        .service(web::resource("/v1/notify/config").route(web::get().to(notify_config)));
}

#[derive(OpenApi)]
#[openapi(
    paths(status_page, post_plans, list_plans, get_plan, report, notify_config),
    tags(
        (name = "notify", description = "Where notifications go"),
        (name = "plans", description = "Plans (with their incidents) from the planner"),
        (name = "report", description = "What the fleet knows, for people: status page, report")
    )
)]
struct SynthesizerApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    SynthesizerApi::openapi()
}

/// The status page: services (what is wrong first, one page of them, the rest counted),
/// open incidents with their plans, recent events, 24 h uptime.
#[utoipa::path(get, path = "/", tag = "report",
    params(
        ("limit" = Option<usize>, Query, description = "services listed, 1 to 1000, default 100"),
        ("after" = Option<String>, Query, description = "a cursor: list the services after it (the page's \"next\" link)")),
    responses((status = 200, description = "HTML, no external assets", content_type = "text/html"),
        (status = 400, description = "a bad limit or cursor", body = obs_core::error::ErrorBody)))]
async fn status_page(
    shared: web::Data<Shared>,
    query: web::Query<PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = query.page()?;
    let report = shared.report(&page).await?;
    Ok(html_response(html::render(&report)))
}

/// Which services a page or report lists.
#[derive(Deserialize)]
struct PageQuery {
    limit: Option<String>,
    after: Option<String>,
}

impl PageQuery {
    fn page(&self) -> Result<Page, ApiError> {
        Ok(Page {
            limit: limit(
                self.limit.as_deref(),
                DEFAULT_SERVICES_SHOWN,
                MAX_SERVICES_SHOWN,
            )?,
            after: self
                .after
                .as_deref()
                .map(Page::cursor)
                .transpose()
                .map_err(|why| ApiError::invalid_field("after", why))?,
        })
    }
}

/// `limit`: a whole number from 1 to `max`, `default` when absent.
fn limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    obs_model::page::limit(text, default, max).map_err(|why| ApiError::invalid_field("limit", why))
}

fn html_response(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        // The page is built from live facts: never serve a stale copy.
        .insert_header(("cache-control", "no-store"))
        .body(body)
}

#[derive(Deserialize)]
struct ReportQuery {
    format: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

/// The same facts as the page: `json` (default), `md` (Markdown, readable in a terminal) or
/// `html` (the page itself).
#[utoipa::path(get, path = "/v1/report", tag = "report",
    params(("format" = Option<String>, Query, description = "json (default), md or html"),
        ("limit" = Option<usize>, Query, description = "services listed, 1 to 1000, default 100"),
        ("after" = Option<String>, Query, description = "a cursor: list the services after it (services_next)")),
    responses(
        (status = 200, description = "the report: JSON (Report), text/markdown or text/html", body = serde_json::Value),
        (status = 400, description = "unknown format, a bad limit or cursor", body = obs_core::error::ErrorBody)))]
async fn report(
    shared: web::Data<Shared>,
    query: web::Query<ReportQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = query.format.as_deref().unwrap_or("json");
    if !matches!(format, "json" | "md" | "html") {
        return Err(ApiError::invalid_field(
            "format",
            format!("'{format}' is not one of json, md, html"),
        ));
    }
    let page = query.page.page()?;
    let report = shared.report(&page).await?;
    Ok(match format {
        "md" => HttpResponse::Ok()
            .content_type("text/markdown; charset=utf-8")
            .body(markdown::render(&report)),
        "html" => html_response(html::render(&report)),
        _ => HttpResponse::Ok().json(report),
    })
}

/// The effective notification routing: NOTIFY_CONFIG's tree with everything inherited filled
/// in (or NOTIFY_WEBHOOKS as one route), its receivers and the warnings read at start.
/// Webhook URLs are redacted and Slack's `api_url` is masked whole; still, with API_TOKEN set
/// it needs the token, as other reads that may expose secrets do.
#[utoipa::path(get, path = "/v1/notify/config", tag = "notify",
    responses((status = 200, description = "{source, file, route: {path, receiver, matchers, continue, group_by, group_wait_seconds, group_interval_seconds, repeat_interval_seconds, routes}, receivers: [{name, webhook_configs, slack_configs, not_delivered}], warnings}", body = serde_json::Value),
        (status = 401, body = obs_core::error::ErrorBody)))]
async fn notify_config(_: obs_core::SensitiveRead, shared: web::Data<Shared>) -> HttpResponse {
    HttpResponse::Ok().json(shared.routing().view())
}

/// A batch of plans from the planner: a JSON array of `obs_model::Plan`, each with its
/// incident. The highest `revision` of each plan wins; older or equal copies are counted
/// as stale and change nothing, so the same batch can be sent any number of times.
#[utoipa::path(post, path = "/v1/plans", tag = "plans",
    request_body(content = Vec<serde_json::Value>, description = "[Plan]"),
    responses(
        (status = 200, description = "applied", example = json!({"received": 2, "stored": 1, "stale": 1, "notify": 1})),
        (status = 400, description = "a plan is invalid; the field is named, nothing applied", body = obs_core::error::ErrorBody),
        (status = 503, description = "MAX_OPEN_PLANS reached, or the database could not commit; nothing applied, retry later", body = obs_core::error::ErrorBody)))]
async fn post_plans(
    shared: web::Data<Shared>,
    raw: obs_core::Json<Box<RawValue>>,
) -> Result<HttpResponse, ApiError> {
    let plans: Vec<Plan> = parse(raw.get())?;
    drop(raw);
    check_batch(&plans)?;
    let accepted = shared.accept(plans).await?;
    Ok(HttpResponse::Ok().json(accepted))
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<String>,
}

/// Plans held, most recently updated first.
#[utoipa::path(get, path = "/v1/plans", tag = "plans",
    params(
        ("state" = Option<String>, Query, description = "open or closed"),
        ("limit" = Option<usize>, Query, description = "1 to 10000, default 1000")),
    responses((status = 200, description = "PlanList: {\"plans\": [Plan]}", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody)))]
async fn list_plans(
    shared: web::Data<Shared>,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let state = match query.state.as_deref() {
        None => None,
        Some("open") => Some(PlanState::Open),
        Some("closed") => Some(PlanState::Closed),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "state",
                format!("'{other}' is not one of open, closed"),
            ))
        }
    };
    let limit = limit(query.limit.as_deref(), DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT)?;
    let plans = shared.store().list(state, limit).await?;
    Ok(HttpResponse::Ok().json(PlanList { plans }))
}

#[utoipa::path(get, path = "/v1/plans/{id}", tag = "plans",
    params(("id" = String, Path, description = "the plan's id (a ULID)")),
    responses((status = 200, description = "Plan", body = serde_json::Value),
        (status = 400, description = "not an id", body = obs_core::error::ErrorBody),
        (status = 404, description = "no such plan", body = obs_core::error::ErrorBody)))]
async fn get_plan(
    shared: web::Data<Shared>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = Ulid::from_string(&id)
        .map_err(|_| ApiError::invalid_field("id", format!("'{id}' is not an id (a ULID)")))?;
    let plan = shared
        .store()
        .get(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no plan {id}")))?;
    Ok(HttpResponse::Ok().json(plan))
}

/// Deserialize JSON text, naming the field that did not fit (serde alone says only "at
/// line 1 column 80").
fn parse<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_str(json);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." {
            "request body".to_string()
        } else {
            path
        };
        let why = error.into_inner().to_string();
        let why = match why.rfind(" at line ") {
            Some(at) => why[..at].to_string(),
            None => why,
        };
        ApiError::invalid_field(&field, why)
    })
}

/// Everything checked before anything is applied.
fn check_batch(plans: &[Plan]) -> Result<(), ApiError> {
    if plans.len() > MAX_BATCH {
        return Err(ApiError::invalid_field(
            "request body",
            format!(
                "{} plans in one batch; at most {MAX_BATCH} are allowed",
                plans.len()
            ),
        ));
    }
    for (index, plan) in plans.iter().enumerate() {
        check_plan(plan)
            .map_err(|(field, why)| ApiError::invalid_field(&format!("[{index}].{field}"), why))?;
    }
    Ok(())
}

fn check_plan(plan: &Plan) -> Result<(), (String, String)> {
    fn at(field: &'static str) -> impl Fn(String) -> (String, String) {
        move |why| (field.to_string(), why)
    }
    text(&plan.service, MAX_NAME_CHARS, true).map_err(at("service"))?;
    text(&plan.rule, MAX_NAME_CHARS, true).map_err(at("rule"))?;
    text(&plan.summary, MAX_TEXT_CHARS, false).map_err(at("summary"))?;
    let incident = &plan.incident;
    if incident.id != plan.incident_id {
        return Err((
            "incident.id".into(),
            format!(
                "{} is not the plan's incident_id {}",
                incident.id, plan.incident_id
            ),
        ));
    }
    text(&incident.service, MAX_NAME_CHARS, true).map_err(at("incident.service"))?;
    text(&incident.title, MAX_TEXT_CHARS, false).map_err(at("incident.title"))?;
    text(&incident.message, MAX_TEXT_CHARS, false).map_err(at("incident.message"))?;
    text(&incident.recommendation, MAX_TEXT_CHARS, false).map_err(at("incident.recommendation"))?;
    if plan.steps.len() > MAX_STEPS {
        return Err((
            "steps".into(),
            format!(
                "{} steps; at most {MAX_STEPS} are allowed",
                plan.steps.len()
            ),
        ));
    }
    for (number, step) in plan.steps.iter().enumerate() {
        let field = |name: &str| format!("steps[{number}].{name}");
        text(&step.action, MAX_NAME_CHARS, true).map_err(|why| (field("action"), why))?;
        text(&step.title, MAX_TEXT_CHARS, true).map_err(|why| (field("title"), why))?;
        text(&step.reason, MAX_TEXT_CHARS, false).map_err(|why| (field("reason"), why))?;
        if let Some(outcome) = &step.outcome {
            text(&outcome.detail, MAX_TEXT_CHARS, false)
                .map_err(|why| (field("outcome.detail"), why))?;
        }
    }
    Ok(())
}

/// At most `max` characters, no control characters but newline and tab, and not blank when
/// `required`.
fn text(value: &str, max: usize, required: bool) -> Result<(), String> {
    if required && value.trim().is_empty() {
        return Err("must not be empty".into());
    }
    let length = value.chars().count();
    if length > max {
        return Err(format!(
            "is {length} characters long; at most {max} are allowed"
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err("contains control characters".into());
    }
    Ok(())
}
