//! Every message of the line protocol, as types: parse a line into a [`Request`], print a
//! request back with `Display`, and read replies. See `docs/PROTOCOL.md` for the reference.
//!
//! Depends on nothing but [`crate::name`] and [`crate::chunk`]: parsing ([`parse`]) checks
//! the shape of each word (numbers are plain decimal digits within range, names are valid,
//! hashes are 40 hex digits); checks against a file's size are for the code that knows the
//! file.

pub mod account;
mod parse;
#[cfg(test)]
mod tests;

pub use crate::chunk::MAX_GET_CHUNKS;
pub use account::Ask;
pub use parse::{ProtoError, parse_u64};

use crate::chunk::PieceIndex;
use crate::name;
use std::fmt;
use std::net::SocketAddr;

/// The protocol version every `HELLO` names.
pub const VERSION: &str = "p2p/1";
/// The longest a `WAIT` or `LEAVE` may hold a reply back, in milliseconds.
pub const MAX_WAIT_MS: u64 = 2000;
/// The most records one `RECORDS` reply carries.
pub const MAX_RECORDS_PAGE: u64 = 1000;
/// The most tokens one `SEEN` line carries.
pub const MAX_SEEN: usize = 1000;
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
    /// `OPEN <addr>`: a new client session for the client serving chunks at `addr`.
    Open { addr: SocketAddr },
    /// `ALIVE <token>`: a client session's heartbeat.
    Alive { token: String },
    /// `SEED <token> <info-hash> <name> <size> <bitset> [private]`: the session holds these
    /// pieces of a file (all of them when seeding); `private` for a group's file held by no
    /// `.mtorrent` here, whose holders only `GROUP_SEEDERS` tells, to members.
    Seed {
        token: String,
        key: String,
        name: String,
        size: u64,
        bits: String,
        private: bool,
    },
    /// `UNSEED <token> <info-hash> <size>`: the session no longer holds that file.
    Unseed {
        token: String,
        key: String,
        size: u64,
    },
    /// `QUIT <token>`: the session ends, and every registration of it goes.
    Quit { token: String },
    /// `SEEDERS <info-hash> <size>`: which live sessions hold which pieces of a file.
    Seeders { key: String, size: u64 },
    /// `RECORDS <from> <max>`: a page of the replicated records, in key order.
    Records { from: u64, max: u64 },
    /// `SYNC <tracker> <epoch> <nonce>`: the twin `tracker` pushes its records on this
    /// connection; answered, once the twin vouches for `nonce`, with the last sequence number
    /// of its stream applied here.
    Sync {
        tracker: SocketAddr,
        epoch: String,
        nonce: String,
    },
    /// `VOUCH <nonce>`: asks a tracker whether it is syncing with `nonce` right now.
    Vouch { nonce: String },
    /// `PUT <seq> <record>`: one record of the pushing twin's stream.
    Put { seq: u64, record: String },
    /// `SEEN <token> ...`: sessions the pushing twin heard from just now.
    Seen { tokens: Vec<String> },
    /// `CLAIM <version> <kind> <key>`: the pushing twin is about to create a `user` or
    /// `group` with that key; answered `OK` if this tracker lets it (see
    /// `src/tracker/pair/claims.rs`).
    Claim {
        version: String,
        kind: String,
        key: String,
    },
    /// Accounts and groups: `<VERB> <token> ...` (see [`account`]).
    Account { token: String, ask: Ask },
}

impl Request {
    /// The verb as on the wire: `GET`, `HAVE`, ...
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "HELLO",
            Request::Offer { .. } => "OFFER",
            Request::Join { .. } => "JOIN",
            Request::Hashed { .. } => "HASHED",
            Request::Beat { .. } => "BEAT",
            Request::Files => "FILES",
            Request::Hashes { .. } => "HASHES",
            Request::Holders { .. } => "HOLDERS",
            Request::Have { .. } => "HAVE",
            Request::Drop { .. } => "DROP",
            Request::Wait { .. } => "WAIT",
            Request::Leave => "LEAVE",
            Request::Ping => "PING",
            Request::Get { .. } => "GET",
            Request::Open { .. } => "OPEN",
            Request::Alive { .. } => "ALIVE",
            Request::Seed { .. } => "SEED",
            Request::Unseed { .. } => "UNSEED",
            Request::Quit { .. } => "QUIT",
            Request::Seeders { .. } => "SEEDERS",
            Request::Records { .. } => "RECORDS",
            Request::Sync { .. } => "SYNC",
            Request::Vouch { .. } => "VOUCH",
            Request::Put { .. } => "PUT",
            Request::Seen { .. } => "SEEN",
            Request::Claim { .. } => "CLAIM",
            Request::Account { ask, .. } => ask.verb(),
        }
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
            Request::Open { addr } => write!(f, "OPEN {addr}"),
            Request::Alive { token } => write!(f, "ALIVE {token}"),
            Request::Seed {
                token,
                key,
                name,
                size,
                bits,
                private,
            } => {
                write!(f, "SEED {token} {key} {} {size} {bits}", name::encode(name))?;
                if *private {
                    write!(f, " private")?;
                }
                Ok(())
            }
            Request::Unseed { token, key, size } => write!(f, "UNSEED {token} {key} {size}"),
            Request::Quit { token } => write!(f, "QUIT {token}"),
            Request::Seeders { key, size } => write!(f, "SEEDERS {key} {size}"),
            Request::Records { from, max } => write!(f, "RECORDS {from} {max}"),
            Request::Sync {
                tracker,
                epoch,
                nonce,
            } => write!(f, "SYNC {tracker} {epoch} {nonce}"),
            Request::Vouch { nonce } => write!(f, "VOUCH {nonce}"),
            Request::Put { seq, record } => write!(f, "PUT {seq} {record}"),
            Request::Seen { tokens } => write!(f, "SEEN {}", tokens.join(" ")),
            Request::Claim { version, kind, key } => write!(f, "CLAIM {version} {kind} {key}"),
            Request::Account { token, ask } => write!(f, "{} {token}{ask}", ask.verb()),
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
