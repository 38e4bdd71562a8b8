//! Plans survive a restart: the same plans, states and revisions, and redeliveries of what
//! was already applied are still recognised as such.

use obs_core::CoreConfig;
use planner::PlannerConfig;
use serde_json::json;

use crate::helpers::*;

#[actix_web::test]
async fn plans_survive_a_restart() {
    let (config, _state) = config_on(Backend::Sqlite);
    plans_survive_a_restart_with(config).await;
}

/// Plans made by one run are there for the next on the same database (`config`).
pub async fn plans_survive_a_restart_with(config: CoreConfig) {
    let app = spawn_with(config.clone(), PlannerConfig::for_tests()).await;
    let open = incident(
        "oom_killed",
        "api",
        "api-1",
        json!({"container": "api-1", "memory_limit_bytes": 268435456}),
    );
    let gone = incident("missing", "billing", "", json!({}));
    post_incidents(&app, &[open.clone(), gone.clone()]).await;
    post_incidents(&app, &[revised(&gone, 2, "resolved", "resolved")]).await;
    let before_open = plan_of(&app, &open).await;
    let before_gone = plan_of(&app, &gone).await;
    app.shutdown().await.expect("a clean stop");

    let app = spawn_with(config, PlannerConfig::for_tests()).await;
    assert_eq!(plan_of(&app, &open).await, before_open);
    assert_eq!(plan_of(&app, &gone).await, before_gone);
    assert_eq!(plans(&app, "state=open").await.len(), 1);
    assert_eq!(plans(&app, "state=closed").await.len(), 1);
    // What was applied before the restart is still known by revision.
    let tally = post_incidents(
        &app,
        &[open.clone(), revised(&gone, 2, "resolved", "resolved")],
    )
    .await;
    assert_eq!(tally["ignored"], 2, "{tally}");
    // And life goes on from there.
    let tally = post_incidents(&app, &[revised(&open, 2, "resolved", "resolved")]).await;
    assert_eq!(tally["closed"], 1, "{tally}");
    let after = plan_of(&app, &open).await;
    assert_eq!(after["id"], before_open["id"]);
    assert_eq!(after["revision"], 2);
}
