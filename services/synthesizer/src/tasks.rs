//! The synthesizer's background work: handing owed notifications to the webhooks in groups,
//! and the periodic digest.
//!
//! Every replica runs the grouping: the changes wait in `synthesizer_pending` (any replica
//! may have queued them), and the unique `notified` keys make sure each goes to each webhook
//! once whichever replica sends it. The digest runs on one replica at a time, under a lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use obs_core::db::{Dialect, Lease};
use obs_core::CancellationToken;
use obs_model::Record;
use ulid::Ulid;

use crate::Shared;

/// After a failed hand-over (the database), wait this long before trying again.
const RETRY: Duration = Duration::from_secs(1);
/// With PostgreSQL, how often an idle replica looks for changes another replica queued (and
/// may have died before sending).
const POLL: Duration = Duration::from_secs(1);
/// How long a dead digest holder keeps the other replicas waiting.
const DIGEST_LEASE: Duration = Duration::from_secs(30);

/// Route owed notifications into their routes' groups and send each group when it is due
/// (its route's group_wait after its first change, and at least group_interval after its
/// previous message), one message per channel of the route's receiver.
pub async fn notify(shared: Arc<Shared>, shutdown: CancellationToken) {
    // Only PostgreSQL has other writers; on SQLite every change queued here wakes this task.
    let poll = (shared.db().dialect() == Dialect::Postgres).then_some(POLL);
    loop {
        let wait = match shared
            .store()
            .flush(shared.notifier.clone(), Utc::now())
            .await
        {
            Ok(sent) => {
                shared.notifier.wake();
                for kind in &sent.messages {
                    shared
                        .metrics
                        .notifications
                        .with_label_values(&[kind.as_str()])
                        .inc();
                }
                if !sent.messages.is_empty() {
                    tracing::info!(
                        changes = sent.changes,
                        messages = sent.messages.len(),
                        "notification queued for the webhooks"
                    );
                }
                if sent.dropped > 0 {
                    tracing::debug!(
                        changes = sent.dropped,
                        "changes routed to receivers without a channel"
                    );
                }
                sent.next_due.map(|due| {
                    (due - Utc::now())
                        .to_std()
                        .unwrap_or_default()
                        // At most a poll apart on PostgreSQL: other replicas queue too.
                        .min(poll.unwrap_or(Duration::MAX))
                })
            }
            Err(error) => {
                for hook in shared.notifier.hooks() {
                    shared
                        .metrics
                        .notification_failures
                        .with_label_values(&[hook.kind().as_str()])
                        .inc();
                }
                tracing::error!(
                    error = format!("{error:#}"),
                    "notification not queued; retrying"
                );
                Some(RETRY)
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.notices_queued.notified() => {}
            _ = sleep_or_forever(wait.or(poll)) => {}
        }
    }
}

async fn sleep_or_forever(duration: Option<Duration>) {
    match duration {
        Some(duration) => tokio::time::sleep(duration).await,
        None => std::future::pending().await,
    }
}

/// Every DIGEST_INTERVAL, compose the report and archive it as a `report` record, on the
/// replica holding the digest lease.
pub async fn digest(shared: Arc<Shared>, shutdown: CancellationToken) {
    let Some(interval) = shared.config.digest_interval else {
        return;
    };
    if shared.archivist.is_none() {
        if shared.config.digest_interval_set {
            tracing::warn!(
                "DIGEST_INTERVAL is set but ARCHIVIST_URL is not: no digest will be archived"
            );
        } else {
            tracing::info!("no digests: ARCHIVIST_URL is not set");
        }
        return;
    }
    let lease = Lease::new(shared.db(), "synthesizer-digest", DIGEST_LEASE);
    lease
        .run(shutdown, |lost| {
            let shared = shared.clone();
            async move {
                loop {
                    tokio::select! {
                        _ = lost.cancelled() => return,
                        _ = tokio::time::sleep(interval) => {}
                    }
                    if let Err(error) = archive_digest(&shared).await {
                        shared.metrics.digest_failures.inc();
                        tracing::error!(error = format!("{error:#}"), "digest not archived");
                    }
                }
            }
        })
        .await;
}

/// Compose the report now and hand it to the archivist's outbox.
pub async fn archive_digest(shared: &Shared) -> anyhow::Result<()> {
    let Some(archivist) = &shared.archivist else {
        anyhow::bail!("ARCHIVIST_URL is not set");
    };
    let report = shared.report(&Default::default()).await?;
    let record = Record {
        id: Ulid::new(),
        kind: "report".into(),
        service: crate::NAME.into(),
        ts: report.generated_at,
        body: serde_json::to_value(&report)?,
    };
    archivist.push(&[record]).await?;
    shared.metrics.digests.inc();
    Ok(())
}
