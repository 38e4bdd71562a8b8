//! The commit path (DESIGN §9) on both backends: a failed commit stores nothing and the
//! sender's retry is applied and notified once; PostgreSQL shared by pods with empty disks;
//! two replicas on one database sending each webhook exactly one notification per incident
//! revision; the previous version's state file imported once.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use obs_core::db::{Db, Location};
use obs_core::{CoreConfig, Service};
use obs_model::{IncidentChange, Plan, Severity};
use obs_testkit::{eventually, TestApp};
use serde_json::{json, Value};
use synthesizer::config::{Webhook, WebhookKind};
use synthesizer::plans::{Notice, Saved};
use synthesizer::{Synthesizer, SynthesizerConfig};

use crate::helpers::*;

fn notifying(hook: &Hook) -> SynthesizerConfig {
    let mut settings = SynthesizerConfig::for_tests();
    settings.webhooks = vec![Webhook {
        kind: WebhookKind::Generic,
        url: hook.url(),
    }];
    settings.notify_group = Duration::from_millis(200);
    settings
}

/// Where the synthesizer keeps its state for a test.
enum Backend {
    /// STATE_DIR/synthesizer.db
    Sqlite,
    /// A fresh database on the shared test server.
    Postgres(String),
}

impl Backend {
    fn postgres() -> Backend {
        Backend::Postgres(
            obs_testkit::postgres::shared()
                .create_database()
                .expect("a test database"),
        )
    }

    fn config(&self, state_dir: &Path) -> CoreConfig {
        let mut config = CoreConfig::for_tests("synthesizer", state_dir);
        config.outbox.max_retry_delay = Duration::from_millis(300);
        if let Backend::Postgres(url) = self {
            config.database_url = Some(url.clone());
        }
        config
    }

    async fn spawn(&self, state_dir: &Path, settings: SynthesizerConfig) -> TestApp {
        spawn_with(self.config(state_dir), settings).await
    }

    /// Make every write of a plan fail in the database itself (as a full disk would), or
    /// stop doing so.
    async fn fail_plan_writes(&self, state_dir: &Path, fail: bool) {
        self.fail_writes(state_dir, "synthesizer_plans", fail).await;
    }

    /// Make every insert into `table` fail in the database itself, or stop doing so.
    async fn fail_writes(&self, state_dir: &Path, table: &str, fail: bool) {
        match self {
            Backend::Sqlite => {
                let db = Db::open(
                    &Location::Sqlite(state_dir.join("synthesizer.db")),
                    synthesizer::store::SCHEMA,
                )
                .await
                .expect("a second connection to the synthesizer's database");
                let sql = if fail {
                    format!(
                        "CREATE TRIGGER test_fault BEFORE INSERT ON {table} \
                         BEGIN SELECT RAISE(FAIL, 'disk full'); END"
                    )
                } else {
                    "DROP TRIGGER test_fault".to_string()
                };
                db.write(move |tx| tx.execute(&sql, &[]))
                    .await
                    .expect("the fault is set");
            }
            Backend::Postgres(url) => {
                let database = url.rsplit('/').next().expect("a database name");
                let sql = if fail {
                    format!(
                        "CREATE FUNCTION test_fault() RETURNS trigger LANGUAGE plpgsql AS \
                         $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
                         CREATE TRIGGER test_fault BEFORE INSERT ON {table} \
                         FOR EACH ROW EXECUTE FUNCTION test_fault();"
                    )
                } else {
                    format!("DROP TRIGGER test_fault ON {table}; DROP FUNCTION test_fault();")
                };
                obs_testkit::postgres::shared()
                    .psql(database, &sql)
                    .expect("the fault is set");
            }
        }
    }
}

