//! The watcher's HTTP API: the seeds' paths and payloads.
//!
//! Input is checked here, before anything is stored: names (service, event type,
//! component) by `validate::name`, free text by length, numbers by range. Every refusal is
//! a 400 naming the field; malformed JSON, a wrong content type and oversized bodies are
//! answered by the kit (400/415/413) before a handler runs.

use std::sync::Arc;
use std::time::Duration;

use obs_core::actix_web::{web, HttpResponse};
use obs_core::utoipa::{self, OpenApi};
use obs_core::{ApiError, StateChanging};
use obs_model::page::{self, Cursor};
use obs_model::{
    ContainerList, EventIn, EventList, EventSource, HeartbeatIn, IssueList, IssueState,
    ServiceState,
};
use serde::Deserialize;

use std::sync::atomic::Ordering;

use crate::checker;
use crate::heartbeats::{Beat, ServicesQuery};
use crate::validate::{self, MAX_DETAIL_CHARS, MAX_PHASE_CHARS};
use crate::{docker, Shared};

/// Largest `limit` of `/events` and `/issues`, and `lines` of `/logs`.
pub const MAX_LIMIT: usize = 10_000;
const DEFAULT_EVENTS_LIMIT: usize = 100;
const DEFAULT_ISSUES_LIMIT: usize = 1000;
const DEFAULT_LOG_LINES: usize = 100;
const MAX_RESTART_TIMEOUT_SECONDS: u32 = 300;

const OK: &str = r#"{"status":"ok"}"#;

pub fn routes(cfg: &mut web::ServiceConfig, shared: Arc<Shared>) {
    cfg.app_data(web::Data::from(shared))
        .service(web::resource("/heartbeat").route(web::post().to(heartbeat)))
        // In a scope, so only requests under /ping run these two patterns.
        .service(
            web::scope("/ping")
                .service(
                    web::resource("/{service}")
                        .route(web::get().to(ping))
                        .route(web::post().to(ping)),
                )
                .service(
                    web::resource("/{service}/fail")
                        .route(web::get().to(ping_fail))
                        .route(web::post().to(ping_fail)),
                ),
        )
        .service(
            web::resource("/events")
                .route(web::post().to(post_event))
                .route(web::get().to(list_events)),
        )
        .service(web::resource("/status").route(web::get().to(status)))
        .service(web::resource("/issues").route(web::get().to(list_issues)))
        .service(web::resource("/containers").route(web::get().to(list_containers)))
        .service(web::resource("/container").route(web::get().to(container)))
        .service(web::resource("/logs").route(web::get().to(logs)))
        .service(web::resource("/containers/{name}/restart").route(web::post().to(restart)))
        .service(
            web::resource("/pods/{namespace}/{pod}/restart").route(web::post().to(restart_pod)),
        );
}

#[derive(OpenApi)]
#[openapi(
    paths(
        heartbeat, ping, ping_fail, post_event, list_events, status, list_issues,
        list_containers, container, logs, restart, restart_pod
    ),
    tags(
        (name = "heartbeats", description = "Services saying they are alive (or failed)"),
        (name = "events", description = "Things that happened"),
        (name = "read", description = "What the watcher knows: status, events, issues"),
        (name = "containers", description = "The Docker engine's containers")
    )
)]
struct WatcherApi;

pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = WatcherApi::openapi();
    // The pings answer POST as well as GET (one handler): listed under both methods, the POST
    // with an operation id of its own, as OpenAPI requires.
    for path in ["/ping/{service}", "/ping/{service}/fail"] {
        if let Some(item) = doc.paths.paths.get_mut(path) {
            if let Some(mut post) = item.get.clone() {
                post.operation_id = post.operation_id.map(|id| format!("{id}_post"));
                item.post = Some(post);
            }
        }
    }
    doc
}

fn ok() -> HttpResponse {
    HttpResponse::Ok().content_type("application/json").body(OK)
}

fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    validate::name(value).map_err(|why| ApiError::invalid_field(field, why))
}

fn check_text(field: &str, value: &str, limit: (usize, &str)) -> Result<(), ApiError> {
    validate::text(value, limit).map_err(|why| ApiError::invalid_field(field, why))
}

