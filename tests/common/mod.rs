//! Shared test harness: temporary folders, child processes killed on drop, bounded waits,
//! deterministic file contents, and a strict parser of the grading output.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_p2p");

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("p2p-test-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stdout and stderr go to files; killed on drop.
pub struct Proc {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    pub out: PathBuf,
    pub err: PathBuf,
    pub started: Instant,
    status: Option<(ExitStatus, Instant)>,
}

impl Proc {
    /// Runs `program args` in `dir`, with output files `<logs>/<name>.out` and `.err`.
    pub fn spawn(program: &str, args: &[&str], dir: &Path, logs: &Path, name: &str) -> Proc {
        Proc::spawn_inner(program, args, dir, logs, name, false)
    }

    /// Like [`Proc::spawn`], with stdin a pipe that [`Proc::send_line`] writes to.
    pub fn spawn_interactive(
        program: &str,
        args: &[&str],
        dir: &Path,
        logs: &Path,
        name: &str,
    ) -> Proc {
        Proc::spawn_inner(program, args, dir, logs, name, true)
    }

    fn spawn_inner(
        program: &str,
        args: &[&str],
        dir: &Path,
        logs: &Path,
        name: &str,
        piped: bool,
    ) -> Proc {
        let out = logs.join(format!("{name}.out"));
        let err = logs.join(format!("{name}.err"));
        // Taken before the spawn, so that `lifetime` is never shorter than the real one.
        let started = Instant::now();
        let mut child = Command::new(program)
            .args(args)
            .current_dir(dir)
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"))
            .spawn()
            .expect("spawn");
        Proc {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            started,
            status: None,
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("spawned with spawn_interactive");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited (remembering when it was first seen).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.status = Some((s, Instant::now()));
        }
        self.status.map(|(s, _)| s)
    }

    /// Waits up to `limit` for the process to exit; panics with its stderr if it does not.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if !wait_until(limit, || self.try_status().is_some()) {
            panic!(
                "process did not exit within {limit:?}; stderr: {}",
                self.stderr()
            );
        }
        self.try_status().expect("status")
    }

    /// How long the process lived, as seen from here (an upper bound of its own view).
    pub fn lifetime(&self) -> Option<Duration> {
        self.status.map(|(_, at)| at - self.started)
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Bytes that depend only on `seed` and `len`.
pub fn content(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Starts the grading tracker in `dir` and returns it with its port (read from port.txt).
pub fn start_tracker(dir: &Path, logs: &Path) -> (Proc, u16) {
    fs::create_dir_all(dir).expect("tracker dir");
    let tracker = Proc::spawn(BIN, &["tracker"], dir, logs, "tracker");
    let port_file = dir.join("port.txt");
    let mut port = None;
    let found = wait_until(Duration::from_secs(10), || {
        port = fs::read_to_string(&port_file).ok().and_then(|s| {
            let digits = s.strip_suffix('\n')?;
            digits.parse::<u16>().ok()
        });
        port.is_some()
    });
    assert!(found, "tracker wrote no valid port.txt");
    (tracker, port.expect("port"))
}

/// A tracker and one real peer that keeps serving `name` (MIN_ALIVE 600 s), ready: every
/// piece of it hashed and shown to others.
pub struct Seeded {
    pub root: TempDir,
    pub tracker: Proc,
    pub port: u16,
    pub seeder: Proc,
    pub spec: PeerSpec,
    /// Where the seeder serves chunks.
    pub addr: String,
}

pub fn seeded(tag: &str, name: &str, data: Vec<u8>) -> Seeded {
    let root = TempDir::new(tag);
    let (tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let pieces = data.len().div_ceil(65536);
    let spec = peer_folder(root.path(), "seeder", Some((name, data)));
    let seeder = start_peer(&spec, port, "600", root.path(), "seeder");
    let full = p2p::chunk::Bitset::full(pieces).to_hex();
    let hashed = wait_until(Duration::from_secs(60), || {
        holders(port, name)
            .first()
            .is_some_and(|h| h.ends_with(&format!(" {full}")))
    });
    assert!(hashed, "the seeder hashed its file: {}", seeder.stderr());
    let addr = holder_addr(port, name);
    Seeded {
        root,
        tracker,
        port,
        seeder,
        spec,
        addr,
    }
}

/// One peer of a test swarm: its folder and the file it starts with.
pub struct PeerSpec {
    pub dir: PathBuf,
    pub file: Option<(String, Vec<u8>)>,
}

/// Makes `<root>/<tag>/Shared` holding `file`.
pub fn peer_folder(root: &Path, tag: &str, file: Option<(&str, Vec<u8>)>) -> PeerSpec {
    let dir = root.join(tag);
    fs::create_dir_all(dir.join("Shared")).expect("Shared");
    let file = file.map(|(name, data)| {
        fs::write(dir.join("Shared").join(name), &data).expect("write shared file");
        (name.to_string(), data)
    });
    PeerSpec { dir, file }
}

pub fn start_peer(spec: &PeerSpec, port: u16, alive: &str, logs: &Path, name: &str) -> Proc {
    let port = port.to_string();
    Proc::spawn(
        BIN,
        &["peer", "127.0.0.1", &port, alive],
        &spec.dir,
        logs,
        name,
    )
}

/// Makes one folder per `(name, size)` under `root` (peer `tag0`, `tag1`, ...), the file's
/// bytes seeded by `seed + i`, and starts a peer in each with MIN_ALIVE `alive`.
pub fn start_peers(
    root: &Path,
    tag: &str,
    files: &[(&str, usize)],
    seed: u64,
    port: u16,
    alive: &str,
) -> (Vec<PeerSpec>, Vec<Proc>) {
    let specs: Vec<PeerSpec> = files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let data = content(seed + i as u64, *size);
            peer_folder(root, &format!("{tag}{i}"), Some((name, data)))
        })
        .collect();
    let procs = specs
        .iter()
        .enumerate()
        .map(|(i, s)| start_peer(s, port, alive, root, &format!("{tag}{i}")))
        .collect();
    (specs, procs)
}

/// The tracker's stdout, parsed strictly: every line must match a grading format.
#[derive(Debug, Default)]
pub struct TrackerLog {
    /// Peer id -> offered (name, chunks), in CONNECT order.
    pub connects: Vec<(u64, Vec<(String, u64)>)>,
    /// (peer, file) -> 1-based chunk numbers, in print order, and the total each line named.
    pub acquired: BTreeMap<(u64, String), Vec<(u64, u64)>>,
    /// Peer id -> received names, in DISCONNECT order.
    pub disconnects: Vec<(u64, Vec<String>)>,
    /// Per peer, the index of its DISCONNECT among all lines, and of its last ACQUIRED.
    pub disconnect_line: BTreeMap<u64, usize>,
    pub last_acquired_line: BTreeMap<u64, usize>,
}

fn list_lines<'a>(lines: &[&'a str], at: &mut usize, id: u64, count: usize) -> Vec<&'a str> {
    let prefix = format!("{id}    ");
    (0..count)
        .map(|_| {
            let line = lines
                .get(*at)
                .unwrap_or_else(|| panic!("block of peer {id} cut short"));
            *at += 1;
            line.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("line {line:?} should start with {prefix:?}"))
        })
        .collect()
}

