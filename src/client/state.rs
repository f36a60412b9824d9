//! What the client remembers across runs, in `<state folder>/client.state`: each shared file
//! (its path and `.mtorrent`) and each download (its `.mtorrent`, destination and verified
//! pieces), and each group record (issue 14: the same with the user and the group it belongs
//! to; its `.mtorrent` is the client's own copy of the piece hashes, in the state folder).
//! Paths are percent-encoded so each is one word. Written whole through a rename. Passwords
//! are never written here.

use crate::name;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    Share {
        path: PathBuf,
        mtorrent: PathBuf,
    },
    Download {
        mtorrent: PathBuf,
        dest: PathBuf,
        pieces: String,
    },
    /// A file `user` uploaded to `group` (`upload_file`).
    GroupShare {
        user: String,
        group: String,
        path: PathBuf,
        mtorrent: PathBuf,
    },
    /// A file `user` fetches (or fetched) from `group` (`download_file`).
    GroupDownload {
        user: String,
        group: String,
        mtorrent: PathBuf,
        dest: PathBuf,
        pieces: String,
    },
}

impl Saved {
    /// The `.mtorrent` it was read from.
    pub fn mtorrent(&self) -> &Path {
        match self {
            Saved::Share { mtorrent, .. }
            | Saved::Download { mtorrent, .. }
            | Saved::GroupShare { mtorrent, .. }
            | Saved::GroupDownload { mtorrent, .. } => mtorrent,
        }
    }

    /// The shared file, or the download's destination.
    pub fn path(&self) -> &Path {
        match self {
            Saved::Share { path, .. } | Saved::GroupShare { path, .. } => path,
            Saved::Download { dest, .. } | Saved::GroupDownload { dest, .. } => dest,
        }
    }

    /// The user and group of a group record.
    pub fn group(&self) -> Option<(&str, &str)> {
        match self {
            Saved::GroupShare { user, group, .. } | Saved::GroupDownload { user, group, .. } => {
                Some((user, group))
            }
            _ => None,
        }
    }

    /// Whether it is a share (of a file that was here whole from the start).
    pub fn is_share(&self) -> bool {
        matches!(self, Saved::Share { .. } | Saved::GroupShare { .. })
    }
}

fn word(p: &Path) -> String {
    name::encode(&p.to_string_lossy())
}

fn path(w: &str) -> Option<PathBuf> {
    name::decode_raw(w)
        .ok()
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// Whether `user` and `group` are a well-formed user id and group name.
fn account(user: &str, group: &str) -> bool {
    crate::account_name::check_id(user).is_ok() && crate::account_name::check_group(group).is_ok()
}

pub fn save(file: &Path, records: &[Saved]) -> io::Result<()> {
    let mut text = String::new();
    for r in records {
        let line = match r {
            Saved::Share { path, mtorrent } => format!("share {} {}\n", word(path), word(mtorrent)),
            Saved::Download {
                mtorrent,
                dest,
                pieces,
            } => {
                format!(
                    "get {} {} {}\n",
                    word(mtorrent),
                    word(dest),
                    crate::chunk::bits_word(pieces)
                )
            }
            Saved::GroupShare {
                user,
                group,
                path,
                mtorrent,
            } => format!("gshare {user} {group} {} {}\n", word(path), word(mtorrent)),
            Saved::GroupDownload {
                user,
                group,
                mtorrent,
                dest,
                pieces,
            } => format!(
                "gget {user} {group} {} {} {}\n",
                word(mtorrent),
                word(dest),
                crate::chunk::bits_word(pieces)
            ),
        };
        text.push_str(&line);
    }
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir)?;
    }
    crate::atomic_file::write(file, text)
}

/// Reads the records back; a line that does not parse is skipped (and reported).
pub fn load(file: &Path) -> io::Result<Vec<Saved>> {
    let text = match fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut records = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split(' ').collect();
        let record = match words.as_slice() {
            ["share", p, m] => path(p)
                .zip(path(m))
                .map(|(path, mtorrent)| Saved::Share { path, mtorrent }),
            ["get", m, d, bits] => path(m)
                .zip(path(d))
                .map(|(mtorrent, dest)| Saved::Download {
                    mtorrent,
                    dest,
                    pieces: crate::chunk::bits_hex(bits).to_string(),
                }),
            ["gshare", u, g, p, m] if account(u, g) => {
                path(p)
                    .zip(path(m))
                    .map(|(path, mtorrent)| Saved::GroupShare {
                        user: u.to_string(),
                        group: g.to_string(),
                        path,
                        mtorrent,
                    })
            }
            ["gget", u, g, m, d, bits] if account(u, g) => {
                path(m)
                    .zip(path(d))
                    .map(|(mtorrent, dest)| Saved::GroupDownload {
                        user: u.to_string(),
                        group: g.to_string(),
                        mtorrent,
                        dest,
                        pieces: crate::chunk::bits_hex(bits).to_string(),
                    })
            }
            _ => None,
        };
        match record {
            Some(r) => records.push(r),
            None => eprintln!(
                "client: ignoring a bad line in {}: {line:?}",
                file.display()
            ),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_spaces_in_paths() {
        let dir = std::env::temp_dir().join(format!("p2p-state-{}", std::process::id()));
        let file = dir.join("client.state");
        let records = vec![
            Saved::Share {
                path: "/tmp/my file.bin".into(),
                mtorrent: "a b.mtorrent".into(),
            },
            Saved::Download {
                mtorrent: "x.mtorrent".into(),
                dest: "out/ü".into(),
                pieces: "0f".into(),
            },
            Saved::Download {
                mtorrent: "y.mtorrent".into(),
                dest: "z".into(),
                pieces: String::new(),
            },
            Saved::GroupShare {
                user: "alice".into(),
                group: "g.1".into(),
                path: "/tmp/n otes.txt".into(),
                mtorrent: "s/groups/ab-3.mtorrent".into(),
            },
            Saved::GroupDownload {
                user: "bob".into(),
                group: "g".into(),
                mtorrent: "s/groups/cd-4.mtorrent".into(),
                dest: "out/x".into(),
                pieces: "80".into(),
            },
        ];
        save(&file, &records).unwrap();
        assert_eq!(load(&file).unwrap(), records);
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn a_group_line_with_a_malformed_user_or_group_is_skipped() {
        let dir = std::env::temp_dir().join(format!("p2p-state-g-{}", std::process::id()));
        let file = dir.join("client.state");
        fs::create_dir_all(&dir).unwrap();
        let text = "gshare .bad g a b\ngget alice a%20b m d -\ngshare alice g a b\n";
        fs::write(&file, text).unwrap();
        assert_eq!(
            load(&file).unwrap(),
            [Saved::GroupShare {
                user: "alice".into(),
                group: "g".into(),
                path: "a".into(),
                mtorrent: "b".into(),
            }]
        );
        let _ = fs::remove_dir_all(dir);
    }
}
