//! Heartbeating services, in memory: the hot path.
//!
//! A beat from a service that is up costs one hash lookup under a lock and no database call:
//! the service is marked dirty, and the write-behind task ([`crate::checker::flush_beats`])
//! upserts every dirty service in one transaction at most STATE_SAVE_INTERVAL later. Only the
//! rare contacts that change a service's state (a recovery, a `/fail`) go through a
//! transaction before they are answered, together with the issue they open or resolve.
//!
//! Deadlines are not ordered here: the checker asks the database for the due services
//! through its index on `deadline`, so any replica can take beats and any can check.

use std::collections::BTreeSet;
use std::hash::RandomState;
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;
use obs_model::page::{self, Cursor};
use obs_model::{DownReason, ServiceCounts, ServiceState, ServiceStatus};

use crate::store::{from_millis, millis, BeatRow, ServiceRow};

/// One tracked service. Kept small: 100,000 of them must fit in well under 100 MiB.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub state: ServiceState,
    pub reason: Option<DownReason>,
    /// Shared, so that copying the table for a read (`/status`, `/metrics`) under its lock
    /// allocates nothing per service.
    pub phase: Option<Arc<str>>,
    pub last_seen: DateTime<Utc>,
    pub down_since: Option<DateTime<Utc>>,
    pub timeout: Duration,
    /// When it is due if nothing more is heard (Unix ms): last beat + timeout.
    pub deadline: i64,
    /// Heard from since the last write-behind.
    dirty: bool,
}

/// What a beat found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Beat {
    /// Recorded in memory, written behind. `deadline` (Unix ms) for the checker's wake-up.
    Alive { new: bool, deadline: i64 },
    /// The service is down: its recovery is a state change, committed before it is applied
    /// (nothing was changed here).
    Down,
}

/// MAX_SERVICES reached: a new service is refused rather than growing memory without bound.
#[derive(Debug)]
pub struct Full {
    pub max: usize,
}

impl std::fmt::Display for Full {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the watcher already tracks {} services (MAX_SERVICES)",
            self.max
        )
    }
}

/// Services copied per turn of the lock by [`snapshot`]: a beat waits for at most this many
/// lookups (tens of microseconds), whatever the size of the table.
pub const SNAPSHOT_CHUNK: usize = 1024;

/// The ranks of [`ServiceState`]: down (0) and up (1).
const RANKS: usize = 2;

fn rank(state: ServiceState) -> usize {
    usize::from(state.rank())
}

fn is_failed(state: ServiceState, reason: Option<DownReason>) -> bool {
    state == ServiceState::Down && reason == Some(DownReason::Failed)
}

pub struct Tracker {
    /// By name; SipHash (std's RandomState), as the names come from clients.
    services: HashMap<Arc<str>, Tracked, RandomState>,
    /// The names in the order they were first heard. Services are never forgotten, so a
    /// position here stays valid across turns of the lock: reads copy the table in chunks.
    order: Vec<Arc<str>>,
    /// The names of each rank (`ServiceState::rank`, down first), in order: one `/status`
    /// page is a walk of at most a page from its cursor, not a pass over every service (at
    /// 100,000 services that pass and its selection took ~17 ms of CPU per page).
    ranked: [BTreeSet<Arc<str>>; RANKS],
    /// Of the down services, those that reported a failure: with the sizes of `ranked`,
    /// every page's `service_counts` without a pass.
    failed: usize,
    /// Services heard from since the last write-behind, each once.
    dirty: Vec<Arc<str>>,
    max_services: usize,
    /// MONITOR_HEARTBEAT_TIMEOUT, for services that never sent a `timeout_seconds`.
    default_timeout: Duration,
}

impl Tracker {
    pub fn new(max_services: usize, default_timeout: Duration) -> Self {
        Tracker {
            services: HashMap::with_hasher(RandomState::new()),
            order: Vec::new(),
            ranked: Default::default(),
            failed: 0,
            dirty: Vec::new(),
            max_services,
            default_timeout,
        }
    }

    pub fn len(&self) -> usize {
        self.services.len()
    }

    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    pub fn default_timeout(&self) -> Duration {
        self.default_timeout
    }

