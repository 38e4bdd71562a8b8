//! What a pod object says about itself: where it runs, what owns it, its containers' limits.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::Value;

/// The label Knative Serving puts on every pod of a Knative Service.
pub const KNATIVE_SERVICE_LABEL: &str = "serving.knative.dev/service";
/// The label a Deployment's ReplicaSet puts on its pods; its ReplicaSet is named
/// `<deployment>-<hash>`.
const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// `namespace/name`: the pod's key, and the start of every issue subject about it.
pub fn key(pod: &Pod) -> Option<String> {
    let name = pod.metadata.name.as_deref()?;
    let namespace = pod.metadata.namespace.as_deref().unwrap_or("default");
    Some(format!("{namespace}/{name}"))
}

pub fn time(time: &Time) -> DateTime<Utc> {
    DateTime::from_timestamp(time.0.as_second(), time.0.subsec_nanosecond().max(0) as u32)
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What runs the pod, as an operator names it: the Knative Service, the Deployment (through its
/// ReplicaSet), the StatefulSet, DaemonSet or Job; none for a bare pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub kind: String,
    pub name: String,
}

impl Owner {
    /// How kubectl names it (`deployment/api`), for the advice; none for kinds kubectl cannot
    /// roll back or resize by that name.
    pub fn kubectl_ref(&self) -> Option<String> {
        let kind = match self.kind.as_str() {
            "Deployment" => "deployment",
            "StatefulSet" => "statefulset",
            "DaemonSet" => "daemonset",
            "KnativeService" => "ksvc",
            _ => return None,
        };
        Some(format!("{kind}/{}", self.name))
    }
}

pub fn owner(pod: &Pod) -> Option<Owner> {
    let labels = pod.metadata.labels.as_ref();
    if let Some(service) = labels
        .and_then(|labels| labels.get(KNATIVE_SERVICE_LABEL))
        .filter(|name| !name.is_empty())
    {
        return Some(Owner {
            kind: "KnativeService".into(),
            name: service.clone(),
        });
    }
    let references = pod.metadata.owner_references.as_ref()?;
    let reference = references
        .iter()
        .find(|reference| reference.controller == Some(true))
        .or_else(|| references.first())?;
    if reference.kind == "ReplicaSet" {
        let hash = labels.and_then(|labels| labels.get(POD_TEMPLATE_HASH_LABEL));
        if let Some(deployment) = hash
            .and_then(|hash| reference.name.strip_suffix(&format!("-{hash}")))
            .filter(|name| !name.is_empty())
        {
            return Some(Owner {
                kind: "Deployment".into(),
                name: deployment.to_string(),
            });
        }
    }
    Some(Owner {
        kind: reference.kind.clone(),
        name: reference.name.clone(),
    })
}

/// The service: the workload (so a Deployment's pods are one service downstream), or
/// the pod itself when nothing owns it.
pub fn service(pod: &Pod) -> String {
    owner(pod)
        .map(|owner| owner.name)
        .or_else(|| pod.metadata.name.clone())
        .unwrap_or_default()
}

pub fn condition<'a>(pod: &'a Pod, kind: &str) -> Option<&'a PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|condition| condition.type_ == kind)
}

pub fn container_statuses(pod: &Pod) -> &[ContainerStatus] {
    pod.status
        .as_ref()
        .and_then(|status| status.container_statuses.as_deref())
        .unwrap_or(&[])
}

/// A container's limits as the spec gives them: `memory` in bytes, `cpu` as written.
pub fn limits(pod: &Pod, container: &str) -> (Option<u64>, Option<String>) {
    let limits = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.containers.iter().find(|c| c.name == container))
        .and_then(|c| c.resources.as_ref())
        .and_then(|resources| resources.limits.as_ref());
    let Some(limits) = limits else {
        return (None, None);
    };
    (
        limits.get("memory").and_then(|q| memory_bytes(&q.0)),
        limits.get("cpu").map(|q| q.0.clone()),
    )
}

/// A memory quantity (`256Mi`, `1G`, `512000`, `1.5Gi`, `129e6`) in bytes.
pub fn memory_bytes(quantity: &str) -> Option<u64> {
    let quantity = quantity.trim();
    let split = quantity
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(quantity.len());
    let (number, suffix) = quantity.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor: f64 = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "m" => 1e-3,
        exponent => 10f64.powi(exponent.strip_prefix(['e', 'E'])?.parse().ok()?),
    };
    let bytes = (number * factor).ceil();
    (bytes.is_finite() && bytes >= 0.0 && bytes < u64::MAX as f64).then_some(bytes as u64)
}

