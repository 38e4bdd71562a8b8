//! The report in its three formats, from a real watcher and a real archivist; escaping;
//! and a page that still renders, saying so, when the peers are down.

use chrono::{Duration, Utc};
use obs_core::config::Peers;
use obs_model::Severity;
use serde_json::json;
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

#[actix_web::test]
async fn the_report_composes_the_watcher_the_archive_and_the_plans() {
    let watcher = watcher().await;
    let archivist = archivist().await;
    for service in ["api", "web"] {
        let (status, _) = post(&watcher, "/heartbeat", &json!({"service": service})).await;
        assert_eq!(status, 200);
    }
    let (status, _) = post(
        &watcher,
        "/events",
        &json!({"service": "api", "event_type": "restart", "detail": "deploy 42"}),
    )
    .await;
    assert_eq!(status, 200);
    let now = Utc::now();
    // api was down from 5 h ago to 4 h ago: the issue's opening and its recovery.
    let outage = ulid::Ulid::new();
    archive(
        &archivist,
        &[
            issue_record(
                outage,
                "api",
                "heartbeat_missed",
                now - Duration::hours(5),
                None,
            ),
            issue_record(
                outage,
                "api",
                "heartbeat_missed",
                now - Duration::hours(5),
                Some(now - Duration::hours(4)),
            ),
        ],
    )
    .await;
    let app = spawn(
        SynthesizerConfig::for_tests(),
        peers(Some(&watcher), Some(&archivist)),
    )
    .await;
    post_plans(&app, &[plan("web", "web answers 5xx", Severity::Warning)]).await;

    let (status, report) = get(&app, "/v1/report").await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["title"], "Acme fleet");
    assert_eq!(report["overall"], "degraded");
    assert_eq!(report["headline"], "Degraded performance");
    assert!(
        report["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["available"] == true),
        "{report}"
    );
    let services = report["services"].as_array().unwrap();
    let names: Vec<&str> = services
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "api"], "trouble first");
    assert_eq!(services[0]["health"], "degraded");
    assert_eq!(services[0]["open_incidents"], 1);
    let api = &services[1];
    assert_eq!(api["health"], "operational");
    // Two records of one issue: one hour down, counted once.
    assert_eq!(api["uptime"]["down_seconds"], 3600, "{api}");
    assert_eq!(api["uptime"]["percent"], 95.83);
    let slots = api["uptime"]["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 96);
    // An hour not aligned to the 15-minute slots touches five of them.
    let down = slots.iter().filter(|s| *s == "down").count();
    assert!((4..=5).contains(&down), "{down} slots down");
    assert_eq!(
        report["incidents"][0]["plan"]["steps"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(report["events"][0]["event_type"], "restart");

    let (status, content_type, markdown) = text(&app, "/v1/report?format=md").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/markdown"), "{content_type}");
    for expected in [
        "# Acme fleet status",
        "**Degraded performance**",
        "| web | degraded |",
        "| api | operational | 95.83 % |",
        "### [P2] WARNING web answers 5xx",
        "1. Restart container web-1",
        "restart — deploy 42",
    ] {
        assert!(
            markdown.contains(expected),
            "{expected:?} not in:\n{markdown}"
        );
    }

    let (status, content_type, html) = text(&app, "/v1/report?format=html").await;
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let (_, _, page) = text(&app, "/").await;
    for body in [&html, &page] {
        assert!(body.starts_with("<!DOCTYPE html>"));
        assert!(body.contains("web answers 5xx"));
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "no external assets"
        );
        assert!(!body.contains("<script"), "no scripts");
    }
    let text = metrics(&app).await;
    assert!(sample(&text, "synthesizer_report_seconds_count").unwrap() >= 4.0);
}

#[actix_web::test]
async fn names_and_messages_from_inputs_are_escaped() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let mut evil = plan(
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(2)>",
        Severity::Critical,
    );
    evil.steps[0].title = "</li><b>bold</b>".into();
    evil.incident.message = "a | b & c".into();
    post_plans(&app, &[evil]).await;
    let (_, _, page) = text(&app, "/").await;
    assert!(!page.contains("<script"), "a service name became markup");
    assert!(!page.contains("<img"), "a title became markup");
    assert!(!page.contains("<b>bold"), "a step became markup");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(page.contains("a | b &amp; c"));
    let (_, _, markdown) = text(&app, "/v1/report?format=md").await;
    assert!(markdown.contains("a \\| b & c") || markdown.contains("a | b & c"));
}

