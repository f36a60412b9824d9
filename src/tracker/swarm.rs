//! The tracker's tables: which files exist, which living peer holds which pieces of each,
//! and the decisions that need all of that at once (join, leave). State lives behind
//! methods; callers never see the lock, and no method holds it during socket I/O (printing
//! hands over to the stdout lock first, see [`output::emit_after`]).
//!
//! Invariants: a peer is in `peers` from its `JOIN` until it leaves or is dropped; every
//! holder of a file is in `peers`; a holding is a bitset over the file's pieces (a chunk is
//! held when its piece is, since chunks become available one verified piece at a time).

use crate::chunk::{Bitset, FileMeta, PieceIndex};
use crate::output;
use crate::protocol::PieceRun;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub type PeerId = u64;

struct PeerEntry {
    addr: SocketAddr,
    offered: BTreeSet<String>,
    received: BTreeSet<String>,
    /// Files this peer gave up (lost from disk, or could not store): it is not waited for.
    dropped: BTreeSet<String>,
}

struct FileEntry {
    meta: Arc<FileMeta>,
    holders: BTreeMap<PeerId, Bitset>,
}

#[derive(Default)]
struct State {
    next_id: PeerId,
    /// Grows on every change a peer could act on; `WAIT` sleeps until it moves.
    version: u64,
    peers: BTreeMap<PeerId, PeerEntry>,
    files: BTreeMap<String, FileEntry>,
}

/// What a `LEAVE` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    Bye,
    /// Not yet; the state version at the time of the answer.
    Wait(u64),
}

/// One living holder of a file, as `HOLDERS` reports it.
pub struct Holder {
    pub id: PeerId,
    pub addr: SocketAddr,
    pub pieces: Bitset,
}

#[derive(Default)]
pub struct Swarm {
    state: Mutex<State>,
    changed: Condvar,
}

impl Swarm {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere must not wedge every other connection: the tables stay usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses an offer whose name a living peer already shares with other content.
    pub fn check_offer(&self, meta: &FileMeta) -> Result<(), String> {
        self.lock().check_offer(meta)
    }

    /// Publishes a new peer and its offers atomically and prints its CONNECT block.
    pub fn join(&self, addr: SocketAddr, offers: Vec<FileMeta>) -> Result<PeerId, String> {
        let mut st = self.lock();
        if st.peers.values().any(|p| p.addr == addr) {
            return Err(format!("address_in_use {addr} is a living peer"));
        }
        for meta in &offers {
            st.check_offer(meta)?;
        }
        let id = st.next_id;
        st.next_id += 1;
        let listed: Vec<(String, u64)> = offers
            .iter()
            .map(|m| (m.name.clone(), m.geometry.num_chunks()))
            .collect();
        let mut offered = BTreeSet::new();
        for meta in offers {
            offered.insert(meta.name.clone());
            let pieces = Bitset::full(meta.geometry.num_pieces() as usize);
            let entry = st
                .files
                .entry(meta.name.clone())
                .or_insert_with(|| FileEntry {
                    meta: Arc::new(meta.clone()),
                    holders: BTreeMap::new(),
                });
            if entry.holders.is_empty() {
                // Nobody living holds the old content: the new offer defines the name.
                entry.meta = Arc::new(meta);
            }
            entry.holders.insert(id, pieces);
        }
        st.peers.insert(
            id,
            PeerEntry {
                addr,
                offered,
                received: BTreeSet::new(),
                dropped: BTreeSet::new(),
            },
        );
        st.version += 1;
        self.changed.notify_all();
        let named: Vec<(&str, u64)> = listed.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let block = output::connect_block(id, &named);
        output::emit_after(st, &block);
        Ok(id)
    }

    /// Records verified pieces and prints one ACQUIRED line per newly held chunk. Returns the
    /// state version after the change.
    pub fn have(&self, id: PeerId, name: &str, runs: &[PieceRun]) -> Result<u64, String> {
        let mut st = self.lock();
        let st_ref = &mut *st;
        let peer = st_ref.peers.get_mut(&id).ok_or("not_joined")?;
        let file = st_ref.files.get_mut(name).ok_or("unknown_file")?;
        let geometry = file.meta.geometry;
        let npieces = geometry.num_pieces();
        if let Some(bad) = runs.iter().find(|r| r.last >= npieces) {
            return Err(format!("bad_piece {} of {npieces}", bad.last));
        }
        let mut block = String::new();
        let holding = file
            .holders
            .entry(id)
            .or_insert_with(|| Bitset::new(npieces as usize));
        let mut changed = false;
        for p in runs.iter().flat_map(|r| r.iter()) {
            if holding.set(p as usize) {
                changed = true;
                print_acquired(&mut block, id, &file.meta, p);
            }
        }
        if holding.is_full() && !peer.offered.contains(name) && peer.received.insert(name.into()) {
            changed = true;
        }
        if changed {
            st.version += 1;
            self.changed.notify_all();
        }
        let version = st.version;
        output::emit_after(st, &block);
        Ok(version)
    }