    /// A heartbeat or a `/ping/{service}` from a service that is up (or new): recorded here
    /// and written behind. A `timeout` overrides the default for this service from now on.
    pub fn beat(
        &mut self,
        service: &str,
        phase: Option<&str>,
        timeout: Option<Duration>,
        wall: DateTime<Utc>,
    ) -> Result<Beat, Full> {
        let full = self.services.len() >= self.max_services;
        let (tracked, new) = match self.services.entry_ref(service) {
            EntryRef::Occupied(entry) => {
                let tracked = entry.into_mut();
                if tracked.state == ServiceState::Down {
                    return Ok(Beat::Down);
                }
                (tracked, false)
            }
            EntryRef::Vacant(_) if full => {
                return Err(Full {
                    max: self.max_services,
                })
            }
            EntryRef::Vacant(entry) => (
                entry.insert_with_key(
                    {
                        let name: Arc<str> = Arc::from(service);
                        self.order.push(name.clone());
                        self.ranked[rank(ServiceState::Up)].insert(name.clone());
                        name
                    },
                    Tracked {
                        state: ServiceState::Up,
                        reason: None,
                        phase: None,
                        last_seen: wall,
                        down_since: None,
                        timeout: self.default_timeout,
                        deadline: 0,
                        dirty: false,
                    },
                ),
                true,
            ),
        };
        tracked.last_seen = wall;
        if let Some(timeout) = timeout {
            tracked.timeout = timeout;
        }
        tracked.deadline = deadline(wall, tracked.timeout);
        if let Some(phase) = phase {
            if tracked.phase.as_deref() != Some(phase) {
                tracked.phase = Some(Arc::from(phase));
            }
        }
        let deadline = tracked.deadline;
        if !tracked.dirty {
            tracked.dirty = true;
            // The name is already shared with the table: an Arc clone, no copy.
            if let Some((name, _)) = self.services.get_key_value(service) {
                self.dirty.push(name.clone());
            }
        }
        Ok(Beat::Alive { new, deadline })
    }

    /// Whether a contact from `service` would be taken (known, or room for one more).
    pub fn admits(&self, service: &str) -> Result<(), Full> {
        if self.services.contains_key(service) || self.services.len() < self.max_services {
            Ok(())
        } else {
            Err(Full {
                max: self.max_services,
            })
        }
    }

    /// The service's timeout, if known.
    pub fn timeout_of(&self, service: &str) -> Option<Duration> {
        self.services.get(service).map(|tracked| tracked.timeout)
    }

    /// The deadline this replica knows for `service` (Unix ms), if any.
    pub fn deadline_of(&self, service: &str) -> Option<i64> {
        self.services.get(service).map(|tracked| tracked.deadline)
    }

    /// The beats to write behind, taken (the dirty marks cleared). Put back with
    /// [`Tracker::unflushed`] if the write failed.
    pub fn take_dirty(&mut self) -> Vec<BeatRow> {
        let names = std::mem::take(&mut self.dirty);
        let mut rows = Vec::with_capacity(names.len());
        self.rows_of(&names, &mut rows);
        rows
    }

    /// The rows of these dirty services, their marks cleared.
    fn rows_of(&mut self, names: &[Arc<str>], rows: &mut Vec<BeatRow>) {
        for name in names {
            let Some(tracked) = self.services.get_mut(name) else {
                continue;
            };
            tracked.dirty = false;
            rows.push(BeatRow {
                phase: tracked.phase.as_deref().map(str::to_string),
                last_seen: millis(tracked.last_seen),
                timeout_ms: duration_millis(tracked.timeout),
                deadline: tracked.deadline,
                name: name.clone(),
            });
        }
    }

    /// A write-behind failed: these are dirty again (unless heard from since, which already
    /// marked them).
    pub fn unflushed(&mut self, rows: Vec<BeatRow>) {
        for row in rows {
            if let Some(tracked) = self.services.get_mut(&row.name) {
                if !tracked.dirty {
                    tracked.dirty = true;
                    self.dirty.push(row.name);
                }
            }
        }
    }

