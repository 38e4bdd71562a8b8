//! What survives a restart, under STATE_DIR:
//!
//! - `incidents.log`: an append-only journal, one line per saved incident state
//!   (`{"incident": …}`) or pruning (`{"pruned": {"id", "revision"}}`). Appends from
//!   concurrent requests share one fsync (group commit, on a writer thread).
//! - `incidents.snapshot`: the same lines, one per live incident, written atomically
//!   (`obs_core::durable::write_atomically`) when the journal has grown well past the number
//!   of incidents; the journal then starts empty.
//! - `silences.json`, `goals.json`: small, rewritten atomically on every change.
//!
//! Every incident line carries its revision, and on load the highest revision of each id
//! wins, so neither the order of lines (two requests finishing in either order) nor a crash
//! between writing the snapshot and emptying the journal can bring back an older state. A
//! torn last line (a crash mid-append, never acknowledged) is cut off on open.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use anyhow::Context as _;
use obs_core::durable::write_atomically;
use obs_model::{Goals, Silence};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use ulid::Ulid;

use crate::incidents::Tracked;

const JOURNAL: &str = "incidents.log";
const SNAPSHOT: &str = "incidents.snapshot";
const SILENCES: &str = "silences.json";
const GOALS: &str = "goals.json";
/// Compact once the journal holds this many lines more than there are incidents (and at
/// least twice as many): compaction rewrites every incident, so it must stay rare.
const COMPACT_SLACK: usize = 20_000;

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Line {
    Incident(Box<Tracked>),
    Pruned { id: Ulid, revision: u64 },
}

/// One line to append, serialized by the caller (off the writer thread).
pub struct Entry {
    id: Ulid,
    revision: u64,
    /// False: the incident was pruned.
    live: bool,
    line: String,
}

impl Entry {
    pub fn incident(tracked: &Tracked) -> anyhow::Result<Entry> {
        Ok(Entry {
            id: tracked.incident.id,
            revision: tracked.incident.revision,
            live: true,
            line: serde_json::to_string(&Line::Incident(Box::new(tracked.clone())))
                .context("serializing an incident")?,
        })
    }

    pub fn pruned(id: Ulid, revision: u64) -> anyhow::Result<Entry> {
        Ok(Entry {
            id,
            revision,
            live: false,
            line: serde_json::to_string(&Line::Pruned { id, revision })
                .context("serializing a pruning")?,
        })
    }
}

/// While loading: per id, the highest revision seen and, if the incident is live at that
/// revision, its state and its line.
type Latest = HashMap<Ulid, (u64, Option<(Tracked, String)>)>;

struct Append {
    entries: Vec<Entry>,
    done: oneshot::Sender<anyhow::Result<()>>,
}

/// The incidents' journal. Cheap to clone.
#[derive(Clone)]
pub struct Journal {
    writer: mpsc::Sender<Append>,
}

impl Journal {
    /// Open the journal in `dir`, returning what it holds.
    pub fn open(dir: &Path) -> anyhow::Result<(Journal, Vec<Tracked>)> {
        Self::open_with(dir, COMPACT_SLACK)
    }

    fn open_with(dir: &Path, compact_slack: usize) -> anyhow::Result<(Journal, Vec<Tracked>)> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut latest: Latest = HashMap::new();
        let snapshot_path = dir.join(SNAPSHOT);
        if snapshot_path.exists() {
            read_lines(&snapshot_path, &mut latest, false)?;
        }
        let journal_path = dir.join(JOURNAL);
        let good_bytes = if journal_path.exists() {
            read_lines(&journal_path, &mut latest, true)?
        } else {
            0
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&journal_path)
            .with_context(|| format!("opening {}", journal_path.display()))?;
        let length = log.metadata()?.len();
        if length > good_bytes {
            tracing::warn!(path = %journal_path.display(), "cutting off a torn write at the end of the journal");
            log.set_len(good_bytes)
                .with_context(|| format!("truncating {}", journal_path.display()))?;
        }
        let journal_lines = count_lines(&journal_path)?;
        let mut mirror = HashMap::with_capacity(latest.len());
        let mut loaded = Vec::with_capacity(latest.len());
        for (id, (revision, live)) in latest {
            if let Some((tracked, line)) = live {
                mirror.insert(id, (revision, line));
                loaded.push(tracked);
            }
        }
        let writer = Writer {
            dir: dir.to_path_buf(),
            log,
            lines: journal_lines,
            mirror,
            compact_slack,
        };
        let (sender, appends) = mpsc::channel();
        std::thread::Builder::new()
            .name("curator-journal".into())
            .spawn(move || writer.run(appends))
            .context("starting the journal writer thread")?;
        Ok((Journal { writer: sender }, loaded))
    }

    /// Append `entries`; returns once they are on disk.
    pub async fn append(&self, entries: Vec<Entry>) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let (done, durable) = oneshot::channel();
        self.writer
            .send(Append { entries, done })
            .map_err(|_| anyhow::anyhow!("the journal writer has stopped"))?;
        durable
            .await
            .context("the journal writer has stopped")?
            .context("appending to the incidents journal")
    }
}

