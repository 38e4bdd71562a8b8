//! A dead container's last words: when a crash, an OOM kill or a restart loop is raised, the
//! last lines of the container that died (`pods/log?previous=true&tailLines=…&limitBytes=…`)
//! are fetched in a task of their own — the watch loop never waits on it — and added to the
//! issue's facts, redacted, bounded. Once per restart of a container. A fetch that fails (RBAC
//! refusing pods/log, the pod gone, no answer in time) leaves a fact saying so.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::LogParams;
use kube::{Api, Client};
use obs_model::IssueKind;
use serde_json::Value;
use tokio::sync::Semaphore;

use super::pod;
use super::table::Outcome;
use crate::Shared;

/// Lines asked for, and kept.
pub const TAIL_LINES: usize = 20;
/// Bytes asked for, and kept in all.
pub const LIMIT_BYTES: usize = 4096;
/// One line longer than this is cut.
const LINE_MAX: usize = 512;
/// Fetches at once; more wait their turn.
const CONCURRENT: usize = 4;
/// Restarts remembered as fetched: enough for every crashing container of a large cluster,
/// bounded however long the watcher runs.
const REMEMBERED: usize = 4096;

/// A fetch to do: whose logs, and the issue they go to.
#[derive(Debug, Clone)]
pub struct Want {
    pub service: String,
    pub kind: IssueKind,
    pub subject: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// The container that died is the previous one (it has been restarted), not the current.
    pub previous: bool,
}

pub struct LogFetcher {
    client: Client,
    shared: Arc<Shared>,
    timeout: Duration,
    permits: Arc<Semaphore>,
    /// (subject, restart count) fetched already.
    done: HashSet<String>,
    order: VecDeque<String>,
    /// Said once: RBAC refusing pods/log is a configuration, not news each time.
    forbidden_logged: Arc<AtomicBool>,
}

impl LogFetcher {
    pub fn new(client: Client, shared: Arc<Shared>, timeout: Duration) -> Self {
        LogFetcher {
            client,
            shared,
            timeout,
            permits: Arc::new(Semaphore::new(CONCURRENT)),
            done: HashSet::new(),
            order: VecDeque::new(),
            forbidden_logged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The fetches `outcomes` call for, given the pods as `get` shows them.
    pub fn wanted<'a>(
        outcomes: &[Outcome],
        get: impl Fn(&str) -> Option<&'a Pod>,
    ) -> Vec<(String, Want)> {
        let mut wants = Vec::new();
        for outcome in outcomes {
            let (Outcome::Raise(detection) | Outcome::RaiseIfNew(detection)) = outcome else {
                continue;
            };
            if !matches!(
                detection.kind,
                IssueKind::Crashed | IssueKind::OomKilled | IssueKind::RestartLoop
            ) {
                continue;
            }
            let fact = |name: &str| detection.facts.get(name).and_then(Value::as_str);
            let (Some(namespace), Some(name), Some(container)) =
                (fact("namespace"), fact("pod"), fact("container"))
            else {
                continue;
            };
            let Some(pod) = get(&format!("{namespace}/{name}")) else {
                continue;
            };
            let Some(status) = pod::container_statuses(pod)
                .iter()
                .find(|s| s.name == container)
            else {
                continue;
            };
            let down_now = status
                .state
                .as_ref()
                .is_some_and(|state| state.terminated.is_some());
            let once = format!("{}#{}", detection.subject, status.restart_count);
            wants.push((
                once,
                Want {
                    service: detection.service.clone(),
                    kind: detection.kind,
                    subject: detection.subject.clone(),
                    namespace: namespace.to_string(),
                    pod: name.to_string(),
                    container: container.to_string(),
                    previous: !down_now && status.restart_count > 0,
                },
            ));
        }
        wants
    }

    /// Start the fetches not done yet for these restarts; returns at once.
    pub fn start(&mut self, wants: Vec<(String, Want)>) {
        for (once, want) in wants {
            if !self.done.insert(once.clone()) {
                continue;
            }
            self.order.push_back(once);
            while self.order.len() > REMEMBERED {
                if let Some(old) = self.order.pop_front() {
                    self.done.remove(&old);
                }
            }
            let client = self.client.clone();
            let shared = self.shared.clone();
            let timeout = self.timeout;
            let permits = self.permits.clone();
            let forbidden_logged = self.forbidden_logged.clone();
            tokio::spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                let facts = fetch(client, &shared, timeout, &want, &forbidden_logged).await;
                let committed = shared
                    .commit(move |tx, changes| {
                        changes.amend(tx, &want.service, want.kind, &want.subject, facts)
                    })
                    .await;
                if let Err(error) = committed {
                    shared.metrics.state_save_failures.inc();
                    tracing::error!(
                        error = format!("{error:#}"),
                        "a container's last log lines were not recorded: the commit failed"
                    );
                }
            });
        }
    }
}

