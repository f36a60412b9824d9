//! The tracker's tables: which files exist, which living peer holds which pieces of each,
//! and the decisions that need all of that at once (join, leave). State lives behind
//! methods; callers never see the lock, and no method holds it during socket I/O or waits
//! for stdout (blocks are queued to the [`BlockSink`] under the lock, which for the printer
//! keeps the order of the changes they report).
//!
//! Invariants: a peer is in `peers` from its `JOIN` until it leaves or is dropped; every
//! holder of a file is in `peers`; a holding is a bitset over the file's pieces (a chunk is
//! held when its piece is, since chunks become available one verified piece at a time). An
//! offerer holds its whole file from `JOIN` on (the leave rule counts it), but `HOLDERS`
//! shows only the pieces whose hashes it has sent and that match: a piece's hash is fixed by
//! the first holder to send it, for as long as any living peer holds the name.

use crate::chunk::{Bitset, Geometry, PieceIndex, Sha1Hash};
use crate::output::{self, BlockSink, Ticket};
use crate::protocol::{MAX_HASH_BATCH, PieceRun};
pub use leave_rule::Leave;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

mod leave_rule;

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

/// One living holder of a file, as `HOLDERS` reports it.
pub struct Holder {
    pub id: PeerId,
    pub addr: SocketAddr,
    pub pieces: Bitset,
}

pub struct Swarm {
    state: Mutex<State>,
    changed: Condvar,
    /// Where the CONNECT, ACQUIRED and DISCONNECT blocks go.
    blocks: BlockSink,
}

impl Swarm {
    /// An empty swarm whose blocks go to `blocks`.
    pub fn new(blocks: BlockSink) -> Swarm {
        Swarm {
            state: Mutex::default(),
            changed: Condvar::new(),
            blocks,
        }
    }

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
        let ticket = self.blocks.queue(output::connect_block(id, &named));
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
                    let _ = self.blocks.queue(std::mem::take(&mut block));
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
        let _ = self.blocks.queue(block);
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
mod tests;
