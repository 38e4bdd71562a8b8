//! The Knative behaviour on this machine: three replicas of every role behind a real
//! round-robin load balancer (Debian's haproxy), all on one real PostgreSQL. While a workload
//! runs — heartbeats from 500 services of which some stop and come back, alerts from a real
//! Alertmanager, acknowledgements, resolves and silences through obsctl, a webhook receiver
//! counting what it gets — a random replica is SIGKILLed every few seconds and replaced by a
//! new one with a fresh, empty STATE_DIR (a new pod). Afterwards: every write that got a 2xx
//! is visible through every replica; one open incident per fingerprint; exactly one
//! notification per incident revision per webhook; one archive record per change; every
//! replica lists the same incidents and plans.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use obs_testkit::receiver::Receiver;
use obs_testkit::{binary, client, eventually, free_port, tool, Alertmanager, ChildGuard};
use serde_json::{json, Value};

const ROLES: [&str; 5] = ["watcher", "curator", "planner", "synthesizer", "archivist"];
const REPLICAS: usize = 3;
const SERVICES: usize = 500;
/// Services that stop beating for a while, then come back.
const STOPPING: usize = 10;
const PATIENCE: Duration = Duration::from_secs(90);

struct Replica {
    role: &'static str,
    port: u16,
    process: Option<ChildGuard>,
    state: tempfile::TempDir,
    generation: usize,
}

struct Cluster {
    database_url: String,
    /// Each role's load-balanced URL (haproxy's frontend).
    fronts: BTreeMap<&'static str, u16>,
    replicas: Vec<Replica>,
    webhook: String,
    _haproxy: ChildGuard,
    _haproxy_dir: tempfile::TempDir,
}

impl Cluster {
    fn start(webhook: &str) -> Cluster {
        let database_url = obs_testkit::postgres::shared()
            .create_database()
            .expect("a PostgreSQL database for the cluster");
        let fronts: BTreeMap<&'static str, u16> =
            ROLES.iter().map(|role| (*role, free_port())).collect();
        let mut replicas = Vec::new();
        for role in ROLES {
            for _ in 0..REPLICAS {
                replicas.push(Replica {
                    role,
                    port: free_port(),
                    process: None,
                    state: tempfile::tempdir().unwrap(),
                    generation: 0,
                });
            }
        }
        let (haproxy, haproxy_dir) = start_haproxy(&fronts, &replicas);
        let mut cluster = Cluster {
            database_url,
            fronts,
            replicas,
            webhook: webhook.to_string(),
            _haproxy: haproxy,
            _haproxy_dir: haproxy_dir,
        };
        // One replica of each role first, so migrations and leases settle, then the rest.
        for index in 0..cluster.replicas.len() {
            cluster.launch(index);
        }
        cluster
    }

    fn front(&self, role: &str) -> String {
        format!("http://127.0.0.1:{}", self.fronts[role])
    }

