//! The synthesizer's metrics, `synthesizer_*`, in the role's registry. Whether a webhook
//! took a message is the outbox's to count: `outbox_delivered_total`, `outbox_retries_total`
//! and `outbox_dropped_total` with `destination="webhook-<kind>-<hash>"`.

use obs_core::prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGaugeVec, Opts,
};
use obs_core::Metrics;
use obs_model::Severity;

use crate::config::WebhookKind;

#[derive(Clone)]
pub struct SynthesizerMetrics {
    pub plans_received: IntCounter,
    pub plans_stale: IntCounter,
    pub incidents_open: IntGaugeVec,
    /// Messages handed to a webhook's outbox, by webhook kind.
    pub notifications: IntCounterVec,
    /// Messages that could not be handed to an outbox (retried at the next pass).
    pub notification_failures: IntCounterVec,
    pub report_seconds: Histogram,
    pub peer_failures: IntCounterVec,
    pub digests: IntCounter,
    pub digest_failures: IntCounter,
    pub state_save_failures: IntCounter,
}

impl SynthesizerMetrics {
    pub fn register(metrics: &Metrics) -> anyhow::Result<Self> {
        let counter = |name: &str, help: &str| metrics.register(IntCounter::new(name, help)?);
        let by_kind = |name: &str, help: &str| {
            metrics.register(IntCounterVec::new(Opts::new(name, help), &["kind"])?)
        };
        let registered = SynthesizerMetrics {
            plans_received: counter(
                "synthesizer_plans_received_total",
                "Plans received on POST /v1/plans.",
            )?,
            plans_stale: counter(
                "synthesizer_plans_stale_total",
                "Plans ignored because a copy with the same or a higher revision was already held.",
            )?,
            incidents_open: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "synthesizer_incidents_open",
                    "Incidents with an open plan, by severity.",
                ),
                &["severity"],
            )?)?,
            notifications: by_kind(
                "synthesizer_notifications_total",
                "Notification messages handed to a webhook's outbox, by webhook kind (slack, generic).",
            )?,
            notification_failures: by_kind(
                "synthesizer_notification_failures_total",
                "Notification messages that could not be queued for a webhook (retried), by webhook kind.",
            )?,
            report_seconds: metrics.register(Histogram::with_opts(
                HistogramOpts::new(
                    "synthesizer_report_seconds",
                    "Time to compose a report or the status page, asking the peers included.",
                )
                .buckets(vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
            )?)?,
            peer_failures: metrics.register(IntCounterVec::new(
                Opts::new(
                    "synthesizer_peer_failures_total",
                    "Reports composed without a peer's facts, by peer (watcher, archivist).",
                ),
                &["peer"],
            )?)?,
            digests: counter(
                "synthesizer_digests_total",
                "Digest reports handed to the archivist's outbox.",
            )?,
            digest_failures: counter(
                "synthesizer_digest_failures_total",
                "Digest reports that could not be queued for the archivist.",
            )?,
            state_save_failures: counter(
                "synthesizer_state_save_failures_total",
                "Batches of plans whose commit failed (answered 503, nothing stored).",
            )?,
        };
        for severity in [Severity::Info, Severity::Warning, Severity::Critical] {
            registered
                .incidents_open
                .with_label_values(&[severity.as_str()])
                .set(0);
        }
        for kind in [WebhookKind::Slack, WebhookKind::Generic] {
            registered
                .notifications
                .with_label_values(&[kind.as_str()])
                .inc_by(0);
            registered
                .notification_failures
                .with_label_values(&[kind.as_str()])
                .inc_by(0);
        }
        for peer in ["watcher", "archivist"] {
            registered
                .peer_failures
                .with_label_values(&[peer])
                .inc_by(0);
        }
        Ok(registered)
    }

    pub fn set_open(&self, counts: [(Severity, usize); 3]) {
        for (severity, count) in counts {
            self.incidents_open
                .with_label_values(&[severity.as_str()])
                .set(count as i64);
        }
    }
}
