//! What the store has to tell the tracker and has not told it yet: verified pieces (`HAVE`),
//! the piece hashes of our own files (`HASHED`), and the files given up (`DROP`). The swarm
//! loop takes them in batches; after rejoining a tracker, everything is queued again.

use super::{Status, Store};
use crate::chunk::{PieceIndex, Sha1Hash};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

#[derive(Default)]
pub(super) struct Outbox {
    /// Verified pieces not yet reported; an entry with no pieces reports an empty file.
    pieces: BTreeMap<String, BTreeSet<PieceIndex>>,
    /// Piece hashes of our own files computed and not yet sent: per file, the first piece and
    /// the hashes from there (none at all for an empty file).
    hashes: Vec<(String, PieceIndex, Vec<Sha1Hash>)>,
    /// Files given up and not yet announced.
    drops: Vec<String>,
}

impl Outbox {
    pub(super) fn piece(&mut self, name: &str, piece: PieceIndex) {
        self.pieces
            .entry(name.to_string())
            .or_default()
            .insert(piece);
    }

    /// A download is complete: report it even if no piece is left to report (an empty file).
    pub(super) fn complete(&mut self, name: &str) {
        self.pieces.entry(name.to_string()).or_default();
    }

    pub(super) fn hashes(&mut self, name: &str, first: PieceIndex, hashes: Vec<Sha1Hash>) {
        self.hashes.push((name.to_string(), first, hashes));
    }

    /// Our own file `name` is no longer offered: its hashes are not sent.
    pub(super) fn forget_hashes(&mut self, name: &str) {
        self.hashes.retain(|(n, _, _)| n != name);
    }

    /// File `name` was given up: say so instead of anything else about it.
    pub(super) fn drop_file(&mut self, name: &str) {
        self.pieces.remove(name);
        self.forget_hashes(name);
        self.drops.push(name.to_string());
    }

    /// File `name` is forgotten here: nothing about it is sent, not even its drop (whoever
    /// forgot it tells the tracker).
    pub(super) fn forget(&mut self, name: &str) {
        self.pieces.remove(name);
        self.forget_hashes(name);
        self.drops.retain(|n| n != name);
    }

    fn is_empty(&self) -> bool {
        self.pieces.is_empty() && self.hashes.is_empty() && self.drops.is_empty()
    }
}

impl Store {
    /// Takes the verified pieces not yet reported, per file.
    pub fn take_reports(&self) -> Vec<(String, Vec<PieceIndex>)> {
        let mut inner = self.lock();
        std::mem::take(&mut inner.outbox.pieces)
            .into_iter()
            .map(|(name, pieces)| (name, pieces.into_iter().collect()))
            .collect()
    }

    /// Takes the piece hashes of our own files not yet sent to the tracker, in order.
    pub fn take_hash_reports(&self) -> Vec<(String, PieceIndex, Vec<Sha1Hash>)> {
        std::mem::take(&mut self.lock().outbox.hashes)
    }

    /// Takes the names given up since the last call, for `DROP`.
    pub fn take_drops(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().outbox.drops)
    }

    /// Sleeps until there is something to report (verified pieces, hashes of our own files,
    /// files given up) or `timeout` passes.
    pub fn wait_for_reports(&self, timeout: Duration) {
        let inner = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(inner, timeout, |i| i.outbox.is_empty() && !i.shutting_down);
    }

    /// After rejoining a tracker: report again every verified piece of every download, every
    /// piece hash known of every file offered, and every file given up or refused.
    pub fn report_all_again(&self) {
        let mut inner = self.lock();
        let mut outbox = Outbox::default();
        for (name, l) in &inner.files {
            match l.status {
                Status::Own | Status::Complete => {
                    outbox.hashes(name, 0, l.meta.piece_hashes.clone());
                }
                Status::Downloading if !l.have.is_clear() => {
                    let have = l.have.iter_ones().map(|p| p as PieceIndex).collect();
                    outbox.pieces.insert(name.clone(), have);
                }
                _ => {}
            }
        }
        // What we gave up or were refused, the new tracker must hear too, or it would wait
        // for us to fetch it.
        let withdrawn = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Withdrawn)
            .map(|(n, _)| n.clone());
        let drops: BTreeSet<String> = inner.given_up.iter().cloned().chain(withdrawn).collect();
        outbox.drops = drops.into_iter().collect();
        inner.outbox = outbox;
    }
}
