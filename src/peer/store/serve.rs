//! The upload side of the store: reading a chunk run for a remote, provided every piece it
//! touches is verified here and the file still looks as it did when it was hashed.

use super::{Local, Status, Store};
use crate::peer::disk::Stamp;
use crate::protocol::MAX_GET_CHUNKS;
use std::fmt;
use std::fs::File;
#[cfg(test)]
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

const CHANGED: &str = "it changed or vanished on disk since it was hashed";

/// Why a chunk run is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    UnknownFile,
    TooManyChunks,
    BadChunkRange,
    NotHeld,
    /// The file changed or vanished on disk since it was hashed: it is given up.
    ReadFailed,
}

impl fmt::Display for Refusal {
    /// The reason word of the `ERR` reply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::UnknownFile => "unknown_file",
            Refusal::TooManyChunks => "too_many_chunks",
            Refusal::BadChunkRange => "bad_chunk_range",
            Refusal::NotHeld => "not_held",
            Refusal::ReadFailed => "read_failed",
        })
    }
}

/// A chunk run cleared for sending: which bytes of which open file. The caller sends them
/// (straight from the file to the socket where it can) and reports a run it could not send
/// whole to [`Store::cut_short`].
pub struct ChunkRun {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
    /// For a file in its final place: where it is and how it must still look there.
    check: Option<(PathBuf, Stamp)>,
}

impl ChunkRun {
    fn intact(&self) -> bool {
        self.check
            .as_ref()
            .is_none_or(|(path, stamp)| stamp.holds_for(path))
    }
}

impl Store {
    /// Clears the chunk run `[first, first + count)` of `name` for sending, or says why not.
    /// A file that changed under us after it was hashed or moved in (rewritten, truncated,
    /// replaced, deleted) is given up rather than served.
    pub fn chunk_run(&self, name: &str, first: u64, count: u64) -> Result<ChunkRun, Refusal> {
        let run = {
            let inner = self.lock();
            let local = inner.files.get(name).ok_or(Refusal::UnknownFile)?;
            if matches!(
                local.status,
                Status::Withdrawn | Status::Failed | Status::Lost
            ) {
                return Err(Refusal::UnknownFile);
            }
            if count > MAX_GET_CHUNKS {
                return Err(Refusal::TooManyChunks);
            }
            let geometry = local.meta.geometry;
            let (offset, len) = geometry
                .chunk_run_span(first, count)
                .ok_or(Refusal::BadChunkRange)?;
            if !geometry
                .pieces_of_chunk_run(first, count)
                .all(|p| local.have.get(p as usize))
            {
                return Err(Refusal::NotHeld);
            }
            ChunkRun {
                file: local.file.clone(),
                offset,
                len: len as u64,
                check: local.stamp_to_check(),
            }
        };
        if !run.intact() {
            self.give_up(name, &CHANGED);
            return Err(Refusal::ReadFailed);
        }
        Ok(run)
    }

    /// A cleared run could not be sent whole: the file ended early (so it changed since it
    /// was hashed) or could not be read; it is given up. (A change that leaves the size
    /// alone shows at the next request's check, and in the receiver's SHA-1 check of the
    /// bytes already sent.)
    pub fn cut_short(&self, name: &str) {
        self.give_up(name, &CHANGED);
    }

    /// Reads the chunk run `[first, first + count)` of `name` into `data`, or says why not
    /// (see [`Store::chunk_run`]): what a downloader would receive, for the tests.
    #[cfg(test)]
    pub fn read_chunks(
        &self,
        name: &str,
        first: u64,
        count: u64,
        data: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        let run = self.chunk_run(name, first, count)?;
        data.resize(run.len as usize, 0);
        // Checked after the read too: a change made before or during it shows.
        if run.file.read_exact_at(data, run.offset).is_err() || !run.intact() {
            self.give_up(name, &CHANGED);
            return Err(Refusal::ReadFailed);
        }
        Ok(())
    }

    /// Whether a complete file we serve still looks as it did when it was hashed or moved
    /// in (size, modification time, inode): a seed rewritten, truncated, replaced or deleted
    /// under us must not be served.
    pub fn still_intact(&self, name: &str) -> bool {
        let expected = self.lock().files.get(name).and_then(Local::stamp_to_check);
        expected.is_none_or(|(path, stamp)| stamp.holds_for(&path))
    }
}
