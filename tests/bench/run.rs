//! One swarm run as a grader would make it: one folder per peer with the scripts, the
//! binary and one file in `Shared/`, the real `sh tracker.sh` and `sh peer.sh`, timed from the
//! first peer's start to the last peer's exit, every copy's SHA-1 checked, and what it took
//! (time, memory, lines printed) reported on one line.

use super::BIN;
use super::data::{file_sha1, make_file};
use super::guards::{Children, Work, fail, wait_for_port};
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// What one run took: its shape, its times, its peak memory and the lines printed.
pub struct Run {
    pub peers: u64,
    pub size: u64,
    pub alive: u64,
    pub secs: f64,
    pub port_ms: f64,
    pub transfers_secs: f64,
    pub tracker_rss_kib: i64,
    pub peer_rss_kib: i64,
    /// CPU-seconds (user + system) of the tracker and every peer together.
    pub cpu_secs: f64,
    /// The tracker's share of `cpu_secs`.
    pub tracker_cpu_secs: f64,
    pub acquired: u64,
}

impl Run {
    pub fn moved(&self) -> u64 {
        self.peers * (self.peers - 1) * self.size
    }

    pub fn mbps(&self) -> f64 {
        self.moved() as f64 / 1e6 / self.secs
    }

    /// CPU-seconds per gigabyte (1e9 bytes) received.
    pub fn cpu_per_gb(&self) -> f64 {
        self.cpu_secs / (self.moved() as f64 / 1e9)
    }

    pub fn line(&self) -> String {
        format!(
            "peers={} size={}B alive={}s seconds={:.3} transfers_done={:.3}s received={:.0}MB rate={:.0}MB/s cpu={:.2}s cpu_per_gb={:.2}s tracker_cpu={:.2}s port_txt={:.1}ms tracker_rss={}KiB peer_rss_max={}KiB acquired_lines={}",
            self.peers,
            self.size,
            self.alive,
            self.secs,
            self.transfers_secs,
            self.moved() as f64 / 1e6,
            self.mbps(),
            self.cpu_secs,
            self.cpu_per_gb(),
            self.tracker_cpu_secs,
            self.port_ms,
            self.tracker_rss_kib,
            self.peer_rss_kib,
            self.acquired
        )
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

pub fn swarm(peers: u64, size: u64, alive: u64) -> Run {
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
            make_file(&dir.join(format!("Shared/file{i}.bin")), i + 1, size, None).1,
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
    let port = wait_for_port(&tracker_dir);
    let (port, port_ms) = (port.to_string(), launched.elapsed().as_secs_f64() * 1e3);
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
    let (mut peer_rss, mut cpu_secs) = (0, 0.0);
    for i in 0..children.0.len() {
        let used = children.reap(i);
        if used.status != 0 {
            fail(&format!("a peer exited with status {}", used.status));
        }
        peer_rss = peer_rss.max(used.rss_kib);
        cpu_secs += used.cpu_secs;
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
    let tracker_used = tracker.reap(0);
    cpu_secs += tracker_used.cpu_secs;
    for i in 0..peers {
        let shared = work.0.join(format!("peer{i}/Shared"));
        for (name, sum) in &sums {
            if file_sha1(&shared.join(name)).as_ref() != Some(sum) {
                fail(&format!("peer{i}: {name} is missing or differs"));
            }
        }
    }
    // Read line by line: the output is tens of MB, and a child's peak RSS (from wait4) starts
    // from the bench's own, so the bench must not grow by it.
    let acquired = fs::File::open(tracker_dir.join("out"))
        .map(|f| {
            std::io::BufReader::new(f)
                .split(b'\n')
                .map_while(Result::ok)
                .filter(|l| l.windows(11).any(|w| w == b" ACQUIRED: "))
                .count() as u64
        })
        .unwrap_or(0);
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
        tracker_rss_kib: tracker_used.rss_kib,
        peer_rss_kib: peer_rss,
        cpu_secs,
        tracker_cpu_secs: tracker_used.cpu_secs,
        acquired,
    }
}

/// The bytes the tracker prints before its first DISCONNECT: every CONNECT block and every
/// ACQUIRED line (no peer can leave before every chunk is everywhere). Peer `i` offers
/// `file{i}.bin`; which id each peer gets does not change the sum.
pub fn printed_size(peers: u64, size: u64) -> u64 {
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
pub fn watch_transfers(
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
