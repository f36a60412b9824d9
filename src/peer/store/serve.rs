//! The upload side of the store: reading a chunk run for a remote, provided every piece it
//! touches is verified here and the file still looks as it did when it was hashed.

use super::{Local, Status, Store};
use crate::protocol::MAX_GET_CHUNKS;
use std::fmt;
use std::os::unix::fs::FileExt;

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

impl Store {
    /// Reads the chunk run `[first, first + count)` of `name` into `data`, or says why not.
    /// A file that changed under us after it was hashed or moved in (rewritten, truncated,
    /// replaced, deleted) is given up rather than served.
    pub fn read_chunks(
        &self,
        name: &str,
        first: u64,
        count: u64,
        data: &mut Vec<u8>,
    ) -> Result<(), Refusal> {
        let (file, offset, len, check) = {
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
            (local.file.clone(), offset, len, local.stamp_to_check())
        };
        data.resize(len, 0);
        let read = file.read_exact_at(data, offset);
        // Checked after the read: a change made before or during it shows.
        let intact = check.is_none_or(|(path, stamp)| stamp.holds_for(&path));
        if read.is_err() || !intact {
            self.give_up(name, &"it changed or vanished on disk since it was hashed");
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
