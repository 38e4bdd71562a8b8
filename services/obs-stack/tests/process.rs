//! The binaries as an operator runs them: exit codes, the one-line config errors, JSON logs,
//! SIGTERM/SIGINT, the `healthcheck` subcommand.

use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use serde_json::Value;

const ROLE_BINARIES: [&str; 5] = ["watcher", "curator", "planner", "synthesizer", "archivist"];

fn command(name: &str, state: &std::path::Path) -> Command {
    let mut command = Command::new(binary(name));
    command
        .env_clear()
        .env("STATE_DIR", state)
        .env("HOST", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run_to_exit(mut command: Command) -> std::process::Output {
    let child = ChildGuard(Some(command.spawn().expect("the binary starts")));
    child
        .wait_with_output(Duration::from_secs(10))
        .expect("it exits")
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_variable() {
    let state = tempfile::tempdir().unwrap();
    let cases = [
        ("PORT", "abc"),
        ("METRICS_PORT", "70000"),
        ("LOG_FORMAT", "xml"),
        ("SHUTDOWN_GRACE_SECONDS", "-1"),
        ("MAX_BODY_BYTES", "0"),
        ("METRICS_PREFIX", "9lives"),
        ("MONITOR_ENDPOINT", "not a url"),
        ("MONITOR_HEARTBEAT_INTERVAL", "soon"),
        ("LOG_LEVEL", "info,=[="),
    ];
    for name in ROLE_BINARIES {
        for (variable, value) in cases {
            let mut command = command(name, state.path());
            command.env(variable, value);
            let output = run_to_exit(command);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{name} with {variable}={value}: {stderr}"
            );
            assert_eq!(
                stderr.lines().count(),
                1,
                "{name} {variable}: one line, got {stderr:?}"
            );
            assert!(
                stderr.contains(variable),
                "{name}: the line names {variable}: {stderr:?}"
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
    let mut stack = command("obs-stack", state.path());
    stack.env("CURATOR_PORT", "x");
    let output = run_to_exit(stack);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "configuration error: CURATOR_PORT: invalid digit found in string while parsing value 'x'"
    );
}

/// Every duration and interval setting, out of range or not a finite number: exit 2 with one
/// line naming it, from the role binary and from obs-stack alike — never a start with a timer
/// of period zero (which panics the task while /healthz stays 200).
#[test]
fn durations_out_of_range_exit_2_naming_the_variable() {
    let state = tempfile::tempdir().unwrap();
    let shared = [
        ("CLIENT_BODY_TIMEOUT", "1e-300"),
        ("CLIENT_HEADER_TIMEOUT", "0.5"),
        ("KEEP_ALIVE_TIMEOUT", "NaN"),
        ("MAX_CONNECTIONS", "0"),
        ("SHUTDOWN_GRACE_SECONDS", "99999999"),
        ("MONITOR_HEARTBEAT_INTERVAL", "0"),
        ("OUTBOX_RETRY_MAX_SECONDS", "18446744073709551615"),
    ];
    let own = [
        ("watcher", "STATE_SAVE_INTERVAL", "1e-10"),
        ("watcher", "MONITOR_HEARTBEAT_CHECK_INTERVAL", "1e-6"),
        ("watcher", "MONITOR_HEARTBEAT_TIMEOUT", "1e-300"),
        ("watcher", "PROBE_INTERVAL", "inf"),
        ("curator", "STATE_FLUSH_INTERVAL", "1e-10"),
        ("curator", "HOUSEKEEPING_INTERVAL", "1e-300"),
        ("curator", "GOALS_CHECK_INTERVAL", "NaN"),
        ("curator", "FLAP_WINDOW", "1e400"),
        ("curator", "RESOLVED_INCIDENTS_MAX_AGE", "-1"),
        ("planner", "REMEDIATE_COOLDOWN_SECONDS", "NaN"),
        ("synthesizer", "NOTIFY_GROUP_SECONDS", "1e-10"),
        ("synthesizer", "DIGEST_INTERVAL", "1e-6"),
        ("synthesizer", "PEER_TIMEOUT_SECONDS", "1e9"),
        ("archivist", "ARCHIVE_PURGE_INTERVAL", "0"),
        ("archivist", "ARCHIVE_RETENTION_DAYS", "4294967295"),
    ];
    let cases = ROLE_BINARIES
        .iter()
        .flat_map(|name| {
            shared
                .iter()
                .map(move |(variable, value)| (*name, *variable, *value))
        })
        .chain(own.iter().copied())
        .chain(
            own.iter()
                .map(|(_, variable, value)| ("obs-stack", *variable, *value)),
        );
    for (name, variable, value) in cases {
        let mut command = command(name, state.path());
        command.env(variable, value);
        let output = run_to_exit(command);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{name} with {variable}={value}: {stderr}"
        );
        assert_eq!(
            stderr.lines().count(),
            1,
            "{name} {variable}={value}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with(&format!("configuration error: {variable}: ")),
            "{name}: the line names {variable}: {stderr:?}"
        );
    }
}

#[test]
fn a_taken_port_is_one_line_and_exit_1() {
    let state = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut watcher = command("watcher", state.path());
    watcher.env("PORT", port.to_string());
    let output = run_to_exit(watcher);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, once: {stderr:?}");
    assert!(
        stderr.starts_with("watcher: binding 127.0.0.1:") && stderr.contains("(PORT)"),
        "{stderr}"
    );

    // obs-stack names the variable that set the port.
    let mut stack = command("obs-stack", state.path());
    for ((role, _), port) in obs_stack::ROLES.iter().zip(distinct_ports()) {
        stack.env(format!("{}_PORT", role.to_uppercase()), port.to_string());
    }
    stack.env("ARCHIVIST_PORT", port.to_string());
    let output = run_to_exit(stack);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line, once: {stderr:?}");
    assert!(
        stderr.starts_with("obs-stack: starting the archivist: binding 127.0.0.1:")
            && stderr
                .trim_end()
                .ends_with("(ARCHIVIST_PORT): Address already in use (os error 98)"),
        "{stderr}"
    );
}

/// Five free loopback ports, all different.
fn distinct_ports() -> Vec<u16> {
    let listeners: Vec<_> = (0..5)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

#[test]
fn every_binary_answers_help_and_version_without_starting() {
    let state = tempfile::tempdir().unwrap();
    // A port in use: a binary that started serving instead of answering would fail on it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let binaries = ROLE_BINARIES.iter().chain(&["obs-stack", "obsctl"]);
    for name in binaries {
        for (flag, expected) in [
            ("--version", format!("{name} {}", env!("CARGO_PKG_VERSION"))),
            ("--help", "Usage:".to_string()),
        ] {
            let mut command = command(name, state.path());
            command.arg(flag).env("PORT", &port);
            for (role, _) in obs_stack::ROLES {
                command.env(format!("{}_PORT", role.to_uppercase()), &port);
            }
            let output = run_to_exit(command);
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(0), "{name} {flag}: {stderr}");
            assert!(stdout.contains(&expected), "{name} {flag}: {stdout}");
            assert!(stderr.is_empty(), "{name} {flag}: {stderr}");
        }
    }
}

#[test]
fn obs_stack_refuses_two_roles_on_one_port_naming_both_variables() {
    let state = tempfile::tempdir().unwrap();
    let mut stack = command("obs-stack", state.path());
    stack.env("WATCHER_PORT", "8004");
    let output = run_to_exit(stack);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        "configuration error: SYNTHESIZER_PORT: port 8004 is also WATCHER_PORT's \
         (each role needs its own port)"
    );

    let mut stack = command("obs-stack", state.path());
    stack
        .env("CURATOR_PORT", "9100")
        .env("PLANNER_METRICS_PORT", "9100");
    let output = run_to_exit(stack);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "configuration error: PLANNER_METRICS_PORT: port 9100 is also CURATOR_PORT's"
        ),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_synthesizer_warns_of_digest_interval_only_when_it_is_set() {
    for (set, warned) in [(false, false), (true, true)] {
        let state = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = command("synthesizer", state.path());
        command.env("PORT", port.to_string());
        if set {
            command.env("DIGEST_INTERVAL", "60");
        }
        let child = ChildGuard(Some(command.spawn().unwrap()));
        wait_ready(port).await;
        child.signal(libc::SIGTERM);
        let output = child.wait_with_output(Duration::from_secs(10)).unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr.contains("DIGEST_INTERVAL is set"),
            warned,
            "DIGEST_INTERVAL set: {set}: {stderr}"
        );
        assert_eq!(
            stderr.contains(r#""level":"WARN""#),
            warned,
            "no other warning: {stderr}"
        );
    }
}

async fn wait_ready(port: u16) {
    let http = client();
    eventually("the role to be ready", Duration::from_secs(10), || {
        let request = http.get(format!("http://127.0.0.1:{port}/readyz")).send();
        async move { (request.await.ok()?.status() == 200).then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn each_role_logs_json_with_role_trace_and_request_ids_and_stops_on_sigterm() {
    let state = tempfile::tempdir().unwrap();
    for name in ROLE_BINARIES {
        let port = free_port();
        let mut command = command(name, state.path());
        command
            .env("PORT", port.to_string())
            .env("TRACE_ID", "trace-42")
            .env("LOG_LEVEL", "debug");
        let child = ChildGuard(Some(command.spawn().unwrap()));
        wait_ready(port).await;

        let healthcheck = Command::new(binary(name))
            .arg("healthcheck")
            .env("PORT", port.to_string())
            .output()
            .unwrap();
        assert!(
            healthcheck.status.success(),
            "{name} healthcheck against a running role"
        );

        let response = client()
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .header("x-request-id", "req-from-test")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);

        child.signal(libc::SIGTERM);
        let output = child.wait_with_output(Duration::from_secs(10)).unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "{name} exits 0 after SIGTERM"
        );

        let lines: Vec<Value> = String::from_utf8_lossy(&output.stderr)
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|_| panic!("{name}: not JSON: {line}"))
            })
            .collect();
        let request_line = lines
            .iter()
            .find(|line| line["request_id"] == "req-from-test")
            .unwrap_or_else(|| panic!("{name}: no request line in {lines:#?}"));
        let spans = request_line["spans"].as_array().unwrap();
        assert_eq!(spans[0]["role"], name);
        assert_eq!(spans[0]["trace_id"], "trace-42");
        assert_eq!(request_line["message"], "request handled");
        assert_eq!(request_line["route"], "/healthz");
        assert!(
            lines.iter().any(|l| l["message"] == "stopped"),
            "{name}: {lines:#?}"
        );

        let after = Command::new(binary(name))
            .arg("healthcheck")
            .env("PORT", port.to_string())
            .output()
            .unwrap();
        assert_eq!(
            after.status.code(),
            Some(1),
            "{name} healthcheck with nothing running"
        );
    }
}

#[tokio::test]
async fn obs_stack_prints_where_each_role_is_and_stops_on_ctrl_c() {
    let state = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..5).map(|_| free_port()).collect();
    let mut command = command("obs-stack", state.path());
    for ((role, _), port) in obs_stack::ROLES.iter().zip(&ports) {
        command.env(format!("{}_PORT", role.to_uppercase()), port.to_string());
    }
    command.env("LOG_FORMAT", "text");
    let child = ChildGuard(Some(command.spawn().unwrap()));
    for port in &ports {
        wait_ready(*port).await;
    }
    child.signal(libc::SIGINT);
    let output = child.wait_with_output(Duration::from_secs(15)).unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&output.stdout);
    for ((role, _), port) in obs_stack::ROLES.iter().zip(&ports) {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(role))
            .unwrap_or_else(|| panic!("no line for {role} in {stdout}"));
        assert!(line.contains(&format!("http://127.0.0.1:{port}")), "{line}");
        assert!(
            line.contains(&state.path().join(role).display().to_string()),
            "{line}"
        );
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("SIGINT received"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "text logs into a pipe carry no colour codes: {stderr:?}"
    );
    assert_eq!(
        stderr.matches(" stopped").count(),
        5,
        "all five stop: {stderr}"
    );
}
