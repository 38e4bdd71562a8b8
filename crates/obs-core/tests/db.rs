//! The one commit path against real databases: an embedded SQLite file and a real
//! PostgreSQL (Debian's, via obs-testkit). Each behaviour is checked on both.

use std::path::Path;
use std::time::Duration;

use obs_core::db::{self, Db, Dialect, Lease, Location, Migration, Schema, Value};
use obs_core::ApiError;

const ITEMS: Schema = Schema {
    component: "items",
    migrations: &[
        Migration::portable(
            1,
            "items",
            "CREATE TABLE items (id TEXT PRIMARY KEY, revision BIGINT NOT NULL, body TEXT NOT NULL)",
        ),
        Migration::portable(
            2,
            "items by revision",
            "CREATE INDEX items_by_revision ON items (revision)",
        ),
    ],
};

/// A fresh location of each kind.
fn locations(folder: &Path) -> Vec<Location> {
    vec![
        Location::Sqlite(folder.join("test.db")),
        Location::Postgres(
            obs_testkit::postgres::shared()
                .create_database()
                .expect("a fresh PostgreSQL database"),
        ),
    ]
}

async fn insert(db: &Db, id: &str, revision: i64) -> anyhow::Result<u64> {
    let id = id.to_string();
    db.write(move |tx| {
        tx.execute(
            "INSERT INTO items (id, revision, body) VALUES ($1, $2, $3)",
            &[id.into(), revision.into(), "{}".into()],
        )
    })
    .await
}

