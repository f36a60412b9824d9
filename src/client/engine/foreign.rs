//! One tracker pair of another swarm, as a `.mtorrent` names it (neither address is one of
//! the client's own): a request connection with failover between its two trackers, this
//! client's session there, and what it was told. One [`Pair::run`] offers what this client
//! holds of the pair's files (`OPEN`, a `SEED` whenever more pieces verified, an `ALIVE` when
//! quiet 3 s, `UNSEED` once a file is gone) and asks who holds the unfinished ones. A run
//! happens on a thread of its own ([`super::abroad`] sends it and takes the pair back), so a
//! slow, silent or hostile tracker never holds up the engine or the shell. A pair where
//! neither tracker answered rests for [`QUIET`] before it is asked again.

use super::tracker_link::{More, call_on, describe, nothing, session_token, unknown_session};
use crate::link::{Link, LinkError, number};
use crate::protocol::Request;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a pair where neither tracker answered is not asked again.
pub(super) const QUIET: Duration = Duration::from_secs(10);

/// How many of a pair's refusals are written in the notes (each once).
const REFUSALS_SAID: usize = 32;

/// How long the session at a pair may go unheard before an `ALIVE` (its time-to-live is 15 s).
const ALIVE_EVERY: Duration = Duration::from_secs(3);

/// The most holder lines taken from one `SEEDERS` answer (the trackers keep at most 4096
/// sessions): a longer list is a tracker that lies, and is refused.
const MAX_HOLDER_LINES: u64 = 4096;

/// One other swarm's pair of trackers, as a `.mtorrent` names it.
pub(super) struct Pair {
    /// The addresses, the first twice when the `.mtorrent` names one tracker twice.
    addrs: [SocketAddr; 2],
    link: Option<Link>,
    /// Which of `addrs` the link is to (or is made to next).
    at: usize,
    /// When neither tracker answered, and why (the last failure): not asked again before
    /// [`QUIET`] has passed.
    silent: Option<(Instant, String)>,
    /// This client's session at the pair, what it was told this client holds (info hash →
    /// bitset word and size), and when the pair last answered.
    token: Option<String>,
    offered: BTreeMap<String, (String, u64)>,
    heard: Option<Instant>,
    /// The pair answered after an outage, not yet written in the notes.
    back: bool,
    /// The refusals already written in the notes (so a refusal repeated every second is
    /// said once).
    said: BTreeSet<String>,
}

/// What this client holds of one file of another swarm, as its trackers are told.
pub(super) struct Offer {
    pub(super) key: String,
    pub(super) name: String,
    pub(super) size: u64,
    pub(super) bits: String,
}

/// A file of the pair's swarm whose holders are asked for: its key, size and name (escaped,
/// for the notes).
pub(super) struct Ask {
    pub(super) key: String,
    pub(super) size: u64,
    pub(super) name: String,
}

/// What one run learned: the holder lines of each file asked about (of those the pair
/// answered for), and the lines for the notes.
#[derive(Default)]
pub(super) struct Run {
    pub(super) holders: Vec<(String, Vec<String>)>,
    pub(super) notes: Vec<String>,
}

/// Why a pair gave nothing back.
pub(super) enum Failed {
    /// A tracker answered `ERR`: nothing to learn this time, but the pair is alive.
    Refused(String),
    /// Neither tracker answered now (`why`; `first`: the pair answered the time before).
    Silent { why: String, first: bool },
    /// Neither answered lately, so they were not asked.
    Resting,
}

/// Whether `a` and `b` name the same two trackers, in either order.
pub(super) fn same_pair(a: [SocketAddr; 2], b: [SocketAddr; 2]) -> bool {
    let sorted = |mut p: [SocketAddr; 2]| {
        p.sort();
        p
    };
    sorted(a) == sorted(b)
}

impl Pair {
    pub(super) fn new(addrs: [SocketAddr; 2]) -> Pair {
        Pair {
            addrs,
            link: None,
            at: 0,
            silent: None,
            token: None,
            offered: BTreeMap::new(),
            heard: None,
            back: false,
            said: BTreeSet::new(),
        }
    }

    pub(super) fn addrs(&self) -> [SocketAddr; 2] {
        self.addrs
    }

    /// Whether neither tracker answered the last time they were asked.
    pub(super) fn silent(&self) -> bool {
        self.silent.is_some()
    }

