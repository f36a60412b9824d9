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
    seeders: BTreeMap<SocketAddr, Bitset>,
}

#[derive(Default)]
struct Tables {
    files: BTreeMap<String, Entry>,
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
            Request::Seed {
                addr,
                key,
                name,
                size,
                bits,
            } => {
                let bits = bits_for(*size, bits).ok_or("bad_bitset for that size")?;
                let entry = t.files.entry(key.clone()).or_insert_with(|| Entry {
                    name: name.clone(),
                    size: *size,
                    seeders: BTreeMap::new(),
                });
                if entry.size != *size {
                    return Err(format!("size_mismatch the file is {} bytes", entry.size));
                }
                entry.seeders.insert(*addr, bits.clone()) != Some(bits)
            }
            Request::Unseed { addr, key } => {
                let removed = t
                    .files
                    .get_mut(key)
                    .and_then(|e| e.seeders.remove(addr))
                    .is_some();
                t.files.retain(|_, e| !e.seeders.is_empty());
                removed
            }
            Request::Quit { addr } => {
                let mut removed = false;
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
        Some(e.seeders.iter().map(|(a, b)| (*a, b.to_word())).collect())
    }

    /// The whole state as `SEED` requests, and its version.
    pub fn snapshot(&self) -> (u64, Vec<Request>) {
        let t = self.lock();
        let seeds = t
            .files
            .iter()
            .flat_map(|(key, e)| {
                e.seeders.iter().map(move |(addr, bits)| Request::Seed {
                    addr: *addr,
                    key: key.clone(),
                    name: e.name.clone(),
                    size: e.size,
                    bits: bits.to_word(),
                })
            })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(port: u16, key: char, bits: &str) -> Request {
        Request::Seed {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            key: key.to_string().repeat(40),
            name: format!("file {key}"),
            size: 3 * 512 * 1024,
            bits: bits.into(),
        }
    }

    #[test]
    fn seeders_come_and_go() {
        let c = Catalog::default();
        assert_eq!(c.apply(&seed(1, 'a', "07")), Ok(true));
        assert_eq!(c.apply(&seed(1, 'a', "07")), Ok(false), "no change");
        assert_eq!(c.apply(&seed(2, 'a', "01")), Ok(true));
        assert!(
            c.apply(&seed(2, 'a', "ff")).is_err(),
            "bits past the last piece"
        );
        let list = c.seeders(&"a".repeat(40)).unwrap();
        assert_eq!(list.len(), 2);
        c.apply(&Request::Quit {
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        })
        .unwrap();
        c.apply(&Request::Unseed {
            addr: SocketAddr::from(([127, 0, 0, 1], 2)),
            key: "a".repeat(40),
        })
        .unwrap();
        assert!(
            c.seeders(&"a".repeat(40)).is_none(),
            "a file nobody holds is forgotten"
        );
    }

    #[test]
    fn a_snapshot_replays_into_the_same_state() {
        let c = Catalog::default();
        c.apply(&seed(1, 'a', "07")).unwrap();
        c.apply(&seed(2, 'b', "02")).unwrap();
        let (_, seeds) = c.snapshot();
        let twin = Catalog::default();
        twin.replace(&seeds);
        assert_eq!(twin.snapshot().1, seeds);
    }
}