#[actix_web::test]
async fn the_page_renders_and_says_which_peer_is_unavailable() {
    // Nothing listens on these ports.
    let gone = |port: u16| Some(format!("http://127.0.0.1:{port}"));
    let peers = Peers {
        watcher: gone(obs_testkit::free_port()),
        archivist: gone(obs_testkit::free_port()),
        ..Peers::default()
    };
    let mut settings = SynthesizerConfig::for_tests();
    settings.peer_timeout = std::time::Duration::from_millis(500);
    let app = spawn(settings, peers).await;
    post_plans(&app, &[plan("api", "api-1 crashed", Severity::Critical)]).await;

    let (status, _, page) = text(&app, "/").await;
    assert_eq!(status, 200);
    assert!(page.contains("watcher unavailable"), "{page}");
    assert!(page.contains("archivist unavailable"));
    assert!(page.contains("Major outage"));
    assert!(page.contains("api-1 crashed"));
    assert!(page.contains("uptime unknown"));

    let (status, report) = get(&app, "/v1/report").await;
    assert_eq!(status, 200);
    for source in report["sources"].as_array().unwrap() {
        assert_eq!(source["available"], false, "{source}");
        assert!(
            source["error"].as_str().unwrap().contains("cannot connect"),
            "{source}"
        );
    }

    // No peers configured at all: the same, with the reason.
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let (status, report) = get(&app, "/v1/report").await;
    assert_eq!(status, 200);
    assert!(report["sources"][0]["error"]
        .as_str()
        .unwrap()
        .contains("WATCHER_URL is not set"));
    assert_eq!(report["overall"], "operational");
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"synthesizer_peer_failures_total{peer="watcher"}"#),
        Some(1.0)
    );
}

/// A fleet larger than a page: counted whole, listed trouble first, paged by the cursor the
/// report and the page give; the page links to the next one.
#[actix_web::test]
async fn services_past_a_page_are_counted_and_paged_trouble_first() {
    let watcher = watcher().await;
    for n in 0..25 {
        let service = format!("svc-{n:02}");
        let (status, _) = post(&watcher, "/heartbeat", &json!({"service": service})).await;
        assert_eq!(status, 200);
    }
    // svc-24 reports a failure: down, so first of all.
    let (status, _) = post(&watcher, "/ping/svc-24/fail", &json!({})).await;
    assert_eq!(status, 200);
    let app = spawn(SynthesizerConfig::for_tests(), peers(Some(&watcher), None)).await;
    post_plans(
        &app,
        &[plan("svc-20", "svc-20 answers 5xx", Severity::Warning)],
    )
    .await;

    let mut names = Vec::new();
    let mut path = "/v1/report?limit=10".to_string();
    loop {
        let (status, report) = get(&app, &path).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["service_counts"]["total"], 25, "{report}");
        assert_eq!(report["incidents_total"], 1);
        let page = report["services"].as_array().unwrap();
        assert!(page.len() <= 10);
        names.extend(page.iter().map(|s| s["name"].as_str().unwrap().to_string()));
        match report["services_next"].as_str() {
            Some(next) => path = format!("/v1/report?limit=10&after={next}"),
            None => break,
        }
    }
    assert_eq!(names.len(), 25, "{names:?}");
    // The down one, then the degraded one (an open warning), then the rest by name.
    assert_eq!(names[..2], ["svc-24", "svc-20"], "{names:?}");
    let mut rest = names[2..].to_vec();
    rest.sort();
    assert_eq!(rest, names[2..], "then by name");

    let (status, _, page) = text(&app, "/?limit=10").await;
    assert_eq!(status, 200);
    assert!(page.contains("25 services"), "the page counts them all");
    assert!(page.contains("Listing 10, what is wrong first."));
    assert!(page.contains("href=\"/?after="), "a link to the next page");
    let (status, _, markdown) = text(&app, "/v1/report?format=md&limit=10").await;
    assert_eq!(status, 200);
    assert!(
        markdown.contains("More: `/v1/report?format=md&after="),
        "{markdown}"
    );
}
