//! The tracker's tables: which files exist, which living peer holds which pieces of each,
//! and the decisions that need all of that at once (join, leave). State lives behind
//! methods; callers never see the lock, and no method holds it during socket I/O or waits
//! for stdout (blocks are queued for the printer under the lock, see [`output::queue`]).
//!
//! Invariants: a peer is in `peers` from its `JOIN` until it leaves or is dropped; every
//! holder of a file is in `peers`; a holding is a bitset over the file's pieces (a chunk is
//! held when its piece is, since chunks become available one verified piece at a time). An
//! offerer holds its whole file from `JOIN` on (the leave rule counts it), but `HOLDERS`
//! shows only the pieces whose hashes it has sent and that match: a piece's hash is fixed by
//! the first holder to send it, for as long as any living peer holds the name.

use crate::chunk::{Bitset, Geometry, PieceIndex, Sha1Hash};
use crate::output::{self, Ticket};
use crate::protocol::{MAX_HASH_BATCH, PieceRun};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub type PeerId = u64;

/// ACQUIRED lines are queued for the printer in parts of about this many bytes.
const PRINT_PART: usize = 1 << 20;
/// The most files one peer may give up (`DROP`, refused offers) in the tracker's tables.
pub const MAX_DROPPED: usize = 65_536;

struct PeerEntry {
    addr: SocketAddr,
    /// The secret a heartbeat connection must show to speak for this peer.
    token: u64,
    /// Whether a heartbeat connection speaks for this peer (see [`Swarm::attach_beat`]).
    beating: bool,
    offered: BTreeSet<String>,
    received: BTreeSet<String>,
    /// Files this peer will not hold (its copy conflicts with the swarm's, it lost it from
    /// disk, could not store it, or every holder sent it bad data): it is not waited for.
    dropped: BTreeSet<String>,
}

struct FileEntry {
    geometry: Geometry,
    /// Names this content: it changes whenever the name is defined anew.
    generation: u64,
    /// The piece hashes known so far, a prefix of the whole list.
    hashes: Vec<Sha1Hash>,
    holders: BTreeMap<PeerId, Bitset>,
    /// Offerers still sending their hashes: how many of theirs have matched so far.
    hashing: BTreeMap<PeerId, u32>,
}

impl FileEntry {
    /// What `HOLDERS` shows of holder `id`'s pieces: only those whose hashes it confirmed.
    fn shown(&self, id: PeerId, held: &Bitset) -> Bitset {
        let mut shown = held.clone();
        if let Some(&confirmed) = self.hashing.get(&id) {
            shown.and_with(&Bitset::prefix(held.num_bits(), confirmed as usize));
        }
        shown
    }
}

/// A file as `FILES` lists it.
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub generation: u64,
}

#[derive(Default)]
struct State {
    next_id: PeerId,
    next_generation: u64,
    /// Grows on every change a peer could act on; `WAIT` sleeps until it moves.
    version: u64,
    peers: BTreeMap<PeerId, PeerEntry>,
    files: BTreeMap<String, FileEntry>,
}

