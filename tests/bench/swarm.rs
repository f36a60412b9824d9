//! The swarm benchmark: `make bench`, `make bench-scale`, `make bench-quick`.
//!
//! Lays out one folder per peer as a grader would (the scripts, the release binary, one file
//! in `Shared/`), runs the real `sh tracker.sh` and `sh peer.sh`, times from the first peer's
//! start to the last peer's exit, checks every copy's SHA-1, and prints one line per run. In
//! the same run it measures this machine's floor for the same bytes: SHA-1 in 512-byte chunks
//! on every core, plus one loopback TCP stream with large writes; `ratio` is swarm seconds
//! over floor seconds.
//!
//! Options (after `--`): `--quick` (a small correctness smoke test, no timing claims),
//! `--scale` (the table N = 2..32 × 1, 32, 256 MiB, skipping runs above 4 GB moved),
//! `--tracker-rate` (how fast the tracker prints ACQUIRED lines into a file),
//! `-n PEERS`, `--mib SIZE`, `--alive SECONDS`.

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_p2p");
const MIB: u64 = 1024 * 1024;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut peers, mut mib, mut alive) = (8u64, 32u64, 1u64);
    let (mut quick, mut scale, mut tracker_rate) = (false, false, false);
    while let Some(a) = args.next() {
        let mut value = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage_error(&format!("{what} wants a number")))
        };
        match a.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--scale" => scale = true,
            "--tracker-rate" => tracker_rate = true,
            "-n" => peers = value("-n"),
            "--mib" => mib = value("--mib"),
            "--alive" => alive = value("--alive"),
            other => usage_error(&format!("unknown option {other:?}")),
        }
    }
    if quick {
        let run = swarm(3, MIB + 7, 1);
        println!("{}", run.line());
        println!("bench-quick ok");
        return;
    }
    if tracker_rate {
        println!("{}", print_rate(16384, 64));
        return;
    }
    if scale {
        println!(
            "{:>5} {:>8} {:>9} {:>9} {:>10} {:>8} {:>7}",
            "peers", "size", "moved", "seconds", "transfers", "MB/s", "ratio"
        );
        for mib in [1, 32, 256] {
            for peers in [2, 4, 8, 16, 32] {
                let moved = peers * (peers - 1) * mib * MIB;
                if moved > 4_000_000_000 {
                    continue;
                }
                let run = swarm(peers, mib * MIB, alive);
                let floor = floor(moved);
                println!(
                    "{peers:>5} {:>5}MiB {:>7.0}MB {:>9.3} {:>10.3} {:>8.0} {:>7.2}",
                    mib,
                    moved as f64 / 1e6,
                    run.secs,
                    run.transfers_secs,
                    run.mbps(),
                    run.secs / floor.total()
                );
            }
        }
        return;
    }
    let run = swarm(peers, mib * MIB, alive);
    let floor = floor(run.moved());
    println!("{}", run.line());
    println!(
        "floor={:.3}s (sha1 512-byte chunks on {} cores {:.3}s + loopback tcp {:.3}s) ratio={:.2}",
        floor.total(),
        cores(),
        floor.sha1,
        floor.tcp,
        run.secs / floor.total()
    );
}

/// A failed run: unwinds, so the guards kill every child and remove the folder.
fn fail(msg: &str) -> ! {
    panic!("bench: {msg}");
}

fn usage_error(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2);
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

struct Run {
    peers: u64,
    size: u64,
    alive: u64,
    secs: f64,
    port_ms: f64,
    transfers_secs: f64,
    tracker_rss_kib: i64,
    peer_rss_kib: i64,
    acquired: u64,
}

impl Run {
    fn moved(&self) -> u64 {
        self.peers * (self.peers - 1) * self.size
    }

    fn mbps(&self) -> f64 {
        self.moved() as f64 / 1e6 / self.secs
    }

    fn line(&self) -> String {
        format!(
            "peers={} size={}B alive={}s seconds={:.3} transfers_done={:.3}s received={:.0}MB rate={:.0}MB/s port_txt={:.1}ms tracker_rss={}KiB peer_rss_max={}KiB acquired_lines={}",
            self.peers,
            self.size,
            self.alive,
            self.secs,
            self.transfers_secs,
            self.moved() as f64 / 1e6,
            self.mbps(),
            self.port_ms,
            self.tracker_rss_kib,
            self.peer_rss_kib,
            self.acquired
        )
    }
}

