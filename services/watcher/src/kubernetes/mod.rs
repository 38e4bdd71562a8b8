//! Kubernetes: watch pods through the API server (kube-rs) and turn their trouble into the
//! same issues the Docker follower raises, plus the kinds only a cluster has
//! (`image_pull_failed`, `evicted`, `unschedulable`).
//!
//! One task owns the watch, under a lease like the Docker follower. kube-runtime's watcher
//! does the protocol: list, then watch from the list's resourceVersion with bookmarks, relist
//! when the server answers 410 Gone, reconnect with backoff when the stream fails or is cut.
//! One stream per namespace of KUBERNETES_NAMESPACES (or one for all). The [`table`] decides
//! what each pod change means; the outcomes commit through [`Shared::commit`], the one path
//! every issue takes. A listing's outcomes commit together once it is complete, and the pods
//! it no longer shows — deleted while the watch was away, even while the watcher was not
//! running — have their issues resolved.
//!
//! Beside each pod stream, an Event stream of the same scope ([`pod_events`]): the scheduler's,
//! the kubelet's and the node's Events add their facts to the pods' issues. When a crash, an
//! OOM kill or a restart loop is raised, the dead container's last log lines are fetched in a
//! task of their own ([`logs`]).
//!
//! Every request has a deadline (KUBERNETES_TIMEOUT): a read timeout on the connection, so a
//! list or a log fetch that hangs fails, and watches asked to end (timeoutSeconds) before it,
//! so an idle watch never trips it. A failure counts, reconnects with backoff, and sets
//! `watcher_kubernetes_connected` to 0; the HTTP API and the heartbeats run on other tasks.

pub(crate) mod detect;
pub mod logs;
pub mod pod;
pub mod pod_events;
pub mod remediate;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::DateTime;
use chrono::Utc;
use futures_util::stream::{self, Stream, StreamExt};
use k8s_openapi::api::core::v1::{Event as KubeEvent, Pod};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::utils::{Backoff, WatchStreamExt};
use kube::runtime::watcher;
use kube::{Api, Client};
use obs_core::db::{Lease, Tx};
use obs_core::CancellationToken;
use obs_model::IssueState;
use serde_json::Value;

use crate::config::{KubernetesMode, KubernetesSettings};
use crate::store;
use crate::{Changes, Shared};

pub use remediate::KubeLink;
use table::{Outcome, PodTable, Settings};

/// The lease the Kubernetes follower runs under.
pub const LEASE: &str = "watcher-kubernetes";

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The client configuration: KUBECONFIG's files (merged, as kubectl does) when set, otherwise
/// the in-cluster service account, otherwise ~/.kube/config.
pub async fn client_config(settings: &KubernetesSettings) -> anyhow::Result<kube::Config> {
    let mut config = match &settings.kubeconfig {
        Some(paths) => {
            let mut merged: Option<Kubeconfig> = None;
            for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
                let file = Kubeconfig::read_from(&path)
                    .with_context(|| format!("KUBECONFIG: reading {}", path.display()))?;
                merged = Some(match merged {
                    Some(merged) => merged.merge(file)?,
                    None => file,
                });
            }
            let merged = merged.context("KUBECONFIG names no file")?;
            kube::Config::from_custom_kubeconfig(merged, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("KUBECONFIG={}", Path::new(paths).display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster service account and no kubeconfig")?,
    };
    config.connect_timeout = Some(CONNECT_TIMEOUT.min(settings.timeout));
    // A list, a log fetch or a watch stream silent this long has hung: it fails and is retried.
    // Counted from when the request is sent, not from when its pooled connection went idle.
    config.read_timeout = Some(settings.timeout);
    config.write_timeout = Some(settings.timeout);
    config.reset_reader_on_write = true;
    Ok(config)
}

/// Follow the API server until shutdown, on whichever replica holds the lease.
pub async fn follow(shared: Arc<Shared>, shutdown: CancellationToken) {
    if shared.config.kubernetes.mode == KubernetesMode::Off {
        return;
    }
    let lease = Lease::new(&shared.db, LEASE, shared.config.lease_ttl);
    lease
        .run(shutdown, |held| follow_while_held(shared.clone(), held))
        .await;
}

/// kube-runtime's backoff between failed lists and watches: quick at first (a cut stream is
/// usually back at once), at most MAX_RETRY; reset by every item that arrives.
struct Retry {
    next: Duration,
}

impl Iterator for Retry {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX_RETRY);
        Some(wait)
    }
}

