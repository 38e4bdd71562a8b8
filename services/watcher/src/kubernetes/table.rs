//! The pods as last seen, and what changed in each: decided here, without I/O, so every rule is
//! tested on its own.
//!
//! Two sorts of trouble. Conditions last while the pod shows them — an image that cannot be
//! pulled, a pod that cannot be scheduled or was evicted, a container not ready: the issue
//! opens when the condition (past its grace) appears and resolves when it goes. Terminations
//! happen — an OOM kill, a crash, restarts piling up: each new termination is one more
//! occurrence, and the issue resolves once the container has run and been ready for a whole
//! RESTART_LOOP_WINDOW, or when the pod is gone.
//!
//! A relist (after a 410 Gone, a reconnect, another replica taking over) or a watcher restart
//! shows the same pods again. What the table has seen before is not new; what it sees for the
//! first time is raised only if no such issue is open yet, so nothing opens twice.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStateTerminated, ContainerStatus, Pod};
use obs_model::IssueKind;
use serde_json::Value;

use super::detect::{self, Place};
use super::pod;
use super::pod_events::{Signal, Target};
use crate::issues::Detection;

/// An OOM kill the node reported and one the pod status shows are the same kill when this
/// close in time (the kubelet notices a little after the kernel).
const SAME_OOM_KILL: chrono::Duration = chrono::Duration::seconds(60);

/// The waiting reasons of an image that cannot be pulled.
const IMAGE_PULL_REASONS: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName"];

#[derive(Debug, Clone)]
pub struct Settings {
    pub restart_loop_threshold: usize,
    pub restart_loop_window: Duration,
    pub not_ready_after: Duration,
    pub unschedulable_after: Duration,
}

/// What to do with the issues, in one transaction.
#[derive(Debug)]
pub enum Outcome {
    /// A new occurrence: opens the issue or counts one more on the open one.
    Raise(Detection),
    /// Seen for the first time by this table: opens the issue unless it (or a graver one of its
    /// family) is open already.
    RaiseIfNew(Detection),
    Resolve {
        service: String,
        kind: IssueKind,
        subject: String,
        why: &'static str,
    },
    /// Every open issue about the subject.
    ResolveAll { subject: String, why: &'static str },
    /// Facts added to the open issue, if there is one; not a new occurrence.
    Amend {
        service: String,
        kind: IssueKind,
        subject: String,
        facts: BTreeMap<String, Value>,
    },
}

#[derive(Debug, Default)]
struct ContainerTrack {
    restart_count: i32,
    /// The last termination judged: finish time and exit code.
    last_termination: Option<String>,
    /// When restarts were seen, within the window.
    restarts: VecDeque<DateTime<Utc>>,
    /// Raised a crash, OOM kill or loop (or may have before a restart of the watcher) that a
    /// steady run resolves.
    troubled: bool,
    looping: bool,
    not_ready_since: Option<DateTime<Utc>>,
    /// When its last OOM kill the pod status showed ended.
    last_oom: Option<DateTime<Utc>>,
    /// When the node last reported an OOM kill in it: the container may run on, but it is not
    /// steady until a whole window after.
    last_node_oom: Option<DateTime<Utc>>,
}

struct Tracked {
    pod: Pod,
    service: String,
    containers: HashMap<String, ContainerTrack>,
    /// Conditions raised and not resolved: (subject, kind).
    held: BTreeSet<(String, IssueKind)>,
    /// What the pod's Events said, per (subject, kind): added to the issue when it opens.
    /// Bounded: a fixed set of keys per kind, each message at most 1 KiB.
    event_facts: BTreeMap<(String, IssueKind), BTreeMap<String, Value>>,
}

#[derive(Default)]
pub struct PodTable {
    pods: HashMap<String, Tracked>,
    /// Per watch stream (its namespace, or "" for all): the pods its current listing showed.
    listings: HashMap<String, HashSet<String>>,
}

impl PodTable {
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn keys(&self) -> HashSet<String> {
        self.pods.keys().cloned().collect()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.pods.contains_key(key)
    }

    /// The pod as last seen.
    pub fn get(&self, key: &str) -> Option<&Pod> {
        self.pods.get(key).map(|tracked| &tracked.pod)
    }