/// A temporary folder, removed on drop.
struct Work(PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// One project copy: scripts, Shared/, and target/release/p2p.
fn copy(dir: &Path) {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    fs::create_dir_all(dir.join("Shared")).expect("Shared");
    fs::create_dir_all(dir.join("target/release")).expect("target");
    for script in ["peer.sh", "tracker.sh"] {
        fs::copy(project.join(script), dir.join(script)).expect("copy script");
    }
    std::os::unix::fs::symlink(BIN, dir.join("target/release/p2p")).expect("link binary");
}

/// Writes `size` pseudo-random bytes seeded by `seed`; returns their SHA-1.
fn make_file(path: &Path, seed: u64, size: u64) -> [u8; 20] {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out =
        std::io::BufWriter::with_capacity(1 << 20, fs::File::create(path).expect("create"));
    let mut sha = sha1_smol::Sha1::new();
    let mut block = vec![0u8; 1 << 16];
    let mut left = size;
    while left > 0 {
        for word in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
        let n = left.min(block.len() as u64) as usize;
        out.write_all(&block[..n]).expect("write");
        sha.update(&block[..n]);
        left -= n as u64;
    }
    out.flush().expect("flush");
    sha.digest().bytes()
}

fn file_sha1(path: &Path) -> Option<[u8; 20]> {
    let mut f = fs::File::open(path).ok()?;
    let mut sha = sha1_smol::Sha1::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            return Some(sha.digest().bytes());
        }
        sha.update(&buf[..n]);
    }
}

/// Child processes that are killed and reaped on drop unless already reaped, so a failed
/// run leaves nothing behind.
struct Children(Vec<(std::process::Child, bool)>);