/// Read journal or snapshot lines into `latest` (highest revision per id wins); returns the
/// byte length of the good prefix. A line that does not parse ends the good prefix only at
/// the end of the journal (a torn append); elsewhere it is skipped with an error in the log,
/// so one damaged line never costs the rest.
fn read_lines(path: &Path, latest: &mut Latest, journal: bool) -> anyhow::Result<u64> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut reader = BufReader::new(file);
    let mut good_bytes = 0u64;
    let mut text = String::new();
    loop {
        text.clear();
        let read = reader
            .read_line(&mut text)
            .with_context(|| format!("reading {}", path.display()))?;
        if read == 0 {
            break;
        }
        // A last line without its newline is a torn append that was never acknowledged.
        if journal && !text.ends_with('\n') {
            break;
        }
        good_bytes += read as u64;
        let line = text.trim_end_matches('\n');
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<Line>(line) {
            Ok(Line::Incident(tracked)) => {
                let revision = tracked.incident.revision;
                let id = tracked.incident.id;
                if latest.get(&id).is_none_or(|(seen, _)| revision >= *seen) {
                    latest.insert(id, (revision, Some((*tracked, line.to_string()))));
                }
            }
            Ok(Line::Pruned { id, revision }) => {
                if latest.get(&id).is_none_or(|(seen, _)| revision >= *seen) {
                    latest.insert(id, (revision, None));
                }
            }
            Err(error) => {
                tracing::error!(path = %path.display(), %error, "skipping an unreadable line");
            }
        }
    }
    Ok(good_bytes)
}

fn count_lines(path: &Path) -> anyhow::Result<usize> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    Ok(BufReader::new(file).split(b'\n').count())
}

/// The writer thread's state: the journal file and a mirror of the latest line of every
/// live incident, which is what a compaction writes.
struct Writer {
    dir: PathBuf,
    log: File,
    lines: usize,
    mirror: HashMap<Ulid, (u64, String)>,
    compact_slack: usize,
}

impl Writer {
    fn run(mut self, appends: mpsc::Receiver<Append>) {
        while let Ok(first) = appends.recv() {
            let mut group = vec![first];
            group.extend(appends.try_iter());
            let result = self.write(group.iter().flat_map(|append| &append.entries));
            let failed = result.as_ref().err().map(|error| format!("{error:#}"));
            for append in group {
                let _ = append.done.send(match &failed {
                    None => Ok(()),
                    Some(message) => Err(anyhow::anyhow!(message.clone())),
                });
            }
            if failed.is_none() && self.lines > (self.mirror.len() * 2).max(self.compact_slack) {
                if let Err(error) = self.compact() {
                    tracing::error!(error = format!("{error:#}"), "compacting the incidents journal failed; it keeps growing until the next try");
                }
            }
        }
    }

    fn write<'a>(&mut self, entries: impl Iterator<Item = &'a Entry>) -> anyhow::Result<()> {
        let mut buffer = String::new();
        let mut written = Vec::new();
        for entry in entries {
            buffer.push_str(&entry.line);
            buffer.push('\n');
            written.push(entry);
        }
        self.log
            .write_all(buffer.as_bytes())
            .context("writing the incidents journal")?;
        self.log
            .sync_data()
            .context("syncing the incidents journal")?;
        self.lines += written.len();
        for entry in written {
            let newer = self
                .mirror
                .get(&entry.id)
                .is_none_or(|(revision, _)| entry.revision >= *revision);
            if !newer {
                continue;
            }
            if entry.live {
                self.mirror
                    .insert(entry.id, (entry.revision, entry.line.clone()));
            } else {
                self.mirror.remove(&entry.id);
            }
        }
        Ok(())
    }

    /// Write every live incident to the snapshot, then start an empty journal.
    fn compact(&mut self) -> anyhow::Result<()> {
        let mut snapshot = String::new();
        for (_, line) in self.mirror.values() {
            snapshot.push_str(line);
            snapshot.push('\n');
        }
        write_atomically(&self.dir.join(SNAPSHOT), snapshot.as_bytes())?;
        // A crash here leaves journal lines the snapshot already holds: harmless on load,
        // where the highest revision wins.
        let journal_path = self.dir.join(JOURNAL);
        write_atomically(&journal_path, b"")?;
        self.log = OpenOptions::new()
            .append(true)
            .open(&journal_path)
            .with_context(|| format!("reopening {}", journal_path.display()))?;
        self.lines = 0;
        tracing::debug!(
            incidents = self.mirror.len(),
            "compacted the incidents journal"
        );
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct SilencesFile {
    silences: Vec<Silence>,
}

/// The silences and goals files.
pub struct Settings {
    dir: PathBuf,
}

impl Settings {
    pub fn new(dir: &Path) -> Self {
        Settings {
            dir: dir.to_path_buf(),
        }
    }

    pub fn load_silences(&self) -> anyhow::Result<Vec<Silence>> {
        Ok(read_json::<SilencesFile>(&self.dir.join(SILENCES))?
            .map(|file| file.silences)
            .unwrap_or_default())
    }

    pub async fn save_silences(&self, silences: Vec<Silence>) -> anyhow::Result<()> {
        write_json(self.dir.join(SILENCES), SilencesFile { silences }).await
    }

    pub fn load_goals(&self) -> anyhow::Result<Option<Goals>> {
        read_json(&self.dir.join(GOALS))
    }

    pub async fn save_goals(&self, goals: Goals) -> anyhow::Result<()> {
        write_json(self.dir.join(GOALS), goals).await
    }
}

/// A missing file is a first start. An unreadable one (edited by hand: the atomic writes
/// never leave one) is moved aside to be inspected, and the curator starts without it.
fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> anyhow::Result<Option<T>> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
    };
    match serde_json::from_slice(&bytes) {
        Ok(value) => Ok(Some(value)),
        Err(error) => {
            let aside = path.with_extension(format!(
                "json.unreadable-{}",
                chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
            ));
            std::fs::rename(path, &aside)
                .with_context(|| format!("moving {} aside", path.display()))?;
            tracing::error!(%error, moved_to = %aside.display(), "a state file could not be read; starting without it");
            Ok(None)
        }
    }
}

