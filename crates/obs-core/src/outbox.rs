//! The outbox: how a role hands records to a downstream role without ever losing them.
//!
//! Records are rows of the role's database (`outbox`, [`crate::db`]), staged with
//! [`Outbox::stage`] in the same transaction as the state change that produced them: both
//! commit or neither does, so a change is never acknowledged without its records, and a
//! failed commit leaves nothing to send. A delivery task posts them in batches, as a JSON
//! array, to the destination URL, retrying with exponential backoff and jitter while the
//! receiver is down or cold-starting (a receiver outside the fleet, such as a chat webhook,
//! can be sent one record per request instead, without the fleet's token: [`OutboxOptions`]).
//!
//! Any replica may deliver: a batch is claimed (`claim`, `claimed_until`; on PostgreSQL with
//! `FOR UPDATE SKIP LOCKED`) before it is posted and deleted once the receiver answered 2xx,
//! so a replica that dies mid-delivery only delays its batch until the claim expires.
//! Delivery is at-least-once: receivers remember the ids they have seen
//! ([`crate::db::Tx::first_sighting`]). The queue is bounded in records and in bytes
//! (OUTBOX_MAX_RECORDS, OUTBOX_MAX_BYTES); past a bound the oldest records are dropped,
//! counted and logged, so a long outage costs history, never the database's disk. A record
//! the receiver refuses as invalid is moved to `outbox_dead`, logged and counted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use tokio::sync::Notify;

use crate::db::{now_millis, Db, Dialect, Tx};
use crate::server::{RoleContext, Service};

const FIRST_RETRY: Duration = Duration::from_millis(200);
/// A claimed batch is another replica's to retry after this long (a post times out in 10 s).
const CLAIM_MILLIS: i64 = 30_000;
/// How often an idle delivery task looks for records staged by other replicas, or whose
/// claim expired.
const POLL: Duration = Duration::from_secs(1);
/// How often the bounds are enforced and the pending gauge refreshed.
const BOUNDS_EVERY: Duration = Duration::from_secs(1);

/// The outbox metrics, labelled by destination; registered once per role.
#[derive(Clone)]
pub(crate) struct OutboxMetrics {
    pending: IntGaugeVec,
    delivered: IntCounterVec,
    retries: IntCounterVec,
    dropped: IntCounterVec,
}

impl OutboxMetrics {
    pub(crate) fn new() -> prometheus::Result<Self> {
        Ok(OutboxMetrics {
            pending: IntGaugeVec::new(
                Opts::new("outbox_pending", "Records persisted and not yet delivered."),
                &["destination"],
            )?,
            delivered: IntCounterVec::new(
                Opts::new("outbox_delivered_total", "Records the receiver acknowledged."),
                &["destination"],
            )?,
            retries: IntCounterVec::new(
                Opts::new(
                    "outbox_retries_total",
                    "Delivery attempts that failed and will be retried.",
                ),
                &["destination"],
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "outbox_dropped_total",
                    "Records given up: overflow (the queue bound was hit, oldest first) or rejected (the receiver refused them as invalid).",
                ),
                &["destination", "reason"],
            )?,
        })
    }

    pub(crate) fn register(&self, metrics: &crate::Metrics) -> anyhow::Result<()> {
        metrics.register(self.pending.clone())?;
        metrics.register(self.delivered.clone())?;
        metrics.register(self.retries.clone())?;
        metrics.register(self.dropped.clone())?;
        Ok(())
    }
}

/// Tunables, from OUTBOX_* in [`crate::CoreConfig`].
#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub max_records: usize,
    /// Bytes of JSON held, on disk and in memory.
    pub max_bytes: usize,
    pub batch_size: usize,
    pub max_retry_delay: Duration,
}

/// How an outbox talks to its receiver. The default is the roles' contract: batches as a
/// JSON array, with the role's API_TOKEN. A receiver outside the fleet (a chat webhook)
/// takes one JSON object per request and must never see the fleet's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxOptions {
    /// Post each record alone, as the request body, instead of batches as a JSON array.
    pub one_per_request: bool,
    /// Send API_TOKEN (when set) as `Authorization: Bearer`.
    pub send_api_token: bool,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            one_per_request: false,
            send_api_token: true,
        }
    }
}

