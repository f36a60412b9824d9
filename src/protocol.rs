//! Every message of the line protocol, as types: parse a line into a [`Request`], print a
//! request back with `Display`, and read replies. See `docs/PROTOCOL.md` for the reference.
//!
//! Depends on nothing but [`crate::name`] and [`crate::chunk`]: parsing checks the shape of
//! each word (numbers are plain decimal digits within range, names are valid, hashes are 40
//! hex digits); checks against a file's size are for the code that knows the file.

use crate::chunk::PieceIndex;
use crate::name::{self, NameError};
use std::fmt;
use std::net::SocketAddr;

/// The protocol version every `HELLO` names.
pub const VERSION: &str = "p2p/1";
/// The most chunks one `GET` may ask for (512 KiB of data).
pub const MAX_GET_CHUNKS: u64 = 1024;
/// The longest a `WAIT` or `LEAVE` may hold a reply back, in milliseconds.
pub const MAX_WAIT_MS: u64 = 2000;
/// The most piece hashes one `HASHED` carries, or one `HASHES` reply returns.
pub const MAX_HASH_BATCH: u64 = 65_536;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Peer,
    Client,
    Tracker,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Peer => "peer",
            Role::Client => "client",
            Role::Tracker => "tracker",
        }
    }
}

/// An inclusive run of piece indexes, `a-b` on the wire (`a` alone when `a == b`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceRun {
    pub first: PieceIndex,
    pub last: PieceIndex,
}

impl PieceRun {
    pub fn iter(self) -> std::ops::RangeInclusive<PieceIndex> {
        self.first..=self.last
    }
}

