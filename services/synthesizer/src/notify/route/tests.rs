use std::collections::BTreeMap;
use std::process::Command;

use chrono::Utc;
use obs_model::{IncidentSource, IncidentState, IssueKind, Severity};
use ulid::Ulid;

use super::*;

const GROUP: Duration = Duration::from_secs(2);

fn incident(
    service: &str,
    kind: IssueKind,
    severity: Severity,
    labels: &[(&str, &str)],
) -> Incident {
    let now = Utc::now();
    Incident {
        id: Ulid::new(),
        fingerprint: format!("{service}/{}/web", kind.as_str()),
        source: IncidentSource::Watcher,
        service: service.into(),
        kind,
        subject: "web".into(),
        severity,
        state: IncidentState::Open,
        title: String::new(),
        message: String::new(),
        recommendation: String::new(),
        first_seen: now,
        last_seen: now,
        updated_at: now,
        acknowledged_at: None,
        acknowledged_by: None,
        resolved_at: None,
        resolved_by: None,
        comment: None,
        count: 1,
        reopened: 0,
        flapping: false,
        silenced: None,
        issue_ids: Vec::new(),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        annotations: BTreeMap::new(),
        facts: BTreeMap::new(),
        change: IncidentChange::Opened,
        notify: true,
        revision: 1,
    }
}

/// Receivers whose names say which they are; `none` has no channel at all.
const RECEIVERS: &str = r##"
receivers:
  - name: default
    webhook_configs: [{url: "http://127.0.0.1:9/default"}]
  - name: ops
    webhook_configs: [{url: "http://127.0.0.1:9/ops"}]
  - name: db-team
    webhook_configs: [{url: "http://127.0.0.1:9/db", send_resolved: false}]
  - name: chat
    slack_configs: [{api_url: "http://127.0.0.1:9/services/T/B/SECRET", channel: "#alerts"}]
  - name: pager
    webhook_configs: [{url: "http://127.0.0.1:9/pager"}]
  - name: none
"##;

/// Trees that exercise what Alertmanager decides: first match, `continue`, the parent when
/// no child matches, nesting, regex and negative matchers, the legacy match/match_re,
/// several matchers in one string, and labels that are absent.
const TREES: [&str; 4] = [
    r##"
route:
  receiver: default
  routes:
    - matchers: ['severity="critical"']
      receiver: pager
      continue: true
    - matchers: ['service=~"db.*"']
      receiver: db-team
      routes:
        - matchers: ['kind="oom_killed"']
          receiver: ops
        - matchers: ['team!=""']
          receiver: chat
    - match_re: {service: "api|web"}
      receiver: chat
"##,
    r##"
route:
  receiver: none
  group_by: [service]
  routes:
    - matchers: ['{service="api", severity=~"warning|critical"}']
      receiver: ops
      continue: true
    - matchers: ['service="api"', 'kind!~"crash.*"']
      receiver: chat
      continue: true
    - match: {team: blue}
      receiver: db-team
    - matchers: ['team=~"bl.*"']
      receiver: pager
"##,
    r##"
route:
  receiver: default
  routes:
    - receiver: ops
      matchers: ['team=""']
      routes:
        - matchers: ['severity="info"']
          receiver: none
          continue: true
        - matchers: ['severity!="critical"']
          receiver: chat
          continue: true
    - receiver: pager
      matchers: ['subject="web"']
"##,
    r##"
route:
  receiver: ops
  routes:
    - matchers: ['service!~"api|db"']
      continue: true
      routes:
        - matchers: ['severity="critical"']
          receiver: pager
    - matchers: ['service="api"']
      receiver: chat
      continue: true
    - matchers: ['source="watcher"', 'fingerprint=~".*/crashed/.*"']
      receiver: db-team
"##,
];

fn incidents() -> Vec<Incident> {
    let mut all = Vec::new();
    for service in ["api", "db", "dbx", "web", "cache"] {
        for (kind, severity) in [
            (IssueKind::Crashed, Severity::Critical),
            (IssueKind::OomKilled, Severity::Warning),
            (IssueKind::ProbeFailed, Severity::Info),
        ] {
            for labels in [&[][..], &[("team", "blue")][..], &[("team", "black")][..]] {
                all.push(incident(service, kind, severity, labels));
            }
        }
    }
    all
}