    /// Take in a committed row (a state change, a load at start, a row another replica
    /// wrote). A beat heard here later than the row is kept.
    pub fn apply(&mut self, row: &ServiceRow) {
        let full = self.services.len() >= self.max_services;
        let timeout = Duration::from_millis(u64::try_from(row.timeout_ms).unwrap_or(0))
            .min(crate::config::MAX_HEARTBEAT_TIMEOUT);
        match self.services.get_key_value_mut(row.name.as_str()) {
            Some((name, tracked)) => {
                if rank(tracked.state) != rank(row.state) {
                    self.ranked[rank(tracked.state)].remove(name);
                    self.ranked[rank(row.state)].insert(name.clone());
                }
                self.failed = self
                    .failed
                    .saturating_sub(usize::from(is_failed(tracked.state, tracked.reason)));
                self.failed += usize::from(is_failed(row.state, row.reason));
                tracked.state = row.state;
                tracked.reason = row.reason;
                tracked.down_since = row.down_since.map(from_millis);
                if millis(tracked.last_seen) <= row.last_seen {
                    tracked.last_seen = from_millis(row.last_seen);
                    tracked.timeout = timeout;
                    tracked.deadline = row.deadline;
                    tracked.phase = row.phase.as_deref().map(Arc::from);
                }
            }
            None if full => {}
            None => {
                let name: Arc<str> = Arc::from(row.name.as_str());
                self.order.push(name.clone());
                self.ranked[rank(row.state)].insert(name.clone());
                self.failed += usize::from(is_failed(row.state, row.reason));
                self.services.insert(
                    name,
                    Tracked {
                        state: row.state,
                        reason: row.reason,
                        phase: row.phase.as_deref().map(Arc::from),
                        last_seen: from_millis(row.last_seen),
                        down_since: row.down_since.map(from_millis),
                        timeout,
                        deadline: row.deadline,
                        dirty: false,
                    },
                );
            }
        }
    }

    pub fn status(&self, name: &str) -> Option<ServiceStatus> {
        self.services
            .get_key_value(name)
            .map(|(name, tracked)| to_status(name, tracked))
    }

    /// Every service counted by state, without a pass over them.
    pub fn counts(&self) -> ServiceCounts {
        let down = self.ranked[rank(ServiceState::Down)].len();
        let up = self.ranked[rank(ServiceState::Up)].len();
        ServiceCounts {
            total: up + down,
            up,
            down,
            failed: self.failed,
        }
    }

    /// The services of one `/status` page, copied (names and phases shared), and where the
    /// next page starts: a walk of the ordered names from the cursor, at most `limit` + 1 of
    /// them, so a page costs the same at 100 services or 100,000. `names` pages pick from
    /// those names only.
    pub fn page_of(&self, query: &ServicesQuery) -> (Vec<(Arc<str>, Tracked)>, Option<Cursor>) {
        let copy = |name: &Arc<str>| {
            self.services
                .get(name)
                .map(|tracked| (name.clone(), tracked.clone()))
        };
        if let Some(names) = &query.names {
            // At most a page of names: looked up one by one, then ordered.
            let listed = names
                .iter()
                .filter_map(|name| self.services.get_key_value(name.as_str()))
                .filter(|(name, tracked)| query.admits(tracked.state, name))
                .map(|(name, tracked)| (name.clone(), tracked.clone()));
            return page::select(listed, key, query.after.as_ref(), query.limit);
        }
        let limit = query.limit.max(1);
        let prefix = query.prefix.as_deref().unwrap_or("");
        let mut listed = Vec::with_capacity(limit + 1);
        for (at, names) in self.ranked.iter().enumerate() {
            let Ok(at_rank) = u8::try_from(at) else {
                break;
            };
            if query
                .state
                .is_some_and(|wanted| usize::from(wanted.rank()) != at)
            {
                continue;
            }
            let start = match &query.after {
                Some(cursor) if cursor.rank > at_rank => continue,
                Some(cursor) if cursor.rank == at_rank && cursor.name.as_str() >= prefix => {
                    Bound::Excluded(cursor.name.as_str())
                }
                _ => Bound::Included(prefix),
            };
            let wanted = names
                .range::<str, _>((start, Bound::Unbounded))
                .take_while(|name| name.starts_with(prefix))
                .take(limit + 1 - listed.len());
            listed.extend(wanted.filter_map(copy));
            if listed.len() > limit {
                break;
            }
        }
        let next = if listed.len() > limit {
            listed.truncate(limit);
            listed
                .last()
                .map(|(name, tracked)| Cursor::new(tracked.state.rank(), name.to_string()))
        } else {
            None
        };
        (listed, next)
    }

