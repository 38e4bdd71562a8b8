//! The outbox against a real HTTP receiver that goes down, comes back, and refuses bad
//! records; against its own restarts; and with several replicas on one PostgreSQL.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use obs_core::actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use obs_core::db::Schema;
use obs_core::{CoreConfig, Outbox, Role, RoleContext, Service};
use obs_testkit::{eventually, promtool_check_metrics, TestApp};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Unavailable,
    /// Accepts what `Accept` refuses (a receiver fixed to take it).
    Lenient,
}

#[derive(Default)]
struct Received {
    /// Every record in every accepted batch, redeliveries included.
    all: Vec<Value>,
    batches: usize,
}

/// A receiver like the archivist: accepts JSON arrays, refuses any batch holding a record
/// with `"poison": true` with a 400, and can be told to answer 503.
struct Receiver {
    port: u16,
    mode: Arc<Mutex<Mode>>,
    received: Arc<Mutex<Received>>,
    handle: Option<ServerHandle>,
}

impl Receiver {
    fn start(port: u16, mode: Mode) -> Receiver {
        Self::start_with(port, Arc::new(Mutex::new(mode)), Default::default())
    }

    fn start_with(port: u16, mode: Arc<Mutex<Mode>>, received: Arc<Mutex<Received>>) -> Receiver {
        let (m, r) = (mode.clone(), received.clone());
        let server = HttpServer::new(move || {
            let (mode, received) = (m.clone(), r.clone());
            App::new().route(
                "/v1/records",
                web::post().to(move |batch: web::Json<Vec<Value>>| {
                    let (mode, received) = (mode.clone(), received.clone());
                    async move {
                        if *mode.lock().unwrap() == Mode::Unavailable {
                            return HttpResponse::ServiceUnavailable().finish();
                        }
                        let lenient = *mode.lock().unwrap() == Mode::Lenient;
                        if !lenient && batch.iter().any(|r| r["poison"] == true) {
                            return HttpResponse::BadRequest()
                                .json(json!({"error": "invalid_field", "message": "poison"}));
                        }
                        let mut received = received.lock().unwrap();
                        received.batches += 1;
                        received.all.extend(batch.into_inner());
                        HttpResponse::Created().json(json!({"stored": 0, "duplicates": 0}))
                    }
                }),
            )
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("bind the receiver");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        obs_core::actix_web::rt::spawn(server);
        Receiver {
            port,
            mode,
            received,
            handle: Some(handle),
        }
    }

    async fn stop(&mut self) {
        if let Some(handle) = self.handle.take() {
            handle.stop(false).await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        *self = Self::start_with(self.port, self.mode.clone(), self.received.clone());
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1/records", self.port)
    }

    /// Distinct `n` values received, in first-received order.
    fn distinct(&self) -> Vec<u64> {
        let mut seen = std::collections::BTreeSet::new();
        self.received
            .lock()
            .unwrap()
            .all
            .iter()
            .filter_map(|r| r["n"].as_u64())
            .filter(|n| seen.insert(*n))
            .collect()
    }
}

/// A role whose only work is delivering its outbox.
struct Sender {
    outbox: Outbox,
}

impl Role for Sender {
    fn routes(&self, _cfg: &mut web::ServiceConfig) {}
    fn start(&self, context: &RoleContext) {
        self.outbox.start(context);
    }
}

const NO_TABLES: Schema = Schema {
    component: "sender",
    migrations: &[],
};

async fn start_sender(config: CoreConfig, url: &str) -> (TestApp, Outbox) {
    let service = Service::new(config).unwrap();
    let db = service.open_db(NO_TABLES).await.unwrap();
    let outbox = Outbox::open(&db, &service, "archivist", url).unwrap();
    let app = service
        .bind(Sender {
            outbox: outbox.clone(),
        })
        .await
        .unwrap();
    (TestApp::run(app), outbox)
}

fn records(range: std::ops::Range<u64>) -> Vec<Value> {
    range
        .map(|n| json!({"id": format!("rec-{n}"), "n": n}))
        .collect()
}

fn fast_retries(config: &mut CoreConfig) {
    config.outbox.max_retry_delay = Duration::from_millis(400);
}

async fn metric(app: &TestApp, series: &str) -> f64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

async fn wait_delivered(receiver: &Receiver, want: &[u64]) {
    eventually(
        "every record to arrive",
        Duration::from_secs(20),
        || async {
            let mut got = receiver.distinct();
            got.sort_unstable();
            (got == want).then_some(())
        },
    )
    .await;
}

#[actix_web::test]
async fn records_wait_out_an_unavailable_receiver_and_arrive_in_order() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config, &receiver.url()).await;

    for chunk in 0..5 {
        outbox
            .push(&records(chunk * 50..chunk * 50 + 50))
            .await
            .unwrap();
    }
    assert_eq!(outbox.count_pending().await.unwrap(), 250);
    eventually(
        "retries while the receiver answers 503",
        Duration::from_secs(10),
        || async {
            (metric(&app, r#"outbox_retries_total{destination="archivist"}"#).await >= 2.0)
                .then_some(())
        },
    )
    .await;
    eventually("the pending gauge", Duration::from_secs(5), || async {
        (metric(&app, r#"outbox_pending{destination="archivist"}"#).await == 250.0).then_some(())
    })
    .await;

    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &(0..250).collect::<Vec<_>>()).await;
    assert_eq!(
        receiver.distinct(),
        (0..250).collect::<Vec<_>>(),
        "oldest first"
    );
    assert!(
        receiver.received.lock().unwrap().batches >= 3,
        "batches of at most 100"
    );
    eventually("the gauges to settle", Duration::from_secs(5), || async {
        (metric(&app, r#"outbox_pending{destination="archivist"}"#).await == 0.0).then_some(())
    })
    .await;
    assert_eq!(
        metric(&app, r#"outbox_delivered_total{destination="archivist"}"#).await,
        250.0
    );
    assert_eq!(outbox.count_pending().await.unwrap(), 0);
    let text = app.get("/metrics").await.text().await.unwrap();
    promtool_check_metrics(&text).unwrap();
}

#[actix_web::test]
async fn a_receiver_that_is_gone_then_back_gets_everything() {
    let mut receiver = Receiver::start(0, Mode::Accept);
    receiver.stop().await;
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    let pushes = (0..20).map(|i| {
        let outbox = outbox.clone();
        async move { outbox.push(&records(i * 10..i * 10 + 10)).await }
    });
    for pushed in futures_util::future::join_all(pushes).await {
        pushed.expect("concurrent pushes are all persisted");
    }
    assert_eq!(outbox.count_pending().await.unwrap(), 200);
    eventually(
        "connection failures counted as retries",
        Duration::from_secs(10),
        || async {
            (metric(&app, r#"outbox_retries_total{destination="archivist"}"#).await >= 1.0)
                .then_some(())
        },
    )
    .await;
    receiver.restart().await;
    wait_delivered(&receiver, &(0..200).collect::<Vec<_>>()).await;
    app.shutdown().await.unwrap();
}

#[actix_web::test]
async fn pending_records_survive_the_senders_restart() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    outbox.push(&records(0..30)).await.unwrap();
    app.shutdown().await.unwrap();
    drop(outbox);

    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    assert_eq!(
        outbox.count_pending().await.unwrap(),
        30,
        "everything persisted before the restart is back"
    );
    outbox.push(&records(30..35)).await.unwrap();
    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &(0..35).collect::<Vec<_>>()).await;
    app.shutdown().await.unwrap();
    drop(outbox);

    // Delivered records are not delivered again after another restart.
    let before = receiver.received.lock().unwrap().all.len();
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    assert_eq!(outbox.count_pending().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.shutdown().await.unwrap();
    assert_eq!(receiver.received.lock().unwrap().all.len(), before);
}

#[actix_web::test]
async fn the_queue_is_bounded_and_drops_the_oldest() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    config.outbox.max_records = 10;
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    for n in 0..25 {
        outbox.push(&records(n..n + 1)).await.unwrap();
    }
    eventually(
        "the bound to be enforced",
        Duration::from_secs(5),
        || async { (outbox.count_pending().await.unwrap() == 10).then_some(()) },
    )
    .await;
    assert_eq!(
        metric(
            &app,
            r#"outbox_dropped_total{destination="archivist",reason="overflow"}"#
        )
        .await,
        15.0
    );
    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &(15..25).collect::<Vec<_>>()).await;
}

#[actix_web::test]
async fn a_rejected_record_is_isolated_and_the_rest_delivered() {
    let receiver = Receiver::start(0, Mode::Accept);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    let mut batch = records(0..40);
    batch[17]["poison"] = json!(true);
    outbox.push(&batch).await.unwrap();
    let want: Vec<u64> = (0..40).filter(|n| *n != 17).collect();
    wait_delivered(&receiver, &want).await;
    eventually(
        "the poison record to be counted as rejected",
        Duration::from_secs(5),
        || async {
            let dropped = metric(
                &app,
                r#"outbox_dropped_total{destination="archivist",reason="rejected"}"#,
            )
            .await;
            (dropped == 1.0).then_some(())
        },
    )
    .await;
    // The receiver has every good record; the sender settles a batch a moment after its answer.
    eventually("nothing pending", Duration::from_secs(5), || async {
        (outbox.count_pending().await.unwrap() == 0).then_some(())
    })
    .await;
}

/// What an external receiver (a chat webhook) saw: each request's body and whether it
/// carried an Authorization header.
type Hooked = Arc<Mutex<Vec<(Value, bool)>>>;

/// A webhook that takes one JSON object per request, refuses arrays and `"poison"` with a
/// 400, and answers 503 to its first `failures` requests.
fn start_webhook(failures: usize) -> (String, Hooked, ServerHandle) {
    let hooked: Hooked = Arc::default();
    let refused = Arc::new(Mutex::new(0usize));
    let (h, r) = (hooked.clone(), refused.clone());
    let server = HttpServer::new(move || {
        let (hooked, refused) = (h.clone(), r.clone());
        App::new().route(
            "/hook",
            web::post().to(
                move |request: obs_core::actix_web::HttpRequest, body: web::Json<Value>| {
                    let (hooked, refused) = (hooked.clone(), refused.clone());
                    async move {
                        {
                            let mut refused = refused.lock().unwrap();
                            if *refused < failures {
                                *refused += 1;
                                return HttpResponse::ServiceUnavailable().finish();
                            }
                        }
                        if !body.is_object() || body["poison"] == true {
                            return HttpResponse::BadRequest().body("invalid_payload");
                        }
                        let authorized = request.headers().contains_key("authorization");
                        hooked.lock().unwrap().push((body.into_inner(), authorized));
                        HttpResponse::Ok().body("ok")
                    }
                },
            ),
        )
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind the webhook");
    let port = server.addrs()[0].port();
    let server = server.run();
    let handle = server.handle();
    obs_core::actix_web::rt::spawn(server);
    (format!("http://127.0.0.1:{port}/hook"), hooked, handle)
}

#[actix_web::test]
async fn an_external_receiver_gets_one_object_per_request_and_no_token() {
    let (url, hooked, handle) = start_webhook(3);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    config.api_token = Some("fleet-secret".into());
    let service = Service::new(config).unwrap();
    let db = service.open_db(NO_TABLES).await.unwrap();
    let outbox = Outbox::open_with(
        &db,
        &service,
        "webhook",
        &url,
        obs_core::OutboxOptions::external(),
    )
    .unwrap();
    let app = TestApp::run(
        service
            .bind(Sender {
                outbox: outbox.clone(),
            })
            .await
            .unwrap(),
    );
    let mut messages = records(0..6);
    messages[2]["poison"] = json!(true);
    outbox.push(&messages).await.unwrap();
    let want: Vec<u64> = vec![0, 1, 3, 4, 5];
    let got = eventually(
        "every good message, each alone",
        Duration::from_secs(20),
        || async {
            let got: Vec<u64> = hooked
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(body, _)| body["n"].as_u64())
                .collect();
            (got.len() >= want.len()).then_some(got)
        },
    )
    .await;
    assert_eq!(got, want, "in order, the refused one dropped alone");
    assert!(
        hooked
            .lock()
            .unwrap()
            .iter()
            .all(|(_, authorized)| !authorized),
        "the fleet's token never leaves the fleet"
    );
    assert!(metric(&app, r#"outbox_retries_total{destination="webhook"}"#).await >= 3.0);
    assert_eq!(
        metric(
            &app,
            r#"outbox_dropped_total{destination="webhook",reason="rejected"}"#
        )
        .await,
        1.0
    );
    handle.stop(false).await;
}

#[actix_web::test]
async fn the_queue_is_bounded_in_bytes_too() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, _state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    config.outbox.max_bytes = 64 * 1024;
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    let padding = "x".repeat(1000);
    for n in 0..100u64 {
        outbox
            .push(&[json!({"id": format!("rec-{n}"), "n": n, "padding": padding})])
            .await
            .unwrap();
    }
    let pending = eventually("the byte bound", Duration::from_secs(5), || async {
        let pending = outbox.count_pending().await.unwrap();
        (pending <= 64).then_some(pending)
    })
    .await;
    assert!(
        (55..=64).contains(&pending),
        "about 64 KiB of ~1 KiB records: {pending}"
    );
    let dropped = metric(
        &app,
        r#"outbox_dropped_total{destination="archivist",reason="overflow"}"#,
    )
    .await;
    assert_eq!(dropped as usize, 100 - pending);
    receiver.set(Mode::Accept);
    let first_kept = 100 - pending as u64;
    wait_delivered(&receiver, &(first_kept..100).collect::<Vec<_>>()).await;
}

/// A record staged in a transaction that fails is never sent; one staged in a transaction
/// that commits is.
#[actix_web::test]
async fn a_staged_record_goes_out_only_if_its_transaction_commits() {
    let receiver = Receiver::start(0, Mode::Accept);
    let (config, _state) = obs_testkit::test_config("sender");
    let service = Service::new(config).unwrap();
    let db = service.open_db(NO_TABLES).await.unwrap();
    let outbox = Outbox::open(&db, &service, "archivist", &receiver.url()).unwrap();
    let app = TestApp::run(
        service
            .bind(Sender {
                outbox: outbox.clone(),
            })
            .await
            .unwrap(),
    );
    let staging = outbox.clone();
    let failed: anyhow::Result<()> = db
        .write(move |tx| {
            staging.stage(tx, &records(0..3))?;
            anyhow::bail!("the state change was refused")
        })
        .await;
    assert!(failed.is_err());
    let staging = outbox.clone();
    db.write(move |tx| staging.stage(tx, &records(3..5)))
        .await
        .unwrap();
    outbox.wake();
    wait_delivered(&receiver, &[3, 4]).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.distinct(), vec![3, 4]);
    app.shutdown().await.unwrap();
}

/// Three replicas of one role on one PostgreSQL, each pushing and each delivering: every
/// record arrives, none twice (each batch is claimed by one replica).
#[actix_web::test]
async fn replicas_on_one_database_deliver_every_record_once() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let url = obs_testkit::postgres::shared().create_database().unwrap();
    let mut replicas = Vec::new();
    let mut folders = Vec::new();
    for _ in 0..3 {
        let (mut config, state) = obs_testkit::test_config("sender");
        fast_retries(&mut config);
        config.database_url = Some(url.clone());
        replicas.push(start_sender(config, &receiver.url()).await);
        folders.push(state);
    }
    for (index, (_, outbox)) in replicas.iter().enumerate() {
        let base = index as u64 * 100;
        for chunk in 0..4 {
            outbox
                .push(&records(base + chunk * 25..base + chunk * 25 + 25))
                .await
                .unwrap();
        }
    }
    assert_eq!(replicas[0].1.count_pending().await.unwrap(), 300);
    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &(0..300).collect::<Vec<_>>()).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let all = receiver.received.lock().unwrap().all.len();
    assert_eq!(all, 300, "no record delivered twice");
    for (app, _) in replicas {
        app.shutdown().await.unwrap();
    }
}

/// Roles sharing one database (PostgreSQL) keep their own queues for the same destination.
#[actix_web::test]
async fn roles_sharing_one_database_keep_their_own_queues() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let url = obs_testkit::postgres::shared().create_database().unwrap();
    let (_, state) = obs_testkit::test_config("unused");
    let mut watcher_config = CoreConfig::for_tests("watcher", state.path());
    watcher_config.database_url = Some(url.clone());
    fast_retries(&mut watcher_config);
    let mut curator_config = CoreConfig::for_tests("curator", state.path());
    curator_config.database_url = Some(url);
    fast_retries(&mut curator_config);
    let (_watcher, watcher_outbox) = start_sender(watcher_config, &receiver.url()).await;
    let (_curator, curator_outbox) = start_sender(curator_config, &receiver.url()).await;
    watcher_outbox.push(&records(0..5)).await.unwrap();
    curator_outbox.push(&records(5..12)).await.unwrap();
    assert_eq!(watcher_outbox.count_pending().await.unwrap(), 5);
    assert_eq!(curator_outbox.count_pending().await.unwrap(), 7);
    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &(0..12).collect::<Vec<_>>()).await;
}

/// A queue the file-based version left (STATE_DIR/outbox/<role>/<destination>: `queue.log`
/// and `cursor`) is imported once at start, undelivered records only, then moved aside.
#[actix_web::test]
async fn a_queue_left_by_the_file_based_version_is_imported_once() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let legacy = state.path().join("outbox/sender/archivist");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(
        legacy.join("queue.log"),
        "1\t{\"id\":\"rec-100\",\"n\":100}\n2\t{\"id\":\"rec-101\",\"n\":101}\n3\t{\"id\":\"rec-102\",\"n\":102}\n4\t{\"id\":\"torn",
    )
    .unwrap();
    std::fs::write(legacy.join("cursor"), "1").unwrap();
    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    assert_eq!(
        outbox.count_pending().await.unwrap(),
        2,
        "records above the cursor; the torn last line was never acknowledged"
    );
    assert!(!state.path().join("outbox/sender").exists());
    assert!(state.path().join("outbox/sender.imported").is_dir());
    app.shutdown().await.unwrap();
    drop(outbox);
    let (_app, outbox) = start_sender(config, &receiver.url()).await;
    assert_eq!(outbox.count_pending().await.unwrap(), 2, "imported once");
    receiver.set(Mode::Accept);
    wait_delivered(&receiver, &[101, 102]).await;
}

/// A damaged line in the middle of an old queue stops the role, naming the file: it is not
/// imported in part, nor skipped in silence.
#[actix_web::test]
async fn a_damaged_old_queue_stops_the_role_naming_it() {
    let (config, state) = obs_testkit::test_config("sender");
    let legacy = state.path().join("outbox/sender/archivist");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(
        legacy.join("queue.log"),
        b"1\t{\"id\":\"a\"}\n2\t\xff\xfe\xfd\xfc\n3\t{\"id\":\"b\"}\n".as_slice(),
    )
    .unwrap();
    let service = Service::new(config).unwrap();
    let error = service.open_db(NO_TABLES).await.unwrap_err();
    let line = format!("{error:#}");
    assert!(
        line.contains(&legacy.join("queue.log").display().to_string()) && line.contains("line 2"),
        "{line}"
    );
    assert!(legacy.join("queue.log").is_file(), "left in place");
}

/// A cursor past the end of an old queue's log is not believed (it would drop every record
/// in silence): the role stops, naming it.
#[actix_web::test]
async fn an_old_queue_whose_cursor_is_past_its_end_stops_the_role() {
    let (config, state) = obs_testkit::test_config("sender");
    let legacy = state.path().join("outbox/sender/archivist");
    std::fs::create_dir_all(&legacy).unwrap();
    let lines: String = (1..=300)
        .map(|n| format!("{n}\t{{\"id\":\"rec-{n}\"}}\n"))
        .collect();
    std::fs::write(legacy.join("queue.log"), lines).unwrap();
    std::fs::write(legacy.join("cursor"), "900").unwrap();
    let service = Service::new(config).unwrap();
    let error = service.open_db(NO_TABLES).await.unwrap_err();
    let line = format!("{error:#}");
    assert!(
        line.contains(&legacy.join("cursor").display().to_string())
            && line.contains("past the end"),
        "{line}"
    );
}

/// GET with the bearer token `token`, as JSON.
async fn get_with(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app.client.get(app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn replay(app: &TestApp, body: &str, token: Option<&str>) -> (u16, Value) {
    let mut request = app
        .client
        .post(app.url("/v1/dead-letters/replay"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[actix_web::test]
async fn a_rejected_record_is_listed_and_replayed_once_the_receiver_takes_it() {
    const TOKEN: &str = "t0ken";
    let receiver = Receiver::start(0, Mode::Accept);
    let (mut config, _state) = obs_testkit::test_config("sender");
    config.api_token = Some(TOKEN.into());
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config, &receiver.url()).await;
    let mut batch = records(0..5);
    batch[2]["poison"] = json!(true);
    batch[2]["password"] = json!("hunter2");
    outbox.push(&batch).await.unwrap();
    wait_delivered(&receiver, &[0, 1, 3, 4]).await;

    let page = eventually(
        "the refused record listed",
        Duration::from_secs(10),
        || async {
            let (status, page) = get_with(&app, "/v1/dead-letters", Some(TOKEN)).await;
            assert_eq!(status, 200, "{page}");
            (page["dead_letters"].as_array().unwrap().len() == 1).then_some(page)
        },
    )
    .await;
    let letter = &page["dead_letters"][0];
    assert_eq!(letter["destination"], "archivist");
    assert_eq!(letter["record"]["n"], 2);
    assert!(
        letter["reason"].as_str().unwrap().starts_with("400"),
        "{letter}"
    );
    assert!(letter["failed_at"].is_string());
    assert_eq!(page["next"], Value::Null);
    // A record may hold secrets: reading it needs the token, and so does replaying.
    let (status, error) = get_with(&app, "/v1/dead-letters", None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = replay(&app, "{}", None).await;
    assert_eq!(status, 401);
    // Bad input: a clear JSON error naming the field, nothing replayed.
    for (path, field) in [
        ("/v1/dead-letters?limit=0", "limit"),
        ("/v1/dead-letters?limit=1001", "limit"),
        ("/v1/dead-letters?after=x", "after"),
        ("/v1/dead-letters?destination=a%20b", "destination"),
    ] {
        let (status, error) = get_with(&app, path, Some(TOKEN)).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert!(
            error["message"].as_str().unwrap().starts_with(field),
            "{path}: {error}"
        );
    }
    for body in [
        r#"{"seq": []}"#,
        r#"{"other": 1}"#,
        "not json",
        r#"{"seq": ["x"]}"#,
    ] {
        let (status, error) = replay(&app, body, Some(TOKEN)).await;
        assert_eq!(status, 400, "{body}: {error}");
    }

    // Replayed while the receiver still refuses it: it comes back to the dead letters.
    let (status, replayed) = replay(&app, r#"{"destination": "archivist"}"#, Some(TOKEN)).await;
    assert_eq!(
        (status, replayed["replayed"].as_u64()),
        (200, Some(1)),
        "{replayed}"
    );
    let again = eventually("refused again", Duration::from_secs(10), || async {
        let (_, page) = get_with(&app, "/v1/dead-letters", Some(TOKEN)).await;
        (page["dead_letters"].as_array().unwrap().len() == 1).then_some(page)
    })
    .await;
    let seq = again["dead_letters"][0]["seq"].as_i64().unwrap();

    // Fixed: replayed by its seq, delivered, and no longer a dead letter.
    receiver.set(Mode::Lenient);
    let (status, replayed) = replay(&app, &format!(r#"{{"seq": [{seq}]}}"#), Some(TOKEN)).await;
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(
        (
            replayed["replayed"].as_u64(),
            replayed["remaining"].as_u64()
        ),
        (Some(1), Some(0))
    );
    wait_delivered(&receiver, &[0, 1, 2, 3, 4]).await;
    let (_, page) = get_with(&app, "/v1/dead-letters", Some(TOKEN)).await;
    assert_eq!(page["dead_letters"], json!([]));
    // The receiver has it; the sender settles the batch a moment after its answer.
    eventually("nothing pending", Duration::from_secs(5), || async {
        (outbox.count_pending().await.unwrap() == 0).then_some(())
    })
    .await;
}
