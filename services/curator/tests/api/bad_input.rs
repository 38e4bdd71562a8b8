//! Every endpoint that takes input, given bad input: a clear JSON error naming the field,
//! nothing crashed, nothing changed.

use curator::CuratorConfig;
use obs_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};
use ulid::Ulid;

use crate::helpers::*;

/// Send, expect `status` with a JSON error whose code is `code` and whose message mentions
/// `mentions`.
async fn refused(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<&Value>,
    status: u16,
    code: &str,
    mentions: &str,
) {
    let (got, error) = send(app, method.clone(), path, body).await;
    assert_eq!(got, status, "{method} {path} {body:?}: {error}");
    assert_eq!(error["error"], code, "{method} {path} {body:?}: {error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(mentions),
        "{method} {path}: '{message}' does not mention '{mentions}'"
    );
}

#[actix_web::test]
async fn bad_issue_batches_are_refused_by_item_and_field() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let good = issue(Ulid::new(), "api", "crashed", "api-1", 1);
    post_issues(&app, std::slice::from_ref(&good)).await;
    let before = incidents(&app, "").await;

    let with = |field: &str, value: Value| {
        let mut item = issue(Ulid::new(), "db", "crashed", "db-1", 1);
        item[field] = value;
        json!([good.clone(), item])
    };
    let without = |field: &str| {
        let mut item = issue(Ulid::new(), "db", "crashed", "db-1", 1);
        item.as_object_mut().unwrap().remove(field);
        json!([item])
    };
    let cases = [
        (json!({"not": "a list"}), "invalid_field", "request body"),
        (json!([1]), "invalid_field", "[0]"),
        (with("kind", json!("gremlins")), "invalid_field", "[1].kind"),
        (
            with("severity", json!("apocalyptic")),
            "invalid_field",
            "[1].severity",
        ),
        (with("id", json!("not-a-ulid")), "invalid_field", "[1].id"),
        (
            with("service", json!("a b")),
            "invalid_field",
            "[1].service",
        ),
        (with("service", json!("")), "invalid_field", "[1].service"),
        (with("count", json!(0)), "invalid_field", "[1].count"),
        (with("count", json!(-1)), "invalid_field", "[1].count"),
        (
            with("first_seen", json!("yesterday")),
            "invalid_field",
            "[1].first_seen",
        ),
        (
            with("last_seen", json!("2020-01-01T00:00:00Z")),
            "invalid_field",
            "[1].last_seen",
        ),
        (
            with("message", json!("x".repeat(5000))),
            "invalid_field",
            "[1].message",
        ),
        (
            with("facts", json!("not a map")),
            "invalid_field",
            "[1].facts",
        ),
        (
            without("service"),
            "invalid_field",
            "missing field `service`",
        ),
        (without("state"), "invalid_field", "[0]"),
    ];
    for (body, code, mentions) in cases {
        refused(
            &app,
            Method::POST,
            "/v1/issues",
            Some(&body),
            400,
            code,
            mentions,
        )
        .await;
    }
    let (status, error) = post_raw(&app, "/v1/issues", "application/json", "[{").await;
    assert_eq!(
        (status, error["error"].as_str()),
        (400, Some("invalid_json")),
        "{error}"
    );
    let (status, error) = post_raw(&app, "/v1/issues", "text/plain", "[]").await;
    assert_eq!(status, 415, "{error}");

    assert_eq!(
        incidents(&app, "").await,
        before,
        "nothing of a refused batch was applied"
    );
}

