//! The whole flow, end to end, with the real binaries: a service that stops heartbeating
//! becomes an issue at the watcher, an incident at the curator, a plan at the planner, an
//! entry on the synthesizer's status page and report and one webhook notification, with the
//! incident and the plan archived; when its heartbeats resume, all of it resolves. The same
//! from a real Prometheus alert through a real Alertmanager. And a role killed mid-flow
//! loses nothing once it is back.

use std::process::{Command, Stdio};
use std::time::Duration;

use obs_testkit::prometheus::Alerting;
use obs_testkit::receiver::Receiver;
use obs_testkit::{binary, client, eventually, free_port, Alertmanager, ChildGuard, Prometheus};
use serde_json::{json, Value};

const ROLES: [&str; 5] = ["watcher", "curator", "planner", "synthesizer", "archivist"];
/// Long enough for the checks to be patient on a busy machine; the flow takes seconds.
const PATIENCE: Duration = Duration::from_secs(60);

/// The five roles' base URLs, and how to run them.
struct Fleet {
    ports: Vec<(&'static str, u16)>,
    /// The settings every process gets: wiring, quick timings, the webhook.
    env: Vec<(String, String)>,
    state: tempfile::TempDir,
}

impl Fleet {
    /// The five roles on one PostgreSQL database instead of a SQLite file each.
    fn on_postgres(webhook: &str) -> Fleet {
        let mut fleet = Fleet::new(webhook);
        let url = obs_testkit::postgres::shared()
            .create_database()
            .expect("a PostgreSQL database");
        fleet.env.push(("DATABASE_URL".into(), url));
        fleet
    }

    fn new(webhook: &str) -> Fleet {
        let ports: Vec<(&str, u16)> = ROLES.iter().map(|role| (*role, free_port())).collect();
        let mut env: Vec<(String, String)> = vec![
            ("HOST", "127.0.0.1".into()),
            ("LOG_LEVEL", "warn".into()),
            ("DOCKER_WATCH", "off".into()),
            ("MONITOR_HEARTBEAT_CHECK_INTERVAL", "1".into()),
            ("MONITOR_HEARTBEAT_INTERVAL", "1".into()),
            ("OUTBOX_RETRY_MAX_SECONDS", "1".into()),
            ("NOTIFY_WEBHOOKS", format!("{webhook}/hook")),
            ("NOTIFY_GROUP_SECONDS", "1".into()),
            ("PROBE_INTERVAL", "1".into()),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value))
        .collect();
        for (role, port) in &ports {
            let role = role.to_uppercase();
            env.push((format!("{role}_PORT"), port.to_string()));
            env.push((format!("{role}_URL"), format!("http://127.0.0.1:{port}")));
        }
        Fleet {
            ports,
            env,
            state: tempfile::tempdir().unwrap(),
        }
    }

    fn url(&self, role: &str) -> String {
        let (_, port) = self.ports.iter().find(|(r, _)| *r == role).unwrap();
        format!("http://127.0.0.1:{port}")
    }

    /// All five roles in one process, as `make run` runs them.
    fn start_stack(&self) -> ChildGuard {
        let mut command = self.command("obs-stack");
        command.env("STATE_DIR", self.state.path());
        spawn(command)
    }

    /// One role's own binary, on its port, with its state under this fleet's folder.
    fn start_role(&self, role: &str) -> ChildGuard {
        let mut command = self.command(role);
        let (_, port) = self.ports.iter().find(|(r, _)| *r == role).unwrap();
        command
            .env("PORT", port.to_string())
            .env("STATE_DIR", self.state.path().join(role));
        if role != "watcher" {
            command.env("MONITOR_ENDPOINT", self.url("watcher"));
        }
        spawn(command)
    }