/// A per-service timeout: finite, from 10 ms to a month (`bounds::HEARTBEAT_TIMEOUT`).
fn timeout(field: &str, seconds: Option<f64>) -> Result<Option<Duration>, ApiError> {
    let Some(seconds) = seconds else {
        return Ok(None);
    };
    crate::config::bounds::HEARTBEAT_TIMEOUT
        .field(field, seconds)
        .map(Some)
}

/// A count from the query string, 1..=max; its default when absent.
fn count(field: &str, value: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_field(
            field,
            format!("'{value}' is not a whole number from 1 to {max}"),
        )),
    }
}

/// A heartbeat or a ping: in memory for a service that is up (written behind), through a
/// transaction for one that is down (its recovery commits before the answer; a failed commit
/// is 503 and changes nothing).
async fn beat(
    shared: &Shared,
    service: &str,
    phase: Option<&str>,
    timeout: Option<Duration>,
) -> Result<(), ApiError> {
    let wall = chrono::Utc::now();
    let outcome = shared.tracker().beat(service, phase, timeout, wall);
    match outcome.map_err(|full| ApiError::Conflict(full.to_string()))? {
        Beat::Alive { deadline, .. } => {
            // Read first: the hot path writes the shared word only when it moves earlier.
            if deadline < shared.next_due.load(Ordering::Relaxed) {
                shared.next_due.fetch_min(deadline, Ordering::Relaxed);
                shared.checker_wake.notify_one();
            }
        }
        Beat::Down => checker::recover(shared, service, phase, timeout, wall).await?,
    }
    shared.metrics.heartbeats.inc();
    Ok(())
}

/// Report a service alive. `timeout_seconds` overrides MONITOR_HEARTBEAT_TIMEOUT for it from
/// this beat on; unknown fields are ignored.
#[utoipa::path(post, path = "/heartbeat", tag = "heartbeats",
    request_body(content = serde_json::Value, description = "HeartbeatIn",
        example = json!({"service": "edge-cam01", "phase": "edge_loop", "timeout_seconds": 30})),
    responses(
        (status = 200, description = "recorded", example = json!({"status": "ok"})),
        (status = 400, description = "invalid field", body = obs_core::error::ErrorBody),
        (status = 409, description = "MAX_SERVICES reached", body = obs_core::error::ErrorBody),
        (status = 503, description = "the service was down and its recovery did not commit; nothing changed, send it again",
            body = obs_core::error::ErrorBody)))]
async fn heartbeat(
    shared: web::Data<Shared>,
    body: obs_core::Json<HeartbeatIn>,
) -> Result<HttpResponse, ApiError> {
    let beat = body.into_inner();
    check_name("service", &beat.service)?;
    if let Some(phase) = &beat.phase {
        check_text("phase", phase, (MAX_PHASE_CHARS, "MAX_PHASE_CHARS"))?;
    }
    let timeout = timeout("timeout_seconds", beat.timeout_seconds)?;
    self::beat(&shared, &beat.service, beat.phase.as_deref(), timeout).await?;
    Ok(ok())
}

#[derive(Deserialize)]
struct PingQuery {
    timeout_seconds: Option<String>,
    detail: Option<String>,
}

fn ping_timeout(query: &PingQuery) -> Result<Option<Duration>, ApiError> {
    let Some(text) = query.timeout_seconds.as_deref() else {
        return Ok(None);
    };
    let seconds = text.trim().parse::<f64>().map_err(|_| {
        ApiError::invalid_field("timeout_seconds", format!("'{text}' is not a number"))
    })?;
    timeout("timeout_seconds", Some(seconds))
}

/// Cron-friendly heartbeat: `curl -fsS http://watcher:8001/ping/backup` after a job.
#[utoipa::path(get, path = "/ping/{service}", tag = "heartbeats",
    params(("service" = String, Path, description = "the service's name"),
        ("timeout_seconds" = Option<f64>, Query, description = "overrides the timeout for this service")),
    responses((status = 200, description = "recorded"), (status = 400, body = obs_core::error::ErrorBody),
        (status = 503, description = "the service was down and its recovery did not commit; nothing changed, send it again",
            body = obs_core::error::ErrorBody)))]