impl Backoff for Retry {
    fn reset(&mut self) {
        self.next = FIRST_RETRY;
    }
}

// Each item is moved once, from the stream to its handler, as the pod events were before
// Events joined them: boxing the larger variant would only add an allocation per item.
#[allow(clippy::large_enum_variant)]
enum Item {
    Pods(Result<watcher::Event<Pod>, watcher::Error>),
    Events(Result<watcher::Event<KubeEvent>, watcher::Error>),
}

type Scoped = (String, Item);

/// What a watch asks the server for (timeoutSeconds): three quarters of KUBERNETES_TIMEOUT, so
/// the server ends an idle watch before the client's read timeout would call it hung.
pub fn watch_seconds(timeout: Duration) -> u32 {
    ((timeout.as_secs_f64() * 0.75).floor() as u32).clamp(1, 290)
}

/// One pod and one Event watch stream per namespace (or one each for all), each item tagged
/// with its namespace ("" for all).
fn watch(
    client: &Client,
    settings: &KubernetesSettings,
) -> Pin<Box<dyn Stream<Item = Scoped> + Send>> {
    let base = watcher::Config::default().timeout(watch_seconds(settings.timeout));
    // Events carry no pod labels: the table drops those of pods the selector leaves out.
    let event_config = base.clone();
    let mut config = base;
    if let Some(selector) = &settings.label_selector {
        config = config.labels(selector);
    }
    let scopes: Vec<String> = if settings.namespaces.is_empty() {
        vec![String::new()]
    } else {
        settings.namespaces.clone()
    };
    let streams = scopes.into_iter().flat_map(|scope| {
        let (pods, events): (Api<Pod>, Api<KubeEvent>) = if scope.is_empty() {
            (Api::all(client.clone()), Api::all(client.clone()))
        } else {
            (
                Api::namespaced(client.clone(), &scope),
                Api::namespaced(client.clone(), &scope),
            )
        };
        let event_scope = scope.clone();
        [
            watcher(pods, config.clone())
                .backoff(Retry { next: FIRST_RETRY })
                .map(move |item| (scope.clone(), Item::Pods(item)))
                .boxed(),
            watcher(events, event_config.clone())
                .backoff(Retry { next: FIRST_RETRY })
                .map(move |item| (event_scope.clone(), Item::Events(item)))
                .boxed(),
        ]
    });
    stream::select_all(streams).boxed()
}

async fn follow_while_held(shared: Arc<Shared>, shutdown: CancellationToken) {
    let settings = shared.config.kubernetes.clone();
    let mut retry = Retry { next: FIRST_RETRY };
    // Said once, not per try.
    let mut absence_logged = false;
    let client = loop {
        let attempt = client_config(&settings)
            .await
            .and_then(|config| Client::try_from(config).context("building the client"));
        match attempt {
            Ok(client) => break client,
            Err(error) => {
                shared.metrics.kubernetes_failures.inc();
                if !absence_logged {
                    absence_logged = true;
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "no usable Kubernetes configuration; running without the pod watch and \
                         trying again"
                    );
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry.next().unwrap_or(MAX_RETRY)) => {}
        }
    };
    tracing::info!(
        namespaces = %if settings.namespaces.is_empty() { "all".to_string() } else { settings.namespaces.join(",") },
        label_selector = settings.label_selector.as_deref().unwrap_or(""),
        "watching Kubernetes pods"
    );
    let table_settings = Settings {
        restart_loop_threshold: shared.config.docker.restart_loop_threshold,
        restart_loop_window: shared.config.docker.restart_loop_window,
        not_ready_after: settings.not_ready_after,
        unschedulable_after: settings.unschedulable_after,
    };
    let mut follower = Follower {
        shared: shared.clone(),
        table: PodTable::default(),
        settings: table_settings,
        pending: HashMap::new(),
        healthy: HashMap::new(),
        events_healthy: HashMap::new(),
        started: Utc::now(),
        logs: logs::LogFetcher::new(client.clone(), shared.clone(), settings.timeout),
    };
    shared.kubernetes.set_client(Some(client.clone()));
    let mut events = watch(&client, &settings);
    let smallest = settings
        .not_ready_after
        .min(settings.unschedulable_after)
        .min(shared.config.docker.restart_loop_window);
    let mut sweep = tokio::time::interval(
        (smallest / 4).clamp(Duration::from_millis(50), Duration::from_secs(5)),
    );
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = sweep.tick() => follower.sweep().await,
            item = events.next() => match item {
                Some((scope, Item::Pods(item))) => follower.handle(scope, item).await,
                Some((scope, Item::Events(item))) => follower.handle_event(scope, item).await,
                None => break,
            }
        }
    }
    shared.metrics.kubernetes_connected.set(0);
    shared.kubernetes.set_client(None);
}

