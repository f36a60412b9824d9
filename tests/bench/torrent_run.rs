//! One aria2 swarm for `make bench-bittorrent`, the same work as `run::swarm(n, size, 1)`:
//! n peers, peer i starting with its own pseudo-random file i, every peer ending with all n.
//! Here each peer is one `aria2c` process in its own folder, given all n `.torrent` files
//! (written by the bench, see `bencode`), and the tracker is one `opentracker`; everything
//! listens on 127.0.0.1 only. The clock runs from the first aria2c start until every peer has
//! reported every other file complete (a hook appends the file's name to the peer's `.done`);
//! then every process is stopped and reaped so its CPU-seconds count, and every copy's SHA-1
//! is checked against the source.

use super::bencode;
use super::data::{file_sha1, make_file};
use super::guards::{Children, Work, fail};
use std::fs;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The torrents' piece length: 1 MiB, a usual choice, and the one with which aria2 moved
/// 8 × 32 MiB fastest here (256 KiB and 512 KiB took 1–3 s longer).
pub const PIECE: u64 = 1024 * 1024;

/// Called by aria2 when a torrent's download is complete (before seeding), with the GID, the
/// number of files and the first file's path: appends the file's name to its folder's `.done`.
const HOOK: &str = "#!/bin/sh\nprintf '%s\\n' \"${3##*/}\" >> \"${3%/*}/.done\"\n";

/// What one aria2 run took.
pub struct Aria2Run {
    pub peers: u64,
    pub size: u64,
    pub secs: f64,
    /// CPU-seconds (user + system) of opentracker and every aria2c together.
    pub cpu_secs: f64,
    pub tracker_cpu_secs: f64,
    pub peer_rss_kib: i64,
}

impl Aria2Run {
    pub fn moved(&self) -> u64 {
        self.peers * (self.peers - 1) * self.size
    }

    /// CPU-seconds per gigabyte (1e9 bytes) received.
    pub fn cpu_per_gb(&self) -> f64 {
        self.cpu_secs / (self.moved() as f64 / 1e9)
    }

    pub fn line(&self) -> String {
        format!(
            "aria2 peers={} size={}B piece={}B seconds={:.3} received={:.0}MB rate={:.0}MB/s cpu={:.2}s cpu_per_gb={:.2}s tracker_cpu={:.2}s peer_rss_max={}KiB",
            self.peers,
            self.size,
            PIECE,
            self.secs,
            self.moved() as f64 / 1e6,
            self.moved() as f64 / 1e6 / self.secs,
            self.cpu_secs,
            self.cpu_per_gb(),
            self.tracker_cpu_secs,
            self.peer_rss_kib
        )
    }
}

/// `count` distinct ports free on 127.0.0.1 a moment ago (all bound at once, then released).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|e| fail(&format!("bind 127.0.0.1:0: {e}")))
        })
        .collect();
    listeners
        .iter()
        .map(|l| match l.local_addr() {
            Ok(a) => a.port(),
            Err(e) => fail(&format!("local_addr: {e}")),
        })
        .collect()
}

fn write(path: &Path, bytes: &[u8], mode: u32) {
    if let Err(e) = fs::write(path, bytes)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(mode)))
    {
        fail(&format!("write {}: {e}", path.display()));
    }
}

fn make_dir(path: &Path) {
    // opentracker reads its whitelist after dropping to user nobody: folders must be open.
    if let Err(e) = fs::create_dir_all(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o755)))
    {
        fail(&format!("create {}: {e}", path.display()));
    }
}

