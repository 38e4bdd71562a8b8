//! Plans in and out: the newest revision wins, redeliveries change nothing, a restart keeps
//! everything.

use obs_core::config::Peers;
use obs_model::{IncidentChange, Severity};
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

#[actix_web::test]
async fn plans_go_in_and_come_out() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let api = plan("api", "api-1 crashed", Severity::Critical);
    let web = plan("web", "web answers slowly", Severity::Warning);
    let tally = post_plans(&app, &[api.clone(), web.clone()]).await;
    assert_eq!(tally["received"], 2);
    assert_eq!(tally["stored"], 2);
    assert_eq!(tally["stale"], 0);

    let (status, list) = get(&app, "/v1/plans").await;
    assert_eq!(status, 200);
    assert_eq!(list["plans"].as_array().unwrap().len(), 2);
    let (status, one) = get(&app, &format!("/v1/plans/{}", api.id)).await;
    assert_eq!(status, 200);
    let back: obs_model::Plan = serde_json::from_value(one).unwrap();
    assert_eq!(back, api, "a plan comes back exactly as sent");

    let closed = changed(&web, IncidentChange::Resolved);
    post_plans(&app, &[closed]).await;
    let (_, open) = get(&app, "/v1/plans?state=open").await;
    let open: Vec<&str> = open["plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["service"].as_str().unwrap())
        .collect();
    assert_eq!(open, ["api"]);
    let (_, closed) = get(&app, "/v1/plans?state=closed&limit=5").await;
    assert_eq!(closed["plans"][0]["service"], "web");
}

#[actix_web::test]
async fn the_highest_revision_wins_whatever_order_copies_arrive_in() {
    let app = spawn(SynthesizerConfig::for_tests(), Peers::default()).await;
    let opened = plan("api", "api-1 crashed", Severity::Warning);
    let acknowledged = changed(&opened, IncidentChange::Acknowledged);
    let escalated = changed(&acknowledged, IncidentChange::Escalated);

    let tally = post_plans(&app, std::slice::from_ref(&escalated)).await;
    assert_eq!(tally["stored"], 1);
    // Late and repeated copies: counted as stale, nothing changes.
    let tally = post_plans(&app, &[opened.clone(), acknowledged, escalated.clone()]).await;
    assert_eq!(tally["stored"], 0);
    assert_eq!(tally["stale"], 3);
    let (_, held) = get(&app, &format!("/v1/plans/{}", opened.id)).await;
    assert_eq!(held["revision"], escalated.revision);
    assert_eq!(held["incident"]["severity"], "critical");

    let text = metrics(&app).await;
    assert_eq!(sample(&text, "synthesizer_plans_received_total"), Some(4.0));
    assert_eq!(sample(&text, "synthesizer_plans_stale_total"), Some(3.0));
    assert_eq!(
        sample(&text, r#"synthesizer_incidents_open{severity="critical"}"#),
        Some(1.0)
    );
    obs_testkit::promtool_check_metrics(&text).unwrap();
}

#[actix_web::test]
async fn a_restart_keeps_the_plans() {
    let state = tempfile::tempdir().unwrap();
    let api = plan("api", "api-1 crashed", Severity::Critical);
    let app = spawn_in(
        state.path(),
        SynthesizerConfig::for_tests(),
        Peers::default(),
    )
    .await;
    post_plans(&app, std::slice::from_ref(&api)).await;
    app.shutdown().await.unwrap();

    let app = spawn_in(
        state.path(),
        SynthesizerConfig::for_tests(),
        Peers::default(),
    )
    .await;
    let (status, held) = get(&app, &format!("/v1/plans/{}", api.id)).await;
    assert_eq!(status, 200, "{held}");
    assert_eq!(held["incident"]["title"], "api-1 crashed");
    // And its revision still rules.
    let tally = post_plans(&app, std::slice::from_ref(&api)).await;
    assert_eq!(tally["stale"], 1);
    let (_, report) = get(&app, "/v1/report").await;
    assert_eq!(report["incidents"][0]["title"], "api-1 crashed");
    assert_eq!(report["incidents"][0]["plan"]["priority"], "P1");
}
