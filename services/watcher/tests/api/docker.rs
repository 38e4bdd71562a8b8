//! Against the machine's real Docker engine, with images built here `FROM scratch` from
//! Debian's busybox-static: a container that exits non-zero, one that loops under a restart
//! policy, one whose HEALTHCHECK fails, one that exceeds its memory limit. Every container
//! and image has a unique name and is removed on drop. Without an engine these tests fail
//! with a message saying so; they never pass silently.

use std::path::{Path, PathBuf};
use std::time::Duration;

use obs_testkit::docker::{docker, docker_host, inspect, Containers, Image};
use obs_testkit::eventually;
use serde_json::Value;
use watcher::config::DockerMode;
use watcher::WatcherConfig;

use crate::helpers::{
    events_of, get, issues, metrics, post, sample, spawn, spawn_with, wait_for_issue,
};

/// A name no other test or run uses: `obs-test-watcher-<pid>-<n>-<what>`.
fn unique(what: &str) -> String {
    obs_testkit::docker::unique("watcher", what)
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `base` with a HEALTHCHECK that always fails.
fn unhealthy_image(base: &Image) -> Image {
    Image::build(
        "watcher",
        "unhealthy",
        &fixtures().join("unhealthy"),
        &[&format!("BASE={}", base.name())],
    )
}

fn docker_settings() -> WatcherConfig {
    let mut settings = WatcherConfig::for_tests();
    settings.docker.mode = DockerMode::On;
    settings.docker.host = docker_host();
    settings
}

async fn wait_connected(app: &obs_testkit::TestApp) {
    eventually(
        "the watcher to follow the engine",
        Duration::from_secs(20),
        || async { (get(app, "/status").await.1["docker"] == true).then_some(()) },
    )
    .await;
}

async fn wait_for_event(app: &obs_testkit::TestApp, container: &str, event_type: &str) -> Value {
    eventually(
        &format!("a {event_type} event of {container}"),
        Duration::from_secs(30),
        || async {
            events_of(app, container)
                .await
                .into_iter()
                .find(|event| event["event_type"] == event_type)
        },
    )
    .await
}

#[actix_web::test]
async fn a_container_that_exits_non_zero_is_a_crash_with_its_logs_at_hand() {
    let image = Image::busybox("watcher");
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("crash");
    containers.run(
        &name,
        &[],
        &image,
        &["sh", "-c", "echo starting; echo boom >&2; exit 3"],
    );

    let issue = wait_for_issue(&app, "open", "crashed", &name).await;
    assert_eq!(issue["subject"], name.as_str());
    assert_eq!(
        issue["severity"], "critical",
        "no restart policy: it stays down"
    );
    assert_eq!(issue["facts"]["exit_code"], 3);
    assert_eq!(issue["facts"]["restart_policy"], "no");
    let recommendation = issue["recommendation"].as_str().unwrap();
    assert!(recommendation.contains("logs"), "{recommendation}");

    let die = wait_for_event(&app, &name, "die").await;
    assert_eq!(die["exit_code"], 3);
    assert_eq!(die["source"], "docker");
    assert_eq!(die["container"], name.as_str());
    assert!(die["timestamp"].is_string());
    wait_for_event(&app, &name, "start").await;

    let (status, logs) = get(&app, &format!("/logs?container={name}&lines=10")).await;
    assert_eq!(status, 200, "{logs}");
    assert_eq!(logs["container"], name.as_str());
    let lines: Vec<&str> = logs["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        lines.contains(&"starting") && lines.contains(&"boom"),
        "{lines:?}"
    );
    let (_, one) = get(&app, &format!("/logs?container={name}&lines=1")).await;
    assert_eq!(one["lines"].as_array().unwrap().len(), 1, "{one}");

    let (status, container) = get(&app, &format!("/container?name={name}")).await;
    assert_eq!(status, 200, "{container}");
    assert_eq!(container["state"], "exited");
    assert_eq!(container["exit_code"], 3);
    let (_, list) = get(&app, "/containers").await;
    assert_eq!(list["docker"], true);
    assert!(list["containers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == name.as_str()));
}

#[actix_web::test]
async fn a_requested_stop_or_restart_is_not_a_crash() {
    let image = Image::busybox("watcher");
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("sleeper");
    containers.run(&name, &[], &image, &["sleep", "300"]);
    wait_for_event(&app, &name, "start").await;

    // Restarting through the API: the planner's auto-remediation path.
    let (status, body) = post(
        &app,
        &format!("/containers/{name}/restart?timeout_seconds=0"),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "restarted");
    wait_for_event(&app, &name, "restart_requested").await;
    wait_for_event(&app, &name, "restart").await;

    docker(&["stop", "-t", "0", &name]);
    let stopped = eventually("the stop's die event", Duration::from_secs(30), || async {
        let dies: Vec<Value> = events_of(&app, &name)
            .await
            .into_iter()
            .filter(|event| event["event_type"] == "die")
            .collect();
        (dies.len() >= 2).then_some(dies)
    })
    .await;
    assert!(
        stopped.iter().all(|die| die["exit_code"] != 0),
        "killed by the stop: {stopped:?}"
    );
    wait_for_event(&app, &name, "stop").await;
    assert!(
        issues(&app, "all", "crashed", &name).await.is_empty(),
        "a requested stop or restart is not a crash"
    );
    assert!(issues(&app, "all", "oom_killed", &name).await.is_empty());

    let (status, body) = post(
        &app,
        &format!("/containers/{}/restart", unique("nobody")),
        &serde_json::json!({}),
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
}

#[actix_web::test]
async fn a_container_restarting_in_a_loop_is_a_restart_loop() {
    let image = Image::busybox("watcher");
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("loop");
    containers.run(
        &name,
        &["--restart", "on-failure:10"],
        &image,
        &["sh", "-c", "exit 2"],
    );

    let issue = wait_for_issue(&app, "open", "restart_loop", &name).await;
    assert_eq!(issue["severity"], "critical");
    assert!(
        issue["facts"]["starts_in_window"].as_u64().unwrap() >= 3,
        "{issue}"
    );
    assert_eq!(issue["facts"]["window_seconds"], 300);
    assert_eq!(issue["facts"]["restart_policy"], "on-failure");
    assert!(issue["recommendation"]
        .as_str()
        .unwrap()
        .contains("on-failure"));

    // Its crashes are the loop's sightings: one issue (one incident, one notification
    // downstream) that escalated, not a crash and a loop side by side.
    assert_eq!(issue["facts"]["exit_code"], 2);
    assert!(issue["count"].as_u64().unwrap() >= 3, "{issue}");
    assert!(
        issues(&app, "all", "crashed", &name).await.is_empty(),
        "no separate crash issue"
    );

    let restarts = eventually("the restart counter", Duration::from_secs(30), || async {
        let text = metrics(&app).await;
        sample(
            &text,
            &format!("watcher_container_restarts_total{{container=\"{name}\"}}"),
        )
        .filter(|n| *n >= 2.0)
    })
    .await;
    assert!(restarts >= 2.0);
}

#[actix_web::test]
async fn a_failing_healthcheck_is_unhealthy() {
    let base = Image::busybox("watcher");
    let image = unhealthy_image(&base);
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("sick");
    containers.run(&name, &[], &image, &[]);

    let issue = wait_for_issue(&app, "open", "unhealthy", &name).await;
    assert_eq!(issue["severity"], "warning");
    assert!(
        issue["facts"]["failing_streak"].as_i64().unwrap() >= 1,
        "{issue}"
    );
    assert!(issue["recommendation"]
        .as_str()
        .unwrap()
        .contains("HEALTHCHECK"));
    let event = wait_for_event(&app, &name, "health_status").await;
    assert_eq!(event["detail"], "unhealthy");
    let (_, container) = get(&app, &format!("/container?name={name}")).await;
    assert_eq!(container["health"], "unhealthy");
}

#[actix_web::test]
async fn a_container_over_its_memory_limit_is_an_oom_kill_and_says_which_signal() {
    let image = Image::busybox("watcher");
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("hog");
    // dd reads 64 MiB of zeros into one buffer: far over a 16 MiB limit.
    containers.run(
        &name,
        &["--memory", "16m", "--memory-swap", "16m"],
        &image,
        &["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
    );

    let issue = wait_for_issue(&app, "open", "oom_killed", &name).await;
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["facts"]["memory_limit_bytes"], 16 * 1024 * 1024);
    let signal = issue["facts"]["signal"].as_str().unwrap();
    assert!(
        [
            "oom_event",
            "state_oom_killed",
            "exit_137_under_memory_limit"
        ]
        .contains(&signal),
        "{issue}"
    );
    assert!(issue["recommendation"].as_str().unwrap().contains("memory"));
    // Sizes read as the planner's plans write them; only a command to copy has docker's.
    let message = issue["message"].as_str().unwrap();
    assert!(message.contains("(16 MiB; signal: "), "{message}");
    let recommendation = issue["recommendation"].as_str().unwrap();
    assert!(
        recommendation.contains("under its 16 MiB limit")
            && recommendation.contains("docker update --memory 32m --memory-swap 32m"),
        "{recommendation}"
    );
    // The exit that follows is the same occurrence: it adds facts, it is not a crash.
    let issue = eventually(
        "the exit code on the OOM issue",
        Duration::from_secs(30),
        || async {
            issues(&app, "open", "oom_killed", &name)
                .await
                .into_iter()
                .find(|issue| issue["facts"]["exit_code"] == 137)
        },
    )
    .await;
    assert_eq!(issue["count"], 1, "one OOM kill, one occurrence: {issue}");
    assert!(issues(&app, "all", "crashed", &name).await.is_empty());
    let text = metrics(&app).await;
    assert_eq!(
        sample(
            &text,
            &format!("watcher_container_oom_kills_total{{container=\"{name}\"}}")
        ),
        Some(1.0)
    );
}

/// A Unix-socket proxy in front of the real engine, which the test can take away and bring
/// back: the engine "goes away" for the watcher without touching the machine's dockerd.
struct EngineProxy {
    path: PathBuf,
    stop: tokio::sync::watch::Sender<bool>,
}

impl EngineProxy {
    fn start(path: &Path) -> EngineProxy {
        let _ = std::fs::remove_file(path);
        let listener = tokio::net::UnixListener::bind(path).expect("binding the proxy socket");
        let upstream = docker_host()
            .strip_prefix("unix://")
            .expect("the proxy test needs a unix:// DOCKER_HOST")
            .to_string();
        let (sender, receiver) = tokio::sync::watch::channel(false);
        actix_web::rt::spawn(async move {
            let mut stopped = receiver.clone();
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    accepted = listener.accept() => {
                        let Ok((mut client, _)) = accepted else { return };
                        let upstream = upstream.clone();
                        let mut stopped = receiver.clone();
                        actix_web::rt::spawn(async move {
                            let Ok(mut server) = tokio::net::UnixStream::connect(&upstream).await else { return };
                            tokio::select! {
                                _ = stopped.changed() => {}
                                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            }
                        });
                    }
                }
            }
        });
        EngineProxy {
            path: path.to_path_buf(),
            stop: sender,
        }
    }

    /// Drop every connection and the socket itself.
    fn stop(self) {
        let _ = self.stop.send(true);
        let _ = std::fs::remove_file(&self.path);
    }
}

#[actix_web::test]
async fn the_watcher_reconnects_when_the_engine_goes_away_and_comes_back() {
    let image = Image::busybox("watcher");
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("engine.sock");
    let proxy = EngineProxy::start(&socket);
    let mut settings = docker_settings();
    settings.docker.host = format!("unix://{}", socket.display());
    let (config, _state) = obs_testkit::test_config("watcher");
    let app = spawn_with(config, settings).await;
    wait_connected(&app).await;

    proxy.stop();
    eventually(
        "the watcher to notice the engine is gone",
        Duration::from_secs(20),
        || async { (get(&app, "/status").await.1["docker"] == false).then_some(()) },
    )
    .await;
    let (status, body) = get(&app, "/logs?container=anything").await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");

    // While it is away, a container appears; the fresh connection's listing finds it.
    let mut containers = Containers::default();
    let quiet = unique("while-away");
    containers.run(&quiet, &[], &image, &["sleep", "300"]);
    eventually(
        "a failed attempt to reconnect",
        Duration::from_secs(20),
        || async {
            let text = metrics(&app).await;
            (sample(&text, "watcher_docker_connect_failures_total")? >= 1.0).then_some(())
        },
    )
    .await;
    let _proxy = EngineProxy::start(&socket);
    wait_connected(&app).await;
    let (_, list) = get(&app, "/containers").await;
    assert!(
        list["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == quiet.as_str() && c["state"] == "running"),
        "{list}"
    );
    // And the new event stream works: a crash now is detected.
    let crash = unique("after");
    containers.run(&crash, &[], &image, &["sh", "-c", "exit 5"]);
    let issue = wait_for_issue(&app, "open", "crashed", &crash).await;
    assert_eq!(issue["facts"]["exit_code"], 5);
    let text = metrics(&app).await;
    assert_eq!(sample(&text, "watcher_docker_connected"), Some(1.0));
}

#[actix_web::test]
async fn without_an_engine_auto_runs_without_it_and_on_refuses_to_start() {
    let mut settings = WatcherConfig::for_tests();
    settings.docker.mode = DockerMode::Auto;
    settings.docker.host = "unix:///nonexistent/obs-watcher-test.sock".into();
    let app = spawn(settings.clone()).await;
    let (_, status) = get(&app, "/status").await;
    assert_eq!(status["docker"], false);
    let (_, list) = get(&app, "/containers").await;
    assert_eq!(list, serde_json::json!({"docker": false, "containers": []}));
    let (status, body) = get(&app, "/logs?container=app").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = get(&app, "/container?name=app").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = post(&app, "/containers/app/restart", &serde_json::json!({})).await;
    assert_eq!(status, 503, "{body}");

    settings.docker.mode = DockerMode::On;
    let (config, _state) = obs_testkit::test_config("watcher");
    let service = obs_core::Service::new(config).unwrap();
    let error = watcher::Watcher::with_config(&service, settings)
        .await
        .err()
        .expect("DOCKER_WATCH=on without an engine fails");
    let text = format!("{error:#}");
    assert!(
        text.contains("DOCKER_WATCH=on") && text.contains("DOCKER_HOST=unix:///nonexistent"),
        "{text}"
    );
}

/// Containers that ended before the watcher started are judged by what the engine's state
/// still says: a non-zero exit is a crash; a clean exit is nothing. A restart of the watcher
/// does not count the same crash again.
#[actix_web::test]
async fn a_crash_from_before_the_watcher_started_is_found_at_start() {
    let image = Image::busybox("watcher");
    let mut containers = Containers::default();
    let crashed = unique("crashed-earlier");
    let clean = unique("clean-earlier");
    containers.run(&crashed, &[], &image, &["sh", "-c", "exit 4"]);
    containers.run(&clean, &[], &image, &["sh", "-c", "exit 0"]);
    for name in [&crashed, &clean] {
        eventually("the container to exit", Duration::from_secs(20), || async {
            (obs_testkit::docker::inspect(name, "{{.State.Status}}") == "exited").then_some(())
        })
        .await;
    }

    let state = tempfile::tempdir().unwrap();
    let app = crate::helpers::spawn_in(state.path(), docker_settings()).await;
    wait_connected(&app).await;
    let issue = wait_for_issue(&app, "open", "crashed", &crashed).await;
    assert_eq!(issue["facts"]["exit_code"], 4);
    assert_eq!(issue["count"], 1);
    assert!(issues(&app, "all", "crashed", &clean).await.is_empty());
    app.shutdown().await.unwrap();

    let app = crate::helpers::spawn_in(state.path(), docker_settings()).await;
    wait_connected(&app).await;
    let issue = wait_for_issue(&app, "open", "crashed", &crashed).await;
    assert_eq!(
        issue["count"], 1,
        "the same crash, not a new occurrence: {issue}"
    );
}

/// A container removed takes its open issues with it: resolved, the same issue id, saying why.
#[actix_web::test]
async fn removing_a_crashed_container_resolves_its_issues() {
    let image = Image::busybox("watcher");
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("removed");
    containers.run(&name, &[], &image, &["sh", "-c", "exit 5"]);
    let open = wait_for_issue(&app, "open", "crashed", &name).await;

    docker(&["rm", "-f", &name]);
    let resolved = wait_for_issue(&app, "resolved", "crashed", &name).await;
    assert_eq!(resolved["id"], open["id"], "the same issue, resolved");
    assert_eq!(resolved["facts"]["resolution"], "container removed");
    wait_for_event(&app, &name, "destroy").await;
    let (status, _) = get(&app, &format!("/container?name={name}")).await;
    assert_eq!(status, 404, "no longer known");
}

#[actix_web::test]
async fn a_healthcheck_that_passes_again_resolves_unhealthy() {
    let base = Image::busybox("watcher");
    let image = Image::build(
        "watcher",
        "recovering",
        &fixtures().join("recovering"),
        &[&format!("BASE={}", base.name())],
    );
    let app = spawn(docker_settings()).await;
    wait_connected(&app).await;
    let mut containers = Containers::default();
    let name = unique("recovering");
    containers.run(&name, &[], &image, &[]);
    let open = wait_for_issue(&app, "open", "unhealthy", &name).await;

    docker(&["exec", &name, "touch", "/healthy"]);
    let resolved = wait_for_issue(&app, "resolved", "unhealthy", &name).await;
    assert_eq!(resolved["id"], open["id"], "the same issue, resolved");
    let (_, container) = get(&app, &format!("/container?name={name}")).await;
    assert_eq!(container["health"], "healthy");
    assert!(issues(&app, "open", "unhealthy", &name).await.is_empty());
}

#[actix_web::test]
async fn a_restart_loop_that_settles_is_resolved_after_a_whole_window_running() {
    let image = Image::busybox("watcher");
    let mut settings = docker_settings();
    settings.docker.restart_loop_window = Duration::from_secs(4);
    let app = spawn(settings).await;
    wait_connected(&app).await;
    // Exits 2 on its first three starts, then stays up: the start count lives in a host
    // folder, which survives the container's restarts.
    let state = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        state.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    let volume = format!("{}:/state", state.path().display());
    let mut containers = Containers::default();
    let name = unique("settles");
    containers.run(
        &name,
        &["--restart", "on-failure:10", "-v", &volume],
        &image,
        &[
            "sh",
            "-c",
            "n=$(cat /state/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /state/n; \
             [ $n -ge 4 ] && exec sleep 300; exit 2",
        ],
    );

    let looping = wait_for_issue(&app, "open", "restart_loop", &name).await;
    let resolved = wait_for_issue(&app, "resolved", "restart_loop", &name).await;
    assert_eq!(resolved["id"], looping["id"]);
    assert_eq!(
        resolved["facts"]["resolution"],
        "running steadily for the restart-loop window"
    );
    assert!(
        issues(&app, "all", "crashed", &name).await.is_empty(),
        "the crashes were the loop's"
    );
    let started = inspect(&name, "{{.State.StartedAt}}");
    let started = chrono::DateTime::parse_from_rfc3339(&started).unwrap();
    let resolved_at =
        chrono::DateTime::parse_from_rfc3339(resolved["resolved_at"].as_str().unwrap()).unwrap();
    assert!(
        resolved_at - started >= chrono::Duration::seconds(4),
        "not before a whole window of running: started {started}, resolved {resolved_at}"
    );
    assert_eq!(inspect(&name, "{{.State.Status}}"), "running");
}

#[actix_web::test]
async fn only_the_containers_the_filters_admit_are_followed() {
    let image = Image::busybox("watcher");
    let mut settings = docker_settings();
    settings.docker.filter =
        watcher::config::ContainerFilter::parse("obs-test.watch", "", "", "*-skipped").unwrap();
    let mut containers = Containers::default();
    let label = ["--label", "obs-test.watch=yes"];
    // Crashed before the watcher starts: judged by the seed.
    let watched_early = unique("watched-early");
    let unlabelled_early = unique("unlabelled-early");
    containers.run(&watched_early, &label, &image, &["sh", "-c", "exit 4"]);
    containers.run(&unlabelled_early, &[], &image, &["sh", "-c", "exit 4"]);
    for name in [&watched_early, &unlabelled_early] {
        eventually(
            "the early container to exit",
            Duration::from_secs(30),
            || async { (inspect(name, "{{.State.Status}}") == "exited").then_some(()) },
        )
        .await;
    }
    let app = spawn(settings).await;
    wait_connected(&app).await;
    wait_for_issue(&app, "open", "crashed", &watched_early).await;

    // Crashing while it watches: the excluded ones exit first, so by the time the watched
    // one's crash is an issue, their events have been through the watcher.
    let unlabelled = unique("unlabelled");
    let excluded = format!("{}-skipped", unique("named"));
    containers.run(&unlabelled, &[], &image, &["sh", "-c", "exit 3"]);
    containers.run(&excluded, &label, &image, &["sh", "-c", "exit 3"]);
    for name in [&unlabelled, &excluded] {
        eventually("the container to exit", Duration::from_secs(30), || async {
            (inspect(name, "{{.State.Status}}") == "exited").then_some(())
        })
        .await;
    }
    let watched = unique("watched");
    containers.run(&watched, &label, &image, &["sh", "-c", "exit 3"]);
    wait_for_issue(&app, "open", "crashed", &watched).await;

    let (_, listed) = get(&app, "/containers").await;
    let listed: Vec<&str> = listed["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|container| container["name"].as_str())
        .collect();
    assert!(listed.contains(&watched.as_str()), "{listed:?}");
    for name in [&unlabelled_early, &unlabelled, &excluded] {
        assert!(
            issues(&app, "all", "crashed", name).await.is_empty(),
            "{name} is not followed"
        );
        assert!(events_of(&app, name).await.is_empty(), "{name}: no events");
        assert!(
            !listed.contains(&name.as_str()),
            "{name} not listed: {listed:?}"
        );
    }
}
