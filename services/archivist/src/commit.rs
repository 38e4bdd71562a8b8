//! Group commit: many small batches, one transaction, one flush.
//!
//! Every `POST /v1/records` hands its validated batch to the [`Committer`] and waits. One
//! writer task ([`CommitWorker::run`]) takes the first waiting batch plus every batch queued
//! behind it, writes them all in a single transaction through [`Store::insert`], and only when
//! that returns — committed and flushed — answers each batch. Under load the batches that
//! arrive while one commit is flushing share the next one, so throughput grows with
//! concurrency instead of being capped at one fsync per request; when idle a batch commits
//! alone, at once, with no timer adding latency.
//!
//! Duplicates are settled here too: an id repeated inside the group counts as a duplicate for
//! every batch after the first that carries it, and the store reports ids it already had.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use obs_core::CancellationToken;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::ArchiveMetrics;
use crate::store::{NewRecord, Store};

/// Batches that may wait for the writer; beyond this, requests wait to enqueue (back-pressure
/// on the senders rather than unbounded memory).
const QUEUE_BATCHES: usize = 1024;
/// A group stops taking more batches once it holds this many records, so one transaction
/// stays short enough to keep latency low for the batches behind it.
const MAX_GROUP_RECORDS: usize = 10_000;

/// How one batch ended, once durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    pub stored: usize,
    pub duplicates: usize,
}

/// Nothing of the batch was stored (the transaction was rolled back, or never began); the
/// sender may send the same batch again. Answered 503 with these words.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CommitError {
    /// The commit failed (disk full, database unreachable); the cause, for the sender.
    #[error("nothing was stored ({0}); sending the same request again is safe")]
    Failed(String),
    #[error(
        "nothing was stored (the archivist is shutting down); sending the same request again \
         is safe"
    )]
    Stopped,
}

struct Pending {
    records: Vec<NewRecord>,
    reply: oneshot::Sender<Result<BatchOutcome, CommitError>>,
}

/// The handle request handlers use. Cheap to clone.
#[derive(Clone)]
pub struct Committer {
    queue: mpsc::Sender<Pending>,
}

/// The single writer; run it with [`CommitWorker::run`].
pub struct CommitWorker {
    queue: mpsc::Receiver<Pending>,
    store: Arc<dyn Store>,
    metrics: ArchiveMetrics,
}

pub fn channel(store: Arc<dyn Store>, metrics: ArchiveMetrics) -> (Committer, CommitWorker) {
    let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
    (
        Committer { queue: sender },
        CommitWorker {
            queue: receiver,
            store,
            metrics,
        },
    )
}

impl Committer {
    /// Store `records` durably; returns once they are (or are known to have been) on disk.
    pub async fn append(&self, records: Vec<NewRecord>) -> Result<BatchOutcome, CommitError> {
        if records.is_empty() {
            return Ok(BatchOutcome::default());
        }
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { records, reply })
            .await
            .map_err(|_| CommitError::Stopped)?;
        // A dropped reply means the writer stopped before committing this batch.
        answer.await.unwrap_or(Err(CommitError::Stopped))
    }
}

impl CommitWorker {
    /// Commit groups until `shutdown`; then commit what is still queued and stop. (The HTTP
    /// server has drained by the time obs-core cancels background work, so normally nothing
    /// is left.)
    pub async fn run(mut self, shutdown: CancellationToken) {
        loop {
            let first = tokio::select! {
                biased;
                pending = self.queue.recv() => match pending {
                    Some(pending) => pending,
                    None => return,
                },
                _ = shutdown.cancelled() => break,
            };
            let group = self.gather(first);
            self.commit(group).await;
        }
        self.queue.close();
        while let Ok(first) = self.queue.try_recv() {
            let group = self.gather(first);
            self.commit(group).await;
        }
    }

    /// `first` and whatever is already queued behind it, up to [`MAX_GROUP_RECORDS`].
    fn gather(&mut self, first: Pending) -> Vec<Pending> {
        let mut records = first.records.len();
        let mut group = vec![first];
        while records < MAX_GROUP_RECORDS {
            match self.queue.try_recv() {
                Ok(pending) => {
                    records += pending.records.len();
                    group.push(pending);
                }
                Err(_) => break,
            }
        }
        group
    }

