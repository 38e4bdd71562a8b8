//! A commit that fails (a full disk, simulated by a trigger that refuses every insert) stores
//! nothing and answers 503 saying so; once the fault is gone the sender's retry is stored
//! once, and survives a restart. An archive written by a newer release is refused at start.

use serde_json::Value;

use crate::helpers::{at, canonical, record, run_sql, sorted, spawn, spawn_at, try_start, Backend};
use crate::on_both_backends;
use archivist::ArchiveLocation;

on_both_backends!(
    a_failed_commit_stores_nothing_and_the_retry_is_stored_once,
    an_archive_with_a_newer_schema_is_refused_with_one_line,
);

fn fail_every_insert(location: &ArchiveLocation) {
    let sql = match location {
        ArchiveLocation::Sqlite(_) => {
            "CREATE TRIGGER disk_full BEFORE INSERT ON records \
             BEGIN SELECT RAISE(FAIL, 'disk full'); END"
        }
        ArchiveLocation::Postgres(_) => {
            "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
             CREATE TRIGGER disk_full BEFORE INSERT ON records \
             FOR EACH ROW EXECUTE FUNCTION disk_full()"
        }
    };
    run_sql(location, sql);
}

fn heal(location: &ArchiveLocation) {
    let sql = match location {
        ArchiveLocation::Sqlite(_) => "DROP TRIGGER disk_full",
        ArchiveLocation::Postgres(_) => {
            "DROP TRIGGER disk_full ON records; DROP FUNCTION disk_full()"
        }
    };
    run_sql(location, sql);
}

async fn a_failed_commit_stores_nothing_and_the_retry_is_stored_once(backend: Backend) {
    let archive = spawn(backend).await;
    let batch: Vec<Value> = (0..5).map(|n| record("incident", "api", at(n))).collect();

    fail_every_insert(&archive.location);
    let refused = archive.post(&Value::from(batch.clone())).await;
    assert_eq!(refused.status(), 503);
    let body: Value = refused.json().await.expect("a JSON error");
    assert_eq!(body["error"], "unavailable", "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(message.starts_with("nothing was stored ("), "{message}");
    assert!(message.contains("disk full"), "{message}");
    assert!(
        message.ends_with("sending the same request again is safe"),
        "{message}"
    );
    assert_eq!(archive.stats().await["records"], 0);
    assert_eq!(archive.metric("archivist_commit_failures_total").await, 1.0);
    assert_eq!(archive.metric("archivist_records_stored_total").await, 0.0);

    // The fault is gone: the same request is stored, once, as new records (nothing in the
    // archivist remembered the failed attempt).
    heal(&archive.location);
    assert_eq!(archive.append(&batch).await, (5, 0));
    assert_eq!(archive.append(&batch).await, (0, 5));
    assert_eq!(archive.all("", 100).await, sorted(canonical(&batch)));

    let location = archive.location.clone();
    let folders = archive.stop().await;
    let restarted = spawn_at(location, |_, _| {}).await;
    assert_eq!(restarted.all("", 100).await, sorted(canonical(&batch)));
    assert_eq!(restarted.stats().await["records"], 5);
    drop(folders);
}

async fn an_archive_with_a_newer_schema_is_refused_with_one_line(backend: Backend) {
    let archive = spawn(backend).await;
    archive.append(&[record("event", "api", at(0))]).await;
    let location = archive.location.clone();
    let folders = archive.stop().await;
    // What a later release's migration would leave behind.
    run_sql(
        &location,
        "INSERT INTO schema_migrations (component, version, name, applied_at) \
         VALUES ('archivist', 99, 'from the future', 0)",
    );
    let state = tempfile::tempdir().expect("a state folder");
    let error = match try_start(location, state.path(), |_, _| {}).await {
        Ok(_) => panic!("the archivist started on an archive a newer release wrote"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("archivist schema is at version 99, newer than this binary knows (1)"),
        "{error}"
    );
    assert!(!error.contains('\n'), "one line: {error}");
    drop(folders);
}
