//! Auto-remediation (AUTO_REMEDIATE=1): a background job runs the safe steps of open plans
//! — a container restart or a pod restart (`crate::target`) — through the watcher
//! (`POST <WATCHER_URL>/containers/{name}/restart`, or `POST
//! <WATCHER_URL>/pods/{namespace}/{pod}/restart?how=delete|rollout`, with the API token when
//! one is set), never on the request path. Containers and pods go the same way: the same
//! opt-in, cooldown, attempt limit, metrics and outcome in the plan.
//!
//! The job is a singleton: it runs under the `planner-remediation` lease
//! (`obs_core::db::Lease`), so of several replicas on one PostgreSQL database exactly one
//! restarts anything, and another takes over if it dies. It finds its work in the
//! database (plans marked `remediable`: open, with a safe step waiting), woken at once by
//! this replica's commits and polling for the others'.
//!
//! Each safe step runs at most once; its outcome (succeeded, failed, or skipped and why) is
//! written into the plan, which is forwarded like any change. Two limits hold, both kept in
//! the database so they survive restarts and hold across replicas: a cooldown per target
//! (REMEDIATE_COOLDOWN_SECONDS: no second restart of the same container, pod or rolled-out
//! Deployment within it, whichever plan asks) and an attempt limit per plan (REMEDIATE_MAX_ATTEMPTS, over all its
//! reopenings). Both are counted in the transaction that decides to restart, before the
//! watcher is asked: a planner that dies mid-restart cannot restart the target again
//! within the cooldown. A reopened plan has fresh steps, so it may restart again, within
//! both limits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use chrono::Utc;
use obs_core::db::{Dialect, Lease, LeaseHandle};
use obs_core::CancellationToken;
use obs_model::{StepOutcome, StepStatus};
use ulid::Ulid;

use crate::store::Decision;
use crate::target::Target;
use crate::Shared;

/// How long the watcher may take to restart a container (its stop grace is 10 s) or a pod.
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a dead holder keeps the job from running elsewhere.
const LEASE_TTL: Duration = Duration::from_secs(15);
pub const LEASE_NAME: &str = "planner-remediation";
/// Plans looked at per pass.
const BATCH: usize = 100;

/// How often the job looks for work committed by other replicas (on SQLite there are none;
/// the poll only covers a wake-up that was missed).
fn poll(dialect: Dialect) -> Duration {
    match dialect {
        Dialect::Postgres => Duration::from_secs(1),
        Dialect::Sqlite => Duration::from_secs(5),
    }
}

/// Until shutdown: hold the lease whenever it is free, and remediate while holding it.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let lease = Lease::new(shared.store.db(), LEASE_NAME, LEASE_TTL);
    lease
        .run(shutdown, |held| {
            let shared = shared.clone();
            async move { work(&shared, held).await }
        })
        .await;
}

async fn work(shared: &Shared, held: LeaseHandle) {
    let every = poll(shared.store.db().dialect());
    while !held.is_cancelled() {
        match shared.store.remediable(BATCH).await {
            Ok(ids) => {
                let full = ids.len() == BATCH;
                let mut decided = true;
                for plan_id in ids {
                    if held.is_cancelled() {
                        return;
                    }
                    decided &= remediate(shared, plan_id).await;
                }
                if full && decided {
                    // More are waiting: each step decided is no longer remediable, so the
                    // next pass starts where this one ended (after a failure, it waits).
                    continue;
                }
            }
            Err(error) => {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "could not look for plans to remediate; trying again"
                );
            }
        }
        tokio::select! {
            _ = held.cancelled() => return,
            _ = shared.remediation_wake.notified() => {}
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Decide on `plan_id`'s safe step and run it; false if the decision could not be saved.
async fn remediate(shared: &Shared, plan_id: Ulid) -> bool {
    let settings = shared.config.remediation;
    let decision = match shared.store.decide(plan_id, settings).await {
        Ok(decision) => decision,
        Err(error) => {
            shared.metrics.state_save_failures.inc();
            tracing::error!(error = format!("{error:#}"), plan = %plan_id, "could not decide on a remediation; trying again later");
            return false;
        }
    };
    match decision {
        Decision::Nothing => {}
        Decision::Skipped { detail } => {
            tracing::info!(plan = %plan_id, status = ?StepStatus::Skipped, %detail, "remediation");
            shared.metrics.remediation(StepStatus::Skipped);
            shared.store.forward().wake();
        }
        Decision::Run {
            index,
            target,
            attempt,
        } => {
            let (status, detail) = match restart(shared, &target).await {
                Ok(detail) => (StepStatus::Succeeded, detail),
                Err(error) => (StepStatus::Failed, format!("{error:#}")),
            };
            tracing::info!(plan = %plan_id, target = %target.describe(), ?status, %detail, "remediation");
            shared.metrics.remediation(status);
            let outcome = StepOutcome {
                status,
                at: Utc::now(),
                attempt,
                detail,
            };
            match shared
                .store
                .record(plan_id, index, target.text(), outcome)
                .await
            {
                Ok(Some(_)) => shared.store.forward().wake(),
                Ok(None) => {}
                Err(error) => {
                    // The attempt and the cooldown are counted: the step is not run again
                    // within the cooldown; it is skipped then, saying why.
                    shared.metrics.state_save_failures.inc();
                    tracing::error!(error = format!("{error:#}"), plan = %plan_id, "the remediation outcome could not be saved");
                }
            }
        }
    }
    true
}

/// Ask the watcher to restart `target`.
async fn restart(shared: &Shared, target: &Target) -> anyhow::Result<String> {
    let base = shared.watcher_url.as_deref().context(
        "WATCHER_URL is not set: the planner restarts containers and pods through the watcher",
    )?;
    let shown = obs_core::redact::url(base);
    let mut url = reqwest::Url::parse(base).with_context(|| format!("WATCHER_URL '{shown}'"))?;
    let (segments, query) = target.request();
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("WATCHER_URL '{shown}' cannot have a path"))?
        .pop_if_empty()
        .extend(segments);
    url.set_query(query);
    let mut request = shared.http.post(url).timeout(RESTART_TIMEOUT);
    if let Some(token) = &shared.api_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .map_err(obs_core::redact::reqwest_error)
        .context("the watcher could not be reached")?;
    let status = response.status();
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    if status.is_success() {
        // The watcher says what it did to a pod (`Deployment prod/api restarted`).
        return Ok(match body["done"].as_str() {
            Some(done) => format!("the watcher: {done}"),
            None => format!("the watcher restarted {}", target.describe()),
        });
    }
    let message = body["message"].as_str().unwrap_or("no message");
    anyhow::bail!("the watcher answered {}: {message}", status.as_u16())
}
