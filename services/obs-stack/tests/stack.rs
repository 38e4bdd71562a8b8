//! All five roles in one process, as obs-stack runs them: each keeps the obs-core contract on
//! its own port, and a real Prometheus scrapes them all.

use std::time::Duration;

use obs_stack::{configs_for_tests, Stack, ROLES};
use obs_testkit::{client, eventually, promtool_check_metrics, Prometheus};
use serde_json::Value;

struct RunningStack {
    /// (role, port)
    roles: Vec<(String, u16)>,
    stop: obs_core::CancellationToken,
    finished: tokio::sync::oneshot::Receiver<anyhow::Result<()>>,
    _state: tempfile::TempDir,
}

async fn start_stack() -> RunningStack {
    let state = tempfile::tempdir().unwrap();
    let stack = Stack::build(configs_for_tests(state.path()))
        .await
        .expect("the stack starts");
    let roles = stack
        .endpoints()
        .into_iter()
        .map(|(role, port, _)| (role, port))
        .collect();
    let stop = obs_core::CancellationToken::new();
    let (sender, finished) = tokio::sync::oneshot::channel();
    let until = stop.clone().cancelled_owned();
    obs_core::actix_web::rt::spawn(async move {
        let _ = sender.send(stack.run_until(until).await);
    });
    RunningStack {
        roles,
        stop,
        finished,
        _state: state,
    }
}

impl RunningStack {
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.finished.await?
    }
}

