//! The dedup and lifecycle core: signals in, incidents out. Pure (time is a parameter, no
//! I/O), so every rule is unit-tested here; the HTTP layer only translates.
//!
//! - A signal (a watcher issue, an alert, a missing service) has a fingerprint; the book
//!   keeps one incident per fingerprint in a HashMap, so a signal costs one lookup, never a
//!   scan. A repeat bumps count/last_seen instead of opening another incident.
//! - Each signal names its occurrence (a watcher issue's id, an alert's startsAt). The book
//!   remembers the last few occurrences of each incident with their own counts, so the same
//!   item applied twice changes nothing (deliveries are at-least-once), and a recovery closes
//!   the occurrence it belongs to.
//! - Lifecycle: open → acknowledged → resolved. A new occurrence within the flapping window
//!   of the resolution reopens the incident; later, it opens a new one. Reopening
//!   FLAP_THRESHOLD times within FLAP_WINDOW marks it flapping until it has been quiet for
//!   FLAP_SETTLE.
//! - Committing is the caller's ([`crate::Shared::change`]): between [`Book::begin`] and
//!   [`Book::capture`] everything an operation touches is remembered as it was; `capture`
//!   puts it back and returns the change, which [`Book::redo`] puts in place once stored.
//! - Notable changes (not mere repeats) are copied out to be forwarded, each with `notify`:
//!   whether people should hear of it, which is when what they last heard (open or not)
//!   differs from the truth and no silence or flapping holds it back.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use chrono::{DateTime, Utc};
use obs_model::{
    Incident, IncidentChange, IncidentSource, IncidentState, IssueKind, Severity, Silence,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use ulid::Ulid;

use crate::silences::Silences;

/// Occurrences remembered per incident (and issue ids shown on it).
pub const OCCURRENCES_KEPT: usize = 16;

/// One sighting of trouble, from any source, in one shape.
#[derive(Debug, Clone)]
pub struct Signal {
    pub fingerprint: String,
    pub source: IncidentSource,
    pub service: String,
    pub kind: IssueKind,
    pub subject: String,
    pub severity: Severity,
    pub title: String,
    pub message: String,
    pub recommendation: String,
    pub facts: BTreeMap<String, Value>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Which occurrence of the trouble this is: a watcher issue's id, an alert's startsAt.
    pub occurrence: String,
    /// The watcher issue behind it, if any.
    pub issue_id: Option<Ulid>,
    pub sightings: Sightings,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Set when the occurrence is over (a recovery), at that time.
    pub resolved_at: Option<DateTime<Utc>>,
    /// The id a new incident takes. Derived from the signal (a watcher issue's own id), so
    /// that a signal delivered again after a crash opens the same incident, not a second one.
    pub incident_id: Ulid,
}

/// How a signal counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sightings {
    /// The occurrence's running total (watcher issues carry `count`): replays add nothing.
    Total(u64),
    /// One more sighting (each Alertmanager notification of a firing alert).
    One,
}

/// What the book remembers of one occurrence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Occurrence {
    pub key: String,
    pub count: u64,
    pub last_seen: DateTime<Utc>,
    pub resolved: bool,
}

/// An incident with the bookkeeping behind it: what is persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tracked {
    pub incident: Incident,
    /// The last few occurrences, oldest first.
    pub occurrences: VecDeque<Occurrence>,
    /// When it reopened lately (within the flapping window).
    #[serde(default)]
    pub reopens: VecDeque<DateTime<Utc>>,
    /// The last time it opened, reopened or resolved.
    pub last_transition: DateTime<Utc>,
    /// Whether people were last told it is open (false: resolved, or never told).
    #[serde(default)]
    pub notified_active: bool,
}

/// The rules the book applies.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    pub flap_threshold: usize,
    pub flap_window: chrono::Duration,
    pub flap_settle: chrono::Duration,
    pub max_active: usize,
    pub resolved_max: usize,
    pub resolved_max_age: chrono::Duration,
}

/// What happened to each signal of a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub received: u64,
    /// New incidents.
    pub opened: u64,
    pub reopened: u64,
    pub resolved: u64,
    /// Folded into an incident that was already open: count and last_seen moved.
    pub deduplicated: u64,
    /// Already applied (a redelivery) or out of date: nothing changed.
    pub duplicates: u64,
    /// Refused: MAX_INCIDENTS unresolved incidents exist already.
    pub refused: u64,
}

/// Notifications held back, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Suppressed {
    pub silenced: u64,
    pub flapping: u64,
}

/// The outcome of one operation on the book, for the caller to forward and persist.
#[derive(Debug, Default)]
pub struct Applied {
    pub tally: Tally,
    pub suppressed: Suppressed,
    /// A copy of the incident at each notable change, in order: what is forwarded.
    pub notable: Vec<Incident>,
    /// Incidents whose state must be durable before the caller answers (filled by
    /// [`Book::seal`]).
    pub to_save: Vec<Tracked>,
    /// Incidents pruned: (id, the revision of their removal).
    pub pruned: Vec<(Ulid, u64)>,
    /// Watcher issue ids that started an occurrence here: remembered in the database
    /// (`first_sighting`) in the same transaction, so a redelivery is recognised anywhere.
    pub new_issue_ids: Vec<Ulid>,
    save_ids: Vec<Ulid>,
}

impl Applied {
    pub fn is_empty(&self) -> bool {
        self.notable.is_empty() && self.to_save.is_empty() && self.pruned.is_empty()
    }

