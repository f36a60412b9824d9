//! The engine's link to the tracker pair: one request connection to the tracker in use (the
//! one [`InUse`] names, shared with the heartbeat), the client's session on it, and what to do
//! when a request fails. A connection the tracker closed while it sat idle is made again to
//! the same tracker once; a tracker that does not answer (2 s to connect or reply) is given up
//! for the other, whose copy of the session and its registrations is already there; a reply
//! `ERR unknown_session` (the session was forgotten) opens a new session and registers every
//! record again.

use super::{Core, view};
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

/// How long to wait for a tracker to connect or answer before trying the other.
pub(super) const TRACKER_TIMEOUT: Duration = Duration::from_secs(2);

/// More of a reply to read after its first line (a list's lines), or nothing.
pub(super) type More<'a> = &'a mut dyn FnMut(&mut Link, &[String]) -> Result<(), LinkError>;

/// Whether `e` says the other side closed the connection (an idle connection the tracker
/// hung up on, or a tracker that restarted), rather than that it did not answer.
pub(super) fn closed_by_peer(e: &LinkError) -> bool {
    matches!(e, LinkError::Io(e) if matches!(
        e.kind(),
        ErrorKind::UnexpectedEof
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::BrokenPipe
    ))
}

/// What went wrong, in words for stderr and the notes (a read that timed out says so).
pub(super) fn describe(e: &LinkError) -> String {
    match e {
        LinkError::Io(io) if matches!(io.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            format!("no answer within {} s", TRACKER_TIMEOUT.as_secs())
        }
        other => other.to_string(),
    }
}

/// Whether a refusal says the session is not known (closed, or forgotten after its silence).
pub(super) fn unknown_session(e: &LinkError) -> bool {
    matches!(e, LinkError::Refused(r) if r.split(' ').next() == Some("unknown_session"))
}

/// Sends `req` to the tracker at `addr` on `conn`, connecting first if there is no
/// connection. A connection that was already open and turns out closed by the tracker is
/// made again once, to the same tracker. A failure other than a refusal drops the connection.
pub(super) fn call_on(
    conn: &mut Option<Link>,
    addr: SocketAddr,
    req: &Request,
    more: More<'_>,
) -> Result<Vec<String>, LinkError> {
    call_on_with(conn, addr, req, &[], more)
}

/// [`call_on`] for a request followed by raw `payload` bytes (an `UPLOAD_FILE`'s hashes).
pub(super) fn call_on_with(
    conn: &mut Option<Link>,
    addr: SocketAddr,
    req: &Request,
    payload: &[u8],
    more: More<'_>,
) -> Result<Vec<String>, LinkError> {
    let reused = conn.is_some();
    match call_once(conn, addr, req, payload, more) {
        Err(e) if reused && closed_by_peer(&e) => call_once(conn, addr, req, payload, more),
        outcome => outcome,
    }
}

fn call_once(
    conn: &mut Option<Link>,
    addr: SocketAddr,
    req: &Request,
    payload: &[u8],
    more: More<'_>,
) -> Result<Vec<String>, LinkError> {
    let link = match conn {
        Some(link) => link,
        None => conn.insert(Link::connect(addr, Role::Client, TRACKER_TIMEOUT)?),
    };
    let sent = if payload.is_empty() {
        link.send(req)
    } else {
        link.send_with(req, payload)
    };
    let outcome = sent
        .and_then(|()| link.flush())
        .map_err(LinkError::from)
        .and_then(|()| link.reply())
        .and_then(|words| more(link, &words).map(|()| words));
    if let Err(e) = &outcome
        && !matches!(e, LinkError::Refused(_))
    {
        *conn = None;
    }
    outcome
}

/// `req` (a `SEED`, `UNSEED`, `QUIT`, `ALIVE` or an account request) naming `token` as its
/// session.
pub(super) fn with_token(req: &Request, token: &str) -> Request {
    let mut req = req.clone();
    if let Request::Seed { token: t, .. }
    | Request::Unseed { token: t, .. }
    | Request::Quit { token: t }
    | Request::Alive { token: t }
    | Request::Account { token: t, .. } = &mut req
    {
        *t = token.to_string();
    }
    req
}

