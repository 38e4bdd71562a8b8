//! The planner's answers for people: plans as a table, or each with its numbered steps.

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Utc};
use obs_model::{Plan, PlanState, PlanStep, Priority, StepStatus};

use super::table::{width, Cell, Table};
use super::{fg, time, Painter};

pub fn priority_style(priority: Priority) -> Style {
    match priority {
        Priority::P1 => fg(AnsiColor::Red).bold(),
        Priority::P2 => fg(AnsiColor::Yellow).bold(),
        Priority::P3 => fg(AnsiColor::Blue),
        Priority::P4 => Style::new(),
    }
}

fn state_style(state: PlanState) -> Style {
    match state {
        PlanState::Open => Style::new(),
        PlanState::Closed => Style::new().dimmed(),
    }
}

/// One plan a line, most urgent first as the client sorted them.
pub fn plans(plans: &[Plan], painter: &Painter, now: DateTime<Utc>) -> String {
    let mut table = Table::new(&[
        "ID", "PRIORITY", "STATE", "SERVICE", "STEPS", "UPDATED", "SUMMARY",
    ]);
    for plan in plans {
        table.row(vec![
            Cell::styled(plan.id.to_string(), Style::new().dimmed()),
            Cell::styled(plan.priority.as_str(), priority_style(plan.priority)),
            Cell::styled(plan.state.as_str(), state_style(plan.state)),
            Cell::plain(&plan.service),
            Cell::plain(plan.steps.len().to_string()),
            Cell::plain(time::age(plan.updated_at, now)),
            Cell::plain(&plan.summary),
        ]);
    }
    table.render(painter, 0)
}

/// Plans in full, one after the other with a blank line between.
pub fn plans_verbose(plans: &[Plan], painter: &Painter, now: DateTime<Utc>) -> String {
    plans
        .iter()
        .map(|p| plan(p, painter, now))
        .collect::<Vec<_>>()
        .join("\n")
}

/// One plan: priority, service and summary; where it comes from; then each step numbered,
/// with why and, when the planner ran it, what happened.
pub fn plan(plan: &Plan, painter: &Painter, now: DateTime<Utc>) -> String {
    let head = format!("{} {}", plan.priority.as_str(), plan.service);
    let mut out = format!(
        "{} {}  {}\n",
        painter.paint(plan.priority.as_str(), priority_style(plan.priority)),
        painter.paint(&plan.service, Style::new().bold()),
        painter.wrap(&plan.summary, width(&head) + 2, 4)
    );
    let mut about = vec![
        plan.state.as_str().to_string(),
        format!("plan {}", plan.id),
        format!(
            "incident {} ({}, {}, {})",
            plan.incident_id,
            plan.incident.kind.as_str(),
            plan.incident.severity.as_str(),
            plan.incident.state.as_str()
        ),
        format!("rule {}", plan.rule),
        format!("updated {}", time::age(plan.updated_at, now)),
    ];
    if let Some(closed) = plan.closed_at {
        about.push(format!("closed {}", time::age(closed, now)));
    }
    out.push_str(&format!(
        "  {}\n",
        painter.paint(
            &painter.wrap(&about.join(" · "), 2, 2),
            Style::new().dimmed()
        )
    ));
    if plan.steps.is_empty() {
        out.push_str("  no steps\n");
    }
    for (index, step) in plan.steps.iter().enumerate() {
        out.push_str(&step_block(index + 1, step, painter, now));
    }
    out
}

fn step_block(number: usize, step: &PlanStep, painter: &Painter, now: DateTime<Utc>) -> String {
    let number = format!("{number:>2}.");
    let mut title = step.title.clone();
    if step.safe {
        title.push_str(" [safe]");
    }
    let mut out = format!("  {number} {}\n", painter.wrap(&title, 6, 6));
    out.push_str(&format!(
        "      {} {}\n",
        painter.paint("why", Style::new().dimmed()),
        painter.wrap(&step.reason, 10, 10)
    ));
    if let Some(outcome) = &step.outcome {
        let (status, style) = match outcome.status {
            StepStatus::Pending => ("pending", Style::new().dimmed()),
            StepStatus::Succeeded => ("succeeded", fg(AnsiColor::Green)),
            StepStatus::Failed => ("failed", fg(AnsiColor::Red).bold()),
            StepStatus::Skipped => ("skipped", fg(AnsiColor::Yellow)),
        };
        let detail = format!(
            " (attempt {}, {}): {}",
            outcome.attempt,
            time::clock(outcome.at, now),
            outcome.detail
        );
        out.push_str(&format!(
            "      {} {}{}\n",
            painter.paint("ran", Style::new().dimmed()),
            painter.paint(status, style),
            painter.wrap(&detail, 10 + status.len(), 10)
        ));
    }
    out
}

#[cfg(test)]
mod tests;