    /// Nothing to write: at most repeats, which are saved behind ([`Book::take_dirty`]).
    pub fn nothing_to_store(&self) -> bool {
        self.is_empty() && self.new_issue_ids.is_empty()
    }
}

/// Why acknowledging or resolving by hand failed.
#[derive(Debug, PartialEq, Eq)]
pub enum ManualError {
    NotFound,
    /// Acknowledging a resolved incident.
    Resolved,
}

/// `GET /v1/incidents` filters.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub state: Option<IncidentState>,
    pub service: Option<String>,
    pub severity: Option<Severity>,
    pub limit: usize,
}

/// What a signal does to the incident it belongs to.
enum Effect {
    /// Already applied, or out of date.
    Nothing,
    /// A sighting folded into the active incident.
    Repeat,
    Resolve(DateTime<Utc>),
    /// A new occurrence of a resolved incident: reopen it, or open a new one if it resolved
    /// longer ago than the flapping window.
    Recur,
    /// The occurrence it was resolved under (by hand) is still being seen: reopen it.
    Reopen,
}

pub struct Book {
    rules: Rules,
    incidents: HashMap<Ulid, Tracked>,
    /// The incident each fingerprint currently folds into.
    by_fingerprint: HashMap<String, Ulid>,
    /// Resolved incidents by when the curator resolved them (`last_transition`: sources'
    /// clocks and the `resolved_at` they report may be anything), oldest first: what
    /// retention prunes.
    resolved: BTreeSet<(DateTime<Utc>, Ulid)>,
    flapping: HashSet<Ulid>,
    /// Unresolved incidents by severity (info, warning, critical).
    active_by_severity: [usize; 3],
    /// Changed by repeats since the last save: saved by the periodic flush.
    dirty: HashSet<Ulid>,
    /// The revision of each incident's row in the database: what a write expects to find.
    stored: HashMap<Ulid, u64>,
    revision: u64,
    pub silences: Silences,
    /// While an operation is computed ([`Book::begin`]): the state it started from.
    undo: Option<Undo>,
}

/// What an operation found before it touched anything.
#[derive(Default)]
struct Undo {
    incidents: HashMap<Ulid, Option<Tracked>>,
    fingerprints: HashMap<String, Option<Ulid>>,
    dirty: HashMap<Ulid, bool>,
    revision: u64,
    silences: Option<Silences>,
}

/// The outcome of an operation as state to put in place once its transaction committed
/// ([`Book::redo`]); until then the book is as it was ([`Book::capture`]).
#[derive(Default)]
pub struct Change {
    incidents: Vec<(Ulid, Option<Tracked>)>,
    fingerprints: Vec<(String, Option<Ulid>)>,
    dirty: Vec<(Ulid, bool)>,
    revision: u64,
    silences: Option<Silences>,
}

fn severity_index(severity: Severity) -> usize {
    match severity {
        Severity::Info => 0,
        Severity::Warning => 1,
        Severity::Critical => 2,
    }
}

impl Book {
    pub fn new(rules: Rules) -> Self {
        Book {
            rules,
            incidents: HashMap::new(),
            by_fingerprint: HashMap::new(),
            resolved: BTreeSet::new(),
            flapping: HashSet::new(),
            active_by_severity: [0; 3],
            dirty: HashSet::new(),
            stored: HashMap::new(),
            revision: 0,
            silences: Silences::default(),
            undo: None,
        }
    }

    // ------------------------------------------------------------------ commit path

    /// Start computing an operation: everything it touches is remembered as it was, so that
    /// [`Book::capture`] can put it back until the transaction has committed.
    pub fn begin(&mut self) {
        self.undo = Some(Undo {
            revision: self.revision,
            ..Undo::default()
        });
    }

    fn touch(&mut self, id: Ulid) {
        if let Some(undo) = &mut self.undo {
            undo.incidents
                .entry(id)
                .or_insert_with(|| self.incidents.get(&id).cloned());
        }
    }

    fn touch_fingerprint(&mut self, fingerprint: &str) {
        if let Some(undo) = &mut self.undo {
            if !undo.fingerprints.contains_key(fingerprint) {
                undo.fingerprints.insert(
                    fingerprint.to_string(),
                    self.by_fingerprint.get(fingerprint).copied(),
                );
            }
        }
    }

    fn touch_dirty(&mut self, id: Ulid) {
        if let Some(undo) = &mut self.undo {
            undo.dirty
                .entry(id)
                .or_insert_with(|| self.dirty.contains(&id));
        }
    }

    fn touch_silences(&mut self) {
        if let Some(undo) = &mut self.undo {
            if undo.silences.is_none() {
                undo.silences = Some(self.silences.clone());
            }
        }
    }

    /// End the operation begun by [`Book::begin`]: the book goes back to how it was, and
    /// what the operation made of it is returned, to [`Book::redo`] once it is stored.
    pub fn capture(&mut self) -> Change {
        let Some(undo) = self.undo.take() else {
            return Change::default();
        };
        let mut change = Change {
            revision: self.revision,
            ..Change::default()
        };
        for (id, before) in undo.incidents {
            let after = self.put(id, before);
            change.incidents.push((id, after));
        }
        for (fingerprint, before) in undo.fingerprints {
            let after = self.by_fingerprint.get(&fingerprint).copied();
            set_or_remove(&mut self.by_fingerprint, fingerprint.clone(), before);
            change.fingerprints.push((fingerprint, after));
        }
        for (id, before) in undo.dirty {
            change.dirty.push((id, self.dirty.contains(&id)));
            set_member(&mut self.dirty, id, before);
        }
        self.revision = undo.revision;
        if let Some(before) = undo.silences {
            change.silences = Some(std::mem::replace(&mut self.silences, before));
        }
        change
    }