impl Children {
    /// Waits for child `i` and returns its exit status and peak RSS in KiB.
    fn reap(&mut self, i: usize) -> (i32, i64) {
        let (child, reaped) = &mut self.0[i];
        *reaped = true;
        reap(child.id())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (child, reaped) in &mut self.0 {
            if !*reaped {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Waits for `pid` and returns its peak RSS in KiB, from the kernel's accounting (wait4).
fn reap(pid: u32) -> (i32, i64) {
    unsafe extern "C" {
        fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut [i64; 18]) -> i32;
    }
    let mut status = 0i32;
    let mut usage = [0i64; 18];
    // SAFETY: wait4 writes one int and one struct rusage (18 longs on 64-bit Linux).
    let r = unsafe { wait4(pid as i32, &mut status, 0, &mut usage) };
    if r != pid as i32 {
        fail(&format!("wait4 failed for {pid}"));
    }
    (status, usage[4])
}

fn swarm(peers: u64, size: u64, alive: u64) -> Run {
    let work =
        Work(std::env::temp_dir().join(format!("p2p-bench-{}-{peers}-{size}", std::process::id())));
    let _ = fs::remove_dir_all(&work.0);
    copy(&work.0.join("tracker"));
    let mut sums = Vec::new();
    for i in 0..peers {
        let dir = work.0.join(format!("peer{i}"));
        copy(&dir);
        sums.push((
            format!("file{i}.bin"),
            make_file(&dir.join(format!("Shared/file{i}.bin")), i + 1, size),
        ));
    }
    let tracker_dir = work.0.join("tracker");
    let launched = Instant::now();
    let mut tracker = Children(vec![(
        Command::new("sh")
            .arg("tracker.sh")
            .current_dir(&tracker_dir)
            .stdout(fs::File::create(tracker_dir.join("out")).expect("out"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tracker"),
        false,
    )]);
    let port_file = tracker_dir.join("port.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    let (port, port_ms) = loop {
        if let Some(p) = fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
        {
            break (p.to_string(), launched.elapsed().as_secs_f64() * 1e3);
        }
        if Instant::now() > deadline {
            fail("tracker wrote no port.txt");
        }
        thread::sleep(Duration::from_millis(1));
    };
    let start = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = watch_transfers(
        tracker_dir.join("out"),
        printed_size(peers, size),
        start,
        stop.clone(),
    );
    let mut children = Children(
        (0..peers)
            .map(|i| {
                let dir = work.0.join(format!("peer{i}"));
                Command::new("sh")
                    .args(["peer.sh", "127.0.0.1", &port, &alive.to_string()])
                    .current_dir(&dir)
                    .stdout(
                        fs::File::create(dir.join("../out".to_string() + &i.to_string()))
                            .expect("out"),
                    )
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("peer")
            })
            .map(|c| (c, false))
            .collect(),
    );
    let mut peer_rss = 0;
    for i in 0..children.0.len() {
        let (status, rss) = children.reap(i);
        if status != 0 {
            fail(&format!("a peer exited with status {status}"));
        }
        peer_rss = peer_rss.max(rss);
    }
    let secs = start.elapsed().as_secs_f64();
    // Every peer has exited: whatever the tracker printed is all there will be.
    let transfers_secs = match fs::metadata(tracker_dir.join("out")) {
        Ok(m) if m.len() >= printed_size(peers, size) => {
            stop.store(false, Ordering::Relaxed);
            watcher.join().unwrap_or(f64::NAN)
        }
        _ => {
            stop.store(true, Ordering::Relaxed);
            let _ = watcher.join();
            f64::NAN
        }
    };
    // The tracker runs until killed; then read its peak RSS.
    let _ = tracker.0[0].0.kill();
    let (_, tracker_rss) = tracker.reap(0);
    for i in 0..peers {
        let shared = work.0.join(format!("peer{i}/Shared"));
        for (name, sum) in &sums {
            if file_sha1(&shared.join(name)).as_ref() != Some(sum) {
                fail(&format!("peer{i}: {name} is missing or differs"));
            }
        }
    }
    let out = fs::read_to_string(tracker_dir.join("out")).unwrap_or_default();
    let acquired = out.lines().filter(|l| l.contains(" ACQUIRED: ")).count() as u64;
    let expected = peers * (peers - 1) * size.div_ceil(512);
    if acquired != expected {
        fail(&format!("{acquired} ACQUIRED lines, expected {expected}"));
    }
    Run {
        peers,
        size,
        alive,
        secs,
        port_ms,
        transfers_secs,
        tracker_rss_kib: tracker_rss,
        peer_rss_kib: peer_rss,
        acquired,
    }
}

/// The bytes the tracker prints before its first DISCONNECT: every CONNECT block and every
/// ACQUIRED line (no peer can leave before every chunk is everywhere). Peer `i` offers
/// `file{i}.bin`; which id each peer gets does not change the sum.
fn printed_size(peers: u64, size: u64) -> u64 {
    let chunks = size.div_ceil(512);
    let digits = |n: u64| n.to_string().len() as u64;
    let ids: u64 = (0..peers).map(digits).sum();
    let names: u64 = (0..peers)
        .map(|i| format!("file{i}.bin").len() as u64)
        .sum();
    let connects = (0..peers).map(|id| {
        format!("PEER {id} CONNECT: OFFERS 1\n").len() as u64
            + digits(id)
            + 4
            + 1
            + digits(chunks)
            + 1
    });
    let numbers: u64 = (1..=chunks).map(digits).sum();
    // "PEER " id " ACQUIRED: CHUNK " x "/" total " " name "\n", for each peer and other file.
    let fixed = 5 + 17 + 1 + digits(chunks) + 1 + 1;
    let acquired =
        (peers - 1) * (ids * chunks + names * chunks + peers * (numbers + fixed * chunks));
    connects.sum::<u64>() + names + acquired
}

/// Polls the tracker's output until it reaches `bytes` (every transfer reported); returns the
/// seconds since `start`, or NaN if `stop` is raised first.
fn watch_transfers(
    out: PathBuf,
    bytes: u64,
    start: Instant,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<f64> {
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            if fs::metadata(&out).map(|m| m.len()).unwrap_or(0) >= bytes {
                return start.elapsed().as_secs_f64();
            }
            thread::sleep(Duration::from_millis(2));
        }
        f64::NAN
    })
}

struct Floor {
    sha1: f64,
    tcp: f64,
}

impl Floor {
    fn total(&self) -> f64 {
        self.sha1 + self.tcp
    }
}

/// The machine's floor for moving `bytes`: SHA-1 over them in 512-byte chunks on all cores,
/// plus sending them once through loopback TCP with 1 MiB writes.
fn floor(bytes: u64) -> Floor {
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
                    for chunk in data[..n].chunks(512) {
                        acc ^= sha1_smol::Sha1::from(chunk).digest().bytes()[0];
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

/// Reads one reply line from a raw connection.
fn reply(r: &mut std::io::BufReader<TcpStream>) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(r, &mut line).expect("reply");
    line
}

/// Measures the tracker alone: one fake peer offers a file of `pieces` pieces, a second
/// reports holding all of it, `batch` pieces per HAVE line, pipelined; the tracker prints 128
/// ACQUIRED lines per piece into a file. Reports lines per second until the last reply.
fn print_rate(pieces: u64, batch: u64) -> String {
    let work = Work(std::env::temp_dir().join(format!("p2p-bench-rate-{}", std::process::id())));
    fs::create_dir_all(&work.0).expect("dir");
    let out = work.0.join("out");
    let mut tracker = Children(vec![(
        Command::new(BIN)
            .arg("tracker")
            .current_dir(&work.0)
            .stdout(fs::File::create(&out).expect("out"))
            .spawn()
            .expect("tracker"),
        false,
    )]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let port: u16 = loop {
        if let Some(p) = fs::read_to_string(work.0.join("port.txt"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            break p;
        }
        if Instant::now() > deadline {
            fail("tracker wrote no port.txt");
        }
        thread::sleep(Duration::from_millis(1));
    };
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let r = std::io::BufReader::new(s.try_clone().expect("clone"));
        (s, r)
    };
    let size = pieces * 65536;
    let (mut owner, mut owner_r) = connect();
    write!(owner, "HELLO p2p/1 peer\nOFFER f {size}\nJOIN 9\n").expect("offer");
    for _ in 0..3 {
        reply(&mut owner_r);
    }
    // The owner's piece hashes, in batches as large as HASHED allows.
    let batch_max = p2p::protocol::MAX_HASH_BATCH;
    for first in (0..pieces).step_by(batch_max as usize) {
        let count = batch_max.min(pieces - first);
        writeln!(owner, "HASHED f {first} {count}").expect("hashed");
        owner
            .write_all(&vec![0u8; count as usize * 20])
            .expect("hashes");
        let r = reply(&mut owner_r);
        if !r.starts_with("OK") {
            fail(&format!("HASHED refused: {r}"));
        }
    }
    let (mut taker, mut taker_r) = connect();
    taker
        .write_all(b"HELLO p2p/1 peer\nJOIN 10\n")
        .expect("join");
    reply(&mut taker_r);
    reply(&mut taker_r);
    let lines: Vec<String> = (0..pieces.div_ceil(batch))
        .map(|b| {
            format!(
                "HAVE f {}-{}\n",
                b * batch,
                ((b + 1) * batch).min(pieces) - 1
            )
        })
        .collect();
    let start = Instant::now();
    let sender = thread::spawn(move || {
        for l in lines {
            taker.write_all(l.as_bytes()).expect("have");
        }
        taker
    });
    for _ in 0..pieces.div_ceil(batch) {
        let r = reply(&mut taker_r);
        if !r.starts_with("OK") {
            fail(&format!("HAVE refused: {r}"));
        }
    }
    // The tracker's printer writes behind the replies: the time that counts is when the
    // last line is in the file.
    let expected = pieces * 128;
    let fixed = format!("PEER 1 ACQUIRED: CHUNK /{expected} f\n").len() as u64;
    let bytes: u64 = (1..=expected).map(|x| fixed + x.ilog10() as u64 + 1).sum();
    let all_written = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&out).map_or(0, |m| m.len()) < bytes && Instant::now() < all_written {
        thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    let _taker = sender.join();
    let _ = tracker.0[0].0.kill();
    tracker.reap(0);
    let printed = fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ACQUIRED: "))
        .count();
    if printed as u64 != expected {
        fail(&format!("{printed} ACQUIRED lines, expected {expected}"));
    }
    format!(
        "tracker printed {printed} ACQUIRED lines in {secs:.3} s: {:.2} million lines/s into a file",
        printed as f64 / secs / 1e6
    )
}
