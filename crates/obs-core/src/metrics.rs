//! One registry per role, and the one way roles register metrics into it.
//!
//! A registry per role (not the process-global default) is what lets `obs-stack` run five
//! roles in one process, each `/metrics` showing only its own series with its own
//! `build_info{role}`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use prometheus::core::Collector;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Prometheus text exposition format 0.0.4.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Latency buckets in seconds, sub-millisecond first: most requests here take well under 1 ms.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    pub(crate) http: HttpMetrics,
    pub(crate) outbox: crate::outbox::OutboxMetrics,
}

/// The seed-compatible HTTP metrics, named `<METRICS_PREFIX>_…`.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    pub requests: IntCounterVec,
    pub duration: HistogramVec,
    pub in_flight: IntGauge,
}

impl Metrics {
    pub fn new(prefix: &str, role: &str) -> anyhow::Result<Self> {
        let registry = Registry::new();
        let metrics = Metrics {
            http: HttpMetrics {
                requests: IntCounterVec::new(
                    Opts::new(
                        format!("{prefix}_requests_total"),
                        "HTTP requests handled, by matched route template, method and status code.",
                    ),
                    &["route", "method", "code"],
                )?,
                duration: HistogramVec::new(
                    HistogramOpts::new(
                        format!("{prefix}_request_duration_seconds"),
                        "Time spent handling HTTP requests, by matched route template and method.",
                    )
                    .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                )?,
                in_flight: IntGauge::new(
                    format!("{prefix}_requests_in_flight"),
                    "HTTP requests being handled right now.",
                )?,
            },
            outbox: crate::outbox::OutboxMetrics::new()?,
            registry,
        };
        metrics.register(metrics.http.requests.clone())?;
        metrics.register(metrics.http.duration.clone())?;
        metrics.register(metrics.http.in_flight.clone())?;
        metrics.outbox.register(&metrics)?;

        let up = metrics.register(IntGauge::new(
            format!("{prefix}_up"),
            "1 while the service is running.",
        )?)?;
        up.set(1);
        let build_info = metrics.register(IntGaugeVec::new(
            Opts::new(
                format!("{prefix}_build_info"),
                "Always 1; the labels say which build is running.",
            ),
            &["role", "version", "revision"],
        )?)?;
        build_info
            .with_label_values(&[role, crate::VERSION, crate::REVISION])
            .set(1);
        metrics.registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(metrics)
    }

    /// Register a collector in this role's registry and hand it back for use.
    pub fn register<C: Collector + Clone + 'static>(&self, collector: C) -> anyhow::Result<C> {
        self.registry.register(Box::new(collector.clone()))?;
        Ok(collector)
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The registry in text format.
    pub fn render(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail on I/O; a collector error would be a bug worth seeing.
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut buffer) {
            tracing::error!(%error, "encoding metrics failed");
        }
        buffer
    }
}

/// A counter vector whose label values come from clients (an event's service and type):
/// at most `max_series` label sets. Past the bound, new label sets are counted under
/// [`OTHER_LABEL`] in every label, and a warning says so once, so no client can grow
/// `/metrics` (and memory) without bound.
#[derive(Clone)]
pub struct BoundedCounterVec {
    counters: IntCounterVec,
    known: Arc<Mutex<HashSet<Box<str>>>>,
    max_series: usize,
}

/// The label value that stands for every label set past a [`BoundedCounterVec`]'s bound.
pub const OTHER_LABEL: &str = "_other";

impl BoundedCounterVec {
    pub fn new(counters: IntCounterVec, max_series: usize) -> Self {
        BoundedCounterVec {
            counters,
            known: Arc::default(),
            max_series,
        }
    }

    pub fn inc(&self, labels: &[&str]) {
        // The unit separator cannot occur in the names callers validate.
        let key = labels.join("\u{1f}");
        let admitted = {
            let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
            if known.contains(key.as_str()) {
                true
            } else if known.len() < self.max_series {
                known.insert(key.into());
                true
            } else {
                false
            }
        };
        if admitted {
            self.counters.with_label_values(labels).inc();
            return;
        }
        let other = vec![OTHER_LABEL; labels.len()];
        let overflow = self.counters.with_label_values(&other);
        if overflow.get() == 0 {
            tracing::warn!(
                metric = %self.name(),
                max_series = self.max_series,
                "too many label sets; counting new ones under \"{OTHER_LABEL}\""
            );
        }
        overflow.inc();
    }

    /// The counter of one label set, as it stands (tests, reads).
    pub fn get(&self, labels: &[&str]) -> u64 {
        self.counters.with_label_values(labels).get()
    }

    fn name(&self) -> String {
        self.counters
            .desc()
            .first()
            .map(|desc| desc.fq_name.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_bound_new_label_sets_share_one_series() {
        let metrics = Metrics::new("t", "test").unwrap();
        let vec = IntCounterVec::new(Opts::new("events_total", "events"), &["a", "b"]).unwrap();
        let bounded = BoundedCounterVec::new(metrics.register(vec).unwrap(), 2);
        bounded.inc(&["x", "1"]);
        bounded.inc(&["y", "1"]);
        bounded.inc(&["x", "1"]);
        for index in 0..100 {
            bounded.inc(&["z", &index.to_string()]);
        }
        assert_eq!(bounded.get(&["x", "1"]), 2);
        assert_eq!(bounded.get(&["y", "1"]), 1);
        assert_eq!(bounded.get(&[OTHER_LABEL, OTHER_LABEL]), 100);
        let text = String::from_utf8(metrics.render()).unwrap();
        let series = text
            .lines()
            .filter(|l| l.starts_with("events_total{"))
            .count();
        assert_eq!(series, 3, "{text}");
    }
}
