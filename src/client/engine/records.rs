//! The records of what this client shares and downloads: how a file is keyed, where a
//! download is kept until complete, adding a download (fresh or resumed) and reading live
//! progress. Commands and restore both add downloads, so it is done here once.

use super::{Core, Kind, Record};
use crate::chunk::Bitset;
use crate::metainfo::Metainfo;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Instant;

pub(super) fn key_of(meta: &Metainfo) -> String {
    meta.info_hash()
}

/// Where a download to `dest` is written until it is complete: beside it, hidden.
pub(super) fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.p2p-partial"))
}

impl Core {
    /// Adds a download of `info` to `dest` (`resume`: keep the pieces on disk that still
    /// verify) and registers it with the tracker.
    pub(super) fn start_download(
        &mut self,
        info: Metainfo,
        mtorrent: &Path,
        dest: &Path,
        resume: bool,
    ) -> io::Result<()> {
        let key = key_of(&info);
        let partial = partial_path(dest);
        self.store
            .add_download_to(info.file_meta(), &info.name, &partial, dest, resume)?;
        let had = self
            .store
            .progress(&key)
            .map_or(0, |(bits, _)| bits.count());
        self.records.push(Record {
            kind: Kind::Download {
                started: Instant::now(),
                had,
                done: false,
            },
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: dest.into(),
        });
        self.register(&key);
        Ok(())
    }

    /// Verified pieces of `key` and whether it is complete; `None` once it was given up.
    pub(super) fn live_progress(&self, key: &str) -> Option<(Bitset, bool)> {
        self.store.progress(key).filter(|_| !self.store.failed(key))
    }
}
