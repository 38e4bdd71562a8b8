//! Incidents from the real curator, listed, shown, acknowledged and resolved through obsctl.

use obs_model::{Incident, IncidentState, IssueKind, Severity};

use crate::roles::{issue, obsctl_at, obsctl_at_env, Role};

const OOM: &str = "01JC3Z8Q2J6W7V2N5Y4M1K0P9R";
const UNHEALTHY: &str = "01JD5T0000000000000000000A";
const PROBE: &str = "01JD5T0000000000000000000B";

async fn curator_with_three_incidents() -> Role {
    let curator = Role::curator().await;
    curator
        .feed(
            "/v1/issues",
            &[
                issue(UNHEALTHY, "web", IssueKind::Unhealthy, Severity::Warning),
                issue(OOM, "api", IssueKind::OomKilled, Severity::Critical),
                issue(PROBE, "web", IssueKind::ProbeFailed, Severity::Info),
            ],
        )
        .await;
    curator
}

#[actix_web::test]
async fn incidents_are_listed_worst_first_with_ids_ack_takes() {
    let curator = curator_with_three_incidents().await;
    let url = curator.url();

    let text = obsctl_at("curator", url, &["incidents"]).await;
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("ID  "), "{lines:#?}");
    assert!(
        lines[1].starts_with(&format!("{OOM}  ✕ critical  open")),
        "critical first: {lines:#?}"
    );
    assert!(
        lines[1].contains(" api ") && lines[1].contains(" 2 "),
        "{lines:#?}"
    );
    assert!(
        lines[2].starts_with(&format!("{UNHEALTHY}  ▲ warning")),
        "{lines:#?}"
    );
    assert!(
        lines[3].starts_with(&format!("{PROBE}  ● info")),
        "{lines:#?}"
    );
    assert!(!text.stdout.contains('\u{1b}'), "no colour into a pipe");

    let listed: Vec<Incident> = obsctl_at("curator", url, &["--json", "incidents"])
        .await
        .json();
    let ids: Vec<String> = listed.iter().map(|i| i.id.to_string()).collect();
    assert_eq!(ids, [OOM, UNHEALTHY, PROBE]);

    let web: Vec<Incident> =
        obsctl_at("curator", url, &["incidents", "--service", "web", "--json"])
            .await
            .json();
    assert_eq!(web.len(), 2);
    let warnings: Vec<Incident> = obsctl_at(
        "curator",
        url,
        &["incidents", "--severity", "warning", "--json"],
    )
    .await
    .json();
    assert_eq!(warnings.len(), 1);
    assert_eq!(warnings[0].id.to_string(), UNHEALTHY);

    let full = obsctl_at("curator", url, &["incident", OOM]).await;
    let full = full.ok();
    assert!(full.starts_with("✕ CRITICAL  "), "{full}");
    assert!(full.contains(&format!("  id            {OOM}\n")), "{full}");
    assert!(full.contains("  state         open\n"), "{full}");
    assert!(full.contains("  → look at api-1\n"), "{full}");
    assert!(full.contains("    exit_code  137\n"), "{full}");
    let shown: Incident = obsctl_at("curator", url, &["incident", OOM, "--json"])
        .await
        .json();
    assert_eq!(shown.kind, IssueKind::OomKilled);
}

