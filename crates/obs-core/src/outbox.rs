//! The outbox: how a role hands records to a downstream role without ever losing them.
//!
//! `push` returns only once the records are on disk, under
//! STATE_DIR/outbox/<role>/<destination> (appends from concurrent callers share one fsync).
//! A delivery task posts them in batches, as a JSON array, to the destination URL, retrying
//! with exponential backoff and jitter while the receiver is down or cold-starting (a
//! receiver outside the fleet, such as a chat webhook, can be sent one record per request
//! instead, without the fleet's token: [`OutboxOptions`]). Delivery is at-least-once:
//! receivers dedupe by the records' ids. The queue is bounded in records and in bytes (OUTBOX_MAX_RECORDS,
//! OUTBOX_MAX_BYTES); past a bound the oldest records are dropped, counted and logged, so a
//! long outage costs history, never the sender's memory or disk.
//!
//! On disk: `queue.log`, lines of `<seq>\t<json>`, and `cursor`, the highest seq delivered
//! or dropped. Because every line carries its seq, compacting the log and moving the cursor
//! need no common transaction: after a crash at any point, replaying the lines above the
//! cursor gives exactly the undelivered records. A torn last line (a crash mid-append, never
//! acknowledged) is cut off on open, and so is a failed append at once. One thread per outbox
//! owns the files, so the delivery task never waits on the disk; `lock`, held while the
//! outbox is open, keeps a second process off the same folder.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context as _;
use prometheus::{IntCounterVec, IntGaugeVec, Opts};
use serde::Serialize;
use tokio::sync::{oneshot, Notify};

use crate::durable::write_atomically;
use crate::server::{RoleContext, Service};

/// Compact the log once this many delivered lines precede the undelivered ones.
const COMPACT_AFTER_LINES: u64 = 4096;
const FIRST_RETRY: Duration = Duration::from_millis(200);

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
    writer: mpsc::Sender<Job>,
}

struct Shared {
    destination: String,
    url: String,
    api_token: Option<String>,
    settings: OutboxSettings,
    one_per_request: bool,
    /// Undelivered records, oldest first, mirrored from disk.
    queue: Mutex<Queue>,
    wake: Notify,
    metrics: OutboxMetrics,
    http: reqwest::Client,
}

/// The undelivered records and the bytes they hold.
#[derive(Default)]
struct Queue {
    entries: VecDeque<Entry>,
    bytes: usize,
}

impl Queue {
    fn push(&mut self, entry: Entry) {
        self.bytes += entry.json.len();
        self.entries.push_back(entry);
    }

    fn pop(&mut self) -> Option<Entry> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.json.len();
        Some(entry)
    }

    fn len(&self) -> usize {
        self.entries.len()
    }
}

struct Entry {
    seq: u64,
    json: String,
}

/// Work for the writer thread, the only one that touches the files.
enum Job {
    /// Persist these records, then say so.
    Append {
        lines: Vec<String>,
        done: oneshot::Sender<anyhow::Result<()>>,
    },
    /// Everything up to this seq is delivered (or given up): move the cursor.
    Consume(u64),
}

impl Outbox {
    /// Open (or create) the outbox for `destination`, posting to `url`. Records left from
    /// a previous run are loaded and will be delivered.
    pub fn open(service: &Service, destination: &str, url: &str) -> anyhow::Result<Outbox> {
        Self::open_with(service, destination, url, OutboxOptions::default())
    }

