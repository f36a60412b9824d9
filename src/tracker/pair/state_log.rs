//! `STATE_FILE`: an append-only log of the pair's records, so that a change costs one line
//! and a restarted tracker knows everything it knew, even while its twin is away. Read once at
//! start (a damaged line is reported with its number and skipped; the rest loads), then
//! appended to in batches by a thread of its own, and now and then compacted: a snapshot of
//! every record is written beside it and renamed over it. The log's first line names its
//! epoch, a random number that tells the twin whether this log is the one it has been
//! following.

use super::log::Log;
use super::tables::{Mark, Tables};
use crate::tracker::pair::records::Record;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

const HEADER: &str = "p2p-pair-state 1";
/// How long the appender waits after a failed write before the next try.
const RETRY: Duration = Duration::from_secs(1);
/// The most records one append carries.
const BATCH_RECORDS: usize = 4096;
/// The log is compacted once past twice its last snapshot plus this.
const SLACK: u64 = 1 << 20;

/// The open state log.
pub struct StateLog {
    path: PathBuf,
    file: File,
    epoch: String,
    /// Bytes in the file now, and in its last snapshot.
    bytes: u64,
    snapshot_bytes: u64,
    /// The last sequence number written, and the twin mark last written.
    written: u64,
    mark_written: Option<Mark>,
}

/// The largest state file read at start: 16 MiB of registrations, their tombstones and a
/// log grown to twice its snapshot stay well below it.
const MAX_FILE: u64 = 256 << 20;