async fn ping(
    _guard: StateChanging,
    shared: web::Data<Shared>,
    service: web::Path<String>,
    query: web::Query<PingQuery>,
) -> Result<HttpResponse, ApiError> {
    check_name("service", &service)?;
    let timeout = ping_timeout(&query)?;
    beat(&shared, &service, None, timeout).await?;
    Ok(ok())
}

/// The service says it failed: down (reason `failed`, issue `service_failed`) until its next
/// successful ping or heartbeat.
#[utoipa::path(get, path = "/ping/{service}/fail", tag = "heartbeats",
    params(("service" = String, Path, description = "the service's name"),
        ("detail" = Option<String>, Query, description = "what failed, for the issue")),
    responses((status = 200, description = "recorded"), (status = 400, body = obs_core::error::ErrorBody),
        (status = 503, description = "did not commit; nothing changed, send it again", body = obs_core::error::ErrorBody)))]
async fn ping_fail(
    _guard: StateChanging,
    shared: web::Data<Shared>,
    service: web::Path<String>,
    query: web::Query<PingQuery>,
) -> Result<HttpResponse, ApiError> {
    check_name("service", &service)?;
    let timeout = ping_timeout(&query)?;
    if let Some(detail) = &query.detail {
        check_text("detail", detail, (MAX_DETAIL_CHARS, "MAX_DETAIL_CHARS"))?;
    }
    shared
        .tracker()
        .admits(&service)
        .map_err(|full| ApiError::Conflict(full.to_string()))?;
    checker::fail(&shared, &service, timeout, query.detail.as_deref()).await?;
    shared.metrics.heartbeats.inc();
    Ok(ok())
}

/// Record an event. `failure`/`success` with a `component` also count in
/// `monitoring_task_failures_total` / `monitoring_task_success_total`.
#[utoipa::path(post, path = "/events", tag = "events",
    request_body(content = serde_json::Value, description = "EventIn",
        example = json!({"service": "edge-cam01", "event_type": "error", "detail": "model timeout"})),
    responses((status = 200, description = "recorded; the event's id",
        example = json!({"status": "ok", "id": "01J9Z3NDEKTSV4RRFFQ69G5FAV"})),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 503, description = "not recorded: its transaction did not commit (disk full? database unreachable?); send it again",
            body = obs_core::error::ErrorBody)))]
async fn post_event(
    shared: web::Data<Shared>,
    body: obs_core::Json<EventIn>,
) -> Result<HttpResponse, ApiError> {
    let input = body.into_inner();
    check_name("service", &input.service)?;
    check_name("event_type", &input.event_type)?;
    if let Some(detail) = &input.detail {
        check_text("detail", detail, (MAX_DETAIL_CHARS, "MAX_DETAIL_CHARS"))?;
    }
    if let Some(component) = &input.component {
        check_name("component", component)?;
    }
    let mut event = shared.new_event(&input.service, &input.event_type, EventSource::Api);
    event.detail = input.detail;
    event.component = input.component;
    let id = event.id;
    // Recorded (kept, counted and queued for delivery) in one transaction, or not at all:
    // a failed commit is 503 "nothing was stored", and the retry is recorded normally.
    shared.accept_event(event).await.map_err(ApiError::from)?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ok", "id": id})))
}

#[derive(Deserialize)]
struct EventsQuery {
    limit: Option<String>,
    service: Option<String>,
}

/// The most recent events, oldest first (`limit` 1–10000, default 100; `service` filters).
#[utoipa::path(get, path = "/events", tag = "read",
    params(("limit" = Option<usize>, Query, description = "1 to 10000, default 100"),
        ("service" = Option<String>, Query, description = "only this service's events")),
    responses((status = 200, description = "EventList: {\"events\": [Event]}", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody)))]
async fn list_events(
    shared: web::Data<Shared>,
    query: web::Query<EventsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = count(
        "limit",
        query.limit.as_deref(),
        DEFAULT_EVENTS_LIMIT,
        MAX_LIMIT,
    )?;
    if let Some(service) = &query.service {
        check_name("service", service)?;
    }
    let events = shared.list_events(limit, query.service.clone()).await?;
    Ok(HttpResponse::Ok().json(EventList { events }))
}

