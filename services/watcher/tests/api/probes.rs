//! HTTP probes against a real little server the test can make fail.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use obs_testkit::eventually;
use watcher::WatcherConfig;

use crate::helpers::{get, issues, metrics, sample, spawn, wait_for_issue};

/// A server whose `/healthz` answers 200 while `healthy` is set, 503 otherwise.
fn target(healthy: Arc<AtomicBool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let healthy = healthy.clone();
        App::new().route(
            "/healthz",
            web::get().to(move || {
                let healthy = healthy.load(Ordering::SeqCst);
                async move {
                    if healthy {
                        HttpResponse::Ok().body("ok")
                    } else {
                        HttpResponse::ServiceUnavailable().body("no")
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}/healthz")
}

async fn probe_status(app: &obs_testkit::TestApp, name: &str) -> serde_json::Value {
    let (_, status) = get(app, "/status").await;
    status["probes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|probe| probe["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("probe {name} listed: {status}"))
}

#[actix_web::test]
async fn consecutive_failures_open_probe_failed_and_a_success_resolves_it() {
    let healthy = Arc::new(AtomicBool::new(true));
    let url = target(healthy.clone());
    let mut settings = WatcherConfig::for_tests();
    settings.probes.targets = vec![("api".into(), url.clone())];
    settings.probes.interval = Duration::from_millis(100);
    settings.probes.failure_threshold = 3;
    let app = spawn(settings).await;

    eventually(
        "the first successful probe",
        Duration::from_secs(10),
        || async { (probe_status(&app, "api").await["up"] == true).then_some(()) },
    )
    .await;
    let probe = probe_status(&app, "api").await;
    assert_eq!(probe["url"], url.as_str());
    assert!(probe["last_duration_seconds"].as_f64().unwrap() > 0.0);

    healthy.store(false, Ordering::SeqCst);
    let issue = wait_for_issue(&app, "open", "probe_failed", "api").await;
    assert_eq!(issue["subject"], url.as_str());
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["facts"]["url"], url.as_str());
    assert_eq!(issue["facts"]["status_code"], 503);
    assert_eq!(issue["facts"]["consecutive_failures"], 3);
    assert!(issue["facts"]["last_success"].is_string());
    let probe = probe_status(&app, "api").await;
    assert_eq!(probe["up"], false);
    assert_eq!(probe["last_error"], "status 503");
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"watcher_probe_success{target="api"}"#),
        Some(0.0)
    );
    assert!(
        sample(
            &text,
            r#"watcher_probes_total{result="failure",target="api"}"#
        )
        .unwrap()
            >= 3.0
    );

    healthy.store(true, Ordering::SeqCst);
    let resolved = wait_for_issue(&app, "resolved", "probe_failed", "api").await;
    assert_eq!(resolved["id"], issue["id"]);
    assert_eq!(resolved["count"], 1, "one outage, one issue");
    assert!(issues(&app, "open", "probe_failed", "api").await.is_empty());
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"watcher_probe_success{target="api"}"#),
        Some(1.0)
    );
    assert!(sample(&text, r#"watcher_probe_duration_seconds{target="api"}"#).is_some());
}

#[actix_web::test]
async fn targets_added_after_start_are_probed_and_refused_connections_count_as_failures() {
    let settings = {
        let mut settings = WatcherConfig::for_tests();
        settings.probes.interval = Duration::from_millis(100);
        settings.probes.failure_threshold = 2;
        settings
    };
    let (config, _state) = obs_testkit::test_config("watcher");
    let service = obs_core::Service::new(config).unwrap();
    let watcher = watcher::Watcher::with_config(&service, settings)
        .await
        .unwrap();
    let targets = watcher.probe_targets();
    let app = obs_testkit::TestApp::run(service.bind(watcher).await.unwrap());

    // Ports known only now, as in obs-stack.
    let closed = obs_testkit::free_port();
    targets.add("self", &app.url("/healthz")).unwrap();
    targets
        .add("gone", &format!("http://127.0.0.1:{closed}/healthz"))
        .unwrap();
    assert!(targets.add("bad name", "http://x/").is_err());
    assert!(targets.add("ftp", "ftp://x/").is_err());

    eventually("self probed up", Duration::from_secs(10), || async {
        (probe_status(&app, "self").await["up"] == true).then_some(())
    })
    .await;
    let issue = wait_for_issue(&app, "open", "probe_failed", "gone").await;
    assert_eq!(issue["facts"]["error"], "connection failed");
    assert!(issue["facts"].get("status_code").is_none());
}

#[actix_web::test]
async fn a_target_that_accepts_but_never_answers_fails_on_probe_timeout() {
    // The kernel completes the handshake from the backlog; nobody ever reads or answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/healthz", silent.local_addr().unwrap());
    let mut settings = WatcherConfig::for_tests();
    settings.probes.targets = vec![("stuck".into(), url.clone())];
    settings.probes.interval = Duration::from_millis(300);
    settings.probes.timeout = Duration::from_millis(200);
    settings.probes.failure_threshold = 2;
    let app = spawn(settings).await;

    let issue = wait_for_issue(&app, "open", "probe_failed", "stuck").await;
    assert_eq!(issue["facts"]["error"], "timeout");
    assert_eq!(issue["facts"]["url"], url.as_str());
    let probe = probe_status(&app, "stuck").await;
    assert_eq!(probe["up"], false);
    assert_eq!(probe["last_error"], "timeout");
    let took = probe["last_duration_seconds"].as_f64().unwrap();
    assert!(
        (0.2..5.0).contains(&took),
        "gave up at the timeout, not before, not never: {took}"
    );
    // The watcher itself kept answering while its probes hung.
    assert_eq!(get(&app, "/healthz").await.0, 200);
    drop(silent);
}

#[actix_web::test]
async fn credentials_in_a_target_are_never_shown() {
    let healthy = Arc::new(AtomicBool::new(true));
    let plain = target(healthy.clone());
    let secret_url =
        plain.replacen("http://", "http://admin:pw-SECRET1@", 1) + "?apikey=SECRET2&v=1";
    let shown = plain.replacen("http://", "http://***@", 1) + "?apikey=***&v=1";
    let mut settings = WatcherConfig::for_tests();
    settings.probes.targets = vec![("db".into(), secret_url.clone())];
    settings.probes.interval = Duration::from_millis(100);
    settings.probes.failure_threshold = 2;
    let app = spawn(settings).await;

    eventually("the first probe", Duration::from_secs(10), || async {
        (probe_status(&app, "db").await["up"] == true).then_some(())
    })
    .await;
    assert_eq!(probe_status(&app, "db").await["url"], shown.as_str());
    healthy.store(false, Ordering::SeqCst);
    let issue = wait_for_issue(&app, "open", "probe_failed", "db").await;
    assert_eq!(issue["subject"], shown.as_str());
    assert_eq!(issue["facts"]["url"], shown.as_str());

    let (_, status) = get(&app, "/status").await;
    let (code, open) = get(&app, "/issues?state=open").await;
    assert_eq!(code, 200);
    let events = crate::helpers::events_of(&app, "db").await;
    assert!(!events.is_empty());
    for (what, text) in [
        ("/status", status.to_string()),
        ("/issues", open.to_string()),
        ("events", serde_json::Value::from(events).to_string()),
        ("/metrics", metrics(&app).await),
    ] {
        assert!(
            !text.contains("SECRET") && !text.contains("admin:"),
            "{what} shows the target's credentials: {text}"
        );
    }
}

#[actix_web::test]
async fn an_issue_about_a_very_long_probe_url_reaches_the_curator_fitted_to_its_limits() {
    let curator = obs_testkit::receiver::Receiver::start().await;
    let closed = obs_testkit::free_port();
    let url = format!("http://127.0.0.1:{closed}/{}", "p".repeat(280));
    assert!(url.len() > obs_model::limits::MAX_SUBJECT_CHARS);
    let mut settings = WatcherConfig::for_tests();
    settings.probes.targets = vec![("long".into(), url.clone())];
    settings.probes.interval = Duration::from_millis(100);
    settings.probes.failure_threshold = 1;
    let (mut config, _state) = obs_testkit::test_config("watcher");
    config.peers.curator = Some(curator.url.clone());
    let app = crate::helpers::spawn_with(config, settings).await;

    let raised = wait_for_issue(&app, "open", "probe_failed", "long").await;
    assert_eq!(
        raised["subject"],
        url.as_str(),
        "the watcher keeps the whole URL"
    );
    let sent = curator.wait_for("/v1/issues", 1).await;
    let subject = sent[0]["subject"].as_str().unwrap();
    assert_eq!(
        subject.chars().count(),
        obs_model::limits::MAX_SUBJECT_CHARS
    );
    assert!(subject.contains(obs_model::limits::CUT_MARKER), "{subject}");
    assert!(url.starts_with(subject.split(obs_model::limits::CUT_MARKER).next().unwrap()));
}
