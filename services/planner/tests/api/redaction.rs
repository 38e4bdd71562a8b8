//! Credentials never leave the process in clear: the real planner binary, its peers' URLs
//! carrying `user:secret@` and `?token=secret`, every delivery failing (nothing listens on
//! their port) — the outboxes to the synthesizer and the archivist retry, and
//! auto-remediation cannot reach the watcher. reqwest names the URL in its errors, so each of
//! these would print the secret if it were not redacted; nothing on stdout or stderr, at
//! debug level, nor in the plan's outcome may hold it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use obs_testkit::{binary, free_port, ChildGuard};
use serde_json::{json, Value};

use crate::helpers::incident;

const SECRET: &str = "hunter2-s3cr3t";

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[actix_web::test]
async fn peer_urls_with_credentials_are_redacted_in_everything_the_planner_prints() {
    let state = tempfile::tempdir().expect("a state folder");
    let logs = tempfile::tempdir().expect("a log folder");
    let (stdout, stderr) = (logs.path().join("stdout"), logs.path().join("stderr"));
    let closed = free_port();
    let peer = format!("http://fleet:{SECRET}@127.0.0.1:{closed}/base?token={SECRET}&page=1");
    let port = free_port();
    let mut command = Command::new(binary("planner"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STATE_DIR", state.path())
        .env("LOG_LEVEL", "debug")
        .env("WATCHER_URL", &peer)
        .env("SYNTHESIZER_URL", &peer)
        .env("ARCHIVIST_URL", &peer)
        .env("AUTO_REMEDIATE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&stdout).expect("a stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("a stderr file"));
    let child = ChildGuard(Some(command.spawn().expect("the planner binary starts")));
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let ready = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.is_err() {
        assert!(
            ready.elapsed() < Duration::from_secs(20),
            "the planner did not start: {}",
            read(&stderr)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A container to restart and a pod to roll out: both go to the unreachable watcher; the
    // plans go to the unreachable synthesizer and archivist.
    let container = incident(
        "unhealthy",
        "web",
        "web-1",
        json!({"container": "web-1", "failing_streak": 3}),
    );
    let pod = incident(
        "unhealthy",
        "api",
        "prod/api-7d9f-x1/app",
        json!({"platform": "kubernetes", "namespace": "prod", "pod": "api-7d9f-x1",
               "container": "app", "owner_kind": "Deployment", "owner_name": "api",
               "workload": "deployment/api"}),
    );
    let answer = client
        .post(format!("{base}/v1/incidents"))
        .json(&json!([container, pod]))
        .send()
        .await
        .expect("an answer");
    assert_eq!(answer.status(), 200);

    // Until both restarts failed and both outboxes said their delivery failed.
    let mut details = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        details.clear();
        for incident in [&container, &pod] {
            let id = incident["id"].as_str().unwrap();
            let plan: Value = client
                .get(format!("{base}/v1/plans/{id}"))
                .send()
                .await
                .expect("an answer")
                .json()
                .await
                .expect("a plan");
            if let Some(detail) = plan["steps"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|step| step["outcome"]["detail"].as_str())
            {
                details.push(detail.to_string());
            }
        }
        let printed = read(&stdout) + &read(&stderr);
        let delivery_failures = printed.matches("delivery failed").count();
        if details.len() == 2 && delivery_failures >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failures did not all happen: {details:?}\n{printed}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.signal(15); // SIGTERM: a clean stop, so everything it meant to print is printed
    let _ = child.wait_with_output(Duration::from_secs(20));

    let printed = read(&stdout) + &read(&stderr);
    for detail in &details {
        assert!(
            detail.contains("could not be reached") && !detail.contains(SECRET),
            "{detail}"
        );
    }
    assert!(
        printed.contains("remediation"),
        "the failed restarts are logged: {printed}"
    );
    assert!(
        !printed.contains(SECRET),
        "a secret in the logs:\n{printed}"
    );
    // The URLs are there, redacted: the test saw the lines that would have leaked.
    assert!(printed.contains("***@127.0.0.1"), "{printed}");
    assert!(printed.contains("page=1"), "{printed}");
}
