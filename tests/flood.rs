//! Floods of idle sockets against every listening side: a client's upload port and a tracker
//! of the pair keep serving an honest newcomer within seconds (the idlest connection makes
//! room for it, and a connection gets 3 s for its first line), while the grading tracker
//! still refuses with `ERR busy` beyond its cap (a unit test in src/server.rs: 2,048 sockets
//! take this machine seconds to open). The client set-up is client/harness.rs's.

mod common;
// Only some of the harness is used here.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How long an honest newcomer may take to be served while a flood goes on.
const SERVED_WITHIN: Duration = Duration::from_secs(5);
/// A flood thread stops by itself after this long, whatever the test does.
const FLOOD_LIMIT: Duration = Duration::from_secs(90);
/// How often the flood looks for closed sockets to reopen.
const FLOOD_PASS: Duration = Duration::from_millis(100);
/// How often a pinging flood socket sends `PING`.
const PING_EVERY: Duration = Duration::from_secs(20);

/// What each socket of a flood says.
#[derive(Clone, Copy)]
enum Says {
    Nothing,
    /// `HELLO p2p/1 peer`, then `PING` at once and every 20 s.
    HelloThenPings,
}

/// `n` sockets held open against `addr` by a thread that reopens each as soon as the other
/// side closes it; stopped on drop (and after [`FLOOD_LIMIT`] at the latest).
struct Flood {
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl Flood {
    fn start(addr: SocketAddr, n: usize, says: Says) -> Flood {
        raise_fd_limit();
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let (stop2, opened2) = (stop.clone(), opened.clone());
        let thread = thread::spawn(move || {
            let started = Instant::now();
            let mut socks: Vec<Option<(TcpStream, Instant)>> = (0..n).map(|_| None).collect();
            while !stop2.load(Ordering::Relaxed) && started.elapsed() < FLOOD_LIMIT {
                for slot in socks.iter_mut() {
                    match slot {
                        Some((s, _)) if !still_open(s) => *slot = None,
                        Some((s, pinged)) if pinged.elapsed() >= PING_EVERY => {
                            if let Says::HelloThenPings = says {
                                let _ = s.write(b"PING\n");
                            }
                            *pinged = Instant::now();
                        }
                        _ => {}
                    }
                    if slot.is_none() {
                        *slot = open(addr, says);
                        if slot.is_some() {
                            opened2.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                thread::sleep(FLOOD_PASS);
            }
        });
        Flood {
            stop,
            opened,
            thread: Some(thread),
        }
    }

    /// How many sockets the flood has opened so far, reopened ones included.
    fn opened(&self) -> usize {
        self.opened.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn open(addr: SocketAddr, says: Says) -> Option<(TcpStream, Instant)> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    if let Says::HelloThenPings = says {
        (&s).write_all(b"HELLO p2p/1 peer\nPING\n").ok()?;
    }
    s.set_nonblocking(true).ok()?;
    Some((s, Instant::now()))
}

/// Whether the other side has not closed `s`; whatever it sent is read and dropped.
fn still_open(mut s: &TcpStream) -> bool {
    let mut sink = [0u8; 512];
    match s.read(&mut sink) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::WouldBlock,
    }
}

/// Tries `attempt` on fresh connections until it succeeds or `limit` passes; on failure,
/// says how many tries there were and what the last one got.
fn served_within(
    limit: Duration,
    mut attempt: impl FnMut() -> Result<(), String>,
) -> Result<Duration, String> {
    let started = Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        let err = match attempt() {
            Ok(()) => return Ok(started.elapsed()),
            Err(e) => e,
        };
        if started.elapsed() >= limit {
            return Err(format!(
                "not served in {tries} tries over {limit:?}; last: {err}"
            ));
        }
        thread::sleep(Duration::from_millis(100));
    }
}

/// One honest conversation: `lines` sent at once, then each `expect`ed reply line (a reply
/// `OK <n>` is followed by its `n` raw bytes, checked against `payload`).
fn converse(addr: SocketAddr, lines: &str, expect: &[&str], payload: &[u8]) -> Result<(), String> {
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    (&s).write_all(lines.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(s);
    for want in expect {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line.trim_end() != *want {
            return Err(format!("wanted {want:?}, got {line:?}"));
        }
    }
    let mut got = vec![0; payload.len()];
    reader.read_exact(&mut got).map_err(|e| e.to_string())?;
    if got != payload {
        return Err("the bytes differ".into());
    }
    Ok(())
}

/// A client sharing a 600 KiB file; its upload address, the file's info hash and its first
/// piece (the first chunk run a downloader asks for).
struct Sharing {
    _pair: Pair,
    _client: Client,
    upload: SocketAddr,
    info_hash: String,
    first_piece: Vec<u8>,
}

fn sharing(tag: &str) -> Sharing {
    let pair = Pair::start(tag);
    let port = free_port();
    let dir = pair.root.path().join("seeder");
    std::fs::create_dir_all(&dir).unwrap();
    let trackers = vec![pair.addr(0), pair.addr(1)];
    let mut client = Client::start(&dir, pair.root.path(), "seeder", port, trackers);
    let data = content(7, 600 * KIB);
    std::fs::write(client.path("f"), &data).unwrap();
    client.run("share f f.mtorrent", "shared f");
    let text = std::fs::read_to_string(client.path("f.mtorrent")).unwrap();
    // The info hash: SHA-1 of the hash string (the fifth line) as written.
    let hash_string = text.lines().nth(4).expect("a hash string line");
    let info_hash = p2p::chunk::to_hex(&p2p::hashing::sha1(hash_string.as_bytes()));
    Sharing {
        _pair: pair,
        _client: client,
        upload: SocketAddr::from(([127, 0, 0, 1], port)),
        info_hash,
        first_piece: data[..PIECE].to_vec(),
    }
}

impl Sharing {
    /// An honest downloader's greeting and `GET` of the first piece, answered in full.
    fn honest_get(&self) -> Result<(), String> {
        let ok = format!("OK {PIECE}");
        let get = format!(
            "HELLO p2p/1 peer\nGET {} 0 {}\n",
            self.info_hash,
            PIECE / 512
        );
        converse(
            self.upload,
            &get,
            &["OK p2p/1 peer", &ok],
            &self.first_piece,
        )
    }

    /// Floods the upload port, waits until the flood has filled it (and, if `churn`, until
    /// the server closes flood sockets), then asks as an honest downloader.
    fn honest_get_during(&self, n: usize, says: Says, churn: bool) {
        assert_eq!(self.honest_get(), Ok(()), "served before the flood");
        let flood = Flood::start(self.upload, n, says);
        let full = if churn { n + 50 } else { n };
        assert!(
            wait_until(Duration::from_secs(20), || flood.opened() >= full),
            "the flood opened only {} sockets",
            flood.opened()
        );
        let served = served_within(SERVED_WITHIN, || self.honest_get());
        eprintln!("served: {served:?}");
        assert!(
            served.is_ok(),
            "{served:?} (flood opened {})",
            flood.opened()
        );
    }
}

#[test]
fn an_upload_port_under_600_silent_sockets_reopened_as_they_close_serves_an_honest_get() {
    sharing("flood-silent").honest_get_during(600, Says::Nothing, true);
}

#[test]
fn an_upload_port_held_by_512_sockets_pinging_every_20_s_serves_an_honest_get() {
    sharing("flood-pings").honest_get_during(512, Says::HelloThenPings, false);
}

#[test]
fn a_pair_tracker_under_1100_silent_sockets_answers_a_client() {
    let pair = Pair::start("flood-pair");
    let addr: SocketAddr = pair.addr(0).parse().unwrap();
    let hello = || {
        converse(
            addr,
            "HELLO p2p/1 client\nPING\n",
            &["OK p2p/1 tracker", "OK"],
            &[],
        )
    };
    assert_eq!(hello(), Ok(()), "answered before the flood");
    let flood = Flood::start(addr, 1100, Says::Nothing);
    assert!(
        wait_until(Duration::from_secs(20), || flood.opened() >= 1150),
        "the flood opened only {} sockets",
        flood.opened()
    );
    let served = served_within(SERVED_WITHIN, hello);
    eprintln!("served: {served:?}");
    assert!(
        served.is_ok(),
        "{served:?} (flood opened {})",
        flood.opened()
    );
}

#[test]
fn a_connection_silent_from_the_start_is_closed_after_3_s() {
    let pair = Pair::start("flood-first-line");
    let started = Instant::now();
    let mut silent = Raw::connect(pair.addr(0).as_str());
    assert!(
        silent.closed_within(Duration::from_secs(6)),
        "still open after 6 s"
    );
    let lasted = started.elapsed();
    assert!(
        lasted >= Duration::from_millis(2500),
        "closed after only {lasted:?}"
    );
}