#[actix_web::test]
async fn ack_and_resolve_change_the_incident_by_full_id_or_unique_prefix() {
    let curator = curator_with_three_incidents().await;
    let url = curator.url();

    let acked = obsctl_at(
        "curator",
        url,
        &["ack", OOM, "--by", "alice", "--comment", "on it"],
    )
    .await;
    assert!(
        acked
            .ok()
            .starts_with(&format!("acknowledged {OOM} (api) ")),
        "{acked:#?}"
    );
    let shown: Incident = obsctl_at("curator", url, &["--json", "incident", OOM])
        .await
        .json();
    assert_eq!(shown.state, IncidentState::Acknowledged);
    assert_eq!(shown.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(shown.comment.as_deref(), Some("on it"));

    let open = obsctl_at("curator", url, &["incidents", "--state", "open"]).await;
    assert!(!open.ok().contains(OOM), "{open:#?}");
    let acknowledged = obsctl_at("curator", url, &["incidents", "--state", "acknowledged"]).await;
    assert_eq!(acknowledged.ok().lines().count(), 2, "{acknowledged:#?}");

    // `01JC` is the OOM incident's alone; lower case is fine. --by defaults to $USER.
    let resolved: Incident = obsctl_at_env(
        "curator",
        url,
        &["--json", "resolve", "01jc", "-c", "raised the limit"],
        &[("USER", "bob")],
    )
    .await
    .json();
    assert_eq!(resolved.id.to_string(), OOM);
    assert_eq!(resolved.state, IncidentState::Resolved);
    assert_eq!(resolved.resolved_by.as_deref(), Some("bob"));

    let active = obsctl_at("curator", url, &["incidents"]).await;
    assert!(
        !active.ok().contains(OOM),
        "resolved is not active: {active:#?}"
    );
    let resolved = obsctl_at("curator", url, &["incidents", "--state", "resolved"]).await;
    assert!(
        resolved
            .ok()
            .contains(&format!("{OOM}  ✕ critical  resolved")),
        "{resolved:#?}"
    );
    let all: Vec<Incident> = obsctl_at("curator", url, &["--json", "incidents", "--state", "all"])
        .await
        .json();
    assert_eq!(all.len(), 3);
    assert_eq!(all[2].id.to_string(), OOM, "resolved ones last");

    // The curator's own refusals, in one line each.
    let again = obsctl_at("curator", url, &["ack", OOM]).await;
    assert_eq!(
        again.failure(1),
        format!(
            "obsctl: curator refused POST /v1/incidents/{OOM}/ack (409 conflict): incident {OOM} \
             is resolved; there is nothing to acknowledge"
        )
    );
    let unknown = "01JZZZZZZZZZZZZZZZZZZZZZZZ";
    let run = obsctl_at("curator", url, &["ack", unknown]).await;
    assert_eq!(
        run.failure(1),
        format!(
            "obsctl: curator refused POST /v1/incidents/{unknown}/ack (404 not_found): no \
             incident {unknown}"
        )
    );
    let run = obsctl_at("curator", url, &["incident", unknown]).await;
    assert!(
        run.failure(1).contains("(404 not_found): no incident"),
        "{run:#?}"
    );
    let run = obsctl_at("curator", url, &["resolve", "not-an-id"]).await;
    assert!(
        run.failure(1)
            .contains("(400 invalid_field): id: 'not-an-id' is not an id"),
        "{run:#?}"
    );
    let run = obsctl_at("curator", url, &["ack", "01JD5T"]).await;
    assert!(
        run.failure(1)
            .starts_with("obsctl: 01JD5T is ambiguous: 2 incidents start with it ("),
        "{run:#?}"
    );
    let run = obsctl_at("curator", url, &["ack", "7ZZ"]).await;
    assert_eq!(run.failure(1), "obsctl: no incident id starts with 7ZZ");
    let long = "x".repeat(5000);
    let run = obsctl_at("curator", url, &["ack", UNHEALTHY, "--comment", &long]).await;
    assert!(
        run.failure(1).contains("(400 invalid_field): comment:"),
        "{run:#?}"
    );
    let untouched: Incident = obsctl_at("curator", url, &["--json", "incident", UNHEALTHY])
        .await
        .json();
    assert_eq!(untouched.state, IncidentState::Open, "nothing applied");
}

#[actix_web::test]
async fn a_token_guarded_curator_asks_for_the_token_to_change_things() {
    let curator = Role::curator_with_token(Some("s3cret")).await;
    let url = curator.url();
    let response = curator
        .app
        .client
        .post(curator.app.url("/v1/issues"))
        .bearer_auth("s3cret")
        .json(&[issue(OOM, "api", IssueKind::OomKilled, Severity::Critical)])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{response:?}");

    let run = obsctl_at("curator", url, &["ack", OOM]).await;
    assert_eq!(
        run.failure(1),
        format!(
            "obsctl: curator refused POST /v1/incidents/{OOM}/ack (401 unauthorized): missing or \
             wrong bearer token (pass --token or set OBS_API_TOKEN)"
        )
    );
    obsctl_at("curator", url, &["ack", OOM, "--token", "s3cret"])
        .await
        .ok();
    let acked: Incident = obsctl_at("curator", url, &["--json", "incident", OOM])
        .await
        .json();
    assert_eq!(acked.state, IncidentState::Acknowledged);
    assert_eq!(
        acked.acknowledged_by.as_deref(),
        Some(login_name().as_str()),
        "no --by, no $USER: who runs obsctl, not \"api\""
    );
}

/// The name `id -un` gives the user the tests run as.
fn login_name() -> String {
    let id = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    let name = String::from_utf8(id.stdout).unwrap().trim().to_string();
    assert!(!name.is_empty());
    name
}

#[actix_web::test]
async fn an_empty_curator_says_so() {
    let curator = Role::curator().await;
    let url = curator.url();
    assert_eq!(
        obsctl_at("curator", url, &["incidents"]).await.ok(),
        "no active incidents\n"
    );
    assert_eq!(
        obsctl_at("curator", url, &["incidents", "--state", "all"])
            .await
            .ok(),
        "no incidents\n"
    );
    assert_eq!(
        obsctl_at("curator", url, &["silence", "list"]).await.ok(),
        "no silences\n"
    );
    let empty: Vec<Incident> = obsctl_at("curator", url, &["--json", "incidents"])
        .await
        .json();
    assert!(empty.is_empty());
}
