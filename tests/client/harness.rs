//! The set-up these tests drive: a pair of real trackers that sync with each other, and
//! real clients on stdin/stdout, each in its own folder, with bounded waits for their answers;
//! and a raw connection speaking the pair's client protocol (`OPEN`, `SEEDERS`, `RECORDS`),
//! for strangers and for reading the trackers' state.

use super::common::*;
use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

pub const LIMIT: Duration = Duration::from_secs(60);
pub const KIB: usize = 1024;
pub const PIECE: usize = 512 * KIB;

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Pair {
    pub root: TempDir,
    pub ports: [u16; 2],
    pub trackers: [Option<Proc>; 2],
}

impl Pair {
    pub fn start(tag: &str) -> Pair {
        let root = TempDir::new(tag);
        let ports = [free_port(), free_port()];
        let mut pair = Pair {
            root,
            ports,
            trackers: [None, None],
        };
        pair.start_tracker(0);
        pair.start_tracker(1);
        pair
    }

    pub fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    pub fn start_tracker(&mut self, i: usize) {
        let dir = self.root.path().join(format!("tracker{i}"));
        fs::create_dir_all(&dir).unwrap();
        let (me, twin) = (self.addr(i), self.addr(1 - i));
        let name = format!("tracker{i}-{}", self.trackers[i].is_some() as u8);
        let proc = Proc::spawn(
            BIN,
            &["tracker", &me, &twin, "state.txt", "log.txt"],
            &dir,
            self.root.path(),
            &name,
        );
        let port = self.ports[i];
        assert!(
            wait_until(LIMIT, || std::net::TcpStream::connect(("127.0.0.1", port))
                .is_ok()),
            "tracker {i} listens"
        );
        self.trackers[i] = Some(proc);
    }

    pub fn kill_tracker(&mut self, i: usize) {
        if let Some(p) = &mut self.trackers[i] {
            p.kill();
        }
    }

    /// SIGSTOP: tracker `i` keeps its sockets and answers nothing.
    pub fn freeze_tracker(&self, i: usize) {
        if let Some(p) = &self.trackers[i] {
            p.freeze();
        }
    }

    /// SIGCONT after [`Pair::freeze_tracker`].
    pub fn thaw_tracker(&self, i: usize) {
        if let Some(p) = &self.trackers[i] {
            p.thaw();
        }
    }

    pub fn tracker(&self, i: usize) -> &Proc {
        self.trackers[i].as_ref().expect("tracker started")
    }

    /// Tracker `i`'s state file.
    pub fn state_file(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("tracker{i}/state.txt"))
    }

    /// Waits until both trackers list the same records, line for line, and returns them.
    pub fn records_agree(&self, limit: Duration) -> Vec<String> {
        let (mut a, mut b) = (None, None);
        let same = wait_until(limit, || {
            a = records(&self.addr(0));
            b = records(&self.addr(1));
            a.is_some() && a == b
        });
        if !same {
            let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
            let only_a: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
            let only_b: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
            panic!(
                "the trackers' records differ after {limit:?}: {} vs {} records; only at A: \
                 {only_a:#?}; only at B: {only_b:#?}",
                a.len(),
                b.len()
            );
        }
        a.unwrap_or_default()
    }

    /// The addresses `SEEDERS` lists for a file at tracker `i` as holding some of it (or an
    /// empty file), sorted, or None when it does not answer.
    pub fn seeders(&self, i: usize, hash: &str, size: usize) -> Option<Vec<String>> {
        let mut link = PairLink::connect(&self.addr(i))?;
        let head = link.call(&format!("SEEDERS {hash} {size}"))?;
        let n: usize = head.strip_prefix("OK ")?.parse().ok()?;
        let lines: Vec<String> = (0..n).map(|_| link.line()).collect::<Option<_>>()?;
        let holds_some = |bits: &str| bits == "-" || bits.bytes().any(|c| c != b'0');
        let mut addrs: Vec<String> = lines
            .iter()
            .filter_map(|l| l.split_once(' '))
            .filter(|(_, bits)| holds_some(bits))
            .map(|(addr, _)| addr.to_string())
            .collect();
        addrs.sort();
        addrs.dedup();
        Some(addrs)
    }

    /// Waits until both trackers list exactly `want` (addresses) as seeders of a file.
    pub fn seeders_become(&self, hash: &str, size: usize, want: &[String], limit: Duration) {
        let mut want = want.to_vec();
        want.sort();
        let mut got = [None, None];
        let ok = wait_until(limit, || {
            got = [self.seeders(0, hash, size), self.seeders(1, hash, size)];
            got.iter().all(|g| g.as_ref() == Some(&want))
        });
        assert!(
            ok,
            "SEEDERS {hash} {size}: wanted {want:?} at both trackers, got {got:?}"
        );
    }

    /// A client in its own folder, knowing the trackers `knows` (indexes) in that order.
    pub fn client(&self, name: &str, knows: &[usize]) -> Client {
        let dir = self.root.path().join(name);
        fs::create_dir_all(&dir).unwrap();
        Client::start(
            &dir,
            self.root.path(),
            name,
            free_port(),
            knows.iter().map(|&i| self.addr(i)).collect(),
        )
    }
}