    /// Copy at most `max` services, from position `from` in the order they were first heard,
    /// into `into`; returns the position to go on from (the table's size once all are copied).
    pub fn copy_into(&self, from: usize, max: usize, into: &mut Vec<(Arc<str>, Tracked)>) -> usize {
        let end = from.saturating_add(max).min(self.order.len());
        let names = self.order.get(from..end).unwrap_or_default();
        for name in names {
            if let Some(tracked) = self.services.get(name) {
                into.push((name.clone(), tracked.clone()));
            }
        }
        end.max(from)
    }
}

/// Every service, copied for a read (`/status`, `/metrics`) [`SNAPSHOT_CHUNK`] at a time,
/// the lock released between chunks: a beat waits for one chunk at most, never for a whole
/// copy of 100,000 services, let alone the render built from it. Names and phases are shared
/// (`Arc`), so the copy allocates nothing per service. Each service is copied as it was at
/// one moment; services first heard during the copy are included.
pub fn snapshot(tracker: &Mutex<Tracker>) -> Snapshot {
    let lock = || {
        tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let mut services = Vec::with_capacity(lock().len());
    let mut next = 0;
    loop {
        let table = lock();
        next = table.copy_into(next, SNAPSHOT_CHUNK, &mut services);
        if next >= table.order.len() {
            break;
        }
    }
    Snapshot { services }
}

/// One `/status` page: picked and copied under the lock ([`Tracker::page_of`], at most a
/// page of services), made into statuses after it.
pub fn page(tracker: &Mutex<Tracker>, query: &ServicesQuery) -> ServicesPage {
    let ((services, next), counts) = {
        let table = tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        (table.page_of(query), table.counts())
    };
    ServicesPage {
        services: services
            .iter()
            .map(|(name, tracked)| to_status(name, tracked))
            .collect(),
        counts,
        next,
    }
}

/// The beats to write behind, taken [`SNAPSHOT_CHUNK`] services per turn of the lock: at
/// 77,000 beats a second a second's worth taken at once held the lock for milliseconds.
/// A service heard from while the rest is taken is written with what it sent last: its
/// dirty mark is cleared only when its row is made.
pub fn take_dirty(tracker: &Mutex<Tracker>) -> Vec<BeatRow> {
    let lock = || {
        tracker
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    };
    let names = std::mem::take(&mut lock().dirty);
    let mut rows = Vec::with_capacity(names.len());
    for chunk in names.chunks(SNAPSHOT_CHUNK) {
        lock().rows_of(chunk, &mut rows);
    }
    rows
}

/// The services as [`snapshot`] copied them.
pub struct Snapshot {
    pub services: Vec<(Arc<str>, Tracked)>,
}

impl Snapshot {
    /// Every service's status, in no particular order: callers sort with
    /// [`sort_statuses`].
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.services
            .iter()
            .map(|(name, tracked)| to_status(name, tracked))
            .collect()
    }
}

/// Which services one `/status` page lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicesQuery {
    /// 1 to [`obs_model::page::MAX_PAGE`].
    pub limit: usize,
    pub after: Option<Cursor>,
    pub state: Option<ServiceState>,
    /// Only names that start with this.
    pub prefix: Option<String>,
    /// Only these names.
    pub names: Option<std::collections::HashSet<String>>,
}

/// One page of services, every service counted, and where the next page starts.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicesPage {
    pub services: Vec<ServiceStatus>,
    pub counts: ServiceCounts,
    pub next: Option<Cursor>,
}

impl ServicesQuery {
    pub fn admits(&self, state: ServiceState, name: &str) -> bool {
        self.state.is_none_or(|wanted| wanted == state)
            && self
                .prefix
                .as_deref()
                .is_none_or(|prefix| name.starts_with(prefix))
            && self.names.as_ref().is_none_or(|names| names.contains(name))
    }

