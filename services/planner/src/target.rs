//! What a safe step acts on: a Docker container, which the watcher restarts, or a Kubernetes
//! pod, which the watcher deletes (its controller makes a new one) or whose Deployment it
//! rolls out again (`kubectl rollout restart`). One remediation path serves both: the step's
//! action and target text, read with the plan's incident, make a [`Target`]; the cooldown is
//! kept per [`Target::key`], the attempt limit per plan, and [`Target::request`] is what the
//! watcher is asked.
//!
//! How a pod is restarted follows what owns it ([`pod_restart`]):
//! - a Deployment's pod: a rollout restart. The Deployment brings a new pod up (surge) before
//!   it takes an old one down, so even a single-replica Deployment keeps serving; the
//!   cooldown is the Deployment's, so several sick pods of one Deployment roll it once.
//! - a pod of a StatefulSet, DaemonSet, Job, bare ReplicaSet or Knative Service: deleted. Its
//!   controller recreates it; a rollout would gain nothing (no surge) and restart every other
//!   replica too. (The watcher rolls out only Deployments, StatefulSets and DaemonSets, and a
//!   Knative Service's pods belong to a Deployment Knative manages and reverts.)
//! - a pod nothing owns: never, since deleting it would remove it for good.

use obs_model::Incident;
use serde_json::Value;

/// Restart a Docker container through the watcher; the target is its name.
pub const RESTART_CONTAINER: &str = "restart_container";
/// Restart a Kubernetes pod through the watcher; the target is `namespace/pod`.
pub const RESTART_POD: &str = "restart_pod";
/// The only actions that may run by themselves (AUTO_REMEDIATE=1).
pub const SAFE_ACTIONS: &[&str] = &[RESTART_CONTAINER, RESTART_POD];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Container(String),
    Pod {
        namespace: String,
        pod: String,
        how: PodRestart,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodRestart {
    /// Delete the pod; `controller` (`StatefulSet db`) makes a new one.
    Delete { controller: String },
    /// Roll out the pod's Deployment again (`deployment/api`).
    Rollout { workload: String },
}

/// How a pod owned by `kind`/`name` (the watcher's `owner_kind` and `owner_name` facts) is
/// restarted without losing it; None when nothing would bring it back (see the module docs).
pub fn pod_restart(kind: Option<&str>, name: Option<&str>) -> Option<PodRestart> {
    let name = name.filter(|name| !name.is_empty())?;
    match kind? {
        "Deployment" => Some(PodRestart::Rollout {
            workload: format!("deployment/{name}"),
        }),
        kind @ ("StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" | "KnativeService") => {
            Some(PodRestart::Delete {
                controller: format!("{kind} {name}"),
            })
        }
        _ => None,
    }
}

fn fact<'a>(incident: &'a Incident, name: &str) -> Option<&'a str> {
    incident.facts.get(name).and_then(Value::as_str)
}

/// How the pod of a Kubernetes `incident` is restarted, from its owner facts.
pub fn incident_pod_restart(incident: &Incident) -> Option<PodRestart> {
    pod_restart(fact(incident, "owner_kind"), fact(incident, "owner_name"))
}

/// A Kubernetes name as the watcher's restart endpoint takes it (DNS-1123: lowercase letters,
/// digits, `-` and `.`, starting and ending with a letter or digit), so a target cannot reach
/// another path (`..`).
fn kubernetes_name(text: &str) -> bool {
    let alphanumeric = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 253
                && alphanumeric(first)
                && alphanumeric(last)
                && bytes
                    .iter()
                    .all(|&b| alphanumeric(b) || b == b'-' || b == b'.')
        }
        _ => false,
    }
}

impl Target {
    /// What a step with `action` and `target` text acts on, for `incident`; None when the
    /// step cannot run by itself (an action that is not safe, a malformed target, a pod that
    /// nothing would recreate).
    pub fn of(action: &str, target: &str, incident: &Incident) -> Option<Target> {
        match action {
            RESTART_CONTAINER if !target.is_empty() => Some(Target::Container(target.into())),
            RESTART_POD => {
                let (namespace, pod) = target.split_once('/')?;
                if !kubernetes_name(namespace) || !kubernetes_name(pod) {
                    return None;
                }
                Some(Target::Pod {
                    namespace: namespace.into(),
                    pod: pod.into(),
                    how: incident_pod_restart(incident)?,
                })
            }
            _ => None,
        }
    }

    /// The step's target text, as the plan shows it.
    pub fn text(&self) -> String {
        match self {
            Target::Container(name) => name.clone(),
            Target::Pod { namespace, pod, .. } => format!("{namespace}/{pod}"),
        }
    }