    /// Put in place what [`Book::capture`] returned (its transaction committed), and
    /// remember the revisions now stored.
    pub fn redo(&mut self, change: Change, stored: &[(Ulid, Option<u64>)]) {
        for (id, after) in change.incidents {
            self.put(id, after);
        }
        for (fingerprint, after) in change.fingerprints {
            set_or_remove(&mut self.by_fingerprint, fingerprint, after);
        }
        for (id, after) in change.dirty {
            set_member(&mut self.dirty, id, after);
        }
        self.revision = self.revision.max(change.revision);
        if let Some(after) = change.silences {
            self.silences = after;
        }
        for (id, revision) in stored {
            set_or_remove(&mut self.stored, *id, *revision);
        }
    }

    /// Replace incident `id` (or remove it, with `None`) keeping the indexes right; returns
    /// what was there.
    fn put(&mut self, id: Ulid, value: Option<Tracked>) -> Option<Tracked> {
        let old = self.incidents.remove(&id);
        if let Some(tracked) = &old {
            if tracked.incident.state.is_active() {
                let index = severity_index(tracked.incident.severity);
                self.active_by_severity[index] = self.active_by_severity[index].saturating_sub(1);
            } else {
                self.resolved.remove(&(tracked.last_transition, id));
            }
            self.flapping.remove(&id);
        }
        if let Some(tracked) = value {
            if tracked.incident.state.is_active() {
                self.active_by_severity[severity_index(tracked.incident.severity)] += 1;
            } else {
                self.resolved.insert((tracked.last_transition, id));
            }
            if tracked.incident.flapping {
                self.flapping.insert(id);
            }
            self.incidents.insert(id, tracked);
        }
        old
    }

    /// The revision incident `id`'s row has in the database, if it has one.
    pub fn stored_revision(&self, id: &Ulid) -> Option<u64> {
        self.stored.get(id).copied()
    }

    /// Take an incident's row as the database has it now (written by another replica):
    /// committed state, so it replaces the cached copy at once. `None`: it is gone.
    pub fn adopt(&mut self, id: Ulid, row: Option<Tracked>) {
        self.dirty.remove(&id);
        match row {
            Some(tracked) => {
                self.revision = self.revision.max(tracked.incident.revision);
                self.stored.insert(id, tracked.incident.revision);
                let fingerprint = tracked.incident.fingerprint.clone();
                let takes_fingerprint = tracked.incident.state.is_active()
                    || match self.by_fingerprint.get(&fingerprint) {
                        Some(other) if *other != id => {
                            self.incidents.get(other).is_none_or(|other| {
                                !other.incident.state.is_active()
                                    && other.incident.first_seen <= tracked.incident.first_seen
                            })
                        }
                        _ => true,
                    };
                if takes_fingerprint {
                    self.by_fingerprint.insert(fingerprint, id);
                }
                self.put(id, Some(tracked));
            }
            None => {
                self.stored.remove(&id);
                if let Some(tracked) = self.put(id, None) {
                    if self.by_fingerprint.get(&tracked.incident.fingerprint) == Some(&id) {
                        self.by_fingerprint.remove(&tracked.incident.fingerprint);
                    }
                }
            }
        }
    }

    /// Replace the silences with the database's (written by another replica).
    pub fn adopt_silences(&mut self, silences: Vec<Silence>) {
        let mut fresh = Silences::default();
        for silence in silences {
            if let Err(error) = fresh.restore(silence) {
                tracing::warn!(%error, "ignoring a stored silence that no longer compiles");
            }
        }
        self.silences = fresh;
    }

    /// Load what a previous run saved.
    pub fn restore(&mut self, saved: Vec<Tracked>, silences: Vec<Silence>) {
        for silence in silences {
            if let Err(error) = self.silences.restore(silence) {
                tracing::warn!(%error, "dropping a saved silence that no longer compiles");
            }
        }
        for tracked in saved {
            let id = tracked.incident.id;
            self.revision = self.revision.max(tracked.incident.revision);
            self.stored.insert(id, tracked.incident.revision);
            // Of two incidents with one fingerprint (an old one kept as history), the
            // newest takes the fingerprint.
            let newer = match self.by_fingerprint.get(&tracked.incident.fingerprint) {
                Some(other) => self
                    .incidents
                    .get(other)
                    .is_none_or(|other| other.incident.first_seen <= tracked.incident.first_seen),
                None => true,
            };
            if newer {
                self.by_fingerprint
                    .insert(tracked.incident.fingerprint.clone(), id);
            }
            if tracked.incident.state.is_active() {
                self.active_by_severity[severity_index(tracked.incident.severity)] += 1;
            } else {
                self.resolved.insert((tracked.last_transition, id));
            }
            if tracked.incident.flapping {
                self.flapping.insert(id);
            }
            self.incidents.insert(id, tracked);
        }
    }