impl OutboxOptions {
    /// For a receiver outside the fleet: one record per request, no token.
    pub fn external() -> Self {
        OutboxOptions {
            one_per_request: true,
            send_api_token: false,
        }
    }
}

/// A persisted, retried, bounded queue of records for one destination. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    shared: Arc<Shared>,
}

struct Shared {
    db: Db,
    role: String,
    destination: String,
    url: String,
    /// The URL as logs show it (`crate::redact`): a webhook's whole path may be its secret.
    shown_url: String,
    api_token: Option<String>,
    settings: OutboxSettings,
    one_per_request: bool,
    /// Records pending at the last count.
    pending: AtomicUsize,
    /// The batch this replica has claimed and not yet settled, released at shutdown so a
    /// restart need not wait for the claim to expire.
    claimed: std::sync::Mutex<Option<String>>,
    wake: Notify,
    metrics: OutboxMetrics,
    http: reqwest::Client,
}

impl Outbox {
    /// The outbox for `destination`, posting to `url`, kept in `db`. Records left from a
    /// previous run (of this replica or any other) are delivered once [`Outbox::start`]ed.
    pub fn open(
        db: &Db,
        service: &Service,
        destination: &str,
        url: &str,
    ) -> anyhow::Result<Outbox> {
        Self::open_with(db, service, destination, url, OutboxOptions::default())
    }

    /// As [`Outbox::open`], talking to the receiver as `options` say.
    pub fn open_with(
        db: &Db,
        service: &Service,
        destination: &str,
        url: &str,
        options: OutboxOptions,
    ) -> anyhow::Result<Outbox> {
        anyhow::ensure!(
            !destination.is_empty()
                && destination
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "outbox destination '{destination}' must be [A-Za-z0-9_-]+"
        );
        // A receiver outside the fleet (no API token sent) is a webhook: only its origin shows.
        let shown_url = if options.send_api_token {
            crate::redact::url(url)
        } else {
            crate::redact::origin(url)
        };
        reqwest::Url::parse(url).with_context(|| format!("outbox URL '{shown_url}'"))?;
        let config = service.config();
        let shared = Arc::new(Shared {
            db: db.clone(),
            role: config.role.clone(),
            destination: destination.to_string(),
            url: url.to_string(),
            shown_url,
            api_token: config.api_token.clone().filter(|_| options.send_api_token),
            settings: config.outbox.clone(),
            one_per_request: options.one_per_request,
            pending: AtomicUsize::new(0),
            claimed: std::sync::Mutex::new(None),
            wake: Notify::new(),
            metrics: service.metrics().outbox.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        });
        Ok(Outbox { shared })
    }

    pub fn destination(&self) -> &str {
        &self.shared.destination
    }

    /// Stage `items` (each serialized as one JSON value) in `tx`: they are delivered once it
    /// commits, and never if it does not. Call [`Outbox::wake`] after the commit.
    pub fn stage<T: Serialize>(&self, tx: &mut Tx<'_>, items: &[T]) -> anyhow::Result<()> {
        let now = now_millis();
        for item in items {
            let json = serde_json::to_string(item).context("serializing an outbox record")?;
            let bytes = json.len();
            tx.execute(
                "INSERT INTO outbox (role, destination, body, bytes, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    self.shared.role.as_str().into(),
                    self.shared.destination.as_str().into(),
                    json.into(),
                    bytes.into(),
                    now.into(),
                ],
            )?;
        }
        Ok(())
    }

    /// Deliver what was just committed without waiting for the next poll.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stage `items` in a transaction of their own, commit, and wake delivery: for records
    /// that go with no state change of the role's.
    pub async fn push<T: Serialize>(&self, items: &[T]) -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let lines = items
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()
            .context("serializing outbox records")?;
        let outbox = self.clone();
        self.shared
            .db
            .write(move |tx| outbox.stage(tx, &lines))
            .await
            .with_context(|| format!("persisting records for {}", self.shared.destination))?;
        self.wake();
        Ok(())
    }

    /// Records pending at the last count (refreshed about once a second while delivering).
    pub fn pending(&self) -> usize {
        self.shared.pending.load(Ordering::Relaxed)
    }

    /// Count the pending records now (tests, and the gauge).
    pub async fn count_pending(&self) -> anyhow::Result<usize> {
        let (records, _) = self.shared.count().await?;
        Ok(records)
    }

    /// Start delivering, until the role shuts down.
    pub fn start(&self, context: &RoleContext) {
        let shared = self.shared.clone();
        let shutdown = context.shutdown.clone();
        context.spawn(async move {
            if shared.db.dialect() == Dialect::Sqlite {
                // One process owns a SQLite file: a claim found at start is a dead run's.
                if let Err(error) = shared.release_all().await {
                    tracing::warn!(destination = %shared.destination, error = %format!("{error:#}"), "could not release old claims; they expire");
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = shared.deliver_forever() => {}
            }
            let claimed = shared
                .claimed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            if let Some(claim) = claimed {
                if let Err(error) = shared.release(&claim, Duration::ZERO).await {
                    tracing::debug!(destination = %shared.destination, error = %format!("{error:#}"), "could not release a claim at shutdown; it expires");
                }
            }
        });
    }
}

