//! The curator's metrics, `curator_*`, in the role's registry.

use obs_core::prometheus::{IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts};
use obs_core::Metrics;
use obs_model::{IncidentChange, Severity};

use crate::incidents::Applied;

#[derive(Clone)]
pub struct CuratorMetrics {
    pub incidents_open: IntGaugeVec,
    pub issues_received: IntCounter,
    pub issues_deduplicated: IntCounter,
    pub alerts_received: IntCounter,
    pub alerts_deduplicated: IntCounter,
    pub signals_refused: IntCounter,
    pub changes: IntCounterVec,
    pub suppressed: IntCounterVec,
    pub silences: IntGauge,
    pub goals_missing: IntGauge,
    pub goals_check_failures: IntCounter,
    pub state_save_failures: IntCounter,
}

impl CuratorMetrics {
    pub fn register(metrics: &Metrics) -> anyhow::Result<Self> {
        let counter = |name: &str, help: &str| metrics.register(IntCounter::new(name, help)?);
        let registered = CuratorMetrics {
            incidents_open: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "curator_incidents_open",
                    "Unresolved (open or acknowledged) incidents, by severity.",
                ),
                &["severity"],
            )?)?,
            issues_received: counter(
                "curator_issues_received_total",
                "Issues received on POST /v1/issues.",
            )?,
            issues_deduplicated: counter(
                "curator_issues_deduplicated_total",
                "Issues folded into an incident that was already open, or already applied (redeliveries).",
            )?,
            alerts_received: counter(
                "curator_alerts_received_total",
                "Alerts received on POST /v1/alertmanager.",
            )?,
            alerts_deduplicated: counter(
                "curator_alerts_deduplicated_total",
                "Alerts folded into an incident that was already open, or already applied.",
            )?,
            signals_refused: counter(
                "curator_signals_refused_total",
                "Issues and alerts refused because MAX_INCIDENTS unresolved incidents exist.",
            )?,
            changes: metrics.register(IntCounterVec::new(
                Opts::new(
                    "curator_incident_changes_total",
                    "Notable incident changes (forwarded downstream), by change.",
                ),
                &["change"],
            )?)?,
            suppressed: metrics.register(IntCounterVec::new(
                Opts::new(
                    "curator_notifications_suppressed_total",
                    "Changes people would have been notified of, held back, by reason (silenced, flapping).",
                ),
                &["reason"],
            )?)?,
            silences: metrics.register(IntGauge::new(
                "curator_silences",
                "Silences that have not ended (active or pending).",
            )?)?,
            goals_missing: metrics.register(IntGauge::new(
                "curator_goals_missing",
                "Expected services the watcher did not know at the last check.",
            )?)?,
            goals_check_failures: counter(
                "curator_goals_check_failures_total",
                "Goal checks that could not ask the watcher (WATCHER_URL).",
            )?,
            state_save_failures: counter(
                "curator_state_save_failures_total",
                "Periodic saves of incident repeats that failed (retried at the next interval).",
            )?,
        };
        for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
            registered
                .incidents_open
                .with_label_values(&[severity.as_str()])
                .set(0);
        }
        for reason in ["silenced", "flapping"] {
            registered.suppressed.with_label_values(&[reason]).inc_by(0);
        }
        Ok(registered)
    }

    /// Count what an operation did (the open gauge is set by [`Self::set_open`]).
    pub fn record(&self, applied: &Applied) {
        self.suppressed
            .with_label_values(&["silenced"])
            .inc_by(applied.suppressed.silenced);
        self.suppressed
            .with_label_values(&["flapping"])
            .inc_by(applied.suppressed.flapping);
        self.signals_refused.inc_by(applied.tally.refused);
        for incident in &applied.notable {
            self.change(incident.change).inc();
        }
    }

    fn change(&self, change: IncidentChange) -> IntCounter {
        self.changes.with_label_values(&[change.as_str()])
    }

    pub fn set_open(&self, counts: [(Severity, usize); 3]) {
        for (severity, count) in counts {
            self.incidents_open
                .with_label_values(&[severity.as_str()])
                .set(count as i64);
        }
    }
}