    /// Peer `id` gave up file `name`: its pieces stop counting, and the leave rule no longer
    /// waits for it to hold that file. Returns the state version after the change.
    pub fn drop_file(&self, id: PeerId, name: &str) -> Result<u64, String> {
        let mut st = self.lock();
        let st_ref = &mut *st;
        let peer = st_ref.peers.get_mut(&id).ok_or("not_joined")?;
        let file = st_ref.files.get_mut(name).ok_or("unknown_file")?;
        file.holders.remove(&id);
        peer.received.remove(name);
        peer.dropped.insert(name.to_string());
        st.version += 1;
        self.changed.notify_all();
        Ok(st.version)
    }

    /// The files that some living peer holds at least in part, and the state version.
    pub fn files(&self) -> (u64, Vec<Arc<FileMeta>>) {
        let st = self.lock();
        let files = st
            .files
            .values()
            .filter(|f| {
                f.holders
                    .values()
                    .any(|h| !h.is_clear() || h.num_bits() == 0)
            })
            .map(|f| f.meta.clone())
            .collect();
        (st.version, files)
    }

    pub fn meta(&self, name: &str) -> Option<Arc<FileMeta>> {
        self.lock().files.get(name).map(|f| f.meta.clone())
    }

    /// Every living peer that holds some of `name`, with what it holds.
    pub fn holders(&self, name: &str) -> Option<Vec<Holder>> {
        let st = self.lock();
        let file = st.files.get(name)?;
        Some(
            file.holders
                .iter()
                .filter_map(|(id, pieces)| {
                    let peer = st.peers.get(id)?;
                    Some(Holder {
                        id: *id,
                        addr: peer.addr,
                        pieces: pieces.clone(),
                    })
                })
                .collect(),
        )
    }

    /// Sleeps until the state version passes `seen` or `timeout` runs out; returns the version.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let st = self.lock();
        let (st, _) = self
            .changed
            .wait_timeout_while(st, timeout, |st| st.version <= seen)
            .unwrap_or_else(|e| e.into_inner());
        st.version
    }

    /// Decides atomically whether peer `id` may leave: it holds every piece any living peer
    /// holds, and every other living peer holds every piece it holds. If it lacks nothing
    /// but others still lack its pieces, waits up to `timeout` for them. On `Bye` the peer
    /// is removed and its DISCONNECT block printed.
    pub fn leave(&self, id: PeerId, timeout: Duration) -> Leave {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            match st.leave_verdict(id) {
                Verdict::Ready => break,
                Verdict::Lacking => return Leave::Wait(st.version),
                Verdict::OthersLacking => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Leave::Wait(st.version);
                    }
                    st = self
                        .changed
                        .wait_timeout(st, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
        let Some(peer) = st.remove_peer(id) else {
            return Leave::Wait(st.version);
        };
        self.changed.notify_all();
        let block = output::disconnect_block(id, peer.received.iter().map(String::as_str));
        output::emit_after(st, &block);
        Leave::Bye
    }

    /// Forgets a peer that vanished without goodbye: no DISCONNECT block.
    pub fn drop_peer(&self, id: PeerId) -> bool {
        let mut st = self.lock();
        let gone = st.remove_peer(id).is_some();
        if gone {
            self.changed.notify_all();
        }
        gone
    }
}

fn print_acquired(block: &mut String, id: PeerId, meta: &FileMeta, piece: PieceIndex) {
    if let Some((first, count)) = meta.geometry.piece_chunks(piece) {
        let total = meta.geometry.num_chunks();
        output::acquired_lines(block, id, &meta.name, total, first..first + count);
    }
}

enum Verdict {
    Ready,
    Lacking,
    OthersLacking,
}

/// Whether holding `a` includes everything holding `b` does. No entry at all means "holds
/// nothing"; for an empty file an entry is the whole file, so only then does it matter.
fn covers(a: Option<&Bitset>, b: Option<&Bitset>) -> bool {
    match (a, b) {
        (_, None) => true,
        (None, Some(b)) => b.num_bits() > 0 && b.is_clear(),
        (Some(a), Some(b)) => b.iter_ones().all(|i| a.get(i)),
    }
}

impl State {
    fn check_offer(&self, meta: &FileMeta) -> Result<(), String> {
        match self.files.get(&meta.name) {
            Some(f) if !f.holders.is_empty() && !f.meta.same_content(meta) => Err(format!(
                "name_taken {} is shared with other content",
                crate::name::encode(&meta.name)
            )),
            _ => Ok(()),
        }
    }

