//! Drawing the live view. Wide terminals get two columns (services | containers over
//! events | issues); narrow ones stack the four panes.
//!
//! The words and colours come from [`crate::render`], so the TUI and `status` agree on what
//! an event or a service state looks like.

use chrono::{DateTime, Utc};
use obs_model::{Container, Event, Issue, ProbeStatus, ServiceState, ServiceStatus, Severity};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Padding, Paragraph, Row, Table};
use ratatui::Frame;

use super::state::{Screen, Snapshot};
use crate::render::table::{truncate, wrap};
use crate::render::tone::{event_tone, severity_label, Tone};
use crate::render::{self, time};

/// Below this width the panes stack instead of sitting side by side.
const TWO_COLUMNS_FROM: u16 = 110;

pub fn draw(frame: &mut Frame, screen: &Screen, now: DateTime<Utc>) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    draw_header(frame, header, screen, now);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled(" q", bold()),
            Span::raw("/"),
            Span::styled("Esc", bold()),
            Span::raw(" quit   "),
            Span::styled("r", bold()),
            Span::raw(" refresh now"),
        ]))
        .style(dim()),
        footer,
    );

    let Some(snapshot) = &screen.snapshot else {
        let text = match &screen.failure {
            Some(_) => "No data yet: the watcher has not answered. Retrying…",
            None => "Connecting to the watcher…",
        };
        frame.render_widget(
            Paragraph::new(text).block(Block::bordered()).style(dim()),
            body,
        );
        return;
    };

    // Containers get their own full-width row (their table is wide) and only when there are
    // some; the header says when there are none. Probes sit beside the services.
    let status = &snapshot.status;
    let containers_height = match status.containers.len() {
        0 => 0,
        rows => table_height(rows).min(body.height * 3 / 10),
    };
    if body.width >= TWO_COLUMNS_FROM {
        let top = table_height(status.services.len())
            .max(if status.probes.is_empty() {
                0
            } else {
                table_height(status.probes.len())
            })
            .min(body.height * 3 / 10);
        let [upper, containers, lower] = Layout::vertical([
            Constraint::Length(top),
            Constraint::Length(containers_height),
            Constraint::Fill(1),
        ])
        .areas(body);
        if status.probes.is_empty() {
            draw_services(frame, upper, &status.services, now);
        } else {
            let [services, probes] =
                Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                    .areas(upper);
            draw_services(frame, services, &status.services, now);
            draw_probes(frame, probes, &status.probes, now);
        }
        if containers_height > 0 {
            draw_containers(frame, containers, &status.containers);
        }
        let [events, issues] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(lower);
        draw_events(frame, events, screen, snapshot, now);
        draw_issues(frame, issues, &snapshot.issues, now);
    } else {
        let probes_height = match status.probes.len() {
            0 => 0,
            rows => table_height(rows),
        };
        let [services, probes, containers, events, issues] = Layout::vertical([
            Constraint::Max(table_height(status.services.len())),
            Constraint::Max(probes_height),
            Constraint::Max(containers_height),
            Constraint::Fill(3),
            Constraint::Fill(2),
        ])
        .areas(body);
        draw_services(frame, services, &status.services, now);
        if probes_height > 0 {
            draw_probes(frame, probes, &status.probes, now);
        }
        if containers_height > 0 {
            draw_containers(frame, containers, &status.containers);
        }
        draw_events(frame, events, screen, snapshot, now);
        draw_issues(frame, issues, &snapshot.issues, now);
    }
}

/// Borders, header row and at least one line for "none".
fn table_height(rows: usize) -> u16 {
    u16::try_from(rows.max(1) + 3).unwrap_or(u16::MAX)
}

