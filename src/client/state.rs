//! What the client remembers across runs, in `<state folder>/client.state`: each shared file
//! (its path and `.mtorrent`) and each download (its `.mtorrent`, destination and verified
//! pieces). Paths are percent-encoded so each is one word. Written whole through a rename.

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
        ];
        save(&file, &records).unwrap();
        assert_eq!(load(&file).unwrap(), records);
        let _ = fs::remove_dir_all(dir);
    }
}
