//! The watcher binary as a process: configuration errors, the Docker modes, state that a
//! kill -9 in the middle of writing cannot corrupt, a legacy state file it cannot read, and
//! the checker moving to another replica when its holder is killed.

use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde_json::Value;

fn watcher(port: u16, state: &std::path::Path, env: &[(&str, &str)]) -> ChildGuard {
    let mut command = Command::new(binary("watcher"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STATE_DIR", state)
        .env("LOG_FORMAT", "json")
        .env("DOCKER_WATCH", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    ChildGuard(Some(command.spawn().expect("the watcher binary starts")))
}

async fn ready(port: u16) {
    let http = client();
    eventually("the watcher to answer", Duration::from_secs(20), || async {
        let response = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
            .ok()?;
        response.status().is_success().then_some(())
    })
    .await;
}

#[test]
fn bad_settings_stop_it_with_one_line_naming_the_variable() {
    let state = tempfile::tempdir().unwrap();
    for (variable, value) in [
        ("DOCKER_WATCH", "sometimes"),
        ("MONITOR_HEARTBEAT_TIMEOUT", "soon"),
        ("MONITOR_HEARTBEAT_TIMEOUT", "0"),
        ("MONITOR_HEARTBEAT_ENABLED", "maybe"),
        ("MONITOR_HEARTBEAT_CHECK_INTERVAL", "-1"),
        ("PROBE_TARGETS", "api"),
        ("PROBE_TARGETS", "api=ftp://x"),
        ("PROBE_FAILURE_THRESHOLD", "0"),
        ("RESTART_LOOP_THRESHOLD", "0"),
        ("DOCKER_HOST", "ssh://somewhere"),
        ("KUBERNETES_WATCH", "sometimes"),
        ("KUBERNETES_NAMESPACES", "Prod_1"),
        ("KUBERNETES_LABEL_SELECTOR", "app=api;tier=db"),
        ("KUBERNETES_NOT_READY_AFTER", "0"),
        ("KUBERNETES_UNSCHEDULABLE_AFTER", "soon"),
        ("EVENTS_MAX", "0"),
        ("MAX_EVENT_SERIES", "0"),
        ("LEASE_TTL", "0"),
        ("STATE_SAVE_INTERVAL", "never"),
        // Out of range or not finite: never a timer with a period of nothing.
        ("STATE_SAVE_INTERVAL", "1e-10"),
        ("MONITOR_HEARTBEAT_CHECK_INTERVAL", "1e-300"),
        ("MONITOR_HEARTBEAT_TIMEOUT", "NaN"),
        ("PROBE_INTERVAL", "1e-6"),
        ("PROBE_TIMEOUT", "inf"),
        ("HOST_METRICS_INTERVAL", "1e-10"),
        ("RESTART_LOOP_WINDOW", "1e400"),
        ("LEASE_TTL", "99999999999999999999"),
        // The kit's settings, the same way.
        ("CLIENT_BODY_TIMEOUT", "1e-300"),
        ("CLIENT_HEADER_TIMEOUT", "NaN"),
        ("KEEP_ALIVE_TIMEOUT", "1e9"),
        ("MAX_CONNECTIONS", "0"),
        ("SHUTDOWN_GRACE_SECONDS", "18446744073709551615"),
        ("MONITOR_HEARTBEAT_INTERVAL", "0"),
        ("OUTBOX_RETRY_MAX_SECONDS", "1e-10"),
    ] {
        let child = watcher(free_port(), state.path(), &[(variable, value)]);
        let output = child
            .wait_with_output(Duration::from_secs(10))
            .expect("it exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{variable}={value}: one line: {stderr}");
        assert!(lines[0].contains(variable), "{variable}={value}: {stderr}");
    }
}

/// The seed monitoring service listened by MONITOR_HOST / MONITOR_PORT: honoured where HOST /
/// PORT are not set, so its manifests keep working; HOST / PORT win when both are set.
#[actix_web::test]
async fn the_seed_listen_variables_work_where_host_and_port_are_not_set() {
    let state = tempfile::tempdir().unwrap();
    let seed_port = free_port();
    let mut command = Command::new(binary("watcher"));
    command
        .env_clear()
        .env("MONITOR_HOST", "127.0.0.1")
        .env("MONITOR_PORT", seed_port.to_string())
        .env("STATE_DIR", state.path())
        .env("DOCKER_WATCH", "off")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _seed = ChildGuard(Some(command.spawn().expect("the watcher binary starts")));
    ready(seed_port).await;

    let port = free_port();
    let state = tempfile::tempdir().unwrap();
    let unused = free_port().to_string();
    let _both = watcher(port, state.path(), &[("MONITOR_PORT", unused.as_str())]);
    ready(port).await;

    for (variable, value) in [
        ("MONITOR_PORT", "nine-four-hundred"),
        ("MONITOR_HOST", "monitor.local"),
    ] {
        let mut command = Command::new(binary("watcher"));
        command
            .env_clear()
            .env(variable, value)
            .env("STATE_DIR", state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let output = ChildGuard(Some(command.spawn().unwrap()))
            .wait_with_output(Duration::from_secs(10))
            .expect("it exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(variable), "{stderr}");
        assert!(stderr.contains(value), "{stderr}");
    }
}

#[test]
fn docker_watch_on_without_an_engine_refuses_to_start() {
    let state = tempfile::tempdir().unwrap();
    let child = watcher(
        free_port(),
        state.path(),
        &[
            ("DOCKER_WATCH", "on"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    );
    let output = child
        .wait_with_output(Duration::from_secs(20))
        .expect("it exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("DOCKER_WATCH=on") && last.contains("DOCKER_HOST=unix:///nonexistent"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn docker_watch_auto_without_an_engine_runs_and_says_so_once() {
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = watcher(
        port,
        state.path(),
        &[
            ("DOCKER_WATCH", "auto"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    );
    ready(port).await;
    let http = client();
    // Several attempts to connect pass…
    eventually("four failed attempts", Duration::from_secs(30), || async {
        let text = http
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        let failures: f64 = text
            .lines()
            .find_map(|line| line.strip_prefix("watcher_docker_connect_failures_total "))?
            .parse()
            .ok()?;
        (failures >= 4.0).then_some(())
    })
    .await;
    let status: Value = http
        .get(format!("http://127.0.0.1:{port}/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["docker"], false);
    child.signal(libc::SIGTERM);
    let output = child.wait_with_output(Duration::from_secs(20)).unwrap();
    assert_eq!(output.status.code(), Some(0));
    // …and the log says it once.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("no Docker engine answers"))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains("unix:///nonexistent/docker.sock"),
        "{}",
        said[0]
    );
}

#[actix_web::test]
async fn a_kill_in_the_middle_of_writing_behind_loses_at_most_the_last_moments() {
    let state = tempfile::tempdir().unwrap();
    let http = client();
    let mut known = 0usize;
    for round in 0..5 {
        let port = free_port();
        let child = watcher(
            port,
            state.path(),
            // Write behind as often as possible, so the kill is likely to land mid-commit.
            &[("STATE_SAVE_INTERVAL", "0.001")],
        );
        // The database opened (a torn commit would have stopped it with a line naming it).
        ready(port).await;
        let status: Value = http
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let services = status["services"].as_array().unwrap().len();
        // What was committed before the kill is back (the last moments may not be).
        assert!(
            round == 0 || services > 0,
            "round {round}: nothing loaded after a kill; {known} services were sent"
        );
        assert!(
            !state.path().join("state.json").exists(),
            "round {round}: the old state file is gone for good"
        );
        for n in 0..1000 {
            http.post(format!("http://127.0.0.1:{port}/heartbeat"))
                .json(&serde_json::json!({"service": format!("r{round}-s{n}"), "phase": "x".repeat(64)}))
                .send()
                .await
                .unwrap();
        }
        known = services + 1000;
        child.signal(libc::SIGKILL);
        let _ = child.wait_with_output(Duration::from_secs(10));
    }
}

#[test]
fn an_unparsable_legacy_state_file_stops_it_with_one_line_naming_it() {
    let state = tempfile::tempdir().unwrap();
    let legacy = state.path().join("state.json");
    std::fs::write(&legacy, b"{\"version\":1,\"serv").unwrap();
    let child = watcher(free_port(), state.path(), &[]);
    let output = child
        .wait_with_output(Duration::from_secs(20))
        .expect("it exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_ne!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with('{'))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(lines[0].contains(&legacy.display().to_string()), "{stderr}");
    assert!(legacy.exists(), "left where it was");
}

/// Two watcher processes on one PostgreSQL: the one holding the checker's lease is killed
/// (no release), and the other finds a silent service within the lease's time to live and a
/// check interval (plus the service's own timeout and the write-behind grace).
#[actix_web::test]
async fn the_checker_moves_to_the_other_replica_when_its_holder_is_killed() {
    let url = obs_testkit::postgres::shared()
        .create_database()
        .expect("a test database");
    let env = [
        ("DATABASE_URL", url.as_str()),
        ("LEASE_TTL", "1"),
        ("MONITOR_HEARTBEAT_CHECK_INTERVAL", "0.1"),
    ];
    let (state_a, state_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let port_a = free_port();
    let holder = watcher(port_a, state_a.path(), &env);
    ready(port_a).await;
    let database = url.rsplit('/').next().unwrap_or_default().to_string();
    eventually(
        "A to hold the checker lease",
        Duration::from_secs(10),
        || {
            let database = database.clone();
            async move {
                let holder = obs_testkit::postgres::shared()
                    .psql(
                        &database,
                        "SELECT holder FROM leases WHERE name = 'watcher-checker'",
                    )
                    .ok()?;
                (!holder.is_empty()).then_some(())
            }
        },
    )
    .await;
    let port_b = free_port();
    let _other = watcher(port_b, state_b.path(), &env);
    ready(port_b).await;
    let http = client();
    let b = format!("http://127.0.0.1:{port_b}");

    holder.signal(libc::SIGKILL);
    let _ = holder.wait_with_output(Duration::from_secs(10));
    let killed = std::time::Instant::now();
    let response = http
        .post(format!("{b}/heartbeat"))
        .json(&serde_json::json!({"service": "worker", "timeout_seconds": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    eventually(
        "worker's missed heartbeat through B",
        Duration::from_secs(20),
        || async {
            let body: Value = http
                .get(format!("{b}/issues?state=open"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            body["issues"]
                .as_array()?
                .iter()
                .any(|issue| issue["kind"] == "heartbeat_missed" && issue["service"] == "worker")
                .then_some(())
        },
    )
    .await;
    // ttl 1 s + timeout 1 s + grace 1.5 s + check interval + slack for two cores.
    assert!(
        killed.elapsed() < Duration::from_secs(7),
        "took {:?}",
        killed.elapsed()
    );
}