/// Collapses sorted, distinct piece indexes into runs.
pub fn runs_of(pieces: &[PieceIndex]) -> Vec<PieceRun> {
    let mut runs: Vec<PieceRun> = Vec::new();
    for &p in pieces {
        match runs.last_mut() {
            Some(r) if r.last.checked_add(1) == Some(p) => r.last = p,
            _ => runs.push(PieceRun { first: p, last: p }),
        }
    }
    runs
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `HELLO p2p/1 <role>`: the first line of every connection.
    Hello { role: Role },
    /// `OFFER <name> <size>`: stage a file to offer at `JOIN` (its hashes follow later).
    Offer { name: String, size: u64 },
    /// `JOIN <listen-port>`: publish the offers so far, get an id and a heartbeat token.
    Join { port: u16 },
    /// `HASHED <name> <first> <count>`, followed by `count` raw piece hashes (20 bytes each):
    /// the hashes of an offered file's pieces `first..first + count`, sent in order as they
    /// are computed (`count` 0 with `first` at the end says the file is hashed).
    Hashed {
        name: String,
        first: u32,
        count: u32,
    },
    /// `BEAT <id> <token>`: a heartbeat for joined peer `id`, on a connection of its own.
    Beat { id: u64, token: u64 },
    /// `FILES`: every file some living peer holds.
    Files,
    /// `HASHES <name> <generation> <from>`: the known piece hashes of a file from piece `from` on,
    /// as a raw block; `generation` names the content (see `FILES`).
    Hashes {
        name: String,
        generation: u64,
        from: u32,
    },
    /// `HOLDERS <name> <generation>`: which living peers hold which pieces of a file.
    Holders { name: String, generation: u64 },
    /// `HAVE <name> [<run> ...]`: these pieces are verified here (no run: an empty file).
    Have { name: String, runs: Vec<PieceRun> },
    /// `DROP <name>`: this peer no longer holds the file and will not fetch it.
    Drop { name: String },
    /// `WAIT <version> <ms>`: reply once the tracker's state is newer than `version`.
    Wait { version: u64, millis: u64 },
    /// `LEAVE`: ask to leave the swarm; the tracker decides.
    Leave,
    /// `PING`: a heartbeat.
    Ping,
    /// `GET <name> <first-chunk> <count>`: chunk data, from a peer.
    Get {
        name: String,
        first: u64,
        count: u64,
    },
    /// `SEED <addr> <info-hash> <name> <size> <bitset>`: the client at `addr` holds these
    /// pieces of a `.mtorrent` file (all of them when seeding). Tracker pairs forward it.
    Seed {
        addr: SocketAddr,
        key: String,
        name: String,
        size: u64,
        bits: String,
    },
    /// `UNSEED <addr> <info-hash>`: the client at `addr` no longer shares that file.
    Unseed { addr: SocketAddr, key: String },
    /// `QUIT <addr>`: the client at `addr` leaves every seeder list.
    Quit { addr: SocketAddr },
    /// `SEEDERS <info-hash>`: who holds which pieces of a file.
    Seeders { key: String },
    /// `STATE`: the whole state, as `SEED` lines (a tracker catching up from its twin).
    State,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    Empty,
    Unknown(String),
    Arity {
        command: &'static str,
        expected: &'static str,
        got: usize,
    },
    BadNumber {
        field: &'static str,
        value: String,
    },
    BadName(NameError),
    BadHash(String),
    BadRun(String),
    BadHello(String),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Empty => write!(f, "empty_line"),
            ProtoError::Unknown(c) => write!(f, "unknown_command {}", clip(c)),
            ProtoError::Arity {
                command,
                expected,
                got,
            } => write!(f, "bad_arguments {command} wants {expected}, got {got}"),
            ProtoError::BadNumber { field, value } => {
                write!(f, "bad_number {field} {}", clip(value))
            }
            ProtoError::BadName(e) => write!(f, "bad_name {e}"),
            ProtoError::BadHash(h) => write!(f, "bad_hash {}", clip(h)),
            ProtoError::BadRun(r) => write!(f, "bad_run {}", clip(r)),
            ProtoError::BadHello(h) => write!(f, "bad_hello {}", clip(h)),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Keeps echoed input short, so an error line never grows with what provoked it.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A plain decimal number: digits only (no sign, no spaces), within `u64`.
pub fn parse_u64(field: &'static str, word: &str) -> Result<u64, ProtoError> {
    let bad = || ProtoError::BadNumber {
        field,
        value: word.to_string(),
    };
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    word.parse().map_err(|_| bad())
}

fn parse_u32(field: &'static str, word: &str) -> Result<u32, ProtoError> {
    let n = parse_u64(field, word)?;
    u32::try_from(n).map_err(|_| ProtoError::BadNumber {
        field,
        value: word.to_string(),
    })
}

fn parse_name(word: &str) -> Result<String, ProtoError> {
    name::decode(word).map_err(ProtoError::BadName)
}

fn parse_run(word: &str) -> Result<PieceRun, ProtoError> {
    let bad = || ProtoError::BadRun(word.to_string());
    let (a, b) = word.split_once('-').unwrap_or((word, word));
    let first = parse_u32("piece", a).map_err(|_| bad())?;
    let last = parse_u32("piece", b).map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    Ok(PieceRun { first, last })
}

impl Request {
    pub fn parse(line: &str) -> Result<Request, ProtoError> {
        let words: Vec<&str> = line.split(' ').collect();
        let (command, args) = match words.split_first() {
            Some((c, a)) if !c.is_empty() => (*c, a),
            _ if line.is_empty() => return Err(ProtoError::Empty),
            _ => return Err(ProtoError::Unknown(line.to_string())),
        };
        let arity = |command: &'static str, expected: &'static str, n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(ProtoError::Arity {
                    command,
                    expected,
                    got: args.len(),
                })
            }
        };
        match command {
            "HELLO" => {
                arity("HELLO", "<version> <role>", 2)?;
                if args[0] != VERSION {
                    return Err(ProtoError::BadHello(args[0].to_string()));
                }
                let role = match args[1] {
                    "peer" => Role::Peer,
                    "client" => Role::Client,
                    "tracker" => Role::Tracker,
                    other => return Err(ProtoError::BadHello(other.to_string())),
                };
                Ok(Request::Hello { role })
            }
            "OFFER" => {
                arity("OFFER", "<name> <size>", 2)?;
                Ok(Request::Offer {
                    name: parse_name(args[0])?,
                    size: parse_u64("size", args[1])?,
                })
            }
            "HASHED" => {
                arity("HASHED", "<name> <first> <count>", 3)?;
                let count = parse_u32("count", args[2])?;
                if u64::from(count) > MAX_HASH_BATCH {
                    return Err(ProtoError::BadNumber {
                        field: "count",
                        value: args[2].to_string(),
                    });
                }
                Ok(Request::Hashed {
                    name: parse_name(args[0])?,
                    first: parse_u32("first", args[1])?,
                    count,
                })
            }
            "BEAT" => {
                arity("BEAT", "<id> <token>", 2)?;
                Ok(Request::Beat {
                    id: parse_u64("id", args[0])?,
                    token: parse_u64("token", args[1])?,
                })
            }
            "JOIN" => {
                arity("JOIN", "<port>", 1)?;
                let port = parse_u64("port", args[0])?;
                let port = u16::try_from(port)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| ProtoError::BadNumber {
                        field: "port",
                        value: args[0].to_string(),
                    })?;
                Ok(Request::Join { port })
            }
            "FILES" => arity("FILES", "nothing", 0).map(|()| Request::Files),
            "HASHES" => {
                arity("HASHES", "<name> <generation> <from>", 3)?;
                Ok(Request::Hashes {
                    name: parse_name(args[0])?,
                    generation: parse_u64("generation", args[1])?,
                    from: parse_u32("from", args[2])?,
                })
            }
            "HOLDERS" => {
                arity("HOLDERS", "<name> <generation>", 2)?;
                Ok(Request::Holders {
                    name: parse_name(args[0])?,
                    generation: parse_u64("generation", args[1])?,
                })
            }
            "HAVE" => {
                if args.is_empty() {
                    return Err(ProtoError::Arity {
                        command: "HAVE",
                        expected: "<name> [<run> ...]",
                        got: 0,
                    });
                }
                let runs = args[1..]
                    .iter()
                    .map(|w| parse_run(w))
                    .collect::<Result<_, _>>()?;
                Ok(Request::Have {
                    name: parse_name(args[0])?,
                    runs,
                })
            }
            "DROP" => {
                arity("DROP", "<name>", 1)?;
                Ok(Request::Drop {
                    name: parse_name(args[0])?,
                })
            }
            "WAIT" => {
                arity("WAIT", "<version> <ms>", 2)?;
                Ok(Request::Wait {
                    version: parse_u64("version", args[0])?,
                    millis: parse_u64("ms", args[1])?.min(MAX_WAIT_MS),
                })
            }
            "LEAVE" => arity("LEAVE", "nothing", 0).map(|()| Request::Leave),
            "PING" => arity("PING", "nothing", 0).map(|()| Request::Ping),
            "GET" => {
                arity("GET", "<name> <first-chunk> <count>", 3)?;
                Ok(Request::Get {
                    name: parse_name(args[0])?,
                    first: parse_u64("chunk", args[1])?,
                    count: parse_u64("count", args[2])?,
                })
            }
            "SEED" => {
                arity("SEED", "<addr> <info-hash> <name> <size> <bitset>", 5)?;
                Ok(Request::Seed {
                    addr: parse_addr(args[0])?,
                    key: parse_key(args[1])?,
                    name: parse_name(args[2])?,
                    size: parse_u64("size", args[3])?,
                    bits: parse_bits(args[4])?,
                })
            }
            "UNSEED" => {
                arity("UNSEED", "<addr> <info-hash>", 2)?;
                Ok(Request::Unseed {
                    addr: parse_addr(args[0])?,
                    key: parse_key(args[1])?,
                })
            }
            "QUIT" => {
                arity("QUIT", "<addr>", 1)?;
                Ok(Request::Quit {
                    addr: parse_addr(args[0])?,
                })
            }
            "SEEDERS" => {
                arity("SEEDERS", "<info-hash>", 1)?;
                Ok(Request::Seeders {
                    key: parse_key(args[0])?,
                })
            }
            "STATE" => arity("STATE", "nothing", 0).map(|()| Request::State),
            other => Err(ProtoError::Unknown(other.to_string())),
        }
    }
}

