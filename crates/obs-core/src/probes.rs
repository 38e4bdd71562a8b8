//! Liveness, readiness and metrics: the endpoints every role serves the same way.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::metrics::{Metrics, CONTENT_TYPE};

/// Whether the role should receive traffic: false while starting and from the first
/// moment of shutdown, so the load balancer stops sending before the drain.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Status {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
}

/// Liveness: the process answers. The exact body is kept from the original fleet.
#[utoipa::path(get, path = "/healthz", tag = "probes",
    responses((status = 200, description = "alive", body = Status, example = json!({"status": "ok"}))))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

/// Readiness: 200 while serving, 503 while starting or draining.
#[utoipa::path(get, path = "/readyz", tag = "probes",
    responses((status = 200, body = Status), (status = 503, body = crate::error::ErrorBody)))]
pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    if readiness.is_ready() {
        HttpResponse::Ok().json(Status { status: "ready" })
    } else {
        crate::error::ApiError::Unavailable("not ready: starting or shutting down".into())
            .into_response()
    }
}

/// Prometheus metrics in text format 0.0.4.
#[utoipa::path(get, path = "/metrics", tag = "probes",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    // A role with 100,000 services renders 13 MB for tens of ms: on the render thread, at the
    // lowest priority, so the HTTP workers keep answering the requests that write.
    let metrics = metrics.into_inner();
    match crate::render::render(move || metrics.render()).await {
        Ok(body) => HttpResponse::Ok().content_type(CONTENT_TYPE).body(body),
        Err(_) => crate::error::ApiError::Unavailable("the metrics could not be rendered".into())
            .into_response(),
    }
}

/// Mount the probes and `/metrics`.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/health").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)));
}

impl crate::error::ApiError {
    pub fn into_response(self) -> HttpResponse {
        actix_web::ResponseError::error_response(&self)
    }
}
