//! The obs-core contract over real HTTP: probes, JSON errors, token guard, metrics, docs,
//! heartbeats and the drain — every request goes through a real socket.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::EchoRole;
use obs_core::actix_web::{web, App, HttpResponse, HttpServer};
use obs_testkit::{eventually, promtool_check_metrics, test_config, TestApp};
use serde_json::{json, Value};

async fn spawn(config: obs_core::CoreConfig) -> TestApp {
    TestApp::spawn(config, EchoRole::new)
        .await
        .expect("the echo role starts")
}

async fn json_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = response.text().await.expect("a body");
    assert!(
        content_type.starts_with("application/json"),
        "status {status}: content-type {content_type:?}, body {body:?}"
    );
    (status, serde_json::from_str(&body).expect("JSON body"))
}

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "an error has a message: {body}"
    );
}

#[actix_web::test]
async fn probes_answer_as_the_seeds_did() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;

    let response = app.get("/healthz").await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "liveness is JSON"
    );
    assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
    assert_eq!(
        app.get("/health").await.text().await.unwrap(),
        r#"{"status":"ok"}"#
    );
    let (status, body) = json_body(app.get("/readyz").await).await;
    assert_eq!((status, body), (200, json!({"status": "ready"})));
}

#[actix_web::test]
async fn every_error_is_json_with_the_right_status() {
    let (mut config, _state) = test_config("echo");
    config.max_body_bytes = 1024;
    let app = spawn(config).await;
    let post = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/echo"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };

    let (status, body) = json_body(app.get("/no/such/path").await).await;
    assert_error(status, &body, 404, "not_found");

    let (status, body) =
        json_body(app.client.delete(app.url("/healthz")).send().await.unwrap()).await;
    assert_error(status, &body, 405, "method_not_allowed");

    let (status, body) = json_body(post("{\"name\": ", "application/json").await.unwrap()).await;
    assert_error(status, &body, 400, "invalid_json");

    let (status, body) = json_body(post("{\"name\": 5}", "application/json").await.unwrap()).await;
    assert_error(status, &body, 400, "invalid_field");
    assert_eq!(
        body["message"], "name: invalid type: integer `5`, expected a string",
        "names the field: {body}"
    );

    let (status, body) = json_body(
        post(r#"{"name": "x", "tags": ["a", null]}"#, "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 400, "invalid_field");
    assert_eq!(
        body["message"], "tags[1]: invalid type: null, expected a string",
        "the path reaches into arrays: {body}"
    );

    let (status, body) = json_body(
        post("{\"name\": \"x\"} {}", "application/json")
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 400, "invalid_json");

    let (status, body) = json_body(
        app.client
            .post(app.url("/v1/echo"))
            .body("{\"name\":\"x\"}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 415, "unsupported_media_type");

    let (status, body) = json_body(post("{}", "application/json").await.unwrap()).await;
    assert_error(status, &body, 400, "invalid_field");
    assert!(
        body["message"].as_str().unwrap().contains("name"),
        "names the field: {body}"
    );

    let (status, body) = json_body(post("{\"name\":\"x\"}", "text/plain").await.unwrap()).await;
    assert_error(status, &body, 415, "unsupported_media_type");

    let oversized = format!("{{\"name\":\"{}\"}}", "x".repeat(4096));
    let response = app
        .client
        .post(app.url("/v1/echo"))
        .header("content-type", "application/json")
        .body(oversized)
        .send()
        .await
        .unwrap();
    let (status, body) = json_body(response).await;
    assert_error(status, &body, 413, "payload_too_large");

    // A handler's own validation names the field too.
    let long_name = json!({"name": "n".repeat(65)});
    let response = app
        .client
        .post(app.url("/v1/echo"))
        .json(&long_name)
        .send()
        .await
        .unwrap();
    let (status, body) = json_body(response).await;
    assert_error(status, &body, 400, "invalid_field");
    assert!(
        body["message"].as_str().unwrap().starts_with("name:"),
        "{body}"
    );

    let (status, body) = json_body(app.get("/v1/items/not-a-number").await).await;
    assert_error(status, &body, 400, "invalid_path");
    let (status, body) = json_body(app.get("/v1/items/7").await).await;
    assert_error(status, &body, 404, "not_found");
    let (status, body) = json_body(app.get("/v1/slow?ms=soon").await).await;
    assert_error(status, &body, 400, "invalid_query");

    // After all that, the role still serves, and good input still works.
    let response = app
        .client
        .post(app.url("/v1/echo"))
        .json(&json!({"name": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[actix_web::test]
async fn api_token_guards_state_changes_but_not_probes_or_reads() {
    let (mut config, _state) = test_config("echo");
    config.api_token = Some("s3cret".into());
    let app = spawn(config).await;
    let body = json!({"name": "x"});

    let response = app
        .client
        .post(app.url("/v1/echo"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let (status, error) = json_body(response).await;
    assert_error(status, &error, 401, "unauthorized");

    let response = app
        .client
        .post(app.url("/v1/echo"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .post(app.url("/v1/echo"))
        .bearer_auth("s3cret")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    for path in [
        "/healthz",
        "/readyz",
        "/metrics",
        "/v1/items/1",
        "/openapi.json",
    ] {
        assert_eq!(app.get(path).await.status(), 200, "{path} needs no token");
    }
}

fn series(metrics: &str, name: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .map(|line| line.rsplit_once(' ').map_or(line, |(s, _)| s).to_string())
        .collect()
}

fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[actix_web::test]
async fn http_metrics_use_route_templates_and_pass_promtool() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;
    for path in [
        "/healthz",
        "/v1/items/1",
        "/v1/items/2",
        "/v1/items/3",
        "/nowhere",
    ] {
        app.get(path).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();

    assert_eq!(
        sample(
            &metrics,
            r#"hello_ai_requests_total{code="200",method="GET",route="/healthz"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &metrics,
            r#"hello_ai_requests_total{code="404",method="GET",route="/v1/items/{id}"}"#
        ),
        Some(2.0),
        "the template, never the raw path:\n{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            r#"hello_ai_requests_total{code="404",method="GET",route="unmatched"}"#
        ),
        Some(1.0)
    );
    assert!(metrics.contains(
        r#"hello_ai_request_duration_seconds_bucket{method="GET",route="/healthz",le="0.0001"}"#
    ));
    assert_eq!(sample(&metrics, "hello_ai_up"), Some(1.0));
    // This very scrape is in flight while the registry is read.
    assert_eq!(sample(&metrics, "hello_ai_requests_in_flight"), Some(1.0));
    let build_info = series(&metrics, "hello_ai_build_info");
    assert_eq!(build_info.len(), 1);
    let build_info = build_info.into_iter().next().unwrap();
    assert!(
        build_info.contains(r#"role="echo""#) && build_info.contains(r#"version="0.1.0""#),
        "{build_info}"
    );
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_open_fds",
        "process_start_time_seconds",
    ] {
        assert!(sample(&metrics, name).is_some(), "{name} missing");
    }
    assert!(
        !metrics.contains("/v1/items/1\""),
        "raw paths never become labels"
    );
    promtool_check_metrics(&metrics).expect("promtool accepts the exposition");
}

#[actix_web::test]
async fn a_flood_of_random_paths_and_methods_does_not_grow_the_series() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;
    app.get("/nowhere").await;
    let before = app.get("/metrics").await.text().await.unwrap();
    let before_count = series(&before, "hello_ai_requests_total").len();

    let methods = [
        "GET", "POST", "PUT", "DELETE", "PATCH", "PURGE", "BREW", "X-RANDOM",
    ];
    for chunk in 0..30 {
        let requests = (0..100).map(|i| {
            let n = chunk * 100 + i;
            let method =
                reqwest::Method::from_bytes(methods[n % methods.len()].as_bytes()).unwrap();
            app.client
                .request(method, app.url(&format!("/random/{n:x}/{}", n * 7919)))
                .send()
        });
        for response in futures_util::future::join_all(requests).await {
            let status = response.expect("the server answers every request").status();
            assert!(status == 404 || status == 405, "{status}");
        }
    }
    let after = app.get("/metrics").await.text().await.unwrap();
    let after_series = series(&after, "hello_ai_requests_total");
    // /nowhere (GET) was there already; the flood may add one series per method label
    // (the seven standard ones and OTHER) plus the /metrics scrape — never one per path.
    assert!(
        after_series.len() <= before_count + 9,
        "{} series before, {} after:\n{after_series:#?}",
        before_count,
        after_series.len()
    );
    assert!(after_series.iter().all(|s| !s.contains("/random/")));
    let unmatched: f64 = after
        .lines()
        .filter(|l| l.starts_with("hello_ai_requests_total{") && l.contains(r#"route="unmatched""#))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(unmatched, 3001.0, "every request is still counted");
    promtool_check_metrics(&after).expect("promtool accepts the exposition after the flood");
}

#[actix_web::test]
async fn metrics_port_serves_only_metrics_and_prefix_is_configurable() {
    let (mut config, _state) = test_config("echo");
    config.metrics_port = Some(0);
    config.metrics_prefix = "acme".into();
    let app = spawn(config).await;
    app.get("/healthz").await;
    let metrics_port = app.metrics_port.expect("a metrics port");
    assert_ne!(metrics_port, app.port);
    let base = format!("http://127.0.0.1:{metrics_port}");
    let metrics = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(metrics.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let metrics = metrics.text().await.unwrap();
    assert!(
        metrics.contains(r#"acme_requests_total{code="200",method="GET",route="/healthz"} 1"#),
        "{metrics}"
    );
    assert!(!metrics.contains("hello_ai_"));
    let (status, body) = json_body(
        app.client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(status, &body, 404, "not_found");
}

/// The caller's X-Request-Id is echoed; without one, a request that writes no line gets none
/// (there is nothing to find it by). Minted ids are in tests/logs.rs, where lines are written.
#[actix_web::test]
async fn caller_request_ids_are_echoed_and_quiet_requests_get_none() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;
    let quiet = app.get("/healthz").await;
    assert!(quiet.headers().get("x-request-id").is_none(), "{quiet:?}");
    let kept = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "abc-123");
    // Not a usable id (too long): treated as absent, never echoed.
    let long = "x".repeat(65);
    let replaced = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", &long)
        .send()
        .await
        .unwrap();
    assert!(replaced.headers().get("x-request-id").is_none());
}

#[actix_web::test]
async fn openapi_and_docs_work_offline() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;
    let (status, doc) = json_body(app.get("/openapi.json").await).await;
    assert_eq!(status, 200);
    assert_eq!(doc["info"]["title"], "obs-fleet echo");
    for path in ["/healthz", "/health", "/readyz", "/metrics"] {
        assert!(doc["paths"][path]["get"].is_object(), "{path}: {doc}");
    }
    assert_ne!(
        doc["paths"]["/health"]["get"]["operationId"],
        doc["paths"]["/healthz"]["get"]["operationId"],
        "operation ids are unique"
    );

    let redirect = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = redirect.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 308);
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    for asset in ["src=\"http", "href=\"http", "src=\"//", "href=\"//"] {
        assert!(
            !html.contains(asset),
            "no external assets ({asset}) in:\n{html}"
        );
    }
    // The page's own assets are served from the binary.
    let initializer = app.get("/docs/swagger-initializer.js").await;
    assert_eq!(initializer.status(), 200);
    assert!(initializer.text().await.unwrap().contains("/openapi.json"));
    let bundle = app.get("/docs/swagger-ui-bundle.js").await;
    assert_eq!(bundle.status(), 200);
    let plain = bundle.bytes().await.unwrap();
    assert!(
        plain.len() > 1_000_000,
        "inflated for a client that takes no gzip"
    );
    assert!(
        plain.starts_with(b"/*") || plain.is_ascii(),
        "JavaScript, not gzip"
    );
    // Browsers take gzip: the embedded bytes as they are, a quarter of the size.
    let gzipped = app
        .client
        .get(app.url("/docs/swagger-ui-bundle.js"))
        .header("Accept-Encoding", "gzip, deflate, br")
        .send()
        .await
        .unwrap();
    assert_eq!(gzipped.status(), 200);
    assert_eq!(gzipped.headers()["content-encoding"], "gzip");
    assert_eq!(gzipped.headers()["vary"], "Accept-Encoding");
    let compressed = gzipped.bytes().await.unwrap();
    assert!(compressed.len() < plain.len() / 2, "{}", compressed.len());
    let mut inflated = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(compressed.as_ref()),
        &mut inflated,
    )
    .unwrap();
    assert_eq!(inflated, plain.as_ref());
    let refused = app
        .client
        .get(app.url("/docs/swagger-ui.css"))
        .header("Accept-Encoding", "gzip;q=0, identity")
        .send()
        .await
        .unwrap();
    assert!(refused.headers().get("content-encoding").is_none());
    // Every asset the page refers to is there.
    let referenced: Vec<&str> = html
        .split("=\"./")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(referenced.len() >= 5, "{referenced:?}");
    for file in referenced {
        let response = app.get(&format!("/docs/{file}")).await;
        assert_eq!(response.status(), 200, "/docs/{file}");
        assert!(!response.bytes().await.unwrap().is_empty(), "/docs/{file}");
    }
    let missing = app.get("/docs/swagger-ui-bundle.js.map").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<Value>().await.unwrap()["error"], "not_found");
}

/// HEAD as uptime checkers send it: the GET's status and headers, no body.
async fn head(client: &reqwest::Client, url: &str) -> (u16, Option<String>, usize) {
    let response = client.head(url).send().await.unwrap();
    let status = response.status().as_u16();
    let length = response
        .headers()
        .get("content-length")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    (status, length, response.bytes().await.unwrap().len())
}

#[actix_web::test]
async fn every_get_route_answers_head_without_a_body() {
    let (mut config, _state) = test_config("echo");
    config.metrics_port = Some(0);
    let app = spawn(config).await;
    for path in [
        "/healthz",
        "/health",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs/",
        "/docs/swagger-ui.css",
        "/v1/items/1",
    ] {
        let get = app.get(path).await;
        let get_status = get.status().as_u16();
        let get_length = get.bytes().await.unwrap().len();
        let (status, length, body) = head(&app.client, &app.url(path)).await;
        assert_eq!((status, body), (get_status, 0), "HEAD {path}");
        assert_eq!(get_status, 200, "GET {path}");
        // The metrics move between the two requests; the rest are the same bytes.
        if let Some(length) = length.filter(|_| path != "/metrics") {
            assert_eq!(
                length,
                get_length.to_string(),
                "HEAD {path}: the GET's length"
            );
        }
    }
    // A missing item is as missing to HEAD as to GET; a POST-only route is still 405.
    assert_eq!(head(&app.client, &app.url("/v1/items/2")).await.0, 404);
    assert_eq!(head(&app.client, &app.url("/v1/echo")).await.0, 405);
    let metrics_port = app.metrics_port.expect("a metrics port");
    let metrics = format!("http://127.0.0.1:{metrics_port}/metrics");
    assert_eq!(
        head(&app.client, &metrics).await.0,
        200,
        "the metrics listener"
    );

    // Counted as what was asked, HEAD.
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(text.contains(r#"method="HEAD",route="/healthz""#), "{text}");
}

#[actix_web::test]
async fn heartbeats_reach_the_monitor_on_their_own() {
    let (beats_sender, mut beats) = tokio::sync::mpsc::unbounded_channel::<Value>();
    let monitor = HttpServer::new(move || {
        let beats_sender = beats_sender.clone();
        App::new().route(
            "/heartbeat",
            web::post().to(move |body: web::Json<Value>| {
                let _ = beats_sender.send(body.into_inner());
                async { HttpResponse::Ok().json(json!({"ok": true})) }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let monitor_port = monitor.addrs()[0].port();
    let monitor = monitor.run();
    let monitor_handle = monitor.handle();
    obs_core::actix_web::rt::spawn(monitor);

    let (mut config, _state) = test_config("echo");
    config.monitor_endpoint = Some(format!("http://127.0.0.1:{monitor_port}"));
    config.monitor_heartbeat_interval = 1;
    let app = spawn(config).await;
    for _ in 0..2 {
        let beat = tokio::time::timeout(Duration::from_secs(5), beats.recv())
            .await
            .expect("a heartbeat within 5 s")
            .unwrap();
        assert_eq!(beat["service"], "echo");
        assert_eq!(beat["phase"], "running");
        assert_eq!(beat["timeout_seconds"], 3);
    }
    app.shutdown().await.unwrap();
    monitor_handle.stop(false).await;
}

#[actix_web::test]
async fn an_absent_monitor_is_tolerated() {
    let (mut config, _state) = test_config("echo");
    config.monitor_endpoint = Some(format!("http://127.0.0.1:{}", obs_testkit::free_port()));
    config.monitor_heartbeat_interval = 1;
    let app = spawn(config).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(app.get("/healthz").await.status(), 200);
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.shutdown()
        .await
        .expect("a clean stop despite failed heartbeats");
}

#[actix_web::test]
async fn shutdown_turns_readiness_off_at_once_and_drains_in_flight_requests() {
    let (config, _state) = test_config("echo");
    let app = spawn(config).await;
    let slow = tokio::spawn({
        let client = app.client.clone();
        let url = app.url("/v1/slow?ms=1500");
        async move { client.get(url).send().await }
    });
    let metrics_url = app.url("/metrics");
    let client = app.client.clone();
    eventually(
        "the slow request to be in flight",
        Duration::from_secs(5),
        || {
            let client = client.clone();
            let url = metrics_url.clone();
            async move {
                let text = client.get(url).send().await.ok()?.text().await.ok()?;
                (sample(&text, "hello_ai_requests_in_flight")? >= 2.0).then_some(())
            }
        },
    )
    .await;

    let readyz = app.url("/readyz");
    let healthz = app.url("/healthz");
    let stopping = tokio::task::spawn_local(app.shutdown());
    let (status, body) = eventually("readiness to turn 503", Duration::from_secs(2), || {
        let client = client.clone();
        let url = readyz.clone();
        async move {
            let response = client.get(url).send().await.ok()?;
            (response.status() == 503).then_some(())?;
            Some(json_body(response).await)
        }
    })
    .await;
    assert_error(status, &body, 503, "unavailable");
    assert_eq!(
        client.get(&healthz).send().await.unwrap().status(),
        200,
        "still alive while draining"
    );

    let slow = slow
        .await
        .unwrap()
        .expect("the in-flight request completes");
    assert_eq!(slow.status(), 200);
    assert_eq!(
        slow.json::<Value>().await.unwrap(),
        json!({"slept_ms": 1500})
    );
    stopping.await.unwrap().expect("a clean stop");
    assert!(
        client.get(&healthz).send().await.is_err(),
        "the listener is closed after the drain"
    );
}
