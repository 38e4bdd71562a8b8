//! Reading incidents and changing them by hand.

use curator::CuratorConfig;
use reqwest::Method;
use serde_json::json;
use ulid::Ulid;

use crate::helpers::*;

#[actix_web::test]
async fn incidents_are_listed_filtered_and_read_one_by_one() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let mut warning = issue(Ulid::new(), "db", "probe_failed", "db-probe", 1);
    warning["severity"] = json!("warning");
    let critical = issue(Ulid::new(), "api", "crashed", "api-1", 1);
    let gone = issue(Ulid::new(), "cache", "crashed", "cache-1", 1);
    post_issues(&app, &[warning, critical.clone(), gone.clone()]).await;
    post_issues(&app, &[recovered(gone)]).await;

    let all = incidents(&app, "").await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[2]["service"], "cache", "resolved ones come last");
    assert_eq!(incidents(&app, "severity=warning").await.len(), 1);
    assert_eq!(
        incidents(&app, "severity=critical&state=open").await.len(),
        1
    );
    assert_eq!(incidents(&app, "service=api").await[0]["kind"], "crashed");
    assert_eq!(incidents(&app, "limit=1").await.len(), 1);
    assert!(incidents(&app, "service=nobody").await.is_empty());

    let id = critical["id"].as_str().unwrap();
    let (status, incident) = get(&app, &format!("/v1/incidents/{id}")).await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["title"], "api: crashed (api-1)");
    assert_eq!(incident["source"], "watcher");
}

#[actix_web::test]
async fn incidents_are_acknowledged_and_resolved_by_hand() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let crash = issue(Ulid::new(), "api", "crashed", "api-1", 1);
    post_issues(&app, std::slice::from_ref(&crash)).await;
    let id = crash["id"].as_str().unwrap();

    let (status, incident) = post(
        &app,
        &format!("/v1/incidents/{id}/ack"),
        &json!({"by": "alice", "comment": "looking"}),
    )
    .await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["state"], "acknowledged");
    assert_eq!(incident["acknowledged_by"], "alice");
    assert_eq!(incident["comment"], "looking");
    assert!(incident["acknowledged_at"].is_string());

    // No body at all is fine too; a second acknowledge changes nothing.
    let (status, again) = send(&app, Method::POST, &format!("/v1/incidents/{id}/ack"), None).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["acknowledged_by"], "alice");
    assert_eq!(again["revision"], incident["revision"]);

    // Repeats keep it acknowledged.
    post_issues(
        &app,
        &[issue(
            crash["id"].as_str().unwrap().parse().unwrap(),
            "api",
            "crashed",
            "api-1",
            2,
        )],
    )
    .await;
    assert_eq!(incident_of(&app, "api").await["state"], "acknowledged");

    let (status, incident) = send(
        &app,
        Method::POST,
        &format!("/v1/incidents/{id}/resolve"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{incident}");
    assert_eq!(incident["state"], "resolved");
    assert_eq!(incident["resolved_by"], "unknown", "no `by`: not known who");

    // A resolved incident cannot be acknowledged.
    let (status, error) = send(&app, Method::POST, &format!("/v1/incidents/{id}/ack"), None).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"], "conflict");

    // The watcher still sees it: it reopens, unacknowledged.
    post_issues(
        &app,
        &[issue(
            crash["id"].as_str().unwrap().parse().unwrap(),
            "api",
            "crashed",
            "api-1",
            3,
        )],
    )
    .await;
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["state"], "open");
    assert_eq!(incident["reopened"], 1);
    assert!(incident.get("acknowledged_by").is_none());
}
