//! The trackers of other swarms: a `.mtorrent` whose two trackers are not the client's own
//! pair (neither address is ours) is a file of another swarm, and who holds it is asked of the
//! trackers it names. One request connection is kept per such pair, with failover between
//! its two trackers as on our own pair. What the client holds of such files is offered there
//! too, in a session of its own at that pair (`OPEN`, a `SEED` whenever more pieces verified,
//! an `ALIVE` when it has been quiet 3 s, `UNSEED` once the file is no longer here), all from
//! the engine's refresh, so there is no second heartbeat thread per pair. A pair where
//! neither tracker answered is left alone for [`QUIET`] (the shell waits on the engine
//! thread, which must not spend 4 s on it every second), and its downloads say so in
//! `show downloads` rather than sitting at a silent 0%.

use super::tracker_link::{More, call_on, describe, nothing, session_token, unknown_session};
use super::{Core, Kind, Record, view};
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

/// The links to the trackers of other swarms that this client's files name.
#[derive(Default)]
pub(super) struct Foreign {
    pairs: Vec<Pair>,
}

/// One other swarm's pair of trackers, as a `.mtorrent` names it.
struct Pair {
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
struct Offer {
    key: String,
    name: String,
    size: u64,
    bits: String,
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
fn same_pair(a: [SocketAddr; 2], b: [SocketAddr; 2]) -> bool {
    let sorted = |mut p: [SocketAddr; 2]| {
        p.sort();
        p
    };
    sorted(a) == sorted(b)
}

impl Pair {
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
    fn quit(&mut self) {
        if let Some(token) = self.token.take() {
            let _ = self.call(&Request::Quit { token }, &mut nothing);
        }
    }
}

impl Foreign {
    /// The pair `addrs` names, added the first time it is asked for.
    fn pair(&mut self, addrs: [SocketAddr; 2]) -> &mut Pair {
        let at = match self.pairs.iter().position(|p| same_pair(p.addrs, addrs)) {
            Some(at) => at,
            None => {
                self.pairs.push(Pair {
                    addrs,
                    link: None,
                    at: 0,
                    silent: None,
                    token: None,
                    offered: BTreeMap::new(),
                    heard: None,
                    back: false,
                    said: BTreeSet::new(),
                });
                self.pairs.len() - 1
            }
        };
        &mut self.pairs[at]
    }

    /// Forgets the pairs no file in `used` names any more, ending the session there.
    pub(super) fn keep_only(&mut self, used: &[[SocketAddr; 2]]) {
        for pair in &mut self.pairs {
            if !used.iter().any(|u| same_pair(pair.addrs, *u)) {
                pair.quit();
            }
        }
        self.pairs
            .retain(|p| used.iter().any(|u| same_pair(p.addrs, *u)));
    }

    /// Whether neither tracker of `addrs` answered the last time they were asked.
    pub(super) fn silent(&self, addrs: [SocketAddr; 2]) -> bool {
        self.pairs
            .iter()
            .any(|p| same_pair(p.addrs, addrs) && p.silent.is_some())
    }

    /// Whether the pair `addrs` answered after an outage since this was last asked.
    fn take_back(&mut self, addrs: [SocketAddr; 2]) -> bool {
        std::mem::take(&mut self.pair(addrs).back)
    }

    /// Whether refusal `text` from the pair `addrs` is new (and to be written in the notes).
    fn new_refusal(&mut self, addrs: [SocketAddr; 2], text: &str) -> bool {
        let said = &mut self.pair(addrs).said;
        said.len() < REFUSALS_SAID && said.insert(text.to_string())
    }

    /// Sends `req` (answered `OK <n>` and n lines) to the pair `addrs`; returns the lines.
    pub(super) fn ask_list(
        &mut self,
        addrs: [SocketAddr; 2],
        req: &Request,
    ) -> Result<Vec<String>, Failed> {
        let mut lines = Vec::new();
        self.pair(addrs).call(req, &mut |link, words| {
            lines = link.lines(number(words, 0)?)?;
            Ok(())
        })?;
        Ok(lines)
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
        (matches!(r.kind, Kind::Download { .. })
            && self.is_foreign(addrs)
            && self.foreign.silent(addrs))
        .then(|| silent_words(addrs))
    }