    /// A listing of `scope` begins (`Init`): the pods it shows are collected.
    pub fn begin_listing(&mut self, scope: &str) {
        self.listings.insert(scope.to_string(), HashSet::new());
    }

    /// A pod added, changed, or shown by a listing.
    pub fn observe(
        &mut self,
        scope: Option<&str>,
        pod: Pod,
        now: DateTime<Utc>,
        settings: &Settings,
    ) -> Vec<Outcome> {
        let Some(key) = pod::key(&pod) else {
            return Vec::new();
        };
        if let Some(listed) = scope.and_then(|scope| self.listings.get_mut(scope)) {
            listed.insert(key.clone());
        }
        let first = !self.pods.contains_key(&key);
        let service = pod::service(&pod);
        let tracked = self.pods.entry(key.clone()).or_insert_with(|| Tracked {
            pod: pod.clone(),
            service: service.clone(),
            containers: HashMap::new(),
            held: BTreeSet::new(),
            event_facts: BTreeMap::new(),
        });
        tracked.pod = pod;
        tracked.service = service;
        evaluate(&key, tracked, first, now, settings)
    }

    /// A pod deleted: every issue about it resolves.
    pub fn remove(&mut self, key: &str, why: &'static str) -> Vec<Outcome> {
        let Some(tracked) = self.pods.remove(key) else {
            return Vec::new();
        };
        let mut subjects = vec![key.to_string()];
        subjects.extend(
            tracked
                .containers
                .keys()
                .map(|name| format!("{key}/{name}")),
        );
        for listed in self.listings.values_mut() {
            listed.remove(key);
        }
        subjects
            .into_iter()
            .map(|subject| Outcome::ResolveAll { subject, why })
            .collect()
    }

    /// A listing of `scope` is complete (`InitDone`): the pods of its scope it did not show
    /// were deleted meanwhile.
    pub fn end_listing(&mut self, scope: &str) -> Vec<Outcome> {
        let Some(listed) = self.listings.remove(scope) else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .pods
            .keys()
            .filter(|key| in_scope(key, scope) && !listed.contains(*key))
            .cloned()
            .collect();
        gone.iter()
            .flat_map(|key| self.remove(key, "pod deleted"))
            .collect()
    }

