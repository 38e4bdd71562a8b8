//! Heartbeating services and their deadlines.
//!
//! The shape is mini-redis's `db.rs`: services in a map, deadlines in a
//! `BTreeSet<(Instant, name)>`, and one task (see `checker`) sleeping until the earliest
//! deadline. A pass over the set only touches what is due, so 100,000 services cost the
//! checker nothing while they keep beating.
//!
//! Invalidation is lazy: a heartbeat moves the service's `deadline` forward without touching
//! the set. When its old entry comes due, the pass sees that the true deadline is later and
//! re-queues it once. So a beat costs a hash lookup, and the set sees one operation per
//! service per timeout period instead of one per beat.

use std::collections::BTreeSet;
use std::hash::RandomState;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hashbrown::hash_map::EntryRef;
use hashbrown::HashMap;
use obs_model::{DownReason, ServiceState, ServiceStatus};
use tokio::time::Instant;

/// One tracked service. Kept small: 100,000 of them must fit in well under 100 MiB.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub state: ServiceState,
    pub reason: Option<DownReason>,
    pub phase: Option<Box<str>>,
    pub last_seen: DateTime<Utc>,
    pub down_since: Option<DateTime<Utc>>,
    pub timeout: Duration,
    /// When it is due if nothing more is heard: last contact + timeout.
    deadline: Instant,
    /// The key under which it sits in the deadline set, if it does; may be earlier than
    /// `deadline` (lazy invalidation).
    queued: Option<Instant>,
}

impl Tracked {
    /// Whether its deadline is missing from the set or queued later than due (it moved
    /// earlier: a shorter timeout). Queued no later than due is fine: the pass that finds it
    /// re-queues it at its true deadline.
    fn needs_queueing(&self) -> bool {
        self.queued.is_none_or(|queued| queued > self.deadline)
    }
}

/// What a contact from a service changed.
#[derive(Debug, Clone, PartialEq)]
pub enum Contact {
    /// First time the watcher hears of it.
    New,
    /// Nothing changed but the time.
    Alive,
    /// It was down (for `reason`) and is back.
    Recovered {
        reason: DownReason,
        down_since: Option<DateTime<Utc>>,
    },
    /// `/ping/{service}/fail`: newly failed (`first`) or failing again.
    Failed { first: bool },
}

