//! Save and restore of the client's records across runs (the file format is
//! [`crate::client::state`]'s): a saved share is re-hashed before it is offered again, and a
//! saved download resumes with the pieces on disk that still verify.

use super::records::{key_of, partial_path, same_file};
use super::state::{self, Saved};
use super::view::{Rate, escape, escape_path};
use super::{Core, InGroup, Kind, Record};
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
        same_file(self.saved.mtorrent(), mtorrent)
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
        Saved::GroupShare {
            group, user, path, ..
        } => format!("{user}'s share of {} in {group}", escape_path(path)),
        Saved::GroupDownload {
            group, user, dest, ..
        } => format!("{user}'s download from {group} to {}", escape_path(dest)),
    }
}

impl Core {
    pub(super) fn save(&mut self) {
        let records: Vec<Saved> = self
            .records
            .iter()
            .map(|r| self.saved_of(r))
            .chain(self.lost.iter().map(|l| l.saved.clone()))
            .chain(self.dormant.iter().cloned())
            .collect();
        if let Err(e) = state::save(&self.state_file, &records) {
            eprintln!("client: cannot save {}: {e}", escape_path(&self.state_file));
        }
    }

    /// Record `r` as it is saved.
    pub(super) fn saved_of(&self, r: &Record) -> Saved {
        let unfinished = match (&r.kind, self.store.progress(&r.key)) {
            (Kind::Download { .. }, Some((bits, false))) => Some(bits.to_hex()),
            // A group download set aside (its user logged out) keeps what it had.
            (Kind::Download { done: false, .. }, None) if r.group.is_some() => Some(String::new()),
            _ => None,
        };
        let (mtorrent, path) = (r.mtorrent.clone(), r.path.clone());
        match (&r.group, unfinished) {
            (None, Some(pieces)) => Saved::Download {
                mtorrent,
                dest: path,
                pieces,
            },
            (None, None) => Saved::Share { path, mtorrent },
            (Some(InGroup { user, group }), Some(pieces)) => Saved::GroupDownload {
                user: user.clone(),
                group: group.clone(),
                mtorrent,
                dest: path,
                pieces,
            },
            (Some(InGroup { user, group }), None) if matches!(r.kind, Kind::Share) => {
                Saved::GroupShare {
                    user: user.clone(),
                    group: group.clone(),
                    path,
                    mtorrent,
                }
            }
            // A finished group download is a share of that group's file, from here.
            (Some(InGroup { user, group }), None) => Saved::GroupDownload {
                user: user.clone(),
                group: group.clone(),
                mtorrent,
                dest: path,
                pieces: String::new(),
            },
        }
    }

    /// Brings back one saved record (see [`Core::restore`]); one that cannot come back is
    /// said on stderr and, unless it came back already, listed as failed.
    pub(super) fn bring_back(&mut self, saved: Saved) {
        let why = match self.restore(&saved) {
            Ok(()) => return,
            Err(NotRestored::Twice(why)) => why,
            Err(NotRestored::Failed(why)) => {
                let path = saved.path();
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
        let (mtorrent, path) = (&saved.mtorrent().to_path_buf(), &saved.path().to_path_buf());
        let group = saved.group().map(|(user, group)| InGroup {
            user: user.to_string(),
            group: group.to_string(),
        });
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
        // The same content in another place (a group, an .mtorrent) is another record of
        // the same store entry.
        let same = |r: &&Record| {
            r.group == group && (r.key == key_of(&info) || same_file(&r.mtorrent, mtorrent))
        };
        if let Some(r) = self.records.iter().find(same) {
            return Err(NotRestored::Twice(format!(
                "{} already came back as {}",
                escape_path(mtorrent),
                escape(&r.meta.name)
            )));
        }
        let finished = saved.is_share() || (path.exists() && !partial_path(path).exists());
        if finished {
            let again = Metainfo::of_file(path, &info.name, info.trackers)
                .map_err(|e| failed(format!("{}: {e}", escape_path(path))))?;
            if again.piece_hashes != info.piece_hashes {
                return Err(failed(format!(
                    "{} changed since it was shared",
                    escape_path(path)
                )));
            }
            let key = key_of(&info);
            if !self.records.iter().any(|r| r.key == key) {
                self.store
                    .add_seed(info.file_meta(), path)
                    .map_err(|e| failed(e.to_string()))?;
            }
            let kind = if saved.is_share() {
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
                group,
                stopped: None,
                meta: info,
                key,
                mtorrent: mtorrent.clone(),
                path: path.clone(),
            });
            return Ok(());
        }
        self.start_download(info, mtorrent, path, true, group)
            .map_err(|e| failed(e.to_string()))
    }
}