/// Twice `bytes`, as a memory quantity kubectl takes (`512Mi`).
pub fn doubled_quantity(bytes: u64) -> String {
    let mebibytes = bytes.saturating_mul(2).div_ceil(1024 * 1024).max(1);
    if mebibytes.is_multiple_of(1024) {
        format!("{}Gi", mebibytes / 1024)
    } else {
        format!("{mebibytes}Mi")
    }
}

/// The facts every Kubernetes issue about this pod carries.
pub fn facts(pod: &Pod, container: Option<&str>) -> Vec<(&'static str, Value)> {
    let mut facts: Vec<(&'static str, Value)> = vec![
        ("platform", "kubernetes".into()),
        (
            "namespace",
            pod.metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".into())
                .into(),
        ),
        ("pod", pod.metadata.name.clone().unwrap_or_default().into()),
    ];
    if let Some(node) = pod.spec.as_ref().and_then(|spec| spec.node_name.clone()) {
        facts.push(("node", node.into()));
    }
    if let Some(owner) = owner(pod) {
        if let Some(reference) = owner.kubectl_ref() {
            facts.push(("workload", reference.into()));
        }
        if owner.kind == "KnativeService" {
            facts.push(("knative_service", owner.name.clone().into()));
        }
        facts.push(("owner_kind", owner.kind.into()));
        facts.push(("owner_name", owner.name.into()));
    }
    if let Some(container) = container {
        facts.push(("container", container.into()));
        let (memory, cpu) = limits(pod, container);
        if let Some(memory) = memory {
            facts.push(("memory_limit_bytes", memory.into()));
            facts.push(("suggested_memory_limit", doubled_quantity(memory).into()));
        }
        if let Some(cpu) = cpu {
            facts.push(("cpu_limit", cpu.into()));
        }
        if let Some(status) = container_statuses(pod).iter().find(|s| s.name == container) {
            facts.push(("image", status.image.clone().into()));
            facts.push(("restarts", status.restart_count.into()));
        }
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).expect("a pod")
    }

    #[test]
    fn owners_are_named_as_operators_know_them() {
        let deployment = pod(serde_json::json!({
            "metadata": {"name": "api-7d9f-x1", "namespace": "prod",
                "labels": {"pod-template-hash": "7d9f"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "api-7d9f", "uid": "u", "controller": true}]}
        }));
        assert_eq!(
            owner(&deployment),
            Some(Owner {
                kind: "Deployment".into(),
                name: "api".into()
            })
        );
        assert_eq!(service(&deployment), "api");
        assert_eq!(key(&deployment).as_deref(), Some("prod/api-7d9f-x1"));
        let knative = pod(serde_json::json!({
            "metadata": {"name": "hello-00001-deployment-5c-x", "namespace": "default",
                "labels": {"serving.knative.dev/service": "hello", "pod-template-hash": "5c"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "hello-00001-deployment-5c", "uid": "u", "controller": true}]}
        }));
        assert_eq!(service(&knative), "hello");
        assert_eq!(
            owner(&knative).and_then(|o| o.kubectl_ref()).as_deref(),
            Some("ksvc/hello")
        );
        let bare = pod(serde_json::json!({"metadata": {"name": "debug"}}));
        assert_eq!(owner(&bare), None);
        assert_eq!(service(&bare), "debug");
        let statefulset = pod(serde_json::json!({
            "metadata": {"name": "db-0", "ownerReferences": [{"apiVersion": "apps/v1",
                "kind": "StatefulSet", "name": "db", "uid": "u", "controller": true}]}
        }));
        assert_eq!(service(&statefulset), "db");
    }

    #[test]
    fn memory_quantities_parse() {
        assert_eq!(memory_bytes("256Mi"), Some(256 * 1024 * 1024));
        assert_eq!(memory_bytes("1G"), Some(1_000_000_000));
        assert_eq!(memory_bytes("1.5Gi"), Some(1_610_612_736));
        assert_eq!(memory_bytes("129e6"), Some(129_000_000));
        assert_eq!(memory_bytes("512000"), Some(512_000));
        for bad in ["", "Mi", "12Qi", "1e999", "-1Mi"] {
            assert_eq!(memory_bytes(bad), None, "{bad}");
        }
        assert_eq!(doubled_quantity(256 * 1024 * 1024), "512Mi");
        assert_eq!(doubled_quantity(512 * 1024 * 1024), "1Gi");
    }
}
