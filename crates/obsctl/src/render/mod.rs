//! Text for people: the human form of every command's output. Each function returns a
//! String, so what a command prints is tested without a terminal; `--json` bypasses all this.
//!
//! Colour only when it will be seen: a terminal, NO_COLOR unset (or `--color always`). Lines
//! are cut to the terminal's width; piped output is never cut.

pub mod incidents;
pub mod plans;
pub mod table;
pub mod time;
pub mod tone;

use std::io::IsTerminal;

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Utc};
use obs_model::{
    Container, DownReason, Event, Issue, IssueState, ProbeStatus, ServiceState, ServiceStatus,
    Severity, WatcherStatus,
};

use crate::cli::ColorChoice;
use table::{pad, truncate, width, Cell, Table};
use tone::{event_tone, severity_label, Tone};

/// Decides colour and width once, for everything a command prints.
#[derive(Debug, Clone, Copy)]
pub struct Painter {
    color: bool,
    width: Option<usize>,
}

impl Painter {
    pub fn new(color: bool, width: Option<usize>) -> Painter {
        Painter { color, width }
    }

    pub fn plain(width: Option<usize>) -> Painter {
        Painter::new(false, width)
    }

    /// For standard output: colour per `choice` and NO_COLOR, width when it is a terminal.
    pub fn for_stdout(choice: ColorChoice) -> Painter {
        let terminal = std::io::stdout().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => terminal && !no_color,
        };
        let width = terminal
            .then(|| crossterm::terminal::size().ok())
            .flatten()
            .map(|(columns, _)| usize::from(columns))
            .filter(|columns| *columns >= 20);
        Painter::new(color, width)
    }

    pub fn paint(&self, text: &str, style: Style) -> String {
        if self.color && !style.is_plain() && !text.is_empty() {
            format!("{style}{text}{style:#}")
        } else {
            text.to_string()
        }
    }

    /// `text` wrapped at word boundaries to the terminal's width: the first line has what is
    /// left after `used` columns, the others start after `indent` spaces.
    pub fn wrap(&self, text: &str, used: usize, indent: usize) -> String {
        let Some(columns) = self.width else {
            return text.to_string();
        };
        let first = columns.saturating_sub(used).max(20);
        let rest = columns.saturating_sub(indent).max(20);
        table::wrap(text, first, rest).join(&format!("\n{}", " ".repeat(indent)))
    }

    /// `text` cut to what is left of the line after `used` columns.
    pub fn fit(&self, text: &str, used: usize) -> String {
        match self.width {
            Some(columns) => truncate(text, columns.saturating_sub(used).max(8)),
            None => text.to_string(),
        }
    }
}

fn fg(color: AnsiColor) -> Style {
    Style::new().fg_color(Some(color.into()))
}

pub fn tone_style(tone: Tone) -> Style {
    match tone {
        Tone::Good => fg(AnsiColor::Green),
        Tone::Bad => fg(AnsiColor::Red),
        Tone::Stopped => fg(AnsiColor::Yellow),
        Tone::Restarted => fg(AnsiColor::Cyan),
        Tone::Neutral => Style::new(),
    }
}

pub fn severity_style(severity: Severity) -> Style {
    match severity {
        Severity::Critical => fg(AnsiColor::Red).bold(),
        Severity::Warning => fg(AnsiColor::Yellow).bold(),
        Severity::Info => fg(AnsiColor::Blue),
    }
}

fn heading(painter: &Painter, title: &str, summary: &str) -> String {
    let title = painter.paint(title, Style::new().bold());
    if summary.is_empty() {
        format!("{title}\n")
    } else {
        format!("{title}  {summary}\n")
    }
}

/// What `status` shows; `recent` is there with `--verbose`.
pub struct StatusView<'a> {
    pub watcher_url: &'a str,
    pub status: &'a WatcherStatus,
    pub recent: Option<(&'a [Event], &'a [Issue])>,
}

