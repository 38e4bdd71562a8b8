//! The dedup and lifecycle rules, with time as a parameter.

use super::*;
use chrono::Duration;
use obs_model::{Issue, IssueState, Matcher, SilenceIn};

fn rules() -> Rules {
    Rules {
        flap_threshold: 3,
        flap_window: Duration::minutes(10),
        flap_settle: Duration::minutes(5),
        max_active: 100,
        resolved_max: 100,
        resolved_max_age: Duration::days(7),
    }
}

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// A watcher issue, as it would arrive: `count` sightings, last seen at `seen` seconds.
fn issue(id: Ulid, service: &str, count: u64, seen: i64) -> Issue {
    Issue {
        id,
        kind: IssueKind::Crashed,
        service: service.into(),
        subject: "web".into(),
        severity: Severity::Warning,
        state: IssueState::Open,
        message: format!("{service} crashed"),
        recommendation: "look at its logs".into(),
        first_seen: at(0),
        last_seen: at(seen),
        resolved_at: None,
        count,
        facts: BTreeMap::from([("exit_code".to_string(), Value::from(1))]),
    }
}

fn recovered(mut issue: Issue, seen: i64) -> Issue {
    issue.state = IssueState::Resolved;
    issue.last_seen = at(seen);
    issue.resolved_at = Some(at(seen));
    issue
}

fn apply(book: &mut Book, issue: &Issue, now: i64) -> Applied {
    let mut applied = Applied::default();
    book.apply(crate::issues::signal(issue.clone()), at(now), &mut applied);
    book.seal(&mut applied);
    applied
}

/// A tracked incident for the store's tests.
pub(crate) fn tracked(service: &str) -> Tracked {
    let mut book = Book::new(rules());
    let applied = apply(&mut book, &issue(Ulid::new(), service, 1, 0), 0);
    applied.to_save.into_iter().next().unwrap()
}

fn only(book: &Book) -> Incident {
    let all = book.list(&Filter {
        limit: 100,
        ..Filter::default()
    });
    assert_eq!(all.len(), 1, "{all:#?}");
    all.into_iter().next().unwrap()
}

#[test]
fn an_issue_opens_an_incident_with_its_id_and_facts() {
    let mut book = Book::new(rules());
    let first = issue(Ulid::new(), "api", 1, 0);
    let applied = apply(&mut book, &first, 0);
    assert_eq!(applied.tally.opened, 1);
    assert_eq!(applied.notable.len(), 1);
    let incident = &applied.notable[0];
    assert_eq!(
        incident.id, first.id,
        "the first issue's id, so a redelivery opens the same"
    );
    assert_eq!(incident.fingerprint, "api/crashed/web");
    assert_eq!(incident.state, IncidentState::Open);
    assert_eq!(incident.change, IncidentChange::Opened);
    assert!(incident.notify);
    assert_eq!(incident.issue_ids, vec![first.id]);
    assert_eq!(incident.facts["exit_code"], 1);
    assert_eq!(
        applied.to_save.len(),
        1,
        "an opening is saved before answering"
    );
    assert_eq!(book.active_counts()[1], (Severity::Warning, 1));
}

#[test]
fn repeats_bump_count_and_last_seen_and_replays_change_nothing() {
    let mut book = Book::new(rules());
    let id = Ulid::new();
    apply(&mut book, &issue(id, "api", 1, 0), 0);
    let repeat = apply(&mut book, &issue(id, "api", 4, 30), 30);
    assert_eq!(repeat.tally.deduplicated, 1);
    assert!(repeat.notable.is_empty(), "a repeat is not forwarded");
    assert!(
        repeat.to_save.is_empty(),
        "a repeat is saved by the periodic flush"
    );
    assert_eq!(book.take_dirty().len(), 1);
    let incident = only(&book);
    assert_eq!(incident.count, 4);
    assert_eq!(incident.last_seen, at(30));

    // The same items again (an outbox redelivery): nothing moves.
    let replay = apply(&mut book, &issue(id, "api", 4, 30), 40);
    assert_eq!(replay.tally.duplicates, 1);
    let older = apply(&mut book, &issue(id, "api", 2, 10), 40);
    assert_eq!(older.tally.duplicates, 1);
    assert!(book.take_dirty().is_empty());
    assert_eq!(only(&book).count, 4);
    assert_eq!(only(&book).revision, incident.revision);
}

