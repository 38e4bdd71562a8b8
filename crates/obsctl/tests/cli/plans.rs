//! Plans from the real planner through obsctl: incidents go in as the curator forwards them.

use obs_model::{IncidentState, Plan, PlanState};

use crate::roles::{incident, obsctl_at, Role};

const API: &str = "01JC3Z8Q2J6W7V2N5Y4M1K0P9R";
const WORKER: &str = "01JD5T0000000000000000000A";

#[actix_web::test]
async fn plans_are_listed_and_shown_with_numbered_steps_and_reasons() {
    let planner = Role::planner().await;
    let url = planner.url();
    assert_eq!(
        obsctl_at("planner", url, &["plans"]).await.ok(),
        "no open plans\n"
    );
    planner
        .feed(
            "/v1/incidents",
            &[
                incident(API, "api", IncidentState::Open, 1),
                incident(WORKER, "worker", IncidentState::Acknowledged, 1),
            ],
        )
        .await;

    let plans: Vec<Plan> = obsctl_at("planner", url, &["--json", "plans"]).await.json();
    assert_eq!(plans.len(), 2, "{plans:#?}");
    let api = plans.iter().find(|p| p.service == "api").unwrap();
    assert!(!api.steps.is_empty());

    let text = obsctl_at("planner", url, &["plans"]).await;
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        lines[0].starts_with("ID") && lines[0].ends_with("SUMMARY"),
        "{lines:#?}"
    );
    let row = lines.iter().find(|l| l.contains(" api ")).unwrap();
    assert!(
        row.starts_with(&format!("{}  {}", api.id, api.priority.as_str())),
        "{row}"
    );
    assert!(row.contains("  open  "), "{row}");
    assert!(row.ends_with(&api.summary), "{row}");

    // In full: by the plan's id, by its incident's id, or a prefix of either.
    for typed in [api.id.to_string(), API.to_string(), "01jc".to_string()] {
        let full = obsctl_at("planner", url, &["plan", &typed]).await;
        let full = full.ok();
        assert!(
            full.starts_with(&format!("{} api  {}", api.priority.as_str(), api.summary)),
            "{typed}: {full}"
        );
        assert!(
            full.contains(&format!("incident {API} (oom_killed, critical, open)")),
            "{full}"
        );
        for (number, step) in api.steps.iter().enumerate() {
            let title = step
                .title
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            assert!(
                full.contains(&format!("{:>2}. {title}", number + 1)),
                "step {} in order: {full}",
                number + 1
            );
        }
        assert_eq!(
            full.matches("\n      why ").count(),
            api.steps.len(),
            "{full}"
        );
    }
    let shown: Plan = obsctl_at("planner", url, &["--json", "plan", API])
        .await
        .json();
    assert_eq!(shown.id, api.id);

    let verbose = obsctl_at("planner", url, &["plans", "-v", "--service", "worker"]).await;
    let verbose = verbose.ok();
    assert!(verbose.contains(" worker  "), "{verbose}");
    assert!(!verbose.contains(" api  "), "{verbose}");
    assert!(verbose.contains("   1. "), "{verbose}");

    // Resolving the incident closes its plan.
    planner
        .feed(
            "/v1/incidents",
            &[incident(API, "api", IncidentState::Resolved, 2)],
        )
        .await;
    let open: Vec<Plan> = obsctl_at("planner", url, &["--json", "plans"]).await.json();
    assert_eq!(open.len(), 1);
    let closed = obsctl_at("planner", url, &["plans", "--state", "closed"]).await;
    let closed_rows: Vec<&str> = closed.ok().lines().skip(1).collect();
    assert_eq!(closed_rows.len(), 1, "{closed:#?}");
    assert!(
        closed_rows[0].starts_with(&api.id.to_string())
            && closed_rows[0].split_whitespace().nth(2) == Some("closed"),
        "{closed:#?}"
    );
    let all: Vec<Plan> = obsctl_at("planner", url, &["--json", "plans", "--state", "all"])
        .await
        .json();
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].state, PlanState::Closed, "closed ones last");

    let unknown = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    let run = obsctl_at("planner", url, &["plan", unknown]).await;
    let line = run.failure(1);
    assert!(
        line.starts_with(&format!(
            "obsctl: planner refused GET /v1/plans/{unknown} (404 not_found): "
        )),
        "{line}"
    );
    let run = obsctl_at("planner", url, &["plan", "01JD5T1"]).await;
    assert!(
        run.failure(1).contains("no plan id starts with"),
        "{run:#?}"
    );
}
