//! The effective rules over HTTP, a RULES_FILE that replaces and extends them, and files
//! that stop the real binary with exit code 2 and one line.

use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::{binary, client, eventually, free_port, ChildGuard};
use planner::PlannerConfig;
use serde_json::{json, Value};

use crate::helpers::*;

const KINDS: [&str; 9] = [
    "heartbeat_missed",
    "service_failed",
    "oom_killed",
    "restart_loop",
    "unhealthy",
    "crashed",
    "probe_failed",
    "missing",
    "alert",
];

const HOUSE_RULES: &str = r#"
# Ours: unhealthy web containers page the web team first; HighErrorRate rolls back.
rules:
  - name: unhealthy
    match: {kind: unhealthy}
    priority: P1
    summary: "{container} is unhealthy (house rule)"
    steps:
      - action: restart_container
        title: "Restart {container}"
        reason: "We restart first and ask later"
        safe: true
        target: "{container}"
  - name: high-error-rate
    match:
      kind: alert
      labels: {alertname: HighErrorRate}
    priority: P1
    summary: "{alertname} on {job}: roll back"
    steps:
      - action: roll_back
        title: "Roll {service} back to the previous release"
        reason: "Team {label.team} rolls back on 5xx, then investigates"
"#;

fn rules_by_name(body: &Value) -> Vec<(String, Value)> {
    body["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| (rule["name"].as_str().unwrap().to_string(), rule.clone()))
        .collect()
}

#[actix_web::test]
async fn the_builtin_rules_cover_every_kind() {
    let app = spawn(PlannerConfig::for_tests()).await;
    let (status, body) = get(&app, "/v1/rules").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["rules_file"], Value::Null);
    let rules = rules_by_name(&body);
    for kind in KINDS {
        assert!(
            rules
                .iter()
                .any(|(_, rule)| rule["match"]["kind"] == kind && rule["source"] == "builtin"),
            "no built-in rule for {kind}"
        );
    }
    assert!(body["placeholders"]
        .as_array()
        .unwrap()
        .contains(&json!("memory_limit")));
}

#[actix_web::test]
async fn a_rules_file_replaces_and_extends_the_builtin_rules() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, HOUSE_RULES).unwrap();
    let settings = PlannerConfig {
        rules_file: Some(path.clone()),
        ..PlannerConfig::for_tests()
    };
    let app = spawn(settings).await;
    let (_, body) = get(&app, "/v1/rules").await;
    assert_eq!(body["rules_file"], path.display().to_string());
    let rules = rules_by_name(&body);
    let unhealthy = &rules
        .iter()
        .find(|(name, _)| name == "unhealthy")
        .unwrap()
        .1;
    assert_eq!(unhealthy["source"], "rules_file");
    assert_eq!(unhealthy["replaces_builtin"], true);
    let added = &rules
        .iter()
        .find(|(name, _)| name == "high-error-rate")
        .unwrap()
        .1;
    assert_eq!(added["source"], "rules_file");
    assert!(added.get("replaces_builtin").is_none());
    assert_eq!(added["match"]["labels"]["alertname"], "HighErrorRate");
    assert_eq!(
        rules.iter().filter(|(name, _)| name == "unhealthy").count(),
        1,
        "replaced, not doubled"
    );

    let sick = incident("unhealthy", "web-1", "web-1", json!({"container": "web-1"}));
    let mut alert = incident(
        "alert",
        "api",
        "HighErrorRate",
        json!({"alertname": "HighErrorRate", "job": "api"}),
    );
    alert["labels"] = json!({"alertname": "HighErrorRate", "job": "api", "team": "payments"});
    let mut other_alert = incident("alert", "api", "DiskFull", json!({"alertname": "DiskFull"}));
    other_alert["labels"] = json!({"alertname": "DiskFull"});
    post_incidents(&app, &[sick.clone(), alert.clone(), other_alert.clone()]).await;

    let plan = plan_of(&app, &sick).await;
    assert_eq!(plan["rule"], "unhealthy");
    assert_eq!(plan["priority"], "P1");
    assert_eq!(plan["summary"], "web-1 is unhealthy (house rule)");
    let plan = plan_of(&app, &alert).await;
    assert_eq!(plan["rule"], "high-error-rate");
    assert_eq!(plan["summary"], "HighErrorRate on api: roll back");
    assert_eq!(
        plan["steps"][0]["reason"],
        "Team payments rolls back on 5xx, then investigates"
    );
    assert_eq!(
        plan_of(&app, &other_alert).await["rule"],
        "alert",
        "the built-in rule still serves the rest"
    );
}

