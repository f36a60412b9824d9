//! Pushing this tracker's records to its twin, on a thread and a connection of its own. On
//! every (re)connection `SYNC` asks how far the twin has applied this tracker's stream, and
//! everything after that goes out, in sequence order, pipelined in batches; then each change
//! as it is made, as far as the state log has reserved its sequence number (so a number the
//! twin has seen is never given again, even after a kill loses the log's last batch). What the twin has not acknowledged is simply sent again on the next
//! connection, so a frozen, cut-off, killed or restarting twin loses nothing and nothing
//! waits on it. Every 2 s the sessions heard from here are gossiped (`SEEN`), so that both
//! trackers agree on who is live. Synchronisation is the trackers' business only: a `SYNC`
//! carries a fresh nonce, and the receiving tracker takes the connection as its twin's only
//! once the twin, asked at its own address, vouches for that nonce (`VOUCH`), so that a
//! stranger who says `HELLO p2p/1 tracker` cannot push records.

use super::log::Log;
use super::tables::Tables;
use crate::link::{Link, LinkError, number};
use crate::protocol::{MAX_SEEN, Request, Role};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long to wait for the twin to connect or answer.
const TWIN_TIMEOUT: Duration = Duration::from_secs(2);
/// How long to wait before connecting again, unless a change comes first; and the least.
const RETRY: Duration = Duration::from_secs(1);
const RETRY_MIN: Duration = Duration::from_millis(50);
/// How often the sessions heard from here are gossiped.
const GOSSIP: Duration = Duration::from_secs(2);
/// An idle connection is pinged this often, so the twin does not close it.
const KEEPALIVE: Duration = Duration::from_secs(10);
/// The most records, and about the most bytes, sent before reading their replies.
const BATCH_RECORDS: usize = 256;
const BATCH_BYTES: usize = 1 << 20;

/// Who pushes to whom.
pub struct Pusher {
    pub me: SocketAddr,
    pub twin: SocketAddr,
    pub epoch: String,
    pub tables: Arc<Tables>,
    /// How far the twin has acknowledged this tracker's stream (0 while unknown).
    pub acked: Arc<AtomicU64>,
    /// The nonce of the `SYNC` under way, for the twin's `VOUCH`.
    pub nonce: Arc<Mutex<Option<String>>>,
    pub log: Log,
}

impl Pusher {
    pub fn spawn(self) -> io::Result<()> {
        thread::Builder::new()
            .name("tracker-sync".into())
            .spawn(move || self.run())?;
        Ok(())
    }

    fn run(self) {
        let mut reported: Option<String> = None;
        loop {
            let outcome = self.push();
            self.took(None);
            let why = match outcome {
                Ok(()) => "closed".to_string(),
                Err(e) => e.to_string(),
            };
            // Said once per kind of trouble, not once a second.
            if reported.as_deref() != Some(why.as_str()) {
                self.log.say(format!("twin {}: {why}; retrying", self.twin));
                reported = Some(why);
            }
            // Again after RETRY, or as soon as a change waits to reach the twin (a client
            // told of it may ask the twin next).
            thread::sleep(RETRY_MIN);
            let _ = self
                .tables
                .wait_change(self.tables.seq(), RETRY - RETRY_MIN);
        }
    }

    /// One connection's worth of pushing; returns when it breaks.
    fn push(&self) -> Result<(), LinkError> {
        let nonce = format!(
            "{:016x}{:016x}",
            crate::rng::random_u64(),
            crate::rng::random_u64()
        );
        *self.nonce.lock().unwrap_or_else(|e| e.into_inner()) = Some(nonce.clone());
        let mut link = Link::connect(self.twin, Role::Tracker, TWIN_TIMEOUT)?;
        let words = link.call(&Request::Sync {
            tracker: self.me,
            epoch: self.epoch.clone(),
            nonce,
        })?;
        let mut acked = number(&words, 0)?;
        self.took(Some(acked));
        self.log.say(format!(
            "twin {}: connected, it has our stream up to {acked}",
            self.twin
        ));
        let mut gossiped = Instant::now();
        let mut sent = Instant::now();
        loop {
            for (version, kind, key) in self.tables.claims_to_send() {
                let claimed = format!("{kind} {key}");
                match link.call(&Request::Claim { version, kind, key }) {
                    Ok(_) => self.tables.claim_answered(&claimed, true),
                    Err(LinkError::Refused(_)) => self.tables.claim_answered(&claimed, false),
                    Err(e) => return Err(e),
                }
            }
            let batch = self.tables.pushable_since(acked, BATCH_RECORDS);
            if batch.is_empty() {
                if gossiped.elapsed() >= GOSSIP {
                    self.gossip(&mut link)?;
                    gossiped = Instant::now();
                    sent = gossiped;
                }
                if sent.elapsed() >= KEEPALIVE {
                    link.call(&Request::Ping)?;
                    sent = Instant::now();
                }
                let wait = GOSSIP.saturating_sub(gossiped.elapsed());
                self.tables
                    .wait_pushable(acked, wait.max(Duration::from_millis(10)));
                continue;
            }
            let mut bytes = 0;
            let mut count = 0;
            for (seq, record) in &batch {
                let record = record.to_string();
                bytes += record.len();
                link.send(&Request::Put { seq: *seq, record })?;
                count += 1;
                if bytes >= BATCH_BYTES {
                    break;
                }
            }
            link.flush()?;
            for (seq, record) in &batch[..count] {
                match link.reply() {
                    Ok(_) => {}
                    // The twin cannot write its state file now: try again later, from here.
                    Err(LinkError::Refused(why)) if why.starts_with("not_saved") => {
                        self.took(Some(acked));
                        return Err(LinkError::Refused(why));
                    }
                    // The twin will never take this one: say so, and go on.
                    Err(LinkError::Refused(why)) => {
                        self.log
                            .say(format!("twin {} refused {record}: {why}", self.twin));
                    }
                    Err(e) => return Err(e),
                }
                acked = *seq;
            }
            self.took(Some(acked));
            // Sessions that just changed something here are live at the twin at once.
            self.gossip(&mut link)?;
            gossiped = Instant::now();
            sent = gossiped;
        }
    }

    /// The twin has acknowledged our stream up to `seq` (`None`: not connected).
    fn took(&self, seq: Option<u64>) {
        self.acked.store(seq.unwrap_or(0), Ordering::Relaxed);
        self.tables.twin_took(seq);
    }

    /// Sends `SEEN` for the sessions heard from here since the last time.
    fn gossip(&self, link: &mut Link) -> Result<(), LinkError> {
        for chunk in self.tables.take_gossip().chunks(MAX_SEEN) {
            link.call(&Request::Seen {
                tokens: chunk.to_vec(),
            })?;
        }
        Ok(())
    }
}

/// Whether the tracker at `twin` vouches for `nonce`: it is pushing to us with it right now.
pub fn vouched(twin: SocketAddr, nonce: &str) -> bool {
    Link::connect(twin, Role::Tracker, TWIN_TIMEOUT)
        .and_then(|mut link| {
            link.call(&Request::Vouch {
                nonce: nonce.to_string(),
            })
        })
        .is_ok()
}