fn parse_addr(word: &str) -> Result<SocketAddr, ProtoError> {
    word.parse().map_err(|_| ProtoError::BadNumber {
        field: "address",
        value: word.to_string(),
    })
}

/// An info hash: 40 lowercase hex digits.
fn parse_key(word: &str) -> Result<String, ProtoError> {
    let ok = word.len() == 40
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(word.to_string())
    } else {
        Err(ProtoError::BadHash(word.to_string()))
    }
}

/// A piece bitset in hex (checked against the piece count by whoever knows the file), or
/// `-` for a file of no pieces.
fn parse_bits(word: &str) -> Result<String, ProtoError> {
    let ok = word == "-"
        || (word.len().is_multiple_of(2) && word.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(word.to_string())
    } else {
        Err(ProtoError::BadRun(word.to_string()))
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::Hello { role } => write!(f, "HELLO {VERSION} {}", role.word()),
            Request::Offer { name, size } => write!(f, "OFFER {} {size}", name::encode(name)),
            Request::Join { port } => write!(f, "JOIN {port}"),
            Request::Hashed { name, first, count } => {
                write!(f, "HASHED {} {first} {count}", name::encode(name))
            }
            Request::Beat { id, token } => write!(f, "BEAT {id} {token}"),
            Request::Files => write!(f, "FILES"),
            Request::Hashes {
                name,
                generation,
                from,
            } => {
                write!(f, "HASHES {} {generation} {from}", name::encode(name))
            }
            Request::Holders { name, generation } => {
                write!(f, "HOLDERS {} {generation}", name::encode(name))
            }
            Request::Have { name, runs } => {
                write!(f, "HAVE {}", name::encode(name))?;
                for r in runs {
                    if r.first == r.last {
                        write!(f, " {}", r.first)?;
                    } else {
                        write!(f, " {}-{}", r.first, r.last)?;
                    }
                }
                Ok(())
            }
            Request::Drop { name } => write!(f, "DROP {}", name::encode(name)),
            Request::Wait { version, millis } => write!(f, "WAIT {version} {millis}"),
            Request::Leave => write!(f, "LEAVE"),
            Request::Ping => write!(f, "PING"),
            Request::Get { name, first, count } => {
                write!(f, "GET {} {first} {count}", name::encode(name))
            }
            Request::Seed {
                addr,
                key,
                name,
                size,
                bits,
            } => write!(f, "SEED {addr} {key} {} {size} {bits}", name::encode(name)),
            Request::Unseed { addr, key } => write!(f, "UNSEED {addr} {key}"),
            Request::Quit { addr } => write!(f, "QUIT {addr}"),
            Request::Seeders { key } => write!(f, "SEEDERS {key}"),
            Request::State => write!(f, "STATE"),
        }
    }
}

