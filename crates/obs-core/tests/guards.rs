//! The guards on reads that may expose secrets and on endpoints that act on the host, over
//! real sockets: on a loopback listener and on one reachable from the network (0.0.0.0).

use obs_core::actix_web::{web, HttpResponse};
use obs_core::{ActsOnHost, Role, SensitiveRead, Service};
use obs_testkit::{test_config, TestApp};
use serde_json::Value;

struct GuardedRole;

async fn secret_read(_: SensitiveRead) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"logs": "PASSWORD=x"}))
}

async fn restart(_: ActsOnHost) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "restarted"}))
}

impl Role for GuardedRole {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.service(web::resource("/logs").route(web::get().to(secret_read)))
            .service(web::resource("/restart").route(web::post().to(restart)));
    }
}

async fn spawn(host: [u8; 4], token: Option<&str>) -> (TestApp, tempfile::TempDir) {
    let (mut config, state) = test_config("guarded");
    config.host = host.into();
    config.api_token = token.map(str::to_string);
    let app = TestApp::spawn(config, async |_: &Service| Ok(GuardedRole))
        .await
        .expect("the role starts");
    (app, state)
}

async fn call(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = match method {
        "GET" => app.client.get(app.url(path)),
        _ => app.client.post(app.url(path)),
    };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON body"))
}

#[actix_web::test]
async fn with_api_token_sensitive_reads_and_host_actions_need_it() {
    let (app, _state) = spawn([0, 0, 0, 0], Some("s3cret")).await;
    for (method, path) in [("GET", "/logs"), ("POST", "/restart")] {
        let (status, body) = call(&app, method, path, None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("unauthorized")),
            "{path}"
        );
        let (status, _) = call(&app, method, path, Some("wrong")).await;
        assert_eq!(status, 401, "{path}");
        let (status, _) = call(&app, method, path, Some("s3cret")).await;
        assert_eq!(status, 200, "{path}");
    }
}

#[actix_web::test]
async fn without_api_token_host_actions_are_refused_on_a_network_listener() {
    let (app, _state) = spawn([0, 0, 0, 0], None).await;
    let (status, body) = call(&app, "POST", "/restart", None).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");
    assert!(
        body["message"].as_str().unwrap().contains("API_TOKEN"),
        "{body}"
    );
    // Reads stay open without a token, as every read does.
    let (status, _) = call(&app, "GET", "/logs", None).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn without_api_token_host_actions_are_served_on_loopback() {
    let (app, _state) = spawn([127, 0, 0, 1], None).await;
    let (status, body) = call(&app, "POST", "/restart", None).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("restarted")));
}
