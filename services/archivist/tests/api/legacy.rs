//! An archive an earlier version left at STATE_DIR/archive.sqlite3 is imported once into the
//! archive (SQLite's archivist.db, or PostgreSQL), then renamed aside; one that cannot be read
//! stops the start with one line naming it, and is left as it was.

use std::path::Path;

use serde_json::Value;

use crate::helpers::{
    at, canonical, fresh_location, record, sorted, try_start, Backend, TestArchive,
};
use crate::on_both_backends;

on_both_backends!(
    an_earlier_archive_is_imported_once_then_renamed_aside,
    an_unreadable_earlier_archive_stops_the_start_naming_it,
);

/// The file as the previous version wrote it: its own schema, WAL mode, canonical JSON.
fn write_legacy_archive(path: &Path, records: &[Value]) {
    let connection = rusqlite::Connection::open(path).expect("the legacy file");
    connection
        .execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE records (
                 id TEXT NOT NULL UNIQUE, kind TEXT NOT NULL, service TEXT NOT NULL,
                 ts INTEGER NOT NULL, record TEXT NOT NULL) STRICT;
             CREATE INDEX records_by_ts ON records (ts, id);",
        )
        .expect("the old schema");
    for value in canonical(records) {
        let record: obs_model::Record = serde_json::from_value(value).expect("a record");
        connection
            .execute(
                "INSERT INTO records (id, kind, service, ts, record) VALUES (?1, ?2, ?3, ?4, ?5)",
                rusqlite::params![
                    record.id.to_string(),
                    record.kind,
                    record.service,
                    record.ts.timestamp_nanos_opt().expect("a time in range"),
                    serde_json::to_string(&record).expect("serialises"),
                ],
            )
            .expect("a legacy row");
    }
}

async fn an_earlier_archive_is_imported_once_then_renamed_aside(backend: Backend) {
    let (location, _folder) = fresh_location(backend);
    let state = tempfile::tempdir().expect("a state folder");
    let legacy = state.path().join("archive.sqlite3");
    let old: Vec<Value> = (0..450)
        .map(|n| record("event", &format!("svc-{}", n % 3), at(n)))
        .collect();
    write_legacy_archive(&legacy, &old);

    let app = try_start(location.clone(), state.path(), |_, _| {})
        .await
        .expect("the archivist starts and imports");
    let archive = TestArchive::new(app, location.clone());
    assert_eq!(archive.all("", 1000).await, sorted(canonical(&old)));
    assert!(!legacy.exists(), "the old file is renamed aside");
    assert!(state.path().join("archive.sqlite3.imported").is_file());
    // Imported records are archived records: re-sent, they are duplicates.
    assert_eq!(archive.append(&old[..10]).await, (0, 10));
    let new = vec![record("event", "svc-0", at(10_000))];
    assert_eq!(archive.append(&new).await, (1, 0));
    archive.stop().await;

    // A restart imports nothing again: the renamed file is left alone.
    let app = try_start(location.clone(), state.path(), |_, _| {})
        .await
        .expect("the archivist restarts");
    let archive = TestArchive::new(app, location);
    assert_eq!(archive.stats().await["records"], 451);
    assert!(!legacy.exists());
    archive.stop().await;
}

async fn an_unreadable_earlier_archive_stops_the_start_naming_it(backend: Backend) {
    let (location, _folder) = fresh_location(backend);
    let state = tempfile::tempdir().expect("a state folder");
    let legacy = state.path().join("archive.sqlite3");
    let garbage = b"this is not a SQLite database, whatever its name says".repeat(100);
    std::fs::write(&legacy, &garbage).expect("the damaged file");

    let error = match try_start(location, state.path(), |_, _| {}).await {
        Ok(_) => panic!("the archivist started over an archive it could not read"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains(&legacy.display().to_string()),
        "the line names the file: {error}"
    );
    assert!(error.contains("not a database"), "and says why: {error}");
    assert!(!error.contains('\n'), "one line: {error}");
    assert_eq!(
        std::fs::read(&legacy).expect("the file is still there"),
        garbage,
        "the file is left as it was"
    );
    assert!(!state.path().join("archive.sqlite3.imported").exists());
}