    /// One refresh (`me`: this client's address): tells the pair what this client holds
    /// (`offers`), then asks who holds each of `asks`.
    pub(super) fn run(&mut self, me: SocketAddr, offers: &[Offer], asks: &[Ask]) -> Run {
        let mut run = Run::default();
        // The notes name a file of the pair's, escaped as the user sees it.
        let first = offers.first().map(|o| super::view::escape(&o.name));
        let name = first.or_else(|| asks.first().map(|a| a.name.clone()));
        let outcome = self.offer(me, offers);
        self.note(
            &name.unwrap_or_default(),
            "SEED",
            outcome.err(),
            &mut run.notes,
        );
        for ask in asks {
            let req = Request::Seeders {
                key: ask.key.clone(),
                size: ask.size,
            };
            match self.ask_list(&req) {
                Ok(lines) => {
                    self.note(&ask.name, "SEEDERS", None, &mut run.notes);
                    run.holders.push((ask.key.clone(), lines));
                }
                Err(f) => self.note(&ask.name, "SEEDERS", Some(f), &mut run.notes),
            }
        }
        run
    }

    /// Sends `req` (answered `OK <n>` and n lines); returns the lines.
    pub(super) fn ask_list(&mut self, req: &Request) -> Result<Vec<String>, Failed> {
        let mut lines = Vec::new();
        self.call(req, &mut |link, words| {
            let n = number(words, 0)?;
            if n > MAX_HOLDER_LINES {
                return Err(LinkError::Garbled(format!("a list of {n} lines")));
            }
            lines = link.lines(n)?;
            Ok(())
        })?;
        Ok(lines)
    }

    /// Adds to `notes` what changed at the pair after asking it `what` about `name`
    /// (failing with `f`): the end of an outage, a refusal (each once), or the start of an
    /// outage (once, not at every try).
    fn note(&mut self, name: &str, what: &str, f: Option<Failed>, notes: &mut Vec<String>) {
        let [a, b] = self.addrs;
        if std::mem::take(&mut self.back) {
            notes.push(format!("the trackers of {name} answer again ({a} and {b})"));
        }
        match f {
            Some(Failed::Refused(why)) => {
                let text = format!("{what} {why}");
                if self.said.len() < REFUSALS_SAID && self.said.insert(text) {
                    notes.push(format!("the trackers of {name} refused {what}: {why}"));
                }
            }
            Some(Failed::Silent { why, first: true }) => notes.push(format!(
                "{name}: {} (last: {why}); asking again every {} s",
                silent_words(self.addrs),
                QUIET.as_secs()
            )),
            _ => {}
        }
    }

    /// Sends `req` to the tracker used last, then to the other if that one does not answer;
    /// not at all while the pair rests.
    fn call(&mut self, req: &Request, more: More<'_>) -> Result<Vec<String>, Failed> {
        if self
            .silent
            .as_ref()
            .is_some_and(|(since, _)| since.elapsed() < QUIET)
        {
            return Err(Failed::Resting);
        }
        let turns = if self.addrs[0] == self.addrs[1] { 1 } else { 2 };
        let mut why = String::new();
        for _ in 0..turns {
            let addr = self.addrs[self.at % 2];
            match call_on(&mut self.link, addr, req, more) {
                Ok(words) => {
                    self.answered();
                    return Ok(words);
                }
                Err(LinkError::Refused(r)) => {
                    self.answered();
                    return Err(Failed::Refused(r));
                }
                Err(e) => {
                    why = format!("{addr}: {}", describe(&e));
                    self.link = None;
                    self.at = (self.at + 1) % turns;
                }
            }
        }
        let first = self.silent.is_none();
        self.silent = Some((Instant::now(), why.clone()));
        Err(Failed::Silent { why, first })
    }

    /// A tracker of the pair answered: an outage, if there was one, is over.
    fn answered(&mut self) {
        self.heard = Some(Instant::now());
        if self.silent.take().is_some() {
            self.back = true;
        }
    }

