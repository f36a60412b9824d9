//! This machine's floor for moving the swarm's bytes: hashing them once with p2p's own SHA-1
//! (the backend this CPU gets) in the swarm's 64 KiB pieces on every core, plus one loopback
//! TCP stream with large writes. A run's `ratio` is its seconds over these.

use super::MIB;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Instant;

pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

pub struct Floor {
    pub sha1: f64,
    pub tcp: f64,
}

impl Floor {
    pub fn total(&self) -> f64 {
        self.sha1 + self.tcp
    }
}

/// The swarm's piece: 128 chunks of 512 bytes.
const PIECE: usize = 64 * 1024;

/// The machine's floor for moving `bytes`: SHA-1 over them in 64 KiB pieces on all cores,
/// plus sending them once through loopback TCP with 1 MiB writes.
pub fn floor(bytes: u64) -> Floor {
    let threads = cores() as u64;
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            thread::spawn(move || {
                let data: Vec<u8> = (0..MIB).map(|i| (i * 7 + t) as u8).collect();
                let mut left = bytes / threads;
                let mut acc = 0u8;
                while left > 0 {
                    let n = left.min(MIB) as usize;
                    for piece in data[..n].chunks(PIECE) {
                        acc ^= p2p::hashing::sha1(piece)[0];
                    }
                    left -= n as u64;
                }
                acc
            })
        })
        .collect();
    let _ = workers
        .into_iter()
        .map(|w| w.join().unwrap_or(0))
        .fold(0, |a, b| a ^ b);
    let sha1 = start.elapsed().as_secs_f64();

    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let start = Instant::now();
    let sender = thread::spawn(move || {
        let mut s = TcpStream::connect(addr).expect("connect");
        let data = vec![0x5a; MIB as usize];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(MIB) as usize;
            s.write_all(&data[..n]).expect("send");
            left -= n as u64;
        }
    });
    let (mut r, _) = listener.accept().expect("accept");
    let mut buf = vec![0; MIB as usize];
    let mut got = 0u64;
    while got < bytes {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n as u64,
        }
    }
    let _ = sender.join();
    Floor {
        sha1,
        tcp: start.elapsed().as_secs_f64(),
    }
}
