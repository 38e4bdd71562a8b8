//! The watcher's metrics: the seed's `monitoring_*` names, kept for existing dashboards and
//! alerts, and `watcher_*` for what the seeds did not have.
//!
//! The per-service gauges (`monitoring_service_status`, `monitoring_service_last_seen_seconds`)
//! are not stored as gauges at all: a collector reads them from the heartbeat table at scrape
//! time. A heartbeat then costs no metric update, and a service's series exist exactly as long
//! as the service does.

use std::sync::{Arc, Mutex};

use obs_core::prometheus::core::{Collector, Desc};
use obs_core::prometheus::proto::{Gauge, LabelPair, Metric, MetricFamily, MetricType};
use obs_core::prometheus::{
    Gauge as GaugeValue, GaugeVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
};
use obs_core::{BoundedCounterVec, Metrics};
use obs_model::ServiceState;

use crate::heartbeats::{self, Tracker};

#[derive(Clone)]
pub struct WatcherMetrics {
    /// Labelled by what clients send: bounded (MAX_EVENT_SERIES each).
    pub events: BoundedCounterVec,
    pub task_failures: BoundedCounterVec,
    pub task_successes: BoundedCounterVec,
    pub heartbeats: IntCounter,
    pub issues_open: IntGaugeVec,
    pub container_restarts: IntCounterVec,
    pub container_oom_kills: IntCounterVec,
    pub docker_connected: IntGauge,
    pub docker_connect_failures: IntCounter,
    pub kubernetes_connected: IntGauge,
    pub kubernetes_failures: IntCounter,
    pub probe_success: IntGaugeVec,
    pub probe_duration: GaugeVec,
    pub probes: IntCounterVec,
    pub host_load1: GaugeValue,
    pub host_load5: GaugeValue,
    pub host_load15: GaugeValue,
    pub host_memory_used_ratio: GaugeValue,
    pub host_disk_used_ratio: GaugeValue,
    pub state_save_failures: IntCounter,
}

impl WatcherMetrics {
    pub fn register(
        metrics: &Metrics,
        tracker: Arc<Mutex<Tracker>>,
        max_event_series: usize,
    ) -> anyhow::Result<Self> {
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            metrics.register(IntCounterVec::new(Opts::new(name, help), labels)?)
        };
        let bounded = |name: &str, help: &str, labels: &[&str]| -> anyhow::Result<_> {
            Ok(BoundedCounterVec::new(
                counter_vec(name, help, labels)?,
                max_event_series,
            ))
        };
        let gauge = |name: &str, help: &str| metrics.register(GaugeValue::new(name, help)?);
        let registered = WatcherMetrics {
            events: bounded(
                "monitoring_events_total",
                "Events recorded, by service and event type.",
                &["service", "event_type"],
            )?,
            task_failures: bounded(
                "monitoring_task_failures_total",
                "Events of type failure that named a component.",
                &["service", "component"],
            )?,
            task_successes: bounded(
                "monitoring_task_success_total",
                "Events of type success that named a component.",
                &["service", "component"],
            )?,
            heartbeats: metrics.register(IntCounter::new(
                "watcher_heartbeats_total",
                "Heartbeats and pings received.",
            )?)?,
            issues_open: metrics.register(IntGaugeVec::new(
                Opts::new("watcher_issues_open", "Open issues, by kind and severity."),
                &["kind", "severity"],
            )?)?,
            container_restarts: counter_vec(
                "watcher_container_restarts_total",
                "Container starts after the first one the watcher saw.",
                &["container"],
            )?,
            container_oom_kills: counter_vec(
                "watcher_container_oom_kills_total",
                "Containers killed for running out of memory.",
                &["container"],
            )?,
            docker_connected: metrics.register(IntGauge::new(
                "watcher_docker_connected",
                "1 while the Docker engine's event stream is followed.",
            )?)?,
            docker_connect_failures: metrics.register(IntCounter::new(
                "watcher_docker_connect_failures_total",
                "Attempts to reach the Docker engine that failed (DOCKER_HOST).",
            )?)?,
            kubernetes_connected: metrics.register(IntGauge::new(
                "watcher_kubernetes_connected",
                "1 while every Kubernetes pod watch is listed and following its stream.",
            )?)?,
            kubernetes_failures: metrics.register(IntCounter::new(
                "watcher_kubernetes_failures_total",
                "Failed Kubernetes lists and watches (refused, cut, 410 Gone, 403) and unusable configurations; each is retried with backoff.",
            )?)?,
            probe_success: metrics.register(IntGaugeVec::new(
                Opts::new(
                    "watcher_probe_success",
                    "1 if the last HTTP probe of the target answered 2xx in time.",
                ),
                &["target"],
            )?)?,
            probe_duration: metrics.register(GaugeVec::new(
                Opts::new(
                    "watcher_probe_duration_seconds",
                    "How long the last HTTP probe of the target took.",
                ),
                &["target"],
            )?)?,
            probes: counter_vec(
                "watcher_probes_total",
                "HTTP probes made, by target and result (success, failure).",
                &["target", "result"],
            )?,
            host_load1: gauge("watcher_host_load1", "Host load average over 1 minute.")?,
            host_load5: gauge("watcher_host_load5", "Host load average over 5 minutes.")?,
            host_load15: gauge("watcher_host_load15", "Host load average over 15 minutes.")?,
            host_memory_used_ratio: gauge(
                "watcher_host_memory_used_ratio",
                "Host memory in use (1 - MemAvailable / MemTotal).",
            )?,
            host_disk_used_ratio: gauge(
                "watcher_host_disk_used_ratio",
                "Used share of the filesystem at HOST_DISK_PATH, as df counts it.",
            )?,
            state_save_failures: metrics.register(IntCounter::new(
                "watcher_state_save_failures_total",
                "Failed commits of the watcher's own changes: heartbeats written behind (retried), checker passes (retried), detections (logged).",
            )?)?,
        };
        metrics.register(ServiceGauges::new(tracker)?)?;
        Ok(registered)
    }
}