/// (incident id, incident revision, change) of every change in every generic message.
fn notified(messages: &[Value]) -> Vec<(String, u64, String)> {
    messages
        .iter()
        .flat_map(|message| {
            message["changes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .map(|change| {
                    (
                        change["incident"]["id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                        change["incident"]["revision"].as_u64().unwrap_or_default(),
                        change["change"].as_str().unwrap_or_default().to_string(),
                    )
                })
        })
        .collect()
}

/// The found bug: the synthesizer applied a batch in memory, answered 500 when saving
/// failed, then answered the planner's retry `stale`, so the webhook never heard. Now a
/// failed commit is 503 saying nothing was stored, and the retry is applied and notified
/// exactly once, and survives a restart.
async fn a_failed_commit_stores_nothing_and_the_retry_is_notified_once(backend: Backend) {
    let hook = Hook::start();
    let state = tempfile::tempdir().unwrap();
    let app = backend.spawn(state.path(), notifying(&hook)).await;
    let api = plan("api", "api-1 crashed", Severity::Critical);

    backend.fail_plan_writes(state.path(), true).await;
    let (status, body) = post(&app, "/v1/plans", &json!([api])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("nothing was stored"), "{message}");
    assert!(message.contains("disk full"), "{message}");
    let (status, _) = get(&app, &format!("/v1/plans/{}", api.id)).await;
    assert_eq!(status, 404, "a failed commit stores nothing");
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "synthesizer_state_save_failures_total"),
        Some(1.0)
    );

    backend.fail_plan_writes(state.path(), false).await;
    let tally = post_plans(&app, std::slice::from_ref(&api)).await;
    assert_eq!(
        (&tally["stored"], &tally["stale"], &tally["notify"]),
        (&json!(1), &json!(0), &json!(1)),
        "the retry is applied as the first copy: {tally}"
    );
    let messages = hook.wait_for(1).await;
    assert_eq!(
        notified(&messages),
        [(api.incident.id.to_string(), 1, "opened".to_string())]
    );
    // The planner's outbox may send it once more: stale, and no second message.
    let tally = post_plans(&app, std::slice::from_ref(&api)).await;
    assert_eq!((&tally["stale"], &tally["notify"]), (&json!(1), &json!(0)));

    app.shutdown().await.unwrap();
    let app = backend.spawn(state.path(), notifying(&hook)).await;
    let (status, held) = get(&app, &format!("/v1/plans/{}", api.id)).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["incident"]["title"], "api-1 crashed");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.messages().len(), 1, "{:#?}", hook.messages());
}

#[actix_web::test]
async fn a_failed_commit_stores_nothing_and_the_retry_is_notified_once_on_sqlite() {
    a_failed_commit_stores_nothing_and_the_retry_is_notified_once(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_failed_commit_stores_nothing_and_the_retry_is_notified_once_on_postgres() {
    a_failed_commit_stores_nothing_and_the_retry_is_notified_once(Backend::postgres()).await;
}

/// Plans go in, come out, keep their revisions and notify, on PostgreSQL; a new pod with an
/// empty disk finds all of it.
#[actix_web::test]
async fn on_postgres_a_pod_with_an_empty_disk_finds_everything() {
    let backend = Backend::postgres();
    let hook = Hook::start();
    let first_disk = tempfile::tempdir().unwrap();
    let app = backend.spawn(first_disk.path(), notifying(&hook)).await;
    let api = plan("api", "api-1 crashed", Severity::Critical);
    let web = plan("web", "web is slow", Severity::Warning);
    let tally = post_plans(&app, &[api.clone(), web.clone()]).await;
    assert_eq!((&tally["stored"], &tally["notify"]), (&json!(2), &json!(2)));
    let messages = hook.wait_for(1).await;
    assert_eq!(notified(&messages).len(), 2, "{messages:#?}");
    let (_, listed) = get(&app, "/v1/plans?state=open").await;
    assert_eq!(listed["plans"].as_array().unwrap().len(), 2);
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"synthesizer_incidents_open{severity="critical"}"#),
        Some(1.0)
    );
    app.shutdown().await.unwrap();
    drop(first_disk);

    let second_disk = tempfile::tempdir().unwrap();
    let app = backend.spawn(second_disk.path(), notifying(&hook)).await;
    let (status, held) = get(&app, &format!("/v1/plans/{}", api.id)).await;
    assert_eq!(status, 200, "{held}");
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, r#"synthesizer_incidents_open{severity="warning"}"#),
        Some(1.0),
        "the gauge starts from the database"
    );
    let tally = post_plans(&app, &[api.clone(), web.clone()]).await;
    assert_eq!(tally["stale"], 2, "{tally}");
    post_plans(&app, &[changed(&api, IncidentChange::Resolved)]).await;
    let messages = hook.wait_for(2).await;
    assert_eq!(
        notified(&messages[1..]),
        [(api.incident.id.to_string(), 2, "resolved".to_string())]
    );
    let (_, report) = get(&app, "/v1/report").await;
    assert_eq!(report["incidents"][0]["title"], "web is slow");
    let (_, closed) = get(&app, "/v1/plans?state=closed").await;
    assert_eq!(closed["plans"][0]["id"], api.id.to_string());
}