    /// What an Event about one of the pods says: its facts go to the issues it concerns (open
    /// ones at once, others when they open). An OOM kill the node saw and the pod status did
    /// not is one more occurrence — only if it happened after the watcher started (`since`),
    /// so a relist or a restart of the watcher does not count old events again.
    pub fn event(&mut self, signal: Signal, since: DateTime<Utc>) -> Vec<Outcome> {
        let (key, container) = match &signal.target {
            Target::Pod { key, container } => (key.clone(), container.clone()),
            Target::Uid { uid, container_id } => {
                let Some((key, tracked)) = self
                    .pods
                    .iter()
                    .find(|(_, t)| t.pod.metadata.uid.as_deref() == Some(uid.as_str()))
                else {
                    return Vec::new();
                };
                let container = container_id.as_ref().and_then(|id| {
                    pod::container_statuses(&tracked.pod)
                        .iter()
                        .find(|s| s.container_id.as_deref().is_some_and(|c| c.contains(id)))
                        .map(|s| s.name.clone())
                });
                (key.clone(), container)
            }
        };
        // Only pods the watch shows: the namespaces and the label selector apply to events too.
        let Some(tracked) = self.pods.get_mut(&key) else {
            return Vec::new();
        };
        let container = container.or_else(|| match pod::container_statuses(&tracked.pod) {
            [only] => Some(only.name.clone()),
            _ => None,
        });
        let mut outcomes = Vec::new();
        for &kind in signal.kinds {
            let subject = match kind {
                IssueKind::Unschedulable | IssueKind::Evicted => key.clone(),
                _ => match &container {
                    Some(container) => format!("{key}/{container}"),
                    None => continue,
                },
            };
            let known = tracked
                .event_facts
                .entry((subject.clone(), kind))
                .or_default();
            // An event repeated with nothing new (same message, same count) is not sent on
            // again: kubelets repeat BackOff and probe events for as long as the trouble lasts.
            let news = signal
                .facts
                .iter()
                .any(|(name, value)| known.get(name) != Some(value));
            if !news {
                continue;
            }
            known.extend(signal.facts.clone());
            // A crash and its restart loop are one issue: amended once.
            let amended = outcomes.iter().any(|o| {
                matches!(o, Outcome::Amend { kind: k, subject: s, .. }
                    if *s == subject && k.family() == kind.family())
            });
            if amended {
                continue;
            }
            outcomes.push(Outcome::Amend {
                service: tracked.service.clone(),
                kind,
                subject,
                facts: signal.facts.clone(),
            });
        }
        if signal.oom_kill {
            if let Some(name) = &container {
                let track = tracked.containers.entry(name.clone()).or_default();
                // The pod status showed this kill already, or this event was seen (a relist).
                let counted = track
                    .last_oom
                    .is_some_and(|seen| (seen - signal.at).abs() <= SAME_OOM_KILL)
                    || track.last_node_oom == Some(signal.at);
                // core/v1 event times are whole seconds: one in the second the watcher
                // started counts as after it.
                let fresh = signal.at + chrono::Duration::seconds(1) > since;
                if !counted && fresh {
                    track.last_node_oom = Some(signal.at);
                    track.troubled = true;
                    let subject = format!("{key}/{name}");
                    let place = Place {
                        pod: &tracked.pod,
                        service: &tracked.service,
                        subject: &subject,
                        container: Some(name),
                    };
                    let mut detection = detect::oom_killed_by_node(&place, signal.at);
                    detection.facts.extend(signal.facts.clone());
                    // The Amend above found nothing open yet: the raise carries the facts.
                    outcomes.retain(|o| {
                        !matches!(
                            o,
                            Outcome::Amend {
                                kind: IssueKind::OomKilled,
                                ..
                            }
                        )
                    });
                    outcomes.push(Outcome::Raise(detection));
                }
            }
        }
        outcomes
    }

