//! The piece picker: for each download, which remote holds which piece, how many workers
//! fetch each piece now, and the choice of the next piece for a worker (rarest first, random
//! among equally rare ones; in the endgame, a piece another worker is already fetching).
//! Plain data: no lock and no I/O here; the store holds it under its lock.

use crate::chunk::Bitset;
use std::collections::HashMap;
use std::net::SocketAddr;

/// At most this many workers fetch the same piece at once (only in the endgame).
const MAX_DUPLICATES: u8 = 2;

/// What the picker knows of one download.
pub struct Picker {
    /// Workers fetching each piece now, and the pieces where that is not zero.
    inflight: Vec<u8>,
    busy: Bitset,
    /// What each remote holder has, as of the last refresh.
    holders: HashMap<SocketAddr, Bitset>,
    /// How many holders have each piece.
    avail: Vec<u16>,
    /// No missing piece is rarer than this (as of the last refresh; pieces only go away).
    rarest: u16,
}

/// One download as [`pick_rarest`] sees it: its name, its picker, and its verified pieces.
pub type Download<'a> = (&'a str, &'a Picker, &'a Bitset);

impl Picker {
    pub fn new(pieces: usize) -> Picker {
        Picker {
            inflight: vec![0; pieces],
            busy: Bitset::new(pieces),
            holders: HashMap::new(),
            avail: vec![0; pieces],
            rarest: 1,
        }
    }

    /// One more worker fetches piece `p`.
    pub fn take(&mut self, p: usize) {
        self.inflight[p] = self.inflight[p].saturating_add(1);
        self.busy.set(p);
    }

    /// One worker fewer fetches piece `p`.
    pub fn untake(&mut self, p: usize) {
        self.inflight[p] = self.inflight[p].saturating_sub(1);
        if self.inflight[p] == 0 {
            self.busy.clear(p);
        }
    }

    /// Replaces what is known of who holds what. Only the first `hashed` pieces count (a
    /// piece is fetched only once its hash is known); holdings of the wrong length are
    /// ignored, and `banned` remotes are left out. Returns whether some piece missing from
    /// `have` is now held only by banned remotes: then the file can never be completed.
    pub fn set_holders(
        &mut self,
        holders: Vec<(SocketAddr, Bitset)>,
        have: &Bitset,
        hashed: usize,
        banned: impl Fn(&SocketAddr) -> bool,
    ) -> bool {
        let n = have.num_bits();
        let hashed = Bitset::prefix(n, hashed);
        self.avail = vec![0; n];
        self.holders.clear();
        let mut only_banned = Bitset::new(n);
        for (addr, mut pieces) in holders {
            if pieces.num_bits() != n {
                continue;
            }
            pieces.and_with(&hashed);
            if banned(&addr) {
                for p in pieces.iter_ones() {
                    only_banned.set(p);
                }
                continue;
            }
            for p in pieces.iter_ones() {
                self.avail[p] = self.avail[p].saturating_add(1);
            }
            self.holders.insert(addr, pieces);
        }
        let missing = (0..n).filter(|&p| !have.get(p) && self.avail[p] > 0);
        self.rarest = missing.map(|p| self.avail[p]).min().unwrap_or(1);
        only_banned
            .iter_ones()
            .any(|p| !have.get(p) && self.avail[p] == 0)
    }

    /// The remotes listed at the last refresh.
    pub fn holders(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.holders.keys().copied()
    }

    pub fn holds_any(&self, remote: SocketAddr) -> bool {
        self.holders.contains_key(&remote)
    }

    /// The remote refused piece `p`: don't ask it for that again until the next refresh.
    pub fn not_held(&mut self, remote: SocketAddr, p: usize) {
        if let Some(h) = self.holders.get_mut(&remote) {
            h.clear(p);
        }
    }

    /// Whether piece `p` can join a run of pieces asked of `remote` in one request: it holds
    /// it, `have` lacks it, and no worker fetches it.
    pub fn free_at(&self, remote: SocketAddr, have: &Bitset, p: usize) -> bool {
        p < self.inflight.len()
            && self.inflight[p] == 0
            && !have.get(p)
            && self.holders.get(&remote).is_some_and(|h| h.get(p))
    }

    /// Whether `remote` holds some piece missing from `have`.
    pub fn useful(&self, remote: SocketAddr, have: &Bitset) -> bool {
        self.holders
            .get(&remote)
            .is_some_and(|theirs| theirs.iter_ones().any(|p| !have.get(p)))
    }
}

/// The next piece to fetch from `remote` among `downloads`: the rarest piece it has that is
/// missing and that nobody fetches yet, random among equally rare ones; failing that (the
/// endgame), a piece another worker is fetching, unless `queued` says this worker already
/// has it. `salt` is a fresh random number: it picks the order in which files and pieces are
/// looked at, so that workers asking at once are handed different pieces. Returns the index
/// of the download in `downloads` and the piece.
pub fn pick_rarest(
    downloads: &[Download<'_>],
    remote: SocketAddr,
    salt: u64,
    queued: impl Fn(&str, usize) -> bool,
) -> Option<(usize, usize)> {
    let mut order: Vec<usize> = (0..downloads.len())
        .filter(|&i| downloads[i].1.holds_any(remote))
        .collect();
    let turn = salt as usize % order.len().max(1);
    order.rotate_left(turn);
    let mut best: Option<(u16, usize, usize)> = None;
    'files: for &i in &order {
        let (_, picker, have) = downloads[i];
        let theirs = &picker.holders[&remote];
        for p in candidates(theirs, have, &picker.busy, false, salt) {
            let avail = picker.avail[p];
            if best.is_none_or(|(b, _, _)| avail < b) {
                best = Some((avail, i, p));
                if avail <= 1 {
                    break 'files;
                }
                if avail <= picker.rarest {
                    continue 'files;
                }
            }
        }
    }
    best.map(|(_, i, p)| (i, p)).or_else(|| {
        order.iter().find_map(|&i| {
            let (name, picker, have) = downloads[i];
            let theirs = &picker.holders[&remote];
            candidates(theirs, have, &picker.busy, true, salt)
                .find(|&p| picker.inflight[p] < MAX_DUPLICATES && !queued(name, p))
                .map(|p| (i, p))
        })
    })
}

