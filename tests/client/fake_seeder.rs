//! A fake seeder for the resume test: it opens a session at a tracker, registers as holding
//! a whole file, heartbeats, and serves only the pieces it is allowed to, remembering every
//! piece asked for.

use super::common::*;
use super::harness::{PIECE, PairLink, full_bitset};
use std::collections::BTreeSet;
use std::io::Write;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::thread;

/// A fake seeder: registers itself for `data` at a tracker and serves only the pieces
/// `allowed` says, remembering every piece asked for.
pub struct FakeSeeder {
    pub allowed: Arc<Mutex<BTreeSet<u64>>>,
    pub asked: Arc<Mutex<BTreeSet<u64>>>,
}

impl FakeSeeder {
    pub fn start(tracker: &str, key: &str, name: &str, data: Vec<u8>) -> FakeSeeder {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let allowed = Arc::new(Mutex::new(BTreeSet::new()));
        let asked = Arc::new(Mutex::new(BTreeSet::new()));
        let (a, q, key_owned) = (allowed.clone(), asked.clone(), key.to_string());
        let (size, pieces) = (data.len(), data.len().div_ceil(PIECE));
        thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (a, q, data, key) = (a.clone(), q.clone(), data.clone(), key_owned.clone());
                thread::spawn(move || {
                    serve_lines(stream, |line, out| {
                        let w: Vec<&str> = line.split_whitespace().collect();
                        let reply = match w.as_slice() {
                            ["HELLO", ..] => b"OK p2p/1 peer\n".to_vec(),
                            ["GET", k, first, count] if *k == key => {
                                let (first, count): (usize, usize) =
                                    (first.parse().unwrap(), count.parse().unwrap());
                                let piece = (first / 1024) as u64;
                                q.lock().unwrap().insert(piece);
                                if a.lock().unwrap().contains(&piece) {
                                    let end = ((first + count) * 512).min(data.len());
                                    let body = &data[first * 512..end];
                                    [format!("OK {}\n", body.len()).into_bytes(), body.to_vec()]
                                        .concat()
                                } else {
                                    b"ERR not_held\n".to_vec()
                                }
                            }
                            _ => b"ERR no\n".to_vec(),
                        };
                        out.write_all(&reply).is_ok()
                    })
                });
            }
        });
        // A session of its own, as a client opens it, kept live by `ALIVE` every 3 s.
        let mut link = PairLink::connect(tracker).expect("tracker answers");
        let token = link.open(&addr.to_string());
        let seed = format!("SEED {token} {key} {name} {size} {}", full_bitset(pieces));
        assert_eq!(link.call(&seed).as_deref(), Some("OK"), "{seed}");
        thread::spawn(move || {
            // Bounded: ten minutes of heartbeats outlive any test here.
            for _ in 0..200 {
                thread::sleep(std::time::Duration::from_secs(3));
                if link.call(&format!("ALIVE {token}")).is_none() {
                    return;
                }
            }
        });
        FakeSeeder { allowed, asked }
    }
}

/// How many clients the tracker at `addr` lists as holding some piece of the file
/// (`key`, `size`).
pub fn seeders(addr: &str, key: &str, size: usize) -> usize {
    let mut link = PairLink::connect(addr).expect("tracker answers");
    let lines = link
        .list(&format!("SEEDERS {key} {size}"))
        .expect("SEEDERS answered");
    let holds_some = |l: &String| {
        l.rsplit(' ')
            .next()
            .is_some_and(|b| b.bytes().any(|c| c != b'0'))
    };
    lines.iter().filter(|l| holds_some(l)).count()
}