    async fn commit(&self, group: Vec<Pending>) {
        let started = Instant::now();
        let batches = group.len();
        // Each distinct id once, remembering which batch brought it first.
        let mut seen = HashSet::new();
        let mut unique = Vec::new();
        let mut owners = Vec::new();
        let mut replies = Vec::with_capacity(batches);
        let mut sizes = Vec::with_capacity(batches);
        for (batch, pending) in group.into_iter().enumerate() {
            sizes.push(pending.records.len());
            replies.push(pending.reply);
            for record in pending.records {
                if seen.insert(record.id.clone()) {
                    owners.push(batch);
                    unique.push(record);
                }
            }
        }
        drop(seen);

        match self.store.insert(unique).await {
            Ok(inserted) => {
                let mut stored = vec![0usize; batches];
                for (batch, new) in owners.iter().zip(&inserted) {
                    if *new {
                        stored[*batch] += 1;
                    }
                }
                self.metrics.commit_batches.observe(batches as f64);
                self.metrics
                    .commit_duration
                    .observe(started.elapsed().as_secs_f64());
                for ((reply, size), stored) in replies.into_iter().zip(sizes).zip(stored) {
                    let outcome = BatchOutcome {
                        stored,
                        duplicates: size - stored,
                    };
                    self.metrics.records_stored.inc_by(outcome.stored as u64);
                    self.metrics
                        .records_duplicates
                        .inc_by(outcome.duplicates as u64);
                    // The sender may have gone (client disconnected); the batch is stored
                    // all the same, and a retry will count it as duplicates.
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                self.metrics.commit_failures.inc();
                let cause = format!("{error:#}");
                tracing::error!(
                    error = cause,
                    batches,
                    "group commit failed; nothing was stored, answering 503"
                );
                for reply in replies {
                    let _ = reply.send(Err(CommitError::Failed(cause.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures_util::future::BoxFuture;

    use super::*;
    use crate::store::{PageRequest, StoreStats, StoredRecord};

    /// A store that records each insert call and, while `gate` holds, blocks the first one,
    /// so batches pile up behind it deterministically.
    struct GatedStore {
        entered: std::sync::atomic::AtomicUsize,
        known: Mutex<HashSet<String>>,
        calls: Mutex<Vec<usize>>,
        gate: tokio::sync::Semaphore,
        fail: bool,
    }

    impl Store for GatedStore {
        fn backend(&self) -> &'static str {
            "test"
        }
        fn insert(&self, records: Vec<NewRecord>) -> BoxFuture<'_, anyhow::Result<Vec<bool>>> {
            Box::pin(async move {
                self.entered
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _permit = self.gate.acquire().await?;
                self.calls.lock().unwrap().push(records.len());
                if self.fail {
                    anyhow::bail!("disk on fire");
                }
                let mut known = self.known.lock().unwrap();
                Ok(records.iter().map(|r| known.insert(r.id.clone())).collect())
            })
        }
        fn page(&self, _: PageRequest) -> BoxFuture<'_, anyhow::Result<Vec<StoredRecord>>> {
            Box::pin(async { Ok(Vec::new()) })
        }
        fn stats(&self) -> BoxFuture<'_, anyhow::Result<StoreStats>> {
            Box::pin(async { Ok(StoreStats::default()) })
        }
        fn purge_before(&self, _: i64, _: usize) -> BoxFuture<'_, anyhow::Result<u64>> {
            Box::pin(async { Ok(0) })
        }
    }

    fn record(id: &str) -> NewRecord {
        NewRecord {
            id: id.to_string(),
            kind: "event".into(),
            service: "api".into(),
            ts: 0,
            json: "{}".into(),
        }
    }

    fn metrics() -> ArchiveMetrics {
        let service = obs_core::Service::new(obs_core::CoreConfig::for_tests("archivist", "."))
            .expect("a service");
        ArchiveMetrics::register(&service).expect("metrics register")
    }

    fn gated_store(fail: bool) -> Arc<GatedStore> {
        Arc::new(GatedStore {
            entered: Default::default(),
            known: Mutex::new(HashSet::new()),
            calls: Mutex::new(Vec::new()),
            gate: tokio::sync::Semaphore::new(0),
            fail,
        })
    }

    #[tokio::test]
    async fn batches_queued_behind_a_commit_share_the_next_one() {
        let store = gated_store(false);
        let (committer, worker) = channel(store.clone(), metrics());
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(worker.run(shutdown.clone()));

        // The first batch enters the (blocked) store; ten more queue up behind it.
        let first = tokio::spawn({
            let committer = committer.clone();
            async move { committer.append(vec![record("A")]).await }
        });
        while store.entered.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        let mut rest = Vec::new();
        for n in 0..10 {
            let committer = committer.clone();
            // Batch 0 repeats "A"; every batch repeats "shared".
            let ids = if n == 0 {
                vec!["A".to_string(), "shared".to_string()]
            } else {
                vec![format!("B{n}"), "shared".to_string()]
            };
            rest.push(tokio::spawn(async move {
                committer
                    .append(ids.iter().map(|id| record(id)).collect())
                    .await
            }));
        }
        while committer.queue.capacity() > QUEUE_BATCHES - 10 {
            tokio::task::yield_now().await;
        }
        store.gate.add_permits(100);

        assert_eq!(
            first.await.unwrap().unwrap(),
            BatchOutcome {
                stored: 1,
                duplicates: 0
            }
        );
        let mut outcomes = Vec::new();
        for handle in rest {
            outcomes.push(handle.await.unwrap().unwrap());
        }
        // Two inserts: the first batch alone, then all ten queued batches together.
        assert_eq!(store.calls.lock().unwrap().len(), 2);
        let total: BatchOutcome =
            outcomes
                .iter()
                .fold(BatchOutcome::default(), |a, o| BatchOutcome {
                    stored: a.stored + o.stored,
                    duplicates: a.duplicates + o.duplicates,
                });
        // 20 records: "A" again (duplicate), "shared" stored once and repeated nine times,
        // nine distinct B ids.
        assert_eq!(
            total,
            BatchOutcome {
                stored: 10,
                duplicates: 10
            }
        );
        shutdown.cancel();
        writer.await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_commit_acknowledges_nothing() {
        let store = gated_store(true);
        store.gate.add_permits(10);
        let (committer, worker) = channel(store.clone(), metrics());
        let shutdown = CancellationToken::new();
        let writer = tokio::spawn(worker.run(shutdown.clone()));
        let outcome = committer.append(vec![record("A"), record("B")]).await;
        match outcome {
            Err(error @ CommitError::Failed(_)) => {
                let message = error.to_string();
                assert!(message.starts_with("nothing was stored"), "{message}");
                assert!(message.contains("disk on fire"), "{message}");
            }
            other => panic!("expected a failed commit, got {other:?}"),
        }
        shutdown.cancel();
        writer.await.unwrap();
        // Once stopped, a new batch is refused rather than left hanging.
        assert!(matches!(
            committer.append(vec![record("C")]).await,
            Err(CommitError::Stopped)
        ));
    }
}
