//! `obsctl dead-letters`: a watcher issue the curator refuses is kept by the watcher, listed,
//! and delivered once the curator takes it and it is replayed. The real watcher binary, a
//! curator stand-in that can be told to refuse.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use obs_core::actix_web::{web, App, HttpResponse, HttpServer};
use obs_testkit::eventually;
use serde_json::Value;

use crate::support::{obsctl, unique, Watcher, PATIENCE};

/// Answers `POST /v1/issues` 400 while `refuse` is set, else keeps the issues.
fn curator_stand_in(refuse: Arc<AtomicBool>, got: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let (refuse, got) = (refuse.clone(), got.clone());
        App::new().route(
            "/v1/issues",
            web::post().to(move |batch: web::Json<Vec<Value>>| {
                let (refuse, got) = (refuse.clone(), got.clone());
                async move {
                    if refuse.load(Ordering::SeqCst) {
                        return HttpResponse::BadRequest()
                            .json(serde_json::json!({"error": "invalid_field", "message": "subject: too long"}));
                    }
                    got.lock().unwrap().extend(batch.into_inner());
                    HttpResponse::Ok().json(serde_json::json!({"received": 1}))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .unwrap()
    .run();
    obs_core::actix_web::rt::spawn(server);
    format!("http://127.0.0.1:{port}")
}

#[actix_web::test]
async fn a_refused_issue_is_listed_and_replayed_once_the_curator_takes_it() {
    let refuse = Arc::new(AtomicBool::new(true));
    let got = Arc::new(Mutex::new(Vec::new()));
    let curator = curator_stand_in(refuse.clone(), got.clone());
    let watcher = Watcher::start_with(&[("CURATOR_URL", &curator)]).await;
    let service = unique("refused");
    obsctl(
        &watcher.url,
        &["heartbeat", &service, "--timeout-seconds", "0.3", "--quiet"],
    )
    .await
    .ok();

    // The down issue was refused: the watcher keeps it, and obsctl shows it.
    let listed = eventually("the refused issue listed", PATIENCE, || async {
        let run = obsctl(&watcher.url, &["dead-letters", "list", "--role", "watcher"]).await;
        run.ok()
            .contains("watcher → curator")
            .then(|| run.ok().to_string())
    })
    .await;
    assert!(listed.contains("watcher → curator"), "{listed}");
    assert!(listed.contains("refused: 400"), "{listed}");
    let page: Value = obsctl(
        &watcher.url,
        &[
            "--json",
            "dead-letters",
            "list",
            "--role",
            "watcher",
            "--destination",
            "curator",
        ],
    )
    .await
    .json();
    let letter = &page["watcher"]["dead_letters"][0];
    assert_eq!(letter["record"]["service"], service.as_str(), "{page}");
    let seq = letter["seq"].as_i64().unwrap().to_string();
    assert!(got.lock().unwrap().is_empty());

    // Fixed: replayed, delivered, gone from the list.
    refuse.store(false, Ordering::SeqCst);
    let replayed = obsctl(
        &watcher.url,
        &["dead-letters", "replay", "--role", "watcher", "--seq", &seq],
    )
    .await;
    assert!(
        replayed.ok().contains("1 dead letter(s) put back"),
        "{}",
        replayed.ok()
    );
    eventually("the replayed issue delivered", PATIENCE, || async {
        got.lock()
            .unwrap()
            .iter()
            .any(|issue| issue["service"] == service.as_str())
            .then_some(())
    })
    .await;
    let after = obsctl(&watcher.url, &["dead-letters", "list", "--role", "watcher"]).await;
    assert!(after.ok().contains("no dead letters"), "{}", after.ok());
}