#[test]
fn another_occurrence_of_the_same_trouble_folds_into_the_open_incident() {
    let mut book = Book::new(rules());
    let (first, second) = (Ulid::new(), Ulid::new());
    apply(&mut book, &issue(first, "api", 2, 0), 0);
    let applied = apply(&mut book, &issue(second, "api", 3, 20), 20);
    assert_eq!(applied.tally.deduplicated, 1);
    let incident = only(&book);
    assert_eq!(incident.count, 5);
    assert_eq!(incident.issue_ids, vec![first, second]);
    // Another service is another incident.
    apply(&mut book, &issue(Ulid::new(), "db", 1, 20), 20);
    assert_eq!(book.len(), 2);
}

#[test]
fn recovery_resolves_once_and_a_later_occurrence_reopens() {
    let mut book = Book::new(rules());
    let first = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &first, 0);
    let resolved = apply(&mut book, &recovered(first.clone(), 60), 60);
    assert_eq!(resolved.tally.resolved, 1);
    let incident = &resolved.notable[0];
    assert_eq!(incident.state, IncidentState::Resolved);
    assert_eq!(incident.change, IncidentChange::Resolved);
    assert_eq!(incident.resolved_by.as_deref(), Some("watcher"));
    assert!(
        incident.notify,
        "people heard it opened, so they hear it resolved"
    );
    assert_eq!(book.active_counts()[1].1, 0);

    // Replays of the recovery and of the opening are no-ops.
    assert_eq!(
        apply(&mut book, &recovered(first.clone(), 60), 70)
            .tally
            .duplicates,
        1
    );
    assert_eq!(apply(&mut book, &first, 70).tally.duplicates, 1);
    assert_eq!(only(&book).state, IncidentState::Resolved);

    let again = issue(Ulid::new(), "api", 1, 120);
    let reopened = apply(&mut book, &again, 120);
    assert_eq!(reopened.tally.reopened, 1);
    let incident = &reopened.notable[0];
    assert_eq!(incident.id, first.id, "the same incident");
    assert_eq!(incident.change, IncidentChange::Reopened);
    assert_eq!(incident.reopened, 1);
    assert_eq!(incident.count, 2);
    assert!(incident.notify);
    assert!(incident.resolved_at.is_none());
}

#[test]
fn a_recurrence_long_after_resolution_is_a_new_incident() {
    let mut book = Book::new(rules());
    let first = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &first, 0);
    apply(&mut book, &recovered(first.clone(), 60), 60);
    let later = issue(Ulid::new(), "api", 1, 3600);
    let applied = apply(&mut book, &later, 3600);
    assert_eq!(applied.tally.opened, 1);
    assert_eq!(applied.notable[0].id, later.id);
    assert_eq!(book.len(), 2);
    assert_eq!(book.get(&first.id).unwrap().state, IncidentState::Resolved);
    assert_eq!(
        book.by_fingerprint("api/crashed/web").map(|i| i.id),
        Some(later.id)
    );
}

#[test]
fn flapping_is_marked_once_suppressed_and_settles() {
    let mut book = Book::new(rules());
    let mut now = 0;
    let mut cycle = |book: &mut Book| {
        let occurrence = issue(Ulid::new(), "api", 1, now);
        let opened = apply(book, &occurrence, now);
        now += 10;
        let resolved = apply(book, &recovered(occurrence, now), now);
        now += 10;
        (opened, resolved)
    };
    let (opened, _) = cycle(&mut book);
    assert!(opened.notable[0].notify);
    let (reopened, _) = cycle(&mut book);
    assert_eq!(reopened.notable[0].change, IncidentChange::Reopened);
    let (reopened, _) = cycle(&mut book);
    assert!(reopened.notable[0].notify);
    // The third reopen within the window: flapping.
    let (flapping, resolved) = cycle(&mut book);
    let incident = &flapping.notable[0];
    assert_eq!(incident.change, IncidentChange::Flapping);
    assert!(incident.flapping);
    assert!(!incident.notify, "marked, not re-paged");
    assert_eq!(flapping.suppressed.flapping, 1);
    assert!(!resolved.notable[0].notify);
    let (reopened, _) = cycle(&mut book);
    assert_eq!(reopened.notable[0].change, IncidentChange::Reopened);
    assert!(!reopened.notable[0].notify);
    assert_eq!(reopened.suppressed.flapping, 1);

    // Open again, then quiet for the settle period.
    let last = issue(Ulid::new(), "api", 1, now);
    apply(&mut book, &last, now);
    let mut early = Applied::default();
    book.housekeeping(at(now + 60), &mut early);
    assert!(early.notable.is_empty(), "not settled yet");
    let mut settled = Applied::default();
    book.housekeeping(at(now + 301), &mut settled);
    let incident = &settled.notable[0];
    assert_eq!(incident.change, IncidentChange::Settled);
    assert!(!incident.flapping);
    assert!(
        incident.notify,
        "it is open and people last heard it resolved"
    );
}