/// A batch claimed for delivery.
struct Claimed {
    claim: String,
    records: Vec<(i64, String)>,
}

impl Shared {
    fn keys(&self) -> [crate::db::Value; 2] {
        [self.role.as_str().into(), self.destination.as_str().into()]
    }

    fn pending_gauge(&self) -> prometheus::IntGauge {
        self.metrics.pending.with_label_values(&[&self.destination])
    }

    fn full_batch(&self) -> usize {
        if self.one_per_request {
            1
        } else {
            self.settings.batch_size
        }
    }

    async fn count(&self) -> anyhow::Result<(usize, usize)> {
        let [role, destination] = self.keys();
        let (records, bytes) = self
            .db
            .read(move |tx| {
                let row = tx.query_opt(
                    "SELECT COUNT(*), CAST(COALESCE(SUM(bytes), 0) AS BIGINT) FROM outbox \
                     WHERE role = $1 AND destination = $2",
                    &[role, destination],
                )?;
                Ok(match row {
                    Some(row) => (row.int(0)?, row.int(1)?),
                    None => (0, 0),
                })
            })
            .await?;
        let records = usize::try_from(records).unwrap_or(0);
        let bytes = usize::try_from(bytes).unwrap_or(0);
        self.pending.store(records, Ordering::Relaxed);
        self.pending_gauge()
            .set(i64::try_from(records).unwrap_or(i64::MAX));
        Ok((records, bytes))
    }

    /// Past either bound (OUTBOX_MAX_RECORDS, OUTBOX_MAX_BYTES), drop the oldest records:
    /// a long outage costs history, never unbounded disk.
    async fn enforce_bounds(&self) -> anyhow::Result<()> {
        let (records, bytes) = self.count().await?;
        if records <= self.settings.max_records && bytes <= self.settings.max_bytes {
            return Ok(());
        }
        let [role, destination] = self.keys();
        let max_records = self.settings.max_records;
        let max_bytes = self.settings.max_bytes;
        let dropped = self
            .db
            .write(move |tx| {
                // Newest first, keeping records while both bounds hold; the rest go.
                let rows = tx.query(
                    "SELECT seq, bytes FROM outbox WHERE role = $1 AND destination = $2 \
                     ORDER BY seq DESC",
                    &[role.clone(), destination.clone()],
                )?;
                let mut kept_bytes = 0usize;
                let mut cut = None;
                for (kept, row) in rows.iter().enumerate() {
                    let size = usize::try_from(row.int(1)?).unwrap_or(usize::MAX);
                    if kept + 1 > max_records || kept_bytes.saturating_add(size) > max_bytes {
                        cut = Some(row.int(0)?);
                        break;
                    }
                    kept_bytes += size;
                }
                let Some(cut) = cut else { return Ok(0) };
                tx.execute(
                    "DELETE FROM outbox WHERE role = $1 AND destination = $2 AND seq <= $3",
                    &[role, destination, cut.into()],
                )
            })
            .await?;
        if dropped > 0 {
            tracing::warn!(
                destination = %self.destination,
                dropped,
                max_records = self.settings.max_records,
                max_bytes = self.settings.max_bytes,
                "outbox is full: dropped the oldest records"
            );
            self.metrics
                .dropped
                .with_label_values(&[&self.destination, "overflow"])
                .inc_by(dropped);
            self.count().await?;
        }
        Ok(())
    }

