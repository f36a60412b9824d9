//! Fuzz-style tests with a seeded generator (std only): mutated requests thrown at the parser
//! in-process, and at a live tracker and a live peer. No panic, and one reply per line.

mod common;

use common::*;
use p2p::protocol::Request;
use std::io::{BufReader, Write};
use std::thread;
use std::time::Duration;

const ROUNDS: usize = 100_000;

const CORPUS: &[&str] = &[
    "HELLO p2p/1 peer",
    "OFFER a%20b.txt 513",
    "JOIN 4000",
    "HASHED f 0 0",
    "BEAT 0 12345",
    "FILES",
    "HASHES f 0 0",
    "HOLDERS na%C3%AFve 0",
    "HAVE f 0-3 7 9-9",
    "HAVE empty",
    "DROP f",
    "WAIT 3 100",
    "LEAVE",
    "PING",
    "GET f 0 128",
    "GET foo...%20bar 256 1",
];

const NASTY: &[&str] = &[
    "-1",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "abc",
    "",
    "0",
    "%",
    "%zz",
    "%2F",
    "%00",
    "..",
    "1-0",
    "0-4294967295",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One to four random edits of a valid request; never a newline, at most 4,000 bytes.
fn mutate(rng: &mut Rng) -> Vec<u8> {
    let mut b = CORPUS[rng.below(CORPUS.len())].as_bytes().to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(8) {
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] = rng.next() as u8;
            }
            1 => b.insert(at, rng.next() as u8),
            2 if at < b.len() => {
                b.remove(at);
            }
            3 => {
                let words: Vec<Vec<u8>> = b.split(|&c| c == b' ').map(<[u8]>::to_vec).collect();
                let w = words[rng.below(words.len())].clone();
                b.extend_from_slice(b" ");
                b.extend_from_slice(&w);
            }
            4 => b.truncate(at),
            5 => {
                let mut words: Vec<Vec<u8>> = b.split(|&c| c == b' ').map(<[u8]>::to_vec).collect();
                let i = rng.below(words.len());
                words[i] = NASTY[rng.below(NASTY.len())].as_bytes().to_vec();
                b = words.join(&b' ');
            }
            6 => {
                let bit = NASTY[rng.below(NASTY.len())].as_bytes();
                b.splice(at..at, bit.iter().copied());
            }
            _ => b.extend_from_slice(b" x"),
        }
    }
    for c in &mut b {
        if *c == b'\n' {
            *c = b' ';
        }
    }
    b.truncate(4000);
    b
}

#[test]
fn the_parser_survives_mutated_requests_and_round_trips_what_it_accepts() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut accepted = 0;
    for _ in 0..ROUNDS {
        let bytes = mutate(&mut rng);
        let framed = [bytes.as_slice(), b"\n"].concat();
        let mut reader = BufReader::new(&framed[..]);
        let mut buf = Vec::new();
        if let Ok(line) = p2p::wire::read_line(&mut reader, &mut buf)
            && let Ok(req) = Request::parse(line)
        {
            accepted += 1;
            let again = Request::parse(&req.to_string());
            assert_eq!(again.as_ref(), Ok(&req), "{line:?} printed as {req}");
        }
    }
    assert!(
        accepted > 1000,
        "the mutations should keep some requests valid: {accepted}"
    );
}

/// Whether a request would change state, block, or carry a payload (either way): the live
/// fuzz skips these so that every line it sends gets exactly one reply line.
fn has_side_effects(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let text = text.strip_suffix('\r').unwrap_or(text);
    matches!(
        Request::parse(text),
        Ok(Request::Offer { .. }
            | Request::Join { .. }
            | Request::Hashed { .. }
            | Request::Hashes { .. }
            | Request::Beat { .. }
            | Request::Leave
            | Request::Wait { .. }
            | Request::Hello { .. })
    )
}

/// Sends `ROUNDS` mutated lines to `addr` after a greeting, and counts one reply per line.
fn fuzz_live(addr: &str, greeting: &str, seed: u64) {
    let mut raw = Raw::connect(addr);
    assert_eq!(raw.call("HELLO p2p/1 peer"), greeting);
    let mut rng = Rng(seed);
    let lines: Vec<Vec<u8>> = (0..ROUNDS)
        .map(|_| mutate(&mut rng))
        .filter(|l| !has_side_effects(l))
        .collect();
    let expected = lines.len();
    eprintln!("{addr}: sending {expected} mutated lines");
    let mut writer = raw.stream.try_clone().unwrap();
    let sender = thread::spawn(move || {
        let mut out = std::io::BufWriter::new(&mut writer);
        for l in &lines {
            out.write_all(l).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.flush().unwrap();
    });
    for i in 0..expected {
        let reply = raw
            .line()
            .unwrap_or_else(|| panic!("{addr}: no reply to line {i} of {expected}"));
        assert!(
            reply.starts_with("OK") || reply.starts_with("ERR "),
            "{addr}: {reply:?}"
        );
    }
    sender.join().unwrap();
    assert_eq!(raw.call("PING"), "OK", "{addr} still answers");
}

#[test]
fn a_live_tracker_and_peer_answer_every_mutated_request() {
    let root = TempDir::new("fuzz");
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let spec = peer_folder(root.path(), "peer", None);
    let mut peer = start_peer(&spec, port, "600", root.path(), "peer");
    assert!(wait_until(Duration::from_secs(60), || tracker
        .stdout()
        .contains("CONNECT")));
    let peer_addr = {
        // The peer offers nothing, so find its port from the process's listening sockets.
        let listening = listening_ports(peer.pid());
        assert_eq!(listening.len(), 1, "{listening:?}");
        format!("127.0.0.1:{}", listening[0])
    };
    fuzz_live(
        &format!("127.0.0.1:{port}"),
        "OK p2p/1 tracker",
        0xfeed_0001,
    );
    fuzz_live(&peer_addr, "OK p2p/1 peer", 0xfeed_0002);
    for p in [&mut tracker, &mut peer] {
        assert!(p.try_status().is_none(), "died: {}", p.stderr());
        assert!(!p.stderr().contains("panicked"), "{}", p.stderr());
    }
}

/// The TCP ports process `pid` listens on (from /proc/net/tcp and its open sockets).
fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|rd| {
            rd.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter_map(|l| {
                    let l = l.to_string_lossy().into_owned();
                    l.strip_prefix("socket:[")?
                        .strip_suffix(']')
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|row| {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // Column 3 is the state (0A = LISTEN), column 9 the inode.
            if cols.get(3) != Some(&"0A")
                || !inodes.iter().any(|i| Some(&i.as_str()) == cols.get(9))
            {
                return None;
            }
            let port = cols.get(1)?.rsplit_once(':')?.1;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}