    pub fn len(&self) -> usize {
        self.incidents.len()
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    pub fn get(&self, id: &Ulid) -> Option<&Incident> {
        self.incidents.get(id).map(|tracked| &tracked.incident)
    }

    /// Unresolved incidents per severity.
    pub fn active_counts(&self) -> [(Severity, usize); 3] {
        [
            (Severity::Info, self.active_by_severity[0]),
            (Severity::Warning, self.active_by_severity[1]),
            (Severity::Critical, self.active_by_severity[2]),
        ]
    }

    fn active_total(&self) -> usize {
        self.active_by_severity.iter().sum()
    }

    /// The incident a fingerprint currently folds into.
    pub fn by_fingerprint(&self, fingerprint: &str) -> Option<&Incident> {
        let id = self.by_fingerprint.get(fingerprint)?;
        self.get(id)
    }

    /// The key of the latest occurrence of the incident a fingerprint folds into.
    pub fn latest_occurrence(&self, fingerprint: &str) -> Option<(&Incident, &Occurrence)> {
        let tracked = self.incidents.get(self.by_fingerprint.get(fingerprint)?)?;
        Some((&tracked.incident, tracked.occurrences.back()?))
    }

    /// Services that have incidents from `source`.
    pub fn services_from(&self, source: IncidentSource) -> HashSet<&str> {
        self.incidents
            .values()
            .filter(|tracked| tracked.incident.source == source)
            .map(|tracked| tracked.incident.service.as_str())
            .collect()
    }

    /// Active incidents of `kind` (the goals check's open `missing` incidents).
    pub fn active_of_kind(&self, kind: IssueKind) -> Vec<&Incident> {
        self.incidents
            .values()
            .map(|tracked| &tracked.incident)
            .filter(|incident| incident.kind == kind && incident.state.is_active())
            .collect()
    }

    /// Incidents matching `filter`: unresolved first, then most recently seen first.
    pub fn list(&self, filter: &Filter) -> Vec<Incident> {
        let mut found: Vec<&Incident> = self
            .incidents
            .values()
            .map(|tracked| &tracked.incident)
            .filter(|incident| {
                filter.state.is_none_or(|state| incident.state == state)
                    && filter
                        .service
                        .as_deref()
                        .is_none_or(|service| incident.service == service)
                    && filter
                        .severity
                        .is_none_or(|severity| incident.severity == severity)
            })
            .collect();
        found.sort_by(|a, b| {
            b.state
                .is_active()
                .cmp(&a.state.is_active())
                .then(b.last_seen.cmp(&a.last_seen))
                .then(b.id.cmp(&a.id))
        });
        found.into_iter().take(filter.limit).cloned().collect()
    }

    fn next_revision(&mut self) -> u64 {
        self.revision += 1;
        self.revision
    }

    // ------------------------------------------------------------------ signals

    /// Fold one signal in.
    pub fn apply(&mut self, signal: Signal, now: DateTime<Utc>, out: &mut Applied) {
        // A watcher issue this book does not know as an occurrence: if it changes anything,
        // its id is remembered in the database with the change.
        let new_issue = signal.issue_id.filter(|_| {
            self.by_fingerprint
                .get(&signal.fingerprint)
                .and_then(|id| self.incidents.get(id))
                .is_none_or(|tracked| {
                    !tracked
                        .occurrences
                        .iter()
                        .any(|occurrence| occurrence.key == signal.occurrence)
                })
        });
        let before = out.tally;
        self.apply_signal(signal, now, out);
        if let Some(issue_id) = new_issue {
            let ignored =
                out.tally.duplicates > before.duplicates || out.tally.refused > before.refused;
            if !ignored {
                out.new_issue_ids.push(issue_id);
            }
        }
    }

    fn apply_signal(&mut self, signal: Signal, now: DateTime<Utc>, out: &mut Applied) {
        out.tally.received += 1;
        let existing = self
            .by_fingerprint
            .get(&signal.fingerprint)
            .copied()
            .filter(|id| self.incidents.contains_key(id));
        let Some(id) = existing else {
            if signal.resolved_at.is_some() {
                // The recovery of something never seen (or long pruned): nothing to resolve.
                out.tally.duplicates += 1;
            } else {
                self.open(signal, now, out);
            }
            return;
        };
        match self.effect(id, &signal) {
            Effect::Nothing => out.tally.duplicates += 1,
            Effect::Repeat => {
                out.tally.deduplicated += 1;
                self.refresh(id, &signal, now, out);
            }
            Effect::Resolve(at) => {
                out.tally.resolved += 1;
                self.refresh(id, &signal, now, out);
                let source = signal.source.as_str().to_string();
                self.resolve_incident(id, at, Some(source), None, now, out);
            }
            Effect::Recur => {
                // On the curator's clock (when it resolved), not the source's.
                let recent = self
                    .incidents
                    .get(&id)
                    .is_some_and(|tracked| now - tracked.last_transition <= self.rules.flap_window);
                if recent {
                    if let Some(tracked) = self.incidents.get_mut(&id) {
                        remember(tracked, &signal, false);
                        tracked.incident.count += initial_sightings(signal.sightings);
                    }
                    out.tally.reopened += 1;
                    self.reopen(id, &signal, now, out);
                } else {
                    // Long enough ago: this is a new incident; the old one stays as history.
                    self.open(signal, now, out);
                }
            }
            Effect::Reopen => {
                out.tally.reopened += 1;
                self.reopen(id, &signal, now, out);
            }
        }
    }

    /// Decide what `signal` does to incident `id`, and record its occurrence.
    fn effect(&mut self, id: Ulid, signal: &Signal) -> Effect {
        self.touch(id);
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return Effect::Nothing;
        };
        let active = tracked.incident.state.is_active();
        let latest = tracked.occurrences.len().saturating_sub(1);
        let known = tracked
            .occurrences
            .iter()
            .position(|occurrence| occurrence.key == signal.occurrence);
        let Some(position) = known else {
            // A new occurrence of the same trouble.
            if let Some(at) = signal.resolved_at {
                // Its recovery, never having seen it open: it is over, and so, as the source
                // tracks one occurrence at a time, is anything older.
                remember(tracked, signal, true);
                return if active {
                    Effect::Resolve(at)
                } else {
                    Effect::Nothing
                };
            }
            if !active {
                return Effect::Recur;
            }
            remember(tracked, signal, false);
            tracked.incident.count += initial_sightings(signal.sightings);
            return Effect::Repeat;
        };
        let occurrence = &mut tracked.occurrences[position];
        if occurrence.resolved {
            // A finished occurrence never comes back: this is a replay or out of order.
            return Effect::Nothing;
        }
        let added = match signal.sightings {
            Sightings::Total(total) => total.saturating_sub(occurrence.count),
            // A notification that the alert stopped firing is not a sighting.
            Sightings::One if signal.resolved_at.is_some() => 0,
            Sightings::One => 1,
        };
        let later = signal.last_seen > occurrence.last_seen;
        occurrence.count += added;
        if later {
            occurrence.last_seen = signal.last_seen;
        }
        tracked.incident.count += added;
        if let Some(at) = signal.resolved_at {
            occurrence.resolved = true;
            return if active && position == latest {
                Effect::Resolve(at)
            } else {
                Effect::Nothing
            };
        }
        if added == 0 && !later {
            return Effect::Nothing;
        }
        if active {
            Effect::Repeat
        } else {
            // Still being seen after it was resolved by hand.
            Effect::Reopen
        }
    }

