//! Docker: follow a real engine's event stream (bollard) and turn container trouble into
//! issues.
//!
//! One task owns the connection. It connects (negotiating the API version, so old engines
//! work), seeds the table from the running containers, then follows `/events` (from a second
//! before the listing, so nothing that happens while seeding is missed). When the stream
//! ends or fails — the engine restarted, the socket went away — it reconnects with backoff
//! and seeds again. With DOCKER_WATCH=auto and no engine, the watcher runs without one, says
//! so once, and keeps looking quietly.
//!
//! The follower runs under a lease: with several replicas on one PostgreSQL one of them
//! follows the engine (another takes over when it dies); on SQLite it is always this process.
//! Each container event commits in one transaction: the event, the issues it opens, updates
//! or resolves, the container's row and its counts, and the records for downstream.

pub(crate) mod detect;
pub(crate) mod filter;
mod table;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use bollard::models::EventMessage;
use bollard::query_parameters::{
    EventsOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    LogsOptionsBuilder, RestartContainerOptionsBuilder,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use obs_core::db::{Lease, Tx};
use obs_core::{ApiError, CancellationToken};
use obs_model::{Container, ContainerLogs, EventSource, IssueKind};
use serde_json::Value;

pub use table::{truncate_chars, ContainerTable};

use crate::config::DockerMode;
use crate::issues::Detection;
use crate::store::{self, ContainerCounts};
use crate::{Changes, Shared};

/// The lease the Docker follower runs under.
pub const LEASE: &str = "watcher-docker";

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Headers of any engine request (not the event stream's body) must arrive within this.
const REQUEST_TIMEOUT_SECONDS: u64 = 30;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Container actions that are noise for the watcher (docker exec, attach, cp …).
const IGNORED: &[&str] = &[
    "attach",
    "detach",
    "resize",
    "top",
    "copy",
    "archive-path",
    "extract-to-dir",
    "export",
    "commit",
];
/// `GET /logs` returns at most this many bytes, however long the lines are.
const MAX_LOG_BYTES: usize = 4 * 1024 * 1024;

/// The live engine connection, for the API's `/logs`, `/container` and restarts.
#[derive(Default)]
pub struct DockerLink {
    client: RwLock<Option<Docker>>,
}

impl DockerLink {
    pub fn client(&self) -> Option<Docker> {
        self.client
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn is_connected(&self) -> bool {
        self.client().is_some()
    }

    fn set(&self, client: Option<Docker>) {
        *self
            .client
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = client;
    }
}

/// Connect to DOCKER_HOST, agree on an API version, and ping.
pub async fn connect(host: &str) -> anyhow::Result<Docker> {
    let attempt = async {
        let docker = match host.strip_prefix("unix://") {
            Some(path) => Docker::connect_with_unix(
                path,
                REQUEST_TIMEOUT_SECONDS,
                bollard::API_DEFAULT_VERSION,
            ),
            None => Docker::connect_with_http(
                host,
                REQUEST_TIMEOUT_SECONDS,
                bollard::API_DEFAULT_VERSION,
            ),
        }?;
        let docker = docker.negotiate_version().await?;
        docker.ping().await?;
        anyhow::Ok(docker)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {CONNECT_TIMEOUT:?}"))?
}

/// Follow the engine until shutdown, on whichever replica holds the lease.
pub async fn follow(shared: Arc<Shared>, shutdown: CancellationToken) {
    if shared.config.docker.mode == DockerMode::Off {
        tracing::info!("Docker watching is off (DOCKER_WATCH=off)");
        return;
    }
    let lease = Lease::new(&shared.db, LEASE, shared.config.lease_ttl);
    lease
        .run(shutdown, |held| follow_while_held(shared.clone(), held))
        .await;
}

/// Follow the engine until `shutdown` (or the lease is lost), reconnecting whenever it goes
/// away.
async fn follow_while_held(shared: Arc<Shared>, shutdown: CancellationToken) {
    let settings = shared.config.docker.clone();
    let mut retry = FIRST_RETRY;
    // Whether the current absence of an engine was already logged: said once, not per try.
    let mut absence_logged = false;
    let mut ever_connected = false;
    loop {
        let attempt = tokio::select! {
            _ = shutdown.cancelled() => return,
            attempt = connect(&settings.host) => attempt,
        };
        if attempt.is_err() {
            shared.metrics.docker_connect_failures.inc();
        }
        match attempt {
            Ok(docker) => {
                retry = FIRST_RETRY;
                let version = docker.client_version();
                tracing::info!(
                    host = %settings.host,
                    api_version = %format!("{}.{}", version.major_version, version.minor_version),
                    "{}",
                    if ever_connected { "Docker engine is back; following it again" } else { "following the Docker engine" }
                );
                ever_connected = true;
                shared.docker.set(Some(docker.clone()));
                shared.metrics.docker_connected.set(1);
                let ended = session(&shared, &docker, &shutdown).await;
                shared.docker.set(None);
                shared.metrics.docker_connected.set(0);
                if shutdown.is_cancelled() {
                    return;
                }
                tracing::warn!(
                    host = %settings.host,
                    error = format!("{:#}", ended.err().unwrap_or_else(|| anyhow::anyhow!("stream ended"))),
                    "lost the Docker engine; reconnecting"
                );
                // The loss was said; the failed attempts that follow stay quiet.
                absence_logged = true;
            }
            Err(error) if !absence_logged => {
                absence_logged = true;
                tracing::warn!(
                    host = %settings.host,
                    error = format!("{error:#}"),
                    "no Docker engine answers at DOCKER_HOST; running without container \
                     watching (DOCKER_WATCH=auto) and connecting when one appears"
                );
            }
            Err(_) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(retry) => {}
        }
        retry = (retry * 2).min(MAX_RETRY);
    }
}

/// One connection's life: seed, then follow events until the stream ends, fails or
/// shutdown. `Ok` only on shutdown.
async fn session(
    shared: &Arc<Shared>,
    docker: &Docker,
    shutdown: &CancellationToken,
) -> anyhow::Result<()> {
    let since = (Utc::now().timestamp() - 1).to_string();
    seed(shared, docker).await.context("listing containers")?;
    let filters = HashMap::from([("type", vec!["container"])]);
    let options = EventsOptionsBuilder::new()
        .since(&since)
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(options));
    let window = shared.config.docker.restart_loop_window;
    let mut sweep = tokio::time::interval(
        (window / 10).clamp(Duration::from_millis(100), Duration::from_secs(5)),
    );
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            _ = sweep.tick() => sweep_stable(shared).await,
            item = events.next() => match item {
                Some(Ok(message)) => handle(shared, docker, message).await,
                Some(Err(error)) => return Err(error).context("the event stream failed"),
                None => anyhow::bail!("the event stream ended"),
            }
        }
    }
}

/// What a container event leads to, decided under the table's lock, applied after it.
enum Outcome {
    Raise(Detection),
    /// Seen again after a restart of the watcher or the engine link: an issue already open
    /// is not a new occurrence.
    RaiseIfNew(Detection),
    Amend {
        subject: String,
        kind: IssueKind,
        facts: BTreeMap<String, Value>,
    },
    Resolve {
        subject: String,
        kind: IssueKind,
        why: &'static str,
    },
    ResolveAll {
        subject: String,
        why: &'static str,
    },
}

/// Fill the table from the engine's containers, as they are now.
async fn seed(shared: &Arc<Shared>, docker: &Docker) -> anyhow::Result<()> {
    let listed = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
        .await?;
    let filter = &shared.config.docker.filter;
    let mut inspected = Vec::with_capacity(listed.len());
    for summary in listed {
        let Some(id) = summary.id else { continue };
        let name = summary
            .names
            .as_ref()
            .and_then(|names| names.first())
            .map_or(id.as_str(), String::as_str);
        // Not followed: as if it were not there (the table forgets it too).
        if !filter.admits(name, summary.labels.as_ref().unwrap_or(&HashMap::new())) {
            continue;
        }
        // A container removed between the listing and the inspect is simply gone.
        if let Ok(inspect) = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
        {
            inspected.push(inspect);
        }
    }
    let mut outcomes = Vec::new();
    let mut removed = Vec::new();
    {
        let mut table = shared.containers();
        let ids: Vec<String> = inspected.iter().filter_map(|i| i.id.clone()).collect();
        for gone in table.retain_ids(&ids) {
            removed.push(gone.info.id.clone());
            outcomes.push(Outcome::ResolveAll {
                subject: gone.info.name,
                why: "container removed",
            });
        }
        for inspect in &inspected {
            let Some(watched) = table.upsert(inspect) else {
                continue;
            };
            if watched.info.state == "running" {
                watched.seen_start = true;
            }
            if watched.info.health.as_deref() == Some("unhealthy") {
                outcomes.push(Outcome::Raise(detect::unhealthy(
                    &watched.info,
                    watched.failing_streak,
                    watched.health_output.as_deref(),
                )));
            }
            // Ended while nobody watched (before the watcher started, or while the engine
            // link was down): what its state still says. A stop asked for (SIGTERM/SIGINT,
            // or SIGKILL after the stop timeout) cannot be told from its exit code alone, so
            // those codes are not called crashes here; the engine's OOM flag is kept.
            if watched.info.state == "exited" {
                watched.seeded_exit = watched.info.finished_at;
                if watched.info.oom_killed {
                    watched.troubled = true;
                    outcomes.push(Outcome::Raise(detect::oom_killed(
                        &watched.info,
                        &[detect::SIGNAL_STATE_OOM_KILLED],
                        watched.info.exit_code,
                    )));
                } else if let Some(code) = watched
                    .info
                    .exit_code
                    .filter(|code| !matches!(code, 0 | 130 | 137 | 143))
                {
                    watched.troubled = true;
                    outcomes.push(Outcome::Raise(detect::crashed(
                        &watched.info,
                        code,
                        &watched.restart_policy,
                    )));
                }
            }
        }
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|outcome| match outcome {
            Outcome::Raise(detection) => Outcome::RaiseIfNew(detection),
            other => other,
        })
        .collect();
    let rows = {
        let table = shared.containers();
        ContainerRows {
            put: table.list(),
            deleted: removed,
            counts: Vec::new(),
        }
    };
    shared
        .commit(move |tx, changes| {
            rows.write(tx)?;
            apply(tx, changes, outcomes)
        })
        .await
        .context("recording what the engine lists")?;
    Ok(())
}

/// Container rows to write with a change.
struct ContainerRows {
    put: Vec<Container>,
    deleted: Vec<String>,
    counts: Vec<(String, ContainerCounts)>,
}

impl ContainerRows {
    fn write(&self, tx: &mut Tx<'_>) -> anyhow::Result<()> {
        for id in &self.deleted {
            store::delete_container(tx, id)?;
        }
        for container in &self.put {
            store::put_container(tx, container)?;
        }
        for (name, counts) in &self.counts {
            store::put_counts(tx, name, *counts)?;
        }
        Ok(())
    }
}

async fn handle(shared: &Arc<Shared>, docker: &Docker, message: EventMessage) {
    let Some(actor) = message.actor else { return };
    let Some(id) = actor.id else { return };
    let attributes = actor.attributes.unwrap_or_default();
    let raw_action = message.action.unwrap_or_default();
    let (action, health) = match raw_action.split_once(':') {
        Some((action, status)) => (action.trim(), Some(status.trim().to_string())),
        None => (raw_action.as_str(), None),
    };
    if action.starts_with("exec_") || IGNORED.contains(&action) {
        return;
    }
    let time = message
        .time_nano
        .map(DateTime::from_timestamp_nanos)
        .unwrap_or_else(Utc::now);
    let exit_code = attributes
        .get("exitCode")
        .and_then(|code| code.parse::<i64>().ok());
    let inspect = if action == "destroy" {
        None
    } else {
        docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .ok()
    };
    let settings = &shared.config.docker;
    let followed = match inspect.as_ref().and_then(|i| Some((i.name.as_deref()?, i))) {
        Some((name, inspect)) => settings.filter.admits(
            name,
            inspect
                .config
                .as_ref()
                .and_then(|config| config.labels.as_ref())
                .unwrap_or(&HashMap::new()),
        ),
        // Gone already (or destroyed): it was followed if the table knows it; else its
        // event's attributes (its labels, its name) are all there is to judge by.
        None => {
            shared.containers().get(&id).is_some()
                || settings.filter.admits(
                    attributes.get("name").map_or(id.as_str(), String::as_str),
                    &attributes,
                )
        }
    };
    if !followed {
        return;
    }
    let mut outcomes = Vec::new();
    let mut name = attributes
        .get("name")
        .cloned()
        .unwrap_or_else(|| id.chars().take(12).collect());
    let image = attributes.get("image").cloned();
    let mut rows = ContainerRows {
        put: Vec::new(),
        deleted: Vec::new(),
        counts: Vec::new(),
    };
    let mut restarted = false;
    let mut oom_counted = false;
    {
        let mut table = shared.containers();
        if action == "destroy" {
            if let Some(gone) = table.remove(&id) {
                name = gone.info.name;
            }
            rows.deleted.push(id.clone());
            outcomes.push(Outcome::ResolveAll {
                subject: name.clone(),
                why: "container removed",
            });
        } else {
            if let Some(inspect) = &inspect {
                table.upsert(inspect);
            }
            if let Some(watched) = table.get_mut(&id) {
                name = watched.info.name.clone();
                match action {
                    "start" => {
                        restarted = watched.seen_start;
                        watched.seen_start = true;
                        watched.stop_requested = false;
                        watched.oom_reported = None;
                        watched.oom_event = false;
                        watched.starts.push_back(time);
                        let window = chrono::Duration::from_std(settings.restart_loop_window)
                            .unwrap_or(chrono::Duration::MAX);
                        while watched
                            .starts
                            .front()
                            .is_some_and(|start| *start + window < time)
                        {
                            watched.starts.pop_front();
                        }
                        if watched.starts.len() >= settings.restart_loop_threshold {
                            watched.troubled = true;
                            outcomes.push(Outcome::Raise(detect::restart_loop(
                                &watched.info,
                                watched.starts.len(),
                                settings.restart_loop_window.as_secs(),
                                &watched.restart_policy,
                            )));
                        }
                    }
                    "kill" | "stop" => watched.stop_requested = true,
                    "oom" => {
                        watched.oom_event = true;
                        if watched.oom_reported.is_none() {
                            watched.oom_reported = Some(detect::SIGNAL_OOM_EVENT);
                            watched.troubled = true;
                            oom_counted = true;
                            outcomes.push(Outcome::Raise(detect::oom_killed(
                                &watched.info,
                                &[detect::SIGNAL_OOM_EVENT],
                                None,
                            )));
                        }
                    }
                    "die"
                        if watched.seeded_exit.is_some()
                            && watched.seeded_exit == watched.info.finished_at =>
                    {
                        // The exit the seed judged, replayed: recorded as an event only.
                    }
                    "die" => {
                        let code = exit_code.or(watched.info.exit_code).unwrap_or(0);
                        watched.info.exit_code = Some(code);
                        let mut signals = Vec::new();
                        if watched.oom_event {
                            signals.push(detect::SIGNAL_OOM_EVENT);
                        }
                        if watched.info.oom_killed {
                            signals.push(detect::SIGNAL_STATE_OOM_KILLED);
                        }
                        if code == 137
                            && watched.info.memory_limit_bytes.is_some()
                            && !watched.stop_requested
                        {
                            signals.push(detect::SIGNAL_EXIT_137_UNDER_LIMIT);
                        }
                        if !signals.is_empty() {
                            if watched.oom_reported.is_some() {
                                outcomes.push(Outcome::Amend {
                                    subject: name.clone(),
                                    kind: IssueKind::OomKilled,
                                    facts: BTreeMap::from([
                                        ("exit_code".to_string(), Value::from(code)),
                                        ("signals".to_string(), Value::from(signals.clone())),
                                    ]),
                                });
                            } else {
                                watched.oom_reported = signals.first().copied();
                                watched.troubled = true;
                                oom_counted = true;
                                outcomes.push(Outcome::Raise(detect::oom_killed(
                                    &watched.info,
                                    &signals,
                                    Some(code),
                                )));
                            }
                        } else if code != 0 && !watched.stop_requested {
                            watched.troubled = true;
                            outcomes.push(Outcome::Raise(detect::crashed(
                                &watched.info,
                                code,
                                &watched.restart_policy,
                            )));
                        }
                    }
                    "health_status" => match health.as_deref() {
                        Some("unhealthy") => outcomes.push(Outcome::Raise(detect::unhealthy(
                            &watched.info,
                            watched.failing_streak,
                            watched.health_output.as_deref(),
                        ))),
                        Some("healthy") => outcomes.push(Outcome::Resolve {
                            subject: name.clone(),
                            kind: IssueKind::Unhealthy,
                            why: "health check passes again",
                        }),
                        _ => {}
                    },
                    _ => {}
                }
            }
            if restarted {
                table.count_restart(&name);
            }
            if oom_counted {
                table.count_oom(&name);
            }
            if restarted || oom_counted {
                let counts = table.counts().get(&name).copied().unwrap_or_default();
                rows.counts.push((name.clone(), counts));
            }
            if let Some(watched) = table.get(&id) {
                rows.put.push(watched.info.clone());
            }
        }
    }

    let mut event = shared.new_event(&name, action, EventSource::Docker);
    event.timestamp = time;
    event.container = Some(name.clone());
    event.image = image;
    if action == "die" {
        event.exit_code = exit_code;
    }
    event.detail = match action {
        "health_status" => health,
        "kill" => attributes
            .get("signal")
            .map(|signal| format!("signal {signal}")),
        _ => None,
    };
    let committed = shared
        .commit(move |tx, changes| {
            rows.write(tx)?;
            changes.event(tx, event)?;
            apply(tx, changes, outcomes)
        })
        .await;
    match committed {
        Ok(()) => {
            if restarted {
                shared
                    .metrics
                    .container_restarts
                    .with_label_values(&[&name])
                    .inc();
            }
            if oom_counted {
                shared
                    .metrics
                    .container_oom_kills
                    .with_label_values(&[&name])
                    .inc();
            }
        }
        Err(error) => {
            shared.metrics.state_save_failures.inc();
            tracing::error!(
                error = format!("{error:#}"),
                container = %name,
                action,
                "a container event was not recorded: the commit failed"
            );
        }
    }
}

/// What container events lead to, in the event's transaction.
fn apply(tx: &mut Tx<'_>, changes: &mut Changes, outcomes: Vec<Outcome>) -> anyhow::Result<()> {
    for outcome in outcomes {
        match outcome {
            Outcome::Raise(detection) => changes.raise(tx, detection)?,
            Outcome::RaiseIfNew(detection) => changes.raise_if_new(tx, detection)?,
            Outcome::Amend {
                subject,
                kind,
                facts,
            } => changes.amend(tx, &subject, kind, &subject, facts)?,
            Outcome::Resolve { subject, kind, why } => {
                let facts = BTreeMap::from([("resolution".to_string(), Value::from(why))]);
                changes.resolve(tx, &subject, kind, &subject, facts)?;
            }
            Outcome::ResolveAll { subject, why } => {
                let facts = BTreeMap::from([("resolution".to_string(), Value::from(why))]);
                changes.resolve_all_of(tx, &subject, facts)?;
            }
        }
    }
    Ok(())
}

/// Containers that have run for a whole RESTART_LOOP_WINDOW since their last start are over
/// their crash, OOM or restart loop: resolve those issues.
async fn sweep_stable(shared: &Arc<Shared>) {
    let window = chrono::Duration::from_std(shared.config.docker.restart_loop_window)
        .unwrap_or(chrono::Duration::MAX);
    let now = Utc::now();
    let stable: Vec<String> = {
        let mut table = shared.containers();
        let names: Vec<String> = table
            .troubled()
            .into_iter()
            .filter(|watched| {
                watched.info.state == "running"
                    && watched
                        .info
                        .started_at
                        .is_some_and(|started| started + window <= now)
            })
            .map(|watched| watched.info.id.clone())
            .collect();
        names
            .iter()
            .filter_map(|id| {
                let watched = table.get_mut(id)?;
                watched.troubled = false;
                Some(watched.info.name.clone())
            })
            .collect()
    };
    let stable_ids: Vec<String> = {
        let table = shared.containers();
        stable
            .iter()
            .filter_map(|name| table.find(name).map(|watched| watched.info.id.clone()))
            .collect()
    };
    if stable.is_empty() {
        return;
    }
    let committed = shared
        .commit(move |tx, changes| {
            for name in &stable {
                for kind in [
                    IssueKind::Crashed,
                    IssueKind::OomKilled,
                    IssueKind::RestartLoop,
                ] {
                    let facts = BTreeMap::from([(
                        "resolution".to_string(),
                        Value::from("running steadily for the restart-loop window"),
                    )]);
                    changes.resolve(tx, name, kind, name, facts)?;
                }
            }
            Ok(())
        })
        .await;
    if let Err(error) = committed {
        shared.metrics.state_save_failures.inc();
        tracing::error!(
            error = format!("{error:#}"),
            "resolving steady containers' issues failed; the next sweep retries"
        );
        // Troubled again, so the next sweep looks at them once more.
        let mut table = shared.containers();
        for id in stable_ids {
            if let Some(watched) = table.get_mut(&id) {
                watched.troubled = true;
            }
        }
    }
}

fn engine(shared: &Shared) -> Result<Docker, ApiError> {
    shared.docker.client().ok_or_else(|| {
        ApiError::Unavailable(format!(
            "the Docker engine at {} is not connected",
            shared.config.docker.host
        ))
    })
}

/// `bollard`'s 404 from the engine: the container does not exist (any more).
fn engine_error(error: bollard::errors::Error, name: &str) -> ApiError {
    match error {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => ApiError::not_found(format!("no container named {name}")),
        other => ApiError::Internal(anyhow::Error::new(other).context("asking the Docker engine")),
    }
}

/// A container's current view: inspected afresh when the engine is connected, the last known
/// one otherwise.
pub async fn container(shared: &Arc<Shared>, name: &str) -> Result<Container, ApiError> {
    let known = shared.containers().find(name).map(|w| w.info.clone());
    let Some(docker) = shared.docker.client() else {
        return known.ok_or_else(|| ApiError::not_found(format!("no container named {name}")));
    };
    let Some(known) = known else {
        return Err(ApiError::not_found(format!("no container named {name}")));
    };
    match docker
        .inspect_container(&known.id, None::<InspectContainerOptions>)
        .await
    {
        Ok(inspect) => {
            let mut table = shared.containers();
            Ok(table
                .upsert(&inspect)
                .map(|watched| watched.info.clone())
                .unwrap_or(known))
        }
        Err(error) => Err(engine_error(error, name)),
    }
}

/// The last `lines` lines of a known container's stdout and stderr.
pub async fn logs(
    shared: &Arc<Shared>,
    name: &str,
    lines: usize,
) -> Result<ContainerLogs, ApiError> {
    let docker = engine(shared)?;
    let Some(id) = shared.containers().find(name).map(|w| w.info.id.clone()) else {
        return Err(ApiError::not_found(format!("no container named {name}")));
    };
    let options = LogsOptionsBuilder::new()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(&id, Some(options));
    let mut text = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|error| engine_error(error, name))?;
            text.extend_from_slice(chunk.as_ref());
            if text.len() > MAX_LOG_BYTES {
                break;
            }
        }
        Ok::<(), ApiError>(())
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .map_err(|_| {
            ApiError::Unavailable("the Docker engine did not send the logs within 10 s".into())
        })??;
    let text = String::from_utf8_lossy(&text);
    let mut all: Vec<String> = text.lines().map(str::to_string).collect();
    let keep = all.len().saturating_sub(lines);
    all.drain(..keep);
    Ok(ContainerLogs {
        container: name.to_string(),
        lines: all,
    })
}

/// Restart a known container (planner auto-remediation). The exit it causes is requested,
/// so it is not a crash.
pub async fn restart(
    shared: &Arc<Shared>,
    name: &str,
    timeout_seconds: i32,
) -> Result<(), ApiError> {
    let docker = engine(shared)?;
    let id = {
        let mut table = shared.containers();
        let Some(watched) = table.find_mut(name) else {
            return Err(ApiError::not_found(format!("no container named {name}")));
        };
        watched.stop_requested = true;
        watched.info.id.clone()
    };
    docker
        .restart_container(
            &id,
            Some(
                RestartContainerOptionsBuilder::new()
                    .t(timeout_seconds)
                    .build(),
            ),
        )
        .await
        .map_err(|error| engine_error(error, name))?;
    let mut event = shared.new_event(name, "restart_requested", EventSource::Api);
    event.container = Some(name.to_string());
    event.detail = Some("POST /containers/{name}/restart".into());
    shared.record_event(event).await;
    Ok(())
}