    /// Tells the pair what this client holds of its files (`offers`): opens a session if
    /// there is none, sends a `SEED` for each file whose pieces changed, an `UNSEED` for each
    /// no longer here, and an `ALIVE` when nothing else was sent lately.
    fn offer(&mut self, me: SocketAddr, offers: &[Offer]) -> Result<(), Failed> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => {
                let words = self.call(&Request::Open { addr: me }, &mut nothing)?;
                let token = session_token(&words)
                    .ok_or_else(|| Failed::Refused(format!("OPEN answered {words:?}")))?;
                self.offered.clear();
                self.token.insert(token.clone()).clone()
            }
        };
        let changed = offers
            .iter()
            .filter(|o| self.offered.get(&o.key) != Some(&(o.bits.clone(), o.size)));
        let mut asks: Vec<(Request, Option<(String, u64)>)> = changed
            .map(|o| {
                let seed = Request::Seed {
                    token: token.clone(),
                    key: o.key.clone(),
                    name: o.name.clone(),
                    size: o.size,
                    bits: o.bits.clone(),
                    private: false,
                };
                (seed, Some((o.bits.clone(), o.size)))
            })
            .collect();
        for (key, (_, size)) in &self.offered {
            if !offers.iter().any(|o| &o.key == key) {
                let unseed = Request::Unseed {
                    token: token.clone(),
                    key: key.clone(),
                    size: *size,
                };
                asks.push((unseed, None));
            }
        }
        if asks.is_empty() && self.heard.is_none_or(|t| t.elapsed() >= ALIVE_EVERY) {
            let alive = Request::Alive {
                token: token.clone(),
            };
            asks.push((alive, None));
        }
        for (req, told) in asks {
            let outcome = self.call(&req, &mut nothing);
            if let Err(Failed::Refused(r)) = &outcome
                && unknown_session(&LinkError::Refused(r.clone()))
            {
                // Forgotten (silent too long): the next refresh opens a new session.
                self.token = None;
                return Ok(());
            }
            let refused = matches!(outcome, Err(Failed::Refused(_)));
            if outcome.is_ok() || refused {
                // A refusal is not sent again until the file changes (said once).
                match (&req, told) {
                    (Request::Seed { key, .. }, Some(told)) => {
                        self.offered.insert(key.clone(), told);
                    }
                    (Request::Unseed { key, .. }, _) => {
                        self.offered.remove(key);
                    }
                    _ => {}
                }
            }
            outcome?;
        }
        Ok(())
    }

    /// Ends the session at the pair, if it has one and the pair is not resting.
    pub(super) fn quit(&mut self) {
        if let Some(token) = self.token.take() {
            let _ = self.call(&Request::Quit { token }, &mut nothing);
        }
    }
}

/// How a download whose trackers do not answer ends its `show downloads` line.
pub(super) fn silent_words(addrs: [SocketAddr; 2]) -> String {
    if addrs[0] == addrs[1] {
        format!("its tracker {} does not answer", addrs[0])
    } else {
        format!("its trackers {} and {} do not answer", addrs[0], addrs[1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    fn seeders() -> Request {
        Request::Seeders {
            key: "a".repeat(40),
            size: 5,
        }
    }

    /// An address nothing listens on.
    fn dead() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    }

    /// A "tracker" that accepts connections and hangs up at once, counting them.
    fn hanging_up() -> (SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let count = Arc::new(AtomicUsize::new(0));
        let seen = count.clone();
        thread::spawn(move || {
            for stream in listener.incoming().take(10) {
                seen.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        (addr, count)
    }

    #[test]
    fn a_pair_where_neither_tracker_answers_rests_before_it_is_asked_again() {
        let (a, a_count) = hanging_up();
        let (b, b_count) = hanging_up();
        let mut pair = Pair::new([a, b]);
        assert!(!pair.silent());
        let asked = pair.ask_list(&seeders());
        assert!(matches!(asked, Err(Failed::Silent { first: true, .. })));
        assert!(pair.silent());
        let tried = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        assert_eq!(
            (tried(&a_count), tried(&b_count)),
            (1, 1),
            "both tried once"
        );
        // Within QUIET neither is asked again.
        assert!(matches!(pair.ask_list(&seeders()), Err(Failed::Resting)));
        assert_eq!((tried(&a_count), tried(&b_count)), (1, 1));
        let mut notes = Vec::new();
        pair.note("f", "SEEDERS", asked.err(), &mut notes);
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with(&format!("f: its trackers {a} and {b} do not answer")));
    }

    /// A "tracker" that answers `OK` with a list longer than any tracker keeps.
    fn boasting() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            use std::io::{BufRead, BufReader, Write};
            for stream in listener.incoming().take(4).flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut out = stream;
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let _ = out.write_all(b"OK 18446744073709551615\n");
                    line.clear();
                }
            }
        });
        addr
    }

    #[test]
    fn a_list_longer_than_any_tracker_keeps_is_refused_unread() {
        let liar = boasting();
        let mut pair = Pair::new([liar, liar]);
        assert!(matches!(
            pair.ask_list(&seeders()),
            Err(Failed::Silent { .. })
        ));
    }

    #[test]
    fn silent_trackers_are_named_in_the_words_show_downloads_ends_with() {
        let (a, b) = (dead(), dead());
        let mut pair = Pair::new([a, a]);
        assert!(matches!(
            pair.ask_list(&seeders()),
            Err(Failed::Silent { .. })
        ));
        assert_eq!(
            silent_words([a, b]),
            format!("its trackers {a} and {b} do not answer")
        );
        assert_eq!(
            silent_words([a, a]),
            format!("its tracker {a} does not answer")
        );
    }
}