#[derive(Deserialize)]
struct StatusQuery {
    limit: Option<String>,
    after: Option<String>,
    state: Option<String>,
    prefix: Option<String>,
    names: Option<String>,
}

/// Names one `/status?names=` may ask for, at most: a page.
const MAX_NAMES: usize = page::MAX_PAGE;

impl StatusQuery {
    fn services(&self) -> Result<ServicesQuery, ApiError> {
        let limit = page::limit(self.limit.as_deref(), page::MAX_PAGE, page::MAX_PAGE)
            .map_err(|why| ApiError::invalid_field("limit", why))?;
        let after = self
            .after
            .as_deref()
            .map(|text| Cursor::parse(text, ServiceState::Up.rank()))
            .transpose()
            .map_err(|why| ApiError::invalid_field("after", why))?;
        let state = match self.state.as_deref().map(str::trim) {
            None | Some("") | Some("all") => None,
            Some("up") => Some(ServiceState::Up),
            Some("down") => Some(ServiceState::Down),
            Some(other) => {
                return Err(ApiError::invalid_field(
                    "state",
                    format!(
                        "'{}' is not one of up, down, all",
                        other.chars().take(32).collect::<String>()
                    ),
                ))
            }
        };
        let prefix = match self.prefix.as_deref() {
            None | Some("") => None,
            Some(prefix) => {
                // A prefix of a valid name is itself a valid name.
                check_name("prefix", prefix)?;
                Some(prefix.to_string())
            }
        };
        let names = match self.names.as_deref() {
            None => None,
            Some(list) => {
                let names: std::collections::HashSet<String> = list
                    .split(',')
                    .filter(|name| !name.is_empty())
                    .map(str::to_string)
                    .collect();
                if names.len() > MAX_NAMES {
                    return Err(ApiError::invalid_field(
                        "names",
                        format!("{} names; at most {MAX_NAMES} are allowed", names.len()),
                    ));
                }
                for name in &names {
                    check_name("names", name)?;
                }
                Some(names)
            }
        };
        Ok(ServicesQuery {
            limit,
            after,
            state,
            prefix,
            names,
        })
    }
}

/// One page of services (down first, then by name; every service counted by state in
/// `service_counts`), containers, probes, deployment id / app name, open issue count.
#[utoipa::path(get, path = "/status", tag = "read",
    params(
        ("limit" = Option<usize>, Query, description = "services listed, 1 to 1000, default 1000"),
        ("after" = Option<String>, Query, description = "a cursor: list the services after it (the page's services_next)"),
        ("state" = Option<String>, Query, description = "up, down or all (default)"),
        ("prefix" = Option<String>, Query, description = "only services whose name starts with this"),
        ("names" = Option<String>, Query, description = "only these services: names separated by commas, at most 1000")),
    responses((status = 200, description = "WatcherStatus", body = serde_json::Value),
        (status = 400, description = "a bad limit, cursor, state, prefix or names", body = obs_core::error::ErrorBody)))]
async fn status(
    shared: web::Data<Shared>,
    query: web::Query<StatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let query = query.services()?;
    let status = shared.status(query).await?;
    Ok(HttpResponse::Ok().json(status))
}

#[derive(Deserialize)]
struct IssuesQuery {
    state: Option<String>,
    limit: Option<String>,
}

/// Issues with severity, recommendation, first/last seen and state: open ones first.
#[utoipa::path(get, path = "/issues", tag = "read",
    params(("state" = Option<String>, Query, description = "open, resolved or all (default)"),
        ("limit" = Option<usize>, Query, description = "1 to 10000, default 1000")),
    responses((status = 200, description = "IssueList: {\"issues\": [Issue]}", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody)))]
async fn list_issues(
    shared: web::Data<Shared>,
    query: web::Query<IssuesQuery>,
) -> Result<HttpResponse, ApiError> {
    let state = match query.state.as_deref().map(str::trim) {
        None | Some("") | Some("all") => None,
        Some("open") => Some(IssueState::Open),
        Some("resolved") => Some(IssueState::Resolved),
        Some(other) => {
            return Err(ApiError::invalid_field(
                "state",
                format!("'{other}' is not one of open, resolved, all"),
            ))
        }
    };
    let limit = count(
        "limit",
        query.limit.as_deref(),
        DEFAULT_ISSUES_LIMIT,
        MAX_LIMIT,
    )?;
    let issues = shared.list_issues(state, limit).await?;
    Ok(HttpResponse::Ok().json(IssueList { issues }))
}

