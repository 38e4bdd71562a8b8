//! Plan files written by earlier versions (`STATE_DIR/plans/<id>.json`) are imported into
//! the database once, with the cooldowns their outcomes imply, and the folder is renamed
//! aside; a file that cannot be parsed stops the planner with one line naming it, and
//! nothing of the folder is imported.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use chrono::Utc;
use obs_core::config::Peers;
use obs_model::{Incident, StepOutcome, StepStatus};
use obs_testkit::{binary, eventually, test_config, ChildGuard, TestApp};
use planner::config::RemediationSettings;
use planner::plans::{apply, next_safe_step, record_outcome, Tracked};
use planner::rules::Rules;
use planner::PlannerConfig;
use serde_json::{json, Value};
use ulid::Ulid;

use crate::helpers::*;

/// A plan as an earlier version saved it, for `incident` (wire JSON), with `attempts`.
fn saved_plan(incident: &Value, restarted_ago: Option<chrono::Duration>) -> Tracked {
    let rules = Rules::builtin().expect("the built-in rules load");
    let incident: Incident = serde_json::from_value(incident.clone()).expect("an incident");
    let now = Utc::now();
    let (mut plan, _) = apply(&rules, None, &incident, now).expect("a new plan");
    let mut attempts = 0;
    if let Some(ago) = restarted_ago {
        let (index, target) = next_safe_step(&plan).expect("a safe step");
        let outcome = StepOutcome {
            status: StepStatus::Succeeded,
            at: now - ago,
            attempt: 1,
            detail: format!("the watcher restarted {}", target.describe()),
        };
        assert!(record_outcome(
            &mut plan,
            index,
            &target.text(),
            outcome,
            now
        ));
        attempts = 1;
    }
    Tracked { plan, attempts }
}

fn write_plan(folder: &Path, tracked: &Tracked) {
    std::fs::create_dir_all(folder).unwrap();
    let path = folder.join(format!("{}.json", tracked.plan.id));
    std::fs::write(path, serde_json::to_vec(tracked).unwrap()).unwrap();
}

#[actix_web::test]
async fn plan_files_of_an_earlier_version_are_imported_once_then_set_aside() {
    let watcher = Receiver::start().await;
    let (mut config, state) = test_config("planner");
    config.peers = Peers {
        watcher: Some(watcher.url.clone()),
        ..Peers::default()
    };
    let folder = state.path().join("plans");
    let sick = incident(
        "unhealthy",
        "web",
        "web-1",
        json!({"container": "web-1", "failing_streak": 3}),
    );
    let restarted = saved_plan(&sick, Some(chrono::Duration::minutes(1)));
    let gone = revised(
        &incident("missing", "billing", "", json!({})),
        2,
        "resolved",
        "resolved",
    );
    let closed = saved_plan(&gone, None);
    write_plan(&folder, &restarted);
    write_plan(&folder, &closed);
    // What the old writer left beside its plans is not a plan.
    std::fs::write(folder.join(format!("{}.tmp", Ulid::new())), "{\"torn").unwrap();
    std::fs::write(folder.join("x.json.unreadable"), "edited by hand").unwrap();

    let settings = PlannerConfig {
        remediation: RemediationSettings {
            enabled: true,
            cooldown: Duration::from_secs(300),
            max_attempts: 3,
        },
        ..PlannerConfig::for_tests()
    };
    let app = spawn_with(config.clone(), settings.clone()).await;
    assert_eq!(
        plan_of(&app, &sick).await,
        serde_json::to_value(&restarted.plan).unwrap()
    );
    assert_eq!(
        plan_of(&app, &gone).await,
        serde_json::to_value(&closed.plan).unwrap()
    );
    assert_eq!(plans(&app, "state=closed").await.len(), 1);
    assert!(!folder.exists(), "the folder is set aside");
    let aside = state.path().join("plans.imported");
    assert_eq!(
        std::fs::read_dir(&aside).unwrap().count(),
        4,
        "kept as it was"
    );

    // The cooldown came along with the outcome: another incident about web-1 waits.
    let crashed = incident(
        "crashed",
        "web",
        "web-1",
        json!({"container": "web-1", "exit_code": 1, "restart_policy": "no"}),
    );
    post_incidents(&app, std::slice::from_ref(&crashed)).await;
    let outcome = eventually(
        "the crash's restart step",
        Duration::from_secs(20),
        || async {
            let plan = plan_of(&app, &crashed).await;
            plan["steps"]
                .as_array()?
                .iter()
                .find(|step| step["action"] == "restart_container")?
                .get("outcome")
                .cloned()
        },
    )
    .await;
    assert_eq!(outcome["status"], "skipped", "{outcome}");
    assert!(
        outcome["detail"].as_str().unwrap().contains("cooldown"),
        "{outcome}"
    );
    assert!(watcher.bodies("/containers/web-1/restart").is_empty());
    app.shutdown().await.expect("a clean stop");

    // Imported once: the next start finds the plans in the database, and no folder.
    let app = spawn_with(config, settings).await;
    assert_eq!(plans(&app, "").await.len(), 3);
    assert_eq!(
        plan_of(&app, &sick).await["revision"],
        restarted.plan.revision
    );
    assert!(!folder.exists());
}

fn bad_folder(state: &Path) -> (std::path::PathBuf, Value) {
    let folder = state.join("plans");
    let good = incident("missing", "billing", "", json!({}));
    write_plan(&folder, &saved_plan(&good, None));
    let bad = folder.join(format!("{}.json", Ulid::new()));
    std::fs::write(&bad, "{\"plan\": {\"id\": ").unwrap();
    (bad, good)
}

#[actix_web::test]
async fn an_unparsable_plan_file_stops_the_planner_naming_it() {
    let (config, state) = test_config("planner");
    let (bad, good) = bad_folder(state.path());
    let started = TestApp::spawn(config.clone(), async |service: &obs_core::Service| {
        planner::Planner::with_config(service, PlannerConfig::for_tests()).await
    })
    .await;
    let error = match started {
        Ok(_) => panic!("the planner started over a plan file it could not read"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains(&bad.display().to_string()), "{error}");
    // Nothing of the folder was imported, and it is still there to be fixed.
    assert!(bad.exists());
    assert!(!state.path().join("plans.imported").exists());
    let db = open_db(&config).await;
    let rows = db
        .read(|tx| {
            tx.query_opt("SELECT COUNT(*) FROM planner_plans", &[])?
                .unwrap()
                .int(0)
        })
        .await
        .unwrap();
    assert_eq!(rows, 0, "no half import");

    // The binary says so in one line, and exits 2 (unusable state).
    let mut command = Command::new(binary("planner"));
    command
        .env_clear()
        .env("HOST", "127.0.0.1")
        .env("PORT", obs_testkit::free_port().to_string())
        .env("STATE_DIR", state.path())
        .env("LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = ChildGuard(Some(command.spawn().expect("the planner binary starts")));
    let output = child
        .wait_with_output(Duration::from_secs(20))
        .expect("it exits");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.starts_with('{'))
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains(&bad.display().to_string()),
        "names the file: {stderr}"
    );

    // Once the file is fixed (here: removed), the rest is imported.
    std::fs::remove_file(&bad).unwrap();
    let app = spawn_with(config, PlannerConfig::for_tests()).await;
    assert_eq!(plan_of(&app, &good).await["state"], "open");
}
