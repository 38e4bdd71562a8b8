//! The real `archivist` binary as a process: killed with SIGKILL right after acknowledged
//! writes, restarted, and read back; exporting a large archive with flat memory; refusing
//! bad configuration with exit code 2.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use archivist::store::NewRecord;
use archivist::ArchiveLocation;
use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde_json::{json, Value};

const PATIENCE: Duration = Duration::from_secs(30);

struct Archivist {
    child: ChildGuard,
    base: String,
    log: std::path::PathBuf,
}

impl Archivist {
    /// Start the binary with a clean environment plus `env`, and wait until it is ready.
    async fn start(state: &Path, env: &[(&str, &str)]) -> Archivist {
        let port = free_port();
        let log = state.join(format!("archivist-{port}.log"));
        let child = Command::new(binary("archivist"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            .env("STATE_DIR", state)
            .env("LOG_LEVEL", "warn")
            .env("WORKERS", "1")
            // The records here are dated 2024: keep them.
            .env("ARCHIVE_RETENTION_DAYS", "0")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("the archivist binary starts");
        let archivist = Archivist {
            child: ChildGuard(Some(child)),
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = client();
        let ready = format!("{}/readyz", archivist.base);
        eventually("the archivist to be ready", PATIENCE, || {
            let request = http.get(&ready).send();
            async { matches!(request.await, Ok(r) if r.status() == 200).then_some(()) }
        })
        .await;
        archivist
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.pid()))
            .expect("/proc/<pid>/status");
        status
            .lines()
            .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or_else(|| panic!("{field} missing from /proc/<pid>/status"))
    }

    /// Every record id in the archive, page by page.
    async fn all_ids(&self) -> HashSet<String> {
        let http = client();
        let mut ids = HashSet::new();
        let mut after = String::new();
        loop {
            let page: Value = http
                .get(self.url(&format!("/v1/records?limit=1000{after}")))
                .send()
                .await
                .expect("GET /v1/records")
                .json()
                .await
                .expect("a page");
            for record in page["records"].as_array().expect("records") {
                ids.insert(record["id"].as_str().expect("an id").to_string());
            }
            match page["next"].as_str() {
                Some(cursor) => after = format!("&after={cursor}"),
                None => return ids,
            }
        }
    }
}

fn record(service: &str, second: i64) -> Value {
    json!({
        "id": ulid::Ulid::new().to_string(),
        "kind": "event",
        "service": service,
        "ts": chrono::DateTime::from_timestamp(1_714_521_600 + second, 0).unwrap(),
        "body": {"second": second},
    })
}

/// Senders post batches as fast as they can; once 2,000 records are acknowledged the process
/// is SIGKILLed at once, with batches still in flight. After a restart every acknowledged
/// record must be there, and sending them all again must store nothing.
async fn acknowledged_records_survive_sigkill(archive_url: Option<String>) {
    let state = tempfile::tempdir().unwrap();
    let env: Vec<(&str, &str)> = archive_url
        .as_deref()
        .map(|url| vec![("ARCHIVE_URL", url)])
        .unwrap_or_default();
    let first = Archivist::start(state.path(), &env).await;

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for sender in 0..8 {
        let (acknowledged, stop) = (acknowledged.clone(), stop.clone());
        let url = first.url("/v1/records");
        senders.push(actix_web::rt::spawn(async move {
            let http = client();
            let mut second = 0;
            while !stop.load(Ordering::SeqCst) {
                let batch: Vec<Value> = (0..25)
                    .map(|_| {
                        second += 1;
                        record(&format!("sender-{sender}"), second)
                    })
                    .collect();
                match http.post(&url).json(&batch).send().await {
                    Ok(response) if response.status() == 201 => {
                        acknowledged.lock().unwrap().extend(batch);
                    }
                    // Refused or cut off by the kill: not acknowledged, no promise made.
                    _ => break,
                }
            }
        }));
    }
    eventually("2,000 acknowledged records", PATIENCE, || {
        let count = acknowledged.lock().unwrap().len();
        async move { (count >= 2_000).then_some(()) }
    })
    .await;
    first.child.signal(libc::SIGKILL);
    stop.store(true, Ordering::SeqCst);
    for sender in senders {
        sender.await.expect("a sender task");
    }
    let killed = first
        .child
        .wait_with_output(Duration::from_secs(10))
        .expect("the archivist died");
    assert!(!killed.status.success(), "SIGKILL, not a clean exit");

    let acknowledged = acknowledged.lock().unwrap().clone();
    let second = Archivist::start(state.path(), &env).await;
    let stored = second.all_ids().await;
    let missing: Vec<&str> = acknowledged
        .iter()
        .filter_map(|r| r["id"].as_str())
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged records lost after SIGKILL, e.g. {:?}",
        missing.len(),
        acknowledged.len(),
        &missing[..missing.len().min(5)]
    );

