//! What a container's trouble means and what to do about it: the issues the Docker
//! follower raises, each with a severity, an actionable recommendation and the facts a
//! planner can use (exit_code, memory_limit_bytes, restarts, signal …).

use obs_model::units::{docker_bytes, human_bytes};
use obs_model::{Container, IssueKind, Severity};

use crate::issues::Detection;

/// Which OOM signal fired: no single one is reliable across kernels and restart policies
/// (`State.OOMKilled` is reset when the container restarts; cgroup v2 may not send `oom`).
pub const SIGNAL_OOM_EVENT: &str = "oom_event";
pub const SIGNAL_STATE_OOM_KILLED: &str = "state_oom_killed";
pub const SIGNAL_EXIT_137_UNDER_LIMIT: &str = "exit_137_under_memory_limit";

pub fn oom_killed(container: &Container, signals: &[&str], exit_code: Option<i64>) -> Detection {
    let name = &container.name;
    let limit = container.memory_limit_bytes;
    let limit_text = limit.map(human_bytes).unwrap_or_else(|| "no limit".into());
    let recommendation = match limit {
        Some(limit) => format!(
            "{name} was killed for running out of memory under its {limit_text} limit. Raise \
             the limit (e.g. `docker update --memory {} --memory-swap {} {name}`, or the \
             compose/Kubernetes limit) or reduce the application's memory use; if usage grows \
             until it dies, look for a leak.",
            docker_bytes(limit.saturating_mul(2)),
            docker_bytes(limit.saturating_mul(2)),
        ),
        None => format!(
            "{name} was killed for running out of memory with no container limit: the host \
             itself is short of memory. Give it a memory limit, move load elsewhere, or add \
             memory to the host."
        ),
    };
    let mut detection = Detection::new(IssueKind::OomKilled, name, name, Severity::Critical)
        .message(format!(
            "Container {name} killed - out of memory ({limit_text}; signal: {})",
            signals.first().copied().unwrap_or(SIGNAL_OOM_EVENT)
        ))
        .recommend(recommendation)
        .fact("container", name.as_str())
        .fact("image", container.image.as_str())
        .fact(
            "signal",
            signals.first().copied().unwrap_or(SIGNAL_OOM_EVENT),
        )
        .fact("signals", signals.to_vec())
        .fact("restarts", container.restart_count);
    if let Some(limit) = limit {
        detection = detection.fact("memory_limit_bytes", limit);
    }
    if let Some(code) = exit_code {
        detection = detection.fact("exit_code", code);
    }
    detection
}