pub struct Client {
    pub proc: Proc,
    pub dir: PathBuf,
    pub port: u16,
    logs: PathBuf,
    name: String,
    trackers: Vec<String>,
    runs: u32,
}

impl Client {
    pub fn start(dir: &Path, logs: &Path, name: &str, port: u16, trackers: Vec<String>) -> Client {
        let me = format!("127.0.0.1:{port}");
        let mut args = vec!["client", me.as_str()];
        args.extend(trackers.iter().map(String::as_str));
        let proc = Proc::spawn_interactive(BIN, &args, dir, logs, name);
        Client {
            proc,
            dir: dir.to_path_buf(),
            port,
            logs: logs.to_path_buf(),
            name: name.to_string(),
            trackers,
            runs: 1,
        }
    }

    /// Where this client serves chunks: its address in `SEEDERS` replies.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the client again in its folder on its port (after [`Client::quit`] or a kill);
    /// its output goes to new files `<name>-<run>.out/.err`.
    pub fn restart(&mut self) {
        self.proc.kill();
        self.runs += 1;
        let name = format!("{}-{}", self.name, self.runs);
        let me = self.addr();
        let mut args = vec!["client", me.as_str()];
        args.extend(self.trackers.iter().map(String::as_str));
        self.proc = Proc::spawn_interactive(BIN, &args, &self.dir, &self.logs, &name);
    }

    /// Sends a command and waits until stdout grew by a line that contains `expect`.
    pub fn run(&mut self, command: &str, expect: &str) -> String {
        self.send_and_watch(command, expect, Proc::stdout)
    }

    /// Sends a command and waits for an error line that contains `expect` on stderr.
    pub fn fails(&mut self, command: &str, expect: &str) {
        let got = self.send_and_watch(command, expect, Proc::stderr);
        assert!(got.starts_with("error: "), "{got:?}");
    }

    /// Sends `command`, then waits until what `stream` shows after it contains `expect`.
    pub fn send_and_watch(
        &mut self,
        command: &str,
        expect: &str,
        stream: fn(&Proc) -> String,
    ) -> String {
        let before = stream(&self.proc).len();
        self.proc.send_line(command);
        let mut got = String::new();
        let seen = wait_until(LIMIT, || {
            got = stream(&self.proc)[before..].to_string();
            got.contains(expect)
        });
        assert!(
            seen,
            "{command:?}: wanted {expect:?}, got {got:?}; stderr: {}",
            self.proc.stderr()
        );
        got
    }

    /// Asks `show downloads` until its answer is exactly `want` (bounded).
    pub fn downloads_become(&mut self, want: &[String]) {
        let mut last = String::new();
        let ok = wait_until(LIMIT, || {
            let before = self.proc.stdout().len();
            self.proc.send_line("show downloads");
            let answered = wait_until(Duration::from_secs(10), || {
                self.proc.stdout()[before..].lines().count() >= want.len().max(1)
            });
            last = self.proc.stdout()[before..].to_string();
            answered
                && last.lines().collect::<Vec<_>>()
                    == want.iter().map(String::as_str).collect::<Vec<_>>()
        });
        assert!(ok, "show downloads: wanted {want:?}, last got {last:?}");
    }

