//! Refuse to start on a SQLite write-ahead log that would silently lose committed transactions.
//!
//! With `journal_mode=WAL`, the first connection to open a database rebuilds its view of the
//! `-wal` file by reading frames from the start and stops at the first frame that is not valid:
//! salts that differ from the WAL header's, or a cumulative checksum that does not match.
//! Everything after that frame is ignored without an error, and the next write transaction
//! overwrites it, so it is gone for good. After a crash mid-append that is exactly right (the
//! unfinished transaction was never acknowledged). After a damaged byte in the middle of the log
//! it silently drops every later committed transaction: we saw 2,000 of 2,500 acknowledged
//! records come back. [`check`] runs before a role opens its database and turns that case into
//! an error, so the role refuses to start while the log can still be salvaged.
//!
//! # The format (<https://www.sqlite.org/fileformat2.html#walformat>)
//!
//! A 32-byte header of big-endian u32s: magic (0x377f0682 or 0x377f0683), format version
//! (3007000), page size, checkpoint sequence, salt-1, salt-2, checksum-1, checksum-2; then frames
//! of a 24-byte header (page number, database size in pages after a commit — non-zero only on
//! the last frame of a transaction, the "commit frame" — salt-1, salt-2, checksum-1, checksum-2)
//! and one page. The checksum reads its input as pairs of u32s `x0, x1` and runs
//! `s0 += x0 + s1; s1 += x1 + s0` (wrapping); the u32s are big-endian when the magic's low bit
//! is set (0x377f0683) and little-endian otherwise. SQLite writes the magic matching the
//! machine's byte order, so x86 and arm64 logs are 0x377f0682. The header's checksum covers its
//! first 24 bytes; each frame's continues from the previous one (from the header's for frame 1)
//! over the frame header's first 8 bytes and the page. A frame is valid when its salts equal the
//! header's, its page number is not 0 and its checksum matches; a header is valid with a known
//! magic, version 3007000, a power-of-two page size from 512 to 65536 and a matching checksum.
//! With an invalid header SQLite ignores the whole log.
//!
//! # What counts as damage, and why
//!
//! Let *late commits* be the commit frames at or after the first invalid frame (the first
//! invalid frame included, when it is itself a commit frame) whose salts equal the header's.
//! The log is damaged when there are **two or more** late commits; [`WalReport::dropped_commits`]
//! is then their number, otherwise 0.
//!
//! - Frames with other salts never count: after a checkpoint SQLite restarts the log from the
//!   start with new salts (salt-1 incremented, salt-2 random) and leaves the older, longer log's
//!   frames behind the new ones. Those were checkpointed into the database already.
//! - One late commit is a torn tail, not damage. Roles run `synchronous=FULL`: a commit is
//!   acknowledged only after its frames are fsynced, and the next transaction's frames are
//!   written after that. So at a crash only the last transaction can be partly on disk, in any
//!   order — its commit frame may have landed while an earlier frame of it did not, which puts
//!   the only late commit behind the first invalid frame. That transaction was never
//!   acknowledged, and losing it is what SQLite promises.
//! - Two or more late commits mean a transaction that had been fsynced (it was followed by
//!   another one) is behind the first invalid frame: an acknowledged record would be lost. The
//!   final late commit is counted too, since SQLite drops it as well.
//!
//! Limits, both on the safe side of what SQLite guarantees: damage inside the last transaction
//! looks exactly like a torn write and passes. Under `synchronous=NORMAL` a power cut may tear
//! several unsynced transactions, which this reports as damage; they were acknowledged, so
//! refusing to start is still the honest answer. A header SQLite cannot use is damage by the same
//! rule, counting every frame with the header's salts, because SQLite then ignores all of them;
//! a header so broken that the frames cannot be found is an error unless the file is all zeros.
//! Only frames' salts are compared after the first invalid frame, not their checksums: the chain
//! cannot be followed past a broken link.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};

const HEADER_BYTES: usize = 32;
const FRAME_HEADER_BYTES: usize = 24;
/// Little-endian checksums; the low bit set (`MAGIC_BIG`) selects big-endian ones.
const MAGIC_LITTLE: u32 = 0x377f_0682;
const MAGIC_BIG: u32 = 0x377f_0683;
const FORMAT_VERSION: u32 = 3_007_000;
/// What to do about it: the damaged frames are overwritten by the first write after SQLite opens
/// the database, so whatever salvage or restore follows needs the file as it is now.
const REMEDY: &str = "copy it aside before anything opens the database";

