//! The HTTP metrics' series of each request, resolved once per worker and path.
//!
//! Finding a request's series the plain way cost more than the rest of the middleware: actix
//! matches the path against every resource again to name the route template (and allocates
//! the name), and each `with_label_values` hashes the labels and takes the vector's lock. A
//! worker sees the same few paths over and over, so it keeps what it resolved:
//! - a small direct-mapped table from path to route, of [`PATH_SLOTS`] entries: a flood of
//!   random paths evicts entries, it cannot grow the table;
//! - per route template, the counter and histogram of each method and status seen. Templates
//!   are finite (anything unmatched is one route, `unmatched`), methods are folded into nine
//!   labels and statuses are three digits, so this is bounded too.
//!
//! One cache per worker (the middleware instance is per worker), so no locks and no atomics
//! beyond the metric updates themselves.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use actix_web::http::StatusCode;
use actix_web::HttpRequest;
use prometheus::{Histogram, IntCounter};

use crate::metrics::HttpMetrics;

/// Route label for anything no route matched: one series however many random paths arrive.
pub(crate) const UNMATCHED: &str = "unmatched";

/// Paths remembered per worker. More distinct hot paths than this only costs the misses.
const PATH_SLOTS: usize = 256;

/// Longest path remembered; longer ones are resolved every time (they are rarely repeated).
const MAX_CACHED_PATH: usize = 256;

pub(crate) struct SeriesCache {
    metrics: HttpMetrics,
    table: RefCell<Table>,
}

struct Table {
    paths: Box<[Option<CachedPath>]>,
    routes: HashMap<Box<str>, Rc<RouteSeries>>,
}

struct CachedPath {
    path: Box<str>,
    route: Rc<RouteSeries>,
}

/// One route template's series, by method and status.
struct RouteSeries {
    route: Box<str>,
    outcomes: RefCell<Vec<Outcome>>,
}

struct Outcome {
    method: &'static str,
    status: StatusCode,
    requests: IntCounter,
    duration: Histogram,
}

impl SeriesCache {
    pub fn new(metrics: HttpMetrics) -> Self {
        SeriesCache {
            metrics,
            table: RefCell::new(Table {
                paths: (0..PATH_SLOTS).map(|_| None).collect(),
                routes: HashMap::new(),
            }),
        }
    }

    /// Count a request to `request`'s route and observe how long it took.
    pub fn record(
        &self,
        request: &HttpRequest,
        method: &'static str,
        status: StatusCode,
        seconds: f64,
    ) {
        let route = self.route_of(request);
        route.record(&self.metrics, method, status, seconds);
    }

    /// As [`Self::record`], for a request whose route is not known.
    pub fn record_unmatched(&self, method: &'static str, status: StatusCode, seconds: f64) {
        let route = self.table.borrow_mut().route(UNMATCHED);
        route.record(&self.metrics, method, status, seconds);
    }

    fn route_of(&self, request: &HttpRequest) -> Rc<RouteSeries> {
        let path = request.path();
        let slot = slot_of(path);
        let mut table = self.table.borrow_mut();
        if let Some(cached) = &table.paths[slot] {
            if *cached.path == *path {
                return cached.route.clone();
            }
        }
        let template = request.match_pattern();
        let route = table.route(template.as_deref().unwrap_or(UNMATCHED));
        if path.len() <= MAX_CACHED_PATH {
            table.paths[slot] = Some(CachedPath {
                path: path.into(),
                route: route.clone(),
            });
        }
        route
    }
}

impl Table {
    fn route(&mut self, template: &str) -> Rc<RouteSeries> {
        if let Some(route) = self.routes.get(template) {
            return route.clone();
        }
        let route = Rc::new(RouteSeries {
            route: template.into(),
            outcomes: RefCell::new(Vec::new()),
        });
        self.routes.insert(template.into(), route.clone());
        route
    }
}

impl RouteSeries {
    fn record(
        &self,
        metrics: &HttpMetrics,
        method: &'static str,
        status: StatusCode,
        seconds: f64,
    ) {
        let mut outcomes = self.outcomes.borrow_mut();
        let index = match outcomes
            .iter()
            .position(|outcome| outcome.status == status && outcome.method == method)
        {
            Some(index) => index,
            None => {
                outcomes.push(Outcome {
                    method,
                    status,
                    requests: metrics.requests.with_label_values(&[
                        &self.route,
                        method,
                        status.as_str(),
                    ]),
                    duration: metrics.duration.with_label_values(&[&self.route, method]),
                });
                outcomes.len() - 1
            }
        };
        let outcome = &outcomes[index];
        outcome.requests.inc();
        outcome.duration.observe(seconds);
    }
}

/// FNV-1a of the path, folded to a slot. Collisions only cost a miss.
fn slot_of(path: &str) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in path.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash as usize) % PATH_SLOTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;
    use actix_web::test::TestRequest;

    fn cache() -> (Metrics, SeriesCache) {
        let metrics = Metrics::new("t", "test").unwrap();
        let cache = SeriesCache::new(metrics.http.clone());
        (metrics, cache)
    }

    fn count(metrics: &Metrics, labels: &[&str]) -> u64 {
        metrics.http.requests.with_label_values(labels).get()
    }

    #[test]
    fn repeated_paths_count_into_the_same_series() {
        let (metrics, cache) = cache();
        let request = TestRequest::with_uri("/nowhere").to_http_request();
        for _ in 0..3 {
            cache.record(&request, "GET", StatusCode::NOT_FOUND, 0.001);
        }
        cache.record(&request, "POST", StatusCode::NOT_FOUND, 0.001);
        assert_eq!(count(&metrics, &[UNMATCHED, "GET", "404"]), 3);
        assert_eq!(count(&metrics, &[UNMATCHED, "POST", "404"]), 1);
        let histogram = metrics.http.duration.with_label_values(&[UNMATCHED, "GET"]);
        assert_eq!(histogram.get_sample_count(), 3);
    }

    #[test]
    fn a_flood_of_paths_keeps_the_table_and_the_series_bounded() {
        let (metrics, cache) = cache();
        for index in 0..5_000 {
            let request = TestRequest::with_uri(&format!("/random/{index}")).to_http_request();
            cache.record(&request, "GET", StatusCode::NOT_FOUND, 0.0);
        }
        let table = cache.table.borrow();
        assert_eq!(table.paths.len(), PATH_SLOTS);
        assert_eq!(
            table.routes.len(),
            1,
            "every path is the one unmatched route"
        );
        assert_eq!(count(&metrics, &[UNMATCHED, "GET", "404"]), 5_000);
    }

    #[test]
    fn colliding_paths_are_told_apart() {
        let (_metrics, cache) = cache();
        // Find two paths in the same slot.
        let first = "/a".to_string();
        let second = (0..)
            .map(|index| format!("/b{index}"))
            .find(|path| slot_of(path) == slot_of(&first))
            .unwrap();
        for path in [&first, &second, &first] {
            let request = TestRequest::with_uri(path).to_http_request();
            cache.record(&request, "GET", StatusCode::OK, 0.0);
            let table = cache.table.borrow();
            let cached = table.paths[slot_of(path)].as_ref().unwrap();
            assert_eq!(&*cached.path, path.as_str());
        }
    }
}
