//! The commit path, on the embedded SQLite and on a real PostgreSQL: incident rows and the
//! records they forward commit together or not at all. A failed commit answers 503 and
//! changes nothing, and the sender's retry is applied as the first copy (the journal used
//! to answer 500 with a torn line left behind, lose a later acknowledged ack at the next
//! restart, and answer the retry `deduplicated` from memory, so the incident was never
//! saved nor forwarded). Two curators on one database act as one: one open incident per
//! fingerprint, and a change decided from a stale copy is 409 naming the current revision.
//! The files of the earlier version are imported once; an unreadable one stops the curator.

use std::time::Duration;

use curator::{Curator, CuratorConfig};
use obs_core::config::Peers;
use obs_core::{CoreConfig, Service};
use obs_testkit::{eventually, TestApp};
use reqwest::Method;
use serde_json::{json, Value};
use ulid::Ulid;

use crate::helpers::*;

/// Repeats saved only when asked (at shutdown), so a test sees what the transactions did.
fn settings() -> CuratorConfig {
    CuratorConfig {
        state_flush_interval: Duration::from_secs(3600),
        ..CuratorConfig::for_tests()
    }
}

async fn by_hand(app: &TestApp, id: Ulid, action: &str) -> (u16, Value) {
    send(
        app,
        Method::POST,
        &format!("/v1/incidents/{id}/{action}"),
        Some(&json!({"by": "alice"})),
    )
    .await
}

async fn a_failed_commit_changes_nothing_and_the_retry_is_applied(backend: Backend) {
    let planner = Receiver::start().await;
    let archivist = Receiver::start().await;
    let (mut config, _state) = config_on(backend);
    config.peers = Peers {
        planner: Some(planner.url.clone()),
        archivist: Some(archivist.url.clone()),
        ..Peers::default()
    };
    let app = spawn_with(config.clone(), settings()).await;
    let db = open_db(&config).await;
    let id = Ulid::new();
    let first = issue(id, "api", "oom_killed", "api-1", 1);

    break_table(&db, "curator_incidents").await;
    let (status, body) = post(&app, "/v1/issues", &json!([first.clone()])).await;
    assert_nothing_stored(status, &body);
    assert!(
        incidents(&app, "").await.is_empty(),
        "nothing changed in memory"
    );

    heal(&db, "curator_incidents").await;
    let tally = post_issues(&app, std::slice::from_ref(&first)).await;
    assert_eq!(tally["opened"], 1, "the retry opens the incident: {tally}");
    assert_eq!(tally["deduplicated"], 0, "{tally}");
    let forwarded = planner.wait_for("/v1/incidents", 1).await;
    assert_eq!(forwarded[0]["id"], id.to_string());
    assert_eq!(forwarded[0]["change"], "opened");
    archivist.wait_for("/v1/records", 1).await;

    // A batch that only repeats what is open writes nothing: the fault does not touch it.
    break_table(&db, "curator_incidents").await;
    let tally = post_issues(&app, &[issue(id, "api", "oom_killed", "api-1", 2)]).await;
    assert_eq!(tally["deduplicated"], 1, "{tally}");

    // A failed acknowledgement changes nothing either; the retry is acknowledged for good.
    let (status, body) = by_hand(&app, id, "ack").await;
    assert_nothing_stored(status, &body);
    assert_eq!(incident_of(&app, "api").await["state"], "open");
    heal(&db, "curator_incidents").await;
    let (status, body) = by_hand(&app, id, "ack").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "acknowledged");
    let forwarded = planner.wait_for("/v1/incidents", 2).await;
    assert_eq!(
        forwarded.len(),
        2,
        "the failed ack sent nothing: {forwarded:#?}"
    );
    assert_eq!(forwarded[1]["change"], "acknowledged");

    // Silences and goals: the same.
    break_table(&db, "curator_silences").await;
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let silence = json!({"matchers": [{"name": "service", "value": "web"}], "ends_at": ends_at, "comment": "deploying web"});
    let (status, body) = post(&app, "/v1/silences", &silence).await;
    assert_nothing_stored(status, &body);
    let (_, silences) = get(&app, "/v1/silences").await;
    assert_eq!(silences["silences"], json!([]));
    heal(&db, "curator_silences").await;
    let (status, body) = post(&app, "/v1/silences", &silence).await;
    assert_eq!(status, 201, "{body}");
    break_table(&db, "curator_goals").await;
    let goals = json!({"services": [{"service": "api"}]});
    let (status, body) = send(&app, Method::PUT, "/v1/goals", Some(&goals)).await;
    assert_nothing_stored(status, &body);
    let (_, stored) = get(&app, "/v1/goals").await;
    assert_eq!(stored["services"], json!([]));
    heal(&db, "curator_goals").await;
    let (status, body) = send(&app, Method::PUT, "/v1/goals", Some(&goals)).await;
    assert_eq!(status, 200, "{body}");

    app.shutdown().await.expect("a clean shutdown");
    let app = spawn_with(config.clone(), settings()).await;
    let incident = incident_of(&app, "api").await;
    assert_eq!(
        incident["state"], "acknowledged",
        "the ack survived: {incident}"
    );
    assert_eq!(incident["count"], 2, "the repeat was saved at shutdown");
    let (_, silences) = get(&app, "/v1/silences").await;
    assert_eq!(silences["silences"].as_array().map(Vec::len), Some(1));
    let (_, stored) = get(&app, "/v1/goals").await;
    assert_eq!(stored["services"][0]["service"], "api");
    // Applied before the restart: a redelivery changes nothing.
    let tally = post_issues(&app, &[first]).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
}

