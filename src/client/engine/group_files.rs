//! A group's files (issue 14): `upload_file` (hash here, send the tracker only the piece
//! hashes), `list_files`, `download_file` (the piece hashes from the tracker, checked against
//! the info hash, then a download like `get`'s) and `stop_share`. A group record's piece
//! hashes are kept as a `.mtorrent` in the state folder (`groups/<info-hash>-<size>.mtorrent`),
//! so a restarted client reads them back as any other.

use super::account::{account, said};
use super::commands::{destination, shareable_name};
use super::records::key_of;
use super::view::{self, escape, escape_path};
use super::{Answer, Core, InGroup, Kind, Record};
use crate::chunk::Sha1Hash;
use crate::link::{LinkError, number};
use crate::metainfo::Metainfo;
use crate::protocol::Ask;
use crate::protocol::account::{MAX_GROUP_FILE, pieces_of};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// The most piece hashes one `FILE_HASHES` answer carries.
const HASHES_PER_PAGE: u64 = 65_536;

/// One file of a group as `list_files` shows it: one content, by everyone sharing it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct GroupFile {
    pub(super) name: String,
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) seeders: usize,
    pub(super) users: Vec<String>,
}

impl GroupFile {
    /// Its id: the first 8 hex digits of its info hash.
    fn id(&self) -> &str {
        self.key.get(..8).unwrap_or(&self.key)
    }
}

/// A `LIST_FILES` answer's lines (`<info-hash> <size> <name> <user> <seeders>`, one per
/// share), as one entry per file, sorted by name then id; sharers sorted.
pub(super) fn group_files(lines: &[String]) -> Vec<GroupFile> {
    let mut files: BTreeMap<(String, String, u64), (usize, Vec<String>)> = BTreeMap::new();
    for l in lines {
        let w: Vec<&str> = l.split(' ').collect();
        let [key, size, name, user, seeders] = w.as_slice() else {
            continue;
        };
        let (Ok(size), Ok(name)) = (size.parse::<u64>(), crate::name::decode(name)) else {
            continue;
        };
        let entry = files
            .entry((name, key.to_string(), size))
            .or_insert((0, Vec::new()));
        entry.0 = entry.0.max(seeders.parse().unwrap_or(0));
        entry.1.push(user.to_string());
    }
    files
        .into_iter()
        .map(|((name, key, size), (seeders, mut users))| {
            users.sort();
            users.dedup();
            GroupFile {
                name,
                key,
                size,
                seeders,
                users,
            }
        })
        .collect()
}

/// Whether `word` names a file by id: at least 6 hex digits, a prefix of `key`.
fn is_id_of(word: &str, key: &str) -> bool {
    word.len() >= 6
        && word.bytes().all(|b| b.is_ascii_hexdigit())
        && key.starts_with(&word.to_ascii_lowercase())
}

/// The one entry `word` (a name, else an id) names among `items`, or the line to show.
fn pick<'a, T>(
    items: &'a [T],
    word: &str,
    group: &str,
    name_key: impl Fn(&T) -> (&str, &str),
    none: impl Fn() -> String,
) -> Result<&'a T, String> {
    let mut named: Vec<&T> = items.iter().filter(|i| name_key(i).0 == word).collect();
    if named.is_empty() {
        named = items
            .iter()
            .filter(|i| is_id_of(word, name_key(i).1))
            .collect();
    }
    match named.as_slice() {
        [one] => Ok(one),
        [] => Err(none()),
        many => {
            let ids: Vec<&str> = many
                .iter()
                .map(|i| name_key(i).1.get(..8).unwrap_or(""))
                .collect();
            Err(format!(
                "{} files in {group} are named {} (ids {}); name one by its id",
                many.len(),
                escape(word),
                ids.join(", ")
            ))
        }
    }
}

impl Core {
    /// Where the piece hashes of group file `info` are kept.
    fn group_mtorrent(&self, info: &Metainfo) -> PathBuf {
        let file = format!("{}-{}.mtorrent", key_of(info), info.size);
        self.state_dir.join("groups").join(file)
    }

    /// Writes `info` as the `.mtorrent` of a group file; returns its path.
    fn keep_hashes(&self, info: &Metainfo) -> Result<PathBuf, String> {
        let path = self.group_mtorrent(info);
        let write = || {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            crate::atomic_file::write(&path, info.to_text())
        };
        write().map_err(|e| format!("cannot write {}: {e}", escape_path(&path)))?;
        Ok(path)
    }

