//! The outbox against a real HTTP receiver that goes down, comes back, and refuses bad
//! records; and against its own restarts and torn writes.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use obs_core::actix_web::{dev::ServerHandle, web, App, HttpResponse, HttpServer};
use obs_core::{CoreConfig, Outbox, Role, RoleContext, Service};
use obs_testkit::{eventually, promtool_check_metrics, TestApp};
use serde_json::{json, Value};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Accept,
    Unavailable,
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
                        if batch.iter().any(|r| r["poison"] == true) {
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

async fn start_sender(config: CoreConfig, url: &str) -> (TestApp, Outbox) {
    let service = Service::new(config).unwrap();
    let outbox = Outbox::open(&service, "archivist", url).unwrap();
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
    assert_eq!(outbox.pending(), 250);
    eventually(
        "retries while the receiver answers 503",
        Duration::from_secs(10),
        || async {
            (metric(&app, r#"outbox_retries_total{destination="archivist"}"#).await >= 2.0)
                .then_some(())
        },
    )
    .await;
    assert_eq!(
        metric(&app, r#"outbox_pending{destination="archivist"}"#).await,
        250.0
    );

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
    assert_eq!(outbox.pending(), 0);
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
    assert_eq!(outbox.pending(), 200);
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
async fn pending_records_survive_the_senders_restart_and_a_torn_write() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    outbox.push(&records(0..30)).await.unwrap();
    app.shutdown().await.unwrap();
    drop(outbox);

    // A crash mid-append leaves a line without its newline; it was never acknowledged.
    let log = state.path().join("outbox/sender/archivist/queue.log");
    let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    std::io::Write::write_all(&mut file, b"31\t{\"id\":\"torn").unwrap();
    drop(file);

    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    assert_eq!(
        outbox.pending(),
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
    assert_eq!(outbox.pending(), 0);
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
    assert_eq!(outbox.pending(), 10);
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
    assert_eq!(outbox.pending(), 0);
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
    let outbox = Outbox::open_with(
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
    let pending = outbox.pending();
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

/// A whole line the disk damaged costs that record only: the acknowledged records after it
/// are still delivered.
#[actix_web::test]
async fn a_damaged_line_in_the_middle_of_the_log_costs_only_itself() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (mut config, state) = obs_testkit::test_config("sender");
    fast_retries(&mut config);
    let (app, outbox) = start_sender(config.clone(), &receiver.url()).await;
    outbox.push(&records(0..10)).await.unwrap();
    app.shutdown().await.unwrap();
    drop(outbox);

    let log = state.path().join("outbox/sender/archivist/queue.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let damaged: String = text
        .lines()
        .map(|line| {
            if line.contains("\"rec-5\"") {
                "6?\t{\"id\":\u{0}garbage".to_string()
            } else {
                line.to_string()
            }
        })
        .map(|line| line + "\n")
        .collect();
    std::fs::write(&log, damaged).unwrap();

    let (_app, outbox) = start_sender(config, &receiver.url()).await;
    assert_eq!(outbox.pending(), 9);
    outbox.push(&records(10..12)).await.unwrap();
    receiver.set(Mode::Accept);
    let want: Vec<u64> = (0..12).filter(|n| *n != 5).collect();
    wait_delivered(&receiver, &want).await;
}

/// Two outboxes on one folder (two processes, or two roles sharing a STATE_DIR) would append
/// to one log; the second is refused, saying why.
#[actix_web::test]
async fn a_second_outbox_on_the_same_folder_is_refused() {
    let (config, _state) = obs_testkit::test_config("sender");
    let service = Service::new(config.clone()).unwrap();
    let _first = Outbox::open(&service, "archivist", "http://127.0.0.1:9/v1/records").unwrap();
    let other = Service::new(config).unwrap();
    let error = Outbox::open(&other, "archivist", "http://127.0.0.1:9/v1/records")
        .err()
        .expect("refused");
    assert!(format!("{error:#}").contains("in use"), "{error:#}");
}

/// Roles sharing one STATE_DIR each have their own queue for the same destination; a queue
/// an earlier version kept at STATE_DIR/outbox/<destination> is taken over, records and all.
#[actix_web::test]
async fn roles_sharing_a_state_dir_keep_their_own_queues_and_old_queues_move_in() {
    let receiver = Receiver::start(0, Mode::Unavailable);
    let (_, state) = obs_testkit::test_config("unused");
    let legacy = state.path().join("outbox/archivist");
    std::fs::create_dir_all(&legacy).unwrap();
    std::fs::write(
        legacy.join("queue.log"),
        "1\t{\"id\":\"rec-100\",\"n\":100}\n2\t{\"id\":\"rec-101\",\"n\":101}\n",
    )
    .unwrap();

    let mut watcher_config = CoreConfig::for_tests("watcher", state.path());
    fast_retries(&mut watcher_config);
    let mut curator_config = CoreConfig::for_tests("curator", state.path());
    fast_retries(&mut curator_config);
    let (_watcher, watcher_outbox) = start_sender(watcher_config, &receiver.url()).await;
    let (_curator, curator_outbox) = start_sender(curator_config, &receiver.url()).await;
    assert_eq!(
        watcher_outbox.pending(),
        2,
        "the old queue moved to the first role to open it"
    );
    assert!(!legacy.exists());
    assert!(state
        .path()
        .join("outbox/watcher/archivist/queue.log")
        .is_file());
    watcher_outbox.push(&records(0..5)).await.unwrap();
    curator_outbox.push(&records(5..10)).await.unwrap();
    assert_eq!(watcher_outbox.pending(), 7);
    assert_eq!(curator_outbox.pending(), 5);
    receiver.set(Mode::Accept);
    let mut want: Vec<u64> = (0..10).collect();
    want.extend([100, 101]);
    wait_delivered(&receiver, &want).await;
}
