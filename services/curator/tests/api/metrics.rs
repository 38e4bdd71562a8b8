//! The curator's metrics: present from the start, moving with the traffic, and clean for
//! promtool.

use curator::CuratorConfig;
use ulid::Ulid;

use crate::helpers::*;

#[actix_web::test]
async fn curator_metrics_count_what_happens_and_pass_promtool() {
    let app = spawn(CuratorConfig::for_tests()).await;
    let before = metrics(&app).await;
    assert_eq!(
        sample(&before, "curator_incidents_open{severity=\"critical\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&before, "curator_issues_received_total"), Some(0.0));

    let id = Ulid::new();
    let mut warning = issue(Ulid::new(), "db", "crashed", "", 1);
    warning["severity"] = serde_json::json!("warning");
    post_issues(&app, &[issue(id, "api", "crashed", "", 1), warning]).await;
    post_issues(&app, &[issue(id, "api", "crashed", "", 2)]).await;
    post_issues(&app, &[issue(id, "api", "crashed", "", 2)]).await;
    let firing = alert_payload(
        "firing",
        "HighErrorRate",
        "1a30ba71cca2921f",
        "0001-01-01T00:00:00Z",
    );
    post(&app, "/v1/alertmanager", &firing).await;

    let text = metrics(&app).await;
    assert_eq!(sample(&text, "curator_issues_received_total"), Some(4.0));
    assert_eq!(
        sample(&text, "curator_issues_deduplicated_total"),
        Some(2.0)
    );
    assert_eq!(sample(&text, "curator_alerts_received_total"), Some(1.0));
    // api's crash and the alert are critical; db's is a warning.
    assert_eq!(
        sample(&text, "curator_incidents_open{severity=\"critical\"}"),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, "curator_incidents_open{severity=\"warning\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "curator_incident_changes_total{change=\"opened\"}"),
        Some(3.0)
    );
    assert!(
        text.contains("hello_ai_requests_total{code=\"200\",method=\"POST\",route=\"/v1/issues\"}")
    );
    obs_testkit::promtool_check_metrics(&text).expect("promtool is happy");

    post_issues(&app, &[recovered(issue(id, "api", "crashed", "", 2))]).await;
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "curator_incidents_open{severity=\"critical\"}"),
        Some(1.0)
    );
}