async fn count(db: &Db) -> i64 {
    db.read(|tx| {
        tx.query_opt("SELECT COUNT(*) FROM items", &[])?
            .unwrap()
            .int(0)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn a_transaction_commits_whole_or_not_at_all() {
    let folder = tempfile::tempdir().unwrap();
    for location in locations(folder.path()) {
        let db = Db::open(&location, ITEMS).await.unwrap();
        insert(&db, "a", 1).await.unwrap();
        // The work fails after one insert: neither row is kept.
        let failed: anyhow::Result<()> = db
            .write(|tx| {
                tx.execute(
                    "INSERT INTO items (id, revision, body) VALUES ($1, $2, $3)",
                    &["b".into(), 1i64.into(), "{}".into()],
                )?;
                anyhow::bail!("the change was refused")
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(count(&db).await, 1, "{location:?}");

        // A duplicate key is a StorageError that says so, and changes nothing.
        let duplicate = insert(&db, "a", 2).await.unwrap_err();
        assert!(db::is_unique_violation(&duplicate), "{duplicate:#}");
        assert!(db::is_storage_error(&duplicate));
        let api = ApiError::from(duplicate);
        assert_eq!(api.code(), "unavailable");
        assert!(api.to_string().contains("nothing was stored"), "{api}");

        // Parameters of each type round-trip, NULL included, in the same SQL on both.
        let row = db
            .write(|tx| {
                tx.execute(
                    "UPDATE items SET revision = revision + $1 WHERE id = $2",
                    &[5i64.into(), "a".into()],
                )?;
                tx.query_opt(
                    "SELECT id, revision, CAST($1 AS TEXT), CAST($2 AS DOUBLE PRECISION) FROM items WHERE id = $3",
                    &[Value::Null, 0.5f64.into(), "a".into()],
                )
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.text(0).unwrap(), "a");
        assert_eq!(row.int(1).unwrap(), 6);
        assert_eq!(row.opt_text(2).unwrap(), None);
        assert_eq!(row.real(3).unwrap(), 0.5);
    }
}

#[tokio::test]
async fn migrations_apply_once_and_a_newer_schema_is_refused() {
    let folder = tempfile::tempdir().unwrap();
    for location in locations(folder.path()) {
        let first = Db::open(&location, ITEMS).await.unwrap();
        insert(&first, "kept", 1).await.unwrap();
        drop(first);
        // Opening again applies nothing and keeps the rows.
        let db = Db::open(&location, ITEMS).await.unwrap();
        assert_eq!(count(&db).await, 1);
        let versions = db
            .read(|tx| {
                tx.query(
                    "SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version",
                    &["items".into()],
                )?
                .iter()
                .map(|row| row.int(0))
                .collect::<anyhow::Result<Vec<_>>>()
            })
            .await
            .unwrap();
        assert_eq!(versions, vec![1, 2]);

        // A later release migrated this database further: this binary must not touch it.
        db.write(|tx| {
            tx.execute(
                "INSERT INTO schema_migrations (component, version, name, applied_at) VALUES ($1, 3, 'from the future', 0)",
                &["items".into()],
            )
        })
        .await
        .unwrap();
        drop(db);
        let refused = Db::open(&location, ITEMS).await.unwrap_err();
        let line = format!("{refused:#}");
        assert!(
            line.contains("version 3, newer than this binary knows (2)")
                && line.contains(&location.describe()),
            "{line}"
        );
        assert!(!line.contains('\n'), "one line: {line}");
    }
}

/// Files in `folder` whose name says a creation was under way.
fn staging_leftovers(folder: &Path) -> Vec<String> {
    std::fs::read_dir(folder)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains(".creating-"))
        .collect()
}

#[tokio::test]
async fn a_new_sqlite_database_appears_whole_or_not_at_all() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("state").join("test.db");
    let location = Location::Sqlite(path.clone());

    // A creation that fails halfway (its second step is not SQL) leaves nothing behind: the
    // next start creates the database afresh instead of refusing a half-made one.
    const BROKEN: Schema = Schema {
        component: "items",
        migrations: &[
            Migration::portable(1, "items", "CREATE TABLE items (id TEXT PRIMARY KEY)"),
            Migration::portable(2, "broken", "CREATE NONSENSE"),
        ],
    };
    let refused = Db::open(&location, BROKEN).await.unwrap_err();
    assert!(
        format!("{refused:#}").contains("applying items migration 2 (broken)"),
        "{refused:#}"
    );
    assert!(!path.exists());
    assert_eq!(
        staging_leftovers(path.parent().unwrap()),
        Vec::<String>::new()
    );

    // A crash's leftover (its process gone) is cleared by the next creation.
    let stale = path.with_file_name("test.db.creating-999999999-0");
    std::fs::write(&stale, b"half").unwrap();

    let db = Db::open(&location, ITEMS).await.unwrap();
    insert(&db, "kept", 1).await.unwrap();
    drop(db);
    assert_eq!(
        staging_leftovers(path.parent().unwrap()),
        Vec::<String>::new()
    );
    // Created in WAL mode (the header's read and write versions are 2), with every step.
    let header = std::fs::read(&path).unwrap();
    assert_eq!(&header[18..20], &[2, 2], "WAL mode");
    let db = Db::open(&location, ITEMS).await.unwrap();
    assert_eq!(count(&db).await, 1);
    let steps = db
        .read(|tx| {
            tx.query_opt("SELECT COUNT(*) FROM schema_migrations", &[])?
                .unwrap()
                .int(0)
        })
        .await
        .unwrap();
    assert_eq!(steps, 3, "core 1 and items 1, 2");
}

#[tokio::test]
async fn concurrent_openers_of_a_new_sqlite_file_share_one_database() {
    let folder = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(folder.path().join("test.db"));
    let opens = (0..4).map(|_| {
        let location = location.clone();
        tokio::spawn(async move { Db::open(&location, ITEMS).await })
    });
    let handles: Vec<Db> = futures_util::future::join_all(opens)
        .await
        .into_iter()
        .map(|opened| opened.unwrap().unwrap())
        .collect();
    for (index, db) in handles.iter().enumerate() {
        insert(db, &format!("item-{index}"), 1).await.unwrap();
    }
    for db in &handles {
        assert_eq!(count(db).await, 4, "every handle sees every write");
    }
    assert_eq!(staging_leftovers(folder.path()), Vec::<String>::new());
}

#[tokio::test]
async fn concurrent_migrators_apply_each_step_once() {
    let url = obs_testkit::postgres::shared().create_database().unwrap();
    let location = Location::Postgres(url);
    let opens = (0..4).map(|_| {
        let location = location.clone();
        tokio::spawn(async move { Db::open(&location, ITEMS).await })
    });
    for opened in futures_util::future::join_all(opens).await {
        opened.unwrap().unwrap();
    }
    let db = Db::open(&location, ITEMS).await.unwrap();
    assert_eq!(db.dialect(), Dialect::Postgres);
    let applied = db
        .read(|tx| {
            tx.query_opt(
                "SELECT COUNT(*) FROM schema_migrations WHERE component = 'items'",
                &[],
            )?
            .unwrap()
            .int(0)
        })
        .await
        .unwrap();
    assert_eq!(applied, 2);
}

#[tokio::test]
async fn a_receiver_sees_an_id_once_across_handles() {
    let folder = tempfile::tempdir().unwrap();
    for location in locations(folder.path()) {
        let one = Db::open(&location, ITEMS).await.unwrap();
        let other = if matches!(location, Location::Postgres(_)) {
            // Another replica on the same database.
            Db::open(&location, ITEMS).await.unwrap()
        } else {
            one.clone()
        };
        let first = one
            .write(|tx| tx.first_sighting("curator", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"))
            .await
            .unwrap();
        let again = other
            .write(|tx| tx.first_sighting("curator", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"))
            .await
            .unwrap();
        let other_role = other
            .write(|tx| tx.first_sighting("planner", "01JC3Z8Q2J6W7V2N5Y4M1K0P9R"))
            .await
            .unwrap();
        assert!(first && !again && other_role, "{location:?}");
    }
}

#[tokio::test]
async fn a_lease_has_one_holder_and_passes_on_when_it_expires() {
    let folder = tempfile::tempdir().unwrap();
    for location in locations(folder.path()) {
        let db = Db::open(&location, ITEMS).await.unwrap();
        let ttl = Duration::from_millis(600);
        let a = Lease::new(&db, "checker", ttl);
        let b = Lease::new(&db, "checker", ttl);
        assert!(a.try_acquire().await.unwrap());
        assert!(!b.try_acquire().await.unwrap(), "held by a");
        assert!(a.try_acquire().await.unwrap(), "a renews its own");
        // a dies (stops renewing): b takes over once the lease has expired, not before.
        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
        assert!(b.try_acquire().await.unwrap());
        assert!(!a.try_acquire().await.unwrap());
        b.release().await.unwrap();
        assert!(
            a.try_acquire().await.unwrap(),
            "a released lease is free at once"
        );
    }
}

#[tokio::test]
async fn a_job_under_a_lease_runs_on_one_replica_and_fails_over() {
    let url = obs_testkit::postgres::shared().create_database().unwrap();
    let location = Location::Postgres(url);
    let runs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<&'static str>::new()));
    let ttl = Duration::from_millis(600);
    let mut replicas = Vec::new();
    for name in ["first", "second"] {
        let db = Db::open(&location, ITEMS).await.unwrap();
        let shutdown = obs_core::CancellationToken::new();
        let runs = runs.clone();
        let task = tokio::spawn(Lease::new(&db, "digest", ttl).run(
            shutdown.clone(),
            move |lost| {
                let runs = runs.clone();
                async move {
                    runs.lock().unwrap().push(name);
                    lost.cancelled().await;
                }
            },
        ));
        replicas.push((name, shutdown, task));
        // The first replica takes the lease before the second starts.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(*runs.lock().unwrap(), vec!["first"], "one holder at a time");

    // The holder stops (its task is aborted, as a killed pod would: no release).
    let (_, _, first_task) = replicas.remove(0);
    first_task.abort();
    let deadline = tokio::time::Instant::now() + ttl * 4;
    while runs.lock().unwrap().len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*runs.lock().unwrap(), vec!["first", "second"]);
    let (_, shutdown, task) = replicas.remove(0);
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the job stops on shutdown")
        .unwrap();
}

#[tokio::test]
async fn a_damaged_sqlite_file_is_refused_and_recover_keeps_what_is_intact() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("role.db");
    let location = Location::Sqlite(path.clone());
    {
        let db = Db::open(&location, ITEMS).await.unwrap();
        for chunk in 0..20 {
            db.write(move |tx| {
                for n in 0..50 {
                    tx.execute(
                        "INSERT INTO items (id, revision, body) VALUES ($1, $2, $3)",
                        &[
                            format!("item-{chunk}-{n}").into(),
                            1i64.into(),
                            "x".repeat(200).into(),
                        ],
                    )?;
                }
                Ok(())
            })
            .await
            .unwrap();
        }
    }
    // Fold the WAL into the file, then damage a page in the middle of the table.
    {
        let connection = rusqlite::Connection::open(&path).unwrap();
        connection
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    let page = 4096;
    let middle = (bytes.len() / page / 2) * page;
    for byte in &mut bytes[middle + 8..middle + 200] {
        *byte = 0xA5;
    }
    std::fs::write(&path, &bytes).unwrap();

    let refused = Db::open(&location, ITEMS).await.unwrap_err();
    let line = format!("{refused:#}");
    assert!(
        line.contains(&path.display().to_string()) && line.contains("--recover"),
        "{line}"
    );

    let recovery = db::recover_sqlite(&path).unwrap();
    let kept: u64 = recovery.kept.iter().map(|(_, n)| n).sum();
    assert!(recovery.damaged_copy.exists());
    assert!(recovery.to_string().contains("kept"), "{recovery}");
    let db = Db::open(&location, ITEMS).await.unwrap();
    let items = count(&db).await;
    assert!(items > 0 && items < 1000, "kept {items} of 1000 items");
    assert!(kept >= u64::try_from(items).unwrap());
}

#[tokio::test]
async fn a_wal_damaged_in_the_middle_is_refused_before_sqlite_drops_commits() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("role.db");
    let location = Location::Sqlite(path.clone());
    let copy = folder.path().join("copy.db");
    {
        let db = Db::open(&location, ITEMS).await.unwrap();
        // Keep everything in the WAL: no automatic checkpoint while the copy is taken.
        db.write(|tx| {
            tx.query("PRAGMA wal_autocheckpoint=0", &[])?;
            Ok(())
        })
        .await
        .unwrap();
        for n in 0..300 {
            insert(&db, &format!("item-{n}"), 1).await.unwrap();
        }
        // The files as a crash would leave them.
        std::fs::copy(&path, &copy).unwrap();
        std::fs::copy(
            format!("{}-wal", path.display()),
            format!("{}-wal", copy.display()),
        )
        .unwrap();
    }
    let wal = format!("{}-wal", copy.display());
    let mut bytes = std::fs::read(&wal).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xFF;
    std::fs::write(&wal, &bytes).unwrap();

    let refused = Db::open(&Location::Sqlite(copy.clone()), ITEMS)
        .await
        .unwrap_err();
    let line = format!("{refused:#}");
    assert!(
        line.contains(&wal) && line.contains("committed transactions"),
        "{line}"
    );
    assert!(!line.contains('\n'), "one line: {line}");
}
