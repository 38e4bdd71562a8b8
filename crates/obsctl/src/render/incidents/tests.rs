use chrono::Duration;
use obs_model::{IncidentState, Severity};

use super::*;
use crate::test_fixtures::{incident as sample, now, silence};

#[test]
fn incidents_are_a_table_with_whole_ids_and_no_marks_column_when_nothing_is_marked() {
    let list = vec![
        sample(Severity::Critical, IncidentState::Open),
        sample(Severity::Warning, IncidentState::Acknowledged),
    ];
    let text = incidents(&list, &Painter::plain(None), now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "ID                          SEVERITY    STATE         SERVICE  COUNT  AGE      LAST SEEN  TITLE"
    );
    assert_eq!(
        lines[1],
        "01JC3Z8Q2J6W7V2N5Y4M1K0P9R  ✕ critical  open          api      3      30m ago  20s ago    api-1 killed: out of memory"
    );
    assert!(lines[2].contains("▲ warning   acknowledged"), "{text}");
    assert!(!text.contains("MARKS"), "{text}");
}

#[test]
fn flapping_and_silenced_incidents_are_marked() {
    let mut flapping = sample(Severity::Critical, IncidentState::Open);
    flapping.flapping = true;
    flapping.silenced = Some(ulid::Ulid::new());
    let quiet = sample(Severity::Info, IncidentState::Resolved);
    let text = incidents(&[flapping, quiet], &Painter::plain(None), now());
    assert!(text.lines().next().unwrap().contains("MARKS"), "{text}");
    assert!(text.contains("flapping,silenced  api-1 killed"), "{text}");
}

#[test]
fn severity_is_coloured_and_resolved_ones_are_dimmed() {
    let painter = Painter::new(true, None);
    let open = incidents(
        &[sample(Severity::Critical, IncidentState::Open)],
        &painter,
        now(),
    );
    assert!(open.contains("\u{1b}[1m\u{1b}[31m✕ critical"), "{open:?}");
    let resolved = incidents(
        &[sample(Severity::Critical, IncidentState::Resolved)],
        &painter,
        now(),
    );
    assert!(resolved.contains("\u{1b}[2m✕ critical"), "{resolved:?}");
}

#[test]
fn the_title_is_cut_to_the_terminal_but_the_id_never_is() {
    let mut long = sample(Severity::Critical, IncidentState::Open);
    long.title = "x".repeat(200);
    let text = incidents(&[long], &Painter::plain(Some(100)), now());
    let row = text.lines().nth(1).unwrap();
    assert_eq!(row.chars().count(), 100, "{row}");
    assert!(row.starts_with("01JC3Z8Q2J6W7V2N5Y4M1K0P9R "), "{row}");
    assert!(row.ends_with('…'), "{row}");
}

#[test]
fn one_incident_in_full_has_its_lifecycle_recommendation_and_facts() {
    let mut acked = sample(Severity::Critical, IncidentState::Acknowledged);
    acked.acknowledged_by = Some("alice".into());
    acked.acknowledged_at = Some(now() - Duration::minutes(3));
    acked.comment = Some("looking into it".into());
    acked.reopened = 2;
    acked.labels.insert("team".into(), "payments".into());
    let text = incident(&acked, &Painter::plain(None), now());
    assert!(
        text.starts_with("✕ CRITICAL  api-1 killed: out of memory\n"),
        "{text}"
    );
    assert!(
        text.contains("  id            01JC3Z8Q2J6W7V2N5Y4M1K0P9R\n"),
        "{text}"
    );
    assert!(
        text.contains("  state         acknowledged by alice 3m ago: \"looking into it\"\n"),
        "{text}"
    );
    assert!(
        text.contains("  what          api · oom_killed · api-1 (from watcher)\n"),
        "{text}"
    );
    assert!(text.contains("×3 since "), "{text}");
    assert!(text.contains("; reopened 2×"), "{text}");
    assert!(
        text.contains("  → Raise the memory limit or find the leak\n"),
        "{text}"
    );
    assert!(
        text.contains("  facts\n    container  api-1\n    exit_code  137\n"),
        "{text}"
    );
    assert!(text.contains("  labels\n    team  payments\n"), "{text}");
    assert!(!text.contains("annotations"), "none, no section: {text}");
    assert!(!text.contains("silenced"), "{text}");
}

#[test]
fn silences_list_their_matchers_as_typed_and_when_they_end() {
    let text = silences(&[silence()], &Painter::plain(None), now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "STATE", "ENDS", "MATCHERS", "BY", "COMMENT"]
    );
    assert!(
        lines[1].starts_with("01JC40000000000000000000AB  active  in 2h ("),
        "{text}"
    );
    assert!(
        lines[1].ends_with(r#"service="api" kind=~"oom.*"  alice  deploying api"#),
        "{text}"
    );
    assert_eq!(
        silence_changed("deleted", &silence(), now()),
        "silence 01JC40000000000000000000AB deleted: service=\"api\" kind=~\"oom.*\"\n"
    );
    assert!(silence_changed("added", &silence(), now()).contains(" added until "));
}
