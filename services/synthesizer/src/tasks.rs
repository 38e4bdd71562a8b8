//! The synthesizer's background work: handing owed notifications to the webhooks in groups,
//! and the periodic digest.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use obs_core::CancellationToken;
use obs_model::Record;
use ulid::Ulid;

use crate::Shared;

/// After a failed hand-over (the disk), wait this long before trying again.
const RETRY: Duration = Duration::from_secs(1);

/// Wait until the oldest owed notification is NOTIFY_GROUP_SECONDS old, then send
/// everything owed by then as one message per webhook.
pub async fn notify(shared: Arc<Shared>, shutdown: CancellationToken) {
    let group = shared.config.notify_group;
    loop {
        let oldest = shared.book().oldest_pending();
        let Some(oldest) = oldest else {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = shared.notices_queued.notified() => continue,
            }
        };
        let waited = (Utc::now() - oldest).to_std().unwrap_or_default();
        if let Some(remaining) = group.checked_sub(waited).filter(|d| !d.is_zero()) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(remaining) => {}
            }
        }
        let notices = shared.book().pending().to_vec();
        match shared.notifier.send(&notices, Utc::now()).await {
            Ok(kinds) => {
                for kind in kinds {
                    shared
                        .metrics
                        .notifications
                        .with_label_values(&[kind.as_str()])
                        .inc();
                }
                tracing::info!(
                    changes = notices.len(),
                    "notification queued for the webhooks"
                );
                shared.book().delivered(notices.len());
                if let Err(error) = shared.save().await {
                    // They stay in the file: after a crash now they would be sent again
                    // (with the same message id), never lost.
                    tracing::error!(
                        error = format!("{error:#}"),
                        "state not saved after notifying"
                    );
                }
            }
            Err((kind, error)) => {
                shared
                    .metrics
                    .notification_failures
                    .with_label_values(&[kind.as_str()])
                    .inc();
                tracing::error!(
                    error = format!("{error:#}"),
                    "notification not queued; retrying"
                );
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(RETRY) => {}
                }
            }
        }
    }
}

/// Every DIGEST_INTERVAL, compose the report and archive it as a `report` record.
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
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(interval) => {}
        }
        if let Err(error) = archive_digest(&shared).await {
            shared.metrics.digest_failures.inc();
            tracing::error!(error = format!("{error:#}"), "digest not archived");
        }
    }
}

/// Compose the report now and hand it to the archivist's outbox.
pub async fn archive_digest(shared: &Shared) -> anyhow::Result<()> {
    let Some(archivist) = &shared.archivist else {
        anyhow::bail!("ARCHIVIST_URL is not set");
    };
    let report = shared.report().await;
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