#[actix_web::test]
async fn bad_alertmanager_payloads_are_refused_naming_the_field() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let good = alert_payload(
        "firing",
        "HighErrorRate",
        "1a30ba71cca2921f",
        "0001-01-01T00:00:00Z",
    );
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut payload = good.clone();
        change(&mut payload);
        payload
    };
    let cases = [
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("version");
            }),
            "version",
        ),
        (
            edit(&|p| p["version"] = json!("1")),
            "version: '1' is not supported",
        ),
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("status");
            }),
            "status: required",
        ),
        (
            edit(&|p| {
                p.as_object_mut().unwrap().remove("alerts");
            }),
            "alerts: required",
        ),
        (edit(&|p| p["alerts"] = json!("many")), "alerts"),
        (
            edit(&|p| {
                p["alerts"][0].as_object_mut().unwrap().remove("status");
            }),
            "alerts[0].status",
        ),
        (
            edit(&|p| p["alerts"][0]["status"] = json!("smouldering")),
            "alerts[0].status",
        ),
        (
            edit(&|p| {
                p["alerts"][0].as_object_mut().unwrap().remove("labels");
            }),
            "alerts[0].labels",
        ),
        (
            edit(&|p| {
                p["alerts"][0]["labels"]
                    .as_object_mut()
                    .unwrap()
                    .remove("alertname");
            }),
            "alerts[0].labels.alertname",
        ),
        (
            edit(&|p| p["alerts"][0]["labels"]["job"] = json!(7)),
            "alerts[0].labels",
        ),
        (
            edit(&|p| {
                p["alerts"][0].as_object_mut().unwrap().remove("startsAt");
            }),
            "alerts[0].startsAt",
        ),
        (
            edit(&|p| p["alerts"][0]["startsAt"] = json!("at noon")),
            "alerts[0].startsAt",
        ),
        (
            edit(&|p| p["alerts"][0]["endsAt"] = json!(12)),
            "alerts[0].endsAt",
        ),
        (
            edit(&|p| p["alerts"][0]["fingerprint"] = json!("../../etc")),
            "alerts[0].fingerprint",
        ),
    ];
    for (body, mentions) in cases {
        refused(
            &app,
            Method::POST,
            "/v1/alertmanager",
            Some(&body),
            400,
            "invalid_field",
            mentions,
        )
        .await;
    }
    assert!(incidents(&app, "").await.is_empty());
    let (status, _) = post(&app, "/v1/alertmanager", &good).await;
    assert_eq!(status, 200, "the good payload still goes through");
}

#[actix_web::test]
async fn bad_incident_requests_are_refused() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let crash = issue(Ulid::new(), "api", "crashed", "", 1);
    post_issues(&app, std::slice::from_ref(&crash)).await;
    let id = crash["id"].as_str().unwrap();
    let unknown = Ulid::new();
    refused(
        &app,
        Method::GET,
        "/v1/incidents/nope",
        None,
        400,
        "invalid_field",
        "id",
    )
    .await;
    refused(
        &app,
        Method::GET,
        &format!("/v1/incidents/{unknown}"),
        None,
        404,
        "not_found",
        &unknown.to_string(),
    )
    .await;
    refused(
        &app,
        Method::POST,
        &format!("/v1/incidents/{unknown}/ack"),
        None,
        404,
        "not_found",
        "no incident",
    )
    .await;
    refused(
        &app,
        Method::POST,
        &format!("/v1/incidents/{unknown}/resolve"),
        None,
        404,
        "not_found",
        "no incident",
    )
    .await;
    refused(
        &app,
        Method::POST,
        "/v1/incidents/nope/resolve",
        None,
        400,
        "invalid_field",
        "id",
    )
    .await;
    refused(
        &app,
        Method::GET,
        "/v1/incidents?state=sleeping",
        None,
        400,
        "invalid_field",
        "state",
    )
    .await;
    refused(
        &app,
        Method::GET,
        "/v1/incidents?severity=meh",
        None,
        400,
        "invalid_field",
        "severity",
    )
    .await;
    refused(
        &app,
        Method::GET,
        "/v1/incidents?limit=0",
        None,
        400,
        "invalid_field",
        "limit",
    )
    .await;
    refused(
        &app,
        Method::GET,
        "/v1/incidents?limit=lots",
        None,
        400,
        "invalid_field",
        "limit",
    )
    .await;
    let ack = format!("/v1/incidents/{id}/ack");
    refused(
        &app,
        Method::POST,
        &ack,
        Some(&json!({"byy": "alice"})),
        400,
        "invalid_field",
        "unknown field `byy`",
    )
    .await;
    refused(
        &app,
        Method::POST,
        &ack,
        Some(&json!({"by": 5})),
        400,
        "invalid_field",
        "by",
    )
    .await;
    refused(
        &app,
        Method::POST,
        &ack,
        Some(&json!({"by": "x".repeat(200)})),
        400,
        "invalid_field",
        "by",
    )
    .await;
    refused(
        &app,
        Method::POST,
        &ack,
        Some(&json!({"comment": "bell\u{7}"})),
        400,
        "invalid_field",
        "comment",
    )
    .await;
    let (status, error) = post_raw(&app, &ack, "application/json", "{oops").await;
    assert_eq!(status, 400, "{error}");
    // The body's own troubles are answered in the JSON shape too, not the framework's text.
    let resolve = format!("/v1/incidents/{id}/resolve");
    for path in [&ack, &resolve] {
        let oversized = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(vec![b' '; 2 * 1024 * 1024])
            .send()
            .await
            .unwrap();
        let (status, error) = json(oversized).await;
        assert_eq!(status, 413, "{path}: {error}");
        assert_eq!(error["error"], "payload_too_large", "{path}: {error}");
        let not_gzip = app
            .client
            .post(app.url(path))
            .header("content-encoding", "gzip")
            .body("{\"by\": \"alice\"}")
            .send()
            .await
            .unwrap();
        let (status, error) = json(not_gzip).await;
        assert_eq!(status, 400, "{path}: {error}");
        assert_eq!(error["error"], "invalid_encoding", "{path}: {error}");
    }
    assert_eq!(
        incident_of(&app, "api").await["state"],
        "open",
        "nothing was acknowledged"
    );
}