/// The same trees and label sets given to the real Alertmanager's `amtool config routes
/// test`: the same receivers, in the same order.
#[test]
fn routes_pick_the_receivers_alertmanager_picks() {
    let amtool = obs_testkit::tool("amtool");
    let dir = tempfile::tempdir().unwrap();
    let mut compared = 0;
    for (number, tree) in TREES.iter().enumerate() {
        let text = format!("{tree}{RECEIVERS}");
        let routing = parse(&text, GROUP).unwrap_or_else(|e| panic!("tree {number}: {e}"));
        let file = dir.path().join(format!("tree{number}.yml"));
        std::fs::write(&file, &text).unwrap();
        for incident in incidents() {
            let labels: Vec<String> = incident
                .label_set()
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            let output = Command::new(&amtool)
                .args(["config", "routes", "test"])
                .arg(format!("--config.file={}", file.display()))
                .args(&labels)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "amtool: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let theirs = String::from_utf8_lossy(&output.stdout).trim().to_string();
            let ours = routing.receivers_for(&incident).join(",");
            assert_eq!(ours, theirs, "tree {number}, labels {labels:?}");
            compared += 1;
        }
    }
    assert_eq!(compared, TREES.len() * 45);
}

fn refusal(text: &str) -> String {
    parse(text, GROUP)
        .err()
        .unwrap_or_else(|| panic!("accepted: {text}"))
}

#[test]
fn refusals_name_the_route_and_the_field() {
    let cases = [
        (
            "route: {receiver: nobody}\nreceivers: [{name: a}]",
            "route.receiver: 'nobody' is not a receiver's name",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - receiver: a\n    - receiver: a\n      routes:\n        - matchers: ['service=~\"(\"']\nreceivers: [{name: a}]",
            "route.routes[1].routes[0].matchers[0]: is not a valid regular expression",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - group_wait: soon\nreceivers: [{name: a}]",
            "route.routes[0].group_wait: 'soon' is not a duration",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - matchers: ['service']\nreceivers: [{name: a}]",
            "route.routes[0].matchers[0]: no operator",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - recevier: a\nreceivers: [{name: a}]",
            "route.routes[0].recevier: unknown field `recevier`",
        ),
        (
            "route:\n  receiver: a\n  matchers: ['a=b']\nreceivers: [{name: a}]",
            "route.matchers: the root route must not have matchers",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_configs: [{url: 'ftp://x/y'}]}]",
            "receivers[0].webhook_configs[0].url: 'ftp://x/…' is not an http(s) URL",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, slack_configs: [{channel: '#x'}]}]",
            "receivers[0].slack_configs[0].api_url: missing",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a}, {name: a}]",
            "receivers[1].name: 'a' is the name of an earlier receiver too",
        ),
        (
            "route: {receiver: a}\nreceivers: [{name: a, webhook_config: []}]",
            "receivers[0].webhook_config: not a receiver field",
        ),
        (
            "route: {receiver: a, group_by: ['...', service]}\nreceivers: [{name: a}]",
            "route.group_by: '...' groups by every label and must be alone",
        ),
        (
            "route:\n  receiver: a\n  routes:\n    - group_by: [my-label]\nreceivers: [{name: a}]",
            "route.routes[0].group_by[0]: 'my-label' is not a label name",
        ),
        ("", "is empty"),
        ("receivers: [{name: a}]", "route: missing"),
    ];
    for (text, expected) in cases {
        let error = refusal(text);
        assert!(error.starts_with(expected), "{text}\n-> {error}");
    }
}

