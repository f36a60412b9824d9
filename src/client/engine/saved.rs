//! Save and restore of the client's records across runs (the file format is
//! [`crate::client::state`]'s): a saved share is re-hashed before it is offered again, and a
//! saved download resumes with the pieces on disk that still verify.

use super::records::{key_of, partial_path};
use super::state::{self, Saved};
use super::view::{Rate, escape, escape_path};
use super::{Core, Kind, Record};
use crate::metainfo::Metainfo;
use std::fs;

/// A saved record in words, for a line about it: `the share of a.txt (a.mtorrent)`.
pub(super) fn describe(saved: &Saved) -> String {
    match saved {
        Saved::Share { path, mtorrent } => format!(
            "the share of {} ({})",
            escape_path(path),
            escape_path(mtorrent)
        ),
        Saved::Download { mtorrent, dest, .. } => format!(
            "the download of {} to {}",
            escape_path(mtorrent),
            escape_path(dest)
        ),
    }
}

impl Core {
    pub(super) fn save(&mut self) {
        let records: Vec<Saved> = self
            .records
            .iter()
            .map(|r| match (&r.kind, self.store.progress(&r.key)) {
                (Kind::Download { .. }, Some((bits, false))) => Saved::Download {
                    mtorrent: r.mtorrent.clone(),
                    dest: r.path.clone(),
                    pieces: bits.to_hex(),
                },
                _ => Saved::Share {
                    path: r.path.clone(),
                    mtorrent: r.mtorrent.clone(),
                },
            })
            .collect();
        if let Err(e) = state::save(&self.state_file, &records) {
            eprintln!("client: cannot save {}: {e}", escape_path(&self.state_file));
        }
    }

    /// Brings back one saved record: a share is re-hashed against its `.mtorrent`; a
    /// download resumes, keeping the pieces on disk that still verify.
    pub(super) fn restore(&mut self, saved: &Saved) -> Result<(), String> {
        let (mtorrent, path) = match saved {
            Saved::Share { path, mtorrent } => (mtorrent, path),
            Saved::Download { mtorrent, dest, .. } => (mtorrent, dest),
        };
        let text =
            fs::read_to_string(mtorrent).map_err(|e| format!("{}: {e}", escape_path(mtorrent)))?;
        let info = Metainfo::parse(&text)
            .map_err(|e| format!("{}: {}", escape_path(mtorrent), escape(&e.to_string())))?;
        // A state file written before shares refused to overwrite a .mtorrent can name one
        // file, or one .mtorrent, twice: the first line wins.
        let same = |r: &&Record| {
            r.key == key_of(&info)
                || fs::canonicalize(&r.mtorrent).ok() == fs::canonicalize(mtorrent).ok()
        };
        if let Some(r) = self.records.iter().find(same) {
            return Err(format!(
                "{} already came back as {}",
                escape_path(mtorrent),
                escape(&r.meta.name)
            ));
        }
        let finished =
            matches!(saved, Saved::Share { .. }) || (path.exists() && !partial_path(path).exists());
        if finished {
            let again = Metainfo::of_file(path, &info.name, info.trackers)
                .map_err(|e| format!("{}: {e}", escape_path(path)))?;
            if again.piece_hashes != info.piece_hashes {
                return Err(format!("{} changed since it was shared", escape_path(path)));
            }
            self.store
                .add_seed(info.file_meta(), path)
                .map_err(|e| e.to_string())?;
            let key = key_of(&info);
            let kind = if matches!(saved, Saved::Share { .. }) {
                Kind::Share
            } else {
                Kind::Download {
                    rate: Rate::default(),
                    seeders: 0,
                    done: true,
                    told: false,
                    alone: Default::default(),
                }
            };
            self.records.push(Record {
                kind,
                meta: info,
                key,
                mtorrent: mtorrent.clone(),
                path: path.clone(),
            });
            return Ok(());
        }
        self.start_download(info, mtorrent, path, true)
            .map_err(|e| e.to_string())
    }
}