#[actix_web::test]
async fn bad_silences_are_refused_naming_the_field() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let past = (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let good = json!({"matchers": [{"name": "service", "value": "api"}], "ends_at": future, "comment": "why"});
    let edit = |change: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        change(&mut body);
        body
    };
    let cases = [
        (edit(&|b| b["matchers"] = json!([])), "matchers"),
        (
            edit(&|b| {
                b.as_object_mut().unwrap().remove("matchers");
            }),
            "missing field `matchers`",
        ),
        (
            edit(&|b| b["matchers"] = json!([{"name": "service", "value": "(", "isRegex": true}])),
            "matchers[0].value",
        ),
        (
            edit(&|b| b["matchers"][0]["name"] = json!("no spaces")),
            "matchers[0].name",
        ),
        (
            edit(&|b| b["matchers"][0]["isRegex"] = json!("yes")),
            "matchers[0].isRegex",
        ),
        (
            edit(&|b| b["matchers"] = json!([{"name": "service", "value": ".*", "isRegex": true}])),
            "match everything",
        ),
        (
            edit(&|b| b["ends_at"] = json!(past)),
            "ends_at: must be in the future",
        ),
        (edit(&|b| b["ends_at"] = json!("soon")), "ends_at"),
        (
            edit(&|b| b["ends_at"] = json!("2099-01-01T00:00:00Z")),
            "ends_at: must be within",
        ),
        (edit(&|b| b["comment"] = json!("  ")), "comment"),
        (
            edit(&|b| {
                b.as_object_mut().unwrap().remove("comment");
            }),
            "comment",
        ),
    ];
    for (body, mentions) in cases {
        refused(
            &app,
            Method::POST,
            "/v1/silences",
            Some(&body),
            400,
            "invalid_field",
            mentions,
        )
        .await;
    }
    let (_, list) = get(&app, "/v1/silences").await;
    assert_eq!(list["silences"], json!([]));
    refused(
        &app,
        Method::DELETE,
        "/v1/silences/nope",
        None,
        400,
        "invalid_field",
        "id",
    )
    .await;
    let unknown = Ulid::new();
    refused(
        &app,
        Method::DELETE,
        &format!("/v1/silences/{unknown}"),
        None,
        404,
        "not_found",
        "no silence",
    )
    .await;
}

#[actix_web::test]
async fn too_many_silences_are_refused() {
    let app = spawn(CuratorConfig {
        max_silences: 1,
        ..CuratorConfig::for_tests()
    })
    .await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let body = json!({"matchers": [{"name": "service", "value": "api"}], "ends_at": future, "comment": "why"});
    let (status, _) = post(&app, "/v1/silences", &body).await;
    assert_eq!(status, 201);
    refused(
        &app,
        Method::POST,
        "/v1/silences",
        Some(&body),
        409,
        "conflict",
        "MAX_SILENCES",
    )
    .await;
}

#[actix_web::test]
async fn bad_goals_are_refused_and_keep_the_old_ones() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let (status, _) = send(
        &app,
        Method::PUT,
        "/v1/goals",
        Some(&json!({"services": [{"service": "api"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let cases = [
        (
            json!({"services": [{"service": "api"}, {"service": "api"}]}),
            "services[1].service: 'api' is listed twice",
        ),
        (
            json!({"services": [{"service": "no/slash"}]}),
            "services[0].service",
        ),
        (
            json!({"services": [{"service": "db", "severity": "dire"}]}),
            "services[0].severity",
        ),
        (
            json!({"services": [{"service": "db", "note": "bell\u{7}"}]}),
            "services[0].note",
        ),
        (json!({"services": "api"}), "services"),
        (json!({}), "missing field `services`"),
        (json!([]), "request body"),
    ];
    for (body, mentions) in cases {
        refused(
            &app,
            Method::PUT,
            "/v1/goals",
            Some(&body),
            400,
            "invalid_field",
            mentions,
        )
        .await;
    }
    let (_, goals) = get(&app, "/v1/goals").await;
    assert_eq!(
        goals["services"],
        json!([{"service": "api", "severity": "critical"}])
    );
}
