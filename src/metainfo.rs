//! `.mtorrent` files: read, write, validate.
//!
//! Five lines: tracker 1 `ip:port`, tracker 2 `ip:port`, the file name, its size in bytes,
//! and the piece hashes (40 hex digits of SHA-1 per 512 KiB piece, concatenated; empty for an
//! empty file). A file's identity at the tracker, its *info hash*, is the SHA-1 of that hash
//! string as written (the ASCII hex digits).

use crate::chunk::{self, FileMeta, Geometry, MTORRENT_PIECE_SIZE, Sha1Hash};
use std::fmt;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metainfo {
    pub trackers: [SocketAddr; 2],
    pub name: String,
    pub size: u64,
    pub piece_hashes: Vec<Sha1Hash>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetainfoError {
    MissingLine { line: usize, field: &'static str },
    ExtraLines,
    BadTracker { line: usize, value: String },
    BadName(crate::name::NameError),
    BadSize(String),
    HashLength { expected: usize, got: usize },
    NotHex,
}

impl fmt::Display for MetainfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetainfoError::MissingLine { line, field } => {
                write!(f, "line {line} ({field}) is missing")
            }
            MetainfoError::ExtraLines => write!(f, "more than 5 lines"),
            MetainfoError::BadTracker { line, value } => {
                write!(f, "line {line}: {value:?} is not a tracker ip:port")
            }
            MetainfoError::BadName(e) => write!(f, "line 3: {e}"),
            MetainfoError::BadSize(v) => write!(f, "line 4: {v:?} is not a size in bytes"),
            MetainfoError::HashLength { expected, got } => write!(
                f,
                "line 5: {got} hex digits of piece hashes, expected {expected} (40 per 512 KiB piece)"
            ),
            MetainfoError::NotHex => write!(f, "line 5: piece hashes must be hex digits"),
        }
    }
}

impl std::error::Error for MetainfoError {}

