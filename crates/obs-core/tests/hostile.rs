//! Clients that do not play fair, over real sockets: bodies that never finish, more
//! connections than the role takes, idle connections, half-sent headers, bodies that do not
//! decode, and the framework's own errors — each bounded in time and answered in JSON.

mod common;

use std::io::Write as _;
use std::time::{Duration, Instant};

use common::EchoRole;
use obs_testkit::{test_config, TestApp};
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

async fn spawn(config: obs_core::CoreConfig) -> TestApp {
    TestApp::spawn(config, EchoRole::new)
        .await
        .expect("the echo role starts")
}

/// A client that never reuses a connection, so its own idle connections do not count
/// against MAX_CONNECTIONS.
fn fresh_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client")
}

/// A request head and the first 6 bytes of a body that claims 1000.
async fn slow_body(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: 1000\r\n\r\n{{\"nam"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream
}

/// The same, chunked: one chunk, then nothing.
async fn slow_chunked_body(port: u16, path: &str) -> TcpStream {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"nam\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("send");
    stream
}

/// Everything the server sends until it closes the connection, or None if it has not
/// closed it within `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut received)).await;
    match read {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&received).into_owned()),
        // A reset after the answer is a close too.
        Ok(Err(_)) => Some(String::from_utf8_lossy(&received).into_owned()),
        Err(_) => None,
    }
}

fn json_of(response: &str) -> Value {
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    serde_json::from_str(body).unwrap_or_else(|_| panic!("a JSON body: {response:?}"))
}

async fn in_flight(app: &TestApp) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("hello_ai_requests_in_flight "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the in-flight gauge")
}

