//! The report as Markdown: readable as is in a terminal, and renders well where Markdown
//! does. Text from inputs is kept on one line and its table-breaking `|` escaped.

use std::fmt::Write as _;

use crate::render::{bar_text, severity_label, step_status};
use crate::report::{ago, IncidentReport, Report};

pub fn render(report: &Report) -> String {
    let now = report.generated_at;
    let mut out = String::new();
    let _ = writeln!(out, "# {} status\n", line(&report.title));
    let _ = writeln!(
        out,
        "**{}** — {}\n",
        report.headline,
        now.format("%Y-%m-%d %H:%M:%S UTC")
    );
    for source in report.sources.iter().filter(|s| !s.available) {
        let _ = writeln!(
            out,
            "> ⚠ {} unavailable: {}\n",
            source.name,
            line(source.error.as_deref().unwrap_or("no answer"))
        );
    }

    let _ = writeln!(out, "## Services\n");
    let counts = &report.service_counts;
    if report.services.len() < counts.total {
        let _ = writeln!(
            out,
            "{} services: {} down · {} degraded · {} unknown · {} operational. Listing {}, what is wrong first.\n",
            counts.total,
            counts.down,
            counts.degraded,
            counts.unknown,
            counts.operational,
            report.services.len()
        );
    }
    if report.services.is_empty() {
        let _ = writeln!(out, "No services known yet.\n");
    } else {
        let _ = writeln!(out, "| service | state | uptime 24 h | detail |");
        let _ = writeln!(out, "|---|---|---|---|");
        for service in &report.services {
            let uptime = service
                .uptime
                .as_ref()
                .map(|u| format!("{:.2} %", u.percent))
                .unwrap_or_else(|| "–".into());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&service.name),
                service.health.as_str(),
                uptime,
                cell(service.detail.as_deref().unwrap_or(""))
            );
        }
        let bars: Vec<_> = report
            .services
            .iter()
            .filter_map(|s| Some((s, s.uptime.as_ref()?)))
            .collect();
        if !bars.is_empty() {
            let width = bars
                .iter()
                .map(|(s, _)| s.name.chars().count())
                .max()
                .unwrap_or(0);
            let _ = writeln!(
                out,
                "\nUptime, last 24 h (█ up, ▒ degraded, ░ down; {} min a character):\n",
                report.window.slot_seconds / 60
            );
            let _ = writeln!(out, "```");
            for (service, uptime) in bars {
                let _ = writeln!(
                    out,
                    "{:<width$}  {}  {:>6.2} %",
                    line(&service.name),
                    bar_text(&uptime.slots),
                    uptime.percent
                );
            }
            let _ = writeln!(out, "```");
        }
        if let Some(next) = &report.services_next {
            let _ = writeln!(
                out,
                "\nMore: `/v1/report?format=md&after={next}&limit={}`",
                report.services.len()
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Open incidents\n");
    if report.incidents.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for incident in &report.incidents {
        incident_section(&mut out, incident, now);
    }
    if report.incidents_total > report.incidents.len() {
        let _ = writeln!(
            out,
            "Showing the {} most urgent of {} open incidents; all: `/v1/plans?state=open`.\n",
            report.incidents.len(),
            report.incidents_total
        );
    }

    if !report.resolved.is_empty() {
        let _ = writeln!(out, "## Resolved in the last 24 h\n");
        for incident in &report.resolved {
            let when = incident
                .resolved_at
                .map(|at| format!("{} ago", ago(at, now)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "- {} ({}) — resolved {}",
                line(&incident.title),
                line(&incident.service),
                when
            );
        }
        out.push('\n');
    }

    let _ = writeln!(out, "## Recent events\n");
    if report.events.is_empty() {
        let _ = writeln!(out, "None.\n");
    }
    for event in &report.events {
        let detail = event
            .detail
            .as_deref()
            .map(|d| format!(" — {}", line(d)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "- `{}` **{}** {}{}",
            event.timestamp.format("%H:%M:%S"),
            line(&event.service),
            line(&event.event_type),
            detail
        );
    }
    out
}

fn incident_section(
    out: &mut String,
    incident: &IncidentReport,
    now: chrono::DateTime<chrono::Utc>,
) {
    let plan = &incident.plan;
    let _ = writeln!(
        out,
        "### [{}] {} {}\n",
        plan.priority.as_str(),
        severity_label(incident.severity),
        line(&incident.title)
    );
    let acknowledged = incident
        .acknowledged_by
        .as_deref()
        .map(|by| format!(", acknowledged by {}", line(by)))
        .unwrap_or_default();
    let seen = if incident.count > 1 {
        format!(" · seen {} times", incident.count)
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "{} · open {}{}{}\n",
        line(&incident.service),
        ago(incident.first_seen, now),
        acknowledged,
        seen
    );
    if !incident.message.is_empty() {
        let _ = writeln!(out, "{}\n", line(&incident.message));
    }
    let _ = writeln!(out, "Plan: {}\n", line(&plan.summary));
    for (number, step) in plan.steps.iter().enumerate() {
        let outcome = step
            .outcome
            .as_ref()
            .map(|o| format!(" [{}: {}]", step_status(o.status), line(&o.detail)))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{}. {}{}\n   _{}_",
            number + 1,
            line(&step.title),
            outcome,
            line(&step.reason)
        );
    }
    out.push('\n');
}

/// Inputs on one line.
fn line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Inputs in a table cell.
fn cell(text: &str) -> String {
    line(text).replace('|', "\\|")
}
