//! The curator's answers for people: incidents as a table or one in full, and silences.

use anstyle::{AnsiColor, Style};
use chrono::{DateTime, Utc};
use obs_model::{Incident, IncidentState, Silence, SilenceState};

use super::table::{pad, width, Cell, Table};
use super::tone::severity_label;
use super::{fg, severity_style, time, Painter};
use crate::cli::values::matcher_text;

/// One incident a line, as they come (the client sorts them worst first). The id is printed
/// whole: it is what `ack`, `resolve` and `incident` take (a unique prefix works too).
pub fn incidents(incidents: &[Incident], painter: &Painter, now: DateTime<Utc>) -> String {
    let marked = incidents.iter().any(|i| !marks(i).is_empty());
    let mut header = vec![
        "ID",
        "SEVERITY",
        "STATE",
        "SERVICE",
        "COUNT",
        "AGE",
        "LAST SEEN",
    ];
    if marked {
        header.push("MARKS");
    }
    header.push("TITLE");
    let mut table = Table::new(&header);
    for incident in incidents {
        let (symbol, _) = severity_label(incident.severity);
        let resolved = incident.state == IncidentState::Resolved;
        let mut row = vec![
            Cell::styled(incident.id.to_string(), Style::new().dimmed()),
            Cell::styled(
                format!("{symbol} {}", incident.severity.as_str()),
                if resolved {
                    Style::new().dimmed()
                } else {
                    severity_style(incident.severity)
                },
            ),
            Cell::styled(incident.state.as_str(), state_style(incident.state)),
            Cell::plain(&incident.service),
            Cell::plain(incident.count.to_string()),
            Cell::plain(time::age(incident.first_seen, now)),
            Cell::plain(time::age(incident.last_seen, now)),
        ];
        if marked {
            row.push(Cell::styled(
                marks(incident).join(","),
                fg(AnsiColor::Magenta),
            ));
        }
        row.push(Cell::plain(&incident.title));
        table.row(row);
    }
    table.render(painter, 0)
}

fn state_style(state: IncidentState) -> Style {
    match state {
        IncidentState::Open => fg(AnsiColor::Red),
        IncidentState::Acknowledged => fg(AnsiColor::Yellow),
        IncidentState::Resolved => fg(AnsiColor::Green),
    }
}

/// What holds an incident's notifications back.
fn marks(incident: &Incident) -> Vec<&'static str> {
    let mut marks = Vec::new();
    if incident.flapping {
        marks.push("flapping");
    }
    if incident.silenced.is_some() {
        marks.push("silenced");
    }
    marks
}

/// Label-value lines, the values lined up and wrapped under each other.
struct Fields<'a> {
    painter: &'a Painter,
    lines: String,
}

const LABEL_WIDTH: usize = 14;

impl Fields<'_> {
    fn add(&mut self, label: &str, value: &str) {
        let indent = 2 + LABEL_WIDTH;
        let value = self.painter.wrap(value, indent, indent);
        self.lines.push_str(&format!(
            "  {}{value}\n",
            self.painter
                .paint(&pad(label, LABEL_WIDTH), Style::new().dimmed())
        ));
    }
}

