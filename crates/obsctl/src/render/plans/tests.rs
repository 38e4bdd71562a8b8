use obs_model::{PlanState, Priority};

use super::*;
use crate::test_fixtures::{now, plan as sample};

#[test]
fn plans_are_a_table_with_priority_and_step_count() {
    let text = plans(&[sample(Priority::P1)], &Painter::plain(None), now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "ID                          PRIORITY  STATE  SERVICE  STEPS  UPDATED  SUMMARY"
    );
    assert_eq!(
        lines[1],
        "01JC4P0000000000000000000Q  P1        open   api      2      5s ago   api-1 was killed for running out of memory (2 restarts so far)"
    );
}

#[test]
fn a_plan_in_full_numbers_its_steps_with_reasons_and_outcomes() {
    let text = plan(&sample(Priority::P2), &Painter::plain(None), now());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "P2 api  api-1 was killed for running out of memory (2 restarts so far)"
    );
    assert_eq!(
        lines[1],
        "  open · plan 01JC4P0000000000000000000Q · incident 01JC3Z8Q2J6W7V2N5Y4M1K0P9R (oom_killed, critical, open) · rule oom_killed · updated 5s ago"
    );
    assert_eq!(lines[2], "   1. Restart api-1 [safe]");
    assert_eq!(lines[3], "      why It is not running");
    assert!(
        lines[4].starts_with("      ran succeeded (attempt 1, ")
            && lines[4].ends_with("): the watcher restarted it"),
        "{text}"
    );
    assert_eq!(
        lines[5],
        "   2. Raise the memory limit of api-1 from 256 MiB to 512 MiB"
    );
    assert_eq!(lines[6], "      why It was killed at its 256 MiB limit");
    assert_eq!(lines.len(), 7, "no outcome line for a step not run: {text}");
}

#[test]
fn priorities_are_coloured_and_closed_plans_dimmed() {
    let painter = Painter::new(true, None);
    let mut closed = sample(Priority::P1);
    closed.state = PlanState::Closed;
    let text = plans(&[closed], &painter, now());
    assert!(text.contains("\u{1b}[1m\u{1b}[31mP1"), "{text:?}");
    assert!(text.contains("\u{1b}[2mclosed"), "{text:?}");
}

#[test]
fn verbose_plans_are_separated_by_a_blank_line() {
    let text = plans_verbose(
        &[sample(Priority::P1), sample(Priority::P3)],
        &Painter::plain(None),
        now(),
    );
    assert!(
        text.contains("why It was killed at its 256 MiB limit\n\nP3 api"),
        "{text}"
    );
}
