//! The tables of a tracker in a pair (the interactive client's trackers): for each
//! `.mtorrent` file, by info hash, its name and size and which client holds which pieces.
//! State lives behind methods; a change bumps a version that the persister and the sync
//! forwarder watch. The whole state prints as `SEED` lines, which is both the state file's
//! format and what `STATE` sends to a twin catching up.

use crate::chunk::{Bitset, Geometry, MTORRENT_PIECE_SIZE};
use crate::protocol::Request;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

struct Entry {
    name: String,
    size: u64,
    seeders: BTreeMap<String, Bitset>,
}

/// STUB: the token of the session of the client at `addr`.
pub fn stub_token(addr: SocketAddr) -> String {
    crate::chunk::to_hex(&crate::hashing::sha1(format!("stub {addr}").as_bytes()))[..32].to_string()
}

#[derive(Default)]
struct Tables {
    files: BTreeMap<String, Entry>,
    /// STUB: sessions by token; a token is derived from the address so both twins agree.
    sessions: BTreeMap<String, SocketAddr>,
    version: u64,
}

#[derive(Default)]
pub struct Catalog {
    tables: Mutex<Tables>,
    changed: Condvar,
}

/// Parses a piece bitset word for a file of `size` bytes: `-` for none at all.
fn bits_for(size: u64, word: &str) -> Option<Bitset> {
    let pieces = Geometry::with_piece_size(size, MTORRENT_PIECE_SIZE)?.num_pieces() as usize;
    Bitset::from_word(word, pieces)
}

impl Catalog {
    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Applies a state change (`SEED`, `UNSEED`, `QUIT`); returns whether it changed anything.
    pub fn apply(&self, req: &Request) -> Result<bool, String> {
        let mut t = self.lock();
        let changed = match req {
            Request::Open { addr } => t.sessions.insert(stub_token(*addr), *addr).is_none(),
            Request::Seed {
                token: addr,
                key,
                name,
                size,
                bits,
            } => {
                if !t.sessions.contains_key(addr) {
                    return Err("unknown_session".into());
                }
                let bits = bits_for(*size, bits).ok_or("bad_bitset for that size")?;
                let entry = t.files.entry(key.clone()).or_insert_with(|| Entry {
                    name: name.clone(),
                    size: *size,
                    seeders: BTreeMap::new(),
                });
                if entry.size != *size {
                    return Err(format!("size_mismatch the file is {} bytes", entry.size));
                }
                entry.seeders.insert(addr.clone(), bits.clone()) != Some(bits)
            }
            Request::Unseed {
                token: addr, key, ..
            } => {
                let removed = t
                    .files
                    .get_mut(key)
                    .and_then(|e| e.seeders.remove(addr))
                    .is_some();
                t.files.retain(|_, e| !e.seeders.is_empty());
                removed
            }
            Request::Quit { token: addr } => {
                let mut removed = t.sessions.remove(addr).is_some();
                for e in t.files.values_mut() {
                    removed |= e.seeders.remove(addr).is_some();
                }
                t.files.retain(|_, e| !e.seeders.is_empty());
                removed
            }
            _ => return Err("not_a_state_change".to_string()),
        };
        if changed {
            t.version += 1;
            self.changed.notify_all();
        }
        Ok(changed)
    }

    /// The clients holding pieces of `key`, with which pieces (hex bitsets).
    pub fn seeders(&self, key: &str) -> Option<Vec<(SocketAddr, String)>> {
        let t = self.lock();
        let e = t.files.get(key)?;
        Some(
            e.seeders
                .iter()
                .filter_map(|(a, b)| Some((*t.sessions.get(a)?, b.to_word())))
                .collect(),
        )
    }

    /// STUB: whether `token` names a session.
    pub fn knows(&self, token: &str) -> bool {
        self.lock().sessions.contains_key(token)
    }

    /// The whole state as `SEED` requests, and its version.
    pub fn snapshot(&self) -> (u64, Vec<Request>) {
        let t = self.lock();
        let opens = t.sessions.values().map(|a| Request::Open { addr: *a });
        let seeds = opens
            .chain(t.files.iter().flat_map(|(key, e)| {
                e.seeders.iter().map(move |(addr, bits)| Request::Seed {
                    token: addr.clone(),
                    key: key.clone(),
                    name: e.name.clone(),
                    size: e.size,
                    bits: bits.to_word(),
                })
            }))
            .collect();
        (t.version, seeds)
    }

    /// Replaces the whole state (a tracker catching up from its twin).
    pub fn replace(&self, seeds: &[Request]) {
        {
            let mut t = self.lock();
            let version = t.version + 1;
            *t = Tables::default();
            t.version = version;
        }
        for req in seeds {
            let _ = self.apply(req);
        }
        self.changed.notify_all();
    }

    /// Sleeps until the version passes `seen` (or `timeout`); returns the version.
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> u64 {
        let t = self.lock();
        let (t, _) = self
            .changed
            .wait_timeout_while(t, timeout, |t| t.version <= seen)
            .unwrap_or_else(|e| e.into_inner());
        t.version
    }
}