    /// The page of `services` (in any order) this query asks for. Only the page becomes
    /// [`ServiceStatus`]es: the rest is counted and passed over.
    pub fn page<T>(
        &self,
        services: impl IntoIterator<Item = T>,
        state: impl Fn(&T) -> (ServiceState, Option<DownReason>),
        name: impl Fn(&T) -> &str,
        status: impl Fn(&T) -> ServiceStatus,
    ) -> ServicesPage {
        let mut counts = ServiceCounts::default();
        let wanted = services.into_iter().filter(|service| {
            let (now, reason) = state(service);
            counts.add(now, reason);
            self.admits(now, name(service))
        });
        let (page, next) = page::select(
            wanted,
            |service| (state(service).0.rank(), name(service)),
            self.after.as_ref(),
            self.limit,
        );
        ServicesPage {
            services: page.iter().map(status).collect(),
            counts,
            next,
        }
    }
}

impl Snapshot {
    pub fn page(&self, query: &ServicesQuery) -> ServicesPage {
        query.page(
            &self.services,
            |service| (service.1.state, service.1.reason),
            |service| service.0.as_ref(),
            |service| to_status(&service.0, &service.1),
        )
    }
}

/// Where a copied service falls in a page: (rank, name).
fn key(service: &(Arc<str>, Tracked)) -> (u8, &str) {
    (service.1.state.rank(), &service.0)
}

/// `wall` + `timeout`, in Unix ms.
pub fn deadline(wall: DateTime<Utc>, timeout: Duration) -> i64 {
    millis(wall).saturating_add(duration_millis(timeout))
}

pub fn duration_millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// By service name, as `/status` lists them.
pub fn sort_statuses(statuses: &mut [ServiceStatus]) {
    statuses.sort_unstable_by(|a, b| a.service.cmp(&b.service));
}