#[actix_web::test]
async fn every_role_keeps_the_contract_on_its_own_port() {
    let stack = start_stack().await;
    let http = client();
    let names: Vec<&str> = stack.roles.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(names, ROLES.map(|(r, _)| r));

    for (role, port) in &stack.roles {
        let base = format!("http://127.0.0.1:{port}");
        for probe in ["/healthz", "/health"] {
            let response = http.get(format!("{base}{probe}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{role} {probe}");
            assert_eq!(response.text().await.unwrap(), r#"{"status":"ok"}"#);
        }
        let ready = http.get(format!("{base}/readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{role} is ready");

        let doc: Value = http
            .get(format!("{base}/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(doc["info"]["title"], format!("obs-fleet {role}"));
        for probe in ["/healthz", "/health", "/readyz", "/metrics"] {
            assert!(
                doc["paths"][probe]["get"].is_object(),
                "{role}: {probe} described"
            );
        }
        // Uptime checkers send HEAD: every GET route answers it, without a body.
        let page = (role == "synthesizer").then_some("/");
        for path in ["/healthz", "/health", "/metrics", "/docs/", "/openapi.json"]
            .into_iter()
            .chain(page)
        {
            let response = http.head(format!("{base}{path}")).send().await.unwrap();
            assert_eq!(response.status(), 200, "{role}: HEAD {path}");
            assert!(
                response.bytes().await.unwrap().is_empty(),
                "{role}: HEAD {path} has no body"
            );
        }
        assert_eq!(
            http.get(format!("{base}/docs/"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );

        let missing: Value = http
            .get(format!("{base}/nope"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(missing["error"], "not_found", "{role}");

        let metrics = http
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let build_info: Vec<&str> = metrics
            .lines()
            .filter(|l| l.starts_with("hello_ai_build_info{"))
            .collect();
        assert_eq!(
            build_info.len(),
            1,
            "{role}: one build_info, its own: {build_info:?}"
        );
        assert!(
            build_info[0].contains(&format!("role=\"{role}\"")),
            "{build_info:?}"
        );
        // At least this test's request: the watcher's probes of the other roles add theirs.
        let healthz = metrics
            .lines()
            .find_map(|line| {
                line.strip_prefix(
                    r#"hello_ai_requests_total{code="200",method="GET",route="/healthz"} "#,
                )
            })
            .and_then(|count| count.parse::<f64>().ok());
        assert!(healthz >= Some(1.0), "{role}: {metrics}");
        promtool_check_metrics(&metrics).unwrap_or_else(|e| panic!("{role}: {e}"));
    }
    stack.stop().await.expect("the stack stops cleanly");
}

#[actix_web::test]
async fn a_real_prometheus_scrapes_all_five_roles() {
    let stack = start_stack().await;
    let scrape_configs: String = stack
        .roles
        .iter()
        .map(|(role, port)| {
            format!("  - job_name: {role}\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n")
        })
        .collect();
    let prometheus = Prometheus::start(&scrape_configs)
        .await
        .expect("prometheus starts");

    let up = eventually(
        "up == 1 for all five jobs",
        Duration::from_secs(30),
        || async {
            let up = prometheus.values_by("up", "job").await.ok()?;
            (up.len() == 5 && up.values().all(|v| *v == 1.0)).then_some(up)
        },
    )
    .await;
    assert_eq!(up.keys().cloned().collect::<Vec<_>>(), {
        let mut roles: Vec<String> = ROLES.iter().map(|(r, _)| r.to_string()).collect();
        roles.sort();
        roles
    });
    let hello_up = prometheus.values_by("hello_ai_up", "job").await.unwrap();
    assert_eq!(hello_up.len(), 5, "{hello_up:?}");
    assert!(hello_up.values().all(|v| *v == 1.0), "{hello_up:?}");
    let info = prometheus
        .values_by("hello_ai_build_info", "role")
        .await
        .unwrap();
    assert_eq!(info.len(), 5, "one build_info per role: {info:?}");

    // The request counter moves: traffic to /healthz shows up in Prometheus for every role.
    let healthz = r#"hello_ai_requests_total{route="/healthz",method="GET",code="200"}"#;
    let before = prometheus.values_by(healthz, "job").await.unwrap();
    let http = client();
    for (_, port) in &stack.roles {
        for _ in 0..25 {
            http.get(format!("http://127.0.0.1:{port}/healthz"))
                .send()
                .await
                .unwrap();
        }
    }
    let after = eventually(
        "the healthz counter to move in every job",
        Duration::from_secs(30),
        || async {
            let now = prometheus.values_by(healthz, "job").await.ok()?;
            let moved = now.len() == 5
                && now
                    .iter()
                    .all(|(job, v)| *v >= before.get(job).copied().unwrap_or(0.0) + 25.0);
            moved.then_some(now)
        },
    )
    .await;
    assert_eq!(after.len(), 5);
    let scrapes = prometheus
        .values_by(
            r#"hello_ai_requests_total{route="/metrics",code="200"}"#,
            "job",
        )
        .await
        .unwrap();
    assert_eq!(
        scrapes.len(),
        5,
        "Prometheus's own scrapes are counted under the /metrics route"
    );
    stack.stop().await.unwrap();
}

/// The wiring end to end: an issue posted to the curator becomes an incident, the curator
/// forwards it to the planner, whose plan reaches the archive as a record of kind `plan`.
#[actix_web::test]
async fn an_issue_becomes_a_plan_that_is_archived() {
    let stack = start_stack().await;
    let http = client();
    let port = |role: &str| {
        stack
            .roles
            .iter()
            .find(|(r, _)| r == role)
            .map(|(_, port)| *port)
            .expect("the role runs")
    };
    let issue = serde_json::json!([{
        "id": "01JC3Z8Q2J6W7V2N5Y4M1K0P9R", "kind": "oom_killed", "service": "api",
        "subject": "api-1", "severity": "critical", "state": "open",
        "message": "api-1 was killed: out of memory", "recommendation": "Raise the memory limit",
        "first_seen": "2026-01-02T03:04:05Z", "last_seen": "2026-01-02T03:04:05Z", "count": 1,
        "facts": {"container": "api-1", "memory_limit_bytes": 268435456, "exit_code": 137}}]);
    let response = http
        .post(format!("http://127.0.0.1:{}/v1/issues", port("curator")))
        .json(&issue)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let planner = format!("http://127.0.0.1:{}/v1/plans?service=api", port("planner"));
    let plan: Value = eventually(
        "the planner to make a plan",
        Duration::from_secs(20),
        || async {
            let body: Value = http.get(&planner).send().await.ok()?.json().await.ok()?;
            body["plans"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(plan["rule"], "oom_killed");
    assert!(
        plan.to_string().contains("from 256 MiB to 512 MiB"),
        "{plan:#}"
    );
    let archive = format!(
        "http://127.0.0.1:{}/v1/records?kind=plan&service=api",
        port("archivist")
    );
    let record: Value = eventually(
        "the plan in the archive",
        Duration::from_secs(20),
        || async {
            let body: Value = http.get(&archive).send().await.ok()?.json().await.ok()?;
            body["records"].as_array()?.first().cloned()
        },
    )
    .await;
    assert_eq!(record["body"]["id"], plan["id"]);
    stack.stop().await.expect("a clean stop");
}