/// The pieces `theirs` has, `have` lacks, and that are `busy` or not as asked, visited 64 at
/// a time from a word and a bit offset that `salt` picks, so that peers asking at once are
/// handed different pieces.
fn candidates<'a>(
    theirs: &'a Bitset,
    have: &'a Bitset,
    busy: &'a Bitset,
    want_busy: bool,
    salt: u64,
) -> impl Iterator<Item = usize> + 'a {
    let n = theirs.words().len();
    let start = salt as usize % n.max(1);
    let turn = (salt >> 32) as u32 % 64;
    (0..n).flat_map(move |i| {
        let w = (start + i) % n;
        let b = busy.words()[w];
        let mut bits = theirs.words()[w] & !have.words()[w] & if want_busy { b } else { !b };
        bits = bits.rotate_right(turn);
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            Some(w * 64 + ((bit + turn) % 64) as usize)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use std::collections::BTreeSet;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn bits(n: usize, set: &[usize]) -> Bitset {
        let mut b = Bitset::new(n);
        for &i in set {
            b.set(i);
        }
        b
    }

    /// Picks for `remote` from the one download `picker` with nothing verified, and takes
    /// the piece picked.
    fn pick(picker: &mut Picker, have: &Bitset, remote: SocketAddr, rng: &mut Rng) -> usize {
        pick_queued(picker, have, remote, rng, &[]).expect("a piece to pick")
    }

    fn pick_queued(
        picker: &mut Picker,
        have: &Bitset,
        remote: SocketAddr,
        rng: &mut Rng,
        mine: &[usize],
    ) -> Option<usize> {
        let downloads = [("f", &*picker, have)];
        let (i, p) = pick_rarest(&downloads, remote, rng.next_u64(), |_, p| mine.contains(&p))?;
        assert_eq!(i, 0);
        picker.take(p);
        Some(p)
    }

    #[test]
    fn pieces_are_picked_rarest_first_then_shared_in_the_endgame() {
        let mut rng = Rng::seeded();
        let have = Bitset::new(100);
        let mut picker = Picker::new(100);
        // Remote 1 has everything; remotes 2 and 3 have all but pieces 7 and 42.
        let common: Vec<usize> = (0..100).filter(|p| *p != 7 && *p != 42).collect();
        let holders = vec![
            (addr(1), Bitset::full(100)),
            (addr(2), bits(100, &common)),
            (addr(3), bits(100, &common)),
        ];
        assert!(!picker.set_holders(holders, &have, 100, |_| false));
        assert_eq!(picker.holders().count(), 3);
        let mut rare = [
            pick(&mut picker, &have, addr(1), &mut rng),
            pick(&mut picker, &have, addr(1), &mut rng),
        ];
        rare.sort();
        assert_eq!(rare, [7, 42], "the two pieces only remote 1 has come first");
        // Every other piece is handed out once before any is handed out twice.
        let mut seen = BTreeSet::new();
        for _ in 0..98 {
            let p = pick(&mut picker, &have, addr(2), &mut rng);
            assert!(seen.insert(p), "piece {p} handed out twice");
        }
        // Endgame: remote 2 may now duplicate a piece another worker is fetching,
        // but not one already in its own queue.
        let mine = pick(&mut picker, &have, addr(2), &mut rng);
        let dup = pick_queued(&mut picker, &have, addr(2), &mut rng, &[mine]).unwrap();
        assert_ne!(dup, mine);
    }

    #[test]
    fn equally_rare_pieces_come_in_varied_orders() {
        let mut rng = Rng::seeded();
        let have = Bitset::new(256);
        let mut picker = Picker::new(256);
        picker.set_holders(vec![(addr(1), Bitset::full(256))], &have, 256, |_| false);
        let firsts: BTreeSet<usize> = (0..20)
            .map(|_| {
                let p = pick(&mut picker, &have, addr(1), &mut rng);
                picker.untake(p);
                p
            })
            .collect();
        assert!(firsts.len() > 5, "ties broken at random, got {firsts:?}");
    }

    #[test]
    fn pieces_without_known_hashes_are_not_picked_and_banned_remotes_not_counted() {
        let mut rng = Rng::seeded();
        let have = bits(4, &[0]);
        let mut picker = Picker::new(4);
        // Only the first two hashes are known: piece 1 is the only one to fetch.
        let hopeless = picker.set_holders(vec![(addr(1), Bitset::full(4))], &have, 2, |_| false);
        assert!(!hopeless);
        assert_eq!(pick(&mut picker, &have, addr(1), &mut rng), 1);
        assert_eq!(
            pick_queued(&mut picker, &have, addr(1), &mut rng, &[1]),
            None
        );
        // Piece 3 held only by a banned remote: hopeless.
        let holders = vec![(addr(1), bits(4, &[1, 2])), (addr(2), Bitset::full(4))];
        assert!(picker.set_holders(holders, &have, 4, |a| *a == addr(2)));
        assert!(!picker.holds_any(addr(2)));
        assert!(picker.useful(addr(1), &have));
        picker.not_held(addr(1), 1);
        picker.not_held(addr(1), 2);
        assert!(!picker.useful(addr(1), &have));
    }
}
