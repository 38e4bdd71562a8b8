//! Every bad input gets a JSON error naming what was wrong, and changes nothing.

use planner::PlannerConfig;
use serde_json::{json, Value};
use ulid::Ulid;

use crate::helpers::*;

async fn refused(app: &obs_testkit::TestApp, body: &Value, field: &str) {
    let (status, error) = post(app, "/v1/incidents", body).await;
    assert_eq!(status, 400, "{body}: {error}");
    assert_eq!(error["error"], "invalid_field", "{error}");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{field}: ")),
        "expected {field}: {message}"
    );
}

#[actix_web::test]
async fn bad_incidents_name_the_field_and_apply_nothing() {
    let app = spawn(PlannerConfig::for_tests()).await;
    let good = incident("crashed", "api", "api-1", json!({"exit_code": 1}));
    let with = |field: &str, value: Value| {
        let mut copy = good.clone();
        copy[field] = value;
        copy
    };
    let without = |field: &str| {
        let mut copy = good.clone();
        copy.as_object_mut().unwrap().remove(field);
        copy
    };
    let many_facts: serde_json::Map<String, Value> =
        (0..65).map(|n| (format!("f{n}"), json!(n))).collect();
    // The good one first: a bad item later must not let it through.
    for (bad, field) in [
        (with("id", json!("not-a-ulid")), "[1].id"),
        (with("kind", json!("disk_full")), "[1].kind"),
        (with("severity", json!("apocalyptic")), "[1].severity"),
        (with("state", json!("gone")), "[1].state"),
        (with("revision", json!(-1)), "[1].revision"),
        (with("revision", json!("3")), "[1].revision"),
        (with("first_seen", json!("yesterday")), "[1].first_seen"),
        (with("facts", json!([1, 2])), "[1].facts"),
        (without("service"), "[1]"),
        (without("revision"), "[1]"),
        (with("service", json!("")), "[1].service"),
        (with("service", json!("x".repeat(129))), "[1].service"),
        (with("title", json!("bell\u{7}")), "[1].title"),
        (
            with("facts", Value::Object(many_facts.clone())),
            "[1].facts",
        ),
        (json!("not an object"), "[1]"),
    ] {
        refused(
            &app,
            &json!([incident("missing", "first", "", json!({})), bad]),
            field,
        )
        .await;
    }
    assert!(plans(&app, "").await.is_empty(), "nothing applied");

    // The body itself.
    let (status, error) = post(&app, "/v1/incidents", &json!({"not": "an array"})).await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"].is_string() && error["message"].is_string());
    let (status, error) = post_raw(&app, "/v1/incidents", "application/json", "[{").await;
    assert_eq!(status, 400, "{error}");
    let (status, error) = post_raw(&app, "/v1/incidents", "text/plain", "[]").await;
    assert_eq!(status, 415, "{error}");
    let (status, tally) = post(&app, "/v1/incidents", &json!([])).await;
    assert_eq!(status, 200);
    assert_eq!(tally["received"], 0);
    assert!(plans(&app, "").await.is_empty());
}

#[actix_web::test]
async fn bad_queries_and_ids_are_refused_and_unknown_ids_are_404() {
    let app = spawn(PlannerConfig::for_tests()).await;
    for (query, field) in [
        ("state=pending", "state"),
        ("limit=0", "limit"),
        ("limit=10001", "limit"),
        ("limit=lots", "limit"),
    ] {
        let (status, error) = get(&app, &format!("/v1/plans?{query}")).await;
        assert_eq!(status, 400, "{query}: {error}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{field}: ")),
            "{error}"
        );
    }
    let (status, error) = get(&app, "/v1/plans/not-a-ulid").await;
    assert_eq!(status, 400, "{error}");
    assert!(
        error["message"].as_str().unwrap().starts_with("id: "),
        "{error}"
    );
    let unknown = Ulid::new();
    let (status, error) = get(&app, &format!("/v1/plans/{unknown}")).await;
    assert_eq!(status, 404, "{error}");
    assert_eq!(error["error"], "not_found");
    assert!(error["message"]
        .as_str()
        .unwrap()
        .contains(&unknown.to_string()));
    let (status, error) = get(&app, "/v1/nothing-here").await;
    assert_eq!(status, 404, "{error}");
    let response = app
        .client
        .delete(app.url("/v1/rules"))
        .send()
        .await
        .expect("an answer");
    let (status, error) = json(response).await;
    assert_eq!(status, 405, "{error}");
}

/// The batch is read by the kit's extractor, which inflates a compressed body at most
/// MAX_BODY_BYTES (actix's own inflated each chunk whole: the hostile suite saw the planner
/// reach 196 MiB on a gzip bomb) and refuses a coding it cannot decode.
#[actix_web::test]
async fn a_batch_in_a_coding_the_kit_does_not_decode_is_415() {
    let app = spawn(PlannerConfig::for_tests()).await;
    let response = app
        .client
        .post(app.url("/v1/incidents"))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("[]")
        .send()
        .await
        .unwrap();
    let (status, body) = json(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
}