    /// A killed role started again: on its own folder with SQLite; on PostgreSQL from an
    /// empty folder, as a new pod.
    fn restart_role(&self, role: &str) -> ChildGuard {
        if self.env.iter().any(|(key, _)| key == "DATABASE_URL") {
            let fresh = self.state.path().join(format!("{role}-new-pod"));
            let mut command = self.command(role);
            let (_, port) = self.ports.iter().find(|(r, _)| *r == role).unwrap();
            command
                .env("PORT", port.to_string())
                .env("STATE_DIR", fresh)
                .env("MONITOR_ENDPOINT", self.url("watcher"));
            return spawn(command);
        }
        self.start_role(role)
    }

    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(binary(name));
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        command
    }

    async fn wait_ready(&self, role: &str) {
        let url = format!("{}/readyz", self.url(role));
        let http = client();
        eventually(&format!("{role} ready"), PATIENCE, || {
            let request = http.get(&url).send();
            async move { (request.await.ok()?.status() == 200).then_some(()) }
        })
        .await;
    }

    async fn wait_all_ready(&self) {
        for role in ROLES {
            self.wait_ready(role).await;
        }
    }

    async fn get_json(&self, role: &str, path: &str) -> Option<Value> {
        let response = client()
            .get(format!("{}{path}", self.url(role)))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    async fn get_text(&self, role: &str, path: &str) -> Option<String> {
        let response = client()
            .get(format!("{}{path}", self.url(role)))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.text().await.ok()
    }

    /// A beat with a 2 s timeout: silence after it soon makes the service down.
    async fn heartbeat(&self, service: &str) {
        self.heartbeat_with_timeout(service, 2).await;
    }

    /// A beat that keeps the service up for the rest of the test: a recovery that should
    /// not turn into a reopening while the test still counts notifications.
    async fn heartbeat_back_for_good(&self, service: &str) {
        self.heartbeat_with_timeout(service, 3600).await;
    }

    async fn heartbeat_with_timeout(&self, service: &str, timeout_seconds: u64) {
        let response = client()
            .post(format!("{}/heartbeat", self.url("watcher")))
            .json(&json!({"service": service, "timeout_seconds": timeout_seconds}))
            .send()
            .await
            .expect("the watcher answers");
        assert!(response.status().is_success(), "{}", response.status());
    }

    /// The service's incidents at the curator, from `source`, in `state`.
    async fn incidents(&self, service: &str, source: &str, state: &str) -> Vec<Value> {
        let list = self
            .get_json(
                "curator",
                &format!("/v1/incidents?service={service}&state={state}"),
            )
            .await
            .unwrap_or_default();
        list["incidents"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|incident| incident["source"] == source)
            .collect()
    }

    /// The plan made for `incident_id`, once it is in `state`.
    async fn plan_for(&self, incident_id: &str, state: &str) -> Value {
        eventually(
            &format!("a {state} plan for {incident_id}"),
            PATIENCE,
            || async {
                let plan = self
                    .get_json("planner", &format!("/v1/plans/{incident_id}"))
                    .await?;
                (plan["state"] == state).then_some(plan)
            },
        )
        .await
    }

    /// Archived records of `kind` about `service` whose body is about `incident_id`.
    async fn archived(&self, kind: &str, service: &str, incident_id: &str) -> Vec<Value> {
        let page = self
            .get_json(
                "archivist",
                &format!("/v1/records?kind={kind}&service={service}&limit=1000"),
            )
            .await
            .unwrap_or_default();
        page["records"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|record| {
                record["body"]["id"] == incident_id || record["body"]["incident_id"] == incident_id
            })
            .collect()
    }
}

/// As the page writes text: maud escapes these four.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn spawn(mut command: Command) -> ChildGuard {
    ChildGuard(Some(command.spawn().expect("the binary starts")))
}

/// The notifications the webhook received that mention `needle`, one per message id:
/// delivery is at least once, and a copy sent again after a crash carries the same id.
fn notifications_about(webhook: &Receiver, needle: &str) -> Vec<Value> {
    let mut seen = std::collections::BTreeSet::new();
    webhook
        .bodies("/hook")
        .into_iter()
        .filter(|body| body.to_string().contains(needle))
        .filter(|body| seen.insert(body["id"].to_string()))
        .collect()
}

