//! Log lines over real HTTP: what a role writes while handling a request carries the role,
//! TRACE_ID and that request's id; what it writes outside a request carries no request id.
//! One test binary of its own: the log subscriber is process-wide.

use std::io::Write;
use std::sync::{Arc, Mutex};

use obs_core::actix_web::{web, HttpResponse};
use obs_core::{ApiError, Role, Service};
use obs_testkit::{test_config, TestApp};
use serde_json::Value;

/// Everything logged, shared with the test.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines(&self) -> Vec<Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }
}

struct ChattyRole;

async fn chatty() -> HttpResponse {
    tracing::info!("handling a chatty request");
    // Across an await the id stays with this request.
    tokio::task::yield_now().await;
    tracing::warn!("still handling it");
    HttpResponse::Ok().finish()
}

async fn broken() -> Result<HttpResponse, ApiError> {
    Err(anyhow::anyhow!("the disk is gone").into())
}

impl Role for ChattyRole {
    fn routes(&self, cfg: &mut web::ServiceConfig) {
        cfg.route("/v1/chatty", web::get().to(chatty))
            .route("/v1/broken", web::get().to(broken));
    }
}

#[actix_web::test]
async fn lines_inside_a_request_carry_its_id_and_the_role() {
    let (mut config, _state) = test_config("chatty");
    config.trace_id = "trace-7".into();
    config.log_level = "info".into();
    let captured = Captured::default();
    let writer = captured.clone();
    obs_core::telemetry::init_with_writer(&config, move || writer.clone()).unwrap();
    let app = TestApp::spawn(config, async |_: &Service| Ok(ChattyRole))
        .await
        .unwrap();

    let response = app
        .client
        .get(app.url("/v1/chatty"))
        .header("x-request-id", "caller-\"quoted\"-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "caller-\"quoted\"-1");
    // Without a caller's id, the first line a request writes mints one, which the response
    // returns; a request that writes nothing gets none.
    let minted = app.get("/v1/chatty").await;
    let minted = minted.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(ulid::Ulid::from_string(&minted).is_ok(), "a ULID: {minted}");
    let quiet = app.get("/healthz").await;
    assert!(quiet.headers().get("x-request-id").is_none());
    let response = app.get("/v1/broken").await;
    assert_eq!(response.status(), 500);
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    app.shutdown().await.unwrap();

    let lines = captured.lines();
    for message in ["handling a chatty request", "still handling it"] {
        let line = lines
            .iter()
            .find(|line| line["message"] == message)
            .unwrap_or_else(|| panic!("no {message:?} in {lines:#?}"));
        assert_eq!(line["request_id"], "caller-\"quoted\"-1", "{line}");
        assert_eq!(line["spans"][0]["role"], "chatty", "{line}");
        assert_eq!(line["spans"][0]["trace_id"], "trace-7", "{line}");
        // Both lines of the request without a caller's id carry the one minted id.
        let line = lines
            .iter()
            .find(|line| line["message"] == message && line["request_id"] == minted.as_str())
            .unwrap_or_else(|| panic!("no {message:?} with id {minted}: {lines:#?}"));
        assert_eq!(line["spans"][0]["role"], "chatty", "{line}");
    }
    // The cause of a 500 is logged with the id the client got back.
    let cause = lines
        .iter()
        .find(|line| line["error"] == "the disk is gone")
        .unwrap_or_else(|| panic!("the cause is not logged: {lines:#?}"));
    assert_eq!(cause["request_id"], generated.as_str(), "{cause}");
    let failed = lines
        .iter()
        .find(|line| line["message"] == "request failed" && line["status"] == 500)
        .unwrap_or_else(|| panic!("no failure line: {lines:#?}"));
    assert_eq!(failed["request_id"], generated.as_str());
    assert_eq!(failed["route"], "/v1/broken");

    let ready = lines
        .iter()
        .find(|line| line["message"] == "ready")
        .unwrap_or_else(|| panic!("no ready line: {lines:#?}"));
    assert!(ready.get("request_id").is_none(), "{ready}");
    assert_eq!(ready["spans"][0]["role"], "chatty");
}
