//! A swarm peer's session with the tracker: joining (offers, then `JOIN`), and the loop that
//! reports what this peer has (`DROP`, `HASHED`, `HAVE`), learns what the swarm has
//! (`FILES`, `HASHES`, `HOLDERS`), starts download workers, and asks to leave; it rides out
//! a tracker that goes away for a short while by joining it again.

use super::download;
use super::heartbeat::Heartbeat;
use super::store::Store;
use crate::chunk::{Bitset, FileMeta, Geometry};
use crate::error::Error;
use crate::hashing::hashes_from_block;
use crate::link::{Link, LinkError, number};
use crate::name;
use crate::protocol::{MAX_HASH_BATCH, Request, Role, runs_of};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How often the holder lists are refreshed while downloading.
const REFRESH: Duration = Duration::from_millis(200);
/// How long verified pieces gather before they are reported together.
const REPORT_BATCH: Duration = Duration::from_millis(10);
/// The longest a `WAIT` asks the tracker to hold its answer.
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long to wait for the tracker's answer to a request. Generous: on a saturated
/// machine an answer can be slow, and the heartbeat connection, not this one, tells the
/// tracker that we live.
const TRACKER_ANSWER: Duration = Duration::from_secs(30);
/// How long a peer that lost the tracker keeps trying to reach it again before it gives up.
const TRACKER_GRACE: Duration = Duration::from_secs(10);

/// What `JOIN` answered: this peer's id, and the token its heartbeats show.
struct Joined {
    id: u64,
    token: u64,
}

/// Connects to the tracker, offers every complete file here (names and sizes), and joins:
/// the new link, id and token. An offer the tracker refuses (its name is taken by other
/// content) is withdrawn here.
fn join(
    tracker: SocketAddr,
    store: &Store,
    port: u16,
    timeout: Duration,
) -> Result<(Link, Joined), LinkError> {
    let mut link = Link::connect(tracker, Role::Peer, timeout)?;
    link.set_read_timeout(TRACKER_ANSWER)?;
    let offers = store.complete_files();
    for meta in &offers {
        let req = Request::Offer {
            name: meta.name.clone(),
            size: meta.geometry.size(),
        };
        link.send(&req)?;
    }
    link.flush()?;
    for meta in &offers {
        match link.reply() {
            Ok(_) => {}
            Err(LinkError::Refused(why)) => store.withdraw(&meta.name, &why),
            Err(e) => return Err(e),
        }
    }
    let words = link.call(&Request::Join { port })?;
    let joined = Joined {
        id: number(&words, 0)?,
        token: number(&words, 1)?,
    };
    Ok((link, joined))
}

pub(super) struct Session {
    link: Link,
    store: Arc<Store>,
    id: u64,
    /// Tells the tracker we live, on a connection of its own; replaced when we rejoin.
    heartbeat: Option<Heartbeat>,
    /// The generation (see `FILES`) of each file we download, as the tracker we are joined
    /// to numbers it.
    generations: HashMap<String, u64>,
    /// Downloads whose known hashes must be checked against the tracker's from the first
    /// piece on (after rejoining a tracker, which numbers generations anew).
    recheck: HashSet<String>,
    /// The tracker state version last seen.
    version: u64,
    refreshed: Option<(Instant, u64)>,
    tracker: SocketAddr,
    /// Where this peer serves chunks, as announced in `JOIN`.
    port: u16,
}

impl Session {
    /// Joins the tracker at `tracker` (see [`join`]) as the peer serving chunks on `port`,
    /// and starts telling it that we live.
    pub(super) fn start(
        tracker: SocketAddr,
        store: Arc<Store>,
        port: u16,
        timeout: Duration,
    ) -> Result<Session, LinkError> {
        let (link, joined) = join(tracker, &store, port, timeout)?;
        Ok(Session {
            link,
            store,
            id: joined.id,
            heartbeat: Some(Heartbeat::start(tracker, joined.id, joined.token)),
            version: 0,
            refreshed: None,
            generations: HashMap::new(),
            recheck: HashSet::new(),
            tracker,
            port,
        })
    }