    /// Offers what this client holds of other swarms' files to their trackers (see
    /// [`Pair::offer`]), and ends the sessions at pairs no file names any more.
    pub(super) fn offer_foreign(&mut self) {
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
        let mut pairs: Vec<[SocketAddr; 2]> = Vec::new();
        for (addrs, _) in &offers {
            if !pairs.iter().any(|p| same_pair(*p, *addrs)) {
                pairs.push(*addrs);
            }
        }
        self.foreign.keep_only(&pairs);
        let me = self.me;
        for addrs in pairs {
            let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut offers)
                .into_iter()
                .partition(|(a, _)| same_pair(*a, addrs));
            offers = rest;
            let name = mine
                .first()
                .map(|(_, o)| o.name.clone())
                .unwrap_or_default();
            let mine: Vec<Offer> = mine.into_iter().map(|(_, o)| o).collect();
            let outcome = self.foreign.pair(addrs).offer(me, &mine);
            self.note_failed(addrs, &view::escape(&name), "SEED", outcome.err());
        }
    }

    /// Ends this client's sessions at other swarms' trackers (at `quit`; without it they
    /// lapse after the trackers' 15 s time-to-live).
    // Called once `Cmd::Quit` (mod.rs, outside this room's change) calls it.
    pub(super) fn quit_foreign(&mut self) {
        self.foreign.keep_only(&[]);
    }

    /// The `SEEDERS` lines for a file of `.mtorrent` trackers `addrs`: from our own pair, or
    /// from the trackers named when they are another swarm's. None when nobody answered (or
    /// the foreign pair is resting); an outage of a foreign pair and its end go to the notes.
    pub(super) fn holders_from(
        &mut self,
        addrs: [SocketAddr; 2],
        name: &str,
        req: &Request,
    ) -> Option<Vec<String>> {
        if !self.is_foreign(addrs) {
            return self.call_list(req).ok();
        }
        let asked = self.foreign.ask_list(addrs, req);
        let (lines, failed) = match asked {
            Ok(lines) => (Some(lines), None),
            Err(failed) => (None, Some(failed)),
        };
        self.note_failed(addrs, name, "SEEDERS", failed);
        lines
    }

    /// Writes in the notes what changed at a foreign pair after asking it `what` about
    /// `name` (failing with `f`): the end of an outage, a refusal (each once), or the start
    /// of an outage (once, not at every try).
    fn note_failed(&mut self, addrs: [SocketAddr; 2], name: &str, what: &str, f: Option<Failed>) {
        if self.foreign.take_back(addrs) {
            let (a, b) = (addrs[0], addrs[1]);
            let line = format!("the trackers of {name} answer again ({a} and {b})");
            self.notes.note(&line);
        }
        match f {
            Some(Failed::Refused(why))
                if self.foreign.new_refusal(addrs, &format!("{what} {why}")) =>
            {
                self.notes
                    .note(&format!("the trackers of {name} refused {what}: {why}"));
            }
            Some(Failed::Silent { why, first: true }) => {
                self.notes.note(&format!(
                    "{name}: {} (last: {why}); asking again every {} s",
                    silent_words(addrs),
                    QUIET.as_secs()
                ));
            }
            _ => {}
        }
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
        let mut foreign = Foreign::default();
        assert!(!foreign.silent([a, b]));
        let asked = foreign.ask_list([a, b], &seeders());
        assert!(matches!(asked, Err(Failed::Silent { first: true, .. })));
        assert!(foreign.silent([b, a]), "the same pair in either order");
        let tried = |c: &AtomicUsize| c.load(Ordering::SeqCst);
        assert_eq!(
            (tried(&a_count), tried(&b_count)),
            (1, 1),
            "both tried once"
        );
        // Within QUIET neither is asked again: the engine thread does not wait on them.
        assert!(matches!(
            foreign.ask_list([b, a], &seeders()),
            Err(Failed::Resting)
        ));
        assert_eq!((tried(&a_count), tried(&b_count)), (1, 1));
        foreign.keep_only(&[]);
        assert!(
            !foreign.silent([a, b]),
            "a pair no download names is forgotten"
        );
    }

    #[test]
    fn silent_trackers_are_named_in_the_words_show_downloads_ends_with() {
        let (a, b) = (dead(), dead());
        let mut foreign = Foreign::default();
        assert!(matches!(
            foreign.ask_list([a, a], &seeders()),
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
