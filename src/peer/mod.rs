//! The automatic swarm peer: offers the files in `./Shared`, fetches every file it lacks from
//! the peers that hold it, serves every verified piece, and leaves when the tracker says the
//! swarm needs nothing more from it.

mod download;
mod store;
mod upload;

use crate::chunk::{Bitset, FileMeta, Geometry, sha1_from_hex};
use crate::error::Error;
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role, runs_of};
use crate::{name, output};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use store::Store;

/// Where downloads in progress live: beside `Shared/`, on the same file system, hidden.
const PARTIAL_DIR: &str = ".p2p-partial";
/// How often the holder lists are refreshed while downloading.
const REFRESH: Duration = Duration::from_millis(200);
/// How long verified pieces gather before they are reported together.
const REPORT_BATCH: Duration = Duration::from_millis(10);
/// The longest pause between two requests to the tracker (its heartbeat deadline is 5 s).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// How long to wait for the tracker to connect or answer.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs a swarm peer in the current folder until it leaves; prints its SHUTDOWN block.
pub fn run(tracker: SocketAddr, min_alive: Duration) -> Result<(), Error> {
    let store = Arc::new(
        Store::open(Path::new("Shared"), Path::new(PARTIAL_DIR))
            .map_err(|e| Error::failed("cannot read ./Shared", e))?,
    );
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))
        .map_err(|e| Error::failed("cannot listen for peers", e))?;
    let port = listener.local_addr()?.port();
    let lost = |e: LinkError| Error::failed(format!("tracker {tracker}"), e);
    let mut link = Link::connect(tracker, Role::Peer, TRACKER_TIMEOUT).map_err(lost)?;
    for meta in store.own_files() {
        let req = Request::Offer {
            name: meta.name.clone(),
            size: meta.geometry.size(),
            sha1: meta.sha1,
        };
        link.send_with(&req, &meta.hash_block())?;
        link.flush()?;
        match link.reply() {
            Ok(_) => {}
            Err(LinkError::Refused(why)) => {
                eprintln!("peer: not sharing {:?}: {why}", meta.name);
                store.withdraw(&meta.name);
            }
            Err(e) => return Err(lost(e)),
        }
    }
    let id = number(&link.call(&Request::Join { port }).map_err(lost)?, 0).map_err(lost)?;
    // MIN_ALIVE counts from joining: hashing large files first must not use it up, or a
    // peer could find its time over before it ever met anyone.
    let started = Instant::now();
    upload::spawn(listener, store.clone())?;
    let mut swarm = Swarm {
        link,
        store: store.clone(),
        id,
        version: 0,
        refreshed: None,
    };
    let result = swarm.run(started, min_alive).map_err(lost);
    store.shut_down();
    store.discard_partials();
    result?;
    let names = store.shared_names();
    output::emit(&output::shutdown_block(
        id,
        names.iter().map(String::as_str),
    ));
    Ok(())
}

struct Swarm {
    link: Link,
    store: Arc<Store>,
    id: u64,
    /// The tracker state version last seen.
    version: u64,
    refreshed: Option<(Instant, u64)>,
}

