//! The engine's side of other swarms' trackers (see [`super::foreign`]): which records are
//! another swarm's, sending each of their pairs on a run on a thread of its own, taking the
//! pairs back with what they learned, and how such a download ends its `show downloads` line
//! while its trackers do not answer. The engine thread never waits on those trackers: a pair
//! still out on a run is simply not sent again, and a pair that never comes back (a tracker
//! that keeps a run reading for ever) holds up nothing but its own files.

use super::foreign::{Ask, Offer, Pair, Run, same_pair, silent_words};
use super::{Core, Kind, Record};
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;

/// The pairs of other swarms that this client's files name.
pub(super) struct Foreign {
    /// Pairs at hand, between runs.
    home: Vec<Pair>,
    /// Pairs out on a run.
    away: Vec<[SocketAddr; 2]>,
    /// Pairs where neither tracker answered at their last run.
    silent: Vec<[SocketAddr; 2]>,
    /// Where runs send their pair back, and where the engine takes them.
    back_tx: Sender<(Pair, Run)>,
    back_rx: Receiver<(Pair, Run)>,
}

impl Default for Foreign {
    fn default() -> Foreign {
        let (back_tx, back_rx) = mpsc::channel();
        Foreign {
            home: Vec::new(),
            away: Vec::new(),
            silent: Vec::new(),
            back_tx,
            back_rx,
        }
    }
}

impl Foreign {
    /// Takes pair `addrs` out for a run (made the first time it is named), or None while it
    /// is out on one.
    fn take(&mut self, addrs: [SocketAddr; 2]) -> Option<Pair> {
        if self.away.iter().any(|a| same_pair(*a, addrs)) {
            return None;
        }
        let pair = match self.home.iter().position(|p| same_pair(p.addrs(), addrs)) {
            Some(at) => self.home.swap_remove(at),
            None => Pair::new(addrs),
        };
        self.away.push(addrs);
        Some(pair)
    }

    /// Notes that pair `addrs` will not come back (its thread could not start).
    fn lost(&mut self, addrs: [SocketAddr; 2]) {
        self.away.retain(|a| !same_pair(*a, addrs));
    }

    /// Takes back a pair from its run; notes whether it answered.
    fn welcome(&mut self, pair: Pair) {
        let addrs = pair.addrs();
        self.away.retain(|a| !same_pair(*a, addrs));
        self.silent.retain(|a| !same_pair(*a, addrs));
        if pair.silent() {
            self.silent.push(addrs);
        }
        self.home.push(pair);
    }
}

impl Core {
    /// Whether `addrs` (a `.mtorrent`'s trackers) are another swarm's: neither is ours.
    pub(super) fn is_foreign(&self, addrs: [SocketAddr; 2]) -> bool {
        !addrs.iter().any(|a| self.in_use.trackers().contains(a))
    }

    /// For `show downloads`: when `r` is a download of another swarm whose trackers both
    /// did not answer the last time, the words that end its line in place of its seeders
    /// (`its trackers A and B do not answer`).
    pub(super) fn trackers_silent(&self, r: &Record) -> Option<String> {
        let addrs = r.meta.trackers;
        let silent = self.foreign.silent.iter().any(|a| same_pair(*a, addrs));
        (matches!(r.kind, Kind::Download { .. }) && self.is_foreign(addrs) && silent)
            .then(|| silent_words(addrs))
    }

    /// Sends every other swarm's pair that is at hand on a run: it is told what this client
    /// holds of its files and asked who holds `asks` (unfinished downloads of its files). A
    /// pair no file names any more ends its session there, on its own thread, and is
    /// forgotten.
    pub(super) fn refresh_foreign(&mut self, asks: Vec<([SocketAddr; 2], Ask)>) {
        let mut offers: Vec<([SocketAddr; 2], Offer)> = Vec::new();
        for r in self
            .records
            .iter()
            .filter(|r| self.is_foreign(r.meta.trackers))
        {
            let Some((bits, _)) = self.live_progress(&r.key) else {
                continue;
            };
            let offer = Offer {
                key: r.key.clone(),
                name: r.meta.name.clone(),
                size: r.meta.size,
                bits: bits.to_word(),
            };
            offers.push((r.meta.trackers, offer));
        }
        let mut named: Vec<[SocketAddr; 2]> = Vec::new();
        for addrs in offers
            .iter()
            .map(|(a, _)| a)
            .chain(asks.iter().map(|(a, _)| a))
        {
            if !named.iter().any(|n| same_pair(*n, *addrs)) {
                named.push(*addrs);
            }
        }
        let (kept, gone): (Vec<Pair>, Vec<Pair>) = std::mem::take(&mut self.foreign.home)
            .into_iter()
            .partition(|p| named.iter().any(|n| same_pair(*n, p.addrs())));
        self.foreign.home = kept;
        for mut pair in gone {
            let ended = thread::Builder::new()
                .name("foreign-quit".into())
                .spawn(move || pair.quit());
            if let Err(e) = ended {
                self.notes
                    .note(&format!("cannot end a foreign session: {e}"));
            }
        }
        let (mut offers, mut asks) = (offers, asks);
        for addrs in named {
            let mine = |a: &[SocketAddr; 2]| same_pair(*a, addrs);
            let (o, rest): (Vec<_>, Vec<_>) = offers.into_iter().partition(|(a, _)| mine(a));
            offers = rest;
            let (q, rest): (Vec<_>, Vec<_>) = asks.into_iter().partition(|(a, _)| mine(a));
            asks = rest;
            let Some(mut pair) = self.foreign.take(addrs) else {
                continue;
            };
            let o: Vec<Offer> = o.into_iter().map(|(_, o)| o).collect();
            let q: Vec<Ask> = q.into_iter().map(|(_, q)| q).collect();
            let (me, back) = (self.me, self.foreign.back_tx.clone());
            let sent = thread::Builder::new()
                .name("foreign-run".into())
                .spawn(move || {
                    let run = pair.run(me, &o, &q);
                    let _ = back.send((pair, run));
                });
            if let Err(e) = sent {
                self.foreign.lost(addrs);
                self.notes.note(&format!("cannot ask {addrs:?}: {e}"));
            }
        }
    }

    /// Takes back the pairs whose run ended: what they learned of holders is used as our
    /// own pair's answers are, and their notes are written.
    pub(super) fn collect_foreign(&mut self) {
        while let Ok((pair, run)) = self.foreign.back_rx.try_recv() {
            self.foreign.welcome(pair);
            for line in &run.notes {
                self.notes.note(line);
            }
            for (key, lines) in run.holders {
                self.apply_holders(&key, &lines);
            }
        }
    }

    /// Ends this client's sessions at the pairs at hand (at `quit`; the others lapse after
    /// their trackers' time-to-live).
    pub(super) fn quit_foreign(&mut self) {
        for pair in &mut self.foreign.home {
            pair.quit();
        }
        self.foreign.home.clear();
    }
}