pub fn status(view: &StatusView, painter: &Painter, now: DateTime<Utc>) -> String {
    let status = view.status;
    let mut out = String::new();

    let mut about = vec![format!("watcher {}", view.watcher_url)];
    if let Some(app) = &status.app_name {
        about.push(format!("app {app}"));
    }
    if let Some(deployment) = &status.deployment_id {
        about.push(format!("deployment {deployment}"));
    }
    about.push(if status.docker {
        "docker: watching".into()
    } else {
        "docker: not watched".into()
    });
    about.push(format!("at {}", time::clock(status.timestamp, now)));
    out.push_str(&painter.paint(&about.join(" · "), Style::new().dimmed()));
    out.push_str("\n\n");

    out.push_str(&services_section(status, painter, now));
    out.push('\n');
    out.push_str(&containers_section(status, painter));
    out.push('\n');
    if !status.probes.is_empty() {
        out.push_str(&probes_section(&status.probes, painter, now));
        out.push('\n');
    }

    match view.recent {
        None => {
            let summary = match status.open_issues {
                0 => painter.paint("none", fg(AnsiColor::Green)),
                count => format!(
                    "{}  (obsctl status --verbose or obsctl issues: what to do)",
                    painter.paint(&count.to_string(), fg(AnsiColor::Red).bold())
                ),
            };
            out.push_str(&heading(painter, "OPEN ISSUES", &summary));
        }
        Some((events, issues)) => {
            out.push_str(&heading(
                painter,
                "RECENT EVENTS",
                &format!("last {}", events.len()),
            ));
            if events.is_empty() {
                out.push_str("  none yet\n");
            }
            let widest = service_width(events);
            for event in events {
                out.push_str("  ");
                out.push_str(&event_line(event, painter, now, 2, widest));
            }
            out.push('\n');
            out.push_str(&heading(
                painter,
                "OPEN ISSUES",
                &issue_summary(issues, painter),
            ));
            for issue in issues {
                out.push_str(&issue_block(issue, painter, now, 2));
            }
        }
    }
    out
}

fn services_section(status: &WatcherStatus, painter: &Painter, now: DateTime<Utc>) -> String {
    let services = &status.services;
    if services.is_empty() && status.service_counts.is_none_or(|counts| counts.total == 0) {
        return heading(
            painter,
            "SERVICES",
            "none yet (a service appears with its first heartbeat: obsctl heartbeat <service>)",
        );
    }
    // The whole fleet as the watcher counts it; the list may be its first page.
    let (up, down, total) = match status.service_counts {
        Some(counts) => (counts.up, counts.down, counts.total),
        None => {
            let down = services
                .iter()
                .filter(|s| s.status == ServiceState::Down)
                .count();
            (services.len() - down, down, services.len())
        }
    };
    let mut summary = painter.paint(&format!("{up} up"), fg(AnsiColor::Green));
    if down > 0 {
        summary.push_str(" · ");
        summary.push_str(&painter.paint(&format!("{down} down"), fg(AnsiColor::Red).bold()));
    }
    let mut out = heading(painter, "SERVICES", &summary);

    let mut sorted: Vec<&ServiceStatus> = services.iter().collect();
    // Down first: that is what someone running `status` is looking for.
    sorted.sort_by(|a, b| {
        (a.status == ServiceState::Up, &a.service).cmp(&(b.status == ServiceState::Up, &b.service))
    });
    let mut table = Table::new(&["", "SERVICE", "STATE", "LAST SEEN", "PHASE", "NOTE"]);
    for service in sorted {
        let (mark, state_style) = match service.status {
            ServiceState::Up => ("●", fg(AnsiColor::Green)),
            ServiceState::Down => ("●", fg(AnsiColor::Red).bold()),
        };
        table.row(vec![
            Cell::styled(mark, state_style),
            Cell::plain(&service.service),
            Cell::styled(service_state(service), state_style),
            Cell::plain(time::age(service.last_seen, now)),
            Cell::plain(service.phase.as_deref().unwrap_or("-")),
            Cell::plain(service_note(service, now)),
        ]);
    }
    out.push_str(&table.render(painter, 2));
    if status.services_next.is_some() {
        out.push_str(&painter.paint(
            &format!(
                "  the first {} of {total}, down first (obsctl --json status lists every one)\n",
                services.len()
            ),
            Style::new().dimmed(),
        ));
    }
    out
}

fn service_state(service: &ServiceStatus) -> &'static str {
    match service.status {
        ServiceState::Up => "up",
        ServiceState::Down => "down",
    }
}

/// Why a service is down, kept apart as the watcher keeps it: a missed beat or a failure.
pub fn service_note(service: &ServiceStatus, now: DateTime<Utc>) -> String {
    let since = service
        .down_since
        .map(|at| format!(" since {}", time::clock(at, now)));
    match (service.status, service.reason, since) {
        (ServiceState::Up, _, _) => format!("timeout {}", time::seconds(service.timeout_seconds)),
        (ServiceState::Down, Some(DownReason::Failed), since) => {
            format!("reported a failure{}", since.unwrap_or_default())
        }
        (ServiceState::Down, _, Some(since)) => format!("missed heartbeats{since}"),
        (ServiceState::Down, _, None) => format!(
            "missed heartbeats (timeout {})",
            time::seconds(service.timeout_seconds)
        ),
    }
}

