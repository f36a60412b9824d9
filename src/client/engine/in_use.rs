//! What the engine thread and the heartbeat thread share about the tracker pair: which
//! tracker is in use and the session's token. Either thread may find the tracker in use dead;
//! the switch is one compare-and-swap, so it happens once however many notice it, and both
//! threads then talk to the same tracker. The token lives in memory only: a restarted client
//! opens a new session. A switch, an outage and its end are told to the user in lines of
//! their own between prompts (the engine's events), naming the tracker used now.

use super::Events;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

pub(super) struct InUse {
    trackers: Vec<SocketAddr>,
    current: AtomicUsize,
    token: Mutex<Option<String>>,
    /// No tracker answered the last time one was needed: switches are not announced until
    /// one answers again, so an outage is one line, not one a second.
    down: AtomicBool,
    stopped: AtomicBool,
    /// Where the lines for the user go (printed between prompts).
    news: Events,
}

impl InUse {
    /// Starts with the first tracker; `trackers` holds one or two addresses.
    pub(super) fn new(trackers: Vec<SocketAddr>, news: Events) -> InUse {
        InUse {
            trackers,
            current: AtomicUsize::new(0),
            token: Mutex::new(None),
            down: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            news,
        }
    }

    /// Tells the user `line`, on a line of its own between prompts.
    fn say(&self, line: String) {
        self.news
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }

    pub(super) fn trackers(&self) -> &[SocketAddr] {
        &self.trackers
    }

    /// The two trackers a `.mtorrent` names: the first twice when the client knows one.
    pub(super) fn pair_for_mtorrent(&self) -> [SocketAddr; 2] {
        let first = self.trackers.first().copied();
        let first = first.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 0)));
        [first, self.trackers.get(1).copied().unwrap_or(first)]
    }

    /// The index of the tracker in use.
    pub(super) fn current(&self) -> usize {
        self.current.load(Ordering::SeqCst) % self.trackers.len().max(1)
    }

    /// The address of tracker `at` (the first if `at` is out of range).
    pub(super) fn addr(&self, at: usize) -> Option<SocketAddr> {
        self.trackers
            .get(at)
            .or_else(|| self.trackers.first())
            .copied()
    }

    /// Tracker `lost` did not answer (`why`): moves to the other one, unless another thread
    /// already did, and says so, naming the tracker used now (a lone tracker has no
    /// other: [`InUse::all_failed`] speaks for it). Returns the tracker in use now, and
    /// whether this call made the switch.
    pub(super) fn switch_from(&self, lost: usize, why: &str) -> (usize, bool) {
        let next = (lost + 1) % self.trackers.len().max(1);
        match self
            .current
            .compare_exchange(lost, next, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {
                if !self.down.load(Ordering::SeqCst)
                    && next != lost
                    && let (Some(from), Some(to)) = (self.addr(lost), self.addr(next))
                {
                    self.say(format!(
                        "tracker {from} stopped answering ({why}); switching to {to}"
                    ));
                }
                (next, true)
            }
            Err(now) => (now % self.trackers.len().max(1), false),
        }
    }

    /// Every tracker failed in turn (the last with `why`): says so once per outage.
    pub(super) fn all_failed(&self, why: &str) {
        if !self.down.swap(true, Ordering::SeqCst) {
            self.say(format!(
                "no tracker answers ({why}); trying again every few seconds"
            ));
        }
    }

    /// Tracker `at` answered: ends an outage, saying which tracker is in use. Returns whether
    /// an outage ended.
    pub(super) fn answered(&self, at: usize) -> bool {
        let ended = self.down.swap(false, Ordering::SeqCst);
        if ended && let Some(addr) = self.addr(at) {
            self.say(format!("tracker {addr} answers again; using it"));
        }
        ended
    }

    /// Whether no tracker answered the last time one was needed.
    pub(super) fn is_down(&self) -> bool {
        self.down.load(Ordering::SeqCst)
    }

    pub(super) fn token(&self) -> Option<String> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(super) fn set_token(&self, token: Option<String>) {
        *self.token.lock().unwrap_or_else(|e| e.into_inner()) = token;
    }

    /// Tells the heartbeat to end (the client is quitting).
    pub(super) fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
    }

    pub(super) fn stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> InUse {
        InUse::new(
            vec![
                SocketAddr::from(([127, 0, 0, 1], 7001)),
                SocketAddr::from(([127, 0, 0, 1], 7002)),
            ],
            Events::default(),
        )
    }

    #[test]
    fn two_threads_noticing_the_same_dead_tracker_switch_once() {
        let in_use = pair();
        assert_eq!(in_use.switch_from(0, "test"), (1, true));
        assert_eq!(
            in_use.switch_from(0, "test"),
            (1, false),
            "already switched"
        );
        assert_eq!(in_use.current(), 1);
        assert_eq!(
            in_use.switch_from(1, "test"),
            (0, true),
            "and back when that one dies"
        );
    }

    #[test]
    fn a_single_tracker_stays_in_use() {
        let in_use = InUse::new(
            vec![SocketAddr::from(([127, 0, 0, 1], 7001))],
            Events::default(),
        );
        assert_eq!(in_use.switch_from(0, "test"), (0, true));
        assert_eq!(in_use.current(), 0);
    }
}