#[actix_web::test]
async fn a_failed_commit_changes_nothing_and_the_retry_is_applied_on_sqlite() {
    a_failed_commit_changes_nothing_and_the_retry_is_applied(Backend::Sqlite).await;
}

#[actix_web::test]
async fn a_failed_commit_changes_nothing_and_the_retry_is_applied_on_postgres() {
    a_failed_commit_changes_nothing_and_the_retry_is_applied(Backend::Postgres).await;
}

async fn lifecycle_survives_a_restart(backend: Backend) {
    let (config, _state) = config_on(backend);
    let app = spawn_with(config.clone(), settings()).await;
    let api = Ulid::new();
    let db = issue(Ulid::new(), "db", "crashed", "db-1", 1);
    post_issues(
        &app,
        &[issue(api, "api", "crashed", "api-1", 1), db.clone()],
    )
    .await;
    post_issues(&app, &[recovered(db.clone())]).await;
    let (status, _) = by_hand(&app, api, "ack").await;
    assert_eq!(status, 200);
    let before = incidents(&app, "").await;
    assert_eq!(before.len(), 2);
    app.shutdown().await.expect("a clean shutdown");
    let app = spawn_with(config, settings()).await;
    assert_eq!(incidents(&app, "").await, before);
    assert_eq!(incidents(&app, "state=resolved").await.len(), 1);
    assert_eq!(
        incidents(&app, "service=api&state=acknowledged")
            .await
            .len(),
        1
    );
    let tally = post_issues(&app, &[recovered(db)]).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
}

#[actix_web::test]
async fn lifecycle_survives_a_restart_on_postgres() {
    lifecycle_survives_a_restart(Backend::Postgres).await;
}

#[actix_web::test]
async fn two_curators_on_one_database_keep_one_open_incident_per_fingerprint() {
    let (config, _state) = config_on(Backend::Postgres);
    let (other, _other_state) = replica(&config);
    let one = spawn_with(config, settings()).await;
    let two = spawn_with(other, settings()).await;
    // Two watchers see the same trouble at once, under issue ids of their own.
    for round in 0..5 {
        let service = format!("svc-{round}");
        let to_one = json!([issue(Ulid::new(), &service, "crashed", "x", 1)]);
        let to_two = json!([issue(Ulid::new(), &service, "crashed", "x", 1)]);
        let (a, b) = tokio::join!(
            post(&one, "/v1/issues", &to_one),
            post(&two, "/v1/issues", &to_two),
        );
        assert_eq!(a.0, 200, "{}", a.1);
        assert_eq!(b.0, 200, "{}", b.1);
        assert_eq!(
            a.1["opened"].as_u64().unwrap_or(9) + b.1["opened"].as_u64().unwrap_or(9),
            1,
            "one opened, the other folded in: {} {}",
            a.1,
            b.1
        );
        for app in [&one, &two] {
            let found = incidents(app, &format!("service={service}")).await;
            assert_eq!(found.len(), 1, "{found:#?}");
        }
    }
    // The same issue redelivered to the other replica changes nothing there either.
    let id = Ulid::new();
    let item = issue(id, "web", "crashed", "web-1", 1);
    assert_eq!(
        post_issues(&one, std::slice::from_ref(&item)).await["opened"],
        1
    );
    let tally = post_issues(&two, &[item]).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
}