    // Re-sent ids are duplicates, never stored twice.
    let http = client();
    let mut duplicates = 0;
    for batch in acknowledged.chunks(500) {
        let answer: Value = http
            .post(second.url("/v1/records"))
            .json(batch)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["stored"], 0, "{answer}");
        duplicates += answer["duplicates"].as_u64().unwrap();
    }
    assert_eq!(duplicates, acknowledged.len() as u64);
    assert_eq!(second.all_ids().await.len(), stored.len());
}

#[actix_web::test]
async fn sqlite_acknowledged_records_survive_sigkill() {
    acknowledged_records_survive_sigkill(None).await;
}

#[actix_web::test]
async fn postgres_acknowledged_records_survive_sigkill() {
    let url = obs_testkit::postgres::shared()
        .create_database()
        .expect("a fresh PostgreSQL database");
    acknowledged_records_survive_sigkill(Some(url)).await;
}

/// 200,000 records (about 70 MB of NDJSON) exported through a fresh process: its peak
/// resident memory must grow by a small fraction of that, so the export streams rather than
/// loading the archive.
#[actix_web::test]
async fn exporting_a_large_archive_keeps_memory_flat() {
    const RECORDS: usize = 200_000;
    let state = tempfile::tempdir().unwrap();
    // Filled through the store directly: the same code path as appends, without 200 HTTP
    // round trips in a debug build.
    {
        let location = ArchiveLocation::Sqlite(state.path().join("archivist.db"));
        let store = archivist::store::open(&location).await.unwrap().store;
        let padding = "p".repeat(200);
        for chunk in 0..RECORDS / 1000 {
            let batch: Vec<NewRecord> = (0..1000)
                .map(|n| {
                    let second = (chunk * 1000 + n) as i64;
                    let record = obs_model::Record {
                        id: ulid::Ulid::new(),
                        kind: "event".into(),
                        service: format!("svc-{}", second % 10),
                        ts: chrono::DateTime::from_timestamp(1_714_521_600 + second, 0).unwrap(),
                        body: json!({"second": second, "padding": padding}),
                    };
                    NewRecord {
                        id: record.id.to_string(),
                        kind: record.kind.clone(),
                        service: record.service.clone(),
                        ts: record.ts.timestamp_nanos_opt().unwrap(),
                        json: serde_json::to_string(&record).unwrap(),
                    }
                })
                .collect();
            store.insert(batch).await.unwrap();
        }
    }

    let archivist = Archivist::start(state.path(), &[]).await;
    let http = client();
    // Warm up the read path (connections, statement caches) before measuring.
    for _ in 0..3 {
        let page = http
            .get(archivist.url("/v1/records?limit=1000"))
            .send()
            .await;
        assert_eq!(page.unwrap().status(), 200);
    }
    let before_kib = archivist.status_kib("VmHWM");

    let response = http
        .get(archivist.url("/v1/export"))
        .timeout(Duration::from_secs(300))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (mut bytes, mut lines) = (0usize, 0usize);
    let mut response = response;
    // Chunk by chunk, so the test itself never holds the export either.
    while let Some(chunk) = response.chunk().await.expect("the export stream") {
        bytes += chunk.len();
        lines += chunk.iter().filter(|&&b| b == b'\n').count();
    }
    let peak_kib = archivist.status_kib("VmHWM");

    assert_eq!(lines, RECORDS);
    let growth_kib = peak_kib.saturating_sub(before_kib);
    let exported_kib = (bytes / 1024) as u64;
    eprintln!("export: {exported_kib} KiB streamed, peak RSS {before_kib} → {peak_kib} KiB");
    assert!(exported_kib > 60 * 1024, "exported only {exported_kib} KiB");
    // Generous: SQLite's page cache and allocator slack fit many times over; a buffered
    // export (the whole body in memory) would not.
    assert!(
        growth_kib < 32 * 1024,
        "peak RSS grew by {growth_kib} KiB while exporting {exported_kib} KiB"
    );
}