/// What the WAL beside a database holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalReport {
    /// Frames SQLite would read before the first invalid one (0 when the header is invalid).
    pub valid_frames: u64,
    /// Commit frames among those: the transactions SQLite would replay.
    pub valid_commits: u64,
    /// Committed transactions SQLite would drop: commit frames at or after the first invalid
    /// frame whose salts match the header, when there are at least two of them (a single one is
    /// the torn last transaction; see the module doc). 0 otherwise.
    pub dropped_commits: u64,
    /// 1-based number of the first frame SQLite would not read (a partial last frame counts);
    /// `Some(1)` when the header itself is invalid.
    pub first_invalid_frame: Option<u64>,
    /// Size of the `-wal` file.
    pub bytes: u64,
}

/// Inspect `<db>-wal` (returns Ok(None) if there is no WAL or it is empty/header-only). Reads the
/// file; never modifies it.
pub fn inspect(db_path: &Path) -> anyhow::Result<Option<WalReport>> {
    Ok(scan(&wal_path(db_path))?.map(|scan| scan.report))
}

/// Err with one line naming the WAL file and what is wrong when damage would drop committed
/// transactions (see the module doc for the rule). A torn tail — only the last transaction's
/// frames invalid — is not damage. Call it before the database is opened: a live writer changes
/// the file under the scan, and SQLite overwrites the damaged frames on its first write.
pub fn check(db_path: &Path) -> anyhow::Result<()> {
    let wal = wal_path(db_path);
    let Some(scan) = scan(&wal)? else {
        return Ok(());
    };
    let report = &scan.report;
    if report.dropped_commits == 0 {
        return Ok(());
    }
    let lost = grouped(report.dropped_commits);
    let frames = grouped(scan.frames);
    match scan.header_problem {
        Some(problem) => bail!(
            "{} has a damaged header ({problem}), so SQLite would ignore all {frames} frames: \
             {lost} committed transactions in them would be lost; {REMEDY}",
            wal.display()
        ),
        None => bail!(
            "{} is damaged at frame {} of {frames}: {lost} committed transactions from there on \
             would be lost, because SQLite stops reading the log at the damage; {REMEDY}",
            wal.display(),
            grouped(report.first_invalid_frame.unwrap_or_default())
        ),
    }
}