fn header(line: &str, what: &str) -> Option<(u64, usize)> {
    let rest = line.strip_prefix("PEER ")?;
    let (id, rest) = rest.split_once(' ')?;
    let count = rest.strip_prefix(what)?;
    let id = id
        .parse()
        .ok()
        .filter(|_| id.bytes().all(|b| b.is_ascii_digit()))?;
    let count = count
        .parse()
        .ok()
        .filter(|_| count.bytes().all(|b| b.is_ascii_digit()))?;
    Some((id, count))
}

pub fn parse_tracker(text: &str) -> TrackerLog {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "tracker output ends mid-line"
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut log = TrackerLog::default();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        at += 1;
        if let Some((id, n)) = header(line, "CONNECT: OFFERS ") {
            let files = list_lines(&lines, &mut at, id, n)
                .into_iter()
                .map(|l| {
                    let (name, chunks) = l.rsplit_once(' ').expect("NAME CHUNKS");
                    (name.to_string(), chunks.parse().expect("chunk count"))
                })
                .collect();
            log.connects.push((id, files));
        } else if let Some((id, n)) = header(line, "DISCONNECT: RECEIVED ") {
            let names = list_lines(&lines, &mut at, id, n)
                .into_iter()
                .map(String::from)
                .collect();
            log.disconnects.push((id, names));
            log.disconnect_line.insert(id, at);
        } else if let Some(rest) = line.strip_prefix("PEER ") {
            let (id, rest) = rest.split_once(' ').expect("PEER N ...");
            let rest = rest
                .strip_prefix("ACQUIRED: CHUNK ")
                .unwrap_or_else(|| panic!("tracker line matches no format: {line:?}"));
            let (frac, name) = rest.split_once(' ').expect("X/N NAME");
            let (x, total) = frac.split_once('/').expect("X/N");
            let id: u64 = id.parse().expect("peer id");
            let pair = (x.parse().expect("X"), total.parse().expect("N"));
            log.acquired
                .entry((id, name.to_string()))
                .or_default()
                .push(pair);
            log.last_acquired_line.insert(id, at);
        } else {
            panic!("tracker line matches no format: {line:?}");
        }
    }
    log
}