fn planner_process(env: &[(&str, &str)]) -> (ChildGuard, u16, tempfile::TempDir) {
    let state = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(binary("planner"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STATE_DIR", state.path())
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    (
        ChildGuard(Some(command.spawn().expect("the planner binary starts"))),
        port,
        state,
    )
}

#[test]
fn a_bad_rules_file_or_setting_stops_the_binary_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let unparsable = write("unparsable.yaml", "rules: [\n  - name: x\n");
    let unknown_kind = write(
        "kind.yaml",
        "rules:\n  - name: x\n    match: {kind: disk_full}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n",
    );
    let unknown_placeholder = write(
        "placeholder.yaml",
        "rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: \"{exitcode}\"\n    steps: [{action: a, title: t, reason: r}]\n",
    );
    let missing = dir.path().join("nope.yaml").display().to_string();
    for (variable, value, expected) in [
        ("RULES_FILE", unparsable.as_str(), "RULES_FILE "),
        (
            "RULES_FILE",
            unknown_kind.as_str(),
            "rules[0].match.kind: unknown variant `disk_full`",
        ),
        (
            "RULES_FILE",
            unknown_placeholder.as_str(),
            "rules[0].summary: unknown placeholder {exitcode}",
        ),
        ("RULES_FILE", missing.as_str(), "cannot read"),
        ("AUTO_REMEDIATE", "sometimes", "AUTO_REMEDIATE: 'sometimes'"),
        (
            "REMEDIATE_COOLDOWN_SECONDS",
            "-1",
            "REMEDIATE_COOLDOWN_SECONDS",
        ),
        (
            "REMEDIATE_COOLDOWN_SECONDS",
            "NaN",
            "REMEDIATE_COOLDOWN_SECONDS: NaN is not a number of seconds from 0 to 604800",
        ),
        (
            "REMEDIATE_COOLDOWN_SECONDS",
            "1e400",
            "REMEDIATE_COOLDOWN_SECONDS",
        ),
        ("REMEDIATE_MAX_ATTEMPTS", "0", "REMEDIATE_MAX_ATTEMPTS"),
        ("REMEDIATE_MAX_ATTEMPTS", "many", "REMEDIATE_MAX_ATTEMPTS"),
        ("CLOSED_PLANS_MAX", "0", "CLOSED_PLANS_MAX"),
    ] {
        let (child, _, _state) = planner_process(&[(variable, value)]);
        let output = child
            .wait_with_output(Duration::from_secs(10))
            .expect("it exits");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{variable}={value}: {stderr}"
        );
        let lines: Vec<&str> = stderr
            .lines()
            .filter(|line| !line.starts_with('{'))
            .collect();
        assert_eq!(lines.len(), 1, "one line: {stderr}");
        assert!(lines[0].starts_with("configuration error: "), "{stderr}");
        assert!(lines[0].contains(expected), "{variable}={value}: {stderr}");
        if variable == "RULES_FILE" {
            assert!(lines[0].contains(value), "names the file: {stderr}");
        }
    }
}

#[actix_web::test]
async fn a_good_rules_file_serves_from_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, HOUSE_RULES).unwrap();
    let (_child, port, _state) = planner_process(&[("RULES_FILE", &path.display().to_string())]);
    let http = client();
    let body: Value = eventually("the planner to answer", Duration::from_secs(20), || async {
        let response = http
            .get(format!("http://127.0.0.1:{port}/v1/rules"))
            .send()
            .await
            .ok()?;
        response.json().await.ok()
    })
    .await;
    assert_eq!(body["rules_file"], path.display().to_string());
    assert!(rules_by_name(&body)
        .iter()
        .any(|(name, _)| name == "high-error-rate"));
}
