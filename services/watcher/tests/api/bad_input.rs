//! Bad input on every endpoint that takes any: a clear JSON error naming the field, nothing
//! crashed, nothing stored, and state.json still readable afterwards.

use serde_json::{json, Value};
use watcher::WatcherConfig;

use crate::helpers::{get, heartbeat, post, post_raw, spawn, spawn_in};

fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str, names: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"], want_code, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(names),
        "the message should name {names:?}: {message:?}"
    );
}

#[actix_web::test]
async fn bad_heartbeats_are_refused_and_leave_no_trace() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let long_name = "x".repeat(129);
    let long_phase = "p".repeat(129);
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "service"),
        (json!({"phase": "loop"}), "service"),
        (json!({"service": ""}), "service"),
        (json!({"service": long_name}), "service"),
        (json!({"service": "has space"}), "service"),
        (json!({"service": "a/b"}), "service"),
        // Type errors are worded by serde through obs-core, after the field's name.
        (
            json!({"service": 42}),
            "service: invalid type: integer `42`, expected a string",
        ),
        (json!({"service": "ok", "phase": long_phase}), "phase"),
        (json!({"service": "ok", "phase": "bell\u{7}"}), "phase"),
        (
            json!({"service": "ok", "timeout_seconds": 0}),
            "timeout_seconds",
        ),
        (
            json!({"service": "ok", "timeout_seconds": -5}),
            "timeout_seconds",
        ),
        (
            json!({"service": "ok", "timeout_seconds": 1e12}),
            "timeout_seconds",
        ),
        // Numbers that round to nothing are not a timeout of zero.
        (
            json!({"service": "ok", "timeout_seconds": 1e-300}),
            "timeout_seconds: 1e-300 is not a number of seconds from 0.01 to 2678400",
        ),
        (
            json!({"service": "ok", "timeout_seconds": 1e-10}),
            "timeout_seconds",
        ),
        (
            json!({"service": "ok", "timeout_seconds": "soon"}),
            "timeout_seconds: invalid type: string \"soon\", expected f64",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = post(&app, "/heartbeat", &body).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert!(
            reply["error"] == "invalid_field" || reply["error"] == "invalid_json",
            "{reply}"
        );
        assert!(
            reply["message"].as_str().unwrap().contains(field),
            "{body}: message should name {field}: {reply}"
        );
    }

    let (status, reply) = post_raw(
        &app,
        "/heartbeat",
        "application/json",
        b"{\"service\": ".to_vec(),
    )
    .await;
    assert_error(status, &reply, 400, "invalid_json", "request body");
    let (status, reply) =
        post_raw(&app, "/heartbeat", "application/json", b"[1,2,3]".to_vec()).await;
    assert_eq!(status, 400, "{reply}");
    let (status, reply) = post_raw(&app, "/heartbeat", "text/plain", b"service=x".to_vec()).await;
    assert_eq!(status, 415, "{reply}");
    let huge = format!(
        r#"{{"service":"big","phase":"{}"}}"#,
        "p".repeat(2 * 1024 * 1024)
    );
    let (status, reply) = post_raw(&app, "/heartbeat", "application/json", huge.into_bytes()).await;
    assert_error(status, &reply, 413, "payload_too_large", "limit");

    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["services"], json!([]), "nothing stored: {status}");
    heartbeat(&app, json!({"service": "ok"})).await;
    assert_eq!(get(&app, "/healthz").await.0, 200);
}