impl Metainfo {
    /// Hashes the file at `path` in 512 KiB pieces.
    pub fn of_file(path: &Path, name: &str, trackers: [SocketAddr; 2]) -> io::Result<Metainfo> {
        let file = File::open(path)?;
        let meta = crate::hashing::hash_file(name, &file, MTORRENT_PIECE_SIZE)?
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "file too large"))?;
        Ok(Metainfo {
            trackers,
            name: name.to_string(),
            size: meta.geometry.size(),
            piece_hashes: meta.piece_hashes,
        })
    }

    pub fn geometry(&self) -> Geometry {
        // Parsing and hashing both check the size against the limit.
        Geometry::with_piece_size(self.size, MTORRENT_PIECE_SIZE).unwrap_or_else(|| {
            Geometry::with_piece_size(0, MTORRENT_PIECE_SIZE).expect("empty geometry")
        })
    }

    pub fn hash_string(&self) -> String {
        self.piece_hashes.iter().map(|h| chunk::to_hex(h)).collect()
    }

    /// The file's identity at the tracker: SHA-1 of the hash string, in hex.
    pub fn info_hash(&self) -> String {
        chunk::to_hex(&crate::hashing::sha1(self.hash_string().as_bytes()))
    }

    /// The file as the chunk store knows it: keyed by its info hash.
    pub fn file_meta(&self) -> FileMeta {
        FileMeta {
            name: self.info_hash(),
            geometry: self.geometry(),
            piece_hashes: self.piece_hashes.clone(),
        }
    }

    pub fn to_text(&self) -> String {
        format!(
            "{}\n{}\n{}\n{}\n{}\n",
            self.trackers[0],
            self.trackers[1],
            self.name,
            self.size,
            self.hash_string()
        )
    }

    pub fn parse(text: &str) -> Result<Metainfo, MetainfoError> {
        let mut lines: Vec<&str> = text
            .split('\n')
            .map(|l| l.strip_suffix('\r').unwrap_or(l))
            .collect();
        if lines.last() == Some(&"") && text.ends_with('\n') {
            lines.pop();
        }
        const FIELDS: [&str; 5] = [
            "tracker 1",
            "tracker 2",
            "file name",
            "size",
            "piece hashes",
        ];
        if lines.len() > 5 {
            return Err(MetainfoError::ExtraLines);
        }
        let line = |i: usize| {
            lines.get(i).copied().ok_or(MetainfoError::MissingLine {
                line: i + 1,
                field: FIELDS[i],
            })
        };
        let tracker = |i: usize| -> Result<SocketAddr, MetainfoError> {
            let value = line(i)?;
            value.parse().map_err(|_| MetainfoError::BadTracker {
                line: i + 1,
                value: value.to_string(),
            })
        };
        let trackers = [tracker(0)?, tracker(1)?];
        let name = line(2)?.to_string();
        crate::name::validate(&name).map_err(MetainfoError::BadName)?;
        let size_text = line(3)?;
        let size = crate::protocol::parse_u64("size", size_text)
            .ok()
            .filter(|&s| Geometry::with_piece_size(s, MTORRENT_PIECE_SIZE).is_some())
            .ok_or_else(|| MetainfoError::BadSize(size_text.to_string()))?;
        let hex = line(4)?;
        let pieces = size.div_ceil(MTORRENT_PIECE_SIZE) as usize;
        if hex.len() != pieces * 40 {
            return Err(MetainfoError::HashLength {
                expected: pieces * 40,
                got: hex.len(),
            });
        }
        let bytes = chunk::from_hex(hex).ok_or(MetainfoError::NotHex)?;
        let piece_hashes = bytes
            .chunks(20)
            .map(|c| c.try_into().unwrap_or([0; 20]))
            .collect();
        Ok(Metainfo {
            trackers,
            name,
            size,
            piece_hashes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trackers() -> [SocketAddr; 2] {
        [
            "127.0.0.1:7001".parse().unwrap(),
            "127.0.0.1:7002".parse().unwrap(),
        ]
    }

    #[test]
    fn a_metainfo_round_trips_through_text() {
        let m = Metainfo {
            trackers: trackers(),
            name: "a b.txt".into(),
            size: 600 * 1024,
            piece_hashes: vec![crate::hashing::sha1(b"1"), crate::hashing::sha1(b"2")],
        };
        let text = m.to_text();
        assert_eq!(text.lines().count(), 5);
        assert_eq!(text.lines().nth(4).unwrap().len(), 80);
        assert_eq!(Metainfo::parse(&text), Ok(m.clone()));
        assert_eq!(
            m.info_hash(),
            chunk::to_hex(&crate::hashing::sha1(m.hash_string().as_bytes()))
        );
    }

    #[test]
    fn bad_metainfo_files_say_what_is_wrong() {
        let good = "127.0.0.1:1\n127.0.0.1:2\nf\n1\n".to_string() + &"a".repeat(40) + "\n";
        assert!(Metainfo::parse(&good).is_ok());
        let cases = [
            (
                "127.0.0.1:1\n127.0.0.1:2\nf\n",
                MetainfoError::MissingLine {
                    line: 4,
                    field: "size",
                },
            ),
            (
                "127.0.0.1:1\n",
                MetainfoError::MissingLine {
                    line: 2,
                    field: "tracker 2",
                },
            ),
            (
                &*good.replace("f\n1", "a/b\n1"),
                MetainfoError::BadName(crate::name::NameError::Slash),
            ),
            (
                &*good.replace(&"a".repeat(40), &"a".repeat(39)),
                MetainfoError::HashLength {
                    expected: 40,
                    got: 39,
                },
            ),
            (
                &*good.replace(&"a".repeat(40), &"g".repeat(40)),
                MetainfoError::NotHex,
            ),
            (
                &*good.replace("\n1\n", "\n-1\n"),
                MetainfoError::BadSize("-1".into()),
            ),
            (
                &*good.replace("127.0.0.1:2", "nowhere"),
                MetainfoError::BadTracker {
                    line: 2,
                    value: "nowhere".into(),
                },
            ),
            (&*(good.clone() + "extra\n"), MetainfoError::ExtraLines),
        ];
        for (text, want) in cases {
            assert_eq!(Metainfo::parse(text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn an_empty_file_has_no_piece_hashes() {
        let text = "127.0.0.1:1\n127.0.0.1:2\nempty\n0\n\n";
        let m = Metainfo::parse(text).unwrap();
        assert!(m.piece_hashes.is_empty());
        assert_eq!(m.to_text(), text);
    }
}
