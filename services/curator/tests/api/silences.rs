//! Silences: matching incidents are recorded, marked and not notified; ending a silence
//! unmarks them.

use std::time::Duration;

use curator::CuratorConfig;
use obs_core::config::Peers;
use obs_testkit::eventually;
use reqwest::Method;
use serde_json::json;
use ulid::Ulid;

use crate::helpers::*;

fn in_minutes(minutes: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::minutes(minutes)).to_rfc3339()
}

#[actix_web::test]
async fn silences_mark_matching_incidents_until_deleted() {
    let planner = Receiver::start().await;
    let app = spawn_wired(
        CuratorConfig::for_tests(),
        Peers {
            planner: Some(planner.url.clone()),
            ..Peers::default()
        },
    )
    .await;
    let (status, silence) = post(
        &app,
        "/v1/silences",
        &json!({
            "matchers": [{"name": "service", "value": "api|web", "isRegex": true},
                         {"name": "kind", "value": "probe_failed", "isEqual": false}],
            "ends_at": in_minutes(60),
            "comment": "deploying api",
            "created_by": "alice"
        }),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["state"], "active");
    let silence_id = silence["id"].as_str().unwrap().to_string();
    let (_, list) = get(&app, "/v1/silences").await;
    assert_eq!(list["silences"][0]["id"], silence_id);
    assert_eq!(list["silences"][0]["matchers"][0]["isRegex"], true);

    post_issues(
        &app,
        &[
            issue(Ulid::new(), "api", "crashed", "api-1", 1),
            issue(Ulid::new(), "api", "probe_failed", "api-probe", 1),
            issue(Ulid::new(), "db", "crashed", "db-1", 1),
        ],
    )
    .await;
    let silenced = incidents(&app, "service=api")
        .await
        .into_iter()
        .find(|incident| incident["kind"] == "crashed")
        .unwrap();
    assert_eq!(silenced["silenced"], silence_id);
    assert_eq!(silenced["notify"], false);
    for other in incidents(&app, "")
        .await
        .iter()
        .filter(|i| i["id"] != silenced["id"])
    {
        assert!(other.get("silenced").is_none(), "{other}");
        assert_eq!(other["notify"], true);
    }
    let metrics = metrics(&app).await;
    assert_eq!(
        sample(
            &metrics,
            "curator_notifications_suppressed_total{reason=\"silenced\"}"
        ),
        Some(1.0)
    );
    assert_eq!(sample(&metrics, "curator_silences"), Some(1.0));

    // Still recorded, still forwarded, but not as something to notify.
    let forwarded = planner.wait_for("/v1/incidents", 3).await;
    let quiet = forwarded
        .iter()
        .find(|i| i["id"] == silenced["id"])
        .unwrap();
    assert_eq!(quiet["notify"], false);

    let (status, removed) = send(
        &app,
        Method::DELETE,
        &format!("/v1/silences/{silence_id}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{removed}");
    assert_eq!(removed["id"], silence_id);
    let incident = incidents(&app, "service=api")
        .await
        .into_iter()
        .find(|incident| incident["kind"] == "crashed")
        .unwrap();
    assert!(incident.get("silenced").is_none());
    assert_eq!(incident["change"], "unsilenced");
    assert_eq!(incident["notify"], true, "people never heard of it");
    let (_, list) = get(&app, "/v1/silences").await;
    assert_eq!(list["silences"], json!([]));
    let forwarded = planner.wait_for("/v1/incidents", 4).await;
    assert_eq!(forwarded[3]["change"], "unsilenced");
}

#[actix_web::test]
async fn silences_end_on_their_own() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let ends_at = (chrono::Utc::now() + chrono::Duration::milliseconds(800)).to_rfc3339();
    let (status, silence) = post(
        &app,
        "/v1/silences",
        &json!({"matchers": [{"name": "service", "value": "api"}], "ends_at": ends_at, "comment": "short"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    post_issues(&app, &[issue(Ulid::new(), "api", "crashed", "", 1)]).await;
    assert_eq!(incident_of(&app, "api").await["silenced"], silence["id"]);
    eventually("the silence to end", Duration::from_secs(10), || async {
        let incident = incident_of(&app, "api").await;
        incident.get("silenced").is_none().then_some(())
    })
    .await;
    assert_eq!(incident_of(&app, "api").await["change"], "unsilenced");
    let (_, list) = get(&app, "/v1/silences").await;
    assert_eq!(list["silences"], json!([]));
}

#[actix_web::test]
async fn a_pending_silence_starts_later() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let starts_at = (chrono::Utc::now() + chrono::Duration::milliseconds(600)).to_rfc3339();
    let (status, silence) = post(
        &app,
        "/v1/silences",
        &json!({"matchers": [{"name": "service", "value": "api"}], "starts_at": starts_at,
                "ends_at": in_minutes(10), "comment": "window"}),
    )
    .await;
    assert_eq!(status, 201, "{silence}");
    assert_eq!(silence["state"], "pending");
    post_issues(&app, &[issue(Ulid::new(), "api", "crashed", "", 1)]).await;
    assert!(incident_of(&app, "api").await.get("silenced").is_none());
    eventually("the silence to start", Duration::from_secs(10), || async {
        let incident = incident_of(&app, "api").await;
        (incident["silenced"] == silence["id"]).then_some(())
    })
    .await;
    let (_, list) = get(&app, "/v1/silences").await;
    assert_eq!(list["silences"][0]["state"], "active");
}

fn regex_matchers(value: &str, count: usize) -> Vec<serde_json::Value> {
    (0..count)
        .map(|_| json!({"name": "service", "isRegex": true, "value": value}))
        .collect()
}

/// Resident memory of this process (the curator runs in it), in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Issue 18: 20 silences of 32 matchers of `\w{20}` took the curator from 15.6 MB to 760 MB.
/// Now each is a 400 naming the limit, and 20 silences using their whole regex budget cost
/// about 20 MiB.
#[actix_web::test]
async fn hostile_silences_are_refused_and_cannot_grow_the_curator() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let before = rss_bytes();
    let hostile = json!({
        "matchers": regex_matchers("\\w{20}", 32),
        "ends_at": in_minutes(60),
        "comment": "hostile"
    });
    for _ in 0..20 {
        let (status, body) = post(&app, "/v1/silences", &hostile).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"], "invalid_field");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("matchers[0].value"), "{message}");
        assert!(message.contains("MAX_REGEX_BYTES"), "{message}");
    }
    // The most a silence may hold: \w{5} is about 275 KiB compiled, three fit the budget.
    let at_budget = json!({
        "matchers": regex_matchers("\\w{5}", 3),
        "ends_at": in_minutes(60),
        "comment": "at the budget"
    });
    for _ in 0..20 {
        let (status, body) = post(&app, "/v1/silences", &at_budget).await;
        assert_eq!(status, 201, "{body}");
    }
    let over_budget = json!({
        "matchers": regex_matchers("\\w{5}", 4),
        "ends_at": in_minutes(60),
        "comment": "over the budget"
    });
    let (status, body) = post(&app, "/v1/silences", &over_budget).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("MAX_SILENCE_REGEX_BYTES"),
        "{body}"
    );
    // Incidents are matched against all of them (the matchers' caches are bounded too).
    post_issues(&app, &[issue(Ulid::new(), "abcde", "crashed", "web", 1)]).await;
    let grown = rss_bytes().saturating_sub(before);
    eprintln!(
        "20 refused and 20 budget-sized silences: the process grew by {} KiB",
        grown >> 10
    );
    // 20 MiB of regex plus allocator slack; before the limits this was 745 MB.
    assert!(grown < 96 << 20, "the curator grew by {} MiB", grown >> 20);
}
