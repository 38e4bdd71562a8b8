//! `/openapi.json` and `/docs`: the role's API description, browsable offline.
//!
//! Swagger UI's files are compiled into the binary (taken by build.rs from the
//! `utoipa-swagger-ui-vendored` release archive: only what the page loads), so the page works
//! with no network.

use actix_web::http::header;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse, ResponseError as _};
use utoipa::openapi::OpenApi as OpenApiDoc;
use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    paths(crate::probes::healthz, crate::probes::readyz, crate::probes::metrics,
        crate::dead_letters::list, crate::dead_letters::replay),
    components(schemas(crate::error::ErrorBody, crate::probes::Status)),
    tags((name = "probes", description = "Health, readiness and metrics, the same on every role"),
        (name = "dead letters", description = "Records a receiver refused, kept to be replayed"))
)]
struct CoreApi;

/// The core endpoints merged with the role's own, titled after the role. The dead letters'
/// endpoints are listed only for a role that serves them (one with a database of its own
/// through the kit: the archivist keeps its archive apart and sends nothing on).
pub fn openapi(role: &str, role_api: OpenApiDoc, serves_dead_letters: bool) -> OpenApiDoc {
    let mut doc = CoreApi::openapi();
    if !serves_dead_letters {
        doc.paths
            .paths
            .retain(|path, _| !path.starts_with("/v1/dead-letters"));
        if let Some(tags) = doc.tags.as_mut() {
            tags.retain(|tag| tag.name != "dead letters");
        }
    }
    // `/health` is `/healthz` under the original fleet's other name: one handler, described
    // once, listed under both paths (with an operation id of its own, as OpenAPI requires).
    if let Some(mut health) = doc.paths.paths.get("/healthz").cloned() {
        if let Some(get) = health.get.as_mut() {
            get.operation_id = Some("health".into());
        }
        doc.paths.paths.insert("/health".into(), health);
    }
    doc.merge(role_api);
    doc.info.title = format!("obs-fleet {role}");
    doc.info.version = crate::VERSION.to_string();
    doc.info.description = Some(format!(
        "The {role} role of obs-fleet. Errors are JSON: {{\"error\": code, \"message\": text}}."
    ));
    doc
}

/// The role's `/openapi.json`, built on the first request for it: most processes never serve
/// it, and building it (utoipa's builders, then serde) is most of a role's start-up work.
pub struct LazyOpenApi {
    json: std::sync::OnceLock<web::Bytes>,
    build: Box<dyn Fn() -> OpenApiDoc + Send + Sync>,
}

impl LazyOpenApi {
    pub fn new(build: impl Fn() -> OpenApiDoc + Send + Sync + 'static) -> Self {
        LazyOpenApi {
            json: std::sync::OnceLock::new(),
            build: Box::new(build),
        }
    }

    pub fn json(&self) -> web::Bytes {
        self.json
            .get_or_init(|| {
                web::Bytes::from(serde_json::to_vec(&(self.build)()).unwrap_or_default())
            })
            .clone()
    }
}

/// `/openapi.json`, and `/docs/` with Swagger UI's page and assets (served from the binary,
/// so it works with no network).
pub fn routes(doc: std::sync::Arc<LazyOpenApi>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route(
            "/openapi.json",
            web::get().to(move || {
                let doc = doc.clone();
                async move {
                    HttpResponse::Ok()
                        .content_type("application/json")
                        .body(doc.json())
                }
            }),
        )
        // A scope is matched on its prefix first, so requests for the role's own routes do
        // not run the pattern of `/docs/{file}` on the way.
        .service(
            web::scope("/docs")
                .route(
                    "",
                    web::get().to(|| async {
                        HttpResponse::PermanentRedirect()
                            .insert_header(("Location", "/docs/"))
                            .finish()
                    }),
                )
                .route(
                    "/",
                    web::get().to(|request: HttpRequest| async move {
                        asset("index.html", accepts_gzip(&request)).await
                    }),
                )
                .route("/{file}", web::get().to(docs_file)),
        );
    }
}

async fn docs_file(request: HttpRequest, file: web::Path<String>) -> HttpResponse {
    asset(&file, accepts_gzip(&request)).await
}

async fn asset(name: &str, accepts_gzip: bool) -> HttpResponse {
    let Some(asset) = swagger_ui_file(name) else {
        return crate::error::ApiError::not_found(format!("no such file under /docs/: {name}"))
            .error_response();
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(asset.content_type)
        .insert_header(("Cache-Control", "public, max-age=86400"));
    if !asset.gzipped {
        return response.body(asset.body);
    }
    response.insert_header((header::VARY, "Accept-Encoding"));
    if accepts_gzip {
        return response
            .insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(asset.body);
    }
    // A client that takes no gzip (rare: every browser does) gets it inflated here.
    let mut plain = Vec::new();
    match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(asset.body), &mut plain) {
        Ok(_) => response.body(plain),
        Err(error) => crate::error::ApiError::Internal(
            anyhow::Error::new(error).context(format!("inflating /docs/{name}")),
        )
        .error_response(),
    }
}

/// True when the request's Accept-Encoding prefers gzip to the plain bytes (actix's own
/// negotiation: q-values, `gzip;q=0`, no header at all).
fn accepts_gzip(request: &HttpRequest) -> bool {
    let offered = [header::Encoding::gzip(), header::Encoding::identity()];
    request
        .get_header::<header::AcceptEncoding>()
        .and_then(|accept| accept.negotiate(offered.iter()))
        == Some(header::Encoding::gzip())
}

struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    /// The body is gzip (Swagger UI's own files, compressed by build.rs).
    gzipped: bool,
}

/// The page and its assets: Swagger UI's own files (taken out of the vendored release and
/// gzipped by build.rs) and two of ours that point it at `/openapi.json`.
fn swagger_ui_file(name: &str) -> Option<Asset> {
    macro_rules! swagger_ui {
        ($content_type:expr, $file:literal) => {
            Asset {
                content_type: $content_type,
                body: include_bytes!(concat!(env!("OUT_DIR"), "/swagger-ui/", $file, ".gz"))
                    .as_slice(),
                gzipped: true,
            }
        };
    }
    const JS: &str = "text/javascript; charset=utf-8";
    const CSS: &str = "text/css; charset=utf-8";
    let ours = |content_type, text: &'static str| Asset {
        content_type,
        body: text.as_bytes(),
        gzipped: false,
    };
    Some(match name {
        "index.html" => ours("text/html; charset=utf-8", INDEX_HTML),
        "swagger-initializer.js" => ours(JS, INITIALIZER_JS),
        "swagger-ui-bundle.js" => swagger_ui!(JS, "swagger-ui-bundle.js"),
        "swagger-ui-standalone-preset.js" => swagger_ui!(JS, "swagger-ui-standalone-preset.js"),
        "swagger-ui.css" => swagger_ui!(CSS, "swagger-ui.css"),
        "index.css" => swagger_ui!(CSS, "index.css"),
        "favicon-32x32.png" => swagger_ui!("image/png", "favicon-32x32.png"),
        _ => return None,
    })
}

const INDEX_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>API docs</title>
    <link rel="stylesheet" type="text/css" href="./swagger-ui.css" />
    <link rel="stylesheet" type="text/css" href="./index.css" />
    <link rel="icon" type="image/png" href="./favicon-32x32.png" sizes="32x32" />
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="./swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="./swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="./swagger-initializer.js" charset="UTF-8"></script>
  </body>
</html>
"#;

const INITIALIZER_JS: &str = r#"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: '#swagger-ui',
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
"#;