fn draw_header(frame: &mut Frame, area: Rect, screen: &Screen, now: DateTime<Utc>) {
    let mut about = vec![
        Span::styled(
            " obsctl ",
            Style::new().add_modifier(Modifier::REVERSED | Modifier::BOLD),
        ),
        Span::raw(format!("  watcher {}", screen.watcher_url)),
    ];
    if let Some(snapshot) = &screen.snapshot {
        let status = &snapshot.status;
        if let Some(app) = &status.app_name {
            about.push(Span::raw(format!(" · app {app}")));
        }
        if let Some(deployment) = &status.deployment_id {
            about.push(Span::raw(format!(" · deployment {deployment}")));
        }
        about.push(Span::styled(
            match (status.docker, status.containers.is_empty()) {
                (true, true) => " · docker: watching, no containers",
                (true, false) => " · docker: watching",
                (false, true) => " · docker: not watched",
                (false, false) => " · docker: not watched (containers as last seen)",
            },
            dim(),
        ));
    }

    let every = format!("every {}", time::seconds(screen.interval.as_secs_f64()));
    let updated = screen
        .updated_at
        .map(|at| time::clock(at, now))
        .unwrap_or_else(|| "never".into());
    let state = match (&screen.failure, &screen.snapshot) {
        (Some(failure), _) => vec![
            Span::styled(
                if failure.unreachable {
                    " ✕ watcher unreachable: "
                } else {
                    " ✕ watcher error: "
                },
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            ),
            Span::styled(failure.detail.clone(), Style::new().fg(Color::Red)),
            Span::styled(
                format!(" · retrying {every} · last update {updated}"),
                dim(),
            ),
        ],
        (None, Some(snapshot)) => summary(snapshot, &updated, &every),
        (None, None) => vec![Span::styled(" connecting…", dim())],
    };
    frame.render_widget(
        Paragraph::new(vec![Line::from(about), Line::from(state)]),
        area,
    );
}

fn summary(snapshot: &Snapshot, updated: &str, every: &str) -> Vec<Span<'static>> {
    let services = &snapshot.status.services;
    let down = services
        .iter()
        .filter(|s| s.status == ServiceState::Down)
        .count();
    // The dot says at a glance whether anything needs a look.
    let worst = snapshot.issues.iter().map(|issue| issue.severity).max();
    let dot = match worst {
        _ if down > 0 => bad(),
        Some(severity) => severity_style(severity),
        None => Style::new().fg(Color::Green),
    };
    let mut spans = vec![
        Span::styled(" ● ", dot),
        Span::raw(format!("{} services: ", services.len())),
        Span::styled(
            format!("{} up", services.len() - down),
            Style::new().fg(Color::Green),
        ),
    ];
    if down > 0 {
        spans.push(Span::raw(", "));
        spans.push(Span::styled(format!("{down} down"), bad()));
    }
    spans.push(Span::raw(" · "));
    spans.extend(issue_counts(&snapshot.issues));
    spans.push(Span::styled(
        format!(" · updated {updated}, {every}"),
        dim(),
    ));
    spans
}

fn issue_counts(issues: &[Issue]) -> Vec<Span<'static>> {
    if issues.is_empty() {
        return vec![Span::styled(
            "no open issues",
            Style::new().fg(Color::Green),
        )];
    }
    let noun = if issues.len() == 1 { "issue" } else { "issues" };
    let mut spans = vec![Span::raw(format!("{} open {noun} (", issues.len()))];
    let mut first = true;
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let count = issues.iter().filter(|i| i.severity == severity).count();
        if count == 0 {
            continue;
        }
        if !first {
            spans.push(Span::raw(", "));
        }
        first = false;
        spans.push(Span::styled(
            format!("{count} {}", severity.as_str()),
            severity_style(severity),
        ));
    }
    spans.push(Span::raw(")"));
    spans
}

fn draw_services(frame: &mut Frame, area: Rect, services: &[ServiceStatus], now: DateTime<Utc>) {
    let down = services
        .iter()
        .filter(|s| s.status == ServiceState::Down)
        .count();
    let title = format!(" Services {} up · {down} down ", services.len() - down);
    let block = pane(Span::styled(title, bold()));
    if services.is_empty() {
        frame.render_widget(
            Paragraph::new("none yet: services appear with their first heartbeat")
                .style(dim())
                .block(block),
            area,
        );
        return;
    }
    let mut sorted: Vec<&ServiceStatus> = services.iter().collect();
    sorted.sort_by(|a, b| {
        (a.status == ServiceState::Up, &a.service).cmp(&(b.status == ServiceState::Up, &b.service))
    });
    let rows = sorted.into_iter().map(|service| {
        let style = match service.status {
            ServiceState::Up => Style::new().fg(Color::Green),
            ServiceState::Down => bad(),
        };
        let state = match service.status {
            ServiceState::Up => "● up",
            ServiceState::Down => "● down",
        };
        Row::new(vec![
            Cell::from(state).style(style),
            Cell::from(service.service.clone()),
            Cell::from(time::age(service.last_seen, now)),
            Cell::from(service.phase.clone().unwrap_or_else(|| "-".into())),
            Cell::from(render::service_note(service, now)).style(dim()),
        ])
    });
    let name_width = column_width(services.iter().map(|s| s.service.as_str()), 7, 28);
    let phase_width = column_width(
        services.iter().map(|s| s.phase.as_deref().unwrap_or("-")),
        5,
        16,
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(6),
            Constraint::Length(name_width),
            Constraint::Length(9),
            Constraint::Length(phase_width),
            Constraint::Fill(1),
        ],
    )
    .header(header_row(&[
        "STATE",
        "SERVICE",
        "LAST SEEN",
        "PHASE",
        "NOTE",
    ]))
    .block(block);
    frame.render_widget(table, area);
}