/// Two replicas on one PostgreSQL, each receiving every plan (as if the planner's
/// deliveries were spread and retried across them): what one stored the other shows, and
/// the webhook hears of each incident revision exactly once.
#[actix_web::test]
async fn two_replicas_on_one_postgres_notify_each_incident_revision_once() {
    let backend = Backend::postgres();
    let hook = Hook::start();
    let (disk_a, disk_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = backend.spawn(disk_a.path(), notifying(&hook)).await;
    let b = backend.spawn(disk_b.path(), notifying(&hook)).await;

    let only_a = plan("db", "db is down", Severity::Critical);
    post_plans(&a, std::slice::from_ref(&only_a)).await;
    let (status, held) = get(&b, &format!("/v1/plans/{}", only_a.id)).await;
    assert_eq!(
        status, 200,
        "what one replica stored the other shows: {held}"
    );

    let opened: Vec<Plan> = (0..6)
        .map(|n| {
            plan(
                &format!("svc{n}"),
                &format!("svc{n} crashed"),
                Severity::Critical,
            )
        })
        .collect();
    let resolved: Vec<Plan> = opened
        .iter()
        .map(|p| changed(p, IncidentChange::Resolved))
        .collect();
    for batch in [&opened, &resolved] {
        for plan in batch.iter() {
            let one = std::slice::from_ref(plan);
            let (to_a, to_b) = tokio::join!(post_plans(&a, one), post_plans(&b, one));
            assert_eq!(
                to_a["stored"].as_u64().unwrap() + to_b["stored"].as_u64().unwrap(),
                1,
                "one replica stores it, the other finds it stale: {to_a} {to_b}"
            );
        }
    }

    let expected = 1 + opened.len() + resolved.len();
    eventually(
        "every incident revision notified",
        Duration::from_secs(20),
        || async { (notified(&hook.messages()).len() >= expected).then_some(()) },
    )
    .await;
    // Time for any duplicate to arrive: both replicas group every 200 ms.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let all = notified(&hook.messages());
    let mut counts: HashMap<(String, u64, String), usize> = HashMap::new();
    for key in &all {
        *counts.entry(key.clone()).or_default() += 1;
    }
    assert_eq!(counts.len(), expected, "{all:#?}");
    assert!(counts.values().all(|n| *n == 1), "{all:#?}");
    for plan in opened.iter().chain([&only_a]) {
        let key = (plan.incident.id.to_string(), 1, "opened".to_string());
        assert_eq!(counts.get(&key), Some(&1), "{key:?}");
    }
    for plan in &resolved {
        let key = (plan.incident.id.to_string(), 2, "resolved".to_string());
        assert_eq!(counts.get(&key), Some(&1), "{key:?}");
    }
    let (_, listed) = get(&a, "/v1/plans?state=closed").await;
    assert_eq!(listed["plans"].as_array().unwrap().len(), resolved.len());

    // A replica that read a pending change just before another sent it: its `notified`
    // insert meets the unique key, so it stages nothing for that change.
    let Backend::Postgres(url) = &backend else {
        unreachable!()
    };
    let db = Db::open(&Location::Postgres(url.clone()), synthesizer::store::SCHEMA)
        .await
        .unwrap();
    let again = Notice {
        plan: resolved[0].clone(),
        queued_at: chrono::Utc::now(),
    };
    let incident = again.plan.incident.id.to_string();
    let body = serde_json::to_string(&again).unwrap();
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO synthesizer_pending (incident_id, revision, queued_at, notice) \
             VALUES ($1, 2, $2, $3)",
            &[
                incident.into(),
                obs_core::db::now_millis().into(),
                body.into(),
            ],
        )
    })
    .await
    .unwrap();
    eventually(
        "the copy taken from pending",
        Duration::from_secs(10),
        || async {
            let left = db
                .read(|tx| {
                    tx.query_opt("SELECT COUNT(*) FROM synthesizer_pending", &[])?
                        .map(|row| row.int(0))
                        .transpose()
                })
                .await
                .unwrap();
            (left == Some(0)).then_some(())
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        notified(&hook.messages()).len(),
        expected,
        "nothing sent twice"
    );
}

