//! Periodic work. Every HOUSEKEEPING_INTERVAL, on the one replica holding the housekeeping
//! lease: silences end and start, flapping incidents settle, old resolved incidents are
//! pruned (RESOLVED_INCIDENTS_MAX, RESOLVED_INCIDENTS_MAX_AGE) and issue ids remembered for
//! longer than that are forgotten. Every STATE_FLUSH_INTERVAL, on every replica, incidents
//! that only repeated (count, last_seen) are saved, in one transaction.

use std::sync::Arc;

use chrono::Utc;
use obs_core::db::now_millis;
use obs_core::CancellationToken;
use ulid::Ulid;

use crate::{store, Scope, Shared};

/// Save repeats every STATE_FLUSH_INTERVAL until `shutdown` (the last save is the role's
/// flush, after the HTTP drain).
pub async fn flush(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut flush = tokio::time::interval(shared.config.state_flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = flush.tick() => {
                if let Err(error) = shared.save_repeats().await {
                    shared.metrics.state_save_failures.inc();
                    tracing::error!(error = format!("{error:#}"), "saving incident repeats failed; retrying at the next interval");
                }
            }
        }
    }
}

/// Housekeeping while this replica holds the lease (`held` is cancelled when it is lost or
/// at shutdown).
pub async fn run(shared: Arc<Shared>, held: CancellationToken) {
    let mut housekeeping = tokio::time::interval(shared.config.housekeeping_interval);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = held.cancelled() => return,
            _ = housekeeping.tick() => {
                match tidy(&shared, first).await {
                    Ok(()) => first = false,
                    Err(error) => {
                        if let Some(conflict) = store::conflict(&error) {
                            tracing::debug!(%conflict, "housekeeping met a change by another replica; again at the next interval");
                        } else {
                            tracing::error!(error = format!("{error:#}"), "housekeeping failed; retrying at the next interval");
                        }
                    }
                }
            }
        }
    }
}

/// One round of housekeeping. The first round after taking the lease also matches every
/// incident against the silences again.
async fn tidy(shared: &Arc<Shared>, first: bool) -> anyhow::Result<()> {
    let now = Utc::now();
    let max_age_millis =
        i64::try_from(shared.config.resolved_max_age.as_millis()).unwrap_or(i64::MAX);
    let forget_before = now_millis().saturating_sub(max_age_millis);
    shared
        .change(
            Scope::Everything,
            move |book, applied| {
                let before: Vec<Ulid> = book.silences.list(now).iter().map(|s| s.id).collect();
                book.housekeeping(now, applied);
                if first {
                    book.resync_silences(now, applied);
                }
                before
                    .into_iter()
                    .filter(|id| !book.silences.contains(*id))
                    .collect::<Vec<Ulid>>()
            },
            move |tx, ended: &Vec<Ulid>| {
                store::drop_silences(tx, ended)?;
                tx.execute(
                    "DELETE FROM inbox WHERE role = $1 AND seen_at < $2",
                    &[store::INBOX_ROLE.into(), forget_before.into()],
                )?;
                Ok(())
            },
        )
        .await?;
    Ok(())
}