#[test]
fn a_higher_severity_escalates_and_is_forwarded() {
    let mut book = Book::new(rules());
    let id = Ulid::new();
    apply(&mut book, &issue(id, "api", 1, 0), 0);
    let mut worse = issue(id, "api", 2, 10);
    worse.severity = Severity::Critical;
    let applied = apply(&mut book, &worse, 10);
    assert_eq!(applied.notable[0].change, IncidentChange::Escalated);
    assert_eq!(applied.notable[0].severity, Severity::Critical);
    assert!(applied.notable[0].notify);
    assert_eq!(book.active_counts()[1].1, 0);
    assert_eq!(book.active_counts()[2].1, 1);
    // Lower again: the incident keeps the worst.
    apply(&mut book, &issue(id, "api", 3, 20), 20);
    assert_eq!(only(&book).severity, Severity::Critical);
}

#[test]
fn acknowledge_and_resolve_by_hand() {
    let mut book = Book::new(rules());
    let first = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &first, 0);
    let mut applied = Applied::default();
    let incident = book
        .acknowledge(
            first.id,
            Some("alice".into()),
            Some("on it".into()),
            at(5),
            &mut applied,
        )
        .unwrap();
    assert_eq!(incident.state, IncidentState::Acknowledged);
    assert_eq!(incident.acknowledged_by.as_deref(), Some("alice"));
    assert_eq!(applied.notable[0].change, IncidentChange::Acknowledged);
    assert!(!applied.notable[0].notify);
    // Twice: no change.
    let mut twice = Applied::default();
    book.acknowledge(first.id, None, None, at(6), &mut twice)
        .unwrap();
    assert!(twice.notable.is_empty());
    // A repeat keeps it acknowledged.
    apply(&mut book, &issue(first.id, "api", 2, 10), 10);
    assert_eq!(only(&book).state, IncidentState::Acknowledged);

    let mut resolved = Applied::default();
    let incident = book
        .resolve(first.id, Some("bob".into()), None, at(20), &mut resolved)
        .unwrap();
    assert_eq!(incident.state, IncidentState::Resolved);
    assert_eq!(incident.resolved_by.as_deref(), Some("bob"));
    assert_eq!(
        book.acknowledge(first.id, None, None, at(21), &mut Applied::default()),
        Err(ManualError::Resolved)
    );
    assert_eq!(
        book.resolve(Ulid::new(), None, None, at(21), &mut Applied::default())
            .err(),
        Some(ManualError::NotFound)
    );
    // The watcher still sees it: it reopens.
    let reopened = apply(&mut book, &issue(first.id, "api", 3, 30), 30);
    assert_eq!(reopened.tally.reopened, 1);
    assert_eq!(only(&book).state, IncidentState::Open);
    assert!(only(&book).acknowledged_by.is_none());
}

fn silence(book: &mut Book, service: &str, now: DateTime<Utc>) -> (Ulid, Applied) {
    let compiled = crate::silences::Compiled::from_input(
        SilenceIn {
            matchers: vec![Matcher {
                name: "service".into(),
                value: service.into(),
                is_regex: false,
                is_equal: true,
            }],
            starts_at: None,
            ends_at: now + Duration::hours(1),
            comment: "maintenance".into(),
            created_by: None,
        },
        now,
    )
    .unwrap();
    let id = compiled.silence.id;
    let mut applied = Applied::default();
    book.add_silence(compiled, now, &mut applied);
    book.seal(&mut applied);
    (id, applied)
}