/// A reply line: `OK [words...]` or `ERR <reason>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok(Vec<String>),
    Err(String),
}

impl Reply {
    pub fn parse(line: &str) -> Option<Reply> {
        if line == "OK" {
            return Some(Reply::Ok(Vec::new()));
        }
        if let Some(rest) = line.strip_prefix("OK ") {
            return Some(Reply::Ok(rest.split(' ').map(str::to_string).collect()));
        }
        line.strip_prefix("ERR ")
            .map(|reason| Reply::Err(reason.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_prints_and_parses_back_to_itself() {
        let all = [
            Request::Hello { role: Role::Peer },
            Request::Offer {
                name: "a b.txt".into(),
                size: 513,
            },
            Request::Join { port: 4242 },
            Request::Hashed {
                name: "a b.txt".into(),
                first: 3,
                count: 2,
            },
            Request::Beat {
                id: 7,
                token: u64::MAX,
            },
            Request::Files,
            Request::Hashes {
                name: "ü".into(),
                generation: 2,
                from: 16,
            },
            Request::Holders {
                name: "f".into(),
                generation: 1,
            },
            Request::Have {
                name: "f".into(),
                runs: vec![
                    PieceRun { first: 0, last: 3 },
                    PieceRun { first: 7, last: 7 },
                ],
            },
            Request::Have {
                name: "empty".into(),
                runs: vec![],
            },
            Request::Drop {
                name: "gone".into(),
            },
            Request::Wait {
                version: 9,
                millis: 1000,
            },
            Request::Leave,
            Request::Ping,
            Request::Get {
                name: "f".into(),
                first: 128,
                count: 128,
            },
            Request::Seed {
                addr: "127.0.0.1:7000".parse().unwrap(),
                key: "a".repeat(40),
                name: "my file".into(),
                size: 3,
                bits: "01".into(),
            },
            Request::Unseed {
                addr: "[::1]:7000".parse().unwrap(),
                key: "b".repeat(40),
            },
            Request::Quit {
                addr: "127.0.0.1:7000".parse().unwrap(),
            },
            Request::Seeders {
                key: "c".repeat(40),
            },
            Request::State,
        ];
        for req in all {
            let line = req.to_string();
            assert_eq!(Request::parse(&line), Ok(req), "{line}");
        }
    }

    #[test]
    fn bad_numbers_names_and_arity_are_errors() {
        for line in [
            "GET f -1 1",
            "GET f abc 1",
            "GET f +1 1",
            "GET f 18446744073709551616 1",
            "GET ../x 0 1",
            "GET f 0",
            "GET f 0 1 2",
            "JOIN 0",
            "JOIN 65536",
            "HAVE f 3-1",
            "HAVE f 4294967296",
            "HELLO p2p/2 peer",
            "HELLO p2p/1 king",
            "OFFER f 1 abc",
            "OFFER f",
            "HASHED f 0 65537",
            "HASHED f -1 1",
            "BEAT 1",
            "BEAT 1 x",
            "HASHES f",
            "HOLDERS f x",
            "FILES extra",
            "SEEDERS abc",
            "SEEDERS AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "SEED nowhere aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa f 1 01",
            "SEED 127.0.0.1:1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa f 1 0z",
            "QUIT",
            "",
            " ",
            "NOPE",
        ] {
            assert!(Request::parse(line).is_err(), "{line:?} parsed");
        }
    }

    #[test]
    fn runs_collapse_consecutive_pieces() {
        let runs = runs_of(&[0, 1, 2, 5, 7, 8]);
        let words: Vec<String> = runs
            .iter()
            .map(|r| format!("{}-{}", r.first, r.last))
            .collect();
        assert_eq!(words, ["0-2", "5-5", "7-8"]);
    }

    #[test]
    fn replies_split_ok_from_err() {
        assert_eq!(Reply::parse("OK"), Some(Reply::Ok(vec![])));
        assert_eq!(
            Reply::parse("OK 3 x"),
            Some(Reply::Ok(vec!["3".into(), "x".into()]))
        );
        assert_eq!(Reply::parse("ERR no"), Some(Reply::Err("no".into())));
        assert_eq!(Reply::parse("WHAT"), None);
    }
}
