//! The real synthesizer's report through obsctl, made of a plan the real planner made.

use obs_model::{IncidentState, Plan};
use serde_json::Value;

use crate::roles::{incident, obsctl_at, Role};

#[actix_web::test]
async fn the_report_comes_as_markdown_json_or_html_as_the_synthesizer_wrote_it() {
    let planner = Role::planner().await;
    planner
        .feed(
            "/v1/incidents",
            &[incident(
                "01JC3Z8Q2J6W7V2N5Y4M1K0P9R",
                "api",
                IncidentState::Open,
                1,
            )],
        )
        .await;
    let plans: Vec<Plan> = obsctl_at("planner", planner.url(), &["--json", "plans"])
        .await
        .json();
    let synthesizer = Role::synthesizer().await;
    synthesizer.feed("/v1/plans", &plans).await;
    let url = synthesizer.url();

    let markdown = obsctl_at("synthesizer", url, &["report"]).await;
    let markdown = markdown.ok();
    assert!(markdown.starts_with("# "), "{markdown}");
    assert!(
        markdown.contains("api-1 killed: out of memory"),
        "{markdown}"
    );
    assert!(
        markdown.contains(&format!("Plan: {}", plans[0].summary)),
        "{markdown}"
    );
    assert!(markdown.ends_with('\n'));
    let explicit = obsctl_at("synthesizer", url, &["report", "--format", "md"]).await;
    assert!(explicit.ok().starts_with("# "), "{explicit:#?}");

    let json: Value = obsctl_at("synthesizer", url, &["--json", "report"])
        .await
        .json();
    assert_eq!(
        json["incidents"].as_array().map(Vec::len),
        Some(1),
        "{json}"
    );
    assert_eq!(json["incidents"][0]["service"], "api", "{json}");
    let same: Value = obsctl_at("synthesizer", url, &["report", "--format", "json"])
        .await
        .json();
    assert_eq!(same["incidents"], json["incidents"]);

    let html = obsctl_at("synthesizer", url, &["report", "--format", "html"]).await;
    let html = html.ok();
    assert!(
        html.to_ascii_lowercase().starts_with("<!doctype html>"),
        "{html}"
    );
    assert!(html.contains("api-1 killed: out of memory"), "{html}");
}