#[actix_web::test]
async fn bodies_that_never_finish_get_408_and_a_close_while_healthz_keeps_answering() {
    let (mut config, _state) = test_config("echo");
    config.connections.body_timeout = Duration::from_secs(1);
    let app = spawn(config).await;

    let started = Instant::now();
    let mut stalled = Vec::new();
    // The issue's 300 stalled bodies, through the kit's JSON extractor, actix's web::Bytes
    // and the kit's raw-body extractor, and 15 stalled chunked ones.
    for path in ["/v1/echo", "/v1/bytes", "/v1/body"] {
        for _ in 0..100 {
            stalled.push((path, slow_body(app.port, path).await));
        }
        for _ in 0..5 {
            stalled.push((path, slow_chunked_body(app.port, path).await));
        }
    }

    // While 315 bodies are stalled, the role answers at once.
    let probe = fresh_client(Duration::from_secs(2));
    for _ in 0..5 {
        let asked = Instant::now();
        let response = probe
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(response.status(), 200);
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "/healthz took {:?} with stalled bodies open",
            asked.elapsed()
        );
    }

    for (path, stream) in &mut stalled {
        let response = read_until_closed(stream, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{path}: still open 5 s after a 1 s body deadline"));
        assert!(response.starts_with("HTTP/1.1 408"), "{path}: {response:?}");
        let body = json_of(&response);
        assert_eq!(body["error"], "body_timeout", "{path}: {body}");
        assert!(
            body["message"]
                .as_str()
                .is_some_and(|m| m.contains("CLIENT_BODY_TIMEOUT")),
            "{path}: {body}"
        );
    }
    let elapsed = started.elapsed();
    // The deadline, then actix's second of lingering for the client to close, and slack
    // for a loaded machine.
    assert!(
        elapsed >= Duration::from_secs(1) && elapsed < Duration::from_secs(8),
        "closed after {elapsed:?}"
    );

    // A chunked body refused before it is read (the wrong content type) and then left
    // hanging: answered at once and closed, not drained for ever.
    let mut refused = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    refused
        .write_all(
            b"POST /v1/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/plain\r\n\
              Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
        )
        .await
        .unwrap();
    let response = read_until_closed(&mut refused, Duration::from_secs(5))
        .await
        .expect("a refused chunked body that stalls is closed");
    assert!(response.starts_with("HTTP/1.1 415"), "{response:?}");
    assert_eq!(json_of(&response)["error"], "unsupported_media_type");
    assert_eq!(
        in_flight(&app).await,
        1.0,
        "only the /metrics request itself"
    );
    // A body that does arrive in time is served as before.
    let response = app
        .client
        .post(app.url("/v1/echo"))
        .json(&serde_json::json!({"name": "ok"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[actix_web::test]
async fn past_max_connections_new_ones_wait_and_the_role_answers_once_they_go() {
    let (mut config, _state) = test_config("echo");
    config.connections.max_connections = 4;
    config.connections.body_timeout = Duration::from_secs(60);
    let app = spawn(config).await;
    let probe = fresh_client(Duration::from_millis(700));
    assert_eq!(
        probe
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // Ten times the cap, each holding a request open.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(slow_body(app.port, "/v1/echo").await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = probe.get(app.url("/healthz")).send().await;
    assert!(
        refused.is_err(),
        "a fifth connection was served while four were held: {refused:?}"
    );

    drop(held);
    let probe = fresh_client(Duration::from_secs(2));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match probe.get(app.url("/healthz")).send().await {
            Ok(response) if response.status() == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "/healthz after the connections went: {other:?}"
            ),
        }
    }
    // And it keeps answering: the slots came back.
    for _ in 0..20 {
        let response = probe
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("healthz");
        assert_eq!(response.status(), 200);
    }
}

#[actix_web::test]
async fn idle_and_half_sent_connections_are_closed() {
    let (mut config, _state) = test_config("echo");
    config.connections.keep_alive = Duration::from_secs(1);
    config.connections.header_timeout = Duration::from_secs(1);
    let app = spawn(config).await;

    // Kept alive after a request, then idle: closed after KEEP_ALIVE_TIMEOUT.
    let mut idle = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let idled = Instant::now();
    assert!(
        read_until_closed(&mut idle, Duration::from_secs(3))
            .await
            .is_some(),
        "an idle connection is still open 3 s after a 1 s keep-alive"
    );
    // actix's clock ticks every 500 ms, so the deadline is that coarse.
    assert!(
        idled.elapsed() >= Duration::from_millis(400),
        "{:?}",
        idled.elapsed()
    );

    // Headers that never finish: closed after CLIENT_HEADER_TIMEOUT.
    let mut half = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: loc")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut half, Duration::from_secs(3))
            .await
            .is_some(),
        "half-sent headers still open 3 s after a 1 s header deadline"
    );
    assert_eq!(app.get("/healthz").await.status(), 200);
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

async fn post(app: &TestApp, path: &str, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut request = app.client.post(app.url(path)).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("an answer");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{path}: {status} {content_type:?} {text:?}"
    );
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path}: {text:?}")),
    )
}