async fn wait_notifications(webhook: &Receiver, needle: &str, count: usize) -> Vec<Value> {
    eventually(
        &format!("{count} notification(s) about {needle}"),
        PATIENCE,
        || async {
            let found = notifications_about(webhook, needle);
            (found.len() >= count).then_some(found)
        },
    )
    .await
}

/// From the incident opening to its plan, page, report, notification and archive; returns
/// the incident's id.
async fn follow_the_opening(
    fleet: &Fleet,
    webhook: &Receiver,
    service: &str,
    source: &str,
) -> String {
    let incident = eventually(
        &format!("an open {source} incident for {service}"),
        PATIENCE,
        || async {
            fleet
                .incidents(service, source, "open")
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    let incident_id = incident["id"].as_str().unwrap().to_string();

    let plan = fleet.plan_for(&incident_id, "open").await;
    let steps = plan["steps"].as_array().unwrap();
    assert!(!steps.is_empty(), "a plan with steps: {plan}");
    assert!(
        steps
            .iter()
            .all(|step| !step["title"].as_str().unwrap().contains('{')),
        "steps with the facts filled in: {plan}"
    );

    let title = html_escaped(incident["title"].as_str().unwrap());
    let first_step = html_escaped(steps[0]["title"].as_str().unwrap());
    let page = eventually(
        "the incident and its plan on the status page",
        PATIENCE,
        || async {
            let page = fleet.get_text("synthesizer", "/").await?;
            (page.contains(&title) && page.contains(&first_step)).then_some(page)
        },
    )
    .await;
    assert!(page.contains(service), "{page}");
    let report = fleet
        .get_text("synthesizer", "/v1/report?format=md")
        .await
        .expect("the markdown report");
    assert!(report.contains(service), "{report}");

    let notes = wait_notifications(webhook, &incident_id, 1).await;
    assert!(notes[0].to_string().contains(service), "{}", notes[0]);

    eventually("the incident and its plan archived", PATIENCE, || async {
        let incidents = fleet.archived("incident", service, &incident_id).await;
        let plans = fleet.archived("plan", service, &incident_id).await;
        (!incidents.is_empty() && !plans.is_empty()).then_some(())
    })
    .await;
    incident_id
}

/// From the recovery to the resolved incident, closed plan, second notification.
async fn follow_the_recovery(fleet: &Fleet, webhook: &Receiver, service: &str, incident_id: &str) {
    eventually("the incident resolved", PATIENCE, || async {
        let incident = fleet
            .get_json("curator", &format!("/v1/incidents/{incident_id}"))
            .await?;
        (incident["state"] == "resolved").then_some(())
    })
    .await;
    fleet.plan_for(incident_id, "closed").await;
    let notes = wait_notifications(webhook, incident_id, 2).await;
    assert!(
        notes
            .iter()
            .any(|note| note.to_string().contains("resolved")),
        "a resolved notification: {notes:?}"
    );
    eventually("the report without the open incident", PATIENCE, || async {
        let report: Value = fleet
            .get_json("synthesizer", "/v1/report?format=json")
            .await?;
        let open = report["incidents"]
            .as_array()?
            .iter()
            .any(|incident| incident["id"] == incident_id);
        let resolved = report["resolved"]
            .as_array()?
            .iter()
            .any(|incident| incident["id"] == incident_id);
        (!open && resolved).then_some(())
    })
    .await;
    let page = fleet.get_text("synthesizer", "/").await.expect("the page");
    assert!(page.contains(service), "{page}");
}

#[actix_web::test]
async fn a_missed_heartbeat_becomes_an_incident_a_plan_a_page_entry_and_one_notification_then_resolves(
) {
    let webhook = Receiver::start().await;
    let fleet = Fleet::new(&webhook.url);
    let _stack = fleet.start_stack();
    fleet.wait_all_ready().await;

    fleet.heartbeat("payments").await;
    // It stops beating: after its 2 s timeout the watcher calls it down.
    let incident_id = follow_the_opening(&fleet, &webhook, "payments", "watcher").await;

    // One notification for the opening, however long the incident stays open.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(notifications_about(&webhook, &incident_id).len(), 1);

    // It comes back.
    fleet.heartbeat_back_for_good("payments").await;
    follow_the_recovery(&fleet, &webhook, "payments", &incident_id).await;
}

#[actix_web::test]
async fn an_incident_resolved_by_hand_while_its_service_stays_silent_reopens() {
    let webhook = Receiver::start().await;
    let fleet = Fleet::new(&webhook.url);
    let _stack = fleet.start_stack();
    fleet.wait_all_ready().await;

    fleet.heartbeat("ledger").await;
    let incident = eventually("an open incident for ledger", PATIENCE, || async {
        fleet
            .incidents("ledger", "watcher", "open")
            .await
            .into_iter()
            .next()
    })
    .await;
    let incident_id = incident["id"].as_str().unwrap().to_string();

    // Someone resolves it by hand, though ledger still sends nothing.
    let resolved: Value = client()
        .post(format!(
            "{}/v1/incidents/{incident_id}/resolve",
            fleet.url("curator")
        ))
        .json(&json!({"by": "alice"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["state"], "resolved", "{resolved}");

    // The watcher's next report of the silence reopens it, as the docs and --help say.
    let reopened = eventually("the incident reopened", PATIENCE, || async {
        let incident = fleet
            .get_json("curator", &format!("/v1/incidents/{incident_id}"))
            .await?;
        (incident["state"] == "open").then_some(incident)
    })
    .await;
    assert!(reopened["reopened"].as_u64() >= Some(1), "{reopened}");
    assert_eq!(
        fleet.incidents("ledger", "watcher", "open").await.len(),
        1,
        "the same incident, not a new one"
    );
    eventually("the report shows it open again", PATIENCE, || async {
        let report: Value = fleet
            .get_json("synthesizer", "/v1/report?format=json")
            .await?;
        report["incidents"]
            .as_array()?
            .iter()
            .any(|incident| incident["id"] == incident_id.as_str())
            .then_some(())
    })
    .await;
}

#[actix_web::test]
async fn a_prometheus_alert_through_alertmanager_becomes_an_incident_and_resolves() {
    let webhook = Receiver::start().await;
    let fleet = Fleet::new(&webhook.url);
    let _stack = fleet.start_stack();
    fleet.wait_all_ready().await;

    let alertmanager = Alertmanager::start(&format!(
        r#"route:
  receiver: curator
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: curator
    webhook_configs:
      - url: {}/v1/alertmanager
        send_resolved: true
"#,
        fleet.url("curator")
    ))
    .await
    .expect("alertmanager starts");
    // The alert rule watches the watcher's own gauge: the service is down while it is 0.
    let rules = r#"groups:
  - name: fleet
    rules:
      - alert: ServiceHeartbeatLost
        expr: monitoring_service_status{service="checkout"} == 0
        labels:
          severity: critical
        annotations:
          summary: checkout stopped heartbeating
"#;
    let watcher = fleet.url("watcher");
    let scrape = format!(
        "  - job_name: watcher\n    static_configs:\n      - targets: ['{}']\n",
        watcher.trim_start_matches("http://")
    );
    let prometheus = Prometheus::start_with(
        &scrape,
        Alerting {
            rules: Some(rules),
            alertmanager: Some(&alertmanager.url),
        },
    )
    .await
    .expect("prometheus starts");

    fleet.heartbeat("checkout").await;
    let incident_id = follow_the_opening(&fleet, &webhook, "checkout", "alertmanager").await;
    let incident = fleet
        .get_json("curator", &format!("/v1/incidents/{incident_id}"))
        .await
        .unwrap();
    assert_eq!(
        incident["labels"]["alertname"], "ServiceHeartbeatLost",
        "{incident}"
    );
    assert_eq!(incident["severity"], "critical");

    // Beats resume; the gauge goes back to 1, the rule stops firing, Alertmanager says resolved.
    let beating = {
        let http = client();
        let url = format!("{watcher}/heartbeat");
        actix_web::rt::spawn(async move {
            loop {
                let _ = http
                    .post(&url)
                    .json(&json!({"service": "checkout", "timeout_seconds": 2}))
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    follow_the_recovery(&fleet, &webhook, "checkout", &incident_id).await;
    beating.abort();
    drop((prometheus, alertmanager));
}

#[actix_web::test]
async fn a_role_killed_mid_flow_loses_nothing_once_it_is_back() {
    let webhook = Receiver::start().await;
    let fleet = Fleet::new(&webhook.url);
    a_role_killed_mid_flow(&fleet, &webhook).await;
}

/// The same on PostgreSQL, where each role comes back as a new pod would: an empty STATE_DIR.
#[actix_web::test]
async fn a_role_killed_mid_flow_on_postgres_loses_nothing_once_it_is_back() {
    let webhook = Receiver::start().await;
    let fleet = Fleet::on_postgres(&webhook.url);
    a_role_killed_mid_flow(&fleet, &webhook).await;
}

async fn a_role_killed_mid_flow(fleet: &Fleet, webhook: &Receiver) {
    let mut roles: Vec<(&str, ChildGuard)> = ROLES
        .iter()
        .map(|role| (*role, fleet.start_role(role)))
        .collect();
    fleet.wait_all_ready().await;

    // The planner dies (SIGKILL) before the incident reaches it.
    let planner = roles
        .iter_mut()
        .find(|(role, _)| *role == "planner")
        .unwrap();
    planner.1.signal(libc::SIGKILL);
    fleet.heartbeat("ledger").await;
    let incident = eventually("an open incident for ledger", PATIENCE, || async {
        fleet
            .incidents("ledger", "watcher", "open")
            .await
            .into_iter()
            .next()
    })
    .await;
    let incident_id = incident["id"].as_str().unwrap().to_string();
    // The curator holds it for the planner meanwhile.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(notifications_about(webhook, &incident_id).is_empty());

    // Back (on the same state, or on the shared database from an empty folder): the plan,
    // page, notification and archive all follow.
    planner.1 = fleet.restart_role("planner");
    fleet.wait_ready("planner").await;
    follow_the_opening(fleet, webhook, "ledger", "watcher").await;

    // Now the synthesizer dies while the recovery is on its way; back, it notifies once.
    let synthesizer = roles
        .iter_mut()
        .find(|(role, _)| *role == "synthesizer")
        .unwrap();
    synthesizer.1.signal(libc::SIGKILL);
    fleet.heartbeat_back_for_good("ledger").await;
    eventually("the incident resolved", PATIENCE, || async {
        let incident = fleet
            .get_json("curator", &format!("/v1/incidents/{incident_id}"))
            .await?;
        (incident["state"] == "resolved").then_some(())
    })
    .await;
    synthesizer.1 = fleet.restart_role("synthesizer");
    fleet.wait_ready("synthesizer").await;
    follow_the_recovery(fleet, webhook, "ledger", &incident_id).await;
    // Exactly once each: opened and resolved (copies of one message carry its id), and
    // nothing else.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let notes = notifications_about(webhook, &incident_id);
    assert_eq!(notes.len(), 2, "{notes:#?}");
    for change in ["opened", "resolved"] {
        let carrying = notes
            .iter()
            .filter(|note| {
                note["changes"].as_array().is_some_and(|changes| {
                    changes.iter().any(|c| {
                        c["change"] == change && c["incident"]["id"] == incident_id.as_str()
                    })
                })
            })
            .count();
        assert_eq!(carrying, 1, "{change}: {notes:#?}");
    }
}