/// Opens the log readable and writable by its owner only: it holds the sessions' tokens.
fn open_private(options: &mut OpenOptions, path: &Path) -> io::Result<File> {
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.is_file() {
            file.set_permissions(fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

/// A fresh epoch: 16 hex digits from `/dev/urandom`.
fn new_epoch() -> String {
    format!("{:016x}", crate::rng::random_u64())
}

/// A line of the log that is not a record.
enum Note {
    Record,
    Mark(Mark),
}

/// Reads one line of the log into `tables`.
fn load_line(line: &[u8], tables: &Tables) -> Result<Note, String> {
    let text = std::str::from_utf8(line).map_err(|_| "not UTF-8".to_string())?;
    let (first, rest) = text.split_once(' ').ok_or("too short")?;
    match first {
        "mark" => {
            let words: Vec<&str> = rest.split(' ').collect();
            let [origin, epoch, seq] = words.as_slice() else {
                return Err("bad mark".into());
            };
            let seq = seq.parse().map_err(|_| "bad mark")?;
            Ok(Note::Mark(Mark {
                origin: origin.to_string(),
                epoch: epoch.to_string(),
                seq,
            }))
        }
        _ => {
            let seq: u64 = first.parse().map_err(|_| "bad sequence number")?;
            tables.load(Record::parse(rest)?, seq)?;
            Ok(Note::Record)
        }
    }
}

impl StateLog {
    /// Loads the log at `path` into `tables` and opens it for appending. A log that cannot be
    /// read or written is an error; damaged lines are reported on stderr and skipped.
    pub fn open(path: &Path, tables: &Tables) -> io::Result<StateLog> {
        // Writable first, so that a file that cannot be used is one error and nothing else.
        let file = open_private(OpenOptions::new().create(true).append(true), path)?;
        let meta = file.metadata()?;
        if !meta.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        if meta.len() > MAX_FILE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("over {MAX_FILE} bytes: not a state log this tracker wrote"),
            ));
        }
        let bytes = fs::read(path)?;
        let mut damaged = bytes.last().is_some_and(|&b| b != b'\n');
        let mut lines = bytes.split(|&b| b == b'\n');
        let header = lines.next().unwrap_or_default();
        let epoch = match std::str::from_utf8(header)
            .ok()
            .and_then(|h| h.strip_prefix(HEADER))
            .and_then(|e| e.strip_prefix(' '))
        {
            Some(e) if e.len() == 16 && e.bytes().all(|b| b.is_ascii_hexdigit()) => e.to_string(),
            _ => {
                if !bytes.is_empty() {
                    eprintln!(
                        "tracker: {} line 1: not a state log header; starting a new log",
                        path.display()
                    );
                    damaged = true;
                }
                new_epoch()
            }
        };
        for (i, line) in lines.enumerate() {
            if line.is_empty() {
                continue;
            }
            match load_line(line, tables) {
                Ok(Note::Mark(mark)) => tables.set_mark(mark),
                Ok(Note::Record) => {}
                Err(why) => {
                    eprintln!("tracker: {} line {}: {why}; skipped", path.display(), i + 2);
                    damaged = true;
                }
            }
        }
        if damaged {
            // What the lost lines held may have come from the twin: have it all sent again.
            tables.clear_mark();
        }
        let mut log = StateLog {
            path: path.to_path_buf(),
            file,
            epoch,
            bytes: bytes.len() as u64,
            snapshot_bytes: bytes.len() as u64,
            written: tables.size().1,
            mark_written: tables.mark(),
        };
        if damaged || bytes.is_empty() {
            // Start clean: the damage is reported once, and appends start on a fresh line.
            log.compact(tables, 0)?;
        }
        tables.set_durable(log.written);
        Ok(log)
    }

    pub fn epoch(&self) -> &str {
        &self.epoch
    }

    /// Writes a snapshot of every record beside the log and renames it over the log.
    fn compact(&mut self, tables: &Tables, acked: u64) -> io::Result<()> {
        let (records, seq, mark) = tables.compact(acked);
        let mut text = format!("{HEADER} {}\n", self.epoch);
        for (s, r) in &records {
            text.push_str(&format!("{s} {r}\n"));
        }
        if let Some(m) = &mark {
            text.push_str(&format!("mark {} {} {}\n", m.origin, m.epoch, m.seq));
        }
        crate::atomic_file::write(&self.path, &text)?;
        self.file = open_private(OpenOptions::new().append(true), &self.path)?;
        self.bytes = text.len() as u64;
        self.snapshot_bytes = self.bytes;
        self.written = seq;
        self.mark_written = mark;
        Ok(())
    }

    /// Appends what changed since the last write.
    fn append(&mut self, tables: &Tables) -> io::Result<()> {
        let (records, mark, now) = tables.tail(self.written, BATCH_RECORDS);
        let complete = records.len() < BATCH_RECORDS;
        let mut text = String::new();
        for (s, r) in &records {
            text.push_str(&format!("{s} {r}\n"));
        }
        let new_mark = (complete && mark != self.mark_written)
            .then_some(mark)
            .flatten();
        if let Some(m) = &new_mark {
            text.push_str(&format!("mark {} {} {}\n", m.origin, m.epoch, m.seq));
        }
        if !text.is_empty() {
            self.file.write_all(text.as_bytes())?;
            self.file.flush()?;
            self.bytes += text.len() as u64;
        }
        // Whole: every change up to `now` is in the file (a number whose record changed again
        // since is no record's any more).
        match records.last() {
            Some((s, _)) if !complete => self.written = *s,
            _ => self.written = now,
        }
        if new_mark.is_some() {
            self.mark_written = new_mark;
        }
        Ok(())
    }

    /// Appends changes as they come, compacting when the log has grown, on a thread of its
    /// own. `acked` is how far the twin has acknowledged this tracker's stream (for which
    /// tombstones may go).
    pub fn spawn_appender(
        mut self,
        tables: Arc<Tables>,
        acked: Arc<AtomicU64>,
        log: Log,
    ) -> io::Result<()> {
        thread::Builder::new()
            .name("tracker-state".into())
            .spawn(move || {
                let mut failing = false;
                loop {
                    tables.wait_change(self.written, Duration::from_secs(1));
                    let mut outcome = self.append(&tables);
                    if outcome.is_ok() && self.bytes > 2 * self.snapshot_bytes + SLACK {
                        outcome = self.compact(&tables, acked.load(Ordering::Relaxed));
                    }
                    if outcome.is_ok() {
                        tables.set_durable(self.written);
                    }
                    match outcome {
                        Err(e) if !failing => {
                            let line = format!("cannot write {}: {e}", self.path.display());
                            eprintln!("tracker: {line}; will retry");
                            log.say(line);
                            failing = true;
                        }
                        Ok(()) if failing => {
                            log.say(format!("writing {} again", self.path.display()));
                            failing = false;
                        }
                        _ => {}
                    }
                    if failing {
                        thread::sleep(RETRY);
                    }
                }
            })?;
        Ok(())
    }
}

#[cfg(test)]
#[path = "state_log_tests.rs"]
mod tests;