#[actix_web::test]
async fn framework_errors_and_bad_encodings_answer_in_the_json_shape() {
    let (mut config, _state) = test_config("echo");
    config.max_body_bytes = 4096;
    let app = spawn(config).await;
    let json = ("content-type", "application/json");
    let gzipped = ("content-encoding", "gzip");

    for path in ["/v1/echo", "/v1/bytes", "/v1/body"] {
        // Over MAX_BODY_BYTES, declared or not.
        let (status, body) = post(&app, path, vec![b' '; 10_000], &[json]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (413, Some("payload_too_large")),
            "{path}: {body}"
        );

        // A gzip bomb: 10 MB of zeros in about 10 KB, refused once it passes the limit.
        let bomb = gzip(&vec![b' '; 10 * 1024 * 1024]);
        assert!(bomb.len() < 20_000);
        let (status, body) = post(&app, path, bomb, &[json, gzipped]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (413, Some("payload_too_large")),
            "{path}: {body}"
        );

        // Not gzip at all.
        let (status, body) = post(&app, path, b"{\"name\":\"x\"}".to_vec(), &[json, gzipped]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            ["invalid_encoding", "bad_request"].contains(&body["error"].as_str().unwrap_or("")),
            "{path}: {body}"
        );

        // Compressed and fine.
        let (status, body) = post(&app, path, gzip(b"{\"name\":\"x\"}"), &[json, gzipped]).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The kit's own extractors say exactly what was wrong with the encoding.
    for path in ["/v1/echo", "/v1/body"] {
        let (_, body) = post(&app, path, b"not gzip".to_vec(), &[json, gzipped]).await;
        assert_eq!(body["error"], "invalid_encoding", "{path}: {body}");
    }
    // The raw-body extractor takes any content type, and an empty body.
    let (status, body) = post(&app, "/v1/body", Vec::new(), &[]).await;
    assert_eq!((status, body["bytes"].as_u64()), (200, Some(0)), "{body}");

    // Wrong method, unknown route, bad path and query: JSON too.
    let response = app.client.put(app.url("/v1/bytes")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "method_not_allowed");
    let body: Value = app.get("/v1/items/%FF%FE").await.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let body: Value = app.get("/v1/slow?ms=%FF").await.json().await.unwrap();
    assert_eq!(body["error"], "invalid_query", "{body}");
    assert_eq!(app.get("/healthz").await.status(), 200);
}

/// Peak resident memory of this process (the test and the role it serves), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.split_whitespace().next()?.parse().ok())
        .expect("VmHWM");
    kib / 1024
}

/// `mib` MiB of spaces, gzip or deflate, compressed a MiB at a time (never whole in memory:
/// the peak RSS measured is the server's).
fn bomb(encoding: &str, mib: usize) -> Vec<u8> {
    let piece = vec![b' '; 1024 * 1024];
    let level = flate2::Compression::best();
    if encoding == "gzip" {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), level);
        for _ in 0..mib {
            encoder.write_all(&piece).unwrap();
        }
        encoder.finish().unwrap()
    } else {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), level);
        for _ in 0..mib {
            encoder.write_all(&piece).unwrap();
        }
        encoder.finish().unwrap()
    }
}

/// A bomb small on the wire (about 250 KB, inside the 1 MiB MAX_BODY_BYTES) that inflates to
/// 256 MiB is refused having inflated no more than the limit: actix's own decoder inflated
/// each chunk off the wire whole before the limit was checked (the hostile suite saw every
/// role's peak RSS reach 240-300 MiB).
#[actix_web::test]
async fn a_compression_bomb_is_refused_without_being_inflated() {
    let (mut config, _state) = test_config("echo");
    config.max_body_bytes = 1024 * 1024;
    let app = spawn(config).await;
    let bombs = [
        ("gzip", bomb("gzip", 256)),
        ("deflate", bomb("deflate", 256)),
    ];
    let before = peak_rss_mib();
    for (encoding, bomb) in bombs {
        assert!(bomb.len() < 1024 * 1024, "{encoding}: {} bytes", bomb.len());
        for path in ["/v1/echo", "/v1/body"] {
            // In one write, as a hostile client sends it: the server reads up to 128 KiB of
            // it at a time, the chunk actix's decoder inflated whole.
            let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
            let mut request = format!(
                "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
                 Content-Encoding: {encoding}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bomb.len()
            )
            .into_bytes();
            request.extend_from_slice(&bomb);
            // The server may answer and close before taking all of it.
            let _ = stream.write_all(&request).await;
            let answer = read_until_closed(&mut stream, Duration::from_secs(30))
                .await
                .expect("an answer");
            assert!(
                answer.starts_with("HTTP/1.1 413"),
                "{encoding} {path}: {answer}"
            );
            assert_eq!(json_of(&answer)["error"], "payload_too_large", "{answer}");
        }
    }
    let grown = peak_rss_mib().saturating_sub(before);
    assert!(
        grown < 64,
        "peak RSS grew {grown} MiB for four refused bombs"
    );

    // A coding the kit does not decode is refused before the body is read.
    let (status, body) = post(
        &app,
        "/v1/echo",
        b"{\"name\":\"x\"}".to_vec(),
        &[
            ("content-type", "application/json"),
            ("content-encoding", "br"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
}