    /// The id the tracker gave this peer (the last one, after a rejoin).
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Runs until the tracker lets this peer leave, riding out a tracker that goes away for
    /// less than [`TRACKER_GRACE`].
    pub(super) fn run_to_the_end(
        &mut self,
        started: Instant,
        min_alive: Duration,
    ) -> Result<(), Error> {
        loop {
            match self.run(started, min_alive) {
                Ok(()) => return Ok(()),
                Err(cause) => self.rejoin(cause)?,
            }
        }
    }

    /// The tracker stopped answering: say so once, keep the downloads from known peers going,
    /// and try to join again with growing pauses; give up after [`TRACKER_GRACE`].
    fn rejoin(&mut self, cause: LinkError) -> Result<(), Error> {
        let grace = TRACKER_GRACE.as_secs();
        eprintln!(
            "peer: lost the tracker at {}: {cause}; retrying for {grace} s",
            self.tracker
        );
        // The old id must go before a new one can come: a tracker still up would otherwise
        // keep it (its heartbeats come) and refuse our address to the new one.
        self.heartbeat = None;
        self.link.close();
        let deadline = Instant::now() + TRACKER_GRACE;
        let mut pause = Duration::from_millis(250);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Error::Failed(format!(
                    "peer: lost the tracker at {} ({cause}) and it did not come back within {grace} s",
                    self.tracker
                )));
            }
            thread::sleep(pause.min(left));
            pause = (pause * 2).min(Duration::from_secs(2));
            if let Ok((link, joined)) =
                join(self.tracker, &self.store, self.port, Duration::from_secs(2))
            {
                eprintln!(
                    "peer: rejoined the tracker at {} as peer {}",
                    self.tracker, joined.id
                );
                (self.link, self.id) = (link, joined.id);
                self.heartbeat = Some(Heartbeat::start(self.tracker, joined.id, joined.token));
                // The new tracker's generations are its own: adopt them at the next FILES,
                // checking the hashes known here against its.
                self.recheck
                    .extend(self.generations.drain().map(|(name, _)| name));
                self.version = 0;
                self.refreshed = None;
                self.store.report_all_again();
                return Ok(());
            }
        }
    }

    /// Reports, refreshes and waits in turn until the tracker lets this peer leave.
    fn run(&mut self, started: Instant, min_alive: Duration) -> Result<(), LinkError> {
        let mut asked_to_leave: Option<Instant> = None;
        loop {
            self.report()?;
            self.refresh()?;
            let downloading = !self.store.downloading().is_empty();
            let finishing = self.store.finishing();
            // While downloading, ask to leave only now and then: the tracker says yes only
            // if the files still missing here are nowhere else (their holders died).
            let may_ask = !downloading || asked_to_leave.is_none_or(|t| t.elapsed() >= REFRESH);
            if started.elapsed() >= min_alive && !finishing && may_ask {
                asked_to_leave = Some(Instant::now());
                let words = self.link.call(&Request::Leave)?;
                if words.first().map(String::as_str) == Some("BYE") {
                    return Ok(());
                }
                if !downloading {
                    // Something changed (a new file): refresh at once. Otherwise the tracker
                    // already held the answer back while others caught up: ask again soon.
                    let version = number(&words, 1)?;
                    if version <= self.version {
                        thread::sleep(REFRESH / 2);
                    }
                    self.version = self.version.max(version);
                    continue;
                }
            }
            if downloading || finishing || self.store.hashing() {
                // Report verified pieces and our own files' hashes in batches rather than
                // one line each, but soon: others wait for them.
                self.store.wait_for_reports(REFRESH / 2);
                thread::sleep(REPORT_BATCH);
            } else {
                // Complete for now: sleep until the swarm changes or it is time to leave,
                // but not so fast that every report elsewhere wakes us at once.
                let left = || min_alive.saturating_sub(started.elapsed());
                thread::sleep(left().min(REFRESH / 2));
                let words = self.link.call(&Request::Wait {
                    version: self.version,
                    millis: left().min(HEARTBEAT).as_millis() as u64,
                })?;
                self.version = number(&words, 0)?;
            }
        }
    }

    /// Sends, pipelined: the files given up (`DROP`), the piece hashes of our own files
    /// computed since the last report (`HASHED`), and the verified pieces not yet reported
    /// (one `HAVE` per file).
    fn report(&mut self) -> Result<(), LinkError> {
        let drops = self.store.take_drops();
        let hashes = self.store.take_hash_reports();
        let reports = self.store.take_reports();
        if reports.is_empty() && drops.is_empty() && hashes.is_empty() {
            return Ok(());
        }
        // What each reply answers: the file a `HASHED` was about, or nothing to note.
        let mut sent: Vec<Option<String>> = Vec::new();
        for name in drops {
            self.link.send(&Request::Drop { name })?;
            sent.push(None);
        }
        for (name, first, hashes) in hashes {
            let mut at = first;
            for batch in batches(&hashes, MAX_HASH_BATCH as usize) {
                let req = Request::Hashed {
                    name: name.clone(),
                    first: at,
                    count: batch.len() as u32,
                };
                self.link.send_with(&req, &batch.concat())?;
                at += batch.len() as u32;
                sent.push(Some(name.clone()));
            }
        }
        for (name, pieces) in &reports {
            // Keep each line well under the line bound: at most 4,000 runs per line.
            let runs = runs_of(pieces);
            for batch in batches(&runs, 4000) {
                self.link.send(&Request::Have {
                    name: name.clone(),
                    runs: batch.to_vec(),
                })?;
                sent.push(None);
            }
        }
        self.link.flush()?;
        for about in sent {
            match (self.link.reply(), about) {
                (Ok(words), _) => self.version = self.version.max(number(&words, 0)?),
                (Err(LinkError::Refused(why)), Some(name)) if why.starts_with("name_taken") => {
                    self.store.withdraw(&name, &why);
                }
                (Err(LinkError::Refused(why)), _) => {
                    eprintln!("peer: tracker refused a report: {why}");
                }
                (Err(e), _) => return Err(e),
            }
        }
        Ok(())
    }

    /// Learns of new files and, while downloading, of new piece hashes and of who holds
    /// what; starts workers for remotes that hold pieces we lack. While downloading, done
    /// every [`REFRESH`]; otherwise only when the tracker's state moved.
    fn refresh(&mut self) -> Result<(), LinkError> {
        if let Some((at, version)) = self.refreshed {
            let fresh = if self.store.downloading().is_empty() {
                version == self.version
            } else {
                // Holders and hashes move on their own while we download: look every REFRESH.
                at.elapsed() < REFRESH
            };
            if fresh {
                return Ok(());
            }
        }
        let (words, lines) = self.link.call_list(&Request::Files, 1)?;
        let version = number(&words, 0)?;
        let mut listed = Vec::new();
        for line in lines {
            match parse_file_line(&line) {
                Some(file) => listed.push(file),
                None => eprintln!("peer: ignoring a bad file entry from the tracker: {line:?}"),
            }
        }
        for (name, size, generation) in listed {
            let ours = self.store.downloading_size(&name);
            match (self.generations.get(&name), ours) {
                (None, None) if !self.store.knows(&name) => {
                    self.start_download(name, size, generation);
                }
                (None, Some(s)) if s == size && self.recheck.contains(&name) => {
                    self.generations.insert(name, generation);
                }
                (Some(&g), Some(s)) if g != generation || s != size => self.store.give_up(
                    &name,
                    &"its content changed in the swarm (every holder of the old one left)",
                ),
                (None, Some(_)) => self
                    .store
                    .give_up(&name, &"its content changed in the swarm"),
                _ => {}
            }
        }
        for (name, npieces) in self.store.downloading() {
            let Some(&generation) = self.generations.get(&name) else {
                continue;
            };
            let recheck = self.recheck.remove(&name);
            if !self.learn_hashes(&name, generation, npieces, recheck)? {
                continue;
            }
            let holders = self.holders(&name, generation, npieces)?;
            for remote in self.store.set_holders(&name, holders) {
                download::spawn(self.store.clone(), remote);
            }
        }
        self.version = self.version.max(version);
        self.refreshed = Some((Instant::now(), self.version));
        Ok(())
    }

    /// Starts fetching a file the tracker listed; its piece hashes come with each refresh.
    fn start_download(&mut self, name: String, size: u64, generation: u64) {
        let Some(geometry) = Geometry::new(size) else {
            self.store
                .give_up(&name, &format!("its size {size} is too large"));
            return;
        };
        let meta = FileMeta {
            name: name.clone(),
            geometry,
            piece_hashes: Vec::new(),
        };
        self.generations.insert(name.clone(), generation);
        if let Err(e) = self.store.add_download(meta) {
            self.store.give_up(&name, &format!("cannot create it: {e}"));
        }
    }

    /// Fetches the piece hashes of `name` the tracker knows and we do not yet (with
    /// `recheck`, all of them, comparing those we know). Returns false if the file should
    /// not be fetched further (gone from the tracker, or other content by now).
    fn learn_hashes(
        &mut self,
        name: &str,
        generation: u64,
        npieces: usize,
        recheck: bool,
    ) -> Result<bool, LinkError> {
        let mut from = if recheck {
            0
        } else {
            self.store.known_hashes(name)
        };
        loop {
            if from >= npieces {
                return Ok(true);
            }
            let req = Request::Hashes {
                name: name.to_string(),
                generation,
                from: from as u32,
            };
            let n = match self.link.call(&req) {
                Ok(words) => number(&words, 0)?,
                Err(LinkError::Refused(why)) => {
                    if why.starts_with("stale_generation") {
                        self.store
                            .give_up(name, &"its content changed in the swarm");
                    }
                    return Ok(false);
                }
                Err(e) => return Err(e),
            };
            if n > MAX_HASH_BATCH || from as u64 + n > npieces as u64 {
                return Err(LinkError::Garbled(format!("{n} hashes for {name:?}")));
            }
            let mut block = vec![0; n as usize * 20];
            self.link.payload(&mut block)?;
            let hashes = hashes_from_block(&block).unwrap_or_default();
            if !self.store.add_download_hashes(name, from, &hashes) {
                self.store
                    .give_up(name, &"its content changed in the swarm");
                return Ok(false);
            }
            if n < MAX_HASH_BATCH {
                return Ok(true);
            }
            from += n as usize;
        }
    }

    /// The other living peers that hold pieces of `name`, with what they hold.
    fn holders(
        &mut self,
        name: &str,
        generation: u64,
        npieces: usize,
    ) -> Result<Vec<(SocketAddr, Bitset)>, LinkError> {
        let req = Request::Holders {
            name: name.to_string(),
            generation,
        };
        let lines = match self.link.call_list(&req, 0) {
            Ok((_, lines)) => lines,
            Err(LinkError::Refused(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut holders = Vec::new();
        for line in lines {
            let mut words = line.split(' ');
            let (Some(id), Some(addr), Some(bits), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                eprintln!("peer: ignoring a bad holder entry from the tracker: {line:?}");
                continue;
            };
            let addr: Option<SocketAddr> = addr.parse().ok();
            let bits = Bitset::from_hex(bits, npieces);
            match (id.parse::<u64>(), addr, bits) {
                (Ok(id), _, _) if id == self.id => {}
                (Ok(_), Some(addr), Some(bits)) => holders.push((addr, bits)),
                _ => eprintln!("peer: ignoring a bad holder entry from the tracker: {line:?}"),
            }
        }
        Ok(holders)
    }
}

/// `items` in runs of at most `max`, and one (empty) run when there are none: an empty file
/// is still announced.
fn batches<T>(items: &[T], max: usize) -> Vec<&[T]> {
    if items.is_empty() {
        return vec![&[]];
    }
    items.chunks(max).collect()
}

/// `<name> <size> <generation>`, a line of the `FILES` reply.
fn parse_file_line(line: &str) -> Option<(String, u64, u64)> {
    let mut words = line.split(' ');
    let name = name::decode(words.next()?).ok()?;
    let size = crate::protocol::parse_u64("size", words.next()?).ok()?;
    let generation = crate::protocol::parse_u64("generation", words.next()?).ok()?;
    words.next().is_none().then_some((name, size, generation))
}
