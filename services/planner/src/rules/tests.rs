use std::collections::BTreeMap;

use chrono::{TimeZone, Utc};
use obs_model::{Incident, IncidentChange, IncidentSource, IncidentState, IssueKind, Severity};
use serde_json::{json, Value};
use ulid::Ulid;

use super::*;

const ALL_KINDS: [IssueKind; 12] = [
    IssueKind::HeartbeatMissed,
    IssueKind::ServiceFailed,
    IssueKind::OomKilled,
    IssueKind::RestartLoop,
    IssueKind::Unhealthy,
    IssueKind::Crashed,
    IssueKind::ProbeFailed,
    IssueKind::Missing,
    IssueKind::Alert,
    IssueKind::ImagePullFailed,
    IssueKind::Evicted,
    IssueKind::Unschedulable,
];

pub fn incident(kind: IssueKind, facts: Value) -> Incident {
    let facts: BTreeMap<String, Value> = serde_json::from_value(facts).unwrap();
    Incident {
        id: Ulid::new(),
        fingerprint: format!("api/{}/api-1", kind.as_str()),
        source: IncidentSource::Watcher,
        kind,
        service: "api".into(),
        subject: "api-1".into(),
        severity: Severity::Critical,
        state: IncidentState::Open,
        title: "api-1 trouble".into(),
        message: "api-1 is in trouble".into(),
        recommendation: "look at api-1".into(),
        first_seen: Utc.with_ymd_and_hms(2026, 1, 2, 3, 0, 0).unwrap(),
        last_seen: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        updated_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        comment: None,
        count: 1,
        reopened: 0,
        flapping: false,
        silenced: None,
        issue_ids: vec![],
        labels: BTreeMap::new(),
        annotations: BTreeMap::new(),
        facts,
        change: IncidentChange::Opened,
        notify: true,
        revision: 1,
    }
}

fn at(minute: u32) -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, minute, 30).unwrap()
}

fn file(text: &str) -> Result<Rules, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yaml");
    std::fs::write(&path, text).unwrap();
    Rules::load(Some(&path)).map_err(|error| error.to_string())
}

#[test]
fn every_kind_has_a_builtin_rule() {
    let rules = Rules::builtin().unwrap();
    for kind in ALL_KINDS {
        let rendered = rules.render(&incident(kind, json!({})), at(10));
        assert_ne!(rendered.rule, "fallback", "{kind:?} has no rule");
        assert!(!rendered.steps.is_empty());
    }
}

#[test]
fn a_kubernetes_oom_plan_speaks_kubectl() {
    let rules = Rules::builtin().unwrap();
    let oom = incident(
        IssueKind::OomKilled,
        json!({"platform": "kubernetes", "namespace": "prod", "pod": "api-7d9f-x1",
               "container": "app", "workload": "deployment/api",
               "memory_limit_bytes": 268435456, "suggested_memory_limit": "512Mi",
               "restarts": 2}),
    );
    let rendered = rules.render(&oom, at(10));
    assert_eq!(rendered.rule, "oom_killed_kubernetes");
    let text: Vec<String> = rendered
        .steps
        .iter()
        .map(|step| format!("{} | {}", step.title, step.reason))
        .collect();
    let all = text.join("\n");
    assert!(
        all.contains("kubectl -n prod set resources deployment/api -c app --limits=memory=512Mi"),
        "{all}"
    );
    assert!(
        all.contains("kubectl -n prod logs api-7d9f-x1 -c app --previous"),
        "{all}"
    );
    assert!(
        rendered.steps.iter().all(|step| !step.safe),
        "nothing runs by itself"
    );
    let crash = incident(
        IssueKind::Crashed,
        json!({"platform": "kubernetes", "namespace": "prod", "pod": "api-7d9f-x1",
               "container": "app", "workload": "deployment/api", "exit_code": 1}),
    );
    let rendered = rules.render(&crash, at(10));
    assert_eq!(rendered.rule, "crashed_kubernetes");
    assert!(rendered.steps.iter().any(|step| step
        .title
        .contains("kubectl -n prod rollout undo deployment/api")));
    // A Docker crash keeps its own rule.
    let docker = incident(IssueKind::Crashed, json!({"exit_code": 1}));
    assert_eq!(rules.render(&docker, at(10)).rule, "crashed");
}

/// The facts the watcher gives a pod of Deployment `api` in `prod` (container `app`).
fn pod_facts(extra: Value) -> Value {
    let mut facts = json!({"platform": "kubernetes", "namespace": "prod", "pod": "api-7d9f-x1",
        "container": "app", "node": "node-1", "owner_kind": "Deployment", "owner_name": "api",
        "workload": "deployment/api", "memory_limit_bytes": 268435456,
        "suggested_memory_limit": "512Mi", "restarts": 3, "image": "registry.example/api:2",
        "reason": "Error", "detail": "the kubelet says so", "not_ready_seconds": 45});
    for (name, value) in extra.as_object().unwrap() {
        facts[name] = value.clone();
    }
    facts
}

