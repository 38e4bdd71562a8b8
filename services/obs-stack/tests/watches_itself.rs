//! In obs-stack the fleet watches itself: every role heartbeats to the watcher, and the
//! watcher probes every other role's `/healthz`.

use std::time::Duration;

use obs_stack::{configs_for_tests, Stack};
use obs_testkit::{client, eventually};
use serde_json::Value;

#[actix_web::test]
async fn the_watcher_sees_the_other_four_roles_by_heartbeat_and_by_probe() {
    let state = tempfile::tempdir().unwrap();
    let stack = Stack::build(configs_for_tests(state.path()))
        .await
        .expect("the stack starts");
    let watcher_port = stack
        .endpoints()
        .into_iter()
        .find(|(role, _, _)| role == "watcher")
        .map(|(_, port, _)| port)
        .expect("a watcher");
    let stop = obs_core::CancellationToken::new();
    let until = stop.clone().cancelled_owned();
    let running = obs_core::actix_web::rt::spawn(stack.run_until(until));

    let others = ["archivist", "curator", "planner", "synthesizer"];
    let http = client();
    let status: Value = eventually(
        "the four other roles up by heartbeat and probed up",
        Duration::from_secs(30),
        || async {
            let status: Value = http
                .get(format!("http://127.0.0.1:{watcher_port}/status"))
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            let up = |list: &str, key: &str, want: &Value| -> Vec<String> {
                status[list]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|entry| {
                        &entry[if list == "services" { "status" } else { "up" }] == want
                    })
                    .filter_map(|entry| entry[key].as_str().map(str::to_string))
                    .collect()
            };
            let beating = up("services", "service", &Value::from("up"));
            let probed = up("probes", "name", &Value::from(true));
            (beating == others && probed == others).then_some(status)
        },
    )
    .await;

    for service in status["services"].as_array().unwrap() {
        assert_eq!(service["phase"], "running", "{service}");
        assert_eq!(
            service["timeout_seconds"], 30.0,
            "3 × MONITOR_HEARTBEAT_INTERVAL: {service}"
        );
    }
    for probe in status["probes"].as_array().unwrap() {
        let url = probe["url"].as_str().unwrap();
        assert!(
            url.starts_with("http://127.0.0.1:") && url.ends_with("/healthz"),
            "{url}"
        );
        assert_eq!(probe["consecutive_failures"], 0);
    }
    assert_eq!(status["open_issues"], 0, "{status}");

    stop.cancel();
    running
        .await
        .expect("the stack task")
        .expect("the stack stops cleanly");
}
