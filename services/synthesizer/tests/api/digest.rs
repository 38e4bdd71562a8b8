//! The periodic digest: the report, archived as a `report` record in a real archivist.

use std::time::Duration;

use obs_model::Severity;
use obs_testkit::eventually;
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

#[actix_web::test]
async fn the_digest_is_archived_as_a_report() {
    let archivist = archivist().await;
    let mut settings = SynthesizerConfig::for_tests();
    settings.digest_interval = Some(Duration::from_millis(300));
    let app = spawn(settings, peers(None, Some(&archivist))).await;
    post_plans(&app, &[plan("api", "api-1 crashed", Severity::Critical)]).await;

    let records = eventually(
        "a report record in the archive",
        Duration::from_secs(20),
        || async {
            let (status, page) =
                get(&archivist, "/v1/records?kind=report&service=synthesizer").await;
            assert_eq!(status, 200, "{page}");
            let records = page["records"].as_array().cloned().unwrap_or_default();
            // The first digest may predate the plan.
            records
                .iter()
                .any(|r| r["body"]["incidents"][0]["title"] == "api-1 crashed")
                .then_some(records)
        },
    )
    .await;
    let report = records
        .iter()
        .find(|r| r["body"]["incidents"][0]["title"] == "api-1 crashed")
        .unwrap();
    assert_eq!(report["kind"], "report");
    assert_eq!(report["body"]["overall"], "major_outage");
    assert_eq!(report["body"]["incidents"][0]["plan"]["priority"], "P1");
    assert!(ulid::Ulid::from_string(report["id"].as_str().unwrap()).is_ok());
    let text = metrics(&app).await;
    assert!(sample(&text, "synthesizer_digests_total").unwrap() >= 1.0);
}