fn plan_text(rendered: &Rendered) -> String {
    let mut text = rendered.summary.clone();
    for step in &rendered.steps {
        text.push_str(&format!(
            "\n{} | {} | {:?}",
            step.title, step.reason, step.target
        ));
    }
    text
}

/// Docker's words: its CLI, the watcher's container endpoints, restart policies.
fn assert_no_docker_words(rule: &str, text: &str) {
    for docker in [
        "docker",
        "Docker",
        "/containers/",
        "GET /logs",
        "restart policy",
        "HEALTHCHECK",
    ] {
        assert!(!text.contains(docker), "{rule} says '{docker}':\n{text}");
    }
}

#[test]
fn a_kubernetes_sigkill_gets_the_kubernetes_plan_not_the_docker_one() {
    // The bug: `crashed_sigkill` (exit_code: 137) and `crashed_kubernetes` (platform:
    // kubernetes) are equally specific, and the earlier Docker rule won the tie.
    let rules = Rules::builtin().unwrap();
    let kill = incident(IssueKind::Crashed, pod_facts(json!({"exit_code": 137})));
    let rendered = rules.render(&kill, at(10));
    assert_eq!(rendered.rule, "crashed_sigkill_kubernetes");
    let text = plan_text(&rendered);
    assert_no_docker_words(&rendered.rule, &text);
    assert!(
        text.contains("kubectl -n prod describe pod api-7d9f-x1"),
        "{text}"
    );
    assert!(text.contains("liveness"), "{text}");
    // Exit 139 has only the Docker segfault rule besides the Kubernetes one: the platform's
    // rule wins the tie, whatever the order.
    let segfault = incident(IssueKind::Crashed, pod_facts(json!({"exit_code": 139})));
    assert_eq!(rules.render(&segfault, at(10)).rule, "crashed_kubernetes");
    // Docker's own crashes keep their rules.
    for (code, rule) in [(137, "crashed_sigkill"), (139, "crashed_segfault")] {
        let docker = incident(IssueKind::Crashed, json!({"exit_code": code}));
        assert_eq!(rules.render(&docker, at(10)).rule, rule);
    }
    // A RULES_FILE rule still wins a tie against a built-in one for the platform.
    let own = file(
        "rules:\n  - name: api_crash\n    match: {kind: crashed, service: api}\n    priority: P2\n    summary: api crashed\n    steps:\n      - {action: call_team, title: call, reason: ours}\n",
    )
    .unwrap();
    let segfault = incident(IssueKind::Crashed, pod_facts(json!({"exit_code": 1})));
    assert_eq!(own.render(&segfault, at(10)).rule, "api_crash");
}

#[test]
fn no_kubernetes_plan_speaks_docker() {
    let rules = Rules::builtin().unwrap();
    let owners = [
        json!({}),
        json!({"owner_kind": "StatefulSet", "owner_name": "api", "workload": "statefulset/api"}),
        json!({"owner_kind": "Job", "owner_name": "api", "workload": null}),
        json!({"owner_kind": "KnativeService", "owner_name": "api", "workload": "ksvc/api",
               "knative_service": "api"}),
        json!({"owner_kind": null, "owner_name": null, "workload": null}),
        json!({"memory_limit_bytes": null, "suggested_memory_limit": null}),
    ];
    let kinds = [
        IssueKind::OomKilled,
        IssueKind::Crashed,
        IssueKind::RestartLoop,
        IssueKind::Unhealthy,
        IssueKind::ImagePullFailed,
        IssueKind::Evicted,
        IssueKind::Unschedulable,
    ];
    for kind in kinds {
        for code in [1, 2, 127, 134, 137, 139, 143] {
            for owner in &owners {
                let mut extra = owner.clone();
                extra["exit_code"] = json!(code);
                let rendered = rules.render(&incident(kind, pod_facts(extra)), at(10));
                let text = plan_text(&rendered);
                assert_no_docker_words(&rendered.rule, &text);
                assert!(!text.contains(render::UNKNOWN), "{}: {text}", rendered.rule);
                if owner.get("knative_service").is_some() {
                    // Knative owns the Deployment and the revisions: kubectl cannot roll a
                    // ksvc back or resize it.
                    assert!(!text.contains("rollout undo ksvc"), "{text}");
                    assert!(!text.contains("set resources ksvc"), "{text}");
                }
            }
        }
    }
}