/// Where a joined peer stands (see [`Swarm::standing`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// Left or dropped.
    Gone,
    Joined,
    Beating,
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

    /// Refuses an offer whose name a living peer already shares with another size. (Content
    /// of the same size is compared piece by piece as the hashes arrive, see [`Swarm::hashed`].)
    pub fn check_offer(&self, name: &str, geometry: Geometry) -> Result<(), String> {
        self.lock().check_offer(name, geometry)
    }

    /// Publishes a new peer and its offers atomically and queues its CONNECT block; the
    /// ticket says when that block is on stdout. An offer whose name became taken since it
    /// was staged is not published, and neither is one in `refused`: the peer will not hold
    /// those names, so the leave rule does not wait for it to.
    pub fn join(
        &self,
        addr: SocketAddr,
        offers: Vec<(String, Geometry)>,
        refused: Vec<String>,
        token: u64,
    ) -> Result<(PeerId, Ticket), String> {
        let mut st = self.lock();
        if st.peers.values().any(|p| p.addr == addr) {
            return Err(format!("address_in_use {addr} is a living peer"));
        }
        let id = st.next_id;
        st.next_id += 1;
        let mut dropped: BTreeSet<String> = refused.into_iter().collect();
        let mut offered = BTreeSet::new();
        let mut listed = Vec::new();
        for (name, geometry) in offers {
            if st.check_offer(&name, geometry).is_err() {
                dropped.insert(name);
                continue;
            }
            let generation = st.next_generation;
            let entry = st.files.entry(name.clone()).or_insert_with(|| FileEntry {
                geometry,
                generation,
                hashes: Vec::new(),
                holders: BTreeMap::new(),
                hashing: BTreeMap::new(),
            });
            if entry.holders.is_empty() {
                // Nobody living holds the old content: this offer defines the name anew.
                entry.geometry = geometry;
                entry.generation = generation;
                entry.hashes.clear();
                entry.hashing.clear();
            }
            let pieces = geometry.num_pieces();
            entry.holders.insert(id, Bitset::full(pieces as usize));
            if pieces > 0 {
                entry.hashing.insert(id, 0);
            }
            st.next_generation += 1;
            listed.push((name.clone(), geometry.num_chunks()));
            offered.insert(name);
        }
        st.peers.insert(
            id,
            PeerEntry {
                addr,
                token,
                beating: false,
                offered,
                received: BTreeSet::new(),
                dropped,
            },
        );
        st.version += 1;
        self.changed.notify_all();
        let named: Vec<(&str, u64)> = listed.iter().map(|(n, c)| (n.as_str(), *c)).collect();
        let ticket = output::queue(output::connect_block(id, &named));
        Ok((id, ticket))
    }

    /// Lets a heartbeat connection speak for peer `id`, if it knows the peer's token.
    pub fn attach_beat(&self, id: PeerId, token: u64) -> Result<(), String> {
        let mut st = self.lock();
        let peer = st.peers.get_mut(&id).ok_or("not_joined")?;
        if peer.token != token {
            return Err("bad_token".into());
        }
        if peer.beating {
            return Err("already_beating".into());
        }
        peer.beating = true;
        Ok(())
    }

    /// Whether peer `id` is still in the swarm, and whether a heartbeat connection of its
    /// own speaks for it (so that silence on its request connection means busy, not dead).
    pub fn standing(&self, id: PeerId) -> Standing {
        match self.lock().peers.get(&id) {
            None => Standing::Gone,
            Some(p) if p.beating => Standing::Beating,
            Some(_) => Standing::Joined,
        }
    }

    /// Records the hashes of pieces `first..` of a file peer `id` offered, in order. A hash
    /// that differs from the one already known for that piece means the peer's file is other
    /// content under a taken name: its offer is withdrawn (`name_taken`) and not waited for.
    /// Returns the state version after the change.
    pub fn hashed(
        &self,
        id: PeerId,
        name: &str,
        first: PieceIndex,
        hashes: &[Sha1Hash],
    ) -> Result<u64, String> {
        let mut st = self.lock();
        let st_ref = &mut *st;
        let peer = st_ref.peers.get_mut(&id).ok_or("not_joined")?;
        let taken = || {
            format!(
                "name_taken {} is shared with other content",
                crate::name::encode(name)
            )
        };
        // Refused at OFFER or at JOIN, or found out by an earlier hash: the name is taken.
        if peer.dropped.contains(name) {
            return Err(taken());
        }
        let file = st_ref.files.get_mut(name).ok_or("unknown_file")?;
        if !peer.offered.contains(name) || !file.holders.contains_key(&id) {
            return Err("not_offered".into());
        }
        let npieces = file.geometry.num_pieces();
        let confirmed = file.hashing.get(&id).copied().unwrap_or(npieces);
        if first != confirmed {
            return Err(format!("out_of_order expected {confirmed}"));
        }
        if u64::from(first) + hashes.len() as u64 > u64::from(npieces) {
            return Err(format!("bad_piece past {npieces}"));
        }
        for (i, hash) in hashes.iter().enumerate() {
            let p = first as usize + i;
            match file.hashes.get(p) {
                Some(known) if known != hash => {
                    file.holders.remove(&id);
                    file.hashing.remove(&id);
                    peer.dropped.insert(name.to_string());
                    st.version += 1;
                    self.changed.notify_all();
                    return Err(taken());
                }
                Some(_) => {}
                None => file.hashes.push(*hash),
            }
        }
        let now = first + hashes.len() as u32;
        if now == npieces {
            file.hashing.remove(&id);
        } else if let Some(c) = file.hashing.get_mut(&id) {
            *c = now;
        }
        if !hashes.is_empty() {
            st.version += 1;
            self.changed.notify_all();
        }
        Ok(st.version)
    }

    /// Records verified pieces and queues one ACQUIRED line per newly held chunk. Returns the
    /// state version after the change.
    pub fn have(&self, id: PeerId, name: &str, runs: &[PieceRun]) -> Result<u64, String> {
        let mut st = self.lock();
        let st_ref = &mut *st;
        let peer = st_ref.peers.get_mut(&id).ok_or("not_joined")?;
        let file = st_ref.files.get_mut(name).ok_or("unknown_file")?;
        let geometry = file.geometry;
        let npieces = geometry.num_pieces();
        // Nobody can have verified a piece whose hash nobody has sent.
        let known = file.hashes.len() as u32;
        if let Some(bad) = runs.iter().find(|r| r.last >= known) {
            return Err(format!(
                "bad_piece {} of {npieces}, {known} hashed",
                bad.last
            ));
        }
        // Runs may not say more than the file has: the work below stays within its size.
        let said: u64 = runs.iter().map(|r| u64::from(r.last - r.first) + 1).sum();
        if said > u64::from(npieces) {
            return Err(format!("bad_runs {said} pieces of {npieces}"));
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
                print_acquired(&mut block, id, name, geometry, p);
                // A whole large file reported at once prints in parts, in order.
                if block.len() >= PRINT_PART {
                    let _ = output::queue(std::mem::take(&mut block));
                }
            }
        }
        if holding.is_full() && !peer.offered.contains(name) && peer.received.insert(name.into()) {
            changed = true;
        }
        if changed {
            st.version += 1;
            self.changed.notify_all();
        }
        let _ = output::queue(block);
        Ok(st.version)
    }

    /// Peer `id` gave up file `name`: its pieces stop counting, and the leave rule no longer
    /// waits for it to hold that file. Returns the state version after the change.
    /// A name no living peer holds yet is remembered too, so that a later offer of it is not
    /// waited for (a peer that rejoins says again what it gave up).
    pub fn drop_file(&self, id: PeerId, name: &str) -> Result<u64, String> {
        let mut st = self.lock();
        let st_ref = &mut *st;
        let peer = st_ref.peers.get_mut(&id).ok_or("not_joined")?;
        if peer.dropped.len() >= MAX_DROPPED && !peer.dropped.contains(name) {
            return Err(format!("too_many_drops max {MAX_DROPPED}"));
        }
        if let Some(file) = st_ref.files.get_mut(name) {
            file.holders.remove(&id);
            file.hashing.remove(&id);
        }
        peer.received.remove(name);
        peer.dropped.insert(name.to_string());
        st.version += 1;
        self.changed.notify_all();
        Ok(st.version)
    }

    /// The files that some living peer holds at least in part, and the state version.
    pub fn files(&self) -> (u64, Vec<Listed>) {
        let st = self.lock();
        let files = st
            .files
            .iter()
            .filter(|(_, f)| {
                f.holders
                    .values()
                    .any(|h| !h.is_clear() || h.num_bits() == 0)
            })
            .map(|(name, f)| Listed {
                name: name.clone(),
                size: f.geometry.size(),
                generation: f.generation,
            })
            .collect();
        (st.version, files)
    }

    /// The known piece hashes of generation `generation` of `name`, from piece `from` on (at
    /// most [`MAX_HASH_BATCH`] of them).
    pub fn hashes(&self, name: &str, generation: u64, from: u32) -> Result<Vec<Sha1Hash>, String> {
        let st = self.lock();
        let file = st.current(name, generation)?;
        let from = (from as usize).min(file.hashes.len());
        let to = file.hashes.len().min(from + MAX_HASH_BATCH as usize);
        Ok(file.hashes[from..to].to_vec())
    }

    /// Every living peer that holds some of generation `generation` of `name`, with the
    /// pieces it can serve.
    pub fn holders(&self, name: &str, generation: u64) -> Result<Vec<Holder>, String> {
        let st = self.lock();
        let file = st.current(name, generation)?;
        Ok(file
            .holders
            .iter()
            .filter_map(|(id, pieces)| {
                let peer = st.peers.get(id)?;
                Some(Holder {
                    id: *id,
                    addr: peer.addr,
                    pieces: file.shown(*id, pieces),
                })
            })
            .collect())
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
    /// is removed and its DISCONNECT block queued; the ticket says when it is on stdout.
    pub fn leave(&self, id: PeerId, timeout: Duration) -> (Leave, Option<Ticket>) {
        let deadline = Instant::now() + timeout;
        let mut st = self.lock();
        loop {
            match st.leave_verdict(id) {
                Verdict::Ready => break,
                Verdict::Lacking => return (Leave::Wait(st.version), None),
                Verdict::OthersLacking => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return (Leave::Wait(st.version), None);
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
            return (Leave::Wait(st.version), None);
        };
        self.changed.notify_all();
        let block = output::disconnect_block(id, peer.received.iter().map(String::as_str));
        (Leave::Bye, Some(output::queue(block)))
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

fn print_acquired(
    block: &mut String,
    id: PeerId,
    name: &str,
    geometry: Geometry,
    piece: PieceIndex,
) {
    if let Some((first, count)) = geometry.piece_chunks(piece) {
        let total = geometry.num_chunks();
        output::acquired_lines(block, id, name, total, first..first + count);
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
    fn check_offer(&self, name: &str, geometry: Geometry) -> Result<(), String> {
        match self.files.get(name) {
            Some(f) if !f.holders.is_empty() && f.geometry != geometry => Err(format!(
                "name_taken {} is shared with other content",
                crate::name::encode(name)
            )),
            _ => Ok(()),
        }
    }

    /// The entry of `name` if `generation` is its current content.
    fn current(&self, name: &str, generation: u64) -> Result<&FileEntry, String> {
        match self.files.get(name) {
            None => Err("unknown_file".into()),
            Some(f) if f.generation != generation => {
                Err(format!("stale_generation now {}", f.generation))
            }
            Some(f) => Ok(f),
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
            file.hashing.remove(&id);
        }
        self.version += 1;
        Some(peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::sha1;

    /// A file of `size` bytes whose content `seed` stands for: its offer and its hashes.
    fn file(size: u64, seed: u8) -> (Geometry, Vec<Sha1Hash>) {
        let g = Geometry::new(size).unwrap();
        (
            g,
            (0..g.num_pieces())
                .map(|p| sha1(&[seed, p as u8]))
                .collect(),
        )
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Joins a peer at `port` offering `files` (name, size, seed) and sends all their hashes.
    fn seeder(s: &Swarm, port: u16, files: &[(&str, u64, u8)]) -> PeerId {
        let offers = files
            .iter()
            .map(|&(n, size, seed)| (n.to_string(), file(size, seed).0))
            .collect();
        let (id, _) = s.join(addr(port), offers, vec![], 7).unwrap();
        for &(n, size, seed) in files {
            s.hashed(id, n, 0, &file(size, seed).1).unwrap();
        }
        id
    }

    fn leave(s: &Swarm, id: PeerId) -> Leave {
        s.leave(id, Duration::ZERO).0
    }

    #[test]
    fn ids_count_from_zero_and_a_conflicting_offer_is_refused() {
        let s = Swarm::default();
        assert_eq!(seeder(&s, 1, &[("a", 10, 1)]), 0);
        assert!(s.check_offer("a", file(11, 1).0).is_err(), "another size");
        assert!(
            s.check_offer("a", file(10, 2).0).is_ok(),
            "compared by hashes later"
        );
        assert_eq!(seeder(&s, 2, &[("a", 10, 1)]), 1, "the same content");
    }

    #[test]
    fn a_peer_leaves_only_when_everyone_holds_the_same_pieces() {
        let s = Swarm::default();
        let a = seeder(&s, 1, &[("a", 200_000, 1)]);
        let b = seeder(&s, 2, &[("e", 0, 2)]);
        assert!(matches!(leave(&s, a), Leave::Wait(_)), "b lacks a's file");
        assert!(matches!(leave(&s, b), Leave::Wait(_)), "b lacks a's file");
        s.have(b, "a", &[PieceRun { first: 0, last: 3 }]).unwrap();
        assert!(
            matches!(leave(&s, a), Leave::Wait(_)),
            "a lacks the empty file"
        );
        s.have(a, "e", &[]).unwrap();
        assert_eq!(leave(&s, a), Leave::Bye);
        assert_eq!(leave(&s, b), Leave::Bye, "alone now");
    }

    #[test]
    fn an_offerer_holds_its_whole_file_but_shows_only_the_pieces_it_hashed() {
        let s = Swarm::default();
        let (g, hashes) = file(200_000, 1);
        let (a, _) = s.join(addr(1), vec![("a".into(), g)], vec![], 7).unwrap();
        let (b, _) = s.join(addr(2), vec![], vec![], 8).unwrap();
        let generation = s.files().1[0].generation;
        let shown = |s: &Swarm| s.holders("a", generation).unwrap()[0].pieces.count();
        assert_eq!(shown(&s), 0, "no hash known yet");
        assert!(s.have(b, "a", &[PieceRun { first: 0, last: 0 }]).is_err());
        assert!(
            matches!(leave(&s, b), Leave::Wait(_)),
            "b lacks a's whole file"
        );
        s.hashed(a, "a", 0, &hashes[..2]).unwrap();
        assert_eq!(shown(&s), 2);
        assert_eq!(s.hashes("a", generation, 1).unwrap(), hashes[1..2]);
        assert!(s.hashed(a, "a", 3, &hashes[3..]).is_err(), "out of order");
        s.hashed(a, "a", 2, &hashes[2..]).unwrap();
        assert_eq!(shown(&s), 4);
        assert!(
            s.holders("a", generation + 1).is_err(),
            "another generation"
        );
        s.have(b, "a", &[PieceRun { first: 0, last: 3 }]).unwrap();
        assert_eq!(leave(&s, b), Leave::Bye);
    }

    #[test]
    fn same_name_other_content_is_found_out_by_its_hashes_and_not_waited_for() {
        let s = Swarm::default();
        let p0 = seeder(&s, 1, &[("same", 3, 1)]);
        let (same, other) = (file(3, 1), file(3, 2));
        let (p1, _) = s
            .join(
                addr(2),
                vec![("same".into(), same.0), ("x".into(), file(5, 3).0)],
                vec![],
                9,
            )
            .unwrap();
        s.hashed(p1, "x", 0, &file(5, 3).1).unwrap();
        let refused = s.hashed(p1, "same", 0, &other.1).unwrap_err();
        assert!(refused.starts_with("name_taken"), "{refused}");
        assert!(
            s.hashed(p1, "same", 0, &same.1).is_err(),
            "refused for good"
        );
        // p1 gave the name up: nobody waits for it to hold p0's version, nor for p0 to
        // hold p1's.
        s.have(p0, "x", &[PieceRun { first: 0, last: 0 }]).unwrap();
        assert_eq!(leave(&s, p1), Leave::Bye);
        assert_eq!(leave(&s, p0), Leave::Bye);
    }

    #[test]
    fn an_offer_taken_between_staging_and_join_is_dropped_not_fatal() {
        let s = Swarm::default();
        let p0 = seeder(&s, 1, &[("same", 600, 1)]);
        let (p1, _) = s
            .join(
                addr(2),
                vec![("same".into(), file(700, 2).0)],
                vec!["early".into()],
                9,
            )
            .unwrap();
        let listed: Vec<usize> = s
            .holders("same", s.files().1[0].generation)
            .unwrap()
            .iter()
            .map(|h| h.id as usize)
            .collect();
        assert_eq!(listed, [p0 as usize], "p1's copy is not published");
        let told = s.hashed(p1, "same", 0, &file(700, 2).1).unwrap_err();
        assert!(
            told.starts_with("name_taken"),
            "p1 learns it at HASHED: {told}"
        );
        let early = s.hashed(p1, "early", 0, &[]).unwrap_err();
        assert!(early.starts_with("name_taken"), "{early}");
        assert_eq!(
            leave(&s, p1),
            Leave::Bye,
            "p1 does not wait for p0's version"
        );
        assert_eq!(leave(&s, p0), Leave::Bye);
    }

    #[test]
    fn a_name_nobody_holds_any_more_is_defined_anew() {
        let s = Swarm::default();
        let p0 = seeder(&s, 1, &[("f", 600, 1)]);
        let first = s.files().1[0].generation;
        assert_eq!(leave(&s, p0), Leave::Bye);
        seeder(&s, 2, &[("f", 700, 2)]);
        let listed = s.files().1;
        assert_eq!((listed[0].size, listed.len()), (700, 1));
        assert_ne!(listed[0].generation, first);
        assert!(s.hashes("f", first, 0).is_err(), "the old content is gone");
    }

    #[test]
    fn heartbeats_need_the_peer_token_and_one_connection() {
        let s = Swarm::default();
        let (a, _) = s.join(addr(1), vec![], vec![], 42).unwrap();
        assert_eq!(s.standing(a), Standing::Joined);
        assert!(s.attach_beat(a, 41).is_err(), "wrong token");
        assert!(s.attach_beat(a + 1, 42).is_err(), "no such peer");
        s.attach_beat(a, 42).unwrap();
        assert_eq!(s.standing(a), Standing::Beating);
        assert!(
            s.attach_beat(a, 42).is_err(),
            "a second heartbeat connection"
        );
        assert!(s.drop_peer(a));
        assert_eq!(s.standing(a), Standing::Gone);
    }

    #[test]
    fn one_address_joins_once_and_a_dropped_file_is_not_waited_for() {
        let s = Swarm::default();
        let a = seeder(&s, 1, &[("a", 1000, 1)]);
        assert!(
            s.join(addr(1), vec![], vec![], 1).is_err(),
            "address in use"
        );
        let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
        assert!(matches!(leave(&s, a), Leave::Wait(_)), "b lacks a's file");
        s.drop_file(b, "a").unwrap();
        assert_eq!(leave(&s, a), Leave::Bye, "b gave the file up");
    }

    #[test]
    fn a_seeder_that_gives_its_file_up_is_not_waited_for_by_the_others() {
        let s = Swarm::default();
        let a = seeder(&s, 1, &[("a", 200_000, 1)]);
        let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
        s.have(b, "a", &[PieceRun { first: 0, last: 1 }]).unwrap();
        assert!(
            matches!(leave(&s, b), Leave::Wait(_)),
            "b lacks pieces 2 and 3"
        );
        s.drop_file(a, "a").unwrap();
        assert_eq!(leave(&s, b), Leave::Bye, "nobody living holds the rest");
        assert_eq!(leave(&s, a), Leave::Bye);
    }

    #[test]
    fn pieces_past_the_end_are_refused() {
        let s = Swarm::default();
        let a = seeder(&s, 1, &[("a", 512, 1)]);
        assert!(s.have(a, "a", &[PieceRun { first: 1, last: 1 }]).is_err());
        assert!(s.have(a, "nope", &[]).is_err());
        assert!(s.have(99, "a", &[]).is_err());
        assert!(s.hashed(a, "a", 1, &[sha1(b"x")]).is_err());
        let b = seeder(&s, 2, &[("big", 200_000, 2)]);
        let twice = [
            PieceRun { first: 0, last: 3 },
            PieceRun { first: 0, last: 3 },
        ];
        let refused = s.have(a, "big", &twice).unwrap_err();
        assert!(refused.starts_with("bad_runs"), "{refused}");
        assert!(s.have(b, "big", &twice[..1]).is_ok());
    }

    #[test]
    fn a_dropped_peer_stops_counting() {
        let s = Swarm::default();
        let a = seeder(&s, 1, &[("a", 1000, 1)]);
        let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
        assert!(matches!(leave(&s, b), Leave::Wait(_)));
        assert!(s.drop_peer(a));
        assert!(s.files().1.is_empty());
        assert_eq!(leave(&s, b), Leave::Bye);
    }
}