/// `<db>-wal`, the name SQLite gives the log: the suffix is appended, not an extension.
fn wal_path(db_path: &Path) -> PathBuf {
    let mut name = OsString::from(db_path.as_os_str());
    name.push("-wal");
    PathBuf::from(name)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrder {
    Big,
    Little,
}

/// SQLite's WAL checksum, continued from `sum` over `data` (a multiple of 8 bytes: the 24-byte
/// header prefix, a frame header's first 8 bytes, or a power-of-two page).
fn checksum(order: ByteOrder, mut sum: (u32, u32), data: &[u8]) -> (u32, u32) {
    for pair in data.chunks_exact(8) {
        let x0 = word(order, &pair[..4]);
        let x1 = word(order, &pair[4..]);
        sum.0 = sum.0.wrapping_add(x0).wrapping_add(sum.1);
        sum.1 = sum.1.wrapping_add(x1).wrapping_add(sum.0);
    }
    sum
}

/// The u32 at the start of `bytes` (callers pass at least 4).
fn word(order: ByteOrder, bytes: &[u8]) -> u32 {
    let array = [bytes[0], bytes[1], bytes[2], bytes[3]];
    match order {
        ByteOrder::Big => u32::from_be_bytes(array),
        ByteOrder::Little => u32::from_le_bytes(array),
    }
}

/// Header and frame-header fields are big-endian whatever the checksum order.
fn be32(bytes: &[u8], offset: usize) -> u32 {
    word(ByteOrder::Big, &bytes[offset..])
}

struct Header {
    /// The checksum order, when the whole header is valid; `None` means no frame is valid.
    order: Option<ByteOrder>,
    /// `None` when the page-size field is not one SQLite accepts, so frames cannot be found.
    page_size: Option<usize>,
    salts: [u8; 8],
    checksum: (u32, u32),
    /// Why SQLite would ignore the log, for the error.
    problem: Option<String>,
}

fn parse_header(raw: &[u8; HEADER_BYTES]) -> Header {
    let magic = be32(raw, 0);
    let order = match magic {
        MAGIC_BIG => Some(ByteOrder::Big),
        MAGIC_LITTLE => Some(ByteOrder::Little),
        _ => None,
    };
    let version = be32(raw, 4);
    let page_size = be32(raw, 8);
    let page_size_ok = page_size.is_power_of_two() && (512..=65536).contains(&page_size);
    let stored = (be32(raw, 24), be32(raw, 28));
    let problem = match order {
        None => Some(format!("magic 0x{magic:08x} is not a WAL's")),
        Some(_) if version != FORMAT_VERSION => Some(format!("format version {version}")),
        Some(_) if !page_size_ok => Some(format!("page size {page_size}")),
        Some(order) if checksum(order, (0, 0), &raw[..24]) != stored => {
            Some("its checksum does not match".to_owned())
        }
        Some(_) => None,
    };
    let mut salts = [0; 8];
    salts.copy_from_slice(&raw[16..24]);
    Header {
        order: order.filter(|_| problem.is_none()),
        page_size: page_size_ok.then_some(page_size as usize),
        salts,
        checksum: stored,
        problem,
    }
}

struct Scan {
    report: WalReport,
    /// Frames in the file, a partial last one included.
    frames: u64,
    header_problem: Option<String>,
}

fn scan(wal: &Path) -> anyhow::Result<Option<Scan>> {
    let file = match File::open(wal) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("opening {}", wal.display())),
    };
    let bytes = file
        .metadata()
        .with_context(|| format!("reading {}", wal.display()))?
        .len();
    // SQLite treats a log without a single frame as empty, whatever its header says.
    if bytes <= HEADER_BYTES as u64 {
        return Ok(None);
    }
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut raw = [0; HEADER_BYTES];
    reader
        .read_exact(&mut raw)
        .with_context(|| format!("reading {}", wal.display()))?;
    let header = parse_header(&raw);
    let Some(page_size) = header.page_size else {
        // Frames cannot be told apart without the page size. A file of zeros (space a file
        // system allocated but a crash never filled) holds nothing to lose; anything else may.
        if raw.iter().all(|&byte| byte == 0) && all_zeros(&mut reader, wal)? {
            return Ok(None);
        }
        bail!(
            "{} has an unreadable header ({}), so SQLite would ignore all {} bytes of it and any \
             committed transactions in them; {REMEDY}",
            wal.display(),
            header.problem.as_deref().unwrap_or("page size"),
            grouped(bytes)
        );
    };

    let frame_bytes = FRAME_HEADER_BYTES + page_size;
    let frames = (bytes - HEADER_BYTES as u64).div_ceil(frame_bytes as u64);
    let mut frame = vec![0; frame_bytes];
    let mut running = header.checksum;
    let mut report = WalReport {
        valid_frames: 0,
        valid_commits: 0,
        dropped_commits: 0,
        first_invalid_frame: header.order.is_none().then_some(1),
        bytes,
    };
    let mut late_commits = 0;
    for number in 1.. {
        let got = read_full(&mut reader, &mut frame)
            .with_context(|| format!("reading frame {number} of {}", wal.display()))?;
        if got == 0 {
            break;
        }
        // A partial last frame still tells its salts and commit flag once its header is there.
        let has_header = got >= FRAME_HEADER_BYTES;
        let salts_match = has_header && frame[8..16] == header.salts;
        let is_commit = has_header && be32(&frame, 4) != 0;
        if report.first_invalid_frame.is_none() {
            if let Some(order) = header.order {
                if got == frame_bytes && salts_match && be32(&frame, 0) != 0 {
                    let sum = checksum(order, checksum(order, running, &frame[..8]), &frame[24..]);
                    if sum == (be32(&frame, 16), be32(&frame, 20)) {
                        running = sum;
                        report.valid_frames += 1;
                        report.valid_commits += u64::from(is_commit);
                        continue;
                    }
                }
            }
            report.first_invalid_frame = Some(number);
        }
        late_commits += u64::from(salts_match && is_commit);
    }
    // One late commit is the torn last transaction; see the module doc.
    if late_commits >= 2 {
        report.dropped_commits = late_commits;
    }
    Ok(Some(Scan {
        report,
        frames,
        header_problem: header.problem,
    }))
}

