//! Taking a user id or a group name once across the pair. Records alone cannot: two trackers
//! asked for the same new id at the same moment would each find it free and each create it
//! (the later version then wins at both, and one user loses an account they were told was
//! theirs). So before a tracker creates a `user` or `group` record it claims the key from its
//! twin over the push connection (`CLAIM <version> <kind> <key>`), and the twin answers:
//! - no, when it holds that record live already, or claims the same key itself with a lower
//!   version (the lower version wins at both trackers, so exactly one of two crossing claims
//!   goes through);
//! - yes otherwise, and then it holds the key for the claimant for [`HOLD`], refusing its own
//!   clients the key until the claimant's record arrives.
//!
//! While no push connection is up (the twin down or away) or the twin does not answer within
//! the claimant's wait, the key is taken on this tracker's word alone: the pair stays usable
//! with one tracker, at the price that two trackers cut off from each other may both create it.

use super::super::super::records::Version;
use super::super::{Inner, Tables};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a key granted to the twin is kept from this tracker's own clients.
const HOLD: Duration = Duration::from_secs(10);

/// A claim of this tracker's, waiting for the twin.
struct Mine {
    version: Version,
    sent: bool,
    /// The twin's answer: `Some(true)` granted.
    answer: Option<bool>,
}

/// The push connection to the twin as the replies to clients see it: how far the twin has
/// acknowledged this tracker's stream, and the claims in flight both ways.
#[derive(Default)]
pub struct Twin {
    /// How far the twin has acknowledged this tracker's stream, while connected.
    pub(super) acked: Option<u64>,
    /// How many push connections ended or failed.
    pub(super) tries: u64,
    /// Keys this tracker claims from the twin.
    mine: HashMap<String, Mine>,
    /// Keys granted to the twin: the claim's version, and until when it holds.
    granted: HashMap<String, (Version, Instant)>,
}

impl Inner {
    /// Whether `key` is held for the twin: granted to it a moment ago, and its record (or
    /// a later one: a removal) has not arrived yet.
    pub(in crate::tracker::pair) fn held_for_twin(&self, key: &str) -> bool {
        let arrived = |claimed: &Version| {
            self.records
                .get(key)
                .is_some_and(|stored| stored.version >= *claimed)
        };
        self.twin
            .granted
            .get(key)
            .is_some_and(|(claimed, until)| *until > Instant::now() && !arrived(claimed))
    }
}

impl Twin {
    /// Whether a claim waits to be sent.
    pub(super) fn has_unsent(&self) -> bool {
        self.mine.values().any(|m| !m.sent)
    }

    /// The connection ended: claims not answered are decided here alone.
    pub(super) fn disconnected(&mut self) {
        for m in self.mine.values_mut() {
            m.answer.get_or_insert(true);
        }
        let now = Instant::now();
        self.granted.retain(|_, (_, until)| *until > now);
    }
}

impl Tables {
    /// Claims `key` (`user <id>` or `group <g>`) from the twin before creating it, waiting
    /// at most `wait` for the answer; `false` when the key is taken (here, by a claim of
    /// this tracker under way, or at the twin). Call [`Tables::unclaim`] once the record
    /// is written or given up.
    pub fn claim(&self, key: &str, wait: Duration) -> bool {
        let mut t = self.lock();
        if t.records.live(key).is_some() || t.held_for_twin(key) || t.twin.mine.contains_key(key) {
            return false;
        }
        if t.twin.acked.is_none() {
            return true;
        }
        let version = t.records.next_version();
        t.twin.mine.insert(
            key.to_string(),
            Mine {
                version,
                sent: false,
                answer: None,
            },
        );
        self.changed.notify_all();
        let (mut t, _) = self
            .changed
            .wait_timeout_while(t, wait, |t| {
                t.twin.mine.get(key).is_some_and(|m| m.answer.is_none())
            })
            .unwrap_or_else(|e| e.into_inner());
        // No answer in time: the twin is slow or frozen; this tracker decides.
        let granted = t.twin.mine.get(key).is_none_or(|m| m.answer != Some(false));
        if !granted {
            t.twin.mine.remove(key);
        }
        granted
    }

