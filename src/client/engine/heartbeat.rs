//! The client's heartbeat: `ALIVE <token>` every 3 s to the tracker in use, from a thread and
//! a connection of its own, so that nothing slow on the engine thread (hashing a big file to
//! share it, a tracker slow to answer a request) delays it. It is also how a dead tracker is
//! noticed between commands: when the tracker in use does not answer (2 s to connect or
//! reply), the heartbeat switches the pair to the other one (for the engine too, through
//! [`InUse`]) and tells the engine, which writes it in the `--log` notes. An
//! `ERR unknown_session` (the trackers forgot the session) is passed to the engine, which
//! opens a new session and registers everything again.

use super::Msg;
use super::in_use::InUse;
use super::tracker_link::{call_on, describe, nothing, unknown_session};
use crate::link::{Link, LinkError};
use crate::protocol::Request;
use std::io;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread;
use std::time::{Duration, Instant};

/// How often a session says it is alive (its time-to-live at the trackers is 15 s).
pub(super) const BEAT: Duration = Duration::from_secs(3);
/// How often a sleeping heartbeat looks whether the client is quitting.
const NAP: Duration = Duration::from_millis(100);

/// Starts the heartbeat thread; it ends when the client quits or the engine is gone.
pub(super) fn spawn(in_use: Arc<InUse>, engine: Sender<Msg>) -> io::Result<()> {
    thread::Builder::new()
        .name("client-heartbeat".into())
        .spawn(move || run(&in_use, &engine))?;
    Ok(())
}

/// The heartbeat's connection, and which tracker it goes to.
struct Beating {
    conn: Option<Link>,
    at: usize,
}

fn run(in_use: &InUse, engine: &Sender<Msg>) {
    let mut beating = Beating { conn: None, at: 0 };
    while !in_use.stopped() {
        let next = Instant::now() + BEAT;
        // No token yet: the engine is opening the session (or no tracker answers it).
        if let Some(token) = in_use.token()
            && !beat(in_use, &mut beating, &token, engine)
        {
            return;
        }
        while !in_use.stopped() {
            let left = next.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            thread::sleep(left.min(NAP));
        }
    }
}

/// One heartbeat, to the tracker in use or, when it does not answer, the other. Returns
/// false once the engine is gone.
fn beat(in_use: &InUse, beating: &mut Beating, token: &str, engine: &Sender<Msg>) -> bool {
    let alive = Request::Alive {
        token: token.to_string(),
    };
    let mut last = LinkError::Garbled("no tracker".into());
    for _ in 0..in_use.trackers().len() {
        let at = in_use.current();
        if at != beating.at {
            beating.conn = None;
            beating.at = at;
        }
        let Some(addr) = in_use.addr(at) else {
            return true;
        };
        match call_on(&mut beating.conn, addr, &alive, &mut nothing) {
            Ok(_) => {
                if in_use.answered(at) {
                    return engine.send(Msg::Back { at }).is_ok();
                }
                return true;
            }
            Err(e) if unknown_session(&e) => {
                if in_use.answered(at) && engine.send(Msg::Back { at }).is_err() {
                    return false;
                }
                let token = token.to_string();
                return engine.send(Msg::UnknownSession { token }).is_ok();
            }
            // It answered: whatever it refused, it is not gone.
            Err(LinkError::Refused(_)) => return true,
            Err(e) => {
                let why = describe(&e);
                let quiet = in_use.is_down();
                let (now, switched) = in_use.switch_from(at, &why);
                if switched && !quiet && engine.send(Msg::Switched { lost: at, now, why }).is_err()
                {
                    return false;
                }
                last = e;
            }
        }
    }
    in_use.all_failed(&describe(&last));
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::sync::mpsc::{self, Receiver};

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    /// A tracker that greets and answers every `ALIVE` with `reply`; sends each line it reads
    /// down the returned channel.
    fn tracker(reply: &'static str) -> (SocketAddr, Receiver<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for stream in listener.incoming().take(8) {
                let Ok(stream) = stream else { return };
                let mut writer = stream.try_clone().unwrap();
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let answer = if line.starts_with("HELLO") {
                        "OK p2p/1 tracker\n"
                    } else {
                        reply
                    };
                    let _ = tx.send(line);
                    if writer.write_all(answer.as_bytes()).is_err() {
                        break;
                    }
                }
            }
        });
        (addr, rx)
    }

    /// A tracker that accepts connections (the kernel does) but never answers: frozen.
    fn frozen() -> (SocketAddr, TcpListener) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        (listener.local_addr().unwrap(), listener)
    }

    fn started(trackers: Vec<SocketAddr>) -> (Arc<InUse>, Receiver<Msg>) {
        let in_use = Arc::new(InUse::new(trackers, Default::default()));
        in_use.set_token(Some(TOKEN.to_string()));
        let (tx, rx) = mpsc::channel();
        spawn(in_use.clone(), tx).unwrap();
        (in_use, rx)
    }

    #[test]
    fn a_frozen_tracker_is_left_for_the_other_within_a_few_seconds() {
        let (dead, _held) = frozen();
        let (good, heard) = tracker("OK\n");
        let (in_use, rx) = started(vec![dead, good]);
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Msg::Switched {
                lost: 0, now: 1, ..
            }) => {}
            Ok(_) => panic!("another message than the switch"),
            Err(e) => panic!("no switch: {e}"),
        }
        assert_eq!(in_use.current(), 1, "the engine uses the other one too");
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut lines = Vec::new();
        while !lines.contains(&format!("ALIVE {TOKEN}")) && Instant::now() < deadline {
            lines.extend(heard.recv_timeout(Duration::from_millis(200)));
        }
        assert!(lines.contains(&format!("ALIVE {TOKEN}")), "{lines:?}");
        in_use.stop();
    }

    #[test]
    fn a_forgotten_session_is_passed_to_the_engine() {
        let (good, _heard) = tracker("ERR unknown_session\n");
        let (in_use, rx) = started(vec![good]);
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Msg::UnknownSession { token }) => assert_eq!(token, TOKEN),
            Ok(_) => panic!("another message than the forgotten session"),
            Err(e) => panic!("nothing passed on: {e}"),
        }
        assert_eq!(in_use.current(), 0, "a tracker that answers is kept");
        in_use.stop();
    }
}