#[actix_web::test]
async fn bad_events_are_refused_and_leave_no_trace() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"service": "edge"}), "event_type"),
        (json!({"event_type": "error"}), "service"),
        (json!({"service": "edge", "event_type": ""}), "event_type"),
        (
            json!({"service": "edge", "event_type": "x".repeat(200)}),
            "event_type",
        ),
        (
            json!({"service": "edge", "event_type": "two words"}),
            "event_type",
        ),
        (
            json!({"service": "edge", "event_type": "error", "detail": "d".repeat(4097)}),
            "detail",
        ),
        (
            json!({"service": "edge", "event_type": "error", "detail": 5}),
            "expected a string",
        ),
        (
            json!({"service": "edge", "event_type": "failure", "component": "a b"}),
            "component",
        ),
        (
            json!({"service": "edge", "event_type": "failure", "component": ""}),
            "component",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = post(&app, "/events", &body).await;
        assert_eq!(status, 400, "{body} → {reply}");
        assert!(
            reply["message"].as_str().unwrap().contains(field),
            "{body}: message should name {field}: {reply}"
        );
    }
    let (status, reply) = post_raw(&app, "/events", "application/json", b"not json".to_vec()).await;
    assert_error(status, &reply, 400, "invalid_json", "request body");
    let (_, events) = get(&app, "/events").await;
    assert_eq!(events["events"], json!([]), "nothing stored");
    // A detail at the limit is fine.
    let (status, _) = post(
        &app,
        "/events",
        &json!({"service": "edge", "event_type": "error", "detail": "d".repeat(4096)}),
    )
    .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn absurd_query_values_are_refused_by_name() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let cases = [
        ("/events?limit=0", "limit"),
        ("/events?limit=-1", "limit"),
        ("/events?limit=10001", "limit"),
        ("/events?limit=99999999999999999999999", "limit"),
        ("/events?limit=ten", "limit"),
        ("/events?service=a%20b", "service"),
        ("/issues?state=closed", "state"),
        ("/issues?limit=0", "limit"),
        ("/issues?limit=1000000", "limit"),
        ("/logs", "container"),
        ("/logs?container=", "container"),
        ("/logs?container=app&lines=0", "lines"),
        ("/logs?container=app&lines=1000000", "lines"),
        ("/logs?container=app&lines=all", "lines"),
        ("/container", "name"),
        ("/container?name=a%20b", "name"),
        ("/ping/a%20b", "service"),
        ("/ping/edge?timeout_seconds=abc", "timeout_seconds"),
        ("/ping/edge?timeout_seconds=-1", "timeout_seconds"),
        ("/ping/edge?timeout_seconds=1e-300", "timeout_seconds"),
        ("/ping/edge?timeout_seconds=NaN", "timeout_seconds"),
        ("/ping/edge/fail?detail=%07", "detail"),
    ];
    for (path, field) in cases {
        let (status, body) = get(&app, path).await;
        assert_error(status, &body, 400, "invalid_field", field);
    }
    let long = "x".repeat(129);
    let (status, body) = get(&app, &format!("/ping/{long}")).await;
    assert_error(status, &body, 400, "invalid_field", "service");

    // The largest sensible values are fine.
    assert_eq!(get(&app, "/events?limit=10000").await.0, 200);
    assert_eq!(get(&app, "/issues?state=open&limit=10000").await.0, 200);
    // An unknown container is a 404, not a crash.
    let (status, body) = get(&app, "/container?name=nobody").await;
    assert_error(status, &body, 404, "not_found", "nobody");
    let (status, body) = post(&app, "/containers/a%20b/restart", &json!({})).await;
    assert_error(status, &body, 400, "invalid_field", "name");
    let (status, body) = post(
        &app,
        "/containers/app/restart?timeout_seconds=9999",
        &json!({}),
    )
    .await;
    assert_error(status, &body, 400, "invalid_field", "timeout_seconds");
    let (_, status) = get(&app, "/status").await;
    assert_eq!(
        status["services"],
        json!([]),
        "no ping was recorded: {status}"
    );
}

#[actix_web::test]
async fn after_a_barrage_of_bad_input_the_saved_state_is_intact() {
    let (config, state) = obs_testkit::test_config("watcher");
    let app = crate::helpers::spawn_with(config, WatcherConfig::for_tests()).await;
    heartbeat(&app, json!({"service": "good", "phase": "p1"})).await;
    for body in [
        json!({"service": "bad name"}),
        json!({"service": "x".repeat(500)}),
        json!({"service": "good", "timeout_seconds": f64::MAX}),
        json!({"service": "good", "phase": "\u{0}"}),
    ] {
        assert_eq!(post(&app, "/heartbeat", &body).await.0, 400);
    }
    post_raw(&app, "/heartbeat", "application/json", b"{{{{".to_vec()).await;
    app.shutdown().await.expect("a clean stop");

    // What the database kept is what a restarted watcher shows: the good beat, nothing else.
    let app = spawn_in(state.path(), WatcherConfig::for_tests()).await;
    let (_, status) = get(&app, "/status").await;
    let services = status["services"].as_array().unwrap();
    assert_eq!(services.len(), 1, "{status}");
    assert_eq!(services[0]["service"], "good");
    assert_eq!(services[0]["phase"], "p1");
}