fn to_status(name: &str, tracked: &Tracked) -> ServiceStatus {
    ServiceStatus {
        service: name.to_string(),
        status: tracked.state,
        reason: tracked.reason,
        phase: tracked.phase.as_deref().map(str::to_string),
        last_seen: tracked.last_seen,
        timeout_seconds: tracked.timeout.as_secs_f64(),
        down_since: tracked.down_since,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(30);

    fn row(name: &str, state: ServiceState, reason: Option<DownReason>) -> ServiceRow {
        ServiceRow {
            name: name.into(),
            state,
            reason,
            phase: None,
            last_seen: 1_000,
            last_beat: 1_000,
            timeout_ms: 30_000,
            deadline: 31_000,
            down_since: (state == ServiceState::Down).then_some(31_000),
        }
    }

    #[test]
    fn beats_are_written_behind_once_per_flush() {
        let mut tracker = Tracker::new(1000, TIMEOUT);
        let wall = Utc::now();
        let beat = tracker.beat("api", Some("loop"), None, wall).unwrap();
        assert_eq!(
            beat,
            Beat::Alive {
                new: true,
                deadline: deadline(wall, TIMEOUT)
            }
        );
        for _ in 0..10 {
            tracker.beat("api", None, None, wall).unwrap();
        }
        let rows = tracker.take_dirty();
        assert_eq!(rows.len(), 1, "one row per service, however many beats");
        assert_eq!(rows[0].phase.as_deref(), Some("loop"));
        assert!(tracker.take_dirty().is_empty());
        tracker.unflushed(rows);
        assert_eq!(tracker.take_dirty().len(), 1, "a failed write is retried");
    }

    #[test]
    fn a_down_service_is_not_changed_by_the_hot_path() {
        let mut tracker = Tracker::new(1000, TIMEOUT);
        tracker.apply(&row("job", ServiceState::Down, Some(DownReason::Failed)));
        assert_eq!(
            tracker.beat("job", None, None, Utc::now()).unwrap(),
            Beat::Down
        );
        let status = tracker.status("job").unwrap();
        assert_eq!(status.status, ServiceState::Down);
        assert_eq!(status.reason, Some(DownReason::Failed));
        assert!(tracker.take_dirty().is_empty());
        tracker.apply(&row("job", ServiceState::Up, None));
        assert!(matches!(
            tracker.beat("job", None, None, Utc::now()).unwrap(),
            Beat::Alive { new: false, .. }
        ));
    }

    /// The ordered index answers every page exactly as a pass over the whole table does (the
    /// selection PostgreSQL's rows still go through), while states change under it.
    #[test]
    fn indexed_pages_are_the_pages_of_a_full_pass() {
        let mut tracker = Tracker::new(10_000, TIMEOUT);
        let wall = Utc::now();
        let names: Vec<String> = (0..2_000)
            .map(|n| {
                format!(
                    "{}-{:04}",
                    ["api", "apx", "b", "job"][n % 4],
                    (n * 7_919) % 10_007
                )
            })
            .collect();
        for name in &names {
            tracker.beat(name, Some("run"), None, wall).unwrap();
        }
        let state_of = |n: usize| match n % 7 {
            0 => (ServiceState::Down, Some(DownReason::Failed)),
            1 | 2 => (ServiceState::Down, Some(DownReason::Timeout)),
            _ => (ServiceState::Up, None),
        };
        let queries = |after: Option<Cursor>| {
            let mut all = Vec::new();
            for limit in [1, 7, 1000] {
                for state in [None, Some(ServiceState::Up), Some(ServiceState::Down)] {
                    for prefix in [None, Some("ap"), Some("apx-0"), Some("zz"), Some("b-9")] {
                        all.push(ServicesQuery {
                            limit,
                            after: after.clone(),
                            state,
                            prefix: prefix.map(str::to_string),
                            names: None,
                        });
                    }
                }
                all.push(ServicesQuery {
                    limit,
                    after: after.clone(),
                    state: None,
                    prefix: Some("api".into()),
                    names: Some(
                        names
                            .iter()
                            .step_by(3)
                            .take(500)
                            .cloned()
                            .chain(["nobody".into()])
                            .collect(),
                    ),
                });
            }
            all
        };
        let cursors = [
            None,
            Some(Cursor::new(0, "")),
            Some(Cursor::new(0, "apx-5")),
            Some(Cursor::new(0, "zzz")),
            Some(Cursor::new(1, "b")),
            Some(Cursor::new(1, "job-9999")),
        ];
        for round in 0..3 {
            // Move some services between states (and back), as the checker and recoveries do.
            for (n, name) in names.iter().enumerate() {
                let (state, reason) = state_of(n + round);
                tracker.apply(&row(name, state, reason));
            }
            let table = Mutex::new(tracker);
            let full = snapshot(&table);
            for after in cursors.iter().cloned() {
                for query in queries(after) {
                    let indexed = page(&table, &query);
                    assert_eq!(indexed, full.page(&query), "{query:?}");
                }
            }
            // Walk every page of one query: each service once, in order.
            let mut query = queries(None).swap_remove(0);
            let mut seen = 0;
            loop {
                let indexed = page(&table, &query);
                seen += indexed.services.len();
                match indexed.next {
                    Some(next) => query.after = Some(next),
                    None => break,
                }
            }
            assert_eq!(seen, names.len());
            tracker = table.into_inner().unwrap();
        }
    }

    #[test]
    fn dirty_beats_taken_in_chunks_are_each_taken_once() {
        let table = Mutex::new(Tracker::new(10_000, TIMEOUT));
        let wall = Utc::now();
        for n in 0..(SNAPSHOT_CHUNK * 2 + 5) {
            table
                .lock()
                .unwrap()
                .beat(&format!("s{n}"), None, None, wall)
                .unwrap();
        }
        assert_eq!(take_dirty(&table).len(), SNAPSHOT_CHUNK * 2 + 5);
        assert!(take_dirty(&table).is_empty());
        table.lock().unwrap().beat("s1", None, None, wall).unwrap();
        assert_eq!(take_dirty(&table).len(), 1);
    }

    #[test]
    fn capacity_is_bounded() {
        let mut tracker = Tracker::new(2, TIMEOUT);
        let wall = Utc::now();
        tracker.beat("a", None, None, wall).unwrap();
        tracker.beat("b", None, None, wall).unwrap();
        assert!(tracker.beat("c", None, None, wall).is_err());
        assert!(tracker.admits("c").is_err());
        assert!(tracker.beat("a", None, None, wall).is_ok());
    }
}