    fn leave_verdict(&self, id: PeerId) -> Verdict {
        let gave_up = |peer: &PeerId, name: &String| {
            self.peers
                .get(peer)
                .is_some_and(|p| p.dropped.contains(name))
        };
        let mut others_lacking = false;
        for (name, file) in &self.files {
            let mine = file.holders.get(&id);
            if !gave_up(&id, name) {
                for (other, theirs) in &file.holders {
                    if *other != id && !covers(mine, Some(theirs)) {
                        return Verdict::Lacking;
                    }
                }
            }
            for other in self.peers.keys().filter(|&&p| p != id) {
                if !gave_up(other, name) && !covers(file.holders.get(other), mine) {
                    others_lacking = true;
                }
            }
        }
        if others_lacking {
            Verdict::OthersLacking
        } else {
            Verdict::Ready
        }
    }

    fn remove_peer(&mut self, id: PeerId) -> Option<PeerEntry> {
        let peer = self.peers.remove(&id)?;
        for file in self.files.values_mut() {
            file.holders.remove(&id);
        }
        self.version += 1;
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{Geometry, sha1};

    fn meta(name: &str, size: u64, seed: u8) -> FileMeta {
        let g = Geometry::new(size).unwrap();
        FileMeta {
            name: name.into(),
            geometry: g,
            sha1: Some(sha1(&[seed])),
            piece_hashes: (0..g.num_pieces())
                .map(|p| sha1(&[seed, p as u8]))
                .collect(),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const NOW: Duration = Duration::ZERO;

    #[test]
    fn ids_count_from_zero_and_a_conflicting_offer_is_refused() {
        let s = Swarm::default();
        assert_eq!(s.join(addr(1), vec![meta("a", 10, 1)]), Ok(0));
        assert!(s.check_offer(&meta("a", 10, 2)).is_err());
        assert!(s.join(addr(2), vec![meta("a", 10, 2)]).is_err());
        assert_eq!(s.join(addr(2), vec![meta("a", 10, 1)]), Ok(1));
    }

    #[test]
    fn a_peer_leaves_only_when_everyone_holds_the_same_pieces() {
        let s = Swarm::default();
        let a = s.join(addr(1), vec![meta("a", 200_000, 1)]).unwrap();
        let b = s.join(addr(2), vec![meta("e", 0, 2)]).unwrap();
        assert!(
            matches!(s.leave(a, NOW), Leave::Wait(_)),
            "b lacks a's file"
        );
        assert!(
            matches!(s.leave(b, NOW), Leave::Wait(_)),
            "b lacks a's file"
        );
        s.have(b, "a", &[PieceRun { first: 0, last: 3 }]).unwrap();
        assert!(
            matches!(s.leave(a, NOW), Leave::Wait(_)),
            "a lacks the empty file"
        );
        s.have(a, "e", &[]).unwrap();
        assert_eq!(s.leave(a, NOW), Leave::Bye);
        assert_eq!(s.leave(b, NOW), Leave::Bye, "alone now");
    }

    #[test]
    fn one_address_joins_once_and_a_dropped_file_is_not_waited_for() {
        let s = Swarm::default();
        let a = s.join(addr(1), vec![meta("a", 1000, 1)]).unwrap();
        assert!(s.join(addr(1), vec![]).is_err(), "address in use");
        let b = s.join(addr(2), vec![]).unwrap();
        assert!(
            matches!(s.leave(a, NOW), Leave::Wait(_)),
            "b lacks a's file"
        );
        s.drop_file(b, "a").unwrap();
        assert_eq!(s.leave(a, NOW), Leave::Bye, "b gave the file up");
    }

    #[test]
    fn pieces_past_the_end_are_refused() {
        let s = Swarm::default();
        let a = s.join(addr(1), vec![meta("a", 512, 1)]).unwrap();
        assert!(s.have(a, "a", &[PieceRun { first: 1, last: 1 }]).is_err());
        assert!(s.have(a, "nope", &[]).is_err());
        assert!(s.have(99, "a", &[]).is_err());
    }

    #[test]
    fn a_dropped_peer_stops_counting() {
        let s = Swarm::default();
        let a = s.join(addr(1), vec![meta("a", 1000, 1)]).unwrap();
        let b = s.join(addr(2), vec![]).unwrap();
        assert!(matches!(s.leave(b, NOW), Leave::Wait(_)));
        assert!(s.drop_peer(a));
        assert!(s.files().1.is_empty());
        assert_eq!(s.leave(b, NOW), Leave::Bye);
    }
}
