//! The leave rule: a peer may leave once it holds every piece any living peer holds, and
//! every other living peer holds every piece it holds; a file a peer gave up is not waited
//! for, either way. Decided over the whole table at once, under the swarm's lock.

use super::{PeerId, State, Swarm};
use crate::chunk::Bitset;
use crate::output::{self, Ticket};
use std::time::{Duration, Instant};

/// What a `LEAVE` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    Bye,
    /// Not yet; the state version at the time of the answer.
    Wait(u64),
}

impl Swarm {
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
        (Leave::Bye, Some(self.blocks.queue(block)))
    }
}

/// Where a peer stands with the leave rule.
enum Verdict {
    /// It may leave now.
    Ready,
    /// It lacks pieces another living peer holds.
    Lacking,
    /// It lacks nothing, but another living peer still lacks some of its pieces.
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
}