#[actix_web::test]
async fn a_change_through_one_curator_is_seen_through_the_other_and_a_stale_one_is_409() {
    let (config, _state) = config_on(Backend::Postgres);
    let (other, _other_state) = replica(&config);
    // Housekeeping (which refreshes the copy of the replica holding its lease) only at start.
    let quiet = CuratorConfig {
        housekeeping_interval: Duration::from_secs(3600),
        ..settings()
    };
    let one = spawn_with(config, quiet.clone()).await;
    let two = spawn_with(other, quiet).await;
    let id = Ulid::new();
    post_issues(&one, &[issue(id, "api", "crashed", "api-1", 1)]).await;
    let (status, seen) = get(&two, &format!("/v1/incidents/{id}")).await;
    assert_eq!(status, 200, "{seen}");
    assert_eq!(seen["state"], "open");

    let (status, acknowledged) = by_hand(&two, id, "ack").await;
    assert_eq!(status, 200, "{acknowledged}");
    assert_eq!(incident_of(&one, "api").await["state"], "acknowledged");
    let revision = acknowledged["revision"].as_u64().expect("a revision");

    // The first curator still holds the incident as it opened it: resolving from that copy
    // is refused, naming the revision stored now; looked at again, it goes through.
    let (status, body) = by_hand(&one, id, "resolve").await;
    assert_eq!(status, 409, "{body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("revision {revision}")), "{body}");
    assert_eq!(incident_of(&two, "api").await["state"], "acknowledged");
    let (status, body) = by_hand(&one, id, "resolve").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "resolved");
    assert_eq!(incident_of(&two, "api").await["state"], "resolved");

    // Silences and goals put through one are what the other lists.
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let (status, silence) = post(
        &one,
        "/v1/silences",
        &json!({"matchers": [{"name": "service", "value": "web"}], "ends_at": ends_at, "comment": "deploying web"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    let (_, listed) = get(&two, "/v1/silences").await;
    assert_eq!(listed["silences"][0]["id"], silence["id"]);
    let (status, removed) = send(
        &two,
        Method::DELETE,
        &format!(
            "/v1/silences/{}",
            silence["id"].as_str().unwrap_or_default()
        ),
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    let (_, listed) = get(&one, "/v1/silences").await;
    assert_eq!(listed["silences"], json!([]));
    let (status, _) = send(
        &one,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "api"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, goals) = get(&two, "/v1/goals").await;
    assert_eq!(goals["services"][0]["service"], "api");
}

/// An incident's row as the current version stores it: the shape of an earlier version's
/// journal line.
async fn a_saved_incident(service: &str) -> Value {
    let (config, _state) = config_on(Backend::Sqlite);
    let app = spawn_with(config.clone(), settings()).await;
    post_issues(&app, &[issue(Ulid::new(), service, "crashed", "x", 3)]).await;
    app.shutdown().await.expect("a clean shutdown");
    let db = open_db(&config).await;
    let body = db
        .read(|tx| {
            tx.query_opt("SELECT body FROM curator_incidents", &[])?
                .map(|row| row.json::<Value>(0))
                .transpose()
        })
        .await
        .expect("reading the row");
    body.expect("one incident")
}

#[actix_web::test]
async fn the_files_of_the_earlier_version_are_imported_once() {
    let state = tempfile::tempdir().expect("a temporary folder");
    let api = a_saved_incident("api").await;
    let db = a_saved_incident("db").await;
    let mut older = api.clone();
    older["incident"]["count"] = json!(1);
    older["incident"]["revision"] = json!(0);
    let journal = format!(
        "{}\n{}\n{}\n{{\"incident\": {{\"torn",
        json!({"incident": api}),
        json!({"incident": older}),
        json!({"incident": db})
    );
    std::fs::write(state.path().join("incidents.log"), journal).expect("writing the journal");
    let silence_id = Ulid::new();
    let ends_at = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    std::fs::write(
        state.path().join("silences.json"),
        json!({"silences": [{"id": silence_id.to_string(), "matchers": [{"name": "service", "value": "web", "isRegex": false, "isEqual": true}],
            "starts_at": chrono::Utc::now().to_rfc3339(), "ends_at": ends_at, "comment": "", "created_by": "alice",
            "created_at": chrono::Utc::now().to_rfc3339(), "state": "active"}]})
        .to_string(),
    )
    .expect("writing the silences");
    std::fs::write(
        state.path().join("goals.json"),
        json!({"services": [{"service": "api", "severity": "critical"}]}).to_string(),
    )
    .expect("writing the goals");

    let config = CoreConfig::for_tests("curator", state.path());
    for _ in 0..2 {
        let app = spawn_with(config.clone(), settings()).await;
        let listed = incidents(&app, "").await;
        assert_eq!(listed.len(), 2, "{listed:#?}");
        assert_eq!(
            incident_of(&app, "api").await["count"],
            3,
            "the highest revision"
        );
        let (_, silences) = get(&app, "/v1/silences").await;
        assert_eq!(silences["silences"][0]["id"], silence_id.to_string());
        let (_, goals) = get(&app, "/v1/goals").await;
        assert_eq!(goals["services"][0]["service"], "api");
        app.shutdown().await.expect("a clean shutdown");
        for name in ["incidents.log", "silences.json", "goals.json"] {
            assert!(!state.path().join(name).exists(), "{name} was set aside");
            assert!(
                state.path().join(format!("{name}.imported")).exists(),
                "{name}.imported"
            );
        }
    }
}

#[actix_web::test]
async fn an_unreadable_file_of_the_earlier_version_stops_the_curator_naming_it() {
    for (name, text) in [
        ("incidents.snapshot", "{\"incident\": 42}\n"),
        ("incidents.log", "not json\n{\"pruned\": {}}\n"),
        ("silences.json", "{\"silences\": [{]"),
        ("goals.json", "[]"),
    ] {
        let state = tempfile::tempdir().expect("a temporary folder");
        std::fs::write(state.path().join(name), text).expect("writing the file");
        let config = CoreConfig::for_tests("curator", state.path());
        let error = TestApp::spawn(config, async move |service: &Service| {
            Curator::with_config(service, CuratorConfig::for_tests()).await
        })
        .await
        .err()
        .unwrap_or_else(|| panic!("the curator started over an unreadable {name}"));
        let line = format!("{error:#}");
        assert!(line.contains(name), "{line}");
        assert!(
            state.path().join(name).exists(),
            "{name} is left where it is"
        );
    }
}

#[actix_web::test]
async fn repeats_are_saved_behind_in_one_transaction() {
    let (config, _state) = config_on(Backend::Sqlite);
    let app = spawn_with(config.clone(), CuratorConfig::for_tests()).await;
    let id = Ulid::new();
    post_issues(&app, &[issue(id, "api", "crashed", "api-1", 1)]).await;
    post_issues(&app, &[issue(id, "api", "crashed", "api-1", 4)]).await;
    let db = open_db(&config).await;
    eventually("the repeat saved behind", Duration::from_secs(10), || {
        let db = db.clone();
        async move {
            let body: Value = db
                .read(|tx| {
                    tx.query_opt("SELECT body FROM curator_incidents", &[])?
                        .map(|row| row.json::<Value>(0))
                        .transpose()
                })
                .await
                .ok()??;
            (body["incident"]["count"] == 4).then_some(())
        }
    })
    .await;
}

async fn pruned_incidents_are_gone_for_good_and_their_issues_stay_applied(backend: Backend) {
    let (config, _state) = config_on(backend);
    let keep_one = CuratorConfig {
        resolved_max: 1,
        ..settings()
    };
    let app = spawn_with(config.clone(), keep_one.clone()).await;
    let items: Vec<Value> = (0..3)
        .map(|n| issue(Ulid::new(), &format!("svc-{n}"), "crashed", "x", 1))
        .collect();
    post_issues(&app, &items).await;
    for item in &items {
        post_issues(&app, &[recovered(item.clone())]).await;
    }
    eventually("retention to prune", Duration::from_secs(10), || async {
        (incidents(&app, "").await.len() == 1).then_some(())
    })
    .await;
    // Redelivered after its incident was pruned: already applied, so nothing opens.
    let tally = post_issues(&app, std::slice::from_ref(&items[0])).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
    app.shutdown().await.expect("a clean shutdown");
    let app = spawn_with(config, keep_one).await;
    assert_eq!(
        incidents(&app, "").await.len(),
        1,
        "pruned rows stay deleted"
    );
    let tally = post_issues(&app, std::slice::from_ref(&items[1])).await;
    assert_eq!(tally["duplicates"], 1, "{tally}");
}

#[actix_web::test]
async fn pruned_incidents_are_gone_for_good_and_their_issues_stay_applied_on_sqlite() {
    pruned_incidents_are_gone_for_good_and_their_issues_stay_applied(Backend::Sqlite).await;
}

#[actix_web::test]
async fn pruned_incidents_are_gone_for_good_and_their_issues_stay_applied_on_postgres() {
    pruned_incidents_are_gone_for_good_and_their_issues_stay_applied(Backend::Postgres).await;
}
