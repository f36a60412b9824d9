//! What this peer thinks of each remote it fetches from: how many faults it has made (three
//! and it is not asked again), when it may be tried again after its connection failed, and
//! whether a worker is fetching from it now. Plain data: the store holds it under its lock.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// After this many faults (pieces that failed their hash, replies that broke the protocol),
/// a remote peer is no longer asked.
const MAX_STRIKES: u32 = 3;
/// How long to leave a remote alone after its connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Remotes {
    strikes: HashMap<SocketAddr, u32>,
    retry_at: HashMap<SocketAddr, Instant>,
    workers: BTreeSet<SocketAddr>,
}

impl Remotes {
    /// Counts a fault against `remote`; returns whether it is now banned.
    pub fn strike(&mut self, remote: SocketAddr) -> bool {
        let s = self.strikes.entry(remote).or_insert(0);
        *s += 1;
        *s >= MAX_STRIKES
    }

    pub fn banned(&self, remote: SocketAddr) -> bool {
        self.strikes.get(&remote).is_some_and(|&s| s >= MAX_STRIKES)
    }

    /// A connection to `remote` failed: let it rest before the next try.
    pub fn rest(&mut self, remote: SocketAddr) {
        self.retry_at.insert(remote, Instant::now() + RETRY_AFTER);
    }

    /// Whether a worker for `remote` may start now: it is not banned, not resting, and has
    /// none yet.
    pub fn may_start(&self, remote: SocketAddr, now: Instant) -> bool {
        let resting = self.retry_at.get(&remote).is_some_and(|&t| t > now);
        !self.banned(remote) && !resting && !self.workers.contains(&remote)
    }

    pub fn worker_started(&mut self, remote: SocketAddr) {
        self.workers.insert(remote);
    }

    pub fn worker_done(&mut self, remote: SocketAddr) {
        self.workers.remove(&remote);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_is_banned_at_its_third_strike_and_rests_after_a_failure() {
        let mut r = Remotes::default();
        let a = SocketAddr::from(([127, 0, 0, 1], 7));
        let now = Instant::now();
        assert!(r.may_start(a, now));
        r.worker_started(a);
        assert!(!r.may_start(a, now), "one worker per remote");
        r.worker_done(a);
        r.rest(a);
        assert!(!r.may_start(a, Instant::now()));
        assert!(r.may_start(a, Instant::now() + RETRY_AFTER * 2));
        assert!(!r.strike(a) && !r.strike(a));
        assert!(r.strike(a));
        assert!(r.banned(a) && !r.may_start(a, Instant::now() + RETRY_AFTER * 2));
    }
}