    /// Claim up to `limit` of the oldest unclaimed records.
    async fn claim(&self, limit: usize) -> anyhow::Result<Option<Claimed>> {
        let [role, destination] = self.keys();
        let claim = ulid::Ulid::new().to_string();
        let claim_id = claim.clone();
        let records = self
            .db
            .write(move |tx| {
                let now = now_millis();
                let lock = match tx.dialect() {
                    Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
                    Dialect::Sqlite => "",
                };
                let sql = format!(
                    "UPDATE outbox SET claim = $1, claimed_until = $2 WHERE seq IN ( \
                        SELECT seq FROM outbox WHERE role = $3 AND destination = $4 \
                        AND claimed_until < $5 ORDER BY seq LIMIT $6{lock}) \
                     RETURNING seq, body"
                );
                let rows = tx.query(
                    &sql,
                    &[
                        claim_id.into(),
                        (now + CLAIM_MILLIS).into(),
                        role,
                        destination,
                        now.into(),
                        limit.into(),
                    ],
                )?;
                let mut records = rows
                    .iter()
                    .map(|row| Ok((row.int(0)?, row.text(1)?.to_string())))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                records.sort_unstable_by_key(|(seq, _)| *seq);
                Ok(records)
            })
            .await?;
        Ok((!records.is_empty()).then_some(Claimed { claim, records }))
    }

    fn remember_claim(&self, claim: Option<&str>) {
        *self
            .claimed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = claim.map(str::to_string);
    }

