use std::time::Duration;

use obs_model::{IssueState, Severity};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::*;
use crate::test_fixtures::*;
use crate::tui::Failure;

fn snapshot() -> Snapshot {
    Snapshot {
        status: watcher_status(),
        events: vec![event("start", "web", None), event("die", "hog", Some(137))],
        issues: vec![issue(Severity::Critical, IssueState::Open)],
    }
}

/// The screen as text, one line per row, and the terminal for looking at colours.
fn render(screen: &Screen, width: u16, height: u16) -> (String, Terminal<TestBackend>) {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| draw(frame, screen, now())).unwrap();
    let buffer = terminal.backend().buffer().clone();
    let mut text = String::new();
    for y in 0..height {
        for x in 0..width {
            text.push_str(buffer[(x, y)].symbol());
        }
        text.push('\n');
    }
    (text, terminal)
}

fn live_screen() -> Screen {
    let mut screen = Screen::new("http://127.0.0.1:8001".into(), Duration::from_secs(5));
    screen.apply(Ok(snapshot()), now());
    screen
}

#[test]
fn a_wide_terminal_shows_every_pane() {
    let (text, _) = render(&live_screen(), 160, 48);
    for expected in [
        "obsctl",
        "watcher http://127.0.0.1:8001 · app shop · deployment d-42",
        "1 up, 1 down · 1 open issue (1 critical)",
        "Services 1 up · 1 down",
        "Containers 1 running of 2",
        "Events 2 (newest first)",
        "Open issues 1 · 1 critical",
        "worker",
        "137 (OOM)",
        "✕ die",
        "✓ start",
        "✕ CRITICAL worker heartbeat_missed",
        "→ check that worker runs and can reach the watcher",
        "q/Esc quit",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
    let die = text.find("✕ die").unwrap();
    let start = text.find("✓ start").unwrap();
    assert!(die < start, "newest first:\n{text}");
}

#[test]
fn events_take_the_original_colours() {
    let (text, terminal) = render(&live_screen(), 160, 48);
    let buffer = terminal.backend().buffer();
    let colour_of = |needle: &str| {
        let (row, line) = text
            .lines()
            .enumerate()
            .find(|(_, line)| line.contains(needle))
            .unwrap();
        let column = line[..line.find(needle).unwrap()].chars().count();
        buffer[(column as u16, row as u16)].fg
    };
    assert_eq!(colour_of("✓ start"), Color::Green);
    assert_eq!(colour_of("✕ die"), Color::Red);
}

#[test]
fn a_narrow_terminal_stacks_the_panes() {
    let (text, _) = render(&live_screen(), 80, 48);
    let services = text.find("Services").unwrap();
    let containers = text.find("Containers").unwrap();
    let events = text.find("Events").unwrap();
    let issues = text.find("Open issues 1").unwrap();
    assert!(
        services < containers && containers < events && events < issues,
        "{text}"
    );
}

#[test]
fn an_unreachable_watcher_is_said_and_the_last_data_stays() {
    let mut screen = live_screen();
    screen.apply(
        Err(Failure {
            unreachable: true,
            detail: "connection refused".into(),
        }),
        now(),
    );
    let (text, _) = render(&screen, 160, 48);
    assert!(
        text.contains(
            "✕ watcher unreachable: connection refused · retrying every 5s · last update"
        ),
        "{text}"
    );
    assert!(
        text.contains("Services 1 up · 1 down"),
        "stale data stays:\n{text}"
    );
}

#[test]
fn before_the_first_answer_it_says_so() {
    let mut screen = Screen::new("http://127.0.0.1:8001".into(), Duration::from_secs(1));
    let (text, _) = render(&screen, 120, 20);
    assert!(text.contains("Connecting to the watcher…"), "{text}");
    screen.apply(
        Err(Failure {
            unreachable: false,
            detail: "GET /status (404 not_found)".into(),
        }),
        now(),
    );
    let (text, _) = render(&screen, 120, 20);
    assert!(
        text.contains("✕ watcher error: GET /status (404 not_found) · retrying every 1s"),
        "{text}"
    );
    assert!(text.contains("No data yet"), "{text}");
}

#[test]
fn new_events_are_marked_fresh_after_the_first_refresh() {
    let mut screen = live_screen();
    assert!(
        screen.fresh.is_empty(),
        "nothing is new on the first refresh"
    );
    let mut next = snapshot();
    next.events = screen.snapshot.as_ref().unwrap().events.clone();
    let added = event("restart", "web", None);
    next.events.push(added.clone());
    screen.apply(Ok(next), now());
    assert_eq!(screen.fresh.len(), 1);
    assert!(screen.fresh.contains(&added.id));
}

#[test]
fn probes_sit_beside_the_services_and_no_containers_means_no_pane() {
    let mut snapshot = snapshot();
    snapshot.status.containers.clear();
    snapshot.status.probes = vec![obs_model::ProbeStatus {
        name: "curator".into(),
        url: "http://127.0.0.1:8002/healthz".into(),
        up: Some(false),
        consecutive_failures: 4,
        last_checked: Some(now()),
        last_success: None,
        last_duration_seconds: None,
        last_error: Some("connection refused".into()),
    }];
    let mut screen = Screen::new("http://127.0.0.1:8001".into(), Duration::from_secs(5));
    screen.apply(Ok(snapshot), now());
    let (text, _) = render(&screen, 160, 48);
    let row = text
        .lines()
        .find(|l| l.contains("Services 1 up"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("Probes 0 up · 1 failing"),
        "side by side:\n{text}"
    );
    assert!(text.contains("connection refused (4 in a row)"), "{text}");
    assert!(!text.contains("Containers"), "{text}");
    assert!(text.contains("docker: watching, no containers"), "{text}");
}