/// The facts a fetch gives: the lines, or why there are none.
async fn fetch(
    client: Client,
    shared: &Shared,
    timeout: Duration,
    want: &Want,
    forbidden_logged: &AtomicBool,
) -> BTreeMap<String, Value> {
    let api: Api<Pod> = Api::namespaced(client, &want.namespace);
    let params = LogParams {
        container: Some(want.container.clone()),
        previous: want.previous,
        tail_lines: Some(TAIL_LINES as i64),
        limit_bytes: Some(LIMIT_BYTES as i64),
        ..LogParams::default()
    };
    let answer = tokio::time::timeout(timeout, api.logs(&want.pod, &params)).await;
    let why = match answer {
        Ok(Ok(text)) => {
            return BTreeMap::from([
                ("last_log_lines".to_string(), Value::from(last_lines(&text))),
                (
                    "last_log_source".to_string(),
                    Value::from(if want.previous {
                        "previous container"
                    } else {
                        "container"
                    }),
                ),
            ]);
        }
        Ok(Err(kube::Error::Api(status))) => {
            let code = status.code;
            let forbidden = code == 403;
            if !forbidden || !forbidden_logged.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    pod = %format!("{}/{}", want.namespace, want.pod),
                    code,
                    message = %status.message,
                    "the container's logs were refused{}",
                    if forbidden { " (RBAC: pods/log); said once" } else { "" }
                );
            }
            format!("{code} {}: {}", status.reason, status.message)
        }
        Ok(Err(error)) => {
            // The read timeout (the same KUBERNETES_TIMEOUT) may fire before the deadline.
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            tracing::debug!(error = %text, "fetching a container's logs failed");
            if text.to_ascii_lowercase().contains("timed out") {
                format!("no answer within {} s", timeout.as_secs_f64())
            } else {
                text
            }
        }
        Err(_) => format!("no answer within {} s", timeout.as_secs_f64()),
    };
    shared.metrics.kubernetes_failures.inc();
    BTreeMap::from([(
        "logs_unavailable".to_string(),
        Value::from(obs_core::redact::text(&why)),
    )])
}

/// The last TAIL_LINES lines of `text`, each redacted and at most LINE_MAX bytes, at most
/// LIMIT_BYTES in all (the newest kept).
pub fn last_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut total = 0;
    for line in text.lines().rev().filter(|line| !line.trim().is_empty()) {
        if lines.len() == TAIL_LINES {
            break;
        }
        let mut line = obs_core::redact::text(line.trim_end());
        if line.len() > LINE_MAX {
            let mut end = LINE_MAX;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line.truncate(end);
            line.push('…');
        }
        if total + line.len() > LIMIT_BYTES {
            break;
        }
        total += line.len();
        lines.push(line);
    }
    lines.reverse();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_lines_are_bounded_and_redacted() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let lines = last_lines(&text);
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().map(String::as_str), Some("line 99"));
        let long = "x".repeat(10_000);
        let lines = last_lines(&format!("{long}\n{long}\nDATABASE_PASSWORD=hunter2\n"));
        assert_eq!(
            lines.last().map(String::as_str),
            Some("DATABASE_PASSWORD=***")
        );
        assert!(lines.iter().map(String::len).sum::<usize>() <= LIMIT_BYTES);
        assert!(lines
            .iter()
            .all(|line| line.len() <= LINE_MAX + '…'.len_utf8()));
    }
}