fn draw_containers(frame: &mut Frame, area: Rect, containers: &[Container]) {
    let running = containers.iter().filter(|c| c.state == "running").count();
    let title = format!(" Containers {running} running of {} ", containers.len());
    let block = pane(Span::styled(title, bold()));
    let mut sorted: Vec<&Container> = containers.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let rows = sorted.into_iter().map(|container| {
        let health_style = match container.health.as_deref() {
            Some("unhealthy") => bad(),
            Some("healthy") => Style::new().fg(Color::Green),
            _ => dim(),
        };
        Row::new(vec![
            Cell::from(container.name.clone()),
            Cell::from(container.state.clone())
                .style(tone_style(render::container_tone(container))),
            Cell::from(container.health.clone().unwrap_or_else(|| "-".into())).style(health_style),
            Cell::from(container.restart_count.to_string()),
            Cell::from(render::container_exit(container)),
            Cell::from(container.image.clone()).style(dim()),
        ])
    });
    let name_width = column_width(containers.iter().map(|c| c.name.as_str()), 4, 28);
    let table = Table::new(
        rows,
        [
            Constraint::Length(name_width),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(8),
            Constraint::Length(9),
            Constraint::Fill(1),
        ],
    )
    .header(header_row(&[
        "NAME", "STATE", "HEALTH", "RESTARTS", "EXIT", "IMAGE",
    ]))
    .block(block);
    frame.render_widget(table, area);
}