/// The previous version's STATE_DIR/synthesizer.json: imported once (its plans, its owed
/// revisions, its pending notification, which is then sent), then renamed aside.
#[actix_web::test]
async fn the_legacy_state_file_is_imported_once_then_renamed_aside() {
    let hook = Hook::start();
    let state = tempfile::tempdir().unwrap();
    let api = plan("api", "api-1 crashed", Severity::Critical);
    let web = plan("web", "web is slow", Severity::Warning);
    let saved = Saved {
        plans: vec![api.clone(), web.clone()],
        notified: vec![
            (api.incident.id, 1, chrono::Utc::now()),
            (web.incident.id, 1, chrono::Utc::now()),
        ],
        // web's change was owed and not yet handed to the webhook when the old version
        // stopped; api's had been.
        pending: vec![Notice {
            plan: web.clone(),
            queued_at: chrono::Utc::now(),
        }],
    };
    let file = state.path().join("synthesizer.json");
    std::fs::write(&file, serde_json::to_vec(&saved).unwrap()).unwrap();

    let app = Backend::Sqlite.spawn(state.path(), notifying(&hook)).await;
    assert!(!file.exists(), "the file is renamed aside");
    assert!(state.path().join("synthesizer.json.imported").exists());
    for held in [&api, &web] {
        let (status, body) = get(&app, &format!("/v1/plans/{}", held.id)).await;
        assert_eq!(status, 200, "{body}");
    }
    let messages = hook.wait_for(1).await;
    assert_eq!(
        notified(&messages),
        [(web.incident.id.to_string(), 1, "opened".to_string())]
    );
    // What the file said was notified stays notified; its revisions still rule.
    let tally = post_plans(&app, &[api.clone(), web.clone()]).await;
    assert_eq!(tally["stale"], 2, "{tally}");

    app.shutdown().await.unwrap();
    let app = Backend::Sqlite.spawn(state.path(), notifying(&hook)).await;
    let (_, listed) = get(&app, "/v1/plans").await;
    assert_eq!(listed["plans"].as_array().unwrap().len(), 2);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.messages().len(), 1, "imported once, sent once");
}

#[actix_web::test]
async fn an_unparsable_legacy_state_file_stops_the_role_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("synthesizer.json");
    std::fs::write(&file, b"{\"plans\": [ torn").unwrap();
    let settings = SynthesizerConfig::for_tests();
    let started = TestApp::spawn(
        Backend::Sqlite.config(state.path()),
        async move |service: &Service| Synthesizer::with_config(service, settings).await,
    )
    .await;
    let Err(error) = started else {
        panic!("the synthesizer started over a state file it could not read");
    };
    let line = format!("{error:#}");
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert!(!line.contains('\n'), "one line: {line}");
    assert!(file.exists(), "the file is left where it was");
    assert!(!state.path().join("synthesizer.json.imported").exists());
}