impl Swarm {
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
                        thread::sleep(REPORT_BATCH);
                    }
                    self.version = self.version.max(version);
                    continue;
                }
            }
            if downloading || finishing {
                // Report verified pieces in batches rather than one line each.
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

    /// Sends the verified pieces not yet reported, one `HAVE` per file, pipelined.
    fn report(&mut self) -> Result<(), LinkError> {
        let reports = self.store.take_reports();
        if reports.is_empty() {
            return Ok(());
        }
        let mut sent = 0;
        for (name, pieces) in &reports {
            // Keep each line well under the line bound: at most 4,000 runs per line.
            let runs = runs_of(pieces);
            let mut batches: Vec<&[_]> = runs.chunks(4000).collect();
            if batches.is_empty() {
                batches.push(&[]);
            }
            for batch in batches {
                self.link.send(&Request::Have {
                    name: name.clone(),
                    runs: batch.to_vec(),
                })?;
                sent += 1;
            }
        }
        self.link.flush()?;
        for _ in 0..sent {
            match self.link.reply() {
                Ok(words) => self.version = number(&words, 0)?,
                Err(LinkError::Refused(why)) => eprintln!("peer: tracker refused a report: {why}"),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Learns of new files and, while downloading, of who holds what; starts workers for
    /// remotes that hold pieces we lack. Skipped when nothing changed since the last time,
    /// and while downloading done at most every [`REFRESH`].
    fn refresh(&mut self) -> Result<(), LinkError> {
        if let Some((at, version)) = self.refreshed
            && (version == self.version
                || (at.elapsed() < REFRESH && !self.store.downloading().is_empty()))
        {
            return Ok(());
        }
        let words = self.link.call(&Request::Files)?;
        let version = number(&words, 0)?;
        let count = number(&words, 1)?;
        let mut listed = Vec::new();
        for _ in 0..count {
            let line = self.link.line()?;
            listed.push(parse_file_line(&line).ok_or(LinkError::Garbled(line))?);
        }
        for (name, size, sha1) in listed {
            if !self.store.knows(&name) {
                self.start_download(name, size, sha1)?;
            }
        }
        for (name, npieces) in self.store.downloading() {
            let holders = self.holders(&name, npieces)?;
            for remote in self.store.set_holders(&name, holders) {
                download::spawn(self.store.clone(), remote);
            }
        }
        self.version = self.version.max(version);
        self.refreshed = Some((Instant::now(), self.version));
        Ok(())
    }

    fn start_download(
        &mut self,
        name: String,
        size: u64,
        sha1: crate::chunk::Sha1Hash,
    ) -> Result<(), LinkError> {
        let Some(geometry) = Geometry::new(size) else {
            return Err(LinkError::Garbled(format!("file size {size}")));
        };
        let words = self.link.call(&Request::Hashes { name: name.clone() })?;
        let n = number(&words, 0)?;
        if n != u64::from(geometry.num_pieces()) {
            return Err(LinkError::Garbled(format!("{n} hashes for {name:?}")));
        }
        let mut block = vec![0; n as usize * 20];
        self.link.payload(&mut block)?;
        let piece_hashes = FileMeta::hashes_from_block(geometry, &block)
            .ok_or_else(|| LinkError::Garbled("hash block".into()))?;
        let meta = FileMeta {
            name,
            geometry,
            sha1,
            piece_hashes,
        };
        if let Err(e) = self.store.add_download(meta) {
            eprintln!("peer: cannot start a download: {e}");
        }
        Ok(())
    }

    /// The other living peers that hold pieces of `name`, with what they hold.
    fn holders(
        &mut self,
        name: &str,
        npieces: usize,
    ) -> Result<Vec<(SocketAddr, Bitset)>, LinkError> {
        let count = match self.link.call(&Request::Holders {
            name: name.to_string(),
        }) {
            Ok(words) => number(&words, 0)?,
            Err(LinkError::Refused(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut holders = Vec::new();
        for _ in 0..count {
            let line = self.link.line()?;
            let mut words = line.split(' ');
            let (Some(id), Some(addr), Some(bits), None) =
                (words.next(), words.next(), words.next(), words.next())
            else {
                return Err(LinkError::Garbled(line));
            };
            let addr: Option<SocketAddr> = addr.parse().ok();
            let bits = Bitset::from_hex(bits, npieces);
            match (id.parse::<u64>(), addr, bits) {
                (Ok(id), _, _) if id == self.id => {}
                (Ok(_), Some(addr), Some(bits)) => holders.push((addr, bits)),
                _ => return Err(LinkError::Garbled(line)),
            }
        }
        Ok(holders)
    }
}

/// `<name> <size> <sha1>`, a line of the `FILES` reply.
fn parse_file_line(line: &str) -> Option<(String, u64, crate::chunk::Sha1Hash)> {
    let mut words = line.split(' ');
    let name = name::decode(words.next()?).ok()?;
    let size = crate::protocol::parse_u64("size", words.next()?).ok()?;
    let sha1 = sha1_from_hex(words.next()?)?;
    words.next().is_none().then_some((name, size, sha1))
}
