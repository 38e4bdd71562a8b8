//! What a pod's trouble means and what to do about it, in kubectl's words: the issues the
//! Kubernetes follower raises. The kinds are the Docker follower's where the trouble is the
//! same (an OOM kill is an OOM kill), so the curator and the planner treat both alike.

use k8s_openapi::api::core::v1::{ContainerStateTerminated, Pod};
use obs_model::units::human_bytes;
use obs_model::{IssueKind, Severity};

use super::pod;
use crate::docker::detect::exit_meaning;
use crate::issues::Detection;

/// Where an issue is: its service (the workload), its subject (`namespace/pod` or
/// `namespace/pod/container`), and the names for the words.
pub struct Place<'a> {
    pub pod: &'a Pod,
    pub service: &'a str,
    pub subject: &'a str,
    pub container: Option<&'a str>,
}

impl Place<'_> {
    fn detection(&self, kind: IssueKind, severity: Severity) -> Detection {
        let mut detection = Detection::new(kind, self.service, self.subject, severity);
        for (key, value) in pod::facts(self.pod, self.container) {
            detection = detection.fact(key, value);
        }
        detection
    }

    fn namespace(&self) -> &str {
        self.pod.metadata.namespace.as_deref().unwrap_or("default")
    }

    fn name(&self) -> &str {
        self.pod.metadata.name.as_deref().unwrap_or_default()
    }

    /// `kubectl … -n ns`: the pod's namespace, for commands to copy.
    fn describe(&self) -> String {
        format!(
            "kubectl describe pod {} -n {}",
            self.name(),
            self.namespace()
        )
    }

    fn previous_logs(&self) -> String {
        let container = self
            .container
            .map(|c| format!(" -c {c}"))
            .unwrap_or_default();
        format!(
            "kubectl logs {} -n {}{container} --previous",
            self.name(),
            self.namespace()
        )
    }

    fn workload(&self) -> Option<String> {
        pod::owner(self.pod).and_then(|owner| owner.kubectl_ref())
    }

    fn what(&self) -> String {
        match self.container {
            Some(container) => format!("Container {container} of pod {}", self.subject_pod()),
            None => format!("Pod {}", self.subject_pod()),
        }
    }

    fn subject_pod(&self) -> String {
        format!("{}/{}", self.namespace(), self.name())
    }
}

fn terminated_facts(mut detection: Detection, terminated: &ContainerStateTerminated) -> Detection {
    detection = detection.fact("exit_code", terminated.exit_code);
    if let Some(reason) = &terminated.reason {
        detection = detection.fact("reason", reason.as_str());
    }
    if let Some(finished) = &terminated.finished_at {
        detection = detection.fact("finished_at", pod::time(finished).to_rfc3339());
    }
    detection
}

pub fn oom_killed(place: &Place<'_>, terminated: &ContainerStateTerminated) -> Detection {
    let (memory, _) = pod::limits(place.pod, place.container.unwrap_or_default());
    let limit_text = memory.map(human_bytes).unwrap_or_else(|| "no limit".into());
    let advice = match (memory, place.workload()) {
        (Some(memory), Some(workload)) => format!(
            "Raise its memory limit (`kubectl set resources {workload} -n {} -c {} \
             --limits=memory={}`) or reduce its memory use; if usage grows until it dies, look \
             for a leak.",
            place.namespace(),
            place.container.unwrap_or_default(),
            pod::doubled_quantity(memory)
        ),
        (Some(_), None) => "Raise the memory limit in its spec or reduce its memory use; if \
                            usage grows until it dies, look for a leak."
            .to_string(),
        (None, _) => "It has no memory limit: the node itself ran short. Give it a limit and a \
                      request that fit, or move load elsewhere."
            .to_string(),
    };
    terminated_facts(
        place.detection(IssueKind::OomKilled, Severity::Critical),
        terminated,
    )
    .fact("signal", "oom_killed_reason")
    .message(format!(
        "{} killed - out of memory ({limit_text})",
        place.what()
    ))
    .recommend(format!(
        "{advice} What it did before: `{}`.",
        place.previous_logs()
    ))
}

/// An OOM kill only the node's kernel reported (a process in the container, not necessarily its
/// main one): the pod status may show no termination at all.
pub fn oom_killed_by_node(place: &Place<'_>, at: chrono::DateTime<chrono::Utc>) -> Detection {
    let (memory, _) = pod::limits(place.pod, place.container.unwrap_or_default());
    let limit_text = memory.map(human_bytes).unwrap_or_else(|| "no limit".into());
    place
        .detection(IssueKind::OomKilled, Severity::Critical)
        .fact("signal", "node_oom_event")
        .fact("oom_at", at.to_rfc3339())
        .message(format!(
            "{} had a process killed by the node - out of memory ({limit_text})",
            place.what()
        ))
        .recommend(format!(
            "The kernel's OOM killer ended a process in it (`kubectl get events -A \
             --field-selector reason=OOMKilling`). Raise its memory limit or reduce its memory \
             use; a child process killed may leave the container running but broken. `{}`.",
            place.describe()
        ))
}

