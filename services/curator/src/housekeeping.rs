//! Periodic work: every HOUSEKEEPING_INTERVAL, silences end and start, flapping incidents
//! settle and old resolved incidents are pruned; every STATE_FLUSH_INTERVAL, incidents that
//! only repeated (count, last_seen) are saved.

use std::sync::Arc;

use chrono::Utc;
use obs_core::CancellationToken;

use crate::incidents::Applied;
use crate::Shared;

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut housekeeping = tokio::time::interval(shared.config.housekeeping_interval);
    let mut flush = tokio::time::interval(shared.config.state_flush_interval);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut first = true;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = housekeeping.tick() => {
                if let Err(error) = tidy(&shared, first).await {
                    tracing::error!(error = format!("{error:#}"), "housekeeping failed; retrying at the next interval");
                }
                first = false;
            }
            _ = flush.tick() => {
                if let Err(error) = shared.save_repeats().await {
                    shared.metrics.state_save_failures.inc();
                    tracing::error!(error = format!("{error:#}"), "saving incident repeats failed; retrying at the next interval");
                }
            }
        }
    }
}

/// One round of housekeeping. The first round after a start also matches every incident
/// against the silences again.
async fn tidy(shared: &Shared, first: bool) -> anyhow::Result<()> {
    let now = Utc::now();
    let mut applied = Applied::default();
    let _writing = shared.settings_write.lock().await;
    let silences = {
        let mut book = shared.book();
        let silences_changed = book.housekeeping(now, &mut applied);
        if first {
            book.resync_silences(now, &mut applied);
        }
        shared.seal(&mut book, &mut applied);
        shared.metrics.silences.set(book.silences.len() as i64);
        silences_changed.then(|| book.silences.list(now))
    };
    if let Some(silences) = silences {
        shared.settings.save_silences(silences).await?;
    }
    shared.commit(applied).await
}
