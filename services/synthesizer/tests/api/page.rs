//! The status page as a person sees it: a real watcher and archivist feed a real
//! synthesizer, headless Chromium (Debian's `chromium`) renders the page, and the test reads
//! both the DOM as rendered and the screenshot's pixels.
//!
//! `SCREENSHOT_OUT=/abs/path.png` keeps the screenshot (docs/status-page.png is made so).

use std::path::Path;
use std::process::Command;

use chrono::Utc;
use obs_model::{IncidentChange, Severity, StepOutcome, StepStatus};
use serde_json::json;
use synthesizer::SynthesizerConfig;

use crate::helpers::*;

/// Run Chromium headless on `url` with `args`, in a 1280×`height` window; returns stdout.
fn chromium(url: &str, height: u32, args: &[&str]) -> String {
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(obs_testkit::tool("chromium"))
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
        ])
        .arg(format!("--window-size=1280,{height}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(
        output.status.success(),
        "chromium exited {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Width, height and RGB pixels of a PNG.
fn pixels(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buffer = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buffer).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let rgb = buffer[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, rgb)
}

#[actix_web::test]
async fn chromium_renders_the_status_page_with_everything_on_it() {
    let watcher = watcher().await;
    let archivist = archivist().await;
    for service in ["api", "auth", "billing", "web", "worker"] {
        let (status, body) = post(
            &watcher,
            "/heartbeat",
            &json!({"service": service, "phase": "serving"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let response = watcher
        .client
        .post(watcher.url("/ping/worker/fail?detail=queue%20full"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    for (service, event_type, detail) in [
        ("api", "deploy", "release 2026.05.1"),
        ("web", "restart", "web-2 restarted by its supervisor"),
        ("billing", "success", "nightly invoices sent"),
    ] {
        let (status, body) = post(
            &watcher,
            "/events",
            &json!({"service": service, "event_type": event_type, "detail": detail}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    let now = Utc::now();
    let hours = |h: f64| now - chrono::Duration::minutes((h * 60.0) as i64);
    archive(
        &archivist,
        &[
            issue_record(
                ulid::Ulid::new(),
                "api",
                "crashed",
                hours(14.0),
                Some(hours(13.5)),
            ),
            issue_record(
                ulid::Ulid::new(),
                "billing",
                "heartbeat_missed",
                hours(3.0),
                Some(hours(2.6)),
            ),
            issue_record(
                ulid::Ulid::new(),
                "web",
                "restart_loop",
                hours(8.0),
                Some(hours(6.8)),
            ),
            issue_record(ulid::Ulid::new(), "web", "unhealthy", hours(0.6), None),
            issue_record(
                ulid::Ulid::new(),
                "worker",
                "service_failed",
                hours(0.3),
                None,
            ),
        ],
    )
    .await;

    let app = spawn(
        SynthesizerConfig::for_tests(),
        peers(Some(&watcher), Some(&archivist)),
    )
    .await;
    let mut worker = plan_at(
        "worker",
        "worker reported a failure: queue full",
        Severity::Critical,
        hours(0.3),
    );
    worker.steps[0].outcome = Some(StepOutcome {
        status: StepStatus::Failed,
        at: now,
        attempt: 1,
        detail: "the container exited again within 10 s".into(),
    });
    let web = changed(
        &plan_at(
            "web",
            "web-2 fails its health check",
            Severity::Warning,
            hours(0.6),
        ),
        IncidentChange::Acknowledged,
    );
    let billing = changed(
        &plan_at(
            "billing",
            "billing stopped sending heartbeats",
            Severity::Critical,
            hours(3.0),
        ),
        IncidentChange::Resolved,
    );
    post_plans(&app, &[worker, web, billing]).await;

    let url = app.url("/");
    let dom = chromium(&url, 1600, &["--dump-dom"]);
    for expected in [
        "Acme fleet",
        "Major outage",
        "worker reported a failure: queue full",
        "Restart container worker-1",
        "Read the last 200 log lines of worker-1",
        "acknowledged by alice",
        "billing stopped sending heartbeats",
        "release 2026.05.1",
        "% uptime",
    ] {
        assert!(
            dom.contains(expected),
            "{expected:?} is not on the rendered page"
        );
    }
    for service in ["api", "auth", "billing", "web", "worker"] {
        assert!(
            dom.contains(&format!(">{service}<")),
            "{service} is not listed"
        );
    }
    assert!(
        dom.matches("<rect").count() >= 5 * 96,
        "an uptime bar per service"
    );
    assert!(dom.contains(r#"class="down""#) && dom.contains(r#"class="degraded""#));

    let shots = tempfile::tempdir().unwrap();
    let shot = shots.path().join("status.png");
    chromium(&url, 1600, &[&format!("--screenshot={}", shot.display())]);
    let size = std::fs::metadata(&shot).unwrap().len();
    assert!(
        size > 20_000,
        "a screenshot of {size} bytes is next to empty"
    );
    let (width, height, rgb) = pixels(&shot);
    assert_eq!((width, height), (1280, 1600));
    let distinct: std::collections::HashSet<[u8; 3]> = rgb.iter().copied().collect();
    assert!(
        distinct.len() > 50,
        "only {} colours: blank?",
        distinct.len()
    );
    let count = |wanted: fn(&[u8; 3]) -> bool| rgb.iter().filter(|p| wanted(p)).count();
    // The red banner, the green bars, the amber slots are all there.
    assert!(
        count(|[r, g, b]| *r > 180 && *g < 90 && *b < 90) > 10_000,
        "no red banner"
    );
    assert!(
        count(|[r, g, b]| *g > 150 && *r < 100 && *b < 130) > 5_000,
        "no green bars"
    );
    assert!(
        count(|[r, g, b]| *r > 220 && (140..190).contains(g) && *b < 60) > 200,
        "no amber"
    );
    if let Some(out) = std::env::var_os("SCREENSHOT_OUT") {
        // The whole page, for the docs.
        chromium(
            &url,
            2000,
            &[&format!("--screenshot={}", Path::new(&out).display())],
        );
    }
}