async fn write_json<T: Serialize + Send + 'static>(path: PathBuf, value: T) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || {
        let bytes = serde_json::to_vec_pretty(&value).context("serializing")?;
        write_atomically(&path, &bytes)
    })
    .await
    .context("the state writer panicked")?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incidents::tests::tracked;

    #[actix_web::test]
    async fn the_highest_revision_wins_whatever_the_order_of_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, loaded) = Journal::open(dir.path()).unwrap();
        assert!(loaded.is_empty());
        let mut newer = tracked("api");
        newer.incident.revision = 7;
        newer.incident.count = 7;
        let mut older = newer.clone();
        older.incident.revision = 3;
        older.incident.count = 3;
        let gone = tracked("db");
        journal
            .append(vec![
                Entry::incident(&newer).unwrap(),
                Entry::incident(&older).unwrap(),
                Entry::incident(&gone).unwrap(),
                Entry::pruned(gone.incident.id, gone.incident.revision + 1).unwrap(),
            ])
            .await
            .unwrap();
        drop(journal);
        let (_, loaded) = Journal::open(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].incident.count, 7);
    }

    #[actix_web::test]
    async fn a_torn_last_line_is_cut_off_and_a_damaged_one_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _) = Journal::open(dir.path()).unwrap();
        let first = tracked("api");
        let second = tracked("db");
        journal
            .append(vec![Entry::incident(&first).unwrap()])
            .await
            .unwrap();
        drop(journal);
        let path = dir.path().join(JOURNAL);
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"this line is damaged\n").unwrap();
        let torn = Entry::incident(&second).unwrap().line;
        file.write_all(&torn.as_bytes()[..torn.len() / 2]).unwrap();
        drop(file);
        let (journal, loaded) = Journal::open(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].incident.id, first.incident.id);
        // Appends after the cut land on a clean line.
        journal
            .append(vec![Entry::incident(&second).unwrap()])
            .await
            .unwrap();
        drop(journal);
        let (_, loaded) = Journal::open(dir.path()).unwrap();
        assert_eq!(loaded.len(), 2);
    }

    #[actix_web::test]
    async fn compaction_keeps_exactly_the_live_incidents() {
        let dir = tempfile::tempdir().unwrap();
        let slack = 10;
        let (journal, _) = Journal::open_with(dir.path(), slack).unwrap();
        let mut kept = tracked("api");
        let dropped = tracked("db");
        journal
            .append(vec![Entry::incident(&dropped).unwrap()])
            .await
            .unwrap();
        journal
            .append(vec![Entry::pruned(dropped.incident.id, 2).unwrap()])
            .await
            .unwrap();
        for revision in 1..=(slack as u64 * 3) {
            kept.incident.revision = revision;
            kept.incident.count = revision;
            journal
                .append(vec![Entry::incident(&kept).unwrap()])
                .await
                .unwrap();
        }
        drop(journal);
        let journal_lines = count_lines(&dir.path().join(JOURNAL)).unwrap();
        assert!(journal_lines <= slack, "{journal_lines} lines");
        assert!(dir.path().join(SNAPSHOT).exists());
        let (_, loaded) = Journal::open(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].incident.count, slack as u64 * 3);
    }
}
