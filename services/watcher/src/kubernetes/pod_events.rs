//! What a core/v1 Event says about a pod: the issue kinds it adds facts to (the scheduler's
//! reasons, the registry's answer, the probe's output, the kubelet's liveness kills) and, for
//! the node's OOM killer, an occurrence the pod status may never show (a child process killed,
//! not the container's main one).
//!
//! core/v1 rather than events.k8s.io/v1: the API server serves the same Event objects under
//! both, core/v1 is in the same API group as pods (one RBAC rule: `""` pods, pods/log, events),
//! its `involvedObject.fieldPath` names the container, and `kubectl get events` reads it.
//!
//! The pod status stays the truth for conditions (an Event is a record that may be an hour old):
//! Events never open or resolve an `unschedulable`, `image_pull_failed`, `evicted` or
//! `unhealthy` issue on their own; they only add their facts to it, now or when it opens.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use obs_model::IssueKind;
use serde_json::Value;

use super::pod;

/// The longest event message kept in a fact, in bytes.
const MESSAGE_MAX: usize = 1024;

/// Which pod an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `namespace/name`, and the container when the event names one.
    Pod {
        key: String,
        container: Option<String>,
    },
    /// The node's OOM killer names the pod by its UID (in the cgroup path) and the container by
    /// its runtime ID, if at all.
    Uid {
        uid: String,
        container_id: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Signal {
    pub target: Target,
    /// The issues (of the pod, or of its container) the facts belong to.
    pub kinds: &'static [IssueKind],
    pub facts: BTreeMap<String, Value>,
    /// An OOM kill the node saw: one more occurrence unless the pod status counted it already.
    pub oom_kill: bool,
    /// When it last happened.
    pub at: DateTime<Utc>,
}

fn micro_time(time: &MicroTime) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// When the event last happened: its series' last observation, its last timestamp, its event
/// time, or its creation.
pub fn last_seen(event: &Event) -> Option<DateTime<Utc>> {
    event
        .series
        .as_ref()
        .and_then(|series| series.last_observed_time.as_ref())
        .map(micro_time)
        .or_else(|| event.last_timestamp.as_ref().map(pod::time))
        .or_else(|| event.event_time.as_ref().map(micro_time))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(pod::time))
}

/// How many times it happened (the series' count, or the deduplicated count).
fn count(event: &Event) -> i64 {
    event
        .series
        .as_ref()
        .and_then(|series| series.count)
        .or(event.count)
        .map_or(1, i64::from)
        .max(1)
}

/// The message, its credentials masked, at most MESSAGE_MAX bytes.
fn message(event: &Event) -> String {
    let text = obs_core::redact::text(event.message.as_deref().unwrap_or_default().trim());
    if text.len() <= MESSAGE_MAX {
        return text;
    }
    let mut end = MESSAGE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// `spec.containers{app}` → `app`.
fn container_of(field_path: Option<&str>) -> Option<String> {
    let path = field_path?;
    let start = path.find('{')? + 1;
    let end = start + path[start..].find('}')?;
    let name = &path[start..end];
    (!name.is_empty()).then(|| name.to_string())
}

/// The pod UID in a cgroup path or an OOM message (`…/kubepods/burstable/pod<uid>/<id>`, with
/// `-` or, under systemd, `_`), and the container ID after it.
fn pod_uid(text: &str) -> Option<(String, Option<String>)> {
    let mut rest = text;
    while let Some(at) = rest.find("pod") {
        let candidate = &rest[at + 3..];
        let uid: String = candidate
            .chars()
            .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '_')
            .collect();
        if uid.len() == 36 && uid.chars().filter(|c| *c == '-' || *c == '_').count() == 4 {
            let after = &candidate[uid.len()..];
            let container_id = after
                .strip_prefix(".slice/")
                .or_else(|| after.strip_prefix('/'))
                .map(|id| {
                    id.trim_start_matches("cri-containerd-")
                        .trim_start_matches("docker-")
                        .trim_start_matches("crio-")
                        .chars()
                        .take_while(char::is_ascii_hexdigit)
                        .collect::<String>()
                })
                .filter(|id| id.len() >= 12);
            return Some((uid.replace('_', "-"), container_id));
        }
        rest = &rest[at + 3..];
    }
    None
}

const RESTART_FAMILY: &[IssueKind] = &[IssueKind::RestartLoop, IssueKind::Crashed];
const LIVENESS: &[IssueKind] = &[
    IssueKind::Unhealthy,
    IssueKind::RestartLoop,
    IssueKind::Crashed,
];

