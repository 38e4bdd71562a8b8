//! A small role with one endpoint of each kind, to exercise the kit's contract.

use std::time::Duration;

use obs_core::actix_web::{web, HttpResponse};
use obs_core::{ApiError, Role, Service};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize)]
pub struct Greeting {
    pub name: String,
    #[serde(default)]
    pub times: u32,
    #[serde(default)]
    pub tags: Vec<String>,
}

async fn echo(body: obs_core::Json<Greeting>) -> Result<HttpResponse, ApiError> {
    if body.name.len() > 64 {
        return Err(ApiError::invalid_field("name", "longer than 64 characters"));
    }
    Ok(HttpResponse::Ok().json(body.into_inner()))
}

async fn item(id: web::Path<u32>) -> Result<HttpResponse, ApiError> {
    match *id {
        1 => Ok(HttpResponse::Ok().json(serde_json::json!({"id": 1}))),
        other => Err(ApiError::not_found(format!("no item {other}"))),
    }
}

#[derive(Deserialize)]
struct SlowQuery {
    ms: u64,
}

async fn slow(query: web::Query<SlowQuery>) -> HttpResponse {
    tokio::time::sleep(Duration::from_millis(query.ms.min(10_000))).await;
    HttpResponse::Ok().json(serde_json::json!({"slept_ms": query.ms}))
}

/// The framework's own body extractor: its errors must come out as JSON all the same.
async fn bytes(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"bytes": body.len()}))
}

/// The kit's body extractor, for handlers that parse bodies of any type themselves.
async fn body(body: obs_core::json::Body) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"bytes": body.len()}))
}

pub struct EchoRole;

impl EchoRole {
    pub async fn new(_service: &Service) -> anyhow::Result<Self> {
        Ok(EchoRole)
    }
}

impl Role for EchoRole {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(web::resource("/v1/echo").route(web::post().to(echo)))
            .service(web::resource("/v1/items/{id}").route(web::get().to(item)))
            .service(web::resource("/v1/slow").route(web::get().to(slow)))
            .service(web::resource("/v1/bytes").route(web::post().to(bytes)))
            .service(web::resource("/v1/body").route(web::post().to(body)));
    }
}