fn probes_section(probes: &[ProbeStatus], painter: &Painter, now: DateTime<Utc>) -> String {
    let failing = probes.iter().filter(|p| p.up == Some(false)).count();
    let mut summary = painter.paint(
        &format!(
            "{} up",
            probes.iter().filter(|p| p.up == Some(true)).count()
        ),
        fg(AnsiColor::Green),
    );
    if failing > 0 {
        summary.push_str(" · ");
        summary.push_str(&painter.paint(&format!("{failing} failing"), fg(AnsiColor::Red).bold()));
    }
    let mut out = heading(painter, "PROBES", &summary);
    let mut table = Table::new(&["", "NAME", "STATE", "CHECKED", "URL", "NOTE"]);
    for probe in probes {
        let (state, style) = probe_state(probe);
        table.row(vec![
            Cell::styled("●", style),
            Cell::plain(&probe.name),
            Cell::styled(state, style),
            Cell::plain(
                probe
                    .last_checked
                    .map(|at| time::age(at, now))
                    .unwrap_or_else(|| "-".into()),
            ),
            Cell::plain(&probe.url),
            Cell::plain(probe_note(probe)),
        ]);
    }
    out.push_str(&table.render(painter, 2));
    out
}

fn probe_state(probe: &ProbeStatus) -> (&'static str, Style) {
    match probe.up {
        Some(true) => ("up", fg(AnsiColor::Green)),
        Some(false) => ("failing", fg(AnsiColor::Red).bold()),
        None => ("pending", Style::new().dimmed()),
    }
}

/// `12 ms`, or why it fails and how many times in a row.
pub fn probe_note(probe: &ProbeStatus) -> String {
    match (probe.up, &probe.last_error) {
        (Some(false), Some(error)) => {
            format!("{error} ({} in a row)", probe.consecutive_failures)
        }
        (Some(false), None) => format!("{} failures in a row", probe.consecutive_failures),
        _ => probe
            .last_duration_seconds
            .map(|seconds| format!("{:.0} ms", seconds * 1000.0))
            .unwrap_or_default(),
    }
}

fn containers_section(status: &WatcherStatus, painter: &Painter) -> String {
    if status.containers.is_empty() {
        let why = if status.docker {
            "none"
        } else {
            "none (docker not watched)"
        };
        return heading(painter, "CONTAINERS", why);
    }
    let running = status
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .count();
    let mut out = heading(
        painter,
        "CONTAINERS",
        &format!("{running} running of {}", status.containers.len()),
    );
    let mut sorted: Vec<&Container> = status.containers.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut table = Table::new(&["NAME", "STATE", "HEALTH", "RESTARTS", "EXIT", "IMAGE"]);
    for container in sorted {
        table.row(vec![
            Cell::plain(&container.name),
            Cell::styled(&container.state, tone_style(container_tone(container))),
            Cell::styled(
                container.health.as_deref().unwrap_or("-"),
                match container.health.as_deref() {
                    Some("unhealthy") => fg(AnsiColor::Red),
                    Some("healthy") => fg(AnsiColor::Green),
                    _ => Style::new(),
                },
            ),
            Cell::plain(container.restart_count.to_string()),
            Cell::plain(container_exit(container)),
            Cell::plain(&container.image),
        ]);
    }
    out.push_str(&table.render(painter, 2));
    out
}

pub fn container_tone(container: &Container) -> Tone {
    match container.state.as_str() {
        "running" if container.health.as_deref() == Some("unhealthy") => Tone::Bad,
        "running" => Tone::Good,
        "restarting" => Tone::Restarted,
        "dead" => Tone::Bad,
        "exited" if container.oom_killed || container.exit_code.unwrap_or(0) != 0 => Tone::Bad,
        "exited" | "paused" | "created" => Tone::Stopped,
        _ => Tone::Neutral,
    }
}

/// `137 (OOM)`, `0`, or `-` for a container that has not exited.
pub fn container_exit(container: &Container) -> String {
    match (container.exit_code, container.oom_killed) {
        (_, true) => format!("{} (OOM)", container.exit_code.unwrap_or(137)),
        (Some(code), false) if container.state != "running" => code.to_string(),
        _ => "-".into(),
    }
}

/// The least room an event's type and service get, so that `events --follow` stays aligned
/// without knowing what comes next; a list measures its own.
const EVENT_TYPE_WIDTH: usize = 13;
pub const EVENT_SERVICE_WIDTH: usize = 16;

/// The service column's width for a list of events.
pub fn service_width(events: &[Event]) -> usize {
    events
        .iter()
        .map(|event| width(&event.service))
        .max()
        .unwrap_or(0)
        .max(EVENT_SERVICE_WIDTH)
}

