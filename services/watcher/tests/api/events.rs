//! `POST /events` with the seed's payloads, `GET /events` with limit and service.

use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{get, metrics, post, sample, spawn};

#[actix_web::test]
async fn seed_events_are_recorded_with_timestamps_and_types() {
    let app = spawn(WatcherConfig::for_tests()).await;
    let (status, reply) = post(
        &app,
        "/events",
        &json!({"service": "edge-cam01", "event_type": "error", "detail": "model timeout"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["status"], "ok");
    let id = reply["id"].as_str().expect("the event's id").to_string();

    let (status, body) = get(&app, "/events").await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event["id"], id.as_str());
    assert_eq!(event["service"], "edge-cam01");
    assert_eq!(event["event_type"], "error");
    assert_eq!(event["detail"], "model timeout");
    assert_eq!(event["source"], "api");
    let timestamp = event["timestamp"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(timestamp).is_ok(),
        "{timestamp}"
    );
}

#[actix_web::test]
async fn failures_and_successes_with_a_component_feed_the_task_counters() {
    let app = spawn(WatcherConfig::for_tests()).await;
    for (event_type, component) in [
        ("failure", Some("inference")),
        ("failure", Some("inference")),
        ("success", Some("inference")),
        ("failure", None),
        ("warning", Some("inference")),
    ] {
        let mut body = json!({"service": "edge", "event_type": event_type});
        if let Some(component) = component {
            body["component"] = json!(component);
        }
        let (status, reply) = post(&app, "/events", &body).await;
        assert_eq!(status, 200, "{reply}");
    }
    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            r#"monitoring_task_failures_total{component="inference",service="edge"}"#
        ),
        Some(2.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"monitoring_task_success_total{component="inference",service="edge"}"#
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"monitoring_events_total{event_type="failure",service="edge"}"#
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            r#"monitoring_events_total{event_type="warning",service="edge"}"#
        ),
        Some(1.0)
    );
}

#[actix_web::test]
async fn the_list_is_the_most_recent_oldest_first_bounded_by_events_max() {
    let mut settings = WatcherConfig::for_tests();
    settings.events_max = 5;
    let app = spawn(settings).await;
    for n in 0..8 {
        let service = if n % 2 == 0 { "even" } else { "odd" };
        post(
            &app,
            "/events",
            &json!({"service": service, "event_type": format!("e{n}")}),
        )
        .await;
    }
    let types = |body: serde_json::Value| -> Vec<String> {
        body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event_type"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = get(&app, "/events?limit=100").await;
    assert_eq!(
        types(all),
        ["e3", "e4", "e5", "e6", "e7"],
        "only EVENTS_MAX kept"
    );
    let (_, last_two) = get(&app, "/events?limit=2").await;
    assert_eq!(types(last_two), ["e6", "e7"]);
    let (_, even) = get(&app, "/events?service=even").await;
    assert_eq!(types(even), ["e4", "e6"]);
    let (_, none) = get(&app, "/events?service=nobody").await;
    assert_eq!(types(none), Vec::<String>::new());
}

/// Event types are free text: a client sending ever new ones cannot grow the series count.
/// Past MAX_EVENT_SERIES the new label sets share one `_other` series; the events themselves
/// are all kept.
#[actix_web::test]
async fn event_series_are_bounded_but_every_event_is_kept() {
    let mut settings = WatcherConfig::for_tests();
    settings.max_event_series = 3;
    let app = spawn(settings).await;
    for index in 0..10 {
        let (status, reply) = post(
            &app,
            "/events",
            &json!({"service": "fuzzer", "event_type": format!("type-{index}"),
                    "component": "c", "detail": "x"}),
        )
        .await;
        assert_eq!(status, 200, "{reply}");
    }
    let text = metrics(&app).await;
    let series = text
        .lines()
        .filter(|line| line.starts_with("monitoring_events_total{"))
        .count();
    assert_eq!(series, 4, "three label sets and _other:\n{text}");
    assert_eq!(
        sample(
            &text,
            r#"monitoring_events_total{event_type="_other",service="_other"}"#
        ),
        Some(7.0)
    );
    let (_, body) = get(&app, "/events?service=fuzzer").await;
    assert_eq!(body["events"].as_array().unwrap().len(), 10);
}