    /// As [`Outbox::open`], talking to the receiver as `options` say.
    pub fn open_with(
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
        reqwest::Url::parse(url).with_context(|| format!("outbox URL '{url}'"))?;
        let config = service.config();
        let dir = outbox_dir(&config.state_dir, &config.role, destination)?;
        let (journal, entries) = Journal::open(&dir)?;
        let mut queue = Queue::default();
        for entry in entries {
            queue.push(entry);
        }
        let metrics = service.metrics().outbox.clone();
        metrics
            .pending
            .with_label_values(&[destination])
            .set(queue.len() as i64);
        if queue.len() > 0 {
            tracing::info!(
                destination,
                pending = queue.len(),
                "outbox holds records from before the restart; delivering them"
            );
        }
        let shared = Arc::new(Shared {
            destination: destination.to_string(),
            url: url.to_string(),
            api_token: config.api_token.clone().filter(|_| options.send_api_token),
            settings: config.outbox.clone(),
            one_per_request: options.one_per_request,
            queue: Mutex::new(queue),
            wake: Notify::new(),
            metrics,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
        });
        let (writer, appends) = mpsc::channel();
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name(format!("outbox-{destination}"))
            .spawn(move || writer_shared.write(journal, appends))
            .context("starting the outbox writer thread")?;
        Ok(Outbox { shared, writer })
    }

    /// Persist `items` (each serialized as one JSON value); returns once they are durable.
    pub async fn push<T: Serialize>(&self, items: &[T]) -> anyhow::Result<()> {
        if items.is_empty() {
            return Ok(());
        }
        let lines = items
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<Vec<_>, _>>()
            .context("serializing outbox records")?;
        let (done, durable) = oneshot::channel();
        self.writer
            .send(Job::Append { lines, done })
            .map_err(|_| anyhow::anyhow!("the outbox writer has stopped"))?;
        durable
            .await
            .context("the outbox writer has stopped")?
            .with_context(|| format!("persisting records for {}", self.shared.destination))
    }

    /// Records persisted and not yet delivered.
    pub fn pending(&self) -> usize {
        lock(&self.shared.queue).len()
    }

    /// Start delivering, until the role shuts down.
    pub fn start(&self, context: &RoleContext) {
        let shared = self.shared.clone();
        let writer = self.writer.clone();
        let shutdown = context.shutdown.clone();
        context.spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = shared.deliver_forever(&writer) => {}
            }
        });
    }
}

impl Shared {
    /// The writer thread, owner of the files. Group commit: every append waiting when a
    /// write starts shares its fsync, so many small pushes cost one disk flush. Cursor moves
    /// are done here too, so the delivery task never waits on the disk.
    fn write(self: Arc<Self>, mut journal: Journal, jobs: mpsc::Receiver<Job>) {
        while let Ok(first) = jobs.recv() {
            let mut appends = Vec::new();
            let mut consumed = None;
            for job in std::iter::once(first).chain(jobs.try_iter()) {
                match job {
                    Job::Append { lines, done } => appends.push((lines, done)),
                    Job::Consume(seq) => consumed = consumed.max(Some(seq)),
                }
            }
            if !appends.is_empty() {
                self.append(&mut journal, appends);
            }
            if let Some(seq) = consumed {
                self.save_cursor(&mut journal, seq);
            }
        }
    }

    fn append(
        &self,
        journal: &mut Journal,
        appends: Vec<(Vec<String>, oneshot::Sender<anyhow::Result<()>>)>,
    ) {
        let lines: Vec<&str> = appends
            .iter()
            .flat_map(|(lines, _)| lines.iter().map(String::as_str))
            .collect();
        match journal.append(&lines) {
            Ok(first_seq) => {
                let mut seq = first_seq;
                let mut queue = lock(&self.queue);
                for (lines, _) in &appends {
                    for line in lines {
                        queue.push(Entry {
                            seq,
                            json: line.clone(),
                        });
                        seq += 1;
                    }
                }
                let dropped = self.drop_overflow(&mut queue);
                self.pending_gauge().set(queue.len() as i64);
                drop(queue);
                if let Some(seq) = dropped {
                    self.save_cursor(journal, seq);
                }
                self.wake.notify_one();
                for (_, done) in appends {
                    let _ = done.send(Ok(()));
                }
            }
            Err(error) => {
                let message = format!("{error:#}");
                for (_, done) in appends {
                    let _ = done.send(Err(anyhow::anyhow!(message.clone())));
                }
            }
        }
    }