struct Follower {
    shared: Arc<Shared>,
    table: PodTable,
    settings: Settings,
    /// A listing's outcomes, per stream, until it is complete.
    pending: HashMap<String, Vec<Outcome>>,
    /// Whether each pod stream's last item was good: connected while all are.
    healthy: HashMap<String, bool>,
    /// The same for the Event streams: their failures are counted and said once per outage,
    /// but the pods are watched without them (RBAC may grant pods and not events).
    events_healthy: HashMap<String, bool>,
    /// Events that happened before this are not new occurrences.
    started: DateTime<Utc>,
    logs: logs::LogFetcher,
}

impl Follower {
    fn set_health(&mut self, scope: &str, good: bool) {
        self.healthy.insert(scope.to_string(), good);
        let connected = self.healthy.values().all(|good| *good);
        self.shared
            .metrics
            .kubernetes_connected
            .set(i64::from(connected));
    }

    async fn handle(&mut self, scope: String, item: Result<watcher::Event<Pod>, watcher::Error>) {
        let now = Utc::now();
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                self.shared.metrics.kubernetes_failures.inc();
                let was_healthy = self.healthy.get(&scope).copied().unwrap_or(true);
                self.set_health(&scope, false);
                let error = anyhow::Error::new(error);
                if was_healthy {
                    tracing::warn!(
                        namespace = %if scope.is_empty() { "all" } else { scope.as_str() },
                        error = format!("{error:#}"),
                        "the Kubernetes watch failed; retrying with backoff"
                    );
                } else {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "the Kubernetes watch failed again"
                    );
                }
                return;
            }
        };
        match event {
            watcher::Event::Init => {
                self.table.begin_listing(&scope);
                self.pending.insert(scope, Vec::new());
            }
            watcher::Event::InitApply(pod) => {
                self.link(&pod);
                let outcomes = self.table.observe(Some(&scope), pod, now, &self.settings);
                self.pending.entry(scope).or_default().extend(outcomes);
            }
            watcher::Event::InitDone => {
                let mut outcomes = self.pending.remove(&scope).unwrap_or_default();
                outcomes.extend(self.table.end_listing(&scope));
                self.shared.kubernetes.retain(&self.table.keys());
                self.commit(outcomes, Some(scope.clone()), "a pod listing")
                    .await;
                self.set_health(&scope, true);
            }
            watcher::Event::Apply(pod) => {
                self.set_health(&scope, true);
                self.link(&pod);
                let outcomes = self.table.observe(None, pod, now, &self.settings);
                self.commit(outcomes, None, "a pod change").await;
            }
            watcher::Event::Delete(pod) => {
                self.set_health(&scope, true);
                let outcomes = pod::key(&pod)
                    .map(|key| {
                        self.shared.kubernetes.gone(&key);
                        self.table.remove(&key, "pod deleted")
                    })
                    .unwrap_or_default();
                self.commit(outcomes, None, "a pod deletion").await;
            }
        }
    }

    async fn handle_event(
        &mut self,
        scope: String,
        item: Result<watcher::Event<KubeEvent>, watcher::Error>,
    ) {
        let event = match item {
            Ok(event) => event,
            Err(error) => {
                self.shared.metrics.kubernetes_failures.inc();
                let was_healthy = self.events_healthy.insert(scope.clone(), false) != Some(false);
                let error = anyhow::Error::new(error);
                if was_healthy {
                    tracing::warn!(
                        namespace = %if scope.is_empty() { "all" } else { scope.as_str() },
                        error = format!("{error:#}"),
                        "the Kubernetes Event watch failed; pods are still watched; retrying \
                         with backoff"
                    );
                } else {
                    tracing::debug!(
                        error = format!("{error:#}"),
                        "the Kubernetes Event watch failed again"
                    );
                }
                return;
            }
        };
        let event = match event {
            watcher::Event::InitApply(event) | watcher::Event::Apply(event) => event,
            watcher::Event::Init | watcher::Event::InitDone | watcher::Event::Delete(_) => {
                if self.events_healthy.insert(scope.clone(), true) == Some(false) {
                    tracing::info!("the Kubernetes Event watch is back");
                }
                return;
            }
        };
        self.events_healthy.insert(scope, true);
        let Some(signal) = pod_events::signal(&event) else {
            return;
        };
        let outcomes = self.table.event(signal, self.started);
        self.commit(outcomes, None, "a pod's event").await;
    }

    /// The pod as the restart endpoint may act on it.
    fn link(&self, pod: &Pod) {
        if let Some(key) = pod::key(pod) {
            self.shared.kubernetes.seen(key, pod::owner(pod));
        }
    }

    async fn sweep(&mut self) {
        let outcomes = self.table.sweep(Utc::now(), &self.settings);
        self.commit(outcomes, None, "a sweep of the pods").await;
    }

    /// Commit `outcomes`; after a complete listing of `scope`, also resolve the open
    /// Kubernetes issues of that scope about pods the table does not know (deleted while
    /// nobody watched).
    async fn commit(&mut self, outcomes: Vec<Outcome>, listed: Option<String>, what: &str) {
        let orphans = listed.map(|scope| (scope, self.table.keys()));
        if outcomes.is_empty() && orphans.is_none() {
            return;
        }
        let wanted = logs::LogFetcher::wanted(&outcomes, |key| self.table.get(key));
        let committed = self
            .shared
            .commit(move |tx, changes| {
                apply(tx, changes, outcomes)?;
                if let Some((scope, known)) = orphans {
                    resolve_orphans(tx, changes, &scope, &known)?;
                }
                Ok(())
            })
            .await;
        match committed {
            // The raised issues are in: their dead containers' logs may follow.
            Ok(()) => self.logs.start(wanted),
            Err(error) => {
                self.shared.metrics.state_save_failures.inc();
                tracing::error!(
                    error = format!("{error:#}"),
                    "{what} was not recorded: the commit failed"
                );
            }
        }
    }
}

