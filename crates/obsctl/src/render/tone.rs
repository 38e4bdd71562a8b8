//! What an event or an issue looks like, decided once for the text output and the TUI alike:
//! green for a start, red for a death or an OOM kill, yellow for a stop, cyan for a restart
//! (the original TUI's colours), and a symbol so the meaning survives without colour.

use obs_model::{Event, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// Started, recovered, succeeded.
    Good,
    /// Died, killed, out of memory, failed, down, unhealthy.
    Bad,
    /// Stopped or paused on purpose.
    Stopped,
    /// Restarted.
    Restarted,
    /// Anything else worth listing.
    Neutral,
}

impl Tone {
    pub fn symbol(self) -> &'static str {
        match self {
            Tone::Good => "✓",
            Tone::Bad => "✕",
            Tone::Stopped => "■",
            Tone::Restarted => "↻",
            Tone::Neutral => "•",
        }
    }
}

/// The tone of an event, from its type (and, for a health check, its result).
pub fn event_tone(event: &Event) -> Tone {
    let event_type = event.event_type.to_ascii_lowercase();
    let detail = event.detail.as_deref().unwrap_or("").to_ascii_lowercase();
    match event_type.as_str() {
        "start" | "started" | "unpause" | "up" | "recovered" | "recovery" | "success" | "ok"
        | "healthy" | "resolved" => Tone::Good,
        "die" | "died" | "oom" | "oom_killed" | "kill" | "killed" | "crash" | "crashed"
        | "failure" | "failed" | "fail" | "error" | "down" | "unhealthy" | "probe_failed"
        | "heartbeat_missed" => Tone::Bad,
        "stop" | "stopped" | "pause" | "paused" | "destroy" | "warning" => Tone::Stopped,
        "restart" | "restarted" | "restarting" | "restart_loop" => Tone::Restarted,
        "health_status" if detail.contains("unhealthy") => Tone::Bad,
        "health_status" if detail.contains("healthy") => Tone::Good,
        _ if event_type.starts_with("health_status: unhealthy") => Tone::Bad,
        _ if event_type.starts_with("health_status: healthy") => Tone::Good,
        _ => Tone::Neutral,
    }
}

/// How a severity is marked: symbol and upper-case label.
pub fn severity_label(severity: Severity) -> (&'static str, &'static str) {
    match severity {
        Severity::Critical => ("✕", "CRITICAL"),
        Severity::Warning => ("▲", "WARNING"),
        Severity::Info => ("●", "INFO"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_model::EventSource;

    fn event(event_type: &str, detail: Option<&str>) -> Event {
        Event {
            id: ulid::Ulid::new(),
            timestamp: chrono::Utc::now(),
            service: "api".into(),
            event_type: event_type.into(),
            source: EventSource::Docker,
            detail: detail.map(str::to_string),
            component: None,
            container: None,
            image: None,
            exit_code: None,
        }
    }

    #[test]
    fn the_original_colours_map_to_tones() {
        assert_eq!(event_tone(&event("start", None)), Tone::Good);
        assert_eq!(event_tone(&event("die", None)), Tone::Bad);
        assert_eq!(event_tone(&event("OOM", None)), Tone::Bad);
        assert_eq!(event_tone(&event("stop", None)), Tone::Stopped);
        assert_eq!(event_tone(&event("restart", None)), Tone::Restarted);
        assert_eq!(event_tone(&event("deploy", None)), Tone::Neutral);
    }

    #[test]
    fn health_checks_take_their_tone_from_the_result() {
        assert_eq!(
            event_tone(&event("health_status", Some("unhealthy"))),
            Tone::Bad
        );
        assert_eq!(
            event_tone(&event("health_status", Some("healthy"))),
            Tone::Good
        );
        assert_eq!(
            event_tone(&event("health_status: unhealthy", None)),
            Tone::Bad
        );
    }
}
