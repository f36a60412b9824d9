//! The set-up these tests drive: a pair of real trackers that sync with each other, and
//! real clients on stdin/stdout, each in its own folder, with bounded waits for their answers.

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
        }
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

    pub fn quit(&mut self) {
        self.proc.send_line("quit");
        assert!(self.proc.wait(LIMIT).success(), "{}", self.proc.stderr());
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
