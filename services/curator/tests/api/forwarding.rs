//! Incident changes reach the planner and the archivist (real receiving servers) through
//! the outboxes; repeats stay home; flapping is marked and not re-notified.

use std::collections::HashSet;
use std::time::Duration;

use curator::CuratorConfig;
use obs_core::config::Peers;
use obs_testkit::eventually;
use reqwest::Method;
use ulid::Ulid;

use crate::helpers::*;

fn planner_only(planner: &Receiver) -> Peers {
    Peers {
        planner: Some(planner.url.clone()),
        ..Peers::default()
    }
}

#[actix_web::test]
async fn changes_are_forwarded_to_the_planner_and_archived() {
    let planner = Receiver::start().await;
    let archivist = Receiver::start().await;
    let peers = Peers {
        planner: Some(planner.url.clone()),
        archivist: Some(archivist.url.clone()),
        ..Peers::default()
    };
    let app = spawn_wired(CuratorConfig::for_tests(), peers).await;
    let id = Ulid::new();
    post_issues(&app, &[issue(id, "api", "crashed", "api-1", 1)]).await;
    // Repeats are kept, not forwarded.
    for count in 2..=5 {
        post_issues(&app, &[issue(id, "api", "crashed", "api-1", count)]).await;
    }
    let incident_id = id.to_string();
    send(
        &app,
        Method::POST,
        &format!("/v1/incidents/{incident_id}/ack"),
        None,
    )
    .await;
    post_issues(&app, &[recovered(issue(id, "api", "crashed", "api-1", 5))]).await;

    let incidents = planner.wait_for("/v1/incidents", 3).await;
    let changes: Vec<&str> = incidents
        .iter()
        .map(|i| i["change"].as_str().unwrap())
        .collect();
    assert_eq!(changes, ["opened", "acknowledged", "resolved"]);
    assert!(incidents.iter().all(|i| i["id"] == incident_id));
    assert_eq!(incidents[0]["notify"], true);
    assert_eq!(incidents[1]["notify"], false, "acknowledging is not news");
    assert_eq!(incidents[2]["notify"], true);
    assert_eq!(
        incidents[1]["count"], 5,
        "repeats travel with the next change"
    );
    let revisions: Vec<u64> = incidents
        .iter()
        .map(|i| i["revision"].as_u64().unwrap())
        .collect();
    assert!(
        revisions.windows(2).all(|pair| pair[0] < pair[1]),
        "{revisions:?}"
    );

    let records = archivist.wait_for("/v1/records", 3).await;
    let ids: HashSet<&str> = records.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "a fresh record id per change");
    for record in &records {
        assert_eq!(record["kind"], "incident");
        assert_eq!(record["service"], "api");
        assert_eq!(record["body"]["id"], incident_id);
        assert!(Ulid::from_string(record["id"].as_str().unwrap()).is_ok());
    }
    // Nothing else arrives later either.
    assert_eq!(planner.items("/v1/incidents").len(), 3);
}

#[actix_web::test]
async fn a_planner_that_is_down_gets_the_changes_once_it_is_back() {
    let planner = Receiver::start().await;
    planner.answer(503);
    let app = spawn_wired(CuratorConfig::for_tests(), planner_only(&planner)).await;
    post_issues(&app, &[issue(Ulid::new(), "api", "crashed", "", 1)]).await;
    eventually("a failed delivery", Duration::from_secs(10), || async {
        let metrics = metrics(&app).await;
        (sample(&metrics, "outbox_retries_total{destination=\"planner\"}")? >= 1.0).then_some(())
    })
    .await;
    planner.answer(200);
    let incidents = planner.wait_for("/v1/incidents", 1).await;
    assert_eq!(incidents[0]["service"], "api");
}

#[actix_web::test]
async fn a_flapping_incident_is_marked_and_not_renotified_until_it_settles() {
    let planner = Receiver::start().await;
    let settings = CuratorConfig {
        flapping: curator::config::FlappingSettings {
            threshold: 2,
            window: Duration::from_secs(600),
            settle: Duration::from_millis(500),
        },
        ..CuratorConfig::for_tests()
    };
    let app = spawn_wired(settings, planner_only(&planner)).await;
    // Open and recover three times: the second reopen makes it flapping.
    let mut last = None;
    for _ in 0..3 {
        let occurrence = issue(Ulid::new(), "api", "unhealthy", "api-1", 1);
        post_issues(&app, std::slice::from_ref(&occurrence)).await;
        post_issues(&app, &[recovered(occurrence)]).await;
        last = Some(incident_of(&app, "api").await);
    }
    let incident = last.unwrap();
    assert_eq!(incident["flapping"], true);
    assert_eq!(incident["reopened"], 2);
    let forwarded = planner.wait_for("/v1/incidents", 6).await;
    let seen: Vec<(String, bool)> = forwarded
        .iter()
        .map(|i| {
            (
                i["change"].as_str().unwrap().to_string(),
                i["notify"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("opened".to_string(), true),
            ("resolved".to_string(), true),
            ("reopened".to_string(), true),
            ("resolved".to_string(), true),
            ("flapping".to_string(), false),
            ("resolved".to_string(), false),
        ]
    );
    let metrics = metrics(&app).await;
    assert_eq!(
        sample(
            &metrics,
            "curator_notifications_suppressed_total{reason=\"flapping\"}"
        ),
        Some(1.0)
    );

    // Quiet for the settle period: no longer flapping; it is resolved, and people last heard
    // it resolved, so there is nothing to notify.
    let settled = planner.wait_for("/v1/incidents", 7).await;
    assert_eq!(settled[6]["change"], "settled");
    assert_eq!(settled[6]["flapping"], false);
    assert_eq!(settled[6]["notify"], false);
    assert_eq!(incident_of(&app, "api").await["flapping"], false);
}
