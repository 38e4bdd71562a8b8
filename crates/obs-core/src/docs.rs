//! `/openapi.json` and `/docs`: the role's API description, browsable offline.
//!
//! Swagger UI's files are compiled into the binary (utoipa-swagger-ui's `vendored` feature),
//! so the page works with no network.

use actix_web::{web, HttpResponse};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    paths(crate::probes::healthz, crate::probes::readyz, crate::probes::metrics),
    components(schemas(crate::error::ErrorBody, crate::probes::Status)),
    tags((name = "probes", description = "Health, readiness and metrics, the same on every role"))
)]
struct CoreApi;

/// The core endpoints merged with the role's own, titled after the role.
pub fn openapi(role: &str, role_api: OpenApiDoc) -> OpenApiDoc {
    let mut doc = CoreApi::openapi();
    doc.merge(role_api);
    doc.info.title = format!("obs-fleet {role}");
    doc.info.version = crate::VERSION.to_string();
    doc.info.description = Some(format!(
        "The {role} role of obs-fleet. Errors are JSON: {{\"error\": code, \"message\": text}}."
    ));
    doc
}

pub fn routes(doc: OpenApiDoc) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource("/docs").route(web::get().to(|| async {
            HttpResponse::PermanentRedirect()
                .insert_header(("Location", "/docs/"))
                .finish()
        })))
        .service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", doc));
    }
}
