//! The trackers of other swarms: a `.mtorrent` whose two trackers are not the client's own
//! pair (neither address is ours) is a file of another swarm, and who holds it is asked of the
//! trackers it names. One request connection is kept per such pair, with failover between
//! its two trackers as on our own pair; `SEEDERS` needs no session, so none is opened there.
//! A pair where neither tracker answered is left alone for [`QUIET`] (the shell waits on the
//! engine thread, which must not spend 4 s on it every second), and its downloads say so in
//! `show downloads` rather than sitting at a silent 0%.

use super::tracker_link::{call_on, describe};
use super::{Core, Kind, Record};
use crate::link::{Link, LinkError, number};
use crate::protocol::Request;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a pair where neither tracker answered is not asked again.
pub(super) const QUIET: Duration = Duration::from_secs(10);

/// The links to the trackers of other swarms that unfinished downloads name.
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
}

/// What asking a foreign pair came to.
pub(super) enum Asked {
    /// The reply's lines.
    Lines(Vec<String>),
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
                });
                self.pairs.len() - 1
            }
        };
        &mut self.pairs[at]
    }

    /// Forgets the pairs no download in `used` names any more (their links close).
    pub(super) fn keep_only(&mut self, used: &[[SocketAddr; 2]]) {
        self.pairs
            .retain(|p| used.iter().any(|u| same_pair(p.addrs, *u)));
    }

    /// Whether neither tracker of `addrs` answered the last time they were asked.
    pub(super) fn silent(&self, addrs: [SocketAddr; 2]) -> bool {
        self.pairs
            .iter()
            .any(|p| same_pair(p.addrs, addrs) && p.silent.is_some())
    }

    /// Sends `req` (answered `OK <n>` and n lines) to the pair `addrs`: the tracker used last,
    /// then the other if that one does not answer; not at all while the pair rests.
    pub(super) fn ask_list(&mut self, addrs: [SocketAddr; 2], req: &Request) -> Asked {
        let pair = self.pair(addrs);
        if pair
            .silent
            .as_ref()
            .is_some_and(|(since, _)| since.elapsed() < QUIET)
        {
            return Asked::Resting;
        }
        let turns = if addrs[0] == addrs[1] { 1 } else { 2 };
        let mut why = String::new();
        for _ in 0..turns {
            let addr = pair.addrs[pair.at % 2];
            let mut lines = Vec::new();
            let mut more = |link: &mut Link, words: &[String]| -> Result<(), LinkError> {
                lines = link.lines(number(words, 0)?)?;
                Ok(())
            };
            match call_on(&mut pair.link, addr, req, &mut more) {
                Ok(_) => {
                    pair.silent = None;
                    return Asked::Lines(lines);
                }
                Err(LinkError::Refused(r)) => {
                    pair.silent = None;
                    return Asked::Refused(r);
                }
                Err(e) => {
                    why = format!("{addr}: {}", describe(&e));
                    pair.link = None;
                    pair.at = (pair.at + 1) % turns;
                }
            }
        }
        let first = pair.silent.is_none();
        pair.silent = Some((Instant::now(), why.clone()));
        Asked::Silent { why, first }
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
    // Shown once `line_of` (commands.rs, another engineer's room) calls it.
    #[allow(dead_code)]
    pub(super) fn trackers_silent(&self, r: &Record) -> Option<String> {
        let addrs = r.meta.trackers;
        (matches!(r.kind, Kind::Download { .. })
            && self.is_foreign(addrs)
            && self.foreign.silent(addrs))
        .then(|| silent_words(addrs))
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
        let was_silent = self.foreign.silent(addrs);
        match self.foreign.ask_list(addrs, req) {
            Asked::Lines(lines) => {
                if was_silent {
                    self.notes.note(&format!(
                        "the trackers of {name} answer again ({} and {})",
                        addrs[0], addrs[1]
                    ));
                }
                Some(lines)
            }
            Asked::Refused(why) => {
                self.notes
                    .note(&format!("the trackers of {name} refused SEEDERS: {why}"));
                None
            }
            Asked::Silent { why, first } => {
                if first {
                    self.notes.note(&format!(
                        "{name}: {} (last: {why}); asking again every {} s",
                        silent_words(addrs),
                        QUIET.as_secs()
                    ));
                }
                None
            }
            Asked::Resting => None,
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
        assert!(matches!(asked, Asked::Silent { first: true, .. }));
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
            Asked::Resting
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
            Asked::Silent { .. }
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