/// One incident in full: what it is, its lifecycle, what to do, and every fact.
pub fn incident(incident: &Incident, painter: &Painter, now: DateTime<Utc>) -> String {
    let (symbol, label) = severity_label(incident.severity);
    let head = format!("{symbol} {label}");
    let mut out = format!(
        "{}  {}\n",
        painter.paint(&head, severity_style(incident.severity)),
        painter.wrap(&incident.title, width(&head) + 2, 4)
    );
    let mut fields = Fields {
        painter,
        lines: String::new(),
    };
    fields.add("id", &incident.id.to_string());
    fields.add("state", &lifecycle(incident, now));
    let mut place = format!("{} · {}", incident.service, incident.kind.as_str());
    if !incident.subject.is_empty() && incident.subject != incident.service {
        place.push_str(&format!(" · {}", incident.subject));
    }
    place.push_str(&format!(" (from {})", incident.source.as_str()));
    fields.add("what", &place);
    let mut seen = format!(
        "×{} since {} ({}), last {} ({})",
        incident.count,
        time::clock(incident.first_seen, now),
        time::age(incident.first_seen, now),
        time::clock(incident.last_seen, now),
        time::age(incident.last_seen, now)
    );
    if incident.reopened > 0 {
        seen.push_str(&format!("; reopened {}×", incident.reopened));
    }
    fields.add("seen", &seen);
    if incident.flapping {
        fields.add(
            "flapping",
            "reopens too often lately; changes are not notified",
        );
    }
    if let Some(silence) = incident.silenced {
        fields.add(
            "silenced",
            &format!("by silence {silence}; changes are not notified"),
        );
    }
    fields.add("message", &incident.message);
    let mut out_fields = fields.lines;
    out_fields.push_str(&format!(
        "  {} {}\n",
        painter.paint("→", fg(AnsiColor::Cyan)),
        painter.wrap(&incident.recommendation, 4, 4)
    ));
    out.push_str(&out_fields);
    for (title, entries) in [
        (
            "facts",
            incident
                .facts
                .iter()
                .map(|(name, value)| (name.as_str(), fact_text(value)))
                .collect::<Vec<_>>(),
        ),
        (
            "labels",
            incident
                .labels
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone()))
                .collect(),
        ),
        (
            "annotations",
            incident
                .annotations
                .iter()
                .map(|(name, value)| (name.as_str(), value.clone()))
                .collect(),
        ),
    ] {
        if entries.is_empty() {
            continue;
        }
        out.push_str(&format!(
            "  {}\n",
            painter.paint(title, Style::new().bold())
        ));
        let mut table = Table::new(&["", ""]);
        for (name, value) in entries {
            table.row(vec![
                Cell::styled(name, Style::new().dimmed()),
                Cell::plain(value),
            ]);
        }
        // The empty header line is dropped: these are name-value pairs, not columns.
        out.extend(
            table
                .render(painter, 4)
                .lines()
                .skip(1)
                .map(|line| format!("{line}\n")),
        );
    }
    out
}

/// `acknowledged by alice 3m ago: "looking into it"`.
fn lifecycle(incident: &Incident, now: DateTime<Utc>) -> String {
    let by = |who: &Option<String>, at: Option<DateTime<Utc>>| {
        let mut text = String::new();
        if let Some(who) = who {
            text.push_str(&format!(" by {who}"));
        }
        if let Some(at) = at {
            text.push_str(&format!(" {}", time::age(at, now)));
        }
        text
    };
    let mut text = match incident.state {
        IncidentState::Open => "open".to_string(),
        IncidentState::Acknowledged => format!(
            "acknowledged{}",
            by(&incident.acknowledged_by, incident.acknowledged_at)
        ),
        IncidentState::Resolved => format!(
            "resolved{}",
            by(&incident.resolved_by, incident.resolved_at)
        ),
    };
    if let Some(comment) = &incident.comment {
        text.push_str(&format!(": \"{comment}\""));
    }
    text
}

/// A fact as people read it: strings without their quotes.
fn fact_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `acknowledged 01J… api-1 killed: out of memory`, after `ack` or `resolve`.
pub fn incident_changed(incident: &Incident, painter: &Painter) -> String {
    format!(
        "{} {} ({}) {}\n",
        painter.paint(incident.state.as_str(), state_style(incident.state)),
        incident.id,
        incident.service,
        incident.title
    )
}

pub fn silences(silences: &[Silence], painter: &Painter, now: DateTime<Utc>) -> String {
    let mut table = Table::new(&["ID", "STATE", "ENDS", "MATCHERS", "BY", "COMMENT"]);
    for silence in silences {
        let (state, style) = match silence.state {
            SilenceState::Active => ("active", fg(AnsiColor::Magenta)),
            SilenceState::Pending => ("pending", Style::new().dimmed()),
        };
        table.row(vec![
            Cell::styled(silence.id.to_string(), Style::new().dimmed()),
            Cell::styled(state, style),
            Cell::plain(format!(
                "{} ({})",
                time::until(silence.ends_at, now),
                time::clock(silence.ends_at, now)
            )),
            Cell::plain(matchers(silence)),
            Cell::plain(silence.created_by.as_deref().unwrap_or("-")),
            Cell::plain(&silence.comment),
        ]);
    }
    table.render(painter, 0)
}

/// The matchers as they would be typed: `service="api" kind=~"oom.*"`.
pub fn matchers(silence: &Silence) -> String {
    silence
        .matchers
        .iter()
        .map(matcher_text)
        .collect::<Vec<_>>()
        .join(" ")
}

/// After `silence add` or `silence delete`: which one, what it matches, until when.
pub fn silence_changed(verb: &str, silence: &Silence, now: DateTime<Utc>) -> String {
    let until = match verb {
        "deleted" => String::new(),
        _ => format!(
            " until {} ({})",
            time::clock(silence.ends_at, now),
            time::until(silence.ends_at, now)
        ),
    };
    format!(
        "silence {} {verb}{until}: {}\n",
        silence.id,
        matchers(silence)
    )
}

#[cfg(test)]
mod tests;
