//! Every bad input is a 400 naming the field, and nothing of a refused batch is applied.

use obs_core::config::Peers;
use obs_model::Severity;
use serde_json::{json, Value};
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

fn field_named(body: &Value, field: &str) {
    assert_eq!(body["error"], "invalid_field", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("{field}:")),
        "{field}: {message}"
    );
}

#[actix_web::test]
async fn bad_plans_are_refused_naming_the_field_and_nothing_is_applied() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let good = serde_json::to_value(plan("api", "api-1 crashed", Severity::Critical)).unwrap();

    let with = |change: &dyn Fn(&mut Value)| {
        let mut bad = good.clone();
        change(&mut bad);
        json!([plan("ok", "fine", Severity::Warning), bad])
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|p| p["incident"]["severity"] = json!("loud")),
            "[1].incident.severity",
        ),
        (with(&|p| p["revision"] = json!(-1)), "[1].revision"),
        (
            with(&|p| {
                p.as_object_mut().unwrap().remove("incident");
            }),
            "[1]",
        ),
        (with(&|p| p["priority"] = json!("P9")), "[1].priority"),
        (with(&|p| p["id"] = json!("not-a-ulid")), "[1].id"),
        (with(&|p| p["service"] = json!("")), "[1].service"),
        (with(&|p| p["service"] = json!("bell\u{7}")), "[1].service"),
        (
            with(&|p| p["incident_id"] = json!(ulid::Ulid::new().to_string())),
            "[1].incident.id",
        ),
        (
            with(&|p| p["steps"][1]["title"] = json!("x".repeat(5000))),
            "[1].steps[1].title",
        ),
        (
            with(&|p| p["steps"] = json!(vec![p["steps"][0].clone(); 101])),
            "[1].steps",
        ),
        (json!({"plans": []}), "request body"),
    ];
    for (body, field) in cases {
        let (status, answer) = post(&app, "/v1/plans", &body).await;
        assert_eq!(status, 400, "{field}: {answer}");
        field_named(&answer, field);
    }
    let (_, list) = get(&app, "/v1/plans").await;
    assert_eq!(
        list["plans"],
        json!([]),
        "nothing of a refused batch is applied"
    );

    let (status, answer) = post_raw(&app, "/v1/plans", "application/json", "[{").await;
    assert_eq!(status, 400, "{answer}");
    let (status, answer) = post_raw(&app, "/v1/plans", "text/plain", "[]").await;
    assert_eq!(status, 415, "{answer}");
    // The server is fine afterwards.
    post_plans(&app, &[plan("api", "api-1 crashed", Severity::Critical)]).await;
}

#[actix_web::test]
async fn bad_queries_name_their_parameter() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    for (path, field) in [
        ("/v1/report?format=pdf", "format"),
        ("/v1/plans?state=maybe", "state"),
        ("/v1/plans?limit=0", "limit"),
        ("/v1/plans?limit=x", "limit"),
        ("/v1/plans?limit=10001", "limit"),
        ("/v1/plans/nope", "id"),
        ("/v1/report?limit=0", "limit"),
        ("/v1/report?limit=1001", "limit"),
        ("/v1/report?format=md&limit=-1", "limit"),
        ("/v1/report?after=zz", "after"),
        ("/v1/report?after=9.61", "after"),
        ("/v1/report?format=md&after=1.6", "after"),
        ("/?limit=x", "limit"),
        ("/?after=1.zz", "after"),
    ] {
        let (status, body) = get(&app, path).await;
        assert_eq!(status, 400, "{path}: {body}");
        field_named(&body, field);
    }
    let (status, body) = get(&app, &format!("/v1/plans/{}", ulid::Ulid::new())).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
}

/// The batch is read by the kit's extractor, which inflates a compressed body at most
/// MAX_BODY_BYTES (actix's own inflated each chunk whole: the hostile suite saw the
/// synthesizer reach 157 MiB on a gzip bomb) and refuses a coding it cannot decode.
#[actix_web::test]
async fn plans_in_a_coding_the_kit_does_not_decode_are_415() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let response = app
        .client
        .post(app.url("/v1/plans"))
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body("[]")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (status, body["error"].as_str()),
        (415, Some("unsupported_media_type")),
        "{body}"
    );
}