    async fn release_all(&self) -> anyhow::Result<()> {
        let [role, destination] = self.keys();
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE outbox SET claim = NULL, claimed_until = 0 \
                     WHERE role = $1 AND destination = $2 AND claimed_until <> 0",
                    &[role, destination],
                )
            })
            .await?;
        Ok(())
    }

    async fn finish(&self, claim: &str) -> anyhow::Result<u64> {
        let claim = claim.to_string();
        self.db
            .write(move |tx| tx.execute("DELETE FROM outbox WHERE claim = $1", &[claim.into()]))
            .await
    }

    /// Give a claimed batch back, to be tried again after `delay` (by any replica).
    async fn release(&self, claim: &str, delay: Duration) -> anyhow::Result<()> {
        let claim = claim.to_string();
        let until = now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        self.db
            .write(move |tx| {
                tx.execute(
                    "UPDATE outbox SET claim = NULL, claimed_until = $1 WHERE claim = $2",
                    &[until.into(), claim.into()],
                )
            })
            .await?;
        Ok(())
    }

    /// A record the receiver refuses: kept in `outbox_dead` (listed and replayed through
    /// [`crate::dead_letters`]), never dropped in silence; past the dead letters' bound the
    /// oldest of them go, counted.
    async fn bury(&self, claim: &str, reason: &str) -> anyhow::Result<u64> {
        let claim = claim.to_string();
        let reason = reason.to_string();
        let role = self.role.clone();
        let destination = self.destination.clone();
        let (buried, trimmed) = self
            .db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO outbox_dead (seq, role, destination, body, reason, failed_at) \
                     SELECT seq, role, destination, body, $1, $2 FROM outbox WHERE claim = $3",
                    &[reason.into(), now_millis().into(), claim.clone().into()],
                )?;
                let buried = tx.execute("DELETE FROM outbox WHERE claim = $1", &[claim.into()])?;
                let trimmed = crate::dead_letters::trim(tx, &role, &destination)?;
                Ok((buried, trimmed))
            })
            .await?;
        if trimmed > 0 {
            tracing::warn!(destination = %self.destination, dropped = trimmed, kept = crate::dead_letters::KEPT_PER_DESTINATION, "too many dead letters: dropped the oldest");
            self.metrics
                .dropped
                .with_label_values(&[&self.destination, "dead_letters_full"])
                .inc_by(trimmed);
        }
        Ok(buried)
    }

    async fn deliver_forever(&self) {
        let mut batch_limit = self.full_batch();
        let mut failures: u32 = 0;
        let mut last_bounds = std::time::Instant::now() - BOUNDS_EVERY;
        loop {
            if last_bounds.elapsed() >= BOUNDS_EVERY {
                last_bounds = std::time::Instant::now();
                if let Err(error) = self.enforce_bounds().await {
                    tracing::warn!(destination = %self.destination, error = %format!("{error:#}"), "could not count the outbox");
                }
            }
            let claimed = match self.claim(batch_limit).await {
                Ok(Some(claimed)) => claimed,
                Ok(None) => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(POLL) => {}
                    }
                    continue;
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(destination = %self.destination, error = %format!("{error:#}"), "could not read the outbox; retrying");
                    tokio::time::sleep(self.retry_delay(failures)).await;
                    continue;
                }
            };
            self.remember_claim(Some(&claimed.claim));
            let outcome = match self.post(&claimed.records).await {
                Delivery::Delivered => {
                    if failures > 0 {
                        tracing::info!(destination = %self.destination, "delivering again");
                    }
                    failures = 0;
                    batch_limit = self.full_batch();
                    self.finish(&claimed.claim).await.map(|delivered| {
                        self.metrics
                            .delivered
                            .with_label_values(&[&self.destination])
                            .inc_by(delivered);
                        self.pending.fetch_sub(
                            usize::try_from(delivered)
                                .unwrap_or(0)
                                .min(self.pending.load(Ordering::Relaxed)),
                            Ordering::Relaxed,
                        );
                    })
                }
                Delivery::Rejected(reason) if claimed.records.len() > 1 => {
                    // Find the bad record by halving, so the good ones still get through.
                    batch_limit = claimed.records.len() / 2;
                    tracing::warn!(destination = %self.destination, %reason, size = claimed.records.len(), "batch rejected; retrying in halves");
                    self.release(&claimed.claim, Duration::ZERO).await
                }
                Delivery::Rejected(reason) => {
                    tracing::error!(destination = %self.destination, %reason, record = %claimed.records[0].1, "record rejected by the receiver; kept in outbox_dead");
                    batch_limit = self.full_batch();
                    self.bury(&claimed.claim, &reason).await.map(|buried| {
                        self.metrics
                            .dropped
                            .with_label_values(&[&self.destination, "rejected"])
                            .inc_by(buried);
                    })
                }
                Delivery::Retry(reason) => {
                    if failures == 0 {
                        tracing::warn!(destination = %self.destination, url = %self.shown_url, %reason, "delivery failed; retrying with backoff");
                    }
                    failures = failures.saturating_add(1);
                    self.metrics
                        .retries
                        .with_label_values(&[&self.destination])
                        .inc();
                    let delay = self.retry_delay(failures);
                    let released = self.release(&claimed.claim, delay).await;
                    tokio::time::sleep(delay).await;
                    released
                }
            };
            self.remember_claim(None);
            if let Err(error) = outcome {
                // The claim expires, and the batch is delivered again (receivers dedupe).
                tracing::warn!(destination = %self.destination, error = %format!("{error:#}"), "could not record a delivery outcome");
                tokio::time::sleep(self.retry_delay(failures.max(1))).await;
            }
        }
    }

    /// Exponential backoff with "equal jitter": half fixed, half random, so many senders
    /// waiting on one cold-starting receiver do not return in lockstep.
    fn retry_delay(&self, failures: u32) -> Duration {
        let exponential = FIRST_RETRY.saturating_mul(1 << failures.min(16).saturating_sub(1));
        let capped = exponential.min(self.settings.max_retry_delay);
        capped / 2 + capped.mul_f64(fastrand::f64() / 2.0)
    }

    async fn post(&self, batch: &[(i64, String)]) -> Delivery {
        let body = match batch {
            [(_, json)] if self.one_per_request => json.clone(),
            _ => json_array(batch),
        };
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(token) = &self.api_token {
            request = request.bearer_auth(token);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => Delivery::Delivered,
            Ok(response) => {
                let status = response.status();
                let text = response.text().await.unwrap_or_default();
                let reason = format!("{status}: {}", text.chars().take(300).collect::<String>());
                let retryable = status.is_server_error()
                    || status == reqwest::StatusCode::REQUEST_TIMEOUT
                    || status == reqwest::StatusCode::TOO_MANY_REQUESTS
                    // A receiver behind a proxy may 404 while it is being (re)deployed, and
                    // 401 is a token mismatch an operator will fix: keep the records.
                    || status == reqwest::StatusCode::NOT_FOUND
                    || status == reqwest::StatusCode::UNAUTHORIZED;
                if retryable {
                    Delivery::Retry(reason)
                } else {
                    Delivery::Rejected(reason)
                }
            }
            // Without the URL: reqwest's text names it, and a webhook's URL is a secret.
            Err(error) => Delivery::Retry(error.without_url().to_string()),
        }
    }
}