    /// Bring a known incident up to date with a signal: times, text, facts, severity.
    fn refresh(&mut self, id: Ulid, signal: &Signal, now: DateTime<Utc>, out: &mut Applied) {
        self.touch(id);
        self.touch_dirty(id);
        let revision = self.next_revision();
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return;
        };
        let incident = &mut tracked.incident;
        if signal.last_seen > incident.last_seen {
            incident.last_seen = signal.last_seen;
        }
        update_text(&mut incident.message, &signal.message);
        update_text(&mut incident.recommendation, &signal.recommendation);
        for (key, value) in &signal.facts {
            if incident.facts.get(key) != Some(value) {
                incident.facts.insert(key.clone(), value.clone());
            }
        }
        if !signal.labels.is_empty() && incident.labels != signal.labels {
            incident.labels = signal.labels.clone();
        }
        if !signal.annotations.is_empty() && incident.annotations != signal.annotations {
            incident.annotations = signal.annotations.clone();
        }
        incident.updated_at = now;
        incident.revision = revision;
        // A trouble that became its family's graver kind (a crash now a restart loop): the
        // incident is now about that, and says so.
        let became = signal.resolved_at.is_none()
            && signal.kind != incident.kind
            && !incident.kind.supersedes(signal.kind);
        if became {
            incident.kind = signal.kind;
            incident.title = signal.title.clone();
        }
        let escalated = incident.state.is_active()
            && signal.resolved_at.is_none()
            && (signal.severity > incident.severity || became);
        if escalated {
            let from = incident.severity;
            let to = from.max(signal.severity);
            incident.severity = to;
            self.active_by_severity[severity_index(from)] -= 1;
            self.active_by_severity[severity_index(to)] += 1;
            self.notable(id, IncidentChange::Escalated, now, out);
        } else {
            self.dirty.insert(id);
        }
    }

    fn open(&mut self, signal: Signal, now: DateTime<Utc>, out: &mut Applied) {
        if self.active_total() >= self.rules.max_active {
            out.tally.refused += 1;
            return;
        }
        out.tally.opened += 1;
        // A derived id can only be taken already if this very signal opened an incident
        // that later resolved and aged out of the flapping window: give the new one its own.
        let id = if self.incidents.contains_key(&signal.incident_id) {
            Ulid::new()
        } else {
            signal.incident_id
        };
        self.touch(id);
        self.touch_fingerprint(&signal.fingerprint);
        let occurrences = VecDeque::from([Occurrence {
            key: signal.occurrence.clone(),
            count: initial_sightings(signal.sightings),
            last_seen: signal.last_seen,
            resolved: false,
        }]);
        let incident = Incident {
            id,
            fingerprint: signal.fingerprint.clone(),
            source: signal.source,
            service: signal.service,
            kind: signal.kind,
            subject: signal.subject,
            severity: signal.severity,
            state: IncidentState::Open,
            title: signal.title,
            message: signal.message,
            recommendation: signal.recommendation,
            first_seen: signal.first_seen,
            last_seen: signal.last_seen,
            updated_at: now,
            acknowledged_at: None,
            acknowledged_by: None,
            resolved_at: None,
            resolved_by: None,
            comment: None,
            count: initial_sightings(signal.sightings),
            reopened: 0,
            flapping: false,
            silenced: None,
            issue_ids: signal.issue_id.into_iter().collect(),
            labels: signal.labels,
            annotations: signal.annotations,
            facts: signal.facts,
            change: IncidentChange::Opened,
            notify: false,
            revision: 0,
        };
        let silenced = self.silences.matching(&incident, now);
        self.active_by_severity[severity_index(incident.severity)] += 1;
        self.by_fingerprint.insert(signal.fingerprint, id);
        self.incidents.insert(
            id,
            Tracked {
                incident: Incident {
                    silenced,
                    ..incident
                },
                occurrences,
                reopens: VecDeque::new(),
                last_transition: now,
                notified_active: false,
            },
        );
        self.notable(id, IncidentChange::Opened, now, out);
    }

    fn reopen(&mut self, id: Ulid, signal: &Signal, now: DateTime<Utc>, out: &mut Applied) {
        self.touch(id);
        let rules = self.rules;
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return;
        };
        self.resolved.remove(&(tracked.last_transition, id));
        let incident = &mut tracked.incident;
        incident.state = IncidentState::Open;
        incident.severity = signal.severity;
        incident.kind = signal.kind;
        incident.title = signal.title.clone();
        incident.acknowledged_at = None;
        incident.acknowledged_by = None;
        incident.resolved_at = None;
        incident.resolved_by = None;
        incident.comment = None;
        incident.reopened += 1;
        if signal.last_seen > incident.last_seen {
            incident.last_seen = signal.last_seen;
        }
        update_text(&mut incident.message, &signal.message);
        update_text(&mut incident.recommendation, &signal.recommendation);
        incident.facts.extend(signal.facts.clone());
        self.active_by_severity[severity_index(incident.severity)] += 1;
        tracked.last_transition = now;
        tracked.reopens.push_back(now);
        while tracked
            .reopens
            .front()
            .is_some_and(|&at| now - at > rules.flap_window)
        {
            tracked.reopens.pop_front();
        }
        let starts_flapping = !incident.flapping && tracked.reopens.len() >= rules.flap_threshold;
        if starts_flapping {
            incident.flapping = true;
            self.flapping.insert(id);
        }
        incident.silenced = self.silences.matching(incident, now);
        let change = if starts_flapping {
            IncidentChange::Flapping
        } else {
            IncidentChange::Reopened
        };
        self.notable(id, change, now, out);
    }

    fn resolve_incident(
        &mut self,
        id: Ulid,
        at: DateTime<Utc>,
        by: Option<String>,
        comment: Option<String>,
        now: DateTime<Utc>,
        out: &mut Applied,
    ) {
        self.touch(id);
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return;
        };
        let incident = &mut tracked.incident;
        if !incident.state.is_active() {
            return;
        }
        self.active_by_severity[severity_index(incident.severity)] -= 1;
        incident.state = IncidentState::Resolved;
        incident.resolved_at = Some(at);
        incident.resolved_by = by;
        if comment.is_some() {
            incident.comment = comment;
        }
        tracked.last_transition = now;
        self.resolved.insert((now, id));
        self.notable(id, IncidentChange::Resolved, now, out);
    }

    /// Record a notable change: new revision, `notify` decided, a copy kept for forwarding,
    /// and the incident marked to be saved before the caller answers.
    fn notable(&mut self, id: Ulid, change: IncidentChange, now: DateTime<Utc>, out: &mut Applied) {
        self.touch(id);
        let revision = self.next_revision();
        let Some(tracked) = self.incidents.get_mut(&id) else {
            return;
        };
        let active = tracked.incident.state.is_active();
        let worth = match change {
            IncidentChange::Opened
            | IncidentChange::Reopened
            | IncidentChange::Resolved
            | IncidentChange::Flapping
            | IncidentChange::Settled
            | IncidentChange::Unsilenced => active != tracked.notified_active,
            // News only for people who know it is open.
            IncidentChange::Escalated => active && tracked.notified_active,
            IncidentChange::Acknowledged | IncidentChange::Silenced => false,
        };
        let notify = if !worth {
            false
        } else if tracked.incident.silenced.is_some() {
            out.suppressed.silenced += 1;
            false
        } else if tracked.incident.flapping {
            out.suppressed.flapping += 1;
            false
        } else {
            tracked.notified_active = active;
            true
        };
        let incident = &mut tracked.incident;
        incident.change = change;
        incident.notify = notify;
        incident.revision = revision;
        incident.updated_at = now;
        out.notable.push(incident.clone());
        out.save_ids.push(id);
    }

    /// Copy what must be saved into `out.to_save`: call once the operation is complete, while
    /// still holding the book, so the copies are the final state.
    pub fn seal(&mut self, out: &mut Applied) {
        let mut seen = HashSet::new();
        for id in std::mem::take(&mut out.save_ids) {
            if !seen.insert(id) {
                continue;
            }
            self.touch_dirty(id);
            self.dirty.remove(&id);
            if let Some(tracked) = self.incidents.get(&id) {
                out.to_save.push(tracked.clone());
            }
        }
    }

    /// Incidents changed by repeats since the last call: what the periodic flush saves.
    pub fn take_dirty(&mut self) -> Vec<Tracked> {
        let ids: Vec<Ulid> = self.dirty.drain().collect();
        ids.iter()
            .filter_map(|id| self.incidents.get(id).cloned())
            .collect()
    }

    /// Mark incidents to be saved by the next periodic flush (after a failed save).
    pub fn mark_dirty(&mut self, ids: impl Iterator<Item = Ulid>) {
        self.dirty.extend(ids);
    }

    /// The incidents changed by repeats since they were last saved.
    pub fn dirty_ids(&self) -> Vec<Ulid> {
        self.dirty.iter().copied().collect()
    }

    /// Incident `id` with its bookkeeping, as the book holds it.
    pub fn tracked(&self, id: &Ulid) -> Option<&Tracked> {
        self.incidents.get(id)
    }

    /// Repeats saved at these revisions: no longer dirty, unless they changed since.
    pub fn mark_saved(&mut self, saved: &[(Ulid, u64)]) {
        for (id, revision) in saved {
            self.stored.insert(*id, *revision);
            let current = self
                .incidents
                .get(id)
                .map(|tracked| tracked.incident.revision);
            if current == Some(*revision) {
                self.dirty.remove(id);
            }
        }
    }

    /// The ids of every incident held.
    pub fn ids(&self) -> Vec<Ulid> {
        self.incidents.keys().copied().collect()
    }

    /// The issue ids among `signals` that this book does not know as an occurrence of the
    /// incident their fingerprint folds into: those that may be new, or a redelivery of
    /// something long gone.
    pub fn unknown_issues(&self, signals: &[Signal]) -> HashSet<Ulid> {
        signals
            .iter()
            .filter_map(|signal| {
                let issue_id = signal.issue_id?;
                let known = self
                    .by_fingerprint
                    .get(&signal.fingerprint)
                    .and_then(|id| self.incidents.get(id))
                    .is_some_and(|tracked| {
                        tracked
                            .occurrences
                            .iter()
                            .any(|occurrence| occurrence.key == signal.occurrence)
                    });
                (!known).then_some(issue_id)
            })
            .collect()
    }

    /// Whether every signal only repeats what an open incident already shows: its
    /// occurrence is known and still firing, and it neither resolves, escalates nor changes
    /// the incident's kind. Such a batch changes count, last_seen and text only, which are
    /// saved behind, so it may be applied in place ([`Book::apply`] without
    /// [`Book::begin`]): nothing is written before the answer, so nothing can fail and
    /// nothing needs undoing, and no copy of each incident is taken.
    pub fn only_repeats(&self, signals: &[Signal]) -> bool {
        signals.iter().all(|signal| {
            signal.resolved_at.is_none()
                && self
                    .by_fingerprint
                    .get(&signal.fingerprint)
                    .and_then(|id| self.incidents.get(id))
                    .is_some_and(|tracked| {
                        let incident = &tracked.incident;
                        incident.state.is_active()
                            && signal.severity <= incident.severity
                            && (signal.kind == incident.kind
                                || incident.kind.supersedes(signal.kind))
                            && tracked.occurrences.iter().any(|occurrence| {
                                occurrence.key == signal.occurrence && !occurrence.resolved
                            })
                    })
        })
    }

    /// Match every incident against the silences again (after a restart: a crash between
    /// saving a silence and saving the incidents it marked must not leave them unmarked).
    pub fn resync_silences(&mut self, now: DateTime<Utc>, out: &mut Applied) {
        self.remark_silenced(now, out);
    }

    // ------------------------------------------------------------------ by hand

    pub fn acknowledge(
        &mut self,
        id: Ulid,
        by: Option<String>,
        comment: Option<String>,
        now: DateTime<Utc>,
        out: &mut Applied,
    ) -> Result<Incident, ManualError> {
        self.touch(id);
        let tracked = self.incidents.get_mut(&id).ok_or(ManualError::NotFound)?;
        match tracked.incident.state {
            IncidentState::Resolved => return Err(ManualError::Resolved),
            IncidentState::Acknowledged => return Ok(tracked.incident.clone()),
            IncidentState::Open => {}
        }
        let incident = &mut tracked.incident;
        incident.state = IncidentState::Acknowledged;
        incident.acknowledged_at = Some(now);
        incident.acknowledged_by = by;
        if comment.is_some() {
            incident.comment = comment;
        }
        self.notable(id, IncidentChange::Acknowledged, now, out);
        Ok(self.incidents[&id].incident.clone())
    }

    /// Resolve by hand. Resolving a resolved incident changes nothing. If its source still
    /// reports the trouble afterwards, it reopens.
    pub fn resolve(
        &mut self,
        id: Ulid,
        by: Option<String>,
        comment: Option<String>,
        now: DateTime<Utc>,
        out: &mut Applied,
    ) -> Result<Incident, ManualError> {
        let tracked = self.incidents.get(&id).ok_or(ManualError::NotFound)?;
        if tracked.incident.state.is_active() {
            self.resolve_incident(id, now, by, comment, now, out);
        }
        Ok(self.incidents[&id].incident.clone())
    }

    // ------------------------------------------------------------------ silences

    /// Add a silence and mark the unresolved incidents it matches.
    pub fn add_silence(
        &mut self,
        silence: crate::silences::Compiled,
        now: DateTime<Utc>,
        out: &mut Applied,
    ) {
        self.touch_silences();
        self.silences.add(silence);
        self.remark_silenced(now, out);
    }

    /// Remove a silence; incidents it held are unmarked (or taken over by another silence).
    pub fn remove_silence(
        &mut self,
        id: Ulid,
        now: DateTime<Utc>,
        out: &mut Applied,
    ) -> Option<Silence> {
        self.touch_silences();
        let removed = self.silences.remove(id, now)?;
        self.remark_silenced(now, out);
        Some(removed)
    }

    /// Match every incident against the silences in force now; record what changed. A
    /// resolved incident loses an ended silence quietly; it keeps the one it resolved under.
    fn remark_silenced(&mut self, now: DateTime<Utc>, out: &mut Applied) {
        let mut changes = Vec::new();
        for (id, tracked) in &self.incidents {
            let incident = &tracked.incident;
            let current = incident.silenced;
            let wanted = if incident.state.is_active() {
                self.silences.matching(incident, now)
            } else {
                current.filter(|silence| self.silences.contains(*silence))
            };
            if wanted != current {
                changes.push((*id, current, wanted, incident.state.is_active()));
            }
        }
        for (id, before, after, active) in changes {
            self.touch(id);
            let revision = self.next_revision();
            if let Some(tracked) = self.incidents.get_mut(&id) {
                tracked.incident.silenced = after;
                tracked.incident.revision = revision;
                tracked.incident.updated_at = now;
            }
            match (active, before, after) {
                (true, None, Some(_)) => self.notable(id, IncidentChange::Silenced, now, out),
                (true, Some(_), None) => self.notable(id, IncidentChange::Unsilenced, now, out),
                // Resolved, or handed from one silence to another: nothing to tell.
                _ => out.save_ids.push(id),
            }
        }
    }

    // ------------------------------------------------------------------ housekeeping

    /// Expire and start silences, settle flapping incidents, prune old resolved ones.
    pub fn housekeeping(&mut self, now: DateTime<Utc>, out: &mut Applied) -> bool {
        self.touch_silences();
        let silences_changed = self.silences.tick(now);
        if silences_changed {
            self.remark_silenced(now, out);
        }
        let settle = self.rules.flap_settle;
        let settled: Vec<Ulid> = self
            .flapping
            .iter()
            .filter(|id| {
                self.incidents
                    .get(id)
                    .is_none_or(|tracked| now - tracked.last_transition >= settle)
            })
            .copied()
            .collect();
        for id in settled {
            self.touch(id);
            self.flapping.remove(&id);
            if let Some(tracked) = self.incidents.get_mut(&id) {
                tracked.incident.flapping = false;
                tracked.reopens.clear();
                self.notable(id, IncidentChange::Settled, now, out);
            }
        }
        self.prune(now, out);
        silences_changed
    }

    /// Drop resolved incidents beyond RESOLVED_INCIDENTS_MAX, oldest first, and those
    /// resolved longer ago than RESOLVED_INCIDENTS_MAX_AGE.
    fn prune(&mut self, now: DateTime<Utc>, out: &mut Applied) {
        let cutoff = now - self.rules.resolved_max_age;
        while let Some(&(at, id)) = self.resolved.first() {
            if self.resolved.len() <= self.rules.resolved_max && at >= cutoff {
                break;
            }
            self.touch(id);
            self.touch_dirty(id);
            self.resolved.pop_first();
            self.flapping.remove(&id);
            self.dirty.remove(&id);
            if let Some(tracked) = self.incidents.remove(&id) {
                self.touch_fingerprint(&tracked.incident.fingerprint);
                if self.by_fingerprint.get(&tracked.incident.fingerprint) == Some(&id) {
                    self.by_fingerprint.remove(&tracked.incident.fingerprint);
                }
                let revision = self.next_revision();
                out.pruned.push((id, revision));
            }
        }
    }
}