#[test]
fn silences_mark_incidents_and_hold_notifications_back() {
    let mut book = Book::new(rules());
    let api = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &api, 0);
    let (silence_id, applied) = silence(&mut book, "db", at(1));
    assert!(applied.notable.is_empty(), "it matches nothing yet");

    // A new incident matching the silence: recorded, marked, not notified.
    let db = issue(Ulid::new(), "db", 1, 2);
    let opened = apply(&mut book, &db, 2);
    let incident = &opened.notable[0];
    assert_eq!(incident.silenced, Some(silence_id));
    assert!(!incident.notify);
    assert_eq!(opened.suppressed.silenced, 1);

    // A silence over an open incident people know of: marked, forwarded quietly.
    let (api_silence, applied) = silence(&mut book, "api", at(3));
    assert_eq!(applied.notable[0].change, IncidentChange::Silenced);
    assert_eq!(applied.notable[0].silenced, Some(api_silence));
    let resolved = apply(&mut book, &recovered(api, 4), 4);
    assert!(!resolved.notable[0].notify);
    assert_eq!(resolved.suppressed.silenced, 1);

    // The db silence ends while db is still open: people hear of it now.
    let mut ended = Applied::default();
    book.remove_silence(silence_id, at(5), &mut ended).unwrap();
    let incident = &ended.notable[0];
    assert_eq!(incident.change, IncidentChange::Unsilenced);
    assert_eq!(incident.silenced, None);
    assert!(incident.notify);

    // The api silence expires: api is resolved, so it loses the mark quietly.
    let mut expired = Applied::default();
    book.housekeeping(at(3) + Duration::hours(2), &mut expired);
    book.seal(&mut expired);
    assert!(expired.notable.is_empty());
    assert_eq!(expired.to_save.len(), 1);
    assert!(book.silences.is_empty());
}

#[test]
fn resolved_incidents_are_pruned_by_count_and_age() {
    let mut book = Book::new(Rules {
        resolved_max: 2,
        ..rules()
    });
    let mut ids = Vec::new();
    for (index, service) in ["a", "b", "c", "d"].iter().enumerate() {
        let occurrence = issue(Ulid::new(), service, 1, index as i64);
        apply(&mut book, &occurrence, index as i64);
        apply(
            &mut book,
            &recovered(occurrence.clone(), 10 + index as i64),
            20 + index as i64,
        );
        ids.push(occurrence.id);
    }
    apply(&mut book, &issue(Ulid::new(), "open", 1, 30), 30);
    let mut pruned = Applied::default();
    book.housekeeping(at(40), &mut pruned);
    assert_eq!(
        pruned.pruned.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        ids[..2].to_vec(),
        "the oldest resolutions go first"
    );
    assert_eq!(book.len(), 3);
    assert!(book.by_fingerprint("a/crashed/web").is_none());
    let mut aged = Applied::default();
    book.housekeeping(at(40) + Duration::days(8), &mut aged);
    assert_eq!(aged.pruned.len(), 2);
    assert_eq!(book.len(), 1, "open incidents are never pruned");
}

#[test]
fn opening_beyond_the_limit_is_refused() {
    let mut book = Book::new(Rules {
        max_active: 1,
        ..rules()
    });
    let api = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &api, 0);
    let refused = apply(&mut book, &issue(Ulid::new(), "db", 1, 0), 0);
    assert_eq!(refused.tally.refused, 1);
    assert_eq!(book.len(), 1);
    // Repeats of what exists still count.
    assert_eq!(
        apply(&mut book, &issue(api.id, "api", 2, 5), 5)
            .tally
            .deduplicated,
        1
    );
}

#[test]
fn alerts_count_every_notification_and_resolve_their_occurrence() {
    let mut book = Book::new(rules());
    let signal = |resolved: bool, now: i64| Signal {
        fingerprint: "alertmanager/abc".into(),
        source: IncidentSource::Alertmanager,
        service: "api".into(),
        kind: IssueKind::Alert,
        subject: "HighErrorRate".into(),
        severity: Severity::Critical,
        title: "api answers 5xx".into(),
        message: "5 % fail".into(),
        recommendation: String::new(),
        facts: BTreeMap::new(),
        labels: BTreeMap::from([("alertname".to_string(), "HighErrorRate".to_string())]),
        annotations: BTreeMap::new(),
        occurrence: at(0).to_rfc3339(),
        issue_id: None,
        sightings: Sightings::One,
        first_seen: at(0),
        last_seen: at(now),
        resolved_at: resolved.then(|| at(now)),
        incident_id: derived_id(at(0), "alertmanager/abc"),
    };
    let mut applied = Applied::default();
    book.apply(signal(false, 0), at(0), &mut applied);
    book.apply(signal(false, 60), at(60), &mut applied);
    book.apply(signal(true, 120), at(120), &mut applied);
    book.apply(signal(true, 180), at(180), &mut applied);
    assert_eq!(applied.tally.opened, 1);
    assert_eq!(applied.tally.deduplicated, 1);
    assert_eq!(applied.tally.resolved, 1);
    assert_eq!(applied.tally.duplicates, 1);
    let incident = only(&book);
    assert_eq!(incident.count, 2);
    assert_eq!(incident.state, IncidentState::Resolved);
    assert_eq!(incident.resolved_by.as_deref(), Some("alertmanager"));
    assert_eq!(incident.id, derived_id(at(0), "alertmanager/abc"));
}