    /// The record of a claim is written (or the creation given up).
    pub fn unclaim(&self, key: &str) {
        self.lock().twin.mine.remove(key);
    }

    /// Whether `key` may be created here now: not live, not held for the twin.
    #[cfg(test)]
    pub fn free_here(&self, key: &str) -> bool {
        let t = self.lock();
        t.records.live(key).is_none() && !t.held_for_twin(key)
    }

    /// The claims to send the twin now: (version, kind, key word); marked sent.
    pub fn claims_to_send(&self) -> Vec<(String, String, String)> {
        let mut t = self.lock();
        let mut out = Vec::new();
        for (key, m) in t.twin.mine.iter_mut().filter(|(_, m)| !m.sent) {
            m.sent = true;
            if let Some((kind, word)) = key.split_once(' ') {
                out.push((m.version.to_string(), kind.to_string(), word.to_string()));
            }
        }
        out
    }

    /// The twin's answer to this tracker's claim of `key`.
    pub fn claim_answered(&self, key: &str, granted: bool) {
        let mut t = self.lock();
        if let Some(m) = t.twin.mine.get_mut(key) {
            m.answer = Some(granted);
            self.changed.notify_all();
        }
    }

    /// `CLAIM` from the twin: whether it may create `key` (its claim's `version`).
    pub fn grant(&self, key: &str, version: Version) -> bool {
        let mut t = self.lock();
        if t.records.live(key).is_some() {
            return false;
        }
        if t.twin.mine.get(key).is_some_and(|m| m.version < version) {
            return false;
        }
        let until = Instant::now() + HOLD;
        t.twin.granted.insert(key.to_string(), (version, until));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::super::records::Value;
    use super::*;

    fn version(counter: u64, origin: &str) -> Version {
        Version {
            counter,
            origin: origin.into(),
        }
    }

    #[test]
    fn of_two_crossing_claims_the_lower_version_wins_at_both_trackers() {
        let (a, b) = (Tables::new("a"), Tables::new("b"));
        for t in [&a, &b] {
            t.twin_took(Some(0));
        }
        // Each has its own claim under way (as `claim` leaves it before the answer).
        for (t, v) in [(&a, version(5, "a")), (&b, version(7, "b"))] {
            t.lock().twin.mine.insert(
                "user dave".into(),
                Mine {
                    version: v,
                    sent: true,
                    answer: None,
                },
            );
        }
        assert!(
            !a.grant("user dave", version(7, "b")),
            "a keeps its lower claim"
        );
        assert!(
            b.grant("user dave", version(5, "a")),
            "b yields to the lower claim"
        );
        // b's own clients are refused the key while it is held for a.
        b.unclaim("user dave");
        assert!(!b.free_here("user dave"));
        assert!(!b.claim("user dave", Duration::from_millis(10)));
        assert!(a.free_here("user dave"));
        // Once a's record (here: its later removal) has arrived, the hold is over.
        b.lock().change("user dave".into(), Value::Gone(0));
        assert!(b.free_here("user dave"));
    }

    #[test]
    fn without_a_twin_a_claim_is_decided_here_and_a_live_key_is_never_granted() {
        let t = Tables::new("a");
        assert!(
            t.claim("group g", Duration::from_secs(5)),
            "no twin: at once"
        );
        t.unclaim("group g");
        t.twin_took(Some(0));
        // Connected, but the twin never answers: decided here after the wait.
        assert!(t.claim("user x", Duration::from_millis(20)));
        assert_eq!(t.claims_to_send().len(), 1, "it was queued for the twin");
        t.unclaim("user x");
        t.twin_took(None);
        assert!(t.grant("user y", version(1, "b")));
        assert!(t.claim("user z", Duration::from_secs(5)));
    }
}