/// A change waiting for its group window when the synthesizer stops is in the database, not
/// in memory: the next start sends it, once.
#[actix_web::test]
async fn a_change_waiting_for_its_group_survives_a_stop() {
    let hook = Hook::start();
    let state = tempfile::tempdir().unwrap();
    let mut settings = notifying(&hook);
    settings.notify_group = Duration::from_secs(30);
    let app = Backend::Sqlite.spawn(state.path(), settings).await;
    let api = plan("api", "api-1 crashed", Severity::Critical);
    let tally = post_plans(&app, std::slice::from_ref(&api)).await;
    assert_eq!(tally["notify"], 1);
    app.shutdown().await.unwrap();
    assert!(hook.messages().is_empty(), "the group window had not ended");

    let _app = Backend::Sqlite.spawn(state.path(), notifying(&hook)).await;
    let messages = hook.wait_for(1).await;
    assert_eq!(
        notified(&messages),
        [(api.incident.id.to_string(), 1, "opened".to_string())]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.messages().len(), 1);
}

/// Two replicas with a digest: it runs on the one holding the lease, never on both.
#[actix_web::test]
async fn the_digest_runs_on_one_replica_at_a_time() {
    let archivist = archivist().await;
    let backend = Backend::postgres();
    let mut settings = SynthesizerConfig::for_tests();
    settings.digest_interval = Some(Duration::from_millis(200));
    let (disk_a, disk_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let spawn = |disk: &Path| {
        let mut config = backend.config(disk);
        config.peers = peers(None, Some(&archivist));
        spawn_with(config, settings.clone())
    };
    let a = spawn(disk_a.path()).await;
    let b = spawn(disk_b.path()).await;
    let digests = |text: &str| sample(text, "synthesizer_digests_total").unwrap_or_default();
    let (a_count, b_count) = eventually("a few digests", Duration::from_secs(20), || async {
        let (a_count, b_count) = (digests(&metrics(&a).await), digests(&metrics(&b).await));
        (a_count + b_count >= 3.0).then_some((a_count, b_count))
    })
    .await;
    assert!(
        a_count == 0.0 || b_count == 0.0,
        "both replicas ran the digest: {a_count} and {b_count}"
    );
}

/// A group whose commit fails (its `notified` keys cannot be written) stages nothing and
/// stays pending: once the database recovers, the webhook gets the message, once.
#[actix_web::test]
async fn a_group_that_cannot_commit_is_sent_once_the_database_recovers() {
    let backend = Backend::Sqlite;
    let hook = Hook::start();
    let state = tempfile::tempdir().unwrap();
    let app = backend.spawn(state.path(), notifying(&hook)).await;
    backend
        .fail_writes(state.path(), "synthesizer_notified", true)
        .await;
    let api = plan("api", "api-1 crashed", Severity::Critical);
    post_plans(&app, std::slice::from_ref(&api)).await;
    eventually("a failed hand-over", Duration::from_secs(10), || async {
        let text = metrics(&app).await;
        sample(
            &text,
            r#"synthesizer_notification_failures_total{kind="generic"}"#,
        )
        .filter(|n| *n >= 1.0)
    })
    .await;
    assert!(hook.messages().is_empty(), "{:#?}", hook.messages());

    backend
        .fail_writes(state.path(), "synthesizer_notified", false)
        .await;
    let messages = hook.wait_for(1).await;
    assert_eq!(
        notified(&messages),
        [(api.incident.id.to_string(), 1, "opened".to_string())]
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(hook.messages().len(), 1);
}