    pub(super) fn upload_file(&mut self, user: &str, path: &Path, group: String) -> Answer {
        let name = shareable_name(path)?;
        let size = fs::metadata(path).map_or(0, |m| m.len());
        if size > MAX_GROUP_FILE {
            return Err(format!(
                "cannot share {}: a group file is at most {}",
                escape_path(path),
                view::size(MAX_GROUP_FILE)
            ));
        }
        let trackers = self.in_use.pair_for_mtorrent();
        let info = Metainfo::of_file(path, &name, trackers)
            .map_err(|e| format!("cannot read {}: {e}", escape_path(path)))?;
        let key = key_of(&info);
        let here = InGroup {
            user: user.to_string(),
            group: group.clone(),
        };
        if self
            .records
            .iter()
            .any(|r| r.key == key && r.group.as_ref() == Some(&here))
        {
            return Err(format!("{} is already shared in {group}", escape(&name)));
        }
        let mtorrent = self.keep_hashes(&info)?;
        let payload: Vec<u8> = info.piece_hashes.concat();
        let upload = Ask::UploadFile {
            group: group.clone(),
            key: key.clone(),
            size: info.size,
            name: name.clone(),
        };
        self.call_with(&account(upload), &payload)
            .map_err(|e| said(&e))?;
        // The same content shared another way here is already in the store.
        if !self.records.iter().any(|r| r.key == key) {
            self.store
                .add_seed(info.file_meta(), path)
                .map_err(|e| format!("cannot open {}: {e}", escape_path(path)))?;
        }
        let pieces = info.piece_hashes.len();
        self.records.push(Record {
            kind: Kind::Share,
            group: Some(here),
            stopped: None,
            meta: info,
            key: key.clone(),
            mtorrent,
            path: path.into(),
        });
        self.register(&key);
        self.save();
        self.notes
            .note(&format!("upload_file {} to {group}", escape_path(path)));
        Ok(vec![format!(
            "shared {} ({}, {}) in {group}",
            escape(&name),
            view::size(size),
            view::pieces(pieces)
        )])
    }

    /// Tells the trackers that record `at` (a group download just completed) is shared in
    /// its group by its user, as `upload_file` does, so the file stays listed there while
    /// anyone holds it; a refusal goes to the log.
    pub(super) fn share_in_group(&mut self, at: usize) {
        let r = &self.records[at];
        let Some(g) = &r.group else {
            return;
        };
        let upload = Ask::UploadFile {
            group: g.group.clone(),
            key: r.key.clone(),
            size: r.meta.size,
            name: r.meta.name.clone(),
        };
        let (payload, group) = (r.meta.piece_hashes.concat(), g.group.clone());
        let name = escape(&r.meta.name);
        if let Err(e) = self.call_with(&account(upload), &payload) {
            let why = said(&e);
            self.notes
                .note(&format!("could not share {name} in {group}: {why}"));
        }
    }

    pub(super) fn list_files(&mut self, group: String) -> Answer {
        let lines = self.ask_list(Ask::ListFiles {
            group: group.clone(),
        })?;
        let files = group_files(&lines);
        if files.is_empty() {
            return Ok(vec![format!("no files in {group}")]);
        }
        Ok(files
            .iter()
            .map(|f| {
                format!(
                    "{} {} {} seeder{} id {} from {}",
                    escape(&f.name),
                    view::size(f.size),
                    f.seeders,
                    view::plural(f.seeders),
                    f.id(),
                    f.users.join(", ")
                )
            })
            .collect())
    }

    pub(super) fn download_file(
        &mut self,
        user: &str,
        group: String,
        file: &str,
        dest: &Path,
    ) -> Answer {
        let lines = self.ask_list(Ask::ListFiles {
            group: group.clone(),
        })?;
        let files = group_files(&lines);
        let none = || format!("no file {} in {group}", escape(file));
        let f = pick(&files, file, &group, |f| (&f.name, &f.key), none)?;
        let name = escape(&f.name);
        if self.records.iter().any(|r| r.key == f.key) {
            return Err(format!("{name} is already shared or downloading here"));
        }
        let (key, size) = (f.key.clone(), f.size);
        let hashes = self.file_hashes(&group, &key, size)?;
        let info = Metainfo {
            trackers: self.in_use.pair_for_mtorrent(),
            name: f.name.clone(),
            size,
            piece_hashes: hashes,
        };
        if key_of(&info) != key {
            return Err(format!(
                "the piece hashes the trackers gave for {name} do not match its id {}; not downloading it",
                f.id()
            ));
        }
        let dest = destination(dest, &info.name)?;
        let mtorrent = self.keep_hashes(&info)?;
        let here = InGroup {
            user: user.to_string(),
            group: group.clone(),
        };
        self.start_download(info, &mtorrent, &dest, false, Some(here))
            .map_err(|e| format!("cannot download to {}: {e}", escape_path(&dest)))?;
        self.refresh_holders();
        self.save();
        self.notes.note(&format!(
            "download_file {group} {} to {}",
            escape(file),
            escape_path(&dest)
        ));
        Ok(vec![format!(
            "downloading {name} from {group} to {} in the background",
            escape_path(&dest)
        )])
    }