/// What pod changes lead to, in one transaction.
fn apply(tx: &mut Tx<'_>, changes: &mut Changes, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::Raise(detection) => changes.raise(tx, detection)?,
            Outcome::RaiseIfNew(detection) => {
                // Open already as this kind, or as a graver one of its family (a crash inside
                // its open restart loop): nothing new. A restart loop seen after a restart of
                // the watcher still escalates an open crash.
                let open = store::open_of_subject(tx, &detection.subject)?;
                let known = open.iter().any(|(service, kind)| {
                    *service == detection.service
                        && (*kind == detection.kind || kind.supersedes(detection.kind))
                });
                if !known {
                    changes.raise(tx, detection)?;
                }
            }
            Outcome::Resolve {
                service,
                kind,
                subject,
                why,
            } => {
                let facts = [("resolution".to_string(), Value::from(why))].into();
                changes.resolve(tx, &service, kind, &subject, facts)?;
            }
            Outcome::ResolveAll { subject, why } => {
                let facts = [("resolution".to_string(), Value::from(why))].into();
                changes.resolve_all_of(tx, &subject, facts)?;
            }
            Outcome::Amend {
                service,
                kind,
                subject,
                facts,
            } => changes.amend(tx, &service, kind, &subject, facts)?,
        }
    }
    Ok(())
}

/// Open Kubernetes issues in `scope` about pods not in `known`: their pod is gone.
fn resolve_orphans(
    tx: &mut Tx<'_>,
    changes: &mut Changes,
    scope: &str,
    known: &HashSet<String>,
) -> anyhow::Result<()> {
    let (open, _) = store::issues_for_listing(tx, Some(IssueState::Open), 0)?;
    for issue in open {
        if issue.facts.get("platform").and_then(Value::as_str) != Some("kubernetes") {
            continue;
        }
        let (Some(namespace), Some(name)) = (
            issue.facts.get("namespace").and_then(Value::as_str),
            issue.facts.get("pod").and_then(Value::as_str),
        ) else {
            continue;
        };
        let key = format!("{namespace}/{name}");
        if table::in_scope(&key, scope) && !known.contains(&key) {
            let facts = [("resolution".to_string(), Value::from("pod deleted"))].into();
            changes.resolve(tx, &issue.service, issue.kind, &issue.subject, facts)?;
        }
    }
    Ok(())
}

/// KUBERNETES_WATCH=on: a configuration must load and give a client, or the watcher does not
/// start. The API server itself may still be away (it is retried).
pub async fn check_configuration(settings: &KubernetesSettings) -> anyhow::Result<()> {
    let config = client_config(settings).await?;
    Client::try_from(config).context("building the Kubernetes client")?;
    Ok(())
}
