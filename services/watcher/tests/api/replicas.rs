//! Two watchers on one PostgreSQL behave as one: beats taken by either reach the checker,
//! whichever replica holds its lease; issues, events and services read alike through both;
//! when the lease holder stops, the other takes over the checking.

use std::time::{Duration, Instant};

use obs_testkit::eventually;
use serde_json::json;
use watcher::WatcherConfig;

use crate::helpers::{
    events_of, heartbeat, issues, metrics, post, sample, service_status, spawn_at, wait_for_issue,
    wait_for_status, Backend, Place,
};

const LEASE_TTL: Duration = Duration::from_secs(1);

fn settings() -> WatcherConfig {
    let mut settings = WatcherConfig::for_tests();
    settings.lease_ttl = LEASE_TTL;
    settings
}

/// Wait until some replica holds the checker's lease.
async fn checker_lease_held(place: &Place) {
    let url = place.database_url.clone().expect("a PostgreSQL place");
    let database = url.rsplit('/').next().unwrap_or_default().to_string();
    eventually("a checker lease holder", Duration::from_secs(10), || {
        let database = database.clone();
        async move {
            let holder = obs_testkit::postgres::shared()
                .psql(
                    &database,
                    "SELECT holder FROM leases WHERE name = 'watcher-checker'",
                )
                .ok()?;
            (!holder.is_empty()).then_some(())
        }
    })
    .await;
}

#[actix_web::test]
async fn two_watchers_on_one_postgres_behave_as_one() {
    let place = Place::new(Backend::Postgres);
    let a = spawn_at(&place, settings(), None).await;
    // A started first, so A checks; B only takes beats and answers reads.
    checker_lease_held(&place).await;
    let replica = place.replica();
    let b = spawn_at(&replica, settings(), None).await;

    // Beats on A, then silence: B sees the service, then the issue the checker opened.
    heartbeat(
        &a,
        json!({"service": "api", "phase": "serving", "timeout_seconds": 1}),
    )
    .await;
    eventually("api seen through B", Duration::from_secs(5), || async {
        service_status(&b, "api").await
    })
    .await;
    let missed = wait_for_issue(&b, "open", "heartbeat_missed", "api").await;
    wait_for_status(&b, "api", "down").await;
    let through_a = issues(&a, "open", "heartbeat_missed", "api").await;
    assert_eq!(through_a.len(), 1, "one issue, whichever replica is asked");
    assert_eq!(through_a[0]["id"], missed["id"]);
    // B's own gauges follow what the checker on A committed.
    eventually(
        "B's gauges to show api down",
        Duration::from_secs(15),
        || async {
            let text = metrics(&b).await;
            let down = sample(&text, r#"monitoring_service_status{service="api"}"#) == Some(0.0);
            let open = sample(
                &text,
                r#"watcher_issues_open{kind="heartbeat_missed",severity="critical"}"#,
            ) == Some(1.0);
            (down && open).then_some(())
        },
    )
    .await;

    // It comes back through B, which never knew it was down: the checker sees the beat in
    // the database and resolves the same issue.
    heartbeat(&b, json!({"service": "api"})).await;
    let resolved = wait_for_issue(&a, "resolved", "heartbeat_missed", "api").await;
    assert_eq!(resolved["id"], missed["id"]);
    wait_for_status(&a, "api", "up").await;
    assert!(issues(&b, "open", "heartbeat_missed", "api")
        .await
        .is_empty());

    // An event posted to one is listed by the other.
    let (status, reply) = post(
        &b,
        "/events",
        &json!({"service": "api", "event_type": "deploy", "detail": "v2"}),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let events = events_of(&a, "api").await;
    assert!(
        events.iter().any(|event| event["id"] == reply["id"]),
        "{events:?}"
    );

    // The lease holder stops: B takes the checker over, and a service beating on B and then
    // silent is still found within the lease's time to live and a check interval (plus its
    // own timeout and the write-behind grace).
    a.shutdown().await.expect("a clean stop");
    let stopped = Instant::now();
    heartbeat(&b, json!({"service": "worker", "timeout_seconds": 1})).await;
    wait_for_issue(&b, "open", "heartbeat_missed", "worker").await;
    let bound = LEASE_TTL
        + Duration::from_secs(1)
        + watcher::checker::SHARED_GRACE
        + settings().heartbeat.check_interval
        + Duration::from_secs(2);
    assert!(
        stopped.elapsed() < bound,
        "took {:?} (bound {bound:?})",
        stopped.elapsed()
    );
}
