//! Delivery between the real binaries: the watcher's outbox to the archivist, across the
//! archivist's outage and the watcher's own SIGKILL. Nothing acknowledged is lost, and
//! nothing is stored twice.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde_json::{json, Value};

fn start(name: &str, port: u16, state: &std::path::Path, env: &[(&str, String)]) -> ChildGuard {
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STATE_DIR", state)
        .env("LOG_LEVEL", "warn")
        .env("DOCKER_WATCH", "off")
        .env("OUTBOX_RETRY_MAX_SECONDS", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in env {
        command.env(key, value);
    }
    ChildGuard(Some(command.spawn().expect("the binary starts")))
}

async fn wait_ready(port: u16) {
    let http = client();
    eventually("ready", Duration::from_secs(15), || {
        let request = http.get(format!("http://127.0.0.1:{port}/readyz")).send();
        async move { (request.await.ok()?.status() == 200).then_some(()) }
    })
    .await;
}

async fn post_events(port: u16, range: std::ops::Range<u32>) {
    let http = client();
    for n in range {
        let response = http
            .post(format!("http://127.0.0.1:{port}/events"))
            .json(&json!({"service": "billing", "event_type": "deploy", "detail": format!("event-{n}")}))
            .send()
            .await
            .expect("the watcher answers");
        assert!(response.status().is_success(), "{}", response.status());
    }
}

/// All event records in the archive, following the cursor: (details, record ids).
async fn archived_events(port: u16) -> (Vec<String>, Vec<String>) {
    let http = client();
    let (mut details, mut ids) = (Vec::new(), Vec::new());
    let mut after: Option<String> = None;
    loop {
        let mut url =
            format!("http://127.0.0.1:{port}/v1/records?kind=event&service=billing&limit=100");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        for record in page["records"].as_array().unwrap() {
            ids.push(record["id"].as_str().unwrap().to_string());
            details.push(
                record["body"]["detail"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => return (details, ids),
        }
    }
}

async fn wait_archived(port: u16, want: usize) -> (Vec<String>, Vec<String>) {
    // On PostgreSQL a batch the killed watcher had claimed is another replica's to take only
    // once its claim expires (the outbox's 30 s claim): wait past that, not just up to it.
    eventually(
        "every event in the archive",
        Duration::from_secs(60),
        || async {
            let (details, ids) = archived_events(port).await;
            (details.iter().collect::<BTreeSet<_>>().len() >= want).then_some((details, ids))
        },
    )
    .await
}

fn assert_exactly(details: &[String], ids: &[String], want: u32) {
    let distinct: BTreeSet<&String> = details.iter().collect();
    let expected: BTreeSet<String> = (0..want).map(|n| format!("event-{n}")).collect();
    assert_eq!(distinct, expected.iter().collect(), "every event arrived");
    assert_eq!(details.len(), want as usize, "no event stored twice");
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        ids.len(),
        "ids are unique"
    );
}

#[tokio::test]
async fn archivist_down_for_a_while_then_back_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (watcher_port, archivist_port) = (free_port(), free_port());
    let archivist_url = format!("http://127.0.0.1:{archivist_port}");
    let archivist_state = dir.path().join("archivist");
    let archivist = start("archivist", archivist_port, &archivist_state, &[]);
    let _watcher = start(
        "watcher",
        watcher_port,
        &dir.path().join("watcher"),
        &[("ARCHIVIST_URL", archivist_url)],
    );
    wait_ready(archivist_port).await;
    wait_ready(watcher_port).await;

    post_events(watcher_port, 0..20).await;
    wait_archived(archivist_port, 20).await;

    drop(archivist); // killed: the archivist is gone
    post_events(watcher_port, 20..60).await;
    let archivist = start("archivist", archivist_port, &archivist_state, &[]);
    wait_ready(archivist_port).await;
    let (details, ids) = wait_archived(archivist_port, 60).await;
    assert_exactly(&details, &ids, 60);
    drop(archivist);
}

#[tokio::test]
async fn a_watcher_killed_with_records_pending_delivers_them_after_its_restart() {
    a_watcher_killed_with_records_pending(None).await;
}

#[tokio::test]
async fn on_postgres_a_watcher_killed_with_records_pending_delivers_them_after_its_restart() {
    a_watcher_killed_with_records_pending(Some(postgres_database())).await;
}

fn postgres_database() -> String {
    obs_testkit::postgres::shared()
        .create_database()
        .expect("a PostgreSQL database")
}

/// Both roles on `database_url` when given (each keeps its own tables in it).
async fn a_watcher_killed_with_records_pending(database_url: Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let (watcher_port, archivist_port) = (free_port(), free_port());
    let mut env = vec![(
        "ARCHIVIST_URL",
        format!("http://127.0.0.1:{archivist_port}"),
    )];
    env.extend(database_url.map(|url| ("DATABASE_URL", url)));
    let watcher_state = dir.path().join("watcher");
    // The archivist is not running yet: everything stays pending in the watcher's outbox.
    let watcher = start("watcher", watcher_port, &watcher_state, &env);
    wait_ready(watcher_port).await;
    post_events(watcher_port, 0..50).await;
    watcher.signal(libc::SIGKILL);
    let _ = watcher.wait_with_output(Duration::from_secs(5));

    let _archivist = start(
        "archivist",
        archivist_port,
        &dir.path().join("archivist"),
        &env[1..],
    );
    wait_ready(archivist_port).await;
    let _watcher = start("watcher", watcher_port, &watcher_state, &env);
    wait_ready(watcher_port).await;
    let (details, ids) = wait_archived(archivist_port, 50).await;
    assert_exactly(&details, &ids, 50);
}

async fn archived_count(port: u16) -> Option<u64> {
    let stats: Value = client()
        .get(format!("http://127.0.0.1:{port}/v1/stats"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    stats["records"].as_u64()
}

/// The archivist SIGKILLed again and again while a backlog is being delivered: some batches
/// are stored but never acknowledged, so the watcher sends them again. Every event arrives,
/// and none is stored twice.
#[tokio::test]
async fn an_archivist_killed_in_the_middle_of_deliveries_stores_each_record_once() {
    an_archivist_killed_in_the_middle_of_deliveries(None).await;
}

#[tokio::test]
async fn on_postgres_an_archivist_killed_in_the_middle_of_deliveries_stores_each_record_once() {
    an_archivist_killed_in_the_middle_of_deliveries(Some(postgres_database())).await;
}

async fn an_archivist_killed_in_the_middle_of_deliveries(database_url: Option<String>) {
    // One record per request: delivering the backlog takes a while, so the kills land in it.
    const EVENTS: u32 = 1000;
    let dir = tempfile::tempdir().unwrap();
    let (watcher_port, archivist_port) = (free_port(), free_port());
    let mut env = vec![
        (
            "ARCHIVIST_URL",
            format!("http://127.0.0.1:{archivist_port}"),
        ),
        ("OUTBOX_BATCH_SIZE", "1".to_string()),
    ];
    let archivist_env: Vec<(&str, String)> = database_url
        .iter()
        .map(|url| ("DATABASE_URL", url.clone()))
        .collect();
    env.extend(archivist_env.iter().cloned());
    let archivist_state = dir.path().join("archivist");
    let _watcher = start("watcher", watcher_port, &dir.path().join("watcher"), &env);
    wait_ready(watcher_port).await;
    post_events(watcher_port, 0..EVENTS).await;

    let mut kills = 0;
    let mut archivist = None;
    while kills < 3 {
        let running = start(
            "archivist",
            archivist_port,
            &archivist_state,
            &archivist_env,
        );
        wait_ready(archivist_port).await;
        // Kill it as soon as deliveries are under way, not done.
        let stored = eventually("deliveries to start", Duration::from_secs(20), || async {
            archived_count(archivist_port).await.filter(|n| *n > 0)
        })
        .await;
        if stored >= u64::from(EVENTS) {
            archivist = Some(running);
            break;
        }
        running.signal(libc::SIGKILL);
        let _ = running.wait_with_output(Duration::from_secs(5));
        kills += 1;
    }
    let _archivist = archivist.unwrap_or_else(|| {
        start(
            "archivist",
            archivist_port,
            &archivist_state,
            &archivist_env,
        )
    });
    wait_ready(archivist_port).await;
    let (details, ids) = wait_archived(archivist_port, EVENTS as usize).await;
    assert_exactly(&details, &ids, EVENTS);
    assert!(
        kills > 0,
        "the archivist was killed mid-delivery at least once"
    );
}