/// The last lines of a process's output file, for a failure message.
fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Waits up to 10 s for opentracker (child 0 of `tracker`) to accept connections on `port`.
fn wait_for_tracker(tracker: &mut Children, port: u16, out: &Path) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = tracker.0[0].0.try_wait() {
            tracker.0[0].1 = true;
            fail(&format!("opentracker exited ({status}): {}", tail(out)));
        }
        if Instant::now() > deadline {
            fail(&format!("opentracker is not listening on 127.0.0.1:{port}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// aria2c's options for one peer: aria2 at its best on loopback, doing the same work.
fn aria2_args(peers: u64, dir: &Path, port: u16, hook: &Path) -> Vec<String> {
    let fixed = [
        // Only 127.0.0.1, and only the tracker to find peers (peer exchange stays on: it
        // changed nothing measurable here).
        "--interface=127.0.0.1",
        "--disable-ipv6=true",
        "--enable-dht=false",
        "--enable-dht6=false",
        "--bt-enable-lpd=false",
        // Its own file is complete: seed it without hashing it again. The bench hashed it
        // when writing the .torrent; with --check-integrity aria2 took about 1 s longer.
        "--bt-seed-unverified=true",
        // Seed until stopped, so nobody leaves while others still need them.
        "--seed-ratio=0.0",
        // No limits: every peer, every byte per second.
        "--bt-max-peers=0",
        "--bt-request-peer-speed-limit=1024M",
        "--max-overall-upload-limit=0",
        "--max-overall-download-limit=0",
        // The fastest here; falloc or mmap were no better, and mmap cost CPU.
        "--file-allocation=none",
        // Quiet: output goes to a file, and drawing progress costs CPU.
        "--summary-interval=0",
        "--show-console-readout=false",
        "--console-log-level=warn",
    ];
    let mut args: Vec<String> = fixed.map(String::from).to_vec();
    // Every torrent active at once.
    args.push(format!("--max-concurrent-downloads={peers}"));
    args.push(format!("--dir={}", dir.display()));
    args.push(format!("--listen-port={port}"));
    args.push(format!("--on-bt-download-complete={}", hook.display()));
    // Should the bench die without unwinding, aria2 leaves by itself.
    args.push(format!("--stop-with-process={}", std::process::id()));
    args
}

/// Whether peer `i`'s `.done` names every file but its own.
fn peer_done(done: &Path, i: u64, peers: u64, names: &[String]) -> bool {
    let expected: u64 = (0..peers)
        .filter(|&j| j != i)
        .map(|j| names[j as usize].len() as u64 + 1)
        .sum();
    if fs::metadata(done).map(|m| m.len()).unwrap_or(0) < expected {
        return false;
    }
    let text = fs::read_to_string(done).unwrap_or_default();
    (0..peers)
        .filter(|&j| j != i)
        .all(|j| text.lines().any(|l| l == names[j as usize]))
}

pub fn aria2_swarm(peers: u64, size: u64) -> Aria2Run {
    let work = Work(std::env::temp_dir().join(format!(
        "p2p-bench-aria2-{}-{peers}-{size}",
        std::process::id()
    )));
    let _ = fs::remove_dir_all(&work.0);
    let (tracker_dir, torrents) = (work.0.join("tracker"), work.0.join("torrents"));
    make_dir(&work.0);
    make_dir(&tracker_dir);
    make_dir(&torrents);
    let ports = free_ports(peers as usize + 1);
    let announce = format!("http://127.0.0.1:{}/announce", ports[0]);
    let names: Vec<String> = (0..peers).map(|i| format!("file{i}.bin")).collect();
    let (mut sums, mut whitelist, mut torrent_paths) = (Vec::new(), String::new(), Vec::new());
    for (i, name) in names.iter().enumerate() {
        let dir = work.0.join(format!("peer{i}"));
        make_dir(&dir);
        let (pieces, sum) = make_file(&dir.join(name), i as u64 + 1, size, Some(PIECE));
        let meta = bencode::single_file(&announce, name, size, PIECE, &pieces);
        let path = torrents.join(format!("file{i}.torrent"));
        write(&path, &meta.bytes, 0o644);
        whitelist.push_str(&meta.info_hash_hex());
        whitelist.push('\n');
        torrent_paths.push(path);
        sums.push(sum);
    }
    // Debian's opentracker only serves whitelisted info hashes, and reads the list by an
    // absolute path once it has dropped its privileges.
    let whitelist_path = tracker_dir.join("whitelist.txt");
    write(&whitelist_path, whitelist.as_bytes(), 0o644);
    let hook = work.0.join("done-hook.sh");
    write(&hook, HOOK.as_bytes(), 0o755);
    let tracker_out = tracker_dir.join("out");
    let out_file = |path: &Path| {
        fs::File::create(path).unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())))
    };
    let port = ports[0].to_string();
    let mut tracker = Children(vec![(
        Command::new("opentracker")
            .args(["-i", "127.0.0.1", "-p", &port, "-P", &port, "-w"])
            .arg(&whitelist_path)
            .current_dir(&tracker_dir)
            .stdout(out_file(&tracker_out))
            .stderr(Stdio::from(out_file(&tracker_dir.join("err"))))
            .spawn()
            .unwrap_or_else(|e| fail(&format!("start opentracker: {e}"))),
        false,
    )]);
    wait_for_tracker(&mut tracker, ports[0], &tracker_dir.join("err"));
    let dirs: Vec<PathBuf> = (0..peers)
        .map(|i| work.0.join(format!("peer{i}")))
        .collect();
    let start = Instant::now();
    let mut children = Children(Vec::new());
    for (i, dir) in dirs.iter().enumerate() {
        let out = out_file(&dir.join("aria2.out"));
        let err = out_file(&dir.join("aria2.err"));
        let child = Command::new("aria2c")
            .args(aria2_args(peers, dir, ports[i + 1], &hook))
            .args(&torrent_paths)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("start aria2c: {e}")));
        children.0.push((child, false));
    }
    // Every loop is bounded: a generous 60 s plus 10 MB/s for the bytes to move.
    let deadline = start + Duration::from_secs(60 + size * peers * peers / 10_000_000);
    let mut done = vec![false; peers as usize];
    while done.iter().any(|d| !d) {
        for (i, dir) in dirs.iter().enumerate() {
            done[i] = done[i] || peer_done(&dir.join(".done"), i as u64, peers, &names);
        }
        for (i, (child, reaped)) in children.0.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                *reaped = true;
                fail(&format!(
                    "aria2c of peer{i} exited ({status}): {}",
                    tail(&dirs[i].join("aria2.out"))
                ));
            }
        }
        if Instant::now() > deadline {
            let waiting: Vec<String> = (0..peers as usize)
                .filter(|&i| !done[i])
                .map(|i| format!("peer{i} ({})", tail(&dirs[i].join("aria2.out"))))
                .collect();
            fail(&format!(
                "aria2 swarm incomplete after {:.0}s: {}; opentracker: {}",
                start.elapsed().as_secs_f64(),
                waiting.join(", "),
                tail(&tracker_dir.join("err"))
            ));
        }
        thread::sleep(Duration::from_millis(2));
    }
    let secs = start.elapsed().as_secs_f64();
    let (mut cpu_secs, mut peer_rss_kib) = (0.0, 0);
    for i in 0..children.0.len() {
        let _ = children.0[i].0.kill();
        let used = children.reap(i);
        cpu_secs += used.cpu_secs;
        peer_rss_kib = peer_rss_kib.max(used.rss_kib);
    }
    let _ = tracker.0[0].0.kill();
    let tracker_cpu_secs = tracker.reap(0).cpu_secs;
    cpu_secs += tracker_cpu_secs;
    for (i, dir) in dirs.iter().enumerate() {
        for (name, sum) in names.iter().zip(&sums) {
            if file_sha1(&dir.join(name)).as_ref() != Some(sum) {
                fail(&format!("aria2 peer{i}: {name} is missing or differs"));
            }
        }
    }
    Aria2Run {
        peers,
        size,
        secs,
        cpu_secs,
        tracker_cpu_secs,
        peer_rss_kib,
    }
}