/// The records' JSON texts joined into one JSON array.
fn json_array(batch: &[(i64, String)]) -> String {
    let mut body = String::with_capacity(batch.iter().map(|(_, j)| j.len() + 1).sum::<usize>() + 2);
    body.push('[');
    for (index, (_, json)) in batch.iter().enumerate() {
        if index > 0 {
            body.push(',');
        }
        body.push_str(json);
    }
    body.push(']');
    body
}

enum Delivery {
    Delivered,
    /// The receiver refused the batch as invalid: retrying it as is cannot succeed.
    Rejected(String),
    /// Down, cold-starting, overloaded or unreachable: try again later.
    Retry(String),
}

/// Queues the file-based version left under `STATE_DIR/outbox/<role>/<destination>`
/// (`queue.log`: lines of `<seq>\t<json>`; `cursor`: the highest seq delivered) become rows,
/// once: every undelivered record, in order, in one transaction; then the folder is renamed to
/// `<role>.imported`. A torn last line was never acknowledged and is left out; any other line
/// that does not parse stops the role naming the file and the line, before anything changes.
pub(crate) async fn import_legacy_queues(
    db: &Db,
    state_dir: &std::path::Path,
    role: &str,
) -> anyhow::Result<()> {
    let folder = state_dir.join("outbox").join(role);
    if !folder.is_dir() {
        return Ok(());
    }
    let mut queues = Vec::new();
    let entries =
        std::fs::read_dir(&folder).with_context(|| format!("listing {}", folder.display()))?;
    for entry in entries {
        let path = entry?.path();
        let log = path.join("queue.log");
        if !log.is_file() {
            continue;
        }
        let destination = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("{} is not a destination's name", path.display()))?
            .to_string();
        queues.push((destination, read_legacy_queue(&path)?));
    }
    let imported: usize = queues.iter().map(|(_, records)| records.len()).sum();
    let role_name = role.to_string();
    db.write(move |tx| {
        let now = now_millis();
        for (destination, records) in &queues {
            for json in records {
                tx.execute(
                    "INSERT INTO outbox (role, destination, body, bytes, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        role_name.as_str().into(),
                        destination.as_str().into(),
                        json.as_str().into(),
                        json.len().into(),
                        now.into(),
                    ],
                )?;
            }
        }
        Ok(())
    })
    .await
    .with_context(|| format!("importing the queues in {}", folder.display()))?;
    let aside = state_dir.join("outbox").join(format!("{role}.imported"));
    std::fs::rename(&folder, &aside)
        .with_context(|| format!("moving {} aside", folder.display()))?;
    tracing::info!(records = imported, from = %aside.display(), "imported the outbox queues of the file-based version");
    Ok(())
}

/// The undelivered records of one old queue folder, oldest first.
fn read_legacy_queue(folder: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let log = folder.join("queue.log");
    let cursor_path = folder.join("cursor");
    let cursor: u64 = match std::fs::read_to_string(&cursor_path) {
        Ok(text) => text.trim().parse().with_context(|| {
            format!("{} does not hold a sequence number", cursor_path.display())
        })?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
        Err(error) => return Err(error).context(format!("reading {}", cursor_path.display())),
    };
    let bytes = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let complete = bytes.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    let mut records = Vec::new();
    let mut last_seq = 0;
    for (index, line) in bytes[..complete].split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let damaged = || {
            anyhow::anyhow!(
                "{} line {} is damaged; move the folder {} aside to start without it",
                log.display(),
                index + 1,
                folder.display()
            )
        };
        let text = std::str::from_utf8(line).map_err(|_| damaged())?;
        let (seq, json) = text.split_once('\t').ok_or_else(damaged)?;
        let seq: u64 = seq.parse().map_err(|_| damaged())?;
        serde_json::from_str::<serde::de::IgnoredAny>(json).map_err(|_| damaged())?;
        last_seq = last_seq.max(seq);
        if seq > cursor {
            records.push(json.to_string());
        }
    }
    // A cursor past the last record would mean every record in the log was delivered,
    // including ones it never held: the cursor is wrong, and trusting it could drop records.
    if cursor > last_seq && last_seq > 0 {
        anyhow::bail!(
            "{} says {cursor} records were delivered, past the end of {} (last {last_seq}); \
             move the folder {} aside to start without it",
            cursor_path.display(),
            log.display(),
            folder.display()
        );
    }
    Ok(records)
}
