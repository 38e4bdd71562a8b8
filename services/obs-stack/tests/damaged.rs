//! Damaged state stops obs-stack with exit code 2 and a line naming the file — never a panic
//! trace, never a silent start without it. (Found before the one commit path: four non-UTF-8
//! bytes in one role's outbox stopped the whole stack with exit 1 and `stream did not contain
//! valid UTF-8`, naming nothing.)

use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::{binary, free_port, ChildGuard};

fn obs_stack(state: &std::path::Path) -> ChildGuard {
    let mut command = Command::new(binary("obs-stack"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("STATE_DIR", state)
        .env("LOG_LEVEL", "error")
        .env("DOCKER_WATCH", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for role in ["WATCHER", "CURATOR", "PLANNER", "SYNTHESIZER", "ARCHIVIST"] {
        command.env(format!("{role}_PORT"), free_port().to_string());
    }
    ChildGuard(Some(command.spawn().expect("obs-stack starts")))
}

#[test]
fn a_damaged_outbox_of_the_file_based_version_stops_the_stack_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let queue = state.path().join("curator/outbox/curator/planner");
    std::fs::create_dir_all(&queue).unwrap();
    std::fs::write(
        queue.join("queue.log"),
        b"1\t{\"id\":\"a\"}\n2\t\xff\xfe\xfd\xfc\n3\t{\"id\":\"b\"}\n".as_slice(),
    )
    .unwrap();
    let output = obs_stack(state.path())
        .wait_with_output(Duration::from_secs(30))
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let log = queue.join("queue.log").display().to_string();
    let last = stderr.lines().last().unwrap_or_default();
    assert!(last.contains(&log) && last.contains("line 2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_damaged_database_stops_the_stack_naming_it_and_recover_brings_it_back() {
    let state = tempfile::tempdir().unwrap();
    // A first run creates the planner's database; then a page of it is damaged.
    let running = obs_stack(state.path());
    let database = state.path().join("planner/planner.db");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !database.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    running.signal(libc::SIGTERM);
    let _ = running.wait_with_output(Duration::from_secs(30));
    // Everything into the main file, as after a long quiet run, so a page of it holds rows.
    rusqlite::Connection::open(&database)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .unwrap();
    let mut bytes = std::fs::read(&database).unwrap();
    assert!(bytes.len() >= 8192, "a database of several pages");
    for byte in &mut bytes[4096 + 8..4096 + 100] {
        *byte = 0xA5;
    }
    std::fs::write(&database, &bytes).unwrap();

    let output = obs_stack(state.path())
        .wait_with_output(Duration::from_secs(30))
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains(&database.display().to_string()) && last.contains("--recover"),
        "{stderr}"
    );

    // `planner --recover` with the same STATE_DIR rebuilds it and says what it kept.
    let recovered = Command::new(binary("planner"))
        .arg("--recover")
        .env_clear()
        .env("STATE_DIR", state.path().join("planner"))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&recovered.stdout);
    assert!(
        recovered.status.success(),
        "{said} {}",
        String::from_utf8_lossy(&recovered.stderr)
    );
    assert!(
        said.contains("kept") && said.contains("damaged files are at"),
        "{said}"
    );
}
