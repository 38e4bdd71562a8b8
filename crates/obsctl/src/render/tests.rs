use chrono::Duration;
use obs_model::ProbeStatus;

use super::*;
use crate::test_fixtures::*;

#[test]
fn status_lists_down_services_first_with_the_reason() {
    let status = watcher_status();
    let text = super::status(
        &StatusView {
            watcher_url: "http://127.0.0.1:8001",
            status: &status,
            recent: None,
        },
        &Painter::plain(None),
        now(),
    );
    assert!(
        text.starts_with(
            "watcher http://127.0.0.1:8001 · app shop · deployment d-42 · docker: watching"
        ),
        "{text}"
    );
    let worker = text.find("worker").unwrap();
    let api = text.find("  ●  api").unwrap();
    assert!(worker < api, "down first:\n{text}");
    assert!(text.contains("SERVICES  1 up · 1 down"), "{text}");
    assert!(
        text.contains(&format!(
            "down   45s ago    edge_loop  missed heartbeats since {}",
            time::clock(now() - Duration::seconds(15), now())
        )),
        "{text}"
    );
    assert!(!text.contains("PROBES"), "no probes, no section:\n{text}");
    assert!(text.contains("137 (OOM)"), "{text}");
    assert!(text.contains("CONTAINERS  1 running of 2"), "{text}");
    assert!(
        text.contains("OPEN ISSUES  1  (obsctl status --verbose"),
        "{text}"
    );
    assert!(!text.contains('\u{1b}'), "no colour when plain");
}

#[test]
fn verbose_status_adds_events_and_issues_with_recommendations() {
    let status = watcher_status();
    let events = vec![event("start", "hog", None), event("die", "hog", Some(137))];
    let issues = vec![issue(Severity::Critical, IssueState::Open)];
    let text = super::status(
        &StatusView {
            watcher_url: "http://127.0.0.1:8001",
            status: &status,
            recent: Some((&events, &issues)),
        },
        &Painter::plain(None),
        now(),
    );
    assert!(text.contains("RECENT EVENTS  last 2"), "{text}");
    assert!(text.contains("✕ die"), "{text}");
    assert!(text.contains("exit 137"), "{text}");
    assert!(text.contains("OPEN ISSUES  1 (1 critical)"), "{text}");
    assert!(
        text.contains(
            "✕ CRITICAL worker heartbeat_missed  no heartbeat from worker for 45s (×3 since"
        ),
        "{text}"
    );
    assert!(
        text.contains("    → check that worker runs and can reach the watcher"),
        "{text}"
    );
}

#[test]
fn events_are_coloured_by_tone_when_colour_is_on() {
    let painter = Painter::new(true, None);
    let start = event_line(
        &event("start", "api", None),
        &painter,
        now(),
        0,
        EVENT_SERVICE_WIDTH,
    );
    let die = event_line(
        &event("die", "api", Some(1)),
        &painter,
        now(),
        0,
        EVENT_SERVICE_WIDTH,
    );
    let stop = event_line(
        &event("stop", "api", None),
        &painter,
        now(),
        0,
        EVENT_SERVICE_WIDTH,
    );
    let restart = event_line(
        &event("restart", "api", None),
        &painter,
        now(),
        0,
        EVENT_SERVICE_WIDTH,
    );
    assert!(start.starts_with("\u{1b}[32m"), "green: {start:?}");
    assert!(die.starts_with("\u{1b}[31m"), "red: {die:?}");
    assert!(stop.starts_with("\u{1b}[33m"), "yellow: {stop:?}");
    assert!(restart.starts_with("\u{1b}[36m"), "cyan: {restart:?}");
}

#[test]
fn lines_fit_the_terminal_width() {
    let mut long = event("die", "api", Some(1));
    long.detail = Some("x".repeat(300));
    let line = event_line(
        &long,
        &Painter::plain(Some(80)),
        now(),
        0,
        EVENT_SERVICE_WIDTH,
    );
    assert_eq!(line.trim_end().chars().count(), 80, "{line}");
    assert!(line.trim_end().ends_with('…'));
    let uncut = event_line(&long, &Painter::plain(None), now(), 0, EVENT_SERVICE_WIDTH);
    assert!(uncut.chars().count() > 300);
}

#[test]
fn issues_wrap_to_the_width_instead_of_losing_the_recommendation() {
    let mut long = issue(Severity::Critical, IssueState::Open);
    long.recommendation = "word ".repeat(40).trim().to_string();
    let text = issue_block(&long, &Painter::plain(Some(60)), now(), 0);
    assert!(
        text.lines().all(|line| line.chars().count() <= 60),
        "{text}"
    );
    assert_eq!(text.matches("word").count(), 40, "nothing lost:\n{text}");
    let arrow = text.lines().position(|line| line.contains('→')).unwrap();
    assert!(
        text.lines()
            .skip(arrow + 1)
            .all(|line| line.starts_with("      word")),
        "continuation lines line up under the recommendation:\n{text}"
    );
}

#[test]
fn empty_lists_say_so() {
    assert_eq!(
        super::events(&[], &Painter::plain(None), now()),
        "no events yet\n"
    );
    assert_eq!(
        super::issues(&[], &Painter::plain(None), now()),
        "no issues\n"
    );
}

#[test]
fn resolved_issues_say_when() {
    let mut resolved = issue(Severity::Warning, IssueState::Resolved);
    resolved.resolved_at = Some(now());
    let text = issue_block(&resolved, &Painter::plain(None), now(), 0);
    assert!(
        text.contains(&format!("(resolved {})", time::clock(now(), now()))),
        "{text}"
    );
    assert!(text.starts_with("▲ WARNING"), "{text}");
}

#[test]
fn probes_show_when_there_are_some() {
    let mut status = watcher_status();
    status.probes = vec![
        ProbeStatus {
            name: "curator".into(),
            url: "http://127.0.0.1:8002/healthz".into(),
            up: Some(true),
            consecutive_failures: 0,
            last_checked: Some(now() - Duration::seconds(2)),
            last_success: Some(now() - Duration::seconds(2)),
            last_duration_seconds: Some(0.012),
            last_error: None,
        },
        ProbeStatus {
            name: "planner".into(),
            url: "http://127.0.0.1:8003/healthz".into(),
            up: Some(false),
            consecutive_failures: 3,
            last_checked: Some(now() - Duration::seconds(1)),
            last_success: None,
            last_duration_seconds: None,
            last_error: Some("connection refused".into()),
        },
    ];
    let text = super::status(
        &StatusView {
            watcher_url: "http://127.0.0.1:8001",
            status: &status,
            recent: None,
        },
        &Painter::plain(None),
        now(),
    );
    assert!(text.contains("PROBES  1 up · 1 failing"), "{text}");
    assert!(
        text.contains("curator  up       2s ago   http://127.0.0.1:8002/healthz  12 ms"),
        "{text}"
    );
    assert!(text.contains("connection refused (3 in a row)"), "{text}");
}
