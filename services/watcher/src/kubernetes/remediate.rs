//! Acting on a watched pod (`POST /pods/{namespace}/{pod}/restart`): delete it, so its
//! controller starts a new one, or restart its whole workload the way `kubectl rollout
//! restart` does — a `kubectl.kubernetes.io/restartedAt` annotation on the pod template, which
//! makes the controller roll every pod.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::Utc;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client};
use obs_core::ApiError;
use obs_model::EventSource;

use super::pod::Owner;
use crate::Shared;

/// The annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// The live API client and the pods the watch shows (key → owner), for the restart endpoint:
/// only a pod the watcher watches can be acted on.
#[derive(Default)]
pub struct KubeLink {
    client: RwLock<Option<Client>>,
    pods: Mutex<HashMap<String, Option<Owner>>>,
}

impl KubeLink {
    pub(super) fn set_client(&self, client: Option<Client>) {
        *self
            .client
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
    }

    fn client(&self) -> Option<Client> {
        self.client
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn pods(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<Owner>>> {
        self.pods
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn seen(&self, key: String, owner: Option<Owner>) {
        self.pods().insert(key, owner);
    }

    pub(super) fn gone(&self, key: &str) {
        self.pods().remove(key);
    }

    /// After a complete listing: exactly the pods the table knows.
    pub(super) fn retain(&self, keep: &std::collections::HashSet<String>) {
        self.pods().retain(|key, _| keep.contains(key));
    }
}

/// How a pod is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// Delete the pod; its controller creates a new one.
    Delete,
    /// Roll its Deployment, StatefulSet or DaemonSet.
    Rollout,
}

impl How {
    pub fn parse(value: Option<&str>) -> Result<How, ApiError> {
        match value.map(str::trim) {
            None | Some("") | Some("delete") => Ok(How::Delete),
            Some("rollout") => Ok(How::Rollout),
            Some(other) => Err(ApiError::invalid_field(
                "how",
                format!("'{other}' is not one of delete, rollout"),
            )),
        }
    }
}

fn api_error(error: kube::Error, what: &str) -> ApiError {
    match error {
        kube::Error::Api(status) if status.code == 404 => {
            ApiError::not_found(format!("{what} does not exist (any more)"))
        }
        kube::Error::Api(status) if status.code == 403 => ApiError::Forbidden(format!(
            "the API server refused to act on {what}: {} (the watcher's RBAC needs delete on pods, \
             patch on the workload)",
            status.message
        )),
        other => ApiError::Internal(
            anyhow::Error::new(other).context(format!("asking the API server about {what}")),
        ),
    }
}

/// Restart a watched pod, and say what was done.
pub async fn restart(
    shared: &Shared,
    namespace: &str,
    name: &str,
    how: How,
) -> Result<String, ApiError> {
    let key = format!("{namespace}/{name}");
    let Some(owner) = shared.kubernetes.pods().get(&key).cloned() else {
        return Err(ApiError::not_found(format!("no watched pod {key}")));
    };
    let client = shared.kubernetes.client().ok_or_else(|| {
        ApiError::Unavailable("the Kubernetes API server is not watched (KUBERNETES_WATCH)".into())
    })?;
    let done = match how {
        How::Delete => {
            Api::<Pod>::namespaced(client, namespace)
                .delete(name, &DeleteParams::default())
                .await
                .map_err(|error| api_error(error, &format!("pod {key}")))?;
            format!("pod {key} deleted")
        }
        How::Rollout => {
            let Some(owner) = &owner else {
                return Err(ApiError::invalid_field(
                    "how",
                    format!("pod {key} has no workload to roll out"),
                ));
            };
            rollout(client, namespace, owner).await?;
            format!("{} {namespace}/{} restarted", owner.kind, owner.name)
        }
    };
    let service = owner.map_or_else(|| name.to_string(), |owner| owner.name);
    let mut event = shared.new_event(&service, "restart_requested", EventSource::Api);
    event.container = Some(key.clone());
    event.detail = Some(done.clone());
    shared.record_event(event).await;
    Ok(done)
}

async fn rollout(client: Client, namespace: &str, owner: &Owner) -> Result<(), ApiError> {
    let patch = serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {
            RESTARTED_AT: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        }}}}
    });
    let params = PatchParams::default();
    let what = format!("{} {namespace}/{}", owner.kind, owner.name);
    let result = match owner.kind.as_str() {
        "Deployment" => Api::<Deployment>::namespaced(client, namespace)
            .patch(&owner.name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        "StatefulSet" => Api::<StatefulSet>::namespaced(client, namespace)
            .patch(&owner.name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        "DaemonSet" => Api::<DaemonSet>::namespaced(client, namespace)
            .patch(&owner.name, &params, &Patch::Merge(&patch))
            .await
            .map(drop),
        other => {
            return Err(ApiError::invalid_field(
                "how",
                format!("a {other} cannot be rolled out; delete the pod instead"),
            ))
        }
    };
    result.map_err(|error| api_error(error, &what))
}
