//! Jobs that must run on one replica at a time (the deadline checker, the Docker follower,
//! the digest, retention, auto-remediation) run under a lease: a row naming its holder and
//! when it expires. The holder renews it every third of its time to live; a replica that dies
//! stops renewing, and another takes over once the row has expired. On SQLite there is one
//! process, so the lease is simply always this one's.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{now_millis, Db};

/// A named lease in a role's database.
#[derive(Clone)]
pub struct Lease {
    db: Db,
    name: String,
    holder: String,
    ttl: Duration,
}

/// Given to a job run under a lease: cancelled when the lease is lost or the role stops.
pub type LeaseHandle = CancellationToken;

impl Lease {
    /// `name` is shared by every replica that may run the job; `ttl` bounds how long a dead
    /// holder keeps others waiting.
    pub fn new(db: &Db, name: &str, ttl: Duration) -> Lease {
        Lease {
            db: db.clone(),
            name: name.to_string(),
            holder: format!("{}-{}", std::process::id(), ulid::Ulid::new()),
            ttl,
        }
    }

    /// Take the lease if it is free or expired, or renew it if it is ours; true if held now.
    pub async fn try_acquire(&self) -> anyhow::Result<bool> {
        let name = self.name.clone();
        let holder = self.holder.clone();
        let ttl = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        self.db
            .write(move |tx| {
                let now = now_millis();
                let changed = tx.execute(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3)
                     ON CONFLICT (name) DO UPDATE
                        SET holder = excluded.holder, expires_at = excluded.expires_at
                        WHERE leases.holder = excluded.holder OR leases.expires_at < $4",
                    &[
                        name.into(),
                        holder.into(),
                        now.saturating_add(ttl).into(),
                        now.into(),
                    ],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    /// Give the lease up (at shutdown), so another replica need not wait for it to expire.
    pub async fn release(&self) -> anyhow::Result<()> {
        let name = self.name.clone();
        let holder = self.holder.clone();
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM leases WHERE name = $1 AND holder = $2",
                    &[name.into(), holder.into()],
                )?;
                Ok(())
            })
            .await
    }

    /// Run `job` whenever this replica holds the lease, until `shutdown`. The job gets a
    /// token cancelled when the lease is lost (a renewal failed or another holder took it);
    /// it should then stop, and it is started again if the lease comes back.
    pub async fn run<F, Fut>(self, shutdown: CancellationToken, mut job: F)
    where
        F: FnMut(LeaseHandle) -> Fut,
        Fut: Future<Output = ()>,
    {
        let renew_every = (self.ttl / 3).max(Duration::from_millis(50));
        while !shutdown.is_cancelled() {
            match self.try_acquire().await {
                Ok(true) => {}
                Ok(false) => {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(renew_every) => continue,
                    }
                }
                Err(error) => {
                    tracing::warn!(lease = %self.name, error = %format!("{error:#}"), "could not take the lease; trying again");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(renew_every) => continue,
                    }
                }
            }
            tracing::info!(lease = %self.name, "holding the lease: running the job here");
            let held = shutdown.child_token();
            let renewer = {
                let lease = self.clone();
                let held = held.clone();
                async move {
                    loop {
                        tokio::select! {
                            _ = held.cancelled() => return,
                            _ = tokio::time::sleep(renew_every) => {}
                        }
                        match lease.try_acquire().await {
                            Ok(true) => {}
                            Ok(false) => {
                                tracing::warn!(lease = %lease.name, "another replica took the lease: stopping the job here");
                                held.cancel();
                                return;
                            }
                            Err(error) => {
                                tracing::warn!(lease = %lease.name, error = %format!("{error:#}"), "could not renew the lease: stopping the job here");
                                held.cancel();
                                return;
                            }
                        }
                    }
                }
            };
            let work = job(held.clone());
            tokio::join!(renewer, async {
                work.await;
                held.cancel();
            });
        }
        if let Err(error) = self.release().await {
            tracing::debug!(lease = %self.name, error = %format!("{error:#}"), "could not release the lease; it will expire");
        }
    }
}