pub fn crashed(place: &Place<'_>, terminated: &ContainerStateTerminated) -> Detection {
    let code = i64::from(terminated.exit_code);
    let restart_policy = place
        .pod
        .spec
        .as_ref()
        .and_then(|spec| spec.restart_policy.clone())
        .unwrap_or_else(|| "Always".into());
    // The kubelet restarts it unless the policy says never: then it stays down.
    let severity = if restart_policy == "Never" {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let rollback = place
        .workload()
        .filter(|workload| !workload.starts_with("ksvc/"))
        .map(|workload| {
            format!(
                "; if a new version brought it, roll back (`kubectl rollout undo {workload} -n {}`)",
                place.namespace()
            )
        })
        .unwrap_or_default();
    terminated_facts(place.detection(IssueKind::Crashed, severity), terminated)
        .fact("restart_policy", restart_policy.as_str())
        .message(format!(
            "{} crashed with exit code {code}{}",
            place.what(),
            exit_meaning(code)
                .map(|m| format!(" ({m})"))
                .unwrap_or_default()
        ))
        .recommend(format!(
        "Read why it exited (`{}`) and fix the cause{rollback}. Restart policy {restart_policy}.",
        place.previous_logs()
    ))
}

pub fn restart_loop(
    place: &Place<'_>,
    restarts_in_window: usize,
    window_seconds: u64,
    back_off: bool,
) -> Detection {
    let how = if back_off {
        "in CrashLoopBackOff".to_string()
    } else {
        format!("restarted {restarts_in_window} times in {window_seconds} s")
    };
    place
        .detection(IssueKind::RestartLoop, Severity::Critical)
        .fact("starts_in_window", restarts_in_window)
        .fact("window_seconds", window_seconds)
        .fact("back_off", back_off)
        .message(format!("{} is {how} - restart loop", place.what()))
        .recommend(format!(
            "It keeps dying and being restarted. Read why (`{}`, and `{}` for its events), \
             fix the cause (configuration, a missing dependency, memory){}.",
            place.previous_logs(),
            place.describe(),
            place
                .workload()
                .filter(|workload| !workload.starts_with("ksvc/"))
                .map(|workload| format!(
                    ", or roll back a bad release (`kubectl rollout undo {workload} -n {}`)",
                    place.namespace()
                ))
                .unwrap_or_default()
        ))
}

pub fn unhealthy(place: &Place<'_>, not_ready_seconds: i64) -> Detection {
    place
        .detection(IssueKind::Unhealthy, Severity::Warning)
        .fact("not_ready_seconds", not_ready_seconds)
        .message(format!(
            "{} is not ready for {not_ready_seconds} s: its readiness probe fails",
            place.what()
        ))
        .recommend(format!(
            "Its readiness probe fails, so it gets no traffic. `{}` shows the probe's failures; \
             check what the probe asks of it and its dependencies. A liveness probe that fails \
             too restarts it (counted as restarts).",
            place.describe()
        ))
}

pub fn image_pull_failed(place: &Place<'_>, reason: &str, message: Option<&str>) -> Detection {
    let mut detection = place
        .detection(IssueKind::ImagePullFailed, Severity::Critical)
        .fact("reason", reason)
        .message(format!("{} cannot pull its image ({reason})", place.what()))
        .recommend(format!(
            "Check the image name and tag, that it exists in the registry, and the pull secret \
             (`{}` shows the registry's answer); a mistyped tag in a new release rolls back \
             with `kubectl rollout undo`.",
            place.describe()
        ));
    if let Some(message) = message {
        detection = detection.fact("detail", message);
    }
    detection
}

pub fn evicted(place: &Place<'_>, message: Option<&str>) -> Detection {
    let mut detection = place
        .detection(IssueKind::Evicted, Severity::Warning)
        .fact("reason", "Evicted")
        .message(format!(
            "{} was evicted from its node{}",
            place.what(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ))
        .recommend(format!(
            "The node ran short of a resource (memory, disk, PIDs) and evicted it. Check the \
             node's pressure (`kubectl describe node`), give the pod requests that match its \
             use, and delete the evicted pod (`kubectl delete pod {} -n {}`) once understood.",
            place.name(),
            place.namespace()
        ));
    if let Some(message) = message {
        detection = detection.fact("detail", message);
    }
    detection
}

pub fn unschedulable(place: &Place<'_>, pending_seconds: i64, message: Option<&str>) -> Detection {
    let mut detection = place
        .detection(IssueKind::Unschedulable, Severity::Critical)
        .fact("reason", "Unschedulable")
        .fact("pending_seconds", pending_seconds)
        .message(format!(
            "{} cannot be scheduled for {pending_seconds} s{}",
            place.what(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ))
        .recommend(format!(
            "No node fits it. `{}` shows the scheduler's reasons: requests larger than any \
             node's free capacity, taints, node selectors or affinity, unbound volumes. Lower \
             its requests, add nodes, or fix its placement rules.",
            place.describe()
        ));
    if let Some(message) = message {
        detection = detection.fact("detail", message);
    }
    detection
}