/// The session token in an `OPEN`'s answer (32 hex digits), if it holds one.
pub(super) fn session_token(words: &[String]) -> Option<&String> {
    words
        .first()
        .filter(|t| t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Reads nothing more after a reply's first line.
pub(super) fn nothing(_: &mut Link, _: &[String]) -> Result<(), LinkError> {
    Ok(())
}

impl Core {
    /// Sends `req`, its token (if it names one) replaced by the session's, opening the
    /// session first if there is none, and switching trackers when the one in use does not
    /// answer.
    pub(super) fn call(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        self.call_then(req, &[], &mut nothing)
    }

    /// Like [`Core::call`] for a request followed by raw `payload` bytes.
    pub(super) fn call_with(
        &mut self,
        req: &Request,
        payload: &[u8],
    ) -> Result<Vec<String>, LinkError> {
        self.call_then(req, payload, &mut nothing)
    }

    /// Like [`Core::call`] for a reply of `OK <n>` and `n` lines; returns the lines.
    pub(super) fn call_list(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        let mut lines = Vec::new();
        self.call_then(req, &[], &mut |link, words| {
            lines = link.lines(number(words, 0)?)?;
            Ok(())
        })?;
        Ok(lines)
    }

    /// Like [`Core::call`], sending `payload` after the request and reading the rest of the
    /// reply with `more`.
    pub(super) fn call_then(
        &mut self,
        req: &Request,
        payload: &[u8],
        more: More<'_>,
    ) -> Result<Vec<String>, LinkError> {
        let mut last = LinkError::Garbled("no tracker".into());
        let mut reopened = false;
        let mut failed = 0;
        // Each turn answers, switches trackers, or (once) reopens the session.
        while failed < self.in_use.trackers().len() {
            let at = self.in_use.current();
            if at != self.link_at {
                self.link = None;
                self.link_at = at;
            }
            let Some(addr) = self.in_use.addr(at) else {
                break;
            };
            let outcome = match self.session(addr) {
                Ok(token) => {
                    let req = with_token(req, &token);
                    call_on_with(&mut self.link, addr, &req, payload, more)
                }
                Err(e) => Err(e),
            };
            match outcome {
                Ok(words) => {
                    if self.in_use.answered(at) {
                        self.note_back(at);
                    }
                    return Ok(words);
                }
                // A session the trackers forgot has nothing left to end.
                Err(e) if unknown_session(&e) && matches!(req, Request::Quit { .. }) => {
                    return Ok(Vec::new());
                }
                Err(e) if unknown_session(&e) && !reopened => {
                    reopened = true;
                    self.forget_session();
                }
                Err(e @ LinkError::Refused(_)) => return Err(e),
                Err(e) => {
                    self.lose(at, &e);
                    failed += 1;
                    last = e;
                }
            }
        }
        self.in_use.all_failed(&describe(&last));
        Err(last)
    }

    /// Writes the end of an outage, tracker `at` answering, in the `--log` notes.
    pub(super) fn note_back(&mut self, at: usize) {
        self.register_again = true;
        if let Some(addr) = self.in_use.addr(at) {
            self.notes.note(&format!("using tracker {addr}"));
        }
    }

    /// The trackers no longer know the session: the next request opens a new one and
    /// registers every record in it again.
    pub(super) fn forget_session(&mut self) {
        self.in_use.set_token(None);
        self.notes.note(&format!(
            "the trackers forgot this client's session; registering its {} files again",
            self.records.len()
        ));
    }

    /// Tracker `at` did not answer: the engine's connection goes, and the pair switches to the
    /// other tracker unless the heartbeat already did.
    fn lose(&mut self, at: usize, e: &LinkError) {
        self.link = None;
        let why = describe(e);
        let quiet = self.in_use.is_down();
        let (now, switched) = self.in_use.switch_from(at, &why);
        if switched && !quiet {
            self.note_switch(at, now, &why);
        }
    }

    /// Writes a switch from tracker `lost` to tracker `now` in the `--log` notes.
    pub(super) fn note_switch(&mut self, lost: usize, now: usize, why: &str) {
        self.register_again = true;
        if let (Some(lost), Some(now)) = (self.in_use.addr(lost), self.in_use.addr(now)) {
            self.notes.note(&format!("lost tracker {lost}: {why}"));
            // A lone tracker has no other to use.
            if lost != now {
                self.notes.note(&format!("using tracker {now}"));
            }
        }
    }

    /// The session's token: opens a session at `addr` if there is none, and registers every
    /// record in it before the token is used (or shared with the heartbeat).
    fn session(&mut self, addr: SocketAddr) -> Result<String, LinkError> {
        if let Some(token) = self.in_use.token() {
            return Ok(token);
        }
        let me = self.me;
        let words = call_on(
            &mut self.link,
            addr,
            &Request::Open { addr: me },
            &mut nothing,
        )?;
        let token = session_token(&words)
            .ok_or_else(|| LinkError::Garbled(format!("OK {}", words.join(" "))))?
            .clone();
        self.notes
            .note(&format!("session opened at tracker {addr}"));
        // The login first: the group records are registered in a logged-in session.
        self.login_again(addr, &token)?;
        let mut keys: Vec<String> = self.records.iter().map(|r| r.key.clone()).collect();
        keys.sort();
        keys.dedup();
        for key in keys {
            let Some(req) = self.seed_request(&key, &token) else {
                continue;
            };
            let outcome = call_on(&mut self.link, addr, &req, &mut nothing);
            self.registered(&key, outcome)?;
        }
        self.in_use.set_token(Some(token.clone()));
        Ok(token)
    }

    /// Tells the trackers this client no longer holds `key`; a removal no tracker takes now
    /// is sent again at every tick until one does (a removal is never just forgotten).
    pub(super) fn unregister(&mut self, key: &str, size: u64, name: &str) {
        let unseed = Request::Unseed {
            token: String::new(),
            key: key.to_string(),
            size,
        };
        match self.call(&unseed) {
            Ok(_) => {
                self.unregistering.remove(key);
            }
            Err(e) => {
                self.notes.note(&format!(
                    "the trackers did not take the removal of {name:?} yet ({e}); will try again"
                ));
                self.unregistering.insert(key.to_string(), size);
            }
        }
    }

    /// Tells the trackers which pieces of `key` this client holds.
    pub(super) fn register(&mut self, key: &str) {
        // Shared again: a removal still waiting to be sent must not undo it.
        self.unregistering.remove(key);
        let Some(seed) = self.seed_request(key, "") else {
            return;
        };
        let outcome = self.call(&seed);
        let _ = self.registered(key, outcome);
    }

    /// Takes the outcome of registering `key`: a refusal (`ERR full`, `ERR too_many_files`)
    /// is one line on stderr, once until the file is taken; other failures are the caller's.
    fn registered(
        &mut self,
        key: &str,
        outcome: Result<Vec<String>, LinkError>,
    ) -> Result<(), LinkError> {
        match outcome {
            Ok(_) => {
                self.refused.remove(key);
                Ok(())
            }
            Err(LinkError::Refused(why)) if !why.starts_with("unknown_session") => {
                if self.refused.insert(key.to_string()) {
                    let name = self.records.iter().find(|r| r.key == key);
                    let name = name.map_or(key, |r| r.meta.name.as_str());
                    let line = format!("the tracker did not take {}: {why}", view::escape(name));
                    self.event(line);
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn seed_request(&self, key: &str, token: &str) -> Option<Request> {
        let r = self.records.iter().find(|r| r.key == key)?;
        // A file given up (failed, or changed on disk) is offered to nobody.
        let (bits, _) = self.live_progress(key)?;
        // Held only for groups: its holders are for their members to learn, not for anyone
        // who asks `SEEDERS`.
        let private = !self
            .records
            .iter()
            .any(|o| o.key == key && o.group.is_none());
        Some(Request::Seed {
            token: token.to_string(),
            key: key.to_string(),
            name: r.meta.name.clone(),
            size: r.meta.size,
            bits: bits.to_word(),
            private,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::thread;

    /// A tracker that answers `HELLO`, then `requests` requests with `OK`, then hangs up,
    /// on each of its first `connections` connections; then it stops listening.
    fn hanging_up(requests: usize, connections: usize) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming().take(connections) {
                let Ok(stream) = stream else { return };
                let mut writer = stream.try_clone().unwrap();
                let mut lines = BufReader::new(stream).lines();
                for _ in 0..=requests {
                    let Some(Ok(line)) = lines.next() else { break };
                    let answer = if line.starts_with("HELLO") {
                        "OK p2p/1 tracker\n"
                    } else {
                        "OK\n"
                    };
                    let _ = writer.write_all(answer.as_bytes());
                }
            }
        });
        addr
    }

    #[test]
    fn a_connection_the_tracker_closed_is_made_again_to_the_same_tracker_once() {
        let addr = hanging_up(1, 2);
        let mut conn = None;
        assert!(call_on(&mut conn, addr, &Request::Ping, &mut nothing).is_ok());
        // The tracker hung up after that reply; the next request finds out and reconnects.
        let again = call_on(&mut conn, addr, &Request::Ping, &mut nothing);
        assert!(again.is_ok(), "{again:?}");
    }

    #[test]
    fn a_fresh_connection_that_closes_is_not_made_again() {
        let addr = hanging_up(0, 1);
        let mut conn = None;
        // A second try would find the tracker gone (refused), not closed.
        let got = call_on(&mut conn, addr, &Request::Ping, &mut nothing);
        assert!(matches!(&got, Err(e) if closed_by_peer(e)), "{got:?}");
    }

    #[test]
    fn requests_name_the_session_they_are_sent_in() {
        let token = "0123456789abcdef0123456789abcdef";
        let quit = Request::Quit {
            token: String::new(),
        };
        assert_eq!(
            with_token(&quit, token).to_string(),
            format!("QUIT {token}")
        );
        let seeders = Request::Seeders {
            key: "a".repeat(40),
            size: 5,
        };
        assert_eq!(with_token(&seeders, token), seeders, "no token to name");
    }

    #[test]
    fn only_an_unknown_session_refusal_counts_as_one() {
        let refused = |r: &str| LinkError::Refused(r.to_string());
        assert!(unknown_session(&refused("unknown_session")));
        assert!(unknown_session(&refused("unknown_session closed at 12")));
        assert!(!unknown_session(&refused("unknown_sessions")));
        assert!(!unknown_session(&refused("full")));
    }
}