/// The containers, as last seen (`docker` says whether the engine is followed right now).
#[utoipa::path(get, path = "/containers", tag = "containers",
    responses((status = 200, description = "ContainerList", body = serde_json::Value)))]
async fn list_containers(shared: web::Data<Shared>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(ContainerList {
        docker: shared.docker.is_connected(),
        containers: shared.list_containers().await?,
    }))
}

#[derive(Deserialize)]
struct ContainerQuery {
    name: Option<String>,
}

fn container_name(field: &str, value: Option<&str>) -> Result<String, ApiError> {
    let name = value
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .ok_or_else(|| ApiError::invalid_field(field, "is required"))?;
    check_name(field, name.trim_start_matches('/'))?;
    Ok(name.to_string())
}

/// One container, inspected afresh when the engine is connected.
#[utoipa::path(get, path = "/container", tag = "containers",
    params(("name" = String, Query, description = "container name or id")),
    responses((status = 200, description = "Container", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody), (status = 404, body = obs_core::error::ErrorBody)))]
async fn container(
    _: obs_core::SensitiveRead,
    shared: web::Data<Shared>,
    query: web::Query<ContainerQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = container_name("name", query.name.as_deref())?;
    let container = docker::container(&shared.into_inner(), &name).await?;
    Ok(HttpResponse::Ok().json(container))
}

#[derive(Deserialize)]
struct LogsQuery {
    container: Option<String>,
    lines: Option<String>,
}

/// A container's last lines, stdout and stderr interleaved (`lines` 1–10000, default 100).
#[utoipa::path(get, path = "/logs", tag = "containers",
    params(("container" = String, Query, description = "container name or id"),
        ("lines" = Option<usize>, Query, description = "1 to 10000, default 100")),
    responses((status = 200, description = "ContainerLogs", body = serde_json::Value),
        (status = 400, body = obs_core::error::ErrorBody), (status = 404, body = obs_core::error::ErrorBody),
        (status = 503, description = "no Docker engine", body = obs_core::error::ErrorBody)))]
async fn logs(
    _: obs_core::SensitiveRead,
    shared: web::Data<Shared>,
    query: web::Query<LogsQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = container_name("container", query.container.as_deref())?;
    let lines = count(
        "lines",
        query.lines.as_deref(),
        DEFAULT_LOG_LINES,
        MAX_LIMIT,
    )?;
    let logs = docker::logs(&shared.into_inner(), &name, lines).await?;
    Ok(HttpResponse::Ok().json(logs))
}

#[derive(Deserialize)]
struct RestartQuery {
    timeout_seconds: Option<String>,
}

/// Restart a container (needs the API token when API_TOKEN is set; without API_TOKEN, served
/// on a loopback listener only). Its exit is requested, so it is not reported as a crash.
#[utoipa::path(post, path = "/containers/{name}/restart", tag = "containers",
    params(("name" = String, Path, description = "container name or id"),
        ("timeout_seconds" = Option<u32>, Query, description = "grace before SIGKILL, 0 to 300, default 10")),
    responses((status = 200, description = "restarted", example = json!({"status": "restarted", "container": "app"})),
        (status = 401, body = obs_core::error::ErrorBody), (status = 403, description = "no API_TOKEN on a listener reachable from the network", body = obs_core::error::ErrorBody),
        (status = 404, body = obs_core::error::ErrorBody),
        (status = 503, description = "no Docker engine", body = obs_core::error::ErrorBody)))]
async fn restart(
    _: obs_core::ActsOnHost,
    shared: web::Data<Shared>,
    name: web::Path<String>,
    query: web::Query<RestartQuery>,
) -> Result<HttpResponse, ApiError> {
    let name = container_name("name", Some(&name))?;
    let grace = match query.timeout_seconds.as_deref() {
        None => 10,
        Some(text) => match text.trim().parse::<u32>() {
            Ok(seconds) if seconds <= MAX_RESTART_TIMEOUT_SECONDS => seconds,
            _ => {
                return Err(ApiError::invalid_field(
                    "timeout_seconds",
                    format!(
                        "'{text}' is not a whole number from 0 to {MAX_RESTART_TIMEOUT_SECONDS}"
                    ),
                ))
            }
        },
    };
    docker::restart(&shared.into_inner(), &name, grace as i32).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "restarted", "container": name})))
}

