//! This machine's floor for moving the swarm's bytes, in wall seconds and in CPU-seconds:
//! hashing them once with p2p's own SHA-1 (the backend this CPU gets, two pieces side by
//! side) in the swarm's 64 KiB pieces on every core, writing them once into fresh files (the page cache's cost, which
//! on a virtual machine is mostly the first touch of each new page), and sending them once
//! through one loopback TCP stream with large writes. A run's `ratio` is its seconds over
//! the floor's; its CPU-seconds can be set beside the floor's the same way.

use super::MIB;
use super::guards::own_cpu_secs;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::thread;
use std::time::Instant;

pub fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

/// Wall seconds of each part, and the CPU-seconds of all three.
pub struct Floor {
    pub sha1: f64,
    pub write: f64,
    pub tcp: f64,
    pub cpu: f64,
}

impl Floor {
    pub fn total(&self) -> f64 {
        self.sha1 + self.write + self.tcp
    }

    pub fn line(&self, bytes: u64) -> String {
        format!(
            "floor={:.3}s (sha1 {} 64 KiB pieces on {} cores {:.3}s + writing fresh files {:.3}s + loopback tcp {:.3}s) floor_cpu={:.2}s floor_cpu_per_gb={:.2}s",
            self.total(),
            p2p::hashing::backend().name(),
            cores(),
            self.sha1,
            self.write,
            self.tcp,
            self.cpu,
            self.cpu / (bytes as f64 / 1e9)
        )
    }
}

/// The swarm's piece: 128 chunks of 512 bytes.
const PIECE: usize = 64 * 1024;
/// The floor's fresh files are at most this large.
const FILE_SIZE: u64 = 256 * MIB;

/// Runs `work(t, bytes / threads)` on one thread per core and waits for all of them.
fn on_every_core(bytes: u64, work: fn(u64, u64)) {
    let threads = cores() as u64;
    let workers: Vec<_> = (0..threads)
        .map(|t| thread::spawn(move || work(t, bytes / threads)))
        .collect();
    for w in workers {
        let _ = w.join();
    }
}

fn pattern(t: u64) -> Vec<u8> {
    (0..MIB).map(|i| (i * 7 + t) as u8).collect()
}

/// SHA-1 over `bytes` bytes in 64 KiB pieces.
fn hash(t: u64, bytes: u64) {
    let data = pattern(t);
    let (mut left, mut acc) = (bytes, 0u8);
    while left > 0 {
        let n = left.min(MIB) as usize;
        // Two pieces side by side, as p2p hashes them.
        for two in data[..n].chunks(2 * PIECE) {
            let (a, b) = two.split_at(two.len().min(PIECE));
            acc ^= p2p::hashing::sha1_pair(a, b).0[0];
        }
        left -= n as u64;
    }
    std::hint::black_box(acc);
}

/// Writes `bytes` bytes into fresh files, a 64 KiB piece at a time, then removes them.
fn write(t: u64, bytes: u64) {
    let data = pattern(t);
    let mut left = bytes;
    for f in 0.. {
        if left == 0 {
            break;
        }
        let path = std::env::temp_dir().join(format!("p2p-floor-{}-{t}-{f}", std::process::id()));
        let _removed = Removed(path.clone());
        let file = File::create(&path).expect("floor file");
        let mut at = 0;
        while left > 0 && at < FILE_SIZE {
            let n = left.min(PIECE as u64).min(FILE_SIZE - at);
            file.write_all_at(&data[..n as usize], at)
                .expect("floor write");
            at += n;
            left -= n;
        }
    }
}

struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `bytes` bytes once through loopback TCP with 1 MiB writes.
fn send_through_loopback(bytes: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
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
}

/// The machine's floor for moving `bytes` (see the module's comment).
pub fn floor(bytes: u64) -> Floor {
    let cpu_before = own_cpu_secs();
    let timed = |part: &dyn Fn()| {
        let start = Instant::now();
        part();
        start.elapsed().as_secs_f64()
    };
    let sha1 = timed(&|| on_every_core(bytes, hash));
    let write = timed(&|| on_every_core(bytes, write));
    let tcp = timed(&|| send_through_loopback(bytes));
    Floor {
        sha1,
        write,
        tcp,
        cpu: own_cpu_secs() - cpu_before,
    }
}