#[test]
fn a_restored_book_carries_on_where_it_stopped() {
    let mut book = Book::new(rules());
    let api = issue(Ulid::new(), "api", 1, 0);
    let mut saved = apply(&mut book, &api, 0).to_save;
    let db = issue(Ulid::new(), "db", 1, 0);
    apply(&mut book, &db, 0);
    saved.extend(apply(&mut book, &recovered(db, 5), 5).to_save);

    let mut restored = Book::new(rules());
    restored.restore(saved, Vec::new());
    assert_eq!(restored.len(), 2);
    assert_eq!(restored.active_counts()[1].1, 1);
    // A replay is still a replay; a repeat still folds in, with a higher revision.
    assert_eq!(apply(&mut restored, &api, 10).tally.duplicates, 1);
    apply(&mut restored, &issue(api.id, "api", 2, 10), 10);
    let incident = restored.get(&api.id).unwrap();
    assert_eq!(incident.count, 2);
    assert!(incident.revision > book.get(&api.id).unwrap().revision - 1);
}

/// Everything a caller can see of a book: incidents, open counts, silences, dirty ids.
type View = (Vec<Incident>, [(Severity, usize); 3], usize, Vec<Ulid>);

fn view(book: &Book) -> View {
    let all = book.list(&Filter {
        limit: 1000,
        ..Filter::default()
    });
    let mut dirty: Vec<Ulid> = book.dirty.iter().copied().collect();
    dirty.sort();
    (all, book.active_counts(), book.silences.len(), dirty)
}

#[test]
fn a_captured_change_leaves_the_book_as_it_was_and_redo_puts_it_in_place() {
    let short = Rules {
        resolved_max: 1,
        ..rules()
    };
    let api = issue(Ulid::new(), "api", 1, 0);
    let db = issue(Ulid::new(), "db", 1, 0);
    let old = issue(Ulid::new(), "old", 1, 0);
    let build = || {
        let mut book = Book::new(short);
        apply(&mut book, &api, 0);
        apply(&mut book, &db, 0);
        apply(&mut book, &old, 0);
        apply(&mut book, &recovered(old.clone(), 1), 1);
        book
    };
    let web = Ulid::new();
    let silence = SilenceIn {
        matchers: vec![Matcher {
            name: "service".into(),
            value: "web".into(),
            is_regex: false,
            is_equal: true,
        }],
        starts_at: None,
        ends_at: at(3600),
        comment: "later".into(),
        created_by: None,
    };
    let compiled = crate::silences::Compiled::from_input(silence, at(60)).unwrap();
    // The same operations: directly, and computed, captured, then redone.
    let operations = |book: &mut Book| {
        let mut applied = Applied::default();
        for signal in [
            issue(api.id, "api", 5, 60),
            recovered(db.clone(), 60),
            issue(web, "web", 1, 60),
        ] {
            book.apply(crate::issues::signal(signal), at(60), &mut applied);
        }
        let compiled = compiled.clone();
        book.add_silence(compiled, at(60), &mut applied);
        book.acknowledge(api.id, None, None, at(61), &mut applied)
            .unwrap();
        // Two resolved now, one kept: the oldest is pruned.
        book.housekeeping(at(62), &mut applied);
        book.seal(&mut applied);
        applied
    };
    let mut direct = build();
    let expected = operations(&mut direct);
    assert_eq!(expected.pruned.len(), 1);

    let mut book = build();
    let before = view(&book);
    book.begin();
    let applied = operations(&mut book);
    assert_eq!(applied.notable, expected.notable);
    let change = book.capture();
    assert_eq!(view(&book), before, "captured: the book is as it was");
    let stored: Vec<(Ulid, Option<u64>)> = applied
        .to_save
        .iter()
        .map(|tracked| (tracked.incident.id, Some(tracked.incident.revision)))
        .collect();
    book.redo(change, &stored);
    assert_eq!(view(&book), view(&direct), "redone: as if applied directly");
    assert_eq!(book.revision, direct.revision);
    assert_eq!(
        book.stored_revision(&api.id),
        Some(direct.get(&api.id).unwrap().revision)
    );
}