/// One event on one line: `[14:03:07] ✕ die           app              exit 137 · …`.
pub fn event_line(
    event: &Event,
    painter: &Painter,
    now: DateTime<Utc>,
    indent: usize,
    service_width: usize,
) -> String {
    let tone = event_tone(event);
    let style = tone_style(tone);
    let head = format!(
        "[{}] {} {}",
        time::clock(event.timestamp, now),
        tone.symbol(),
        pad(&event.event_type, EVENT_TYPE_WIDTH)
    );
    let service = pad(&event.service, service_width);
    let used = indent + width(&head) + 1 + width(&service) + 1;
    let rest = painter.fit(&event_facts(event).join(" · "), used);
    let line = format!(
        "{} {} {}",
        painter.paint(&head, style),
        service,
        painter.paint(&rest, Style::new().dimmed())
    );
    format!("{}\n", line.trim_end())
}

/// What else an event says, most telling first.
pub fn event_facts(event: &Event) -> Vec<String> {
    let mut facts = Vec::new();
    if let Some(container) = event.container.as_ref().filter(|c| **c != event.service) {
        facts.push(format!("container {container}"));
    }
    if let Some(code) = event.exit_code {
        facts.push(format!("exit {code}"));
    }
    if let Some(detail) = event.detail.as_ref().filter(|d| !d.is_empty()) {
        facts.push(detail.clone());
    }
    if let Some(component) = &event.component {
        facts.push(format!("component {component}"));
    }
    facts
}

pub fn events(events: &[Event], painter: &Painter, now: DateTime<Utc>) -> String {
    if events.is_empty() {
        return "no events yet\n".into();
    }
    events_aligned(events, painter, now, service_width(events))
}

/// Events, one per line, with the service column `service_width` wide.
pub fn events_aligned(
    events: &[Event],
    painter: &Painter,
    now: DateTime<Utc>,
    service_width: usize,
) -> String {
    events
        .iter()
        .map(|event| event_line(event, painter, now, 0, service_width))
        .collect()
}

/// `2 (1 critical, 1 warning)`, or a green `none`.
pub fn issue_summary(issues: &[Issue], painter: &Painter) -> String {
    if issues.is_empty() {
        return painter.paint("none", fg(AnsiColor::Green));
    }
    let mut parts = Vec::new();
    for severity in [Severity::Critical, Severity::Warning, Severity::Info] {
        let count = issues.iter().filter(|i| i.severity == severity).count();
        if count > 0 {
            parts.push(painter.paint(
                &format!("{count} {}", severity.as_str()),
                severity_style(severity),
            ));
        }
    }
    format!("{} ({})", issues.len(), parts.join(", "))
}

/// An issue in two lines: what is wrong, then what to do about it.
pub fn issue_block(issue: &Issue, painter: &Painter, now: DateTime<Utc>, indent: usize) -> String {
    let (symbol, label) = severity_label(issue.severity);
    let style = if issue.state == IssueState::Resolved {
        Style::new().dimmed()
    } else {
        severity_style(issue.severity)
    };
    let margin = " ".repeat(indent);
    let head = format!("{symbol} {}", pad(label, 8));
    let place = if issue.subject.is_empty() || issue.subject == issue.service {
        issue.service.clone()
    } else {
        format!("{}/{}", issue.service, issue.subject)
    };
    let mut when = if issue.count > 1 {
        format!(
            "×{} since {}",
            issue.count,
            time::clock(issue.first_seen, now)
        )
    } else {
        format!("since {}", time::clock(issue.first_seen, now))
    };
    if let (IssueState::Resolved, Some(at)) = (issue.state, issue.resolved_at) {
        when = format!("resolved {}", time::clock(at, now));
    }
    // Both lines wrap rather than cut: the recommendation is the point of the listing.
    let first = format!("{head} {place} {}  ", issue.kind.as_str());
    let message = painter.wrap(
        &format!("{} ({when})", issue.message),
        indent + width(&first),
        indent + 4,
    );
    let recommendation = painter.wrap(&issue.recommendation, indent + 6, indent + 6);
    format!(
        "{margin}{} {} {}  {}\n{margin}    {} {}\n",
        painter.paint(&head, style),
        painter.paint(&place, Style::new().bold()),
        issue.kind.as_str(),
        message,
        painter.paint("→", fg(AnsiColor::Cyan)),
        recommendation,
    )
}

pub fn issues(issues: &[Issue], painter: &Painter, now: DateTime<Utc>) -> String {
    if issues.is_empty() {
        return "no issues\n".into();
    }
    let mut out = String::new();
    for issue in issues {
        out.push_str(&issue_block(issue, painter, now, 0));
    }
    out
}

#[cfg(test)]
mod tests;