/// `monitoring_service_status{service}` and `monitoring_service_last_seen_seconds{service}`,
/// read from the heartbeat table at scrape time.
#[derive(Clone)]
pub struct ServiceGauges {
    tracker: Arc<Mutex<Tracker>>,
    descs: Vec<Desc>,
}

const STATUS: &str = "monitoring_service_status";
const STATUS_HELP: &str = "1 while the service is up (heartbeats arriving), 0 when down.";
const LAST_SEEN: &str = "monitoring_service_last_seen_seconds";
const LAST_SEEN_HELP: &str = "Unix time of the service's last heartbeat.";

impl ServiceGauges {
    pub fn new(tracker: Arc<Mutex<Tracker>>) -> anyhow::Result<Self> {
        let desc = |name: &str, help: &str| {
            Desc::new(
                name.into(),
                help.into(),
                vec!["service".into()],
                Default::default(),
            )
        };
        Ok(ServiceGauges {
            tracker,
            descs: vec![desc(STATUS, STATUS_HELP)?, desc(LAST_SEEN, LAST_SEEN_HELP)?],
        })
    }
}

impl Collector for ServiceGauges {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // The lock is held for the copy only, a chunk at a time; the 200,000 samples of
        // 100,000 services (what took heartbeat p99 to 1.4 s while two clients looped on
        // /metrics) are built after.
        Self::families(heartbeats::snapshot(&self.tracker))
    }
}

impl ServiceGauges {
    /// The two families, built from a copy of the table.
    fn families(snapshot: heartbeats::Snapshot) -> Vec<MetricFamily> {
        let mut status = family(STATUS, STATUS_HELP);
        let mut last_seen = family(LAST_SEEN, LAST_SEEN_HELP);
        status.mut_metric().reserve(snapshot.services.len());
        last_seen.mut_metric().reserve(snapshot.services.len());
        for (service, tracked) in &snapshot.services {
            let up = if tracked.state == ServiceState::Up {
                1.0
            } else {
                0.0
            };
            status.mut_metric().push(sample(service, up));
            let seen = tracked.last_seen.timestamp_millis() as f64 / 1000.0;
            last_seen.mut_metric().push(sample(service, seen));
        }
        vec![status, last_seen]
    }
}

fn family(name: &str, help: &str) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(name.into());
    family.set_help(help.into());
    family.set_field_type(MetricType::GAUGE);
    family
}

