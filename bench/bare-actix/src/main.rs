//! The baseline obs-core is measured against: the same `/healthz`, no middleware, no metrics.
//! PORT (default 8100) and WORKERS (default: cores) from the environment.

use actix_web::{web, App, HttpResponse, HttpServer};

async fn healthz() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"status":"ok"}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8100);
    let mut server = HttpServer::new(|| App::new().route("/healthz", web::get().to(healthz)))
        .bind(("127.0.0.1", port))?;
    if let Some(workers) = std::env::var("WORKERS").ok().and_then(|w| w.parse().ok()) {
        server = server.workers(workers);
    }
    println!("ready on 127.0.0.1:{port}");
    server.run().await
}
