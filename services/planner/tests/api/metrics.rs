//! The planner's metrics: plans by state and priority, incidents received and ignored, and
//! what passes `promtool check metrics`.

use planner::PlannerConfig;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn plans_are_counted_by_state_and_priority() {
    let app = spawn(PlannerConfig::for_tests()).await;
    let oom = incident("oom_killed", "api", "api-1", json!({}));
    let mut warning = incident("unhealthy", "web", "web-1", json!({}));
    warning["severity"] = json!("warning");
    post_incidents(&app, &[oom.clone(), warning]).await;
    post_incidents(
        &app,
        &[revised(&oom, 2, "resolved", "resolved"), oom.clone()],
    )
    .await;
    let text = metrics(&app).await;
    assert_eq!(
        sample(&text, "planner_plans{priority=\"P1\",state=\"closed\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "planner_plans{priority=\"P3\",state=\"open\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(&text, "planner_plans{priority=\"P1\",state=\"open\"}"),
        Some(0.0)
    );
    assert_eq!(sample(&text, "planner_incidents_received_total"), Some(4.0));
    assert_eq!(sample(&text, "planner_incidents_ignored_total"), Some(1.0));
    assert_eq!(
        sample(&text, "planner_remediations_total{outcome=\"succeeded\"}"),
        Some(0.0)
    );
    obs_testkit::promtool_check_metrics(&text).expect("promtool is content");
}
