//! `POST /v1/alertmanager`: the documented payload, and a real Alertmanager delivering to it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use curator::CuratorConfig;
use obs_testkit::{eventually, free_port, tool, ChildGuard};
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn alerts_become_incidents_repeat_and_resolve() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let firing = alert_payload(
        "firing",
        "HighErrorRate",
        "1a30ba71cca2921f",
        "0001-01-01T00:00:00Z",
    );
    let (status, tally) = post(&app, "/v1/alertmanager", &firing).await;
    assert_eq!(status, 200, "{tally}");
    assert_eq!(tally["opened"], 1);

    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["source"], "alertmanager");
    assert_eq!(incident["kind"], "alert");
    assert_eq!(incident["subject"], "HighErrorRate");
    assert_eq!(incident["fingerprint"], "alertmanager/1a30ba71cca2921f");
    assert_eq!(incident["severity"], "critical");
    assert_eq!(incident["title"], "api answers 5xx");
    assert_eq!(incident["message"], "5 % of api requests fail");
    assert_eq!(incident["labels"]["instance"], "api:8080");
    assert_eq!(incident["annotations"]["summary"], "api answers 5xx");
    assert_eq!(
        incident["facts"]["generator_url"],
        "http://prometheus:9090/graph?g0.expr=rate"
    );
    assert_eq!(incident["first_seen"], "2026-01-02T03:04:05.123Z");

    // Alertmanager repeats a firing alert every repeat_interval: a sighting, not a new incident.
    let (_, tally) = post(&app, "/v1/alertmanager", &firing).await;
    assert_eq!(tally["deduplicated"], 1, "{tally}");
    assert_eq!(incident_of(&app, "api").await["count"], 2);

    let resolved = alert_payload(
        "resolved",
        "HighErrorRate",
        "1a30ba71cca2921f",
        "2026-01-02T03:30:00Z",
    );
    let (_, tally) = post(&app, "/v1/alertmanager", &resolved).await;
    assert_eq!(tally["resolved"], 1, "{tally}");
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["state"], "resolved");
    assert_eq!(incident["resolved_at"], "2026-01-02T03:30:00Z");
    assert_eq!(incident["resolved_by"], "alertmanager");
    assert_eq!(incident["count"], 2);
}

/// Alertmanager itself (Debian's prometheus-alertmanager), given an alert on its API, sends
/// its webhook to the curator: firing, then resolved.
#[actix_web::test]
async fn a_real_alertmanager_delivers_to_the_curator() {
    let binary = tool("prometheus-alertmanager");
    let app = spawn(CuratorConfig::for_tests()).await;
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        format!(
            "route:\n  receiver: curator\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: curator\n    webhook_configs:\n      - url: {}/v1/alertmanager\n        send_resolved: true\n",
            app.address
        ),
    )
    .expect("writing alertmanager.yml");
    let port = free_port();
    let mut child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No gossip port: a lone instance.
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting prometheus-alertmanager");
    let log = dir.path().join("alertmanager.log");
    if let Some(stderr) = child.stderr.take() {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.push(line);
                let _ = std::fs::write(&log, lines.join("\n"));
            }
        });
    }
    let _alertmanager = ChildGuard(Some(child));
    let api = format!("http://127.0.0.1:{port}/api/v2/alerts");
    let alert = |ends_at: &str| {
        json!([{
            "labels": {"alertname": "DiskFull", "service": "db", "severity": "warning"},
            "annotations": {"summary": "db disk is 95 % full"},
            "startsAt": "2026-01-02T03:04:05Z",
            "endsAt": ends_at,
            "generatorURL": "http://prometheus:9090/graph"
        }])
    };
    let far_future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    eventually(
        "Alertmanager to take an alert",
        Duration::from_secs(30),
        || async {
            let response = app
                .client
                .post(&api)
                .json(&alert(&far_future))
                .send()
                .await
                .ok()?;
            response.status().is_success().then_some(())
        },
    )
    .await;

    let incident = eventually(
        "the firing alert as an incident",
        Duration::from_secs(30),
        || async { incidents(&app, "service=db").await.into_iter().next() },
    )
    .await;
    assert_eq!(incident["source"], "alertmanager");
    assert_eq!(incident["subject"], "DiskFull");
    assert_eq!(incident["severity"], "warning");
    assert_eq!(incident["state"], "open");
    assert_eq!(incident["title"], "db disk is 95 % full");
    let fingerprint = incident["fingerprint"].as_str().unwrap();
    assert!(
        fingerprint.starts_with("alertmanager/") && fingerprint.len() == 29,
        "{fingerprint}"
    );

    // Ending the alert: Alertmanager sends it resolved.
    let ended = (chrono::Utc::now() - chrono::Duration::seconds(1)).to_rfc3339();
    let response = app
        .client
        .post(&api)
        .json(&alert(&ended))
        .send()
        .await
        .expect("ending the alert");
    assert!(response.status().is_success());
    eventually(
        "the resolved alert to resolve the incident",
        Duration::from_secs(30),
        || async {
            let incident = incidents(&app, "service=db").await.into_iter().next()?;
            (incident["state"] == "resolved").then_some(())
        },
    )
    .await;
    assert_eq!(
        incidents(&app, "").await.len(),
        1,
        "one incident, resolved: {:?}",
        std::fs::read_to_string(&log).ok()
    );
}
