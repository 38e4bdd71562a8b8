//! `POST /v1/issues`: dedup by fingerprint, idempotent redelivery, recovery.

use curator::CuratorConfig;
use serde_json::json;
use ulid::Ulid;

use crate::helpers::*;

#[actix_web::test]
async fn issues_dedupe_into_incidents_and_recoveries_resolve_them() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let oom = Ulid::new();
    let tally = post_issues(
        &app,
        &[
            issue(oom, "api", "oom_killed", "api-1", 1),
            issue(Ulid::new(), "db", "crashed", "db-1", 1),
        ],
    )
    .await;
    assert_eq!(tally["opened"], 2, "{tally}");

    // The watcher saw it again: same issue id, higher count.
    let tally = post_issues(&app, &[issue(oom, "api", "oom_killed", "api-1", 3)]).await;
    assert_eq!(tally["deduplicated"], 1, "{tally}");
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["id"], oom.to_string(), "the first issue's id");
    assert_eq!(incident["count"], 3);
    assert_eq!(incident["state"], "open");
    assert_eq!(incident["fingerprint"], "api/oom_killed/api-1");
    assert_eq!(incident["facts"]["memory_limit_bytes"], 268435456);
    assert_eq!(incident["issue_ids"], json!([oom.to_string()]));

    // The same batch again (an outbox redelivery) changes nothing.
    let tally = post_issues(&app, &[issue(oom, "api", "oom_killed", "api-1", 3)]).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
    assert_eq!(incident_of(&app, "api").await["count"], 3);

    // A second occurrence (a new issue id) folds into the same incident.
    let second = Ulid::new();
    post_issues(&app, &[issue(second, "api", "oom_killed", "api-1", 2)]).await;
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["count"], 5);
    assert_eq!(
        incident["issue_ids"],
        json!([oom.to_string(), second.to_string()])
    );

    // Recovery of the latest occurrence resolves it.
    let tally = post_issues(
        &app,
        &[recovered(issue(second, "api", "oom_killed", "api-1", 2))],
    )
    .await;
    assert_eq!(tally["resolved"], 1, "{tally}");
    let incident = incident_of(&app, "api").await;
    assert_eq!(incident["state"], "resolved");
    assert_eq!(incident["resolved_by"], "watcher");
    assert_eq!(incident["resolved_at"], "2026-01-02T04:00:00Z");
    assert_eq!(incidents(&app, "state=open").await.len(), 1);
    assert_eq!(incidents(&app, "state=resolved").await.len(), 1);
}

#[actix_web::test]
async fn archive_records_of_issues_are_accepted_too() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let id = Ulid::new();
    let record = json!({
        "id": Ulid::new().to_string(), "kind": "issue", "service": "api",
        "ts": "2026-01-02T03:04:05Z", "body": issue(id, "api", "unhealthy", "api-1", 1)
    });
    let tally = post_issues(&app, std::slice::from_ref(&record)).await;
    assert_eq!(tally["opened"], 1, "{tally}");
    // The envelope and the bare issue are the same item: a redelivery.
    let tally = post_issues(&app, &[issue(id, "api", "unhealthy", "api-1", 1)]).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
}

#[actix_web::test]
async fn an_empty_batch_is_fine() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let tally = post_issues(&app, &[]).await;
    assert_eq!(tally["received"], 0);
}

#[actix_web::test]
async fn signals_beyond_max_incidents_are_refused_with_503_and_can_be_retried() {
    let app = spawn(CuratorConfig {
        max_incidents: 1,
        ..CuratorConfig::for_tests()
    })
    .await;
    let first = issue(Ulid::new(), "api", "crashed", "", 1);
    let second = issue(Ulid::new(), "db", "crashed", "", 1);
    let (status, body) = post(&app, "/v1/issues", &json!([first.clone(), second.clone()])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("MAX_INCIDENTS"),
        "{body}"
    );
    assert_eq!(incidents(&app, "").await.len(), 1, "the rest was applied");
    // Once api resolves, the same batch goes through; api's part is a replay.
    post_issues(&app, &[recovered(first.clone())]).await;
    let tally = post_issues(&app, &[first, second]).await;
    assert_eq!(tally["opened"], 1, "{tally}");
    assert_eq!(tally["duplicates"], 1, "{tally}");
}
