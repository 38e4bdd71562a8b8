//! A fleet larger than the watcher's page: the synthesizer asks the watcher only for the
//! pages its own page shows (seen through a recording proxy in front of a real watcher), and
//! still counts every service and pages through each exactly once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use obs_core::config::Peers;
use obs_model::Severity;
use serde_json::json;
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

const UP: usize = 2_600;
const FAILED: usize = 5;

/// What the proxy forwarded: the path and query asked, and the size of the answer.
type Asked = Arc<Mutex<Vec<(String, usize)>>>;

/// Forwards every GET to `upstream`, recording what was asked and how big the answer was.
fn proxy(upstream: String, asked: Asked) -> String {
    let http = reqwest::Client::new();
    let server = HttpServer::new(move || {
        let (upstream, asked, http) = (upstream.clone(), asked.clone(), http.clone());
        App::new().default_service(web::to(move |request: HttpRequest| {
            let (upstream, asked, http) = (upstream.clone(), asked.clone(), http.clone());
            async move {
                let uri = request.uri().to_string();
                let answer = http.get(format!("{upstream}{uri}")).send().await.unwrap();
                let status = answer.status().as_u16();
                let body = answer.bytes().await.unwrap();
                asked.lock().unwrap().push((uri, body.len()));
                HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                    .content_type("application/json")
                    .body(body)
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("the proxy binds");
    let port = server.addrs()[0].port();
    actix_web::rt::spawn(server.run());
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn pages_ask_the_watcher_for_bounded_pages_and_count_the_whole_fleet() {
    let watcher = watcher().await;
    for n in 0..UP {
        let (status, _) = post(
            &watcher,
            "/heartbeat",
            &json!({"service": format!("cam-{n:05}")}),
        )
        .await;
        assert_eq!(status, 200);
    }
    for n in 0..FAILED {
        let (status, _) = post(&watcher, &format!("/ping/zz-job-{n}/fail"), &json!({})).await;
        assert_eq!(status, 200);
    }
    let asked: Asked = Arc::default();
    let watcher_url = proxy(watcher.address.clone(), asked.clone());
    let peers = Peers {
        watcher: Some(watcher_url),
        ..Peers::default()
    };
    let app = spawn(SynthesizerConfig::for_tests(), peers).await;
    // Two services with open warnings: one early by name, one past the watcher's first
    // page of up services; both degraded wherever the report's page is.
    post_plans(
        &app,
        &[
            plan("cam-00010", "cam-00010 answers 5xx", Severity::Warning),
            plan("cam-02500", "cam-02500 answers 5xx", Severity::Warning),
        ],
    )
    .await;

    let mut names = Vec::new();
    let mut path = "/v1/report?limit=400".to_string();
    let mut pages = 0;
    loop {
        asked.lock().unwrap().clear();
        let (status, report) = get(&app, &path).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(
            report["service_counts"],
            json!({"total": UP + FAILED, "down": FAILED, "degraded": 2, "unknown": 0,
                   "operational": UP - 2}),
            "page {pages}"
        );
        let statuses: Vec<(String, usize)> = asked
            .lock()
            .unwrap()
            .iter()
            .filter(|(uri, _)| uri.starts_with("/status"))
            .cloned()
            .collect();
        assert!(!statuses.is_empty() && statuses.len() <= 3, "{statuses:?}");
        for (uri, bytes) in &statuses {
            assert!(uri.contains("limit="), "every ask is a page: {uri}");
            assert!(*bytes < 250_000, "{uri}: {bytes} bytes");
        }
        names.extend(
            report["services"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["name"].as_str().unwrap().to_string()),
        );
        pages += 1;
        assert!(pages < 20, "the walk ends");
        match report["services_next"].as_str() {
            Some(next) => path = format!("/v1/report?limit=400&after={next}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "each service once");
    assert_eq!(names.len(), UP + FAILED);
    let first: Vec<&str> = names[..FAILED + 2].iter().map(String::as_str).collect();
    assert_eq!(
        first,
        [
            "zz-job-0",
            "zz-job-1",
            "zz-job-2",
            "zz-job-3",
            "zz-job-4",
            "cam-00010",
            "cam-02500"
        ]
    );
    let rest = &names[FAILED + 2..];
    assert!(
        rest.windows(2).all(|pair| pair[0] < pair[1]),
        "then by name"
    );

    // The status page too: one bounded page of answers from the watcher.
    asked.lock().unwrap().clear();
    let (status, _, page) = text(&app, "/").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("{} services", UP + FAILED)),
        "counts them all"
    );
    let total: usize = asked.lock().unwrap().iter().map(|(_, bytes)| bytes).sum();
    assert!(
        total < 300_000,
        "{total} bytes from the watcher for one page"
    );
}