fn sample(service: &str, value: f64) -> Metric {
    let mut label = LabelPair::default();
    label.set_name("service".into());
    label.set_value(service.into());
    let mut gauge = Gauge::default();
    gauge.set_value(value);
    let mut metric = Metric::from_gauge(gauge);
    metric.set_label(vec![label]);
    metric
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use chrono::{DateTime, Utc};

    const FLEET: usize = 100_000;

    fn fleet(wall: DateTime<Utc>) -> (Arc<Mutex<Tracker>>, Vec<String>) {
        let mut tracker = Tracker::new(FLEET, Duration::from_secs(30));
        let names: Vec<String> = (0..FLEET).map(|n| format!("edge-cam{n:06}")).collect();
        for name in &names {
            tracker
                .beat(name, Some("serving"), None, wall)
                .expect("room for the fleet");
        }
        (Arc::new(Mutex::new(tracker)), names)
    }

    /// Heartbeats' waits (sorted) while two threads loop on `render`, for at least `span` and
    /// `beats` beats.
    fn beats_while_rendering(
        tracker: &Arc<Mutex<Tracker>>,
        names: &[String],
        wall: DateTime<Utc>,
        (span, beats): (Duration, usize),
        render: impl Fn() -> usize + Send + Clone + 'static,
    ) -> (Vec<Duration>, usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let render = render.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut renders = 0;
                    while !stop.load(Ordering::Relaxed) {
                        renders += usize::from(render() == 2 * FLEET);
                        // Looping, but leaving the 2 cores of CI a moment for the beats.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    renders
                })
            })
            .collect();
        let mut waits = Vec::new();
        let deadline = Instant::now() + span;
        while Instant::now() < deadline || waits.len() < beats {
            let started = Instant::now();
            let beat =
                tracker
                    .lock()
                    .expect("lock")
                    .beat(&names[waits.len() % FLEET], None, None, wall);
            waits.push(started.elapsed());
            assert!(beat.is_ok());
            std::thread::sleep(Duration::from_micros(500));
        }
        stop.store(true, Ordering::Relaxed);
        let renders = readers
            .into_iter()
            .map(|reader| reader.join().expect("reader"))
            .sum();
        waits.sort();
        (waits, renders)
    }

    fn p99(waits: &[Duration]) -> Duration {
        waits[waits.len() * 99 / 100]
    }

    /// Issue 18: with 100,000 services, two clients looping on `/metrics` took heartbeat p99
    /// from 2 ms to 1.4 s, because every sample was built under the table's lock. Now the lock
    /// is held for a chunk of the copy at a time, and beats go on while samples are built.
    /// Compared under the same load with a render that holds the lock throughout (the old
    /// way), so the test measures the lock, not the speed of the machine.
    #[test]
    fn heartbeats_do_not_wait_for_metrics_renders() {
        let wall = Utc::now();
        let (tracker, names) = fleet(wall);
        let gauges = ServiceGauges::new(tracker.clone()).expect("descriptors");
        let samples = |families: Vec<MetricFamily>| -> usize {
            families
                .iter()
                .map(|family| family.get_metric().len())
                .sum()
        };

        let started = Instant::now();
        assert_eq!(samples(gauges.collect()), 2 * FLEET);
        let render = started.elapsed();
        let started = Instant::now();
        let mut chunk = Vec::new();
        let next =
            tracker
                .lock()
                .expect("lock")
                .copy_into(0, heartbeats::SNAPSHOT_CHUNK, &mut chunk);
        let held = started.elapsed();
        assert_eq!(next, heartbeats::SNAPSHOT_CHUNK);
        assert_eq!(
            chunk.len(),
            heartbeats::SNAPSHOT_CHUNK,
            "one chunk per turn of the lock"
        );
        let copy = heartbeats::snapshot(&tracker);
        let mut copied: Vec<&str> = copy.services.iter().map(|(name, _)| &**name).collect();
        copied.sort_unstable();
        copied.dedup();
        assert_eq!(copied.len(), FLEET, "every service once");

        let span = render.max(Duration::from_millis(200)) * 5;
        let chunked = {
            let gauges = gauges.clone();
            move || samples(gauges.collect())
        };
        let (waits, renders) = beats_while_rendering(&tracker, &names, wall, (span, 200), chunked);
        assert!(renders >= 2, "the readers rendered while beats went on");
        // The old way: the whole copy and every sample built with the lock held.
        let locked = {
            let tracker = tracker.clone();
            move || {
                let table = tracker.lock().expect("lock");
                let mut all = Vec::new();
                table.copy_into(0, usize::MAX, &mut all);
                let families = ServiceGauges::families(heartbeats::Snapshot { services: all });
                let count = samples(families);
                drop(table);
                count
            }
        };
        // Each beat waits about a render here: a few are enough.
        let (held_waits, held_renders) =
            beats_while_rendering(&tracker, &names, wall, (span / 2, 10), locked);
        eprintln!(
            "render {render:?}, one chunk under the lock {held:?}; heartbeat waits while two \
             threads render: chunked p99 {:?} max {:?} ({renders} renders), lock held \
             throughout p99 {:?} max {:?} ({held_renders} renders)",
            p99(&waits),
            waits[waits.len() - 1],
            p99(&held_waits),
            held_waits[held_waits.len() - 1],
        );
        assert!(held_renders >= 2);
        assert!(
            p99(&waits) * 3 < p99(&held_waits),
            "chunked p99 {:?} is not well under the p99 of a lock held throughout {:?}",
            p99(&waits),
            p99(&held_waits)
        );
    }
}