#[test]
fn bad_archive_settings_exit_2_naming_the_variable() {
    for (variable, value) in [
        ("ARCHIVE_URL", "mysql://root:hunter2@db:3306/archive"),
        ("ARCHIVE_URL", "postgres://u:hunter2@db:notaport/archive"),
        ("ARCHIVE_RETENTION_DAYS", "forever"),
        ("ARCHIVE_RETENTION_DAYS", "-1"),
        ("ARCHIVE_PURGE_INTERVAL", "0"),
        ("ARCHIVE_PURGE_INTERVAL", "1e-10"),
        ("ARCHIVE_PURGE_INTERVAL", "18446744073709551615"),
        ("ARCHIVE_RETENTION_DAYS", "4294967295"),
        ("ARCHIVE_MAX_BATCH", "0"),
        // The kit's settings, the same way in every role.
        ("CLIENT_BODY_TIMEOUT", "1e-300"),
        ("MAX_CONNECTIONS", "0"),
    ] {
        let state = tempfile::tempdir().unwrap();
        let output = Command::new(binary("archivist"))
            .env_clear()
            .env("PORT", "0")
            .env("STATE_DIR", state.path())
            .env(variable, value)
            .output()
            .expect("the archivist binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        assert!(stderr.contains(variable), "{variable}={value}: {stderr}");
        assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    }
}

#[test]
fn an_unreachable_postgres_stops_the_start_with_a_clear_line() {
    let state = tempfile::tempdir().unwrap();
    let closed = free_port();
    let output = Command::new(binary("archivist"))
        .env_clear()
        .env("PORT", "0")
        .env("STATE_DIR", state.path())
        .env(
            "ARCHIVE_URL",
            format!("postgres://archivist:hunter2@127.0.0.1:{closed}/archive"),
        )
        .output()
        .expect("the archivist binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    // The archive cannot be used at start: exit 2, as for any role's unusable state.
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "PostgreSQL database archive on 127.0.0.1:{closed}"
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
}

#[test]
fn the_default_archive_is_a_sqlite_file_under_state_dir() {
    let state = tempfile::tempdir().unwrap();
    let system = actix_web::rt::System::new();
    system.block_on(async {
        let archivist = Archivist::start(state.path(), &[]).await;
        let answer = client()
            .post(archivist.url("/v1/records"))
            .json(&[record("api", 1)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
        let stats: Value = client()
            .get(archivist.url("/v1/stats"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(stats["backend"], "sqlite");
        assert!(
            std::fs::read_to_string(&archivist.log).is_ok(),
            "its log is kept"
        );
    });
    assert!(state.path().join("archivist.db").is_file());
}

/// The bug this guards against: a damaged SQLite WAL started with 2,000 of 2,500 acknowledged
/// records and said nothing (SQLite stops replaying at the damage and overwrites the rest).
/// Now 2,500 acknowledged records, a SIGKILL, one byte flipped in the middle of the WAL: the
/// next start refuses with one line naming the WAL, and leaves the file for salvage.
#[actix_web::test]
async fn a_damaged_wal_stops_the_start_with_one_line_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let first = Archivist::start(state.path(), &[]).await;
    let http = client();
    // One commit per batch: sent one after the other, each acknowledged before the next.
    for batch in 0..25 {
        let records: Vec<Value> = (0..100).map(|n| record("api", batch * 100 + n)).collect();
        let answer = http
            .post(first.url("/v1/records"))
            .json(&records)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 201);
    }
    first.child.signal(libc::SIGKILL);
    first
        .child
        .wait_with_output(Duration::from_secs(10))
        .expect("the archivist died");

    let wal = state.path().join("archivist.db-wal");
    let mut bytes = std::fs::read(&wal).expect("the WAL the killed archivist left");
    let report = obs_core::sqlite_wal::inspect(&state.path().join("archivist.db"))
        .unwrap()
        .expect("frames in the WAL");
    assert!(report.valid_commits >= 25, "{report:?}");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&wal, &bytes).unwrap();

    let child = Command::new(binary("archivist"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOST", "127.0.0.1")
        .env("PORT", free_port().to_string())
        .env("STATE_DIR", state.path())
        .env("LOG_LEVEL", "warn")
        .env("ARCHIVE_RETENTION_DAYS", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the archivist binary starts");
    let output = ChildGuard(Some(child))
        .wait_with_output(PATIENCE)
        .expect("the archivist refuses to start, and exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "it must not start: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("archivist: "))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(&wal.display().to_string()), "{stderr}");
    assert!(lines[0].contains("damaged"), "{stderr}");
    assert_eq!(
        std::fs::read(&wal).unwrap(),
        bytes,
        "the WAL is left as it was, for salvage"
    );
}

#[test]
fn archive_url_and_database_url_naming_different_databases_exit_2() {
    let state = tempfile::tempdir().unwrap();
    let output = Command::new(binary("archivist"))
        .env_clear()
        .env("PORT", "0")
        .env("STATE_DIR", state.path())
        .env("DATABASE_URL", "postgres://u:hunter2@127.0.0.1:5432/fleet")
        .env("ARCHIVE_URL", "sqlite:/var/lib/archive.sqlite3")
        .output()
        .expect("the archivist binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ARCHIVE_URL"), "{stderr}");
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password leaked: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
}

/// DATABASE_URL (obs-core's setting, which every role reads) puts the archive in PostgreSQL;
/// ARCHIVE_URL naming the same database is accepted as its alias.
#[test]
fn database_url_puts_the_archive_in_postgres() {
    let url = obs_testkit::postgres::shared()
        .create_database()
        .expect("a fresh PostgreSQL database");
    let system = actix_web::rt::System::new();
    for env in [
        vec![("DATABASE_URL", url.as_str())],
        vec![
            ("DATABASE_URL", url.as_str()),
            ("ARCHIVE_URL", url.as_str()),
        ],
    ] {
        let state = tempfile::tempdir().unwrap();
        system.block_on(async {
            let archivist = Archivist::start(state.path(), &env).await;
            let answer = client()
                .post(archivist.url("/v1/records"))
                .json(&[record("api", 1)])
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 201);
            let stats: Value = client()
                .get(archivist.url("/v1/stats"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(stats["backend"], "postgres", "{env:?}");
        });
        assert!(!state.path().join("archivist.db").exists(), "{env:?}");
    }
}