    /// Asks `show downloads` until its lines satisfy `ok` (bounded).
    pub fn downloads_where(&mut self, what: &str, ok: impl Fn(&[&str]) -> bool) {
        let mut last = String::new();
        let seen = wait_until(LIMIT, || {
            let before = self.proc.stdout().len();
            self.proc.send_line("show downloads");
            let answered = wait_until(Duration::from_secs(10), || {
                self.proc.stdout().len() > before
            });
            thread::sleep(Duration::from_millis(50));
            last = self.proc.stdout()[before..].to_string();
            answered && ok(&last.lines().collect::<Vec<_>>())
        });
        assert!(seen, "show downloads never showed {what}; last: {last:?}");
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Quits: the exit status is 1 when a command of this run failed (stdin is a pipe, so
    /// the client tells a script so), else 0.
    pub fn quit(&mut self) {
        self.proc.send_line("quit");
        let status = self.proc.wait(LIMIT);
        let err = self.proc.stderr();
        let failed = err.lines().any(|l| l.starts_with("error: "));
        assert_eq!(status.code(), Some(i32::from(failed)), "{err}");
    }
}

/// The `.mtorrent` text of `data` as the format defines it, computed here independently.
pub fn expected_mtorrent(trackers: [&str; 2], name: &str, data: &[u8]) -> String {
    let hashes: String = data
        .chunks(PIECE)
        .map(|p| p2p::chunk::to_hex(&p2p::hashing::sha1(p)))
        .collect();
    format!(
        "{}\n{}\n{name}\n{}\n{hashes}\n",
        trackers[0],
        trackers[1],
        data.len()
    )
}

/// Copies `name` from one client's folder to another's (as users pass .mtorrent files).
pub fn hand_over(from: &Client, to: &Client, name: &str) {
    fs::copy(from.path(name), to.path(name)).unwrap();
}

/// The info hash of a `.mtorrent` text: the SHA-1 of its hash line, in hex.
pub fn info_hash(mtorrent: &str) -> String {
    let hashes = mtorrent.lines().nth(4).unwrap_or("");
    p2p::chunk::to_hex(&p2p::hashing::sha1(hashes.as_bytes()))
}

/// A session's token as `RECORDS` shows it: the first 32 hex digits of its SHA-1, so that
/// the records reveal no token.
pub fn shown_token(token: &str) -> String {
    p2p::chunk::to_hex(&p2p::hashing::sha1(token.as_bytes()))[..32].to_string()
}

/// The bitset word of a file of `pieces` pieces, all held (`-` for none).
pub fn full_bitset(pieces: usize) -> String {
    if pieces == 0 {
        return "-".to_string();
    }
    let mut bits = vec![0u8; pieces.div_ceil(8)];
    for p in 0..pieces {
        bits[p / 8] |= 1 << (p % 8);
    }
    p2p::chunk::to_hex(&bits)
}

/// Every record a tracker holds (`RECORDS`, paged), or None when it does not answer.
pub fn records(addr: &str) -> Option<Vec<String>> {
    const PAGE: usize = 1000;
    let mut link = PairLink::connect(addr)?;
    let mut all = Vec::new();
    // Bounded: 100,000 pages is far more than any test stores.
    for _ in 0..100_000 {
        // A page ends at 1,000 records or about 1 MiB, so only an empty one is the end.
        let page = link.list(&format!("RECORDS {} {PAGE}", all.len()))?;
        if page.is_empty() {
            return Some(all);
        }
        all.extend(page);
    }
    None
}

/// A connection to a tracker of the pair greeted as a client, that gives up (None) rather
/// than panic when the tracker is away, frozen or closes: for questions asked in a loop.
pub struct PairLink {
    stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl PairLink {
    pub fn connect(addr: &str) -> Option<PairLink> {
        let sock: std::net::SocketAddr = addr.parse().ok()?;
        let stream = std::net::TcpStream::connect_timeout(&sock, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let reader = std::io::BufReader::new(stream.try_clone().ok()?);
        let mut link = PairLink { stream, reader };
        (link.call("HELLO p2p/1 client")? == "OK p2p/1 tracker").then_some(link)
    }

    /// Sends one line and returns the reply line.
    pub fn call(&mut self, line: &str) -> Option<String> {
        use std::io::Write;
        self.stream.write_all(format!("{line}\n").as_bytes()).ok()?;
        self.line()
    }

    /// Sends a request answered `OK <n>` and n lines; returns the lines (None on `ERR`).
    pub fn list(&mut self, line: &str) -> Option<Vec<String>> {
        let head = self.call(line)?;
        let n: usize = head.strip_prefix("OK ")?.parse().ok()?;
        (0..n).map(|_| self.line()).collect()
    }

    /// `OPEN <addr>`: a session of one's own; returns its token.
    pub fn open(&mut self, addr: &str) -> String {
        let reply = self.call(&format!("OPEN {addr}"));
        match reply.as_deref().and_then(|r| r.strip_prefix("OK ")) {
            Some(token) if token.len() == 32 => token.to_string(),
            _ => panic!("OPEN {addr} answered {reply:?}, wanted OK and a 32-digit token"),
        }
    }

    /// Writes bytes as they are (for pipelined lines); a failure shows in the next reply.
    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let _ = self.stream.write_all(bytes);
    }

    /// The next line without its ending, or None at EOF, on an error or after 5 s.
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
}
