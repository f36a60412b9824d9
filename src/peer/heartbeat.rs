//! The peer's heartbeat: a thread with nothing else to do and a connection of its own to the
//! tracker, saying `BEAT <id> <token>` every second. Nothing that can take long (hashing,
//! disk writes, the store's lock, a slow reply on the request connection) sits on its path,
//! so a busy peer on a saturated machine never looks dead to the tracker.

use crate::link::{Link, LinkError};
use crate::protocol::{Request, Role};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How often a heartbeat goes out (the tracker waits 5 s before it takes a peer for dead).
const EVERY: Duration = Duration::from_secs(1);
/// How long to wait for the tracker to connect or answer one heartbeat.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Beats while it lives; dropping it stops the thread and closes its connection.
pub struct Heartbeat {
    stop: Arc<AtomicBool>,
}

impl Heartbeat {
    /// Starts beating for peer `id` of the tracker at `tracker`.
    pub fn start(tracker: SocketAddr, id: u64, token: u64) -> Heartbeat {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let spawned = thread::Builder::new()
            .name("heartbeat".into())
            .spawn(move || {
                // A connection that fails (or is refused for being busy) is made again, once
                // a second, without a word: if the tracker is gone, the swarm loop says so. A
                // tracker that no longer knows this id ends it: it also closes our request
                // connection, and the swarm loop joins again.
                while !stopped.load(Ordering::Relaxed) {
                    match beat(tracker, id, token, &stopped) {
                        Ok(()) => return,
                        Err(LinkError::Refused(why))
                            if why.starts_with("not_joined") || why.starts_with("bad_token") =>
                        {
                            return;
                        }
                        Err(_) => thread::sleep(EVERY),
                    }
                }
            });
        if let Err(e) = spawned {
            eprintln!("peer: cannot start the heartbeat: {e}");
        }
        Heartbeat { stop }
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn beat(tracker: SocketAddr, id: u64, token: u64, stop: &AtomicBool) -> Result<(), LinkError> {
    let mut link = Link::connect(tracker, Role::Peer, TIMEOUT)?;
    let request = Request::Beat { id, token };
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            next = Instant::now() + EVERY;
            link.send(&request)?;
            link.flush()?;
            match link.reply() {
                Ok(_) => {}
                // A slow answer is no reason to stop beating: the next one still goes out.
                Err(LinkError::Io(e))
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) => {}
                Err(e) => return Err(e),
            }
        }
        // Short naps, so that a stopped heartbeat lets its connection go soon.
        thread::sleep(
            next.saturating_duration_since(Instant::now())
                .min(EVERY / 4),
        );
    }
    Ok(())
}
