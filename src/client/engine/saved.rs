//! Save and restore of the client's records across runs (the file format is
//! [`crate::client::state`]'s): a saved share is re-hashed before it is offered again, and a
//! saved download resumes with the pieces on disk that still verify.

use super::records::{key_of, partial_path, same_file};
use super::state::{self, Saved};
use super::view::{Rate, escape, escape_path};
use super::{Core, Kind, Record};
use crate::metainfo::Metainfo;
use std::fs;
use std::path::Path;

/// A saved record that could not come back at the start (its `.mtorrent` or file is gone or
/// changed). It is listed as failed (`[F] name: why`) and kept in the state file, so the
/// next start tries again, until `get` or `share` replaces it or `remove` clears it.
pub(super) struct Lost {
    pub(super) saved: Saved,
    /// The file's name as shown: the shared file's or the destination's.
    pub(super) name: String,
    pub(super) why: String,
}

impl Lost {
    /// Whether it was the record of `mtorrent`.
    pub(super) fn is_of(&self, mtorrent: &Path) -> bool {
        let (Saved::Share { mtorrent: m, .. } | Saved::Download { mtorrent: m, .. }) = &self.saved;
        same_file(m, mtorrent)
    }
}

/// Why a saved record did not come back.
pub(super) enum NotRestored {
    /// The state file names it twice: the first line came back.
    Twice(String),
    /// It cannot come back now.
    Failed(String),
}

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
            .chain(self.lost.iter().map(|l| l.saved.clone()))
            .collect();
        if let Err(e) = state::save(&self.state_file, &records) {
            eprintln!("client: cannot save {}: {e}", escape_path(&self.state_file));
        }
    }

    /// Brings back one saved record (see [`Core::restore`]); one that cannot come back is
    /// said on stderr and, unless it came back already, listed as failed.
    pub(super) fn bring_back(&mut self, saved: Saved) {
        let why = match self.restore(&saved) {
            Ok(()) => return,
            Err(NotRestored::Twice(why)) => why,
            Err(NotRestored::Failed(why)) => {
                let (Saved::Share { path, .. } | Saved::Download { dest: path, .. }) = &saved;
                let name = path
                    .file_name()
                    .map_or_else(|| escape_path(path), |n| escape(&n.to_string_lossy()));
                self.lost.push(Lost {
                    saved: saved.clone(),
                    name,
                    why: format!("not restored: {why}"),
                });
                why
            }
        };
        eprintln!("client: not restoring {}: {why}", describe(&saved));
    }

    /// Brings back one saved record: a share is re-hashed against its `.mtorrent`; a
    /// download resumes, keeping the pieces on disk that still verify.
    fn restore(&mut self, saved: &Saved) -> Result<(), NotRestored> {
        let failed = NotRestored::Failed;
        let (mtorrent, path) = match saved {
            Saved::Share { path, mtorrent } => (mtorrent, path),
            Saved::Download { mtorrent, dest, .. } => (mtorrent, dest),
        };
        let text = fs::read_to_string(mtorrent)
            .map_err(|e| failed(format!("{}: {e}", escape_path(mtorrent))))?;
        let info = Metainfo::parse(&text).map_err(|e| {
            failed(format!(
                "{}: {}",
                escape_path(mtorrent),
                escape(&e.to_string())
            ))
        })?;
        // A state file written before shares refused to overwrite a .mtorrent can name one
        // file, or one .mtorrent, twice: the first line wins.
        let same = |r: &&Record| r.key == key_of(&info) || same_file(&r.mtorrent, mtorrent);
        if let Some(r) = self.records.iter().find(same) {
            return Err(NotRestored::Twice(format!(
                "{} already came back as {}",
                escape_path(mtorrent),
                escape(&r.meta.name)
            )));
        }
        let finished =
            matches!(saved, Saved::Share { .. }) || (path.exists() && !partial_path(path).exists());
        if finished {
            let again = Metainfo::of_file(path, &info.name, info.trackers)
                .map_err(|e| failed(format!("{}: {e}", escape_path(path))))?;
            if again.piece_hashes != info.piece_hashes {
                return Err(failed(format!(
                    "{} changed since it was shared",
                    escape_path(path)
                )));
            }
            self.store
                .add_seed(info.file_meta(), path)
                .map_err(|e| failed(e.to_string()))?;
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
            .map_err(|e| failed(e.to_string()))
    }
}