fn draw_probes(frame: &mut Frame, area: Rect, probes: &[ProbeStatus], now: DateTime<Utc>) {
    let failing = probes.iter().filter(|p| p.up == Some(false)).count();
    let title = format!(
        " Probes {} up · {failing} failing ",
        probes.iter().filter(|p| p.up == Some(true)).count()
    );
    let rows = probes.iter().map(|probe| {
        let (state, style) = match probe.up {
            Some(true) => ("● up", Style::new().fg(Color::Green)),
            Some(false) => ("● failing", bad()),
            None => ("● pending", dim()),
        };
        Row::new(vec![
            Cell::from(state).style(style),
            Cell::from(probe.name.clone()),
            Cell::from(
                probe
                    .last_checked
                    .map(|at| time::age(at, now))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::from(render::probe_note(probe)).style(dim()),
        ])
    });
    let name_width = column_width(probes.iter().map(|p| p.name.as_str()), 4, 20);
    let table = Table::new(
        rows,
        [
            Constraint::Length(9),
            Constraint::Length(name_width),
            Constraint::Length(8),
            Constraint::Fill(1),
        ],
    )
    .header(header_row(&["STATE", "NAME", "CHECKED", "NOTE"]))
    .block(pane(Span::styled(title, bold())));
    frame.render_widget(table, area);
}

fn draw_events(
    frame: &mut Frame,
    area: Rect,
    screen: &Screen,
    snapshot: &Snapshot,
    now: DateTime<Utc>,
) {
    let title = format!(" Events {} (newest first) ", snapshot.events.len());
    let block = pane(Span::styled(title, bold()));
    if snapshot.events.is_empty() {
        frame.render_widget(
            Paragraph::new("no events yet").style(dim()).block(block),
            area,
        );
        return;
    }
    // Services named after containers are long and differ at the end: give them up to half
    // the pane before cutting.
    let widest = (area.width.saturating_sub(4) / 2).max(12);
    let service_width = column_width(
        snapshot.events.iter().map(|e| e.service.as_str()),
        8,
        widest,
    );
    let lines: Vec<Line> = snapshot
        .events
        .iter()
        .rev()
        .take(usize::from(area.height))
        .map(|event| event_line(event, screen.fresh.contains(&event.id), service_width, now))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// `14:03:07 ✕ die          app       exit 137 · …`, coloured by the event's tone; an event
/// new in this refresh is bold.
fn event_line(event: &Event, fresh: bool, service_width: u16, now: DateTime<Utc>) -> Line<'static> {
    let tone = event_tone(event);
    let mut style = tone_style(tone);
    if fresh {
        style = style.add_modifier(Modifier::BOLD);
    }
    let kind = format!("{} {:<13}", tone.symbol(), event.event_type);
    Line::from(vec![
        Span::styled(format!("{} ", time::clock(event.timestamp, now)), dim()),
        Span::styled(kind, style),
        Span::raw(format!(
            " {:<width$} ",
            truncate(&event.service, usize::from(service_width)),
            width = usize::from(service_width)
        )),
        Span::styled(render::event_facts(event).join(" · "), dim()),
    ])
}

fn draw_issues(frame: &mut Frame, area: Rect, issues: &[Issue], now: DateTime<Utc>) {
    let mut title = vec![Span::styled(
        format!(" Open issues {} ", issues.len()),
        bold(),
    )];
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let count = issues.iter().filter(|i| i.severity == severity).count();
        if count > 0 {
            title.push(Span::raw("· "));
            title.push(Span::styled(
                format!("{count} {} ", severity.as_str()),
                severity_style(severity),
            ));
        }
    }
    let block = pane(Line::from(title));
    if issues.is_empty() {
        frame.render_widget(
            Paragraph::new("nothing to do")
                .style(Style::new().fg(Color::Green))
                .block(block),
            area,
        );
        return;
    }
    let mut lines: Vec<Line> = Vec::new();
    for issue in issues {
        let (symbol, label) = severity_label(issue.severity);
        let place = if issue.subject.is_empty() || issue.subject == issue.service {
            issue.service.clone()
        } else {
            format!("{}/{}", issue.service, issue.subject)
        };
        let mut when = format!("since {}", time::clock(issue.first_seen, now));
        if issue.count > 1 {
            when = format!("×{} {when}", issue.count);
        }
        lines.push(Line::from(vec![
            Span::styled(format!("{symbol} {label} "), severity_style(issue.severity)),
            Span::styled(place, bold()),
            Span::raw(format!(" {} ", issue.kind.as_str())),
            Span::styled(when, dim()),
        ]));
        // Wrapped here rather than by the Paragraph, so continuation lines keep their indent.
        let inner = usize::from(area.width.saturating_sub(4)).max(20);
        for text in wrap(&issue.message, inner - 2, inner - 2) {
            lines.push(Line::from(format!("  {text}")));
        }
        for (index, text) in wrap(&issue.recommendation, inner - 4, inner - 4)
            .into_iter()
            .enumerate()
        {
            let lead = if index == 0 { "  → " } else { "    " };
            lines.push(Line::from(vec![
                Span::styled(lead, Style::new().fg(Color::Cyan)),
                Span::raw(text),
            ]));
        }
        lines.push(Line::default());
    }
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// A bordered pane with a title and a space inside the border.
fn pane<'a>(title: impl Into<Line<'a>>) -> Block<'a> {
    Block::bordered()
        .title(title)
        .padding(Padding::horizontal(1))
}

fn header_row(titles: &[&'static str]) -> Row<'static> {
    Row::new(titles.iter().map(|t| Cell::from(*t))).style(dim())
}

/// The longest of `names`, kept between `min` and `max` columns.
fn column_width<'a>(names: impl Iterator<Item = &'a str>, min: u16, max: u16) -> u16 {
    let longest = names.map(|n| n.chars().count()).max().unwrap_or(0);
    u16::try_from(longest).unwrap_or(max).clamp(min, max)
}

fn tone_style(tone: Tone) -> Style {
    match tone {
        Tone::Good => Style::new().fg(Color::Green),
        Tone::Bad => Style::new().fg(Color::Red),
        Tone::Stopped => Style::new().fg(Color::Yellow),
        Tone::Restarted => Style::new().fg(Color::Cyan),
        Tone::Neutral => Style::new(),
    }
}

fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => bad(),
        Severity::Warning => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        Severity::Info => Style::new().fg(Color::Blue),
    }
}

fn bad() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

fn dim() -> Style {
    Style::new().add_modifier(Modifier::DIM)
}

#[cfg(test)]
mod tests;