pub fn crashed(container: &Container, exit_code: i64, restart_policy: &str) -> Detection {
    let name = &container.name;
    // Restarted by policy: it comes back, but something is wrong. Not restarted: it stays
    // down until someone acts.
    let stays_down = matches!(restart_policy, "no" | "");
    let severity = if stays_down {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let meaning = exit_meaning(exit_code);
    // Starting it by hand is advice only for a container nothing else will start.
    let (aftermath, afterwards) = if stays_down {
        (
            "It stays down (restart policy: no).".to_string(),
            format!(", then start it again (`docker start {name}`)"),
        )
    } else {
        (
            format!("Its restart policy ({restart_policy}) restarts it."),
            "; if it keeps crashing, its restarts are reported as a restart loop".to_string(),
        )
    };
    Detection::new(IssueKind::Crashed, name, name, severity)
        .message(format!(
            "Container {name} crashed with exit code {exit_code}{}",
            meaning.map(|m| format!(" ({m})")).unwrap_or_default()
        ))
        .recommend(format!(
            "{aftermath} Read its last lines (`obsctl logs {name} --lines 100`, or GET \
             /logs?container={name}&lines=100) for the error and fix the cause{}{afterwards}.",
            match exit_code {
                126 | 127 => " (the command or entrypoint is missing or not executable)",
                139 => " (a segmentation fault: a bug or a bad native library)",
                134 => " (the program aborted: an assertion or a panic)",
                _ => "",
            }
        ))
        .fact("container", name.as_str())
        .fact("image", container.image.as_str())
        .fact("exit_code", exit_code)
        .fact("restart_policy", restart_policy)
        .fact("restarts", container.restart_count)
}

pub fn restart_loop(
    container: &Container,
    starts_in_window: usize,
    window_seconds: u64,
    restart_policy: &str,
) -> Detection {
    let name = &container.name;
    let mut detection = Detection::new(IssueKind::RestartLoop, name, name, Severity::Critical)
        .message(format!(
            "Container {name} started {starts_in_window} times in {window_seconds} s - restart loop"
        ))
        .recommend(format!(
            "{name} keeps dying and being restarted. Read why it exits (`obsctl logs {name}`), \
             fix the cause (configuration, a missing dependency, memory); to stop the churn \
             meanwhile, cap retries with `--restart on-failure:5` or stop it."
        ))
        .fact("container", name.as_str())
        .fact("image", container.image.as_str())
        .fact("starts_in_window", starts_in_window)
        .fact("window_seconds", window_seconds)
        .fact("restarts", container.restart_count)
        .fact("restart_policy", restart_policy);
    if let Some(code) = container.exit_code.filter(|code| *code != 0) {
        detection = detection.fact("exit_code", code);
    }
    detection
}

pub fn unhealthy(
    container: &Container,
    failing_streak: Option<i64>,
    last_output: Option<&str>,
) -> Detection {
    let name = &container.name;
    let mut detection = Detection::new(IssueKind::Unhealthy, name, name, Severity::Warning)
        .message(format!(
            "Container {name} is unhealthy: its HEALTHCHECK fails{}",
            failing_streak
                .map(|n| format!(" ({n} times in a row)"))
                .unwrap_or_default()
        ))
        .recommend(format!(
            "The HEALTHCHECK of {name} fails{}. Check what it probes (the endpoint, its \
             dependencies) and the container's logs; if the service is fine, the check itself \
             may be wrong or its timeout too short. A restart (POST \
             /containers/{name}/restart) can clear a wedged process.",
            last_output
                .filter(|output| !output.is_empty())
                .map(|output| format!(", last output: {output:?}"))
                .unwrap_or_default()
        ))
        .fact("container", name.as_str())
        .fact("image", container.image.as_str())
        .fact("restarts", container.restart_count);
    if let Some(streak) = failing_streak {
        detection = detection.fact("failing_streak", streak);
    }
    if let Some(output) = last_output {
        detection = detection.fact("last_output", output);
    }
    detection
}

/// What well-known exit codes usually mean.
pub fn exit_meaning(code: i64) -> Option<&'static str> {
    Some(match code {
        1 => "general error",
        2 => "misuse of a shell builtin or bad arguments",
        126 => "command not executable",
        127 => "command not found",
        134 => "SIGABRT",
        137 => "SIGKILL",
        139 => "SIGSEGV, segmentation fault",
        143 => "SIGTERM",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(name: &str) -> Container {
        serde_json::from_value(serde_json::json!({
            "id": "c0ffee", "name": name, "image": "app:1", "state": "exited",
            "restart_count": 0
        }))
        .expect("a container")
    }

    #[test]
    fn crash_advice_fits_the_restart_policy() {
        let app = container("app");
        let stays_down = crashed(&app, 2, "no");
        assert_eq!(stays_down.severity, Severity::Critical);
        assert!(
            stays_down.recommendation.contains("`docker start app`"),
            "{}",
            stays_down.recommendation
        );
        for policy in ["on-failure", "always", "unless-stopped"] {
            let restarted = crashed(&app, 2, policy);
            assert_eq!(restarted.severity, Severity::Warning);
            assert!(
                !restarted.recommendation.contains("docker start"),
                "{policy}: its policy starts it: {}",
                restarted.recommendation
            );
            assert!(
                restarted.recommendation.contains(&format!("({policy})")),
                "{}",
                restarted.recommendation
            );
        }
    }
}