    fn launch(&mut self, index: usize) {
        let mut env: Vec<(String, String)> = vec![
            ("HOST".into(), "127.0.0.1".into()),
            ("LOG_LEVEL".into(), "warn".into()),
            ("DOCKER_WATCH".into(), "off".into()),
            ("DATABASE_URL".into(), self.database_url.clone()),
            ("MONITOR_HEARTBEAT_CHECK_INTERVAL".into(), "1".into()),
            ("OUTBOX_RETRY_MAX_SECONDS".into(), "1".into()),
            ("NOTIFY_WEBHOOKS".into(), format!("{}/hook", self.webhook)),
            ("NOTIFY_GROUP_SECONDS".into(), "1".into()),
        ];
        for role in ROLES {
            env.push((format!("{}_URL", role.to_uppercase()), self.front(role)));
        }
        let replica = &mut self.replicas[index];
        // A new pod: a fresh, empty STATE_DIR.
        replica.state = tempfile::tempdir().unwrap();
        replica.generation += 1;
        let mut command = Command::new(binary(replica.role));
        command
            .env_clear()
            .envs(env)
            .env("PORT", replica.port.to_string())
            .env("STATE_DIR", replica.state.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        replica.process = Some(ChildGuard(Some(
            command.spawn().expect("a role binary starts"),
        )));
    }

    fn kill(&mut self, index: usize) {
        if let Some(process) = self.replicas[index].process.take() {
            process.signal(libc::SIGKILL);
            drop(process);
        }
    }

    fn replica_url(&self, index: usize) -> String {
        format!("http://127.0.0.1:{}", self.replicas[index].port)
    }

    fn replicas_of(&self, role: &str) -> Vec<usize> {
        (0..self.replicas.len())
            .filter(|i| self.replicas[*i].role == role)
            .collect()
    }

    async fn wait_ready(&self) {
        for index in 0..self.replicas.len() {
            let url = format!("{}/readyz", self.replica_url(index));
            eventually(
                &format!("{} replica {index} ready", self.replicas[index].role),
                PATIENCE,
                || {
                    let request = client().get(&url).send();
                    async move { (request.await.ok()?.status() == 200).then_some(()) }
                },
            )
            .await;
        }
    }
}

fn start_haproxy(
    fronts: &BTreeMap<&'static str, u16>,
    replicas: &[Replica],
) -> (ChildGuard, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from(
        "global\n  maxconn 4096\n\
         defaults\n  mode http\n  timeout connect 1s\n  timeout client 30s\n  timeout server 30s\n  \
         retries 3\n  option redispatch\n",
    );
    for (role, port) in fronts {
        config.push_str(&format!(
            "frontend {role}\n  bind 127.0.0.1:{port}\n  default_backend {role}\n\
             backend {role}\n  balance roundrobin\n  option httpchk GET /readyz\n  \
             default-server inter 300ms fall 1 rise 1\n"
        ));
        for (index, replica) in replicas.iter().filter(|r| r.role == *role).enumerate() {
            config.push_str(&format!(
                "  server {role}{index} 127.0.0.1:{} check\n",
                replica.port
            ));
        }
    }
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(tool("haproxy"))
        .arg("-db")
        .arg("-f")
        .arg(&path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("haproxy starts");
    (ChildGuard(Some(child)), dir)
}

async fn get_json(url: &str) -> Option<Value> {
    let response = client().get(url).send().await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

/// One round of heartbeats; the stopping services stay silent while `silent`.
async fn beat_all(watcher: &str, silent: bool) -> (usize, usize) {
    let http = client();
    let beats = (0..SERVICES)
        .filter(|n| !(silent && *n < STOPPING))
        .map(|n| {
            let http = http.clone();
            let url = format!("{watcher}/heartbeat");
            async move {
                http.post(url)
                    .json(&json!({"service": format!("svc-{n:03}"), "timeout_seconds": 3}))
                    .send()
                    .await
                    .is_ok_and(|response| response.status().is_success())
            }
        });
    let results = futures_util::future::join_all(beats).await;
    let ok = results.iter().filter(|ok| **ok).count();
    (ok, results.len() - ok)
}

async fn post_alerts(alertmanager: &str, name: &str, resolved: bool) {
    let now = chrono::Utc::now();
    let mut alert = json!({
        "labels": {"alertname": name, "service": "payments", "severity": "critical"},
        "annotations": {"summary": format!("{name} on payments")},
        "startsAt": (now - chrono::Duration::seconds(10)).to_rfc3339(),
    });
    if resolved {
        alert["endsAt"] = json!(now.to_rfc3339());
    }
    let response = client()
        .post(format!("{alertmanager}/api/v2/alerts"))
        .json(&json!([alert]))
        .send()
        .await
        .expect("alertmanager answers");
    assert!(response.status().is_success(), "{}", response.status());
}

/// obsctl against the load-balanced curator; Some(stdout) when it succeeded.
fn obsctl(curator: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(binary("obsctl"))
        .args(args)
        .env("OBS_CURATOR_URL", curator)
        .env("USER", "replica-test")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// What each replica of the curator lists: (id, state, revision, fingerprint).
async fn incidents_at(url: &str) -> Option<BTreeSet<(String, String, u64, String)>> {
    let list = get_json(&format!("{url}/v1/incidents?limit=10000")).await?;
    Some(
        list["incidents"]
            .as_array()?
            .iter()
            .map(|incident| {
                (
                    incident["id"].as_str().unwrap_or_default().to_string(),
                    incident["state"].as_str().unwrap_or_default().to_string(),
                    incident["revision"].as_u64().unwrap_or_default(),
                    incident["fingerprint"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect(),
    )
}

async fn plans_at(url: &str) -> Option<BTreeSet<(String, String, u64)>> {
    let list = get_json(&format!("{url}/v1/plans?limit=10000")).await?;
    Some(
        list["plans"]
            .as_array()?
            .iter()
            .map(|plan| {
                (
                    plan["id"].as_str().unwrap_or_default().to_string(),
                    plan["state"].as_str().unwrap_or_default().to_string(),
                    plan["revision"].as_u64().unwrap_or_default(),
                )
            })
            .collect(),
    )
}

#[actix_web::test]
async fn three_replicas_of_every_role_on_one_postgres_survive_random_kills() {
    let webhook = Receiver::start().await;
    let mut cluster = Cluster::start(&webhook.url);
    cluster.wait_ready().await;
    let watcher = cluster.front("watcher");
    let curator = cluster.front("curator");
    let alertmanager = Alertmanager::start(&format!(
        "route:\n  receiver: curator\n  group_by: [alertname, service]\n  group_wait: 1s\n  \
         group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: curator\n    \
         webhook_configs:\n      - url: {curator}/v1/alertmanager\n        send_resolved: true\n"
    ))
    .await
    .expect("alertmanager starts");

    let started = Instant::now();
    let mut beats_ok = 0;
    let mut beats_failed = 0;
    let mut kills = 0;
    let mut acknowledged: BTreeSet<String> = BTreeSet::new();
    let mut resolved_by_hand: BTreeSet<String> = BTreeSet::new();
    let mut silences: BTreeSet<String> = BTreeSet::new();
    let mut last_kill = Instant::now();
    let mut round = 0u64;
    // Bounded: about 45 s of workload.
    while started.elapsed() < Duration::from_secs(45) {
        round += 1;
        let elapsed = started.elapsed();
        let silent = elapsed > Duration::from_secs(8) && elapsed < Duration::from_secs(30);
        let (ok, failed) = beat_all(&watcher, silent).await;
        beats_ok += ok;
        beats_failed += failed;
        if round == 3 {
            post_alerts(&alertmanager.url, "DiskFilling", false).await;
            post_alerts(&alertmanager.url, "LatencyHigh", false).await;
        }
        if round == 25 {
            post_alerts(&alertmanager.url, "DiskFilling", true).await;
        }
        // Acknowledge what is open now and then, resolve one alert by hand, add a silence.
        if round.is_multiple_of(5) {
            if let Some(out) = obsctl(&curator, &["incidents", "--state", "open", "--json"]) {
                let list: Value = serde_json::from_str(&out).unwrap_or_default();
                let open: Vec<String> = list["incidents"]
                    .as_array()
                    .or(list.as_array())
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .filter(|i| i["state"] == "open")
                    .filter_map(|i| i["id"].as_str().map(str::to_string))
                    .take(3)
                    .collect();
                for id in open {
                    if obsctl(&curator, &["ack", &id, "--by", "replica-test"]).is_some() {
                        acknowledged.insert(id);
                    }
                }
            }
        }
        if round == 20 {
            if let Some(out) = obsctl(&curator, &["incidents", "--state", "all", "--json"]) {
                let list: Value = serde_json::from_str(&out).unwrap_or_default();
                let alert = list["incidents"]
                    .as_array()
                    .or(list.as_array())
                    .cloned()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|i| i["source"] == "alertmanager" && i["state"] != "resolved");
                if let Some(id) = alert.and_then(|i| i["id"].as_str().map(str::to_string)) {
                    if obsctl(&curator, &["resolve", &id, "--by", "replica-test"]).is_some() {
                        resolved_by_hand.insert(id);
                    }
                }
            }
        }
        if round.is_multiple_of(10) {
            let matcher = format!("service=quiet-{round}");
            if let Some(out) = obsctl(
                &curator,
                &[
                    "silence",
                    "add",
                    "-m",
                    &matcher,
                    "--for",
                    "1h",
                    "-c",
                    "replica test",
                    "--json",
                ],
            ) {
                let silence: Value = serde_json::from_str(&out).unwrap_or_default();
                if let Some(id) = silence["id"].as_str() {
                    silences.insert(id.to_string());
                }
            }
        }
        // Kill a random replica every few seconds and replace it with a new pod.
        if last_kill.elapsed() > Duration::from_secs(3) {
            let victim = fastrand::usize(..cluster.replicas.len());
            cluster.kill(victim);
            cluster.launch(victim);
            kills += 1;
            last_kill = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    // Everything beating again, no more kills: let the fleet settle.
    cluster.wait_ready().await;
    for _ in 0..3 {
        beat_all(&watcher, false).await;
        tokio::time::sleep(Duration::from_millis(700)).await;
    }

    // Every replica of the curator lists the same incidents — the stopped services' resolved
    // now that they beat again — and the planner the same plans.
    let curators = cluster.replicas_of("curator");
    let incidents = eventually(
        "every curator replica to agree, with the heartbeat incidents resolved",
        PATIENCE,
        || async {
            // Keep the recovered services beating while the fleet settles.
            beat_all(&watcher, false).await;
            let mut lists = Vec::new();
            for index in &curators {
                lists.push(incidents_at(&cluster.replica_url(*index)).await?);
            }
            let settled = lists[0]
                .iter()
                .filter(|(_, _, _, fingerprint)| fingerprint.contains("/heartbeat_missed/"))
                .all(|(_, state, _, _)| state == "resolved");
            (settled && lists.windows(2).all(|w| w[0] == w[1])).then(|| lists.remove(0))
        },
    )
    .await;
    let planners = cluster.replicas_of("planner");
    let plans = eventually("every planner replica to agree", PATIENCE, || async {
        let mut lists = Vec::new();
        for index in &planners {
            lists.push(plans_at(&cluster.replica_url(*index)).await?);
        }
        (!lists[0].is_empty() && lists.windows(2).all(|w| w[0] == w[1])).then(|| lists.remove(0))
    })
    .await;

    // One open incident per fingerprint.
    let mut open_by_fingerprint: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, state, _, fingerprint) in &incidents {
        if state != "resolved" {
            *open_by_fingerprint.entry(fingerprint).or_default() += 1;
        }
    }
    assert!(
        open_by_fingerprint.values().all(|n| *n == 1),
        "two open incidents share a fingerprint: {open_by_fingerprint:?}"
    );
    // Every stopped service became an incident.
    let heartbeat_incidents: BTreeSet<&str> = incidents
        .iter()
        .filter(|(_, _, _, fingerprint)| fingerprint.contains("/heartbeat_missed/"))
        .map(|(_, _, _, fingerprint)| fingerprint.as_str())
        .collect();

    // Every acknowledged write is visible through every replica.
    for index in &curators {
        let url = cluster.replica_url(*index);
        for id in &acknowledged {
            let incident = get_json(&format!("{url}/v1/incidents/{id}"))
                .await
                .unwrap_or_else(|| panic!("incident {id} missing at curator replica {index}"));
            assert!(
                incident["acknowledged_by"].is_string() || incident["state"] == "resolved",
                "the acknowledgement of {id} is lost at replica {index}: {incident}"
            );
        }
        for id in &resolved_by_hand {
            let incident = get_json(&format!("{url}/v1/incidents/{id}")).await.unwrap();
            assert!(
                incident["resolved_at"].is_string() || incident["reopened"].as_u64() > Some(0),
                "the resolve of {id} is lost at replica {index}: {incident}"
            );
        }
        let listed = get_json(&format!("{url}/v1/silences")).await.unwrap();
        let ids: BTreeSet<String> = listed["silences"]
            .as_array()
            .or(listed.as_array())
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter_map(|s| s["id"].as_str().map(str::to_string))
            .collect();
        assert!(
            silences.is_subset(&ids),
            "silences lost at replica {index}: {:?}",
            silences.difference(&ids).collect::<Vec<_>>()
        );
    }

    // Exactly one notification per (incident, revision, change) at the webhook: copies of one
    // message (the same id, delivered again after a kill) count once.
    let bodies = webhook.bodies("/hook");
    let mut messages = BTreeSet::new();
    let mut per_change: BTreeMap<(String, u64, String), usize> = BTreeMap::new();
    for body in &bodies {
        if !messages.insert(body["id"].to_string()) {
            continue;
        }
        for change in body["changes"].as_array().cloned().unwrap_or_default() {
            let key = (
                change["incident"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                change["incident"]["revision"].as_u64().unwrap_or_default(),
                change["change"].as_str().unwrap_or_default().to_string(),
            );
            *per_change.entry(key).or_default() += 1;
        }
    }
    let repeated: Vec<_> = per_change.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "notified more than once: {repeated:?}");
    assert!(!per_change.is_empty(), "the webhook was notified");

    // The archive holds each incident change once.
    let archivist = cluster.front("archivist");
    let mut archived: BTreeMap<(String, u64), usize> = BTreeMap::new();
    let mut after: Option<String> = None;
    loop {
        let mut url = format!("{archivist}/v1/records?kind=incident&limit=1000");
        if let Some(cursor) = &after {
            url.push_str(&format!("&after={cursor}"));
        }
        let page = get_json(&url).await.expect("the archive answers");
        for record in page["records"].as_array().cloned().unwrap_or_default() {
            let key = (
                record["body"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                record["body"]["revision"].as_u64().unwrap_or_default(),
            );
            *archived.entry(key).or_default() += 1;
        }
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_string()),
            None => break,
        }
    }
    let twice: Vec<_> = archived.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "archived more than once: {twice:?}");

    println!(
        "replica simulation: {REPLICAS} replicas x {} roles, {kills} kills; heartbeats {beats_ok} \
         ok / {beats_failed} refused; incidents {} ({} heartbeat), plans {}, acknowledged {}, \
         resolved by hand {}, silences {}; webhook messages {} covering {} changes; archived \
         incident changes {}",
        ROLES.len(),
        incidents.len(),
        heartbeat_incidents.len(),
        plans.len(),
        acknowledged.len(),
        resolved_by_hand.len(),
        silences.len(),
        messages.len(),
        per_change.len(),
        archived.len()
    );
    assert!(
        heartbeat_incidents.len() >= STOPPING,
        "every stopped service became an incident: {heartbeat_incidents:?}"
    );
}