/// Fill `buf` unless the file ends first; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

fn all_zeros(reader: &mut impl Read, wal: &Path) -> anyhow::Result<bool> {
    let mut chunk = vec![0; 1 << 16];
    loop {
        let got =
            read_full(reader, &mut chunk).with_context(|| format!("reading {}", wal.display()))?;
        if got == 0 {
            return Ok(true);
        }
        if chunk[..got].iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
    }
}

/// 2600 → "2,600": the counts in the error are read by people at a console.
fn grouped(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    const COMMITS: u64 = 200;

    /// A copy of a live database and its WAL holding `COMMITS` transactions of one row each,
    /// taken while the connection is still open so the log has not been checkpointed away. The
    /// last row is several pages long, so the last transaction spans several frames.
    fn wal_copy() -> (tempfile::TempDir, PathBuf) {
        wal_copy_after(0)
    }

    /// [`wal_copy`], but first `earlier` transactions are logged and checkpointed, so the log
    /// restarts from its start with new salts and their frames are left behind the new ones.
    fn wal_copy_after(earlier: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live.db");
        let connection = Connection::open(&live).unwrap();
        let mode: String = connection
            .query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        connection
            .pragma_update(None, "wal_autocheckpoint", 0)
            .unwrap();
        // The frames are the same whatever the sync mode; OFF keeps the test fast.
        connection
            .pragma_update(None, "synchronous", "OFF")
            .unwrap();
        // The table goes into the database file and the log starts empty, so the log holds
        // exactly the transactions below.
        connection
            .execute_batch(
                "CREATE TABLE records (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .unwrap();
        assert_eq!(std::fs::metadata(wal_path(&live)).unwrap().len(), 0);
        if earlier > 0 {
            for index in 0..earlier {
                connection
                    .execute(
                        "INSERT INTO records (body) VALUES (?1)",
                        [format!("earlier {index}")],
                    )
                    .unwrap();
            }
            // Everything is copied into the database; the next write restarts the log.
            connection
                .execute_batch("PRAGMA wal_checkpoint(PASSIVE);")
                .unwrap();
        }
        for index in 0..COMMITS {
            let body = if index + 1 == COMMITS {
                "last ".repeat(3000)
            } else {
                format!("record {index}")
            };
            connection
                .execute("INSERT INTO records (body) VALUES (?1)", [body])
                .unwrap();
        }
        let copy = dir.path().join("copy.db");
        std::fs::copy(&live, &copy).unwrap();
        std::fs::copy(wal_path(&live), wal_path(&copy)).unwrap();
        drop(connection);
        (dir, copy)
    }

    /// Rows SQLite itself shows, read from a scratch copy so `db`'s log stays as it is.
    fn rows_sqlite_sees(db: &Path) -> u64 {
        let probe = db.with_extension("probe.db");
        std::fs::copy(db, &probe).unwrap();
        std::fs::copy(wal_path(db), wal_path(&probe)).unwrap();
        let connection = Connection::open(&probe).unwrap();
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM records", [], |row| row.get(0))
            .unwrap();
        u64::try_from(rows).unwrap()
    }

    fn read_wal(db: &Path) -> Vec<u8> {
        std::fs::read(wal_path(db)).unwrap()
    }

    fn write_wal(db: &Path, wal: &[u8]) {
        std::fs::write(wal_path(db), wal).unwrap();
    }

    fn frame_bytes(wal: &[u8]) -> usize {
        FRAME_HEADER_BYTES + be32(wal, 8) as usize
    }

    /// Byte offset of 1-based frame `number`.
    fn frame_offset(wal: &[u8], number: u64) -> usize {
        HEADER_BYTES + (number as usize - 1) * frame_bytes(wal)
    }

    /// 1-based numbers of the commit frames.
    fn commit_frames(wal: &[u8]) -> Vec<u64> {
        let frames = (wal.len() - HEADER_BYTES) / frame_bytes(wal);
        (1..=frames as u64)
            .filter(|&number| be32(wal, frame_offset(wal, number) + 4) != 0)
            .collect()
    }

    /// Flip a byte in the middle of frame `number`'s page.
    fn damage_frame(db: &Path, number: u64) {
        let mut wal = read_wal(db);
        let at = frame_offset(&wal, number) + FRAME_HEADER_BYTES + be32(&wal, 8) as usize / 2;
        wal[at] ^= 0x5a;
        write_wal(db, &wal);
    }

    /// Rewrite the log with the other magic and every checksum recomputed in `order`.
    fn reencode(wal: &mut [u8], order: ByteOrder) {
        let magic = match order {
            ByteOrder::Big => MAGIC_BIG,
            ByteOrder::Little => MAGIC_LITTLE,
        };
        wal[..4].copy_from_slice(&magic.to_be_bytes());
        let mut sum = checksum(order, (0, 0), &wal[..24]);
        wal[24..28].copy_from_slice(&sum.0.to_be_bytes());
        wal[28..32].copy_from_slice(&sum.1.to_be_bytes());
        let frame_bytes = frame_bytes(wal);
        for frame in wal[HEADER_BYTES..].chunks_exact_mut(frame_bytes) {
            sum = checksum(order, checksum(order, sum, &frame[..8]), &frame[24..]);
            frame[16..20].copy_from_slice(&sum.0.to_be_bytes());
            frame[20..24].copy_from_slice(&sum.1.to_be_bytes());
        }
    }

    #[test]
    fn an_intact_wal_passes_and_counts_every_commit() {
        let (_dir, db) = wal_copy();
        let wal = read_wal(&db);
        // SQLite writes the magic of the machine's byte order.
        let native = if cfg!(target_endian = "little") {
            MAGIC_LITTLE
        } else {
            MAGIC_BIG
        };
        assert_eq!(be32(&wal, 0), native);
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(
            report,
            WalReport {
                valid_frames: ((wal.len() - HEADER_BYTES) / frame_bytes(&wal)) as u64,
                valid_commits: COMMITS,
                dropped_commits: 0,
                first_invalid_frame: None,
                bytes: wal.len() as u64,
            }
        );
        check(&db).unwrap();
        assert_eq!(rows_sqlite_sees(&db), COMMITS);
    }

    #[test]
    fn a_damaged_middle_frame_fails_with_exactly_the_commits_sqlite_drops() {
        let (_dir, db) = wal_copy();
        let wal = read_wal(&db);
        let commits = commit_frames(&wal);
        let total = (wal.len() - HEADER_BYTES) / frame_bytes(&wal);
        let damaged = commits[99];
        damage_frame(&db, damaged);

        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.first_invalid_frame, Some(damaged));
        assert_eq!(report.valid_commits, 99);
        assert_eq!(report.dropped_commits, 101);
        let error = check(&db).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "{} is damaged at frame {damaged} of {total}: 101 committed transactions from \
                 there on would be lost, because SQLite stops reading the log at the damage; \
                 {REMEDY}",
                wal_path(&db).display()
            )
        );
        // What the detector counts is what SQLite really drops, without a word.
        assert_eq!(rows_sqlite_sees(&db), COMMITS - report.dropped_commits);
    }

    #[test]
    fn damage_before_the_last_two_commits_is_damage() {
        let (_dir, db) = wal_copy();
        let commits = commit_frames(&read_wal(&db));
        damage_frame(&db, commits[198]);
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.dropped_commits, 2);
        assert!(check(&db).is_err());
        assert_eq!(rows_sqlite_sees(&db), COMMITS - 2);
    }

    #[test]
    fn a_wal_cut_inside_its_last_frame_is_a_torn_tail() {
        let (_dir, db) = wal_copy();
        let mut wal = read_wal(&db);
        let frames = ((wal.len() - HEADER_BYTES) / frame_bytes(&wal)) as u64;
        wal.truncate(wal.len() - frame_bytes(&wal) / 2);
        write_wal(&db, &wal);

        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.first_invalid_frame, Some(frames));
        assert_eq!(report.valid_commits, COMMITS - 1);
        assert_eq!(report.dropped_commits, 0);
        check(&db).unwrap();
        assert_eq!(rows_sqlite_sees(&db), COMMITS - 1);
    }

    #[test]
    fn the_last_transaction_torn_out_of_order_is_a_torn_tail() {
        let (_dir, db) = wal_copy();
        let commits = commit_frames(&read_wal(&db));
        // Its commit frame reached the disk, an earlier frame of it did not.
        let first_of_last = commits[198] + 1;
        assert!(
            commits[199] > first_of_last,
            "the last transaction spans frames"
        );
        damage_frame(&db, first_of_last);

        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.first_invalid_frame, Some(first_of_last));
        assert_eq!(report.dropped_commits, 0);
        check(&db).unwrap();
        assert_eq!(rows_sqlite_sees(&db), COMMITS - 1);
    }

    #[test]
    fn frames_left_from_before_a_log_restart_never_count() {
        let earlier = 400;
        let (_dir, db) = wal_copy_after(earlier);
        let wal = read_wal(&db);
        let commits = commit_frames(&wal);
        // The old, longer log's frames (other salts) follow the new ones.
        assert!(
            commits.len() as u64 > COMMITS,
            "leftover frames are in the file"
        );
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.valid_commits, COMMITS);
        assert_eq!(
            report.first_invalid_frame,
            Some(commits[COMMITS as usize - 1] + 1)
        );
        assert_eq!(report.dropped_commits, 0);
        check(&db).unwrap();
        assert_eq!(rows_sqlite_sees(&db), earlier + COMMITS);

        damage_frame(&db, commits[99]);
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.dropped_commits, 101);
        assert!(check(&db).is_err());
        assert_eq!(rows_sqlite_sees(&db), earlier + COMMITS - 101);
    }

    #[test]
    fn a_damaged_header_loses_every_commit() {
        let (_dir, db) = wal_copy();
        let mut wal = read_wal(&db);
        wal[25] ^= 1;
        write_wal(&db, &wal);

        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.first_invalid_frame, Some(1));
        assert_eq!(report.dropped_commits, COMMITS);
        let error = check(&db).unwrap_err().to_string();
        assert!(error.starts_with(&format!(
            "{} has a damaged header (its checksum does not match)",
            wal_path(&db).display()
        )));
        assert!(error.contains("200 committed transactions"), "{error}");
        assert_eq!(rows_sqlite_sees(&db), 0);
    }

    #[test]
    fn an_unreadable_header_is_an_error_unless_the_file_is_all_zeros() {
        let (_dir, db) = wal_copy();
        let mut wal = read_wal(&db);
        let length = wal.len();
        wal[8..12].copy_from_slice(&1000u32.to_be_bytes());
        write_wal(&db, &wal);
        let error = inspect(&db).unwrap_err().to_string();
        assert!(
            error.contains("unreadable header (page size 1000)"),
            "{error}"
        );
        assert!(check(&db).is_err());

        write_wal(&db, &vec![0; length]);
        assert_eq!(inspect(&db).unwrap(), None);
        check(&db).unwrap();
    }

    #[test]
    fn big_endian_checksums_are_read_too() {
        let (_dir, db) = wal_copy();
        let mut wal = read_wal(&db);
        reencode(&mut wal, ByteOrder::Big);
        write_wal(&db, &wal);
        // SQLite accepts the rewritten log, so the rewrite is a faithful big-endian WAL.
        assert_eq!(rows_sqlite_sees(&db), COMMITS);
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.valid_commits, COMMITS);
        check(&db).unwrap();

        let damaged = commit_frames(&wal)[149];
        damage_frame(&db, damaged);
        let report = inspect(&db).unwrap().unwrap();
        assert_eq!(report.first_invalid_frame, Some(damaged));
        assert_eq!(report.dropped_commits, 51);
        assert!(check(&db).is_err());
        assert_eq!(rows_sqlite_sees(&db), COMMITS - 51);
    }

    #[test]
    fn no_wal_or_a_header_only_wal_is_nothing_to_check() {
        let (_dir, db) = wal_copy();
        let wal = read_wal(&db);
        write_wal(&db, &wal[..HEADER_BYTES]);
        assert_eq!(inspect(&db).unwrap(), None);
        check(&db).unwrap();
        write_wal(&db, &[]);
        assert_eq!(inspect(&db).unwrap(), None);
        std::fs::remove_file(wal_path(&db)).unwrap();
        assert_eq!(inspect(&db).unwrap(), None);
        check(&db).unwrap();
    }

    #[test]
    fn counts_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(812), "812");
        assert_eq!(grouped(2600), "2,600");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
