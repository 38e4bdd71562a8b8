//! Auto-remediation (AUTO_REMEDIATE=1): a background task runs the safe steps of open plans
//! — today only `restart_container` with a target — through the watcher
//! (`POST <WATCHER_URL>/containers/{name}/restart`, with the API token when one is set),
//! never on the request path.
//!
//! Each safe step runs at most once; its outcome (succeeded, failed, or skipped and why) is
//! written into the plan, which is then forwarded and saved like any change. Two limits hold:
//! a cooldown per container (REMEDIATE_COOLDOWN_SECONDS: no second restart of the same
//! container within it, whichever plan asks) and an attempt limit per plan
//! (REMEDIATE_MAX_ATTEMPTS, over all its reopenings). A reopened plan has fresh steps, so
//! it may restart again, within both limits.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use obs_core::CancellationToken;
use obs_model::{Plan, StepOutcome, StepStatus};
use tokio::sync::Notify;
use ulid::Ulid;

use crate::plans::next_safe_step;
use crate::render::human_duration;
use crate::{lock, Shared};

/// How long the watcher may take to restart a container (its stop grace is 10 s).
const RESTART_TIMEOUT: Duration = Duration::from_secs(60);

/// Plans waiting for the remediation task, each once.
#[derive(Default)]
pub struct Queue {
    waiting: Mutex<VecDeque<Ulid>>,
    wake: Notify,
}

impl Queue {
    pub fn push(&self, ids: impl IntoIterator<Item = Ulid>) {
        let mut waiting = lock(&self.waiting);
        for id in ids {
            if !waiting.contains(&id) {
                waiting.push_back(id);
            }
        }
        drop(waiting);
        self.wake.notify_one();
    }

    fn pop(&self) -> Option<Ulid> {
        lock(&self.waiting).pop_front()
    }
}

/// When each container was last restarted (or tried), for the cooldown.
#[derive(Default)]
pub struct Cooldowns(Mutex<HashMap<String, DateTime<Utc>>>);

impl Cooldowns {
    /// From the outcomes saved in the plans, so a restart of the planner keeps the cooldown.
    pub fn from_plans<'a>(plans: impl Iterator<Item = &'a Plan>) -> Self {
        let mut last: HashMap<String, DateTime<Utc>> = HashMap::new();
        for step in plans.flat_map(|plan| &plan.steps) {
            let (Some(target), Some(outcome)) = (&step.target, &step.outcome) else {
                continue;
            };
            if matches!(outcome.status, StepStatus::Succeeded | StepStatus::Failed) {
                let entry = last.entry(target.clone()).or_insert(outcome.at);
                *entry = (*entry).max(outcome.at);
            }
        }
        Cooldowns(Mutex::new(last))
    }

    /// How long ago `target` was last restarted, if within `cooldown`.
    fn active(
        &self,
        target: &str,
        cooldown: Duration,
        now: DateTime<Utc>,
    ) -> Option<chrono::Duration> {
        let last = *lock(&self.0).get(target)?;
        let ago = now - last;
        let cooldown = chrono::Duration::from_std(cooldown).unwrap_or(chrono::Duration::MAX);
        (ago < cooldown).then_some(ago)
    }

    fn started(&self, target: &str, now: DateTime<Utc>) {
        lock(&self.0).insert(target.to_string(), now);
    }
}

/// The remediation task: until shutdown, take plans off the queue and run their safe step.
pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        match shared.remediation.pop() {
            Some(plan_id) => remediate(&shared, plan_id).await,
            None => {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = shared.remediation.wake.notified() => {}
                }
            }
        }
    }
}

async fn remediate(shared: &Shared, plan_id: Ulid) {
    let settings = shared.config.remediation;
    let Some((index, target, attempts)) = ({
        let book = shared.book();
        book.get(&plan_id)
            .filter(|tracked| tracked.plan.state == obs_model::PlanState::Open)
            .and_then(|tracked| {
                next_safe_step(&tracked.plan)
                    .map(|(index, target)| (index, target, tracked.attempts))
            })
    }) else {
        return;
    };
    let now = Utc::now();
    let attempt = attempts + 1;
    let (status, detail) = if attempts >= settings.max_attempts {
        (
            StepStatus::Skipped,
            format!(
                "not run: this plan used its {} of {} restarts (REMEDIATE_MAX_ATTEMPTS)",
                attempts, settings.max_attempts
            ),
        )
    } else if let Some(ago) = shared.cooldowns.active(&target, settings.cooldown, now) {
        (
            StepStatus::Skipped,
            format!(
                "not run: {target} was restarted {} ago, within the cooldown of {} (REMEDIATE_COOLDOWN_SECONDS)",
                human_duration(ago),
                human_duration(chrono::Duration::from_std(settings.cooldown).unwrap_or(chrono::Duration::MAX)),
            ),
        )
    } else {
        shared.cooldowns.started(&target, now);
        match restart(shared, &target).await {
            Ok(detail) => (StepStatus::Succeeded, detail),
            Err(error) => (StepStatus::Failed, format!("{error:#}")),
        }
    };
    let attempted = status != StepStatus::Skipped;
    tracing::info!(plan = %plan_id, container = %target, ?status, %detail, "remediation");
    shared.metrics.remediation(status);
    let outcome = StepOutcome {
        status,
        at: Utc::now(),
        attempt,
        detail,
    };
    let changed = {
        let mut book = shared.book();
        let changed = book.record_outcome(plan_id, index, &target, outcome, attempted, Utc::now());
        shared.metrics.set_plans(&book.counts());
        changed
    };
    if let Some(plan) = changed {
        if let Err(error) = shared.publish(vec![plan]).await {
            shared.metrics.state_save_failures.inc();
            tracing::error!(error = format!("{error:#}"), plan = %plan_id, "the remediation outcome could not be forwarded or saved");
        }
    }
}

/// Ask the watcher to restart `container`.
async fn restart(shared: &Shared, container: &str) -> anyhow::Result<String> {
    let base = shared
        .watcher_url
        .as_deref()
        .context("WATCHER_URL is not set: the planner restarts containers through the watcher")?;
    let mut url = reqwest::Url::parse(base).with_context(|| format!("WATCHER_URL '{base}'"))?;
    url.path_segments_mut()
        .map_err(|()| anyhow::anyhow!("WATCHER_URL '{base}' cannot have a path"))?
        .pop_if_empty()
        .extend(["containers", container, "restart"]);
    let mut request = shared.http.post(url).timeout(RESTART_TIMEOUT);
    if let Some(token) = &shared.api_token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .context("the watcher could not be reached")?;
    let status = response.status();
    if status.is_success() {
        return Ok(format!("the watcher restarted {container}"));
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    let message = body["message"].as_str().unwrap_or("no message");
    anyhow::bail!("the watcher answered {}: {message}", status.as_u16())
}