#[test]
fn a_kubernetes_oom_plan_raises_the_limit_where_the_owner_keeps_it() {
    let rules = Rules::builtin().unwrap();
    let knative = incident(
        IssueKind::OomKilled,
        pod_facts(json!({"owner_kind": "KnativeService", "owner_name": "api",
            "workload": "ksvc/api", "knative_service": "api"})),
    );
    let text = plan_text(&rules.render(&knative, at(10)));
    assert!(
        text.contains("kn service update api -n prod --limit memory=512Mi"),
        "{text}"
    );
    let job = incident(
        IssueKind::OomKilled,
        pod_facts(json!({"owner_kind": "Job", "owner_name": "nightly", "workload": null})),
    );
    let text = plan_text(&rules.render(&job, at(10)));
    assert!(text.contains("in the spec of Job nightly"), "{text}");
}

#[test]
fn an_unready_pod_is_restarted_the_way_its_owner_recreates_it() {
    let rules = Rules::builtin().unwrap();
    let restart = |facts: Value| {
        let rendered = rules.render(&incident(IssueKind::Unhealthy, pod_facts(facts)), at(10));
        rendered
            .steps
            .into_iter()
            .find(|step| step.action == RESTART_POD)
    };
    let step = restart(json!({})).expect("a Deployment's pod is restarted");
    assert!(step.safe);
    assert_eq!(step.target.as_deref(), Some("prod/api-7d9f-x1"));
    assert!(
        step.title
            .contains("kubectl -n prod rollout restart deployment/api"),
        "{}",
        step.title
    );
    let step = restart(json!({"owner_kind": "StatefulSet", "owner_name": "db",
        "workload": "statefulset/db"}))
    .expect("a StatefulSet's pod is restarted");
    assert!(step.safe);
    assert!(
        step.title
            .contains("kubectl -n prod delete pod api-7d9f-x1")
            && step.title.contains("StatefulSet db"),
        "{}",
        step.title
    );
    // Nothing would bring a bare pod back: no restart step at all.
    assert!(restart(json!({"owner_kind": null, "owner_name": null, "workload": null})).is_none());
}

#[test]
fn an_oom_plan_names_the_limit_and_suggests_double() {
    let rules = Rules::builtin().unwrap();
    let oom = incident(
        IssueKind::OomKilled,
        json!({"container": "api-1", "memory_limit_bytes": 268435456, "signal": "oom_event", "restarts": 2, "exit_code": 137}),
    );
    let rendered = rules.render(&oom, at(10));
    assert_eq!(rendered.rule, "oom_killed");
    assert_eq!(rendered.priority, Priority::P1);
    assert_eq!(
        rendered.steps[0].title,
        "Raise the memory limit of api-1 from 256 MiB to 512 MiB"
    );
    assert_eq!(rendered.steps[0].action, "raise_memory_limit");
    assert!(rendered
        .steps
        .iter()
        .all(|s| !s.title.contains("(unknown)")));
    // Without a limit, the other step.
    let unlimited = incident(IssueKind::OomKilled, json!({"container": "api-1"}));
    let rendered = rules.render(&unlimited, at(10));
    assert_eq!(rendered.steps[0].action, "set_memory_limit");
}

#[test]
fn exit_codes_pick_their_rule_and_meaning() {
    let rules = Rules::builtin().unwrap();
    let crash = |code: i64| {
        rules.render(
            &incident(
                IssueKind::Crashed,
                json!({"container": "api-1", "exit_code": code, "restart_policy": "no"}),
            ),
            at(10),
        )
    };
    assert_eq!(crash(139).rule, "crashed_segfault");
    assert_eq!(crash(137).rule, "crashed_sigkill");
    let general = crash(1);
    assert_eq!(general.rule, "crashed");
    assert!(
        general.summary.contains("general application error"),
        "{}",
        general.summary
    );
    let restart = general.steps.last().unwrap();
    assert_eq!(restart.action, RESTART_CONTAINER);
    assert!(restart.safe);
    assert_eq!(restart.target.as_deref(), Some("api-1"));
}

#[test]
fn down_for_counts_from_down_since_or_the_first_sighting() {
    let rules = Rules::builtin().unwrap();
    let missed = incident(
        IssueKind::HeartbeatMissed,
        json!({"down_since": "2026-01-02T03:01:00Z", "last_seen": "2026-01-02T03:00:30Z", "timeout_seconds": 30.0}),
    );
    let rendered = rules.render(&missed, at(13));
    assert_eq!(
        rendered.summary,
        "api stopped sending heartbeats 12 min 30 s ago"
    );
    assert!(
        rendered.steps[0].reason.contains("(timeout 30 s)"),
        "{}",
        rendered.steps[0].reason
    );
    let failed = incident(IssueKind::ServiceFailed, json!({}));
    assert!(rules
        .render(&failed, at(3))
        .summary
        .ends_with("3 min 30 s ago"));
}