/// What `event` means for the issues, if anything.
pub fn signal(event: &Event) -> Option<Signal> {
    let reason = event.reason.as_deref()?;
    let object = &event.involved_object;
    let at = last_seen(event)?;
    let message = message(event);
    let lower = message.to_ascii_lowercase();
    let count = count(event);
    let mut facts = BTreeMap::new();
    if object.kind.as_deref() == Some("Node") {
        if reason != "OOMKilling" {
            return None;
        }
        let (uid, container_id) = pod_uid(event.message.as_deref().unwrap_or_default())?;
        facts.insert("node_oom_message".into(), Value::from(message));
        if let Some(node) = &object.name {
            facts.insert("node".into(), Value::from(node.as_str()));
        }
        return Some(Signal {
            target: Target::Uid { uid, container_id },
            kinds: &[IssueKind::OomKilled],
            facts,
            oom_kill: true,
            at,
        });
    }
    if object.kind.as_deref() != Some("Pod") {
        return None;
    }
    let name = object.name.as_deref()?;
    let namespace = object
        .namespace
        .as_deref()
        .or(event.metadata.namespace.as_deref())
        .unwrap_or("default");
    let container = container_of(object.field_path.as_deref());
    let kinds: &'static [IssueKind] = match reason {
        "FailedScheduling" => {
            facts.insert("scheduler_message".into(), message.into());
            facts.insert("scheduling_failures".into(), count.into());
            &[IssueKind::Unschedulable]
        }
        "Failed" | "ErrImagePull" if lower.contains("image") || lower.contains("pull") => {
            facts.insert("pull_error".into(), message.into());
            facts.insert("pull_failures".into(), count.into());
            &[IssueKind::ImagePullFailed]
        }
        "BackOff" if lower.contains("pulling image") => {
            facts.insert("pull_back_off".into(), message.into());
            &[IssueKind::ImagePullFailed]
        }
        "BackOff" => {
            facts.insert("back_off_message".into(), message.into());
            facts.insert("back_offs".into(), count.into());
            RESTART_FAMILY
        }
        "Evicted" => {
            facts.insert("eviction_message".into(), message.into());
            &[IssueKind::Evicted]
        }
        "Unhealthy" if lower.starts_with("liveness") => {
            facts.insert("liveness_probe".into(), message.into());
            facts.insert("liveness_failures".into(), count.into());
            LIVENESS
        }
        "Unhealthy" if lower.starts_with("startup") => {
            facts.insert("startup_probe".into(), message.into());
            facts.insert("startup_failures".into(), count.into());
            LIVENESS
        }
        "Unhealthy" => {
            facts.insert("readiness_probe".into(), message.into());
            facts.insert("readiness_failures".into(), count.into());
            &[IssueKind::Unhealthy]
        }
        "Killing" if lower.contains("liveness") || lower.contains("startup probe") => {
            facts.insert("liveness_kill".into(), message.into());
            facts.insert("liveness_kills".into(), count.into());
            LIVENESS
        }
        _ => return None,
    };
    facts.insert("event_last_seen".into(), at.to_rfc3339().into());
    Some(Signal {
        target: Target::Pod {
            key: format!("{namespace}/{name}"),
            container,
        },
        kinds,
        facts,
        oom_kill: false,
        at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(value: serde_json::Value) -> Event {
        serde_json::from_value(value).expect("an event")
    }

    #[test]
    fn pod_events_name_their_issue_and_facts() {
        let scheduling = signal(&event(serde_json::json!({
            "metadata": {"name": "big-0.1", "namespace": "prod"},
            "involvedObject": {"kind": "Pod", "name": "big-0", "namespace": "prod"},
            "reason": "FailedScheduling", "type": "Warning", "count": 3,
            "message": "0/3 nodes are available: 3 Insufficient memory.",
            "lastTimestamp": "2026-12-07T10:00:00Z"
        })))
        .expect("a signal");
        assert_eq!(
            scheduling.target,
            Target::Pod {
                key: "prod/big-0".into(),
                container: None
            }
        );
        assert_eq!(scheduling.kinds, &[IssueKind::Unschedulable]);
        assert_eq!(scheduling.facts["scheduling_failures"], 3);
        let probe = signal(&event(serde_json::json!({
            "metadata": {"name": "x.2", "namespace": "prod"},
            "involvedObject": {"kind": "Pod", "name": "x", "namespace": "prod",
                "fieldPath": "spec.containers{app}"},
            "reason": "Unhealthy",
            "message": "Readiness probe failed: Get \"http://10.0.0.5:8080/ready?token=abc\": EOF",
            "eventTime": "2026-12-07T10:00:00.123456Z"
        })))
        .expect("a signal");
        assert_eq!(
            probe.target,
            Target::Pod {
                key: "prod/x".into(),
                container: Some("app".into())
            }
        );
        let text = probe.facts["readiness_probe"].as_str().unwrap_or_default();
        assert!(
            text.contains("token=***") && !text.contains("abc"),
            "{text}"
        );
        let ignored = event(serde_json::json!({
            "metadata": {"name": "x.3"},
            "involvedObject": {"kind": "Pod", "name": "x"},
            "reason": "Pulled", "message": "Successfully pulled image",
            "lastTimestamp": "2026-12-07T10:00:00Z"
        }));
        assert!(signal(&ignored).is_none());
    }

    #[test]
    fn the_node_oom_killer_names_the_pod_by_uid() {
        let oom = signal(&event(serde_json::json!({
            "metadata": {"name": "node-1.oom", "namespace": "default"},
            "involvedObject": {"kind": "Node", "name": "node-1"},
            "reason": "OOMKilling",
            "message": "Memory cgroup out of memory: Killed process 4242 (worker) total-vm:1kB, \
                oom_memcg=/kubepods/burstable/pod0c8f4a3e-1d2b-4c5d-9e8f-001122334455/\
                cri-containerd-3f2a9b8c7d6e5f4a3b2c1d0e",
            "lastTimestamp": "2026-12-07T10:00:00Z"
        })))
        .expect("a signal");
        assert!(oom.oom_kill);
        assert_eq!(
            oom.target,
            Target::Uid {
                uid: "0c8f4a3e-1d2b-4c5d-9e8f-001122334455".into(),
                container_id: Some("3f2a9b8c7d6e5f4a3b2c1d0e".into())
            }
        );
        assert_eq!(
            pod_uid("pod0c8f4a3e_1d2b_4c5d_9e8f_001122334455.slice/x"),
            Some(("0c8f4a3e-1d2b-4c5d-9e8f-001122334455".into(), None))
        );
        assert_eq!(pod_uid("no pod here: podcast"), None);
    }
}
