//! The planner's metrics, `planner_*`, in the role's registry.

use std::collections::HashMap;

use obs_core::prometheus::{IntCounter, IntCounterVec, IntGaugeVec, Opts};
use obs_core::Metrics;
use obs_model::{PlanState, Priority, StepStatus};

use crate::plans::Tally;

const STATES: [PlanState; 2] = [PlanState::Open, PlanState::Closed];
const PRIORITIES: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];
const OUTCOMES: [StepStatus; 3] = [
    StepStatus::Succeeded,
    StepStatus::Failed,
    StepStatus::Skipped,
];

#[derive(Clone)]
pub struct PlannerMetrics {
    pub plans: IntGaugeVec,
    pub incidents_received: IntCounter,
    pub incidents_ignored: IntCounter,
    pub remediations: IntCounterVec,
    pub state_save_failures: IntCounter,
}

fn status_label(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Pending => "pending",
        StepStatus::Succeeded => "succeeded",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

impl PlannerMetrics {
    pub fn register(metrics: &Metrics) -> anyhow::Result<Self> {
        let counter = |name: &str, help: &str| metrics.register(IntCounter::new(name, help)?);
        let registered = PlannerMetrics {
            plans: metrics.register(IntGaugeVec::new(
                Opts::new("planner_plans", "Plans kept, by state and priority."),
                &["state", "priority"],
            )?)?,
            incidents_received: counter(
                "planner_incidents_received_total",
                "Incident copies received on POST /v1/incidents.",
            )?,
            incidents_ignored: counter(
                "planner_incidents_ignored_total",
                "Incident copies no newer than the plan's (redeliveries, late arrivals).",
            )?,
            remediations: metrics.register(IntCounterVec::new(
                Opts::new(
                    "planner_remediations_total",
                    "Safe steps the planner ran or skipped itself (AUTO_REMEDIATE=1), by outcome.",
                ),
                &["outcome"],
            )?)?,
            state_save_failures: counter(
                "planner_state_save_failures_total",
                "Remediation decisions or outcomes that could not be saved (a step left waiting is skipped within the cooldown, or tried again).",
            )?,
        };
        registered.set_plans(&HashMap::new());
        for outcome in OUTCOMES {
            registered
                .remediations
                .with_label_values(&[status_label(outcome)])
                .inc_by(0);
        }
        Ok(registered)
    }

    pub fn set_plans(&self, counts: &HashMap<(PlanState, Priority), i64>) {
        for state in STATES {
            for priority in PRIORITIES {
                self.plans
                    .with_label_values(&[state.as_str(), priority.as_str()])
                    .set(counts.get(&(state, priority)).copied().unwrap_or(0));
            }
        }
    }

    /// Move the gauge by what a commit changed.
    pub fn add_plans(&self, changes: &HashMap<(PlanState, Priority), i64>) {
        for (&(state, priority), &by) in changes {
            if by != 0 {
                self.plans
                    .with_label_values(&[state.as_str(), priority.as_str()])
                    .add(by);
            }
        }
    }

    pub fn record(&self, tally: &Tally) {
        self.incidents_received.inc_by(tally.received);
        self.incidents_ignored.inc_by(tally.ignored);
    }

    pub fn remediation(&self, status: StepStatus) {
        self.remediations
            .with_label_values(&[status_label(status)])
            .inc();
    }
}