    /// Past either bound (OUTBOX_MAX_RECORDS, OUTBOX_MAX_BYTES), drop the oldest records:
    /// a long outage costs history, never unbounded memory or disk. Returns the last seq
    /// dropped, for the cursor.
    fn drop_overflow(&self, queue: &mut Queue) -> Option<u64> {
        let mut last = None;
        let mut count = 0u64;
        while queue.len() > self.settings.max_records || queue.bytes > self.settings.max_bytes {
            let Some(entry) = queue.pop() else { break };
            last = Some(entry.seq);
            count += 1;
        }
        if count == 0 {
            return None;
        }
        let dropped = self
            .metrics
            .dropped
            .with_label_values(&[&self.destination, "overflow"]);
        // One line when dropping starts and one per thousand after, not one per record.
        if dropped.get() == 0 || (dropped.get() + count) / 1000 > dropped.get() / 1000 {
            tracing::warn!(
                destination = %self.destination,
                dropped = count,
                max_records = self.settings.max_records,
                max_bytes = self.settings.max_bytes,
                "outbox is full: dropping the oldest records"
            );
        }
        dropped.inc_by(count);
        last
    }

    fn save_cursor(&self, journal: &mut Journal, seq: u64) {
        if let Err(error) = journal.consume_through(seq) {
            // A stale cursor only means a redelivery after a restart, which receivers dedupe.
            tracing::error!(destination = %self.destination, error = format!("{error:#}"), "outbox cursor not saved");
        }
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

    async fn deliver_forever(&self, writer: &mpsc::Sender<Job>) {
        let mut batch_limit = self.full_batch();
        let mut failures: u32 = 0;
        loop {
            let batch: Vec<(u64, String)> = {
                let queue = lock(&self.queue);
                queue
                    .entries
                    .iter()
                    .take(batch_limit)
                    .map(|entry| (entry.seq, entry.json.clone()))
                    .collect()
            };
            let Some(&(last_seq, _)) = batch.last() else {
                self.wake.notified().await;
                continue;
            };
            match self.post(&batch).await {
                Delivery::Delivered => {
                    if failures > 0 {
                        tracing::info!(destination = %self.destination, "delivering again");
                    }
                    failures = 0;
                    batch_limit = self.full_batch();
                    let delivered = self.consume_through(last_seq, writer);
                    self.metrics
                        .delivered
                        .with_label_values(&[&self.destination])
                        .inc_by(delivered);
                }
                Delivery::Rejected(reason) if batch.len() > 1 => {
                    // Find the bad record by halving, so the good ones still get through.
                    batch_limit = batch.len() / 2;
                    tracing::warn!(destination = %self.destination, %reason, size = batch.len(), "batch rejected; retrying in halves");
                }
                Delivery::Rejected(reason) => {
                    tracing::error!(destination = %self.destination, %reason, record = %batch[0].1, "record rejected by the receiver; dropping it");
                    let dropped = self.consume_through(last_seq, writer);
                    self.metrics
                        .dropped
                        .with_label_values(&[&self.destination, "rejected"])
                        .inc_by(dropped);
                    batch_limit = self.full_batch();
                }
                Delivery::Retry(reason) => {
                    if failures == 0 {
                        tracing::warn!(destination = %self.destination, url = %self.url, %reason, "delivery failed; retrying with backoff");
                    }
                    failures = failures.saturating_add(1);
                    self.metrics
                        .retries
                        .with_label_values(&[&self.destination])
                        .inc();
                    tokio::time::sleep(self.retry_delay(failures)).await;
                }
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

    /// Forget every queued record up to `seq`; returns how many were removed. The writer
    /// thread moves the cursor on disk.
    fn consume_through(&self, seq: u64, writer: &mpsc::Sender<Job>) -> u64 {
        let mut removed = 0;
        let mut queue = lock(&self.queue);
        while queue.entries.front().is_some_and(|entry| entry.seq <= seq) {
            queue.pop();
            removed += 1;
        }
        self.pending_gauge().set(queue.len() as i64);
        drop(queue);
        // Only fails once the writer has stopped (shutdown): the records were delivered, and
        // a stale cursor only means a redelivery after a restart, which receivers dedupe.
        let _ = writer.send(Job::Consume(seq));
        removed
    }

    async fn post(&self, batch: &[(u64, String)]) -> Delivery {
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
            Err(error) => Delivery::Retry(error.to_string()),
        }
    }
}

/// The records' JSON texts joined into one JSON array.
fn json_array(batch: &[(u64, String)]) -> String {
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

/// The files behind an outbox.
struct Journal {
    dir: PathBuf,
    log: File,
    /// Held (an exclusive lock on `lock`) for as long as the outbox is open: two processes,
    /// or two roles sharing a STATE_DIR, appending to one log would lose records.
    _lock: File,
    /// Highest seq delivered or dropped.
    consumed: u64,
    next_seq: u64,
    /// Lines in the log at or below `consumed`: dead weight until the next compaction.
    dead_lines: u64,
}

/// How long `open` waits for the folder's lock: an outbox of this process that is closing
/// (a role restarted in place) lets go of it within moments.
const LOCK_WAIT: Duration = Duration::from_secs(3);

impl Journal {
    fn open(dir: &Path) -> anyhow::Result<(Journal, VecDeque<Entry>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let lock = lock_folder(dir)?;
        let cursor_path = dir.join("cursor");
        let consumed = match std::fs::read_to_string(&cursor_path) {
            Ok(text) => text
                .trim()
                .parse()
                .with_context(|| format!("{} is not a number", cursor_path.display()))?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(error) => return Err(error).context(format!("reading {}", cursor_path.display())),
        };
        let log_path = dir.join("queue.log");
        let mut entries = VecDeque::new();
        let mut next_seq = consumed + 1;
        let mut dead_lines = 0;
        let mut whole_lines_bytes = 0u64;
        let mut unreadable = 0u64;
        if let Ok(file) = File::open(&log_path) {
            let mut reader = BufReader::new(file);
            let mut line = String::new();
            loop {
                line.clear();
                let read = reader
                    .read_line(&mut line)
                    .with_context(|| format!("reading {}", log_path.display()))?;
                // A line without its newline is a torn append that was never acknowledged.
                if read == 0 || !line.ends_with('\n') {
                    break;
                }
                whole_lines_bytes += read as u64;
                // A whole line that does not read back (the disk damaged it) is skipped, not
                // the end of the log: the acknowledged records after it are still good.
                let Some((seq, json)) = parse_line(line.trim_end_matches('\n')) else {
                    unreadable += 1;
                    continue;
                };
                next_seq = next_seq.max(seq + 1);
                if seq <= consumed {
                    dead_lines += 1;
                } else {
                    entries.push_back(Entry {
                        seq,
                        json: json.to_string(),
                    });
                }
            }
        }
        if unreadable > 0 {
            tracing::error!(path = %log_path.display(), lines = unreadable, "outbox log lines that do not read back were skipped");
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        if log.metadata()?.len() > whole_lines_bytes {
            tracing::warn!(path = %log_path.display(), "cutting off a torn write at the end of the outbox log");
            log.set_len(whole_lines_bytes)?;
        }
        Ok((
            Journal {
                dir: dir.to_path_buf(),
                log,
                _lock: lock,
                consumed,
                next_seq,
                dead_lines,
            },
            entries,
        ))
    }

    /// Append lines durably; returns the seq of the first. A failed append is cut off again,
    /// so the next one starts on a line of its own.
    fn append(&mut self, lines: &[&str]) -> anyhow::Result<u64> {
        let first = self.next_seq;
        let mut buffer = String::with_capacity(lines.iter().map(|l| l.len() + 24).sum());
        for (offset, line) in lines.iter().enumerate() {
            use std::fmt::Write as _;
            let _ = writeln!(buffer, "{}\t{line}", first + offset as u64);
        }
        let length = self
            .log
            .metadata()
            .context("reading the outbox log's length")?
            .len();
        let written = self
            .log
            .write_all(buffer.as_bytes())
            .context("appending to the outbox log")
            .and_then(|()| self.log.sync_data().context("syncing the outbox log"));
        if let Err(error) = written {
            if let Err(cut) = self.log.set_len(length) {
                // Left as it is, the part written is a line that does not read back: the
                // next open skips it.
                tracing::error!(error = %cut, "cannot cut a failed append off the outbox log");
            }
            return Err(error);
        }
        self.next_seq += lines.len() as u64;
        Ok(first)
    }

    fn consume_through(&mut self, seq: u64) -> anyhow::Result<()> {
        if seq <= self.consumed {
            return Ok(());
        }
        self.dead_lines += seq - self.consumed;
        self.consumed = seq;
        write_atomically(&self.dir.join("cursor"), seq.to_string().as_bytes())?;
        if self.dead_lines >= COMPACT_AFTER_LINES {
            self.compact()?;
        }
        Ok(())
    }

    /// Rewrite the log without the lines already consumed.
    fn compact(&mut self) -> anyhow::Result<()> {
        let log_path = self.dir.join("queue.log");
        let reader = BufReader::new(File::open(&log_path)?);
        let mut kept = Vec::new();
        for line in reader.lines() {
            let line = line?;
            let live = parse_line(&line).is_some_and(|(seq, _)| seq > self.consumed);
            if live {
                kept.extend_from_slice(line.as_bytes());
                kept.push(b'\n');
            }
        }
        write_atomically(&log_path, &kept)?;
        self.log = OpenOptions::new().append(true).open(&log_path)?;
        self.dead_lines = 0;
        Ok(())
    }
}

/// STATE_DIR/outbox/<role>/<destination>: the role in the path, so roles sharing a STATE_DIR
/// (one volume for all five) never share a queue. A queue left by an earlier version at
/// STATE_DIR/outbox/<destination> is moved there, so its records are still delivered.
fn outbox_dir(state_dir: &Path, role: &str, destination: &str) -> anyhow::Result<PathBuf> {
    let dir = state_dir.join("outbox").join(role).join(destination);
    let legacy = state_dir.join("outbox").join(destination);
    if !dir.exists() && legacy.join("queue.log").is_file() {
        std::fs::create_dir_all(state_dir.join("outbox").join(role))
            .with_context(|| format!("creating {}", dir.display()))?;
        std::fs::rename(&legacy, &dir).with_context(|| {
            format!(
                "moving the outbox {} to {}",
                legacy.display(),
                dir.display()
            )
        })?;
        tracing::info!(from = %legacy.display(), to = %dir.display(), "outbox moved to its role's folder");
    }
    Ok(dir)
}

/// `<seq>\t<json>`, or None for a line that does not read back.
fn parse_line(line: &str) -> Option<(u64, &str)> {
    let (seq, json) = line.split_once('\t')?;
    let seq = seq.parse().ok()?;
    serde_json::from_str::<serde::de::IgnoredAny>(json).ok()?;
    Some((seq, json))
}

/// Take the folder's lock, waiting a little for an outbox of this process that is closing.
fn lock_folder(dir: &Path) -> anyhow::Result<File> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "{} is in use by another outbox (two processes, or two roles, sharing one \
                 STATE_DIR?)",
                dir.display()
            ),
            Err(std::fs::TryLockError::Error(error)) => {
                return Err(error).with_context(|| format!("locking {}", path.display()))
            }
        }
    }
}

/// A poisoned lock means a panic elsewhere mid-update; the queue data itself stays
/// consistent (every update is a single push/pop), so carry on with it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