    /// What the cooldown is kept for: the container, the pod, or the Deployment a rollout
    /// restarts (whichever of its pods asked). Container names cannot hold a `/`, so the
    /// keys do not collide.
    pub fn key(&self) -> String {
        match self {
            Target::Container(name) => name.clone(),
            Target::Pod {
                namespace,
                pod,
                how: PodRestart::Delete { .. },
            } => format!("{namespace}/{pod}"),
            Target::Pod {
                namespace,
                how: PodRestart::Rollout { workload },
                ..
            } => format!("{namespace}/{workload}"),
        }
    }

    /// For people: `container api`, `pod prod/api-7d9f-x1`, `deployment/api in prod`.
    pub fn describe(&self) -> String {
        match self {
            Target::Container(name) => format!("container {name}"),
            Target::Pod {
                namespace,
                pod,
                how: PodRestart::Delete { .. },
            } => format!("pod {namespace}/{pod}"),
            Target::Pod {
                namespace,
                how: PodRestart::Rollout { workload },
                ..
            } => format!("{workload} in {namespace}"),
        }
    }

    /// The watcher's path segments and query for this restart.
    pub fn request(&self) -> (Vec<&str>, Option<&'static str>) {
        match self {
            Target::Container(name) => (vec!["containers", name.as_str(), "restart"], None),
            Target::Pod {
                namespace,
                pod,
                how,
            } => {
                let how = match how {
                    PodRestart::Delete { .. } => "how=delete",
                    PodRestart::Rollout { .. } => "how=rollout",
                };
                (
                    vec!["pods", namespace.as_str(), pod.as_str(), "restart"],
                    Some(how),
                )
            }
        }
    }
}

/// The kubectl command that does what the watcher will do for a pod: what the plan shows.
pub fn kubectl(namespace: &str, pod: &str, how: &PodRestart) -> String {
    match how {
        PodRestart::Delete { controller } => {
            format!("`kubectl -n {namespace} delete pod {pod}` ({controller} makes a new one)")
        }
        PodRestart::Rollout { workload } => {
            format!("`kubectl -n {namespace} rollout restart {workload}`")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(facts: Value) -> Incident {
        let mut value = serde_json::json!({
            "id": ulid::Ulid::new().to_string(), "fingerprint": "f", "source": "watcher",
            "kind": "unhealthy", "service": "api", "subject": "prod/api-1/app",
            "severity": "warning", "state": "open", "title": "t", "message": "m",
            "recommendation": "r", "first_seen": "2026-01-02T03:04:05Z",
            "last_seen": "2026-01-02T03:04:05Z", "updated_at": "2026-01-02T03:04:05Z",
            "count": 1, "change": "opened", "notify": true, "revision": 1
        });
        value["facts"] = facts;
        serde_json::from_value(value).expect("an incident")
    }

    #[test]
    fn pods_are_restarted_the_way_their_owner_recreates_them() {
        let deployment = incident(serde_json::json!({
            "platform": "kubernetes", "owner_kind": "Deployment", "owner_name": "api"
        }));
        let target = Target::of(RESTART_POD, "prod/api-7d9f-x1", &deployment).unwrap();
        assert_eq!(
            target.key(),
            "prod/deployment/api",
            "one cooldown per Deployment"
        );
        assert_eq!(
            target.request(),
            (
                vec!["pods", "prod", "api-7d9f-x1", "restart"],
                Some("how=rollout")
            )
        );
        let stateful =
            incident(serde_json::json!({"owner_kind": "StatefulSet", "owner_name": "db"}));
        let target = Target::of(RESTART_POD, "prod/db-0", &stateful).unwrap();
        assert_eq!(target.key(), "prod/db-0");
        assert_eq!(target.request().1, Some("how=delete"));
        let knative =
            incident(serde_json::json!({"owner_kind": "KnativeService", "owner_name": "hello"}));
        assert_eq!(
            Target::of(RESTART_POD, "default/hello-1", &knative)
                .unwrap()
                .request()
                .1,
            Some("how=delete")
        );
        // Nothing would bring a bare pod back.
        let bare = incident(serde_json::json!({"platform": "kubernetes"}));
        assert_eq!(Target::of(RESTART_POD, "prod/debug", &bare), None);
        // A target that is not `namespace/pod` cannot reach another path.
        for bad in [
            "prod",
            "prod/a/b",
            "../x",
            "prod/..",
            "prod/",
            "Prod/a",
            "prod/a?how=rollout",
        ] {
            assert_eq!(Target::of(RESTART_POD, bad, &stateful), None, "{bad}");
        }
        assert_eq!(
            Target::of(RESTART_CONTAINER, "web-1", &bare),
            Some(Target::Container("web-1".into()))
        );
        assert_eq!(Target::of("inspect_logs", "web-1", &bare), None);
    }
}