    /// Every pod judged again as of `now`: graces that ran out, runs that became steady.
    pub fn sweep(&mut self, now: DateTime<Utc>, settings: &Settings) -> Vec<Outcome> {
        let mut outcomes = Vec::new();
        for (key, tracked) in &mut self.pods {
            outcomes.extend(evaluate(key, tracked, false, now, settings));
        }
        outcomes
    }
}

/// Whether the pod `namespace/name` is in a stream's scope ("" is every namespace).
pub fn in_scope(key: &str, scope: &str) -> bool {
    scope.is_empty() || key.split('/').next() == Some(scope)
}

/// [`judge`], with what the pod's Events said added to the issues that open, and forgotten for
/// those that resolve.
fn evaluate(
    key: &str,
    tracked: &mut Tracked,
    first: bool,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Vec<Outcome> {
    let mut outcomes = judge(key, tracked, first, now, settings);
    for outcome in &mut outcomes {
        match outcome {
            Outcome::Raise(detection) | Outcome::RaiseIfNew(detection) => {
                if let Some(facts) = tracked
                    .event_facts
                    .get(&(detection.subject.clone(), detection.kind))
                {
                    detection.facts.extend(facts.clone());
                }
            }
            Outcome::Resolve { kind, subject, .. } => {
                tracked.event_facts.remove(&(subject.clone(), *kind));
            }
            _ => {}
        }
    }
    outcomes
}

fn judge(
    key: &str,
    tracked: &mut Tracked,
    first: bool,
    now: DateTime<Utc>,
    settings: &Settings,
) -> Vec<Outcome> {
    let mut outcomes = Vec::new();
    // Conditions present now, with their detection.
    let mut present: BTreeMap<(String, IssueKind), Detection> = BTreeMap::new();
    let pod = &tracked.pod;
    let service = tracked.service.as_str();
    let pod_place = Place {
        pod,
        service,
        subject: key,
        container: None,
    };
    let status = pod.status.as_ref();
    if status.and_then(|s| s.phase.as_deref()) == Some("Failed")
        && status.and_then(|s| s.reason.as_deref()) == Some("Evicted")
    {
        let message = status.and_then(|s| s.message.as_deref());
        present.insert(
            (key.to_string(), IssueKind::Evicted),
            detect::evicted(&pod_place, message),
        );
    }
    if let Some(scheduled) = pod::condition(pod, "PodScheduled")
        .filter(|c| c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
    {
        let since = scheduled
            .last_transition_time
            .as_ref()
            .map(pod::time)
            .unwrap_or(now);
        let pending = now - since;
        if pending >= grace(settings.unschedulable_after) {
            present.insert(
                (key.to_string(), IssueKind::Unschedulable),
                detect::unschedulable(
                    &pod_place,
                    pending.num_seconds(),
                    scheduled.message.as_deref(),
                ),
            );
        }
    }
    let ready_since = pod::condition(pod, "Ready")
        .filter(|c| c.status == "False")
        .and_then(|c| c.last_transition_time.as_ref())
        .map(pod::time);
    for status in pod::container_statuses(pod) {
        let subject = format!("{key}/{}", status.name);
        let first_container = !tracked.containers.contains_key(&status.name);
        let track = tracked.containers.entry(status.name.clone()).or_default();
        if first || first_container {
            // Whatever was open about it before this table knew it resolves once it runs
            // steadily.
            track.troubled = true;
        }
        let place = Place {
            pod,
            service,
            subject: &subject,
            container: Some(&status.name),
        };
        container(
            &place,
            status,
            track,
            first_container,
            now,
            settings,
            &mut outcomes,
        );
        let running = status.state.as_ref().and_then(|s| s.running.as_ref());
        let waiting = status.state.as_ref().and_then(|s| s.waiting.as_ref());
        if let Some(reason) = waiting
            .and_then(|w| w.reason.as_deref())
            .filter(|reason| IMAGE_PULL_REASONS.contains(reason))
        {
            present.insert(
                (subject.clone(), IssueKind::ImagePullFailed),
                detect::image_pull_failed(
                    &place,
                    reason,
                    waiting.and_then(|w| w.message.as_deref()),
                ),
            );
        }
        if running.is_some() && !status.ready {
            let since = *track
                .not_ready_since
                .get_or_insert(ready_since.unwrap_or(now));
            let for_how_long = now - since;
            if for_how_long >= grace(settings.not_ready_after) {
                present.insert(
                    (subject.clone(), IssueKind::Unhealthy),
                    detect::unhealthy(&place, for_how_long.num_seconds()),
                );
            }
        } else {
            track.not_ready_since = None;
        }
    }
    // Conditions that appeared open; those that went resolve. Seen for the first time, a pod
    // may have had issues open from before (a watcher restart): those not present resolve.
    let subjects: Vec<String> = std::iter::once(key.to_string())
        .chain(
            pod::container_statuses(pod)
                .iter()
                .map(|s| format!("{key}/{}", s.name)),
        )
        .collect();
    let mut gone: Vec<(String, IssueKind)> = tracked
        .held
        .iter()
        .filter(|held| !present.contains_key(*held))
        .cloned()
        .collect();
    if first {
        for subject in &subjects {
            for kind in CONDITIONS {
                let condition = (subject.clone(), kind);
                if !present.contains_key(&condition) && !gone.contains(&condition) {
                    gone.push(condition);
                }
            }
        }
    }
    for (subject, kind) in gone {
        tracked.held.remove(&(subject.clone(), kind));
        outcomes.push(Outcome::Resolve {
            service: service.to_string(),
            kind,
            subject,
            why: condition_over(kind),
        });
    }
    for (condition, detection) in present {
        if tracked.held.insert(condition) {
            outcomes.push(if first {
                Outcome::RaiseIfNew(detection)
            } else {
                Outcome::Raise(detection)
            });
        }
    }
    outcomes
}

const CONDITIONS: [IssueKind; 4] = [
    IssueKind::Evicted,
    IssueKind::Unschedulable,
    IssueKind::ImagePullFailed,
    IssueKind::Unhealthy,
];

fn condition_over(kind: IssueKind) -> &'static str {
    match kind {
        IssueKind::Unhealthy => "ready again",
        IssueKind::ImagePullFailed => "image pulled",
        IssueKind::Unschedulable => "scheduled",
        _ => "no longer shown",
    }
}

fn grace(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// A container's terminations, restarts and steady runs.
fn container(
    place: &Place<'_>,
    status: &ContainerStatus,
    track: &mut ContainerTrack,
    first_container: bool,
    now: DateTime<Utc>,
    settings: &Settings,
    outcomes: &mut Vec<Outcome>,
) {
    let window = grace(settings.restart_loop_window);
    let current = status.state.as_ref().and_then(|s| s.terminated.as_ref());
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref());
    let raise = |detection| {
        if first_container {
            Outcome::RaiseIfNew(detection)
        } else {
            Outcome::Raise(detection)
        }
    };
    // Containers stopped because their pod is being deleted (a rollout, a scale-down, a
    // restart asked for) were asked to stop: not crashes.
    let stopping = place.pod.metadata.deletion_timestamp.is_some();
    if let Some(terminated) = current.or(last).filter(|_| !stopping) {
        let identity = termination_identity(terminated);
        if track.last_termination.as_ref() != Some(&identity) {
            track.last_termination = Some(identity);
            // Seen for the first time, only a termination that still matters is judged: the
            // container is down now, or it ended within the window.
            let recent = current.is_some()
                || terminated
                    .finished_at
                    .as_ref()
                    .is_some_and(|finished| pod::time(finished) + window > now);
            if !first_container || recent {
                if terminated.reason.as_deref() == Some("OOMKilled") {
                    track.troubled = true;
                    let finished = terminated.finished_at.as_ref().map(pod::time);
                    let counted = matches!((track.last_node_oom, finished),
                        (Some(seen), Some(finished)) if (seen - finished).abs() <= SAME_OOM_KILL);
                    track.last_oom = finished.or(Some(now));
                    let detection = detect::oom_killed(place, terminated);
                    outcomes.push(if counted {
                        // The node's event counted this kill already: only its facts.
                        Outcome::Amend {
                            service: detection.service,
                            kind: detection.kind,
                            subject: detection.subject,
                            facts: detection.facts,
                        }
                    } else {
                        raise(detection)
                    });
                } else if terminated.exit_code != 0 {
                    track.troubled = true;
                    outcomes.push(raise(detect::crashed(place, terminated)));
                }
            }
        }
    }
    if !first_container && status.restart_count > track.restart_count {
        let added = (status.restart_count - track.restart_count) as usize;
        for _ in 0..added.min(settings.restart_loop_threshold) {
            track.restarts.push_back(now);
        }
    }
    track.restart_count = status.restart_count;
    while track
        .restarts
        .front()
        .is_some_and(|restart| *restart + window < now)
    {
        track.restarts.pop_front();
    }
    let back_off = status
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .and_then(|w| w.reason.as_deref())
        == Some("CrashLoopBackOff");
    if (back_off || track.restarts.len() >= settings.restart_loop_threshold) && !track.looping {
        track.looping = true;
        track.troubled = true;
        outcomes.push(raise(detect::restart_loop(
            place,
            track.restarts.len(),
            settings.restart_loop_window.as_secs(),
            back_off,
        )));
    }
    let steady = status.ready
        && status
            .state
            .as_ref()
            .and_then(|s| s.running.as_ref())
            .and_then(|running| running.started_at.as_ref())
            .is_some_and(|started| pod::time(started) + window <= now)
        && track
            .last_node_oom
            .is_none_or(|killed| killed + window <= now);
    if steady && track.troubled {
        track.troubled = false;
        track.looping = false;
        for kind in [
            IssueKind::Crashed,
            IssueKind::OomKilled,
            IssueKind::RestartLoop,
        ] {
            outcomes.push(Outcome::Resolve {
                service: place.service.to_string(),
                kind,
                subject: place.subject.to_string(),
                why: "running and ready for the restart-loop window",
            });
        }
    }
}

fn termination_identity(terminated: &ContainerStateTerminated) -> String {
    format!(
        "{}|{}|{}",
        terminated
            .finished_at
            .as_ref()
            .map(|t| pod::time(t).to_rfc3339())
            .unwrap_or_default(),
        terminated.container_id.as_deref().unwrap_or_default(),
        terminated.exit_code
    )
}

#[cfg(test)]
mod tests;
