//! The report written out for people: [`html`] (the status page) and [`markdown`].

pub mod html;
pub mod markdown;

use obs_model::{Severity, StepStatus};

use crate::uptime::Slot;

/// A bar as text: one character per slot.
pub fn bar_text(slots: &[Slot]) -> String {
    slots
        .iter()
        .map(|slot| match slot {
            Slot::Up => '█',
            Slot::Degraded => '▒',
            Slot::Down => '░',
        })
        .collect()
}

pub fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::Critical => "CRITICAL",
        Severity::Warning => "WARNING",
        Severity::Info => "INFO",
    }
}

pub fn step_status(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}