    /// The piece hashes of group file `key`, asked a page at a time.
    fn file_hashes(&mut self, group: &str, key: &str, size: u64) -> Result<Vec<Sha1Hash>, String> {
        let pieces = pieces_of(size);
        let mut hashes: Vec<Sha1Hash> = Vec::new();
        while (hashes.len() as u64) < pieces {
            let from = hashes.len() as u64;
            let ask = Ask::FileHashes {
                group: group.to_string(),
                key: key.to_string(),
                size,
                from,
            };
            let mut page = Vec::new();
            self.call_then(&account(ask), &[], &mut |link, words| {
                let count = number(words, 0)?;
                if count == 0 || count > HASHES_PER_PAGE || from + count > pieces {
                    return Err(LinkError::Garbled(format!("OK {count}")));
                }
                page = vec![0u8; count as usize * 20];
                link.payload(&mut page)?;
                Ok(())
            })
            .map_err(|e| said(&e))?;
            hashes.extend(
                page.chunks_exact(20)
                    .filter_map(|c| Sha1Hash::try_from(c).ok()),
            );
        }
        Ok(hashes)
    }

    pub(super) fn stop_share(&mut self, user: &str, group: String, file: &str) -> Answer {
        let here = InGroup {
            user: user.to_string(),
            group: group.clone(),
        };
        let mine: Vec<(String, String)> = self
            .records
            .iter()
            .filter(|r| r.group.as_ref() == Some(&here))
            .map(|r| (r.meta.name.clone(), r.key.clone()))
            .collect();
        let none = || format!("you share no file {} in {group}", escape(file));
        let (_, key) = pick(&mine, file, &group, |(n, k)| (n, k), none)?.clone();
        let Some(at) = self
            .records
            .iter()
            .position(|r| r.key == key && r.group.as_ref() == Some(&here))
        else {
            return Err(none());
        };
        let size = self.records[at].meta.size;
        let stop = Ask::StopShare {
            group: group.clone(),
            key,
            size,
        };
        match self.call(&account(stop)) {
            Ok(_) => {}
            // No longer a member, or the group is gone: there is nothing to stop there, and
            // the record goes all the same.
            Err(LinkError::Refused(r))
                if r.starts_with("not_member") || r.starts_with("no_group") => {}
            Err(e) => return Err(said(&e)),
        }
        let (r, unfinished) = self.drop_record(at, true);
        self.save();
        let name = escape(&r.meta.name);
        self.notes.note(&format!("stop_share {group} {name}"));
        if unfinished {
            return Ok(vec![format!(
                "cancelled {name} from {group} (its partial data is deleted)"
            )]);
        }
        Ok(vec![format!(
            "stopped sharing {name} in {group} (the file stays at {})",
            escape_path(&r.path)
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(key: char, size: u64, name: &str, user: &str, seeders: usize) -> String {
        let key: String = std::iter::repeat_n(key, 40).collect();
        format!("{key} {size} {name} {user} {seeders}")
    }

    #[test]
    fn a_file_shared_by_two_is_one_entry_and_names_pick_or_ask_for_an_id() {
        let lines = [
            line('b', 1234, "notes.txt", "bob", 2),
            line('b', 1234, "notes.txt", "alice", 2),
            line('7', 10, "notes.txt", "carol", 1),
            line('a', 5, "z%20z", "carol", 0),
        ];
        let files = group_files(&lines);
        let shown: Vec<(&str, &str, Vec<String>)> = files
            .iter()
            .map(|f| (f.name.as_str(), f.id(), f.users.clone()))
            .collect();
        assert_eq!(
            shown,
            [
                ("notes.txt", "77777777", vec!["carol".to_string()]),
                ("notes.txt", "bbbbbbbb", vec!["alice".into(), "bob".into()]),
                ("z z", "aaaaaaaa", vec!["carol".to_string()]),
            ]
        );
        fn key(f: &GroupFile) -> (&str, &str) {
            (&f.name, &f.key)
        }
        let none = || "none".to_string();
        assert_eq!(
            pick(&files, "notes.txt", "g", key, none).unwrap_err(),
            "2 files in g are named notes.txt (ids 77777777, bbbbbbbb); name one by its id"
        );
        assert_eq!(pick(&files, "BBBBBB", "g", key, none).unwrap().size, 1234);
        assert_eq!(pick(&files, "z z", "g", key, none).unwrap().size, 5);
        assert_eq!(pick(&files, "bbbbb", "g", key, none).unwrap_err(), "none");
        assert_eq!(pick(&files, "other", "g", key, none).unwrap_err(), "none");
    }
}
