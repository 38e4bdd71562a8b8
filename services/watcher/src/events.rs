//! The recent events: a ring buffer of EVENTS_MAX, newest last.

use std::collections::VecDeque;

use obs_model::Event;

pub struct EventLog {
    ring: VecDeque<Event>,
    max: usize,
}

impl EventLog {
    pub fn new(max: usize) -> Self {
        EventLog {
            ring: VecDeque::with_capacity(max.min(4096)),
            max,
        }
    }

    /// Keep `event`, dropping the oldest once full.
    pub fn push(&mut self, event: Event) {
        if self.ring.len() == self.max {
            self.ring.pop_front();
        }
        self.ring.push_back(event);
    }

    /// The `limit` most recent events (of `service`, if given), oldest first, as a log reads.
    pub fn recent(&self, limit: usize, service: Option<&str>) -> Vec<Event> {
        let mut events: Vec<Event> = self
            .ring
            .iter()
            .rev()
            .filter(|event| service.is_none_or(|service| event.service == service))
            .take(limit)
            .cloned()
            .collect();
        events.reverse();
        events
    }

    pub fn all(&self) -> Vec<Event> {
        self.ring.iter().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.ring.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obs_model::EventSource;

    fn event(service: &str, n: usize) -> Event {
        Event {
            id: ulid::Ulid::new(),
            timestamp: chrono::Utc::now(),
            service: service.into(),
            event_type: format!("e{n}"),
            source: EventSource::Api,
            detail: None,
            component: None,
            container: None,
            image: None,
            exit_code: None,
        }
    }

    #[test]
    fn the_ring_is_bounded_and_reads_oldest_first() {
        let mut log = EventLog::new(3);
        for n in 0..5 {
            log.push(event(if n % 2 == 0 { "a" } else { "b" }, n));
        }
        assert_eq!(log.len(), 3);
        let types: Vec<String> = log
            .recent(10, None)
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types, ["e2", "e3", "e4"]);
        let types: Vec<String> = log
            .recent(1, Some("a"))
            .into_iter()
            .map(|e| e.event_type)
            .collect();
        assert_eq!(types, ["e4"]);
    }
}