/// A peer's stdout: exactly one SHUTDOWN block. Returns (id, names).
pub fn parse_shutdown(text: &str) -> (u64, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .first()
        .unwrap_or_else(|| panic!("peer printed nothing"));
    let (id, n) =
        header(first, "SHUTDOWN: HAS ").unwrap_or_else(|| panic!("bad SHUTDOWN line {first:?}"));
    let mut at = 1;
    let names = list_lines(&lines, &mut at, id, n)
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        at,
        lines.len(),
        "peer printed more than its SHUTDOWN block: {text:?}"
    );
    assert!(text.ends_with('\n'));
    (id, names)
}

/// Lists a folder's entry names, sorted.
pub fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

pub fn chunks_of(len: usize) -> u64 {
    (len as u64).div_ceil(512)
}

/// Checks a swarm in which every peer met every other: every file everywhere, byte for
/// byte; the tracker's and every peer's output exact and consistent. `peers[i]` ran as
/// `procs[i]` with MIN_ALIVE `alive`.
pub fn check_complete_swarm(
    peers: &[PeerSpec],
    procs: &mut [Proc],
    tracker_out: &str,
    alive: Duration,
) {
    let log = parse_tracker(tracker_out);
    let all: BTreeMap<&str, &[u8]> = peers
        .iter()
        .filter_map(|p| p.file.as_ref())
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let all_names: Vec<String> = all.keys().map(|s| s.to_string()).collect();
    assert_eq!(log.connects.len(), peers.len(), "one CONNECT per peer");
    let ids: Vec<u64> = log.connects.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids grow in connection order: {ids:?}"
    );
    for (spec, proc) in peers.iter().zip(procs.iter_mut()) {
        let status = proc.wait(Duration::from_secs(60));
        assert!(status.success(), "peer failed: {}", proc.stderr());
        let lived = proc.lifetime().expect("exited");
        assert!(lived >= alive, "peer lived {lived:?} < MIN_ALIVE {alive:?}");
        let (id, has) = parse_shutdown(&proc.stdout());
        // Its CONNECT lists exactly its own file, with the right chunk count.
        let (_, offered) = log
            .connects
            .iter()
            .find(|(i, _)| *i == id)
            .expect("CONNECT for SHUTDOWN id");
        let expected: Vec<(String, u64)> = spec
            .file
            .iter()
            .map(|(n, d)| (n.clone(), chunks_of(d.len())))
            .collect();
        assert_eq!(offered, &expected, "CONNECT of peer {id}");
        assert_eq!(has, all_names, "SHUTDOWN of peer {id}");
        // RECEIVED: every file but its own, each chunk ACQUIRED exactly once, in range.
        let own: Vec<&String> = spec.file.iter().map(|(n, _)| n).collect();
        let received: Vec<String> = all_names
            .iter()
            .filter(|n| !own.contains(n))
            .cloned()
            .collect();
        let (_, got) = log
            .disconnects
            .iter()
            .find(|(i, _)| *i == id)
            .expect("DISCONNECT");
        assert_eq!(got, &received, "DISCONNECT of peer {id}");
        for name in &all_names {
            let total = chunks_of(all[name.as_str()].len());
            let lines = log
                .acquired
                .get(&(id, name.clone()))
                .cloned()
                .unwrap_or_default();
            if own.contains(&name) {
                assert!(lines.is_empty(), "peer {id} ACQUIRED its own file {name}");
                continue;
            }
            let mut xs: Vec<u64> = lines
                .iter()
                .map(|&(x, t)| {
                    assert_eq!(t, total, "total chunks of {name}");
                    x
                })
                .collect();
            xs.sort_unstable();
            assert_eq!(
                xs,
                (1..=total).collect::<Vec<_>>(),
                "peer {id} chunks of {name}"
            );
        }
        if let Some(&last) = log.last_acquired_line.get(&id) {
            assert!(
                last < log.disconnect_line[&id],
                "peer {id} ACQUIRED after DISCONNECT"
            );
        }
        // Shared/ holds exactly every file, byte for byte, and nothing partial is left.
        let shared = spec.dir.join("Shared");
        assert_eq!(entries(&shared), all_names, "Shared/ of peer {id}");
        for (name, data) in &all {
            let got = fs::read(shared.join(name)).expect("read copy");
            assert!(got == *data, "peer {id}: {name} differs");
        }
        assert_eq!(
            entries(&spec.dir),
            ["Shared"],
            "peer {id} left files beside Shared/"
        );
    }
    let set: BTreeSet<u64> = log.disconnects.iter().map(|(i, _)| *i).collect();
    assert_eq!(set.len(), peers.len(), "one DISCONNECT per peer");
}

