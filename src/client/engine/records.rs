//! The records of what this client shares and downloads: how a file is keyed, where a
//! download is kept until complete, adding a download (fresh or resumed) and reading live
//! progress. Commands and restore both add downloads, so it is done here once.

use super::view::Rate;
use super::{Core, Kind, Record};
use crate::chunk::Bitset;
use crate::metainfo::Metainfo;
use std::io;
use std::path::{Path, PathBuf};

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
        self.records.push(Record {
            kind: Kind::Download {
                rate: Rate::default(),
                seeders: 0,
                done: false,
                told: false,
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

    /// The bytes of `key` verified here.
    pub(super) fn bytes_held(&self, r: &Record) -> u64 {
        let Some((bits, _)) = self.store.progress(&r.key) else {
            return 0;
        };
        let geometry = r.meta.geometry();
        bits.iter_ones()
            .filter_map(|p| geometry.piece_span(p as u32))
            .map(|(_, l)| l as u64)
            .sum()
    }

    /// Keeps a line for the shell to print between prompts (see `Engine::take_events`).
    pub(super) fn event(&mut self, line: String) {
        self.notes.note(&line);
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}