fn set_or_remove<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: Option<V>) {
    match value {
        Some(value) => {
            map.insert(key, value);
        }
        None => {
            map.remove(&key);
        }
    }
}

fn set_member(set: &mut HashSet<Ulid>, id: Ulid, member: bool) {
    if member {
        set.insert(id);
    } else {
        set.remove(&id);
    }
}

fn initial_sightings(sightings: Sightings) -> u64 {
    match sightings {
        Sightings::Total(total) => total.max(1),
        Sightings::One => 1,
    }
}

/// Remember a new occurrence (and its issue id), forgetting the oldest beyond the bound.
fn remember(tracked: &mut Tracked, signal: &Signal, resolved: bool) {
    tracked.occurrences.push_back(Occurrence {
        key: signal.occurrence.clone(),
        count: initial_sightings(signal.sightings),
        last_seen: signal.last_seen,
        resolved,
    });
    if tracked.occurrences.len() > OCCURRENCES_KEPT {
        tracked.occurrences.pop_front();
    }
    if let Some(issue_id) = signal.issue_id {
        if !tracked.incident.issue_ids.contains(&issue_id) {
            tracked.incident.issue_ids.push(issue_id);
            if tracked.incident.issue_ids.len() > OCCURRENCES_KEPT {
                tracked.incident.issue_ids.remove(0);
            }
        }
    }
}

/// Take the latest text, unless the signal has none; compare first, so a repeat with the
/// same text allocates nothing.
fn update_text(field: &mut String, latest: &str) {
    if !latest.is_empty() && field != latest {
        *field = latest.to_string();
    }
}

/// A ULID made from a time and a key, the same every time: ids for incidents opened by
/// signals that carry no id of their own (alerts), so a redelivered signal opens the same one.
pub fn derived_id(at: DateTime<Utc>, key: &str) -> Ulid {
    let high = fnv1a(key.as_bytes(), 0xcbf2_9ce4_8422_2325);
    let low = fnv1a(key.as_bytes(), 0x6c62_272e_07bb_0142);
    let random = ((high as u128) << 16) | (low as u128 & 0xffff);
    Ulid::from_parts(at.timestamp_millis().max(0) as u64, random)
}

/// FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not promised to be).
pub fn fnv1a(bytes: &[u8], offset: u64) -> u64 {
    bytes.iter().fold(offset, |hash, &byte| {
        (hash ^ byte as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
pub(crate) mod tests;