/// A service whose deadline passed in a check.
#[derive(Debug, Clone, PartialEq)]
pub struct Expired {
    pub service: Arc<str>,
    pub last_seen: DateTime<Utc>,
    pub timeout: Duration,
    pub phase: Option<String>,
    /// Already down at the last pass: still silent, one more timeout later.
    pub again: bool,
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

pub struct Tracker {
    /// By name; SipHash (std's RandomState), as the names come from clients.
    services: HashMap<Arc<str>, Tracked, RandomState>,
    deadlines: BTreeSet<(Instant, Arc<str>)>,
    /// Off (MONITOR_HEARTBEAT_ENABLED=0): contacts are recorded, nobody is marked down by
    /// silence, and the deadline set stays empty.
    enabled: bool,
    max_services: usize,
    /// MONITOR_HEARTBEAT_TIMEOUT, for services that never sent a `timeout_seconds`.
    default_timeout: Duration,
}

/// The outcome of one check pass.
#[derive(Debug, Default)]
pub struct Pass {
    pub expired: Vec<Expired>,
    /// Stale entries moved to their true deadline.
    pub requeued: usize,
    /// The earliest deadline left, if any.
    pub next: Option<Instant>,
}

impl Tracker {
    pub fn new(enabled: bool, max_services: usize, default_timeout: Duration) -> Self {
        Tracker {
            services: HashMap::with_hasher(RandomState::new()),
            deadlines: BTreeSet::new(),
            enabled,
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

    /// A heartbeat or a `/ping/{service}`. A `timeout` overrides the default for this
    /// service from now on. Returns what changed, and whether the earliest deadline moved
    /// earlier (then the checker must be woken).
    pub fn beat(
        &mut self,
        service: &str,
        phase: Option<&str>,
        timeout: Option<Duration>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<(Contact, bool), Full> {
        let enabled = self.enabled;
        let (tracked, new) = self.contact(service, timeout, now, wall)?;
        if let Some(phase) = phase {
            if tracked.phase.as_deref() != Some(phase) {
                tracked.phase = Some(phase.into());
            }
        }
        let contact = if new {
            Contact::New
        } else if tracked.state == ServiceState::Down {
            let reason = tracked.reason.take().unwrap_or(DownReason::Timeout);
            tracked.state = ServiceState::Up;
            Contact::Recovered {
                reason,
                down_since: tracked.down_since.take(),
            }
        } else {
            Contact::Alive
        };
        let requeue = enabled && tracked.needs_queueing();
        let earlier = requeue && self.queue(service);
        Ok((contact, earlier))
    }

    /// `/ping/{service}/fail`: the service says it failed. It stays down until a success.
    pub fn fail(
        &mut self,
        service: &str,
        timeout: Option<Duration>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<(Contact, bool), Full> {
        let enabled = self.enabled;
        let (tracked, _) = self.contact(service, timeout, now, wall)?;
        let first = tracked.reason != Some(DownReason::Failed);
        tracked.state = ServiceState::Down;
        tracked.reason = Some(DownReason::Failed);
        if first {
            tracked.down_since = Some(wall);
        }
        let requeue = enabled && tracked.needs_queueing();
        let earlier = requeue && self.queue(service);
        Ok((Contact::Failed { first }, earlier))
    }

    /// The service's entry, made if it is new, with its deadline moved on. One lookup (a
    /// heartbeat's whole table cost): the name is copied into the table only when new.
    fn contact(
        &mut self,
        service: &str,
        timeout: Option<Duration>,
        now: Instant,
        wall: DateTime<Utc>,
    ) -> Result<(&mut Tracked, bool), Full> {
        let full = self.services.len() >= self.max_services;
        let (tracked, new) = match self.services.entry_ref(service) {
            EntryRef::Occupied(entry) => (entry.into_mut(), false),
            EntryRef::Vacant(_) if full => {
                return Err(Full {
                    max: self.max_services,
                })
            }
            EntryRef::Vacant(entry) => (
                entry.insert_with_key(
                    Arc::from(service),
                    Tracked {
                        state: ServiceState::Up,
                        reason: None,
                        phase: None,
                        last_seen: wall,
                        down_since: None,
                        timeout: self.default_timeout,
                        deadline: now,
                        queued: None,
                    },
                ),
                true,
            ),
        };
        tracked.last_seen = wall;
        if let Some(timeout) = timeout {
            tracked.timeout = timeout;
        }
        tracked.deadline = now + tracked.timeout;
        Ok((tracked, new))
    }

    /// Make sure the service's deadline is in the set no later than its true deadline.
    /// Returns true when it became the earliest entry.
    fn queue(&mut self, service: &str) -> bool {
        if !self.enabled {
            return false;
        }
        let Some((name, tracked)) = self.services.get_key_value(service) else {
            return false;
        };
        let deadline = tracked.deadline;
        match tracked.queued {
            // Queued no later than due: the pass will find it and re-queue if needed.
            Some(queued) if queued <= deadline => false,
            queued => {
                let name = name.clone();
                if let Some(queued) = queued {
                    self.deadlines.remove(&(queued, name.clone()));
                }
                self.deadlines.insert((deadline, name.clone()));
                if let Some(tracked) = self.services.get_mut(&name) {
                    tracked.queued = Some(deadline);
                }
                self.deadlines
                    .first()
                    .is_some_and(|(first, _)| *first == deadline)
            }
        }
    }

    /// One check pass at `now`: services silent past their deadline go down (reason
    /// timeout). Touches only the entries that are due.
    pub fn check(&mut self, now: Instant, wall: DateTime<Utc>) -> Pass {
        let mut pass = Pass::default();
        while let Some((due, _)) = self.deadlines.first() {
            if *due > now {
                break;
            }
            let Some((due, name)) = self.deadlines.pop_first() else {
                break;
            };
            let Some(tracked) = self.services.get_mut(&name) else {
                continue;
            };
            if tracked.queued != Some(due) {
                continue;
            }
            tracked.queued = None;
            if tracked.deadline > now {
                // Heard from since it was queued: wait for the true deadline.
                tracked.queued = Some(tracked.deadline);
                self.deadlines.insert((tracked.deadline, name));
                pass.requeued += 1;
                continue;
            }
            let silent = match (tracked.state, tracked.reason) {
                (ServiceState::Up, _) => Some(false),
                (ServiceState::Down, Some(DownReason::Timeout)) => Some(true),
                // Down because it said it failed: it says so again itself, if it still is.
                (ServiceState::Down, _) => None,
            };
            let Some(again) = silent else {
                continue;
            };
            if !again {
                tracked.state = ServiceState::Down;
                tracked.reason = Some(DownReason::Timeout);
                tracked.down_since = Some(wall);
            }
            pass.expired.push(Expired {
                service: name.clone(),
                last_seen: tracked.last_seen,
                timeout: tracked.timeout,
                phase: tracked.phase.as_deref().map(str::to_string),
                again,
            });
            // Due again one timeout later: a service that stays silent is reported again
            // each timeout, as its missed beats go on (an incident resolved by hand meanwhile
            // then reopens, as the trouble is still there).
            tracked.deadline = now + tracked.timeout;
            tracked.queued = Some(tracked.deadline);
            self.deadlines.insert((tracked.deadline, name));
        }
        pass.next = self.deadlines.first().map(|(due, _)| *due);
        pass
    }

    /// The earliest deadline in the set.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(due, _)| *due)
    }

    pub fn status(&self, name: &str) -> Option<ServiceStatus> {
        self.services
            .get_key_value(name)
            .map(|(name, tracked)| to_status(name, tracked))
    }

    /// Every service, in no particular order: callers sort with [`sort_statuses`] once the
    /// table's lock is released (at 100,000 services the sort costs as much as the copy).
    pub fn statuses(&self) -> Vec<ServiceStatus> {
        self.services
            .iter()
            .map(|(name, tracked)| to_status(name, tracked))
            .collect()
    }

    /// Visit every service without copying (the metrics render).
    pub fn for_each(&self, mut visit: impl FnMut(&str, &Tracked)) {
        for (name, tracked) in &self.services {
            visit(name, tracked);
        }
    }

    /// Put back a service from state.json. Services that were up get a full timeout from
    /// now: while the watcher was away nobody could reach it, so silence proves nothing.
    pub fn restore(&mut self, status: &ServiceStatus, now: Instant) {
        if self.services.len() >= self.max_services {
            return;
        }
        let timeout = Duration::try_from_secs_f64(status.timeout_seconds)
            .unwrap_or(Duration::from_secs(30))
            .min(crate::config::MAX_HEARTBEAT_TIMEOUT);
        self.services.insert(
            Arc::from(status.service.as_str()),
            Tracked {
                state: status.status,
                reason: status.reason,
                phase: status.phase.as_deref().map(Box::from),
                last_seen: status.last_seen,
                down_since: status.down_since,
                timeout,
                deadline: now + timeout,
                queued: None,
            },
        );
        // Silent ones too: they go on being reported while they stay silent.
        if status.status == ServiceState::Up || status.reason == Some(DownReason::Timeout) {
            self.queue(&status.service);
        }
    }
}

/// By service name, as `/status` and state.json list them.
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

    fn tracker() -> Tracker {
        Tracker::new(true, 1000, TIMEOUT)
    }

    #[test]
    fn silence_past_the_deadline_is_a_timeout_and_a_beat_recovers() {
        let mut tracker = tracker();
        let t0 = Instant::now();
        let wall = Utc::now();
        let (contact, earlier) = tracker.beat("api", Some("loop"), None, t0, wall).unwrap();
        assert_eq!(contact, Contact::New);
        assert!(earlier);
        assert!(tracker.check(t0 + TIMEOUT / 2, wall).expired.is_empty());
        let pass = tracker.check(t0 + TIMEOUT, wall);
        assert_eq!(pass.expired.len(), 1);
        assert_eq!(&*pass.expired[0].service, "api");
        assert!(!pass.expired[0].again);
        assert_eq!(
            pass.next,
            Some(t0 + TIMEOUT * 2),
            "a silent service is due again one timeout later"
        );
        let status = tracker.status("api").unwrap();
        assert_eq!(status.status, ServiceState::Down);
        assert_eq!(status.reason, Some(DownReason::Timeout));
        let still = tracker.check(t0 + TIMEOUT * 2, wall);
        assert_eq!(still.expired.len(), 1, "still silent: reported again");
        assert!(still.expired[0].again);
        assert_eq!(still.next, Some(t0 + TIMEOUT * 3));
        assert_eq!(tracker.status("api").unwrap().down_since, status.down_since);

        let (contact, _) = tracker
            .beat("api", None, None, t0 + TIMEOUT * 2, wall)
            .unwrap();
        assert!(matches!(
            contact,
            Contact::Recovered {
                reason: DownReason::Timeout,
                ..
            }
        ));
        assert_eq!(
            tracker.status("api").unwrap().phase.as_deref(),
            Some("loop")
        );
    }

    #[test]
    fn beats_move_the_deadline_lazily() {
        let mut tracker = tracker();
        let t0 = Instant::now();
        let wall = Utc::now();
        tracker.beat("api", None, None, t0, wall).unwrap();
        for step in 1..=10 {
            let (_, earlier) = tracker
                .beat("api", None, None, t0 + Duration::from_secs(step), wall)
                .unwrap();
            assert!(!earlier, "a later deadline does not touch the set");
        }
        assert_eq!(tracker.deadlines.len(), 1);
        let pass = tracker.check(t0 + TIMEOUT, wall);
        assert!(pass.expired.is_empty());
        assert_eq!(pass.requeued, 1);
        assert_eq!(pass.next, Some(t0 + Duration::from_secs(10) + TIMEOUT));
        assert_eq!(
            tracker
                .check(t0 + Duration::from_secs(10) + TIMEOUT, wall)
                .expired
                .len(),
            1
        );
    }

    #[test]
    fn a_shorter_timeout_is_queued_at_once() {
        let mut tracker = tracker();
        let t0 = Instant::now();
        let wall = Utc::now();
        tracker.beat("api", None, None, t0, wall).unwrap();
        let (_, earlier) = tracker
            .beat("api", None, Some(Duration::from_secs(1)), t0, wall)
            .unwrap();
        assert!(earlier);
        assert_eq!(
            tracker
                .check(t0 + Duration::from_secs(1), wall)
                .expired
                .len(),
            1
        );
    }

    #[test]
    fn an_explicit_failure_is_kept_apart_from_a_timeout() {
        let mut tracker = tracker();
        let t0 = Instant::now();
        let wall = Utc::now();
        let (contact, _) = tracker.fail("job", None, t0, wall).unwrap();
        assert_eq!(contact, Contact::Failed { first: true });
        let (contact, _) = tracker.fail("job", None, t0, wall).unwrap();
        assert_eq!(contact, Contact::Failed { first: false });
        assert!(
            tracker.check(t0 + TIMEOUT, wall).expired.is_empty(),
            "a failed service is not also timed out"
        );
        let (contact, _) = tracker.beat("job", None, None, t0, wall).unwrap();
        assert!(matches!(
            contact,
            Contact::Recovered {
                reason: DownReason::Failed,
                ..
            }
        ));
    }

    #[test]
    fn disabled_checking_never_times_out_and_capacity_is_bounded() {
        let mut tracker = Tracker::new(false, 2, TIMEOUT);
        let t0 = Instant::now();
        let wall = Utc::now();
        tracker.beat("a", None, None, t0, wall).unwrap();
        tracker.beat("b", None, None, t0, wall).unwrap();
        assert!(tracker.beat("c", None, None, t0, wall).is_err());
        assert!(tracker.beat("a", None, None, t0, wall).is_ok());
        assert!(tracker.check(t0 + TIMEOUT * 10, wall).expired.is_empty());
        assert_eq!(tracker.next_deadline(), None);
    }
}