#[derive(Deserialize)]
struct RestartPodQuery {
    how: Option<String>,
}

/// Restart a watched Kubernetes pod: `how=delete` (default; its controller starts a new one) or
/// `how=rollout` (its Deployment, StatefulSet or DaemonSet, as `kubectl rollout restart`).
/// Guarded like the container restart.
#[utoipa::path(post, path = "/pods/{namespace}/{pod}/restart", tag = "containers",
    params(("namespace" = String, Path, description = "the pod's namespace"),
        ("pod" = String, Path, description = "the pod's name"),
        ("how" = Option<String>, Query, description = "delete (default) or rollout")),
    responses((status = 200, description = "done", example = json!({"status": "restarted", "pod": "prod/api-7d9f-x1", "done": "pod prod/api-7d9f-x1 deleted"})),
        (status = 400, body = obs_core::error::ErrorBody),
        (status = 401, body = obs_core::error::ErrorBody), (status = 403, description = "no API_TOKEN on a listener reachable from the network, or RBAC refused", body = obs_core::error::ErrorBody),
        (status = 404, description = "not a watched pod", body = obs_core::error::ErrorBody),
        (status = 503, description = "Kubernetes not watched", body = obs_core::error::ErrorBody)))]
async fn restart_pod(
    _: obs_core::ActsOnHost,
    shared: web::Data<Shared>,
    path: web::Path<(String, String)>,
    query: web::Query<RestartPodQuery>,
) -> Result<HttpResponse, ApiError> {
    let (namespace, pod) = path.into_inner();
    for (field, value) in [("namespace", &namespace), ("pod", &pod)] {
        let valid = !value.is_empty()
            && value.len() <= 253
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !valid {
            return Err(ApiError::invalid_field(
                field,
                format!("'{value}' is not a Kubernetes name (lowercase letters, digits, '-', '.')"),
            ));
        }
    }
    let how = crate::kubernetes::remediate::How::parse(query.how.as_deref())?;
    let done = crate::kubernetes::remediate::restart(&shared, &namespace, &pod, how).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "status": "restarted", "pod": format!("{namespace}/{pod}"), "done": done
    })))
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// `timeout_seconds` as a query string carries it: any text is a timeout within
        /// bounds or a 400 naming the field.
        #[test]
        fn ping_timeouts_are_within_bounds_or_refused_by_name(
            text in prop_oneof![any::<String>(), "[-+ ]?[0-9]{0,4}(\\.[0-9]{0,3})?(e[-+]?[0-9]{1,3})?", "(NaN|inf|-inf|infinity|1e-300|0x10)"],
        ) {
            let query = PingQuery { timeout_seconds: Some(text.clone()), detail: None };
            match ping_timeout(&query) {
                Ok(Some(timeout)) => {
                    let bounds = crate::config::bounds::HEARTBEAT_TIMEOUT;
                    prop_assert!(timeout.as_secs_f64() >= bounds.min * (1.0 - 1e-12));
                    prop_assert!(timeout.as_secs_f64() <= bounds.max);
                }
                Ok(None) => prop_assert!(false, "a value was given"),
                Err(error) => {
                    prop_assert_eq!(error.code(), "invalid_field");
                    prop_assert!(error.to_string().starts_with("timeout_seconds: "), "{error}");
                }
            }
        }

        /// A name is accepted exactly when it is 1 to MAX_NAME_CHARS of `[A-Za-z0-9._:@-]`.
        #[test]
        fn names_are_accepted_exactly_by_their_grammar(value in prop_oneof![any::<String>(), "[a-zA-Z0-9_.:@/ -]{0,130}"]) {
            let grammar = !value.is_empty()
                && value.chars().count() <= validate::MAX_NAME_CHARS
                && value.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:@".contains(c));
            prop_assert_eq!(check_name("service", &value).is_ok(), grammar);
        }
    }
}