#[test]
fn a_crash_that_becomes_a_restart_loop_is_one_incident_that_escalates() {
    let mut book = Book::new(rules());
    let id = Ulid::new();
    let crash = issue(id, "api", 1, 0);
    let opened = apply(&mut book, &crash, 0);
    assert!(opened.notable[0].notify, "people hear of the crash");
    // The watcher turns the same issue into the loop: same id, same fingerprint family.
    let mut looping = issue(id, "api", 3, 20);
    looping.kind = IssueKind::RestartLoop;
    looping.severity = Severity::Critical;
    looping.message = "api started 3 times in 300 s - restart loop".into();
    let escalated = apply(&mut book, &looping, 20);
    assert_eq!(escalated.tally.opened, 0, "no second incident");
    assert_eq!(escalated.notable.len(), 1);
    let incident = &escalated.notable[0];
    assert_eq!(incident.change, IncidentChange::Escalated);
    assert!(
        incident.notify,
        "people who heard of the crash hear it escalated"
    );
    assert_eq!(incident.kind, IssueKind::RestartLoop);
    assert_eq!(incident.severity, Severity::Critical);
    assert_eq!(incident.title, "api: restart_loop (web)");
    assert_eq!(
        incident.message,
        "api started 3 times in 300 s - restart loop"
    );
    assert_eq!(incident.id, id);
    assert_eq!(only(&book).count, 3);
    assert_eq!(book.active_counts()[1], (Severity::Warning, 0));
    assert_eq!(book.active_counts()[2], (Severity::Critical, 1));
}

/// What a batch does when computed the committed way (begin, apply, seal): whether it has
/// anything to store before the answer.
fn stores_something(book: &mut Book, signals: &[Signal], now: i64) -> bool {
    let mut applied = Applied::default();
    book.begin();
    for signal in signals {
        book.apply(signal.clone(), at(now), &mut applied);
    }
    book.seal(&mut applied);
    book.capture();
    !applied.nothing_to_store()
}

#[test]
fn only_repeats_is_said_of_batches_with_nothing_to_store_only() {
    let mut book = Book::new(rules());
    let first = issue(Ulid::new(), "api", 1, 0);
    apply(&mut book, &first, 0);
    let alert = |count: u64, seen: i64| {
        let mut signal = crate::issues::signal(issue(first.id, "api", count, seen));
        signal.sightings = Sightings::One;
        signal
    };
    let mut graver = alert(1, 20);
    graver.severity = Severity::Critical;
    let mut resolving = alert(1, 20);
    resolving.resolved_at = Some(at(20));
    let mut another_kind = alert(1, 20);
    another_kind.kind = IssueKind::OomKilled;
    let mut unknown = alert(1, 20);
    unknown.fingerprint = "elsewhere".into();
    let mut new_occurrence = alert(1, 20);
    new_occurrence.occurrence = "another".into();
    let cases = [
        (vec![alert(2, 10)], true),
        (vec![alert(2, 10), alert(3, 11)], true),
        (vec![alert(2, 10), graver], false),
        (vec![resolving], false),
        (vec![another_kind], false),
        (vec![unknown], false),
        (vec![alert(2, 10), new_occurrence], false),
    ];
    for (signals, repeats) in cases {
        assert_eq!(book.only_repeats(&signals), repeats, "{signals:#?}");
        if repeats {
            assert!(!stores_something(&mut book, &signals, 30), "{signals:#?}");
        }
    }
    // Applied in place, a repeat counts as the committed path would.
    let before = only(&book).count;
    let mut applied = Applied::default();
    book.apply(alert(2, 40), at(40), &mut applied);
    assert_eq!(applied.tally.deduplicated, 1);
    assert!(applied.nothing_to_store());
    assert_eq!(only(&book).count, before + 1);
    assert_eq!(book.dirty_ids(), vec![only(&book).id]);
}