#[test]
fn timings_and_receivers_are_inherited_and_other_kinds_warned_of() {
    let text = r##"
global:
  resolve_timeout: 5m
  slack_api_url: "https://hooks.slack.com/services/T/B/GLOBAL"
route:
  receiver: chat
  group_by: [service]
  group_wait: 10s
  group_interval: 1m
  routes:
    - matchers: ['severity="critical"']
      group_wait: 500ms
      repeat_interval: 1h30m
      mute_time_intervals: [nights]
      routes:
        - matchers: ['service="db"']
          receiver: mail
          group_by: ['...']
receivers:
  - name: chat
    slack_configs: [{channel: "#ops"}]
  - name: mail
    email_configs: [{to: "ops@example.test"}]
    webhook_configs: [{url: "http://127.0.0.1:9/db?token=hush"}]
inhibit_rules:
  - source_matchers: ['severity="critical"']
    target_matchers: ['severity="warning"']
"##;
    let routing = parse(text, GROUP).unwrap();
    let child = &routing.root.routes[0];
    assert_eq!(routing.receivers[child.receiver].name, "chat");
    assert_eq!(child.group_wait, Duration::from_millis(500));
    assert_eq!(child.group_interval, Duration::from_secs(60));
    assert_eq!(child.repeat_interval, Duration::from_secs(5400));
    assert_eq!(child.group_by, GroupBy::Labels(vec!["service".into()]));
    let grandchild = &child.routes[0];
    assert_eq!(grandchild.path, "route.routes[0].routes[0]");
    assert_eq!(grandchild.group_by, GroupBy::All);
    assert_eq!(grandchild.group_wait, Duration::from_millis(500));
    // Unset at the root: NOTIFY_GROUP_SECONDS and Alertmanager's 4 h.
    let bare = parse("route: {receiver: a}\nreceivers: [{name: a}]", GROUP).unwrap();
    assert_eq!(
        (bare.root.group_wait, bare.root.group_interval),
        (GROUP, GROUP)
    );
    assert_eq!(bare.root.repeat_interval, DEFAULT_REPEAT);
    assert!(!bare.delivers());

    assert_eq!(routing.channels.len(), 2);
    assert_eq!(routing.receivers[1].not_delivered, ["email_configs"]);
    let warnings = routing.warnings.join("\n");
    for expected in [
        "inhibit_rules: read but not applied yet",
        "receivers[1].email_configs (receiver 'mail'): not delivered yet",
        "route.routes[0].mute_time_intervals: read but not applied yet",
    ] {
        assert!(warnings.contains(expected), "{warnings}");
    }

    let view = routing.view().to_string();
    assert!(!view.contains("GLOBAL") && !view.contains("hush"), "{view}");
    assert!(view.contains(r##""api_url":"<secret>""##), "{view}");
    assert!(view.contains(r##""channel":"#ops""##), "{view}");
    assert!(view.contains("route.routes[0].routes[0]"), "{view}");
}

#[test]
fn group_keys_hold_the_group_by_values() {
    let routing = parse(
        "route:\n  receiver: a\n  group_by: [service, team]\n  routes:\n    - matchers: ['kind=\"crashed\"']\n      group_by: ['...']\nreceivers: [{name: a}]",
        GROUP,
    )
    .unwrap();
    let blue = incident(
        "api",
        IssueKind::OomKilled,
        Severity::Warning,
        &[("team", "blue")],
    );
    let other = incident(
        "api",
        IssueKind::OomKilled,
        Severity::Critical,
        &[("team", "blue")],
    );
    let routes = routing.pick(&blue);
    assert_eq!(routes[0].path, "route");
    assert_eq!(
        routes[0].group_key(&blue),
        r##"[["service","api"],["team","blue"]]"##
    );
    assert_eq!(routes[0].group_key(&blue), routes[0].group_key(&other));
    let crash = incident("api", IssueKind::Crashed, Severity::Warning, &[]);
    let crash2 = incident("api", IssueKind::Crashed, Severity::Critical, &[]);
    let route = routing.pick(&crash)[0];
    assert_eq!(route.path, "route.routes[0]");
    assert_ne!(route.group_key(&crash), route.group_key(&crash2));
}

#[test]
fn durations_read_like_prometheus() {
    let max = MAX_REPEAT;
    for (text, seconds) in [
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1m30s250ms", 90.25),
        ("2d", 172_800.0),
        ("1w", 604_800.0),
        ("0", 0.0),
        ("0s", 0.0),
    ] {
        assert_eq!(
            duration(text, max).unwrap().as_secs_f64(),
            seconds,
            "{text}"
        );
    }
    for bad in ["", "5", "m", "1.5h", "30m1h", "5mm", "-1s", "1h 2m", "2y"] {
        assert!(duration(bad, max).is_err(), "{bad}");
    }
}

/// docs/examples/notify.yml stays valid here and for Alertmanager alike.
#[test]
fn the_documented_example_is_read_here_and_by_alertmanager() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/examples/notify.yml");
    let routing = Routing::load(&path, GROUP).unwrap();
    assert_eq!(routing.root.routes.len(), 3);
    assert_eq!(routing.warnings.len(), 1, "{:?}", routing.warnings);
    let postgres = incident("postgres", IssueKind::Crashed, Severity::Critical, &[]);
    assert_eq!(routing.receivers_for(&postgres), ["pager", "db-team"]);
    let output = Command::new(obs_testkit::tool("amtool"))
        .arg("check-config")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