#[test]
fn severity_lowers_the_priority() {
    let rules = Rules::builtin().unwrap();
    let mut unhealthy = incident(IssueKind::Unhealthy, json!({}));
    unhealthy.severity = Severity::Warning;
    assert_eq!(rules.render(&unhealthy, at(1)).priority, Priority::P3);
    unhealthy.severity = Severity::Info;
    assert_eq!(rules.render(&unhealthy, at(1)).priority, Priority::P4);
}

#[test]
fn a_rules_file_replaces_by_name_and_adds_more_specific_rules() {
    let rules = file(
        r#"
rules:
  - name: unhealthy
    match: {kind: unhealthy}
    priority: P1
    summary: "ours: {container}"
    steps:
      - {action: page_team, title: "Page the team of {service}", reason: "house rule"}
  - name: high-error-rate
    match: {kind: alert, labels: {alertname: HighErrorRate}}
    priority: P2
    summary: "{alertname} on {job}"
    steps:
      - {action: roll_back, title: "Roll {service} back", reason: "{label.team} says so"}
"#,
    )
    .unwrap();
    let unhealthy = rules
        .rules
        .iter()
        .find(|r| r.spec.name == "unhealthy")
        .unwrap();
    assert_eq!(unhealthy.source, Source::RulesFile);
    assert!(unhealthy.replaces_builtin);
    let rendered = rules.render(&incident(IssueKind::Unhealthy, json!({})), at(1));
    assert_eq!(rendered.summary, "ours: api-1");
    let mut alert = incident(IssueKind::Alert, json!({}));
    alert.labels = BTreeMap::from([
        ("alertname".into(), "HighErrorRate".into()),
        ("job".into(), "api".into()),
        ("team".into(), "payments".into()),
    ]);
    let rendered = rules.render(&alert, at(1));
    assert_eq!(rendered.rule, "high-error-rate");
    assert_eq!(rendered.summary, "HighErrorRate on api");
    assert_eq!(rendered.steps[0].reason, "payments says so");
    alert.labels.insert("alertname".into(), "Other".into());
    assert_eq!(rules.render(&alert, at(1)).rule, "alert");
}

#[test]
fn bad_rules_files_name_the_field() {
    let cases = [
        ("", "is empty"),
        ("rules: [", "while parsing"),
        ("rules:\n  - name: x\n    match: {kind: oom}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n", "rules[0].match.kind: unknown variant `oom`"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: \"{contaner}\"\n    steps: [{action: a, title: t, reason: r}]\n", "rules[0].summary: unknown placeholder {contaner}"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P9\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n", "rules[0].priority"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r, titel: x}]\n", "unknown field `titel`"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: inspect_logs, title: t, reason: r, safe: true}]\n", "rules[0].steps[0].safe"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: []\n", "rules[0].steps: needs at least one step"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: \"{x\", reason: r}]\n", "rules[0].steps[0].title: a '{' without its '}'"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r, when: [nope]}]\n", "rules[0].steps[0].when: unknown placeholder {nope}"),
        ("rules:\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n  - name: x\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n", "rules[1].name: 'x' is used by an earlier rule too"),
        ("rules:\n  - name: Bad Name\n    match: {kind: crashed}\n    priority: P1\n    summary: s\n    steps: [{action: a, title: t, reason: r}]\n", "rules[0].name"),
    ];
    for (text, expected) in cases {
        let error = file(text).expect_err(text);
        assert!(error.contains(expected), "{text:?}: {error}");
        assert!(
            error.starts_with("configuration error: RULES_FILE "),
            "{error}"
        );
        assert!(!error.contains('\n'), "one line: {error:?}");
        assert_eq!(error.matches(expected).count(), 1, "said once: {error}");
    }
    let missing = Rules::load(Some(Path::new("/nonexistent/rules.yaml"))).unwrap_err();
    assert!(missing
        .to_string()
        .contains("cannot read /nonexistent/rules.yaml"));
}

#[test]
fn literal_braces_survive() {
    let rules = file(
        "rules:\n  - name: braces\n    match: {kind: crashed, service: api}\n    priority: P3\n    summary: \"{{not a placeholder}} {service}\"\n    steps: [{action: a, title: t, reason: r}]\n",
    )
    .unwrap();
    let rendered = rules.render(&incident(IssueKind::Crashed, json!({})), at(1));
    assert_eq!(rendered.summary, "{not a placeholder} api");
    assert_eq!(rendered.priority, Priority::P3);
}