/// A raw protocol client, for fake peers and hostile input.
pub struct Raw {
    pub stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Raw {
    pub fn connect(addr: impl std::net::ToSocketAddrs) -> Raw {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        Raw { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("send");
    }

    /// The next line without its ending, or None at EOF or on an error.
    pub fn line(&mut self) -> Option<String> {
        use std::io::BufRead;
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
        }
    }

    /// Exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        use std::io::Read;
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("payload");
        buf
    }

    /// Sends one line and returns the reply line.
    pub fn call(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.line()
            .unwrap_or_else(|| panic!("no reply to {line:?}"))
    }

    /// The lines of a `FILES` reply: `<name> <size> <generation>`.
    pub fn files(&mut self) -> Vec<String> {
        let head = self.call("FILES");
        let n: usize = head
            .split(' ')
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad FILES reply {head:?}"));
        (0..n).map(|_| self.line().expect("file line")).collect()
    }

    /// Sends `JOIN <port>` and returns the id and heartbeat token of the reply.
    pub fn join(&mut self, port: u16) -> (u64, u64) {
        let reply = self.call(&format!("JOIN {port}"));
        let words: Vec<&str> = reply.split(' ').collect();
        match words[..] {
            ["OK", id, token] => (id.parse().expect("id"), token.parse().expect("token")),
            _ => panic!("JOIN answered {reply:?}"),
        }
    }

    /// Whether the other side closed the connection (EOF) before `limit`.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        let _ = self.stream.set_read_timeout(Some(limit));
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.line().is_none() {
                return true;
            }
        }
        false
    }
}

/// Asks the tracker at `port` where the holders of `name` serve it, and which pieces they
/// show (`<id> <ip:port> <bitset>` lines).
pub fn holders(port: u16, name: &str) -> Vec<String> {
    let mut raw = Raw::connect(("127.0.0.1", port));
    assert_eq!(raw.call("HELLO p2p/1 peer"), "OK p2p/1 tracker");
    let encoded = p2p::name::encode(name);
    let Some(generation) = raw.files().into_iter().find_map(|line| {
        let mut words = line.split(' ');
        (words.next() == Some(encoded.as_str())).then(|| words.nth(1).map(str::to_string))?
    }) else {
        return Vec::new();
    };
    let head = raw.call(&format!("HOLDERS {encoded} {generation}"));
    let n: usize = head
        .strip_prefix("OK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (0..n).map(|_| raw.line().expect("holder line")).collect()
}

/// The address (ip:port) where the one holder of `name` serves chunks.
pub fn holder_addr(port: u16, name: &str) -> String {
    let list = holders(port, name);
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].split(' ').nth(1).expect("addr").to_string()
}

/// A process's peak resident memory in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A process's CPU time so far, in clock ticks (user + system).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which sits in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(11) + num(12)
}

/// The `OFFER` line for a file `name` holding `data`.
pub fn offer_of(name: &str, data: &[u8]) -> Vec<u8> {
    format!("OFFER {} {}\n", p2p::name::encode(name), data.len()).into_bytes()
}

/// The `HASHED` line and raw piece hashes (64 KiB pieces) of all of `data`, as an offerer
/// sends them after `JOIN`.
pub fn hashed_of(name: &str, data: &[u8]) -> Vec<u8> {
    let hashes: Vec<u8> = data.chunks(65536).flat_map(p2p::hashing::sha1).collect();
    let count = hashes.len() / 20;
    let mut msg = format!("HASHED {} 0 {count}\n", p2p::name::encode(name)).into_bytes();
    msg.extend_from_slice(&hashes);
    msg
}

/// Whether two files hold the same bytes, read a piece at a time (for files too large to
/// hold in memory twice).
pub fn same_file(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (Ok(fa), Ok(fb)) = (fs::File::open(a), fs::File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = ra.read(&mut ba).unwrap_or(0);
        if n == 0 {
            return rb.read(&mut bb[..1]).unwrap_or(0) == 0;
        }
        if rb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}
