//! The interactive client and the pair of trackers, end to end: real trackers and clients on
//! 127.0.0.1 driven through stdin, every byte compared, trackers killed and restarted.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const KIB: usize = 1024;
const PIECE: usize = 512 * KIB;

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Pair {
    root: TempDir,
    ports: [u16; 2],
    trackers: [Option<Proc>; 2],
}

impl Pair {
    fn start(tag: &str) -> Pair {
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

    fn addr(&self, i: usize) -> String {
        format!("127.0.0.1:{}", self.ports[i])
    }

    fn start_tracker(&mut self, i: usize) {
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

    fn kill_tracker(&mut self, i: usize) {
        if let Some(p) = &mut self.trackers[i] {
            p.kill();
        }
    }

    /// A client in its own folder, knowing the trackers `knows` (indexes) in that order.
    fn client(&self, name: &str, knows: &[usize]) -> Client {
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

struct Client {
    proc: Proc,
    dir: PathBuf,
}

impl Client {
    fn start(dir: &Path, logs: &Path, name: &str, port: u16, trackers: Vec<String>) -> Client {
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
    fn run(&mut self, command: &str, expect: &str) -> String {
        self.send_and_watch(command, expect, Proc::stdout)
    }

    /// Sends a command and waits for an error line that contains `expect` on stderr.
    fn fails(&mut self, command: &str, expect: &str) {
        let got = self.send_and_watch(command, expect, Proc::stderr);
        assert!(got.starts_with("error: "), "{got:?}");
    }

    /// Sends `command`, then waits until what `stream` shows after it contains `expect`.
    fn send_and_watch(
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
    fn downloads_become(&mut self, want: &[String]) {
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
    fn downloads_where(&mut self, what: &str, ok: impl Fn(&[&str]) -> bool) {
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

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn quit(&mut self) {
        self.proc.send_line("quit");
        assert!(self.proc.wait(LIMIT).success(), "{}", self.proc.stderr());
    }
}

/// The `.mtorrent` text of `data` as the format defines it, computed here independently.
fn expected_mtorrent(trackers: [&str; 2], name: &str, data: &[u8]) -> String {
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
fn hand_over(from: &Client, to: &Client, name: &str) {
    fs::copy(from.path(name), to.path(name)).unwrap();
}

#[test]
fn share_get_show_and_remove_across_two_trackers_and_three_clients() {
    let pair = Pair::start("client-flow");
    let files: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "big file",
            "big.mtorrent",
            content(3, 3 * 1024 * KIB + 12345),
        ),
        ("exact", "exact.mtorrent", content(2, PIECE)),
        ("zero", "zero.mtorrent", vec![]),
        ("one", "one.mtorrent", content(1, 1)),
    ];
    // Step 1: the seeder shares four files; each .mtorrent is checked field by field against
    // an independent SHA-1 of each 512 KiB piece.
    let mut seeder = pair.client("seeder", &[0, 1]);
    for (name, mt, data) in &files {
        fs::write(seeder.path(name), data).unwrap();
        let pieces = data.len().div_ceil(PIECE);
        seeder.run(
            &format!("share \"{name}\" {mt}"),
            &format!(
                "shared {name} ({} bytes, {pieces} pieces) as {mt}",
                data.len()
            ),
        );
        let text = fs::read_to_string(seeder.path(mt)).unwrap();
        assert_eq!(
            text,
            expected_mtorrent([&pair.addr(0), &pair.addr(1)], name, data),
            "{mt}"
        );
    }
    // Step 2: a second client gets all four at once, knowing the trackers the other way round.
    let mut second = pair.client("second", &[1, 0]);
    for (name, mt, _) in &files {
        hand_over(&seeder, &second, mt);
        second.run(
            &format!("get {mt} \"{name}.out\""),
            &format!("downloading {name} to {name}.out"),
        );
    }
    let all_seeding: Vec<String> = files.iter().map(|(n, _, _)| format!("[S] {n}")).collect();
    second.downloads_become(&all_seeding);
    for (name, _, data) in &files {
        assert_eq!(
            &fs::read(second.path(&format!("{name}.out"))).unwrap(),
            data,
            "{name}"
        );
    }
    // Step 3: a third client gets the big file from both; the seeder removes it meanwhile,
    // so the third carries on from the second client.
    let mut third = pair.client("third", &[0]);
    hand_over(&seeder, &third, "big.mtorrent");
    third.run("get big.mtorrent big.out", "downloading big file");
    seeder.run(
        "remove big.mtorrent",
        "removed big file (the file stays at big file)",
    );
    assert!(
        !seeder.path("big.mtorrent").exists(),
        "the .mtorrent is deleted"
    );
    assert!(seeder.path("big file").exists(), "the file is kept");
    third.downloads_become(&["[S] big file".to_string()]);
    assert_eq!(fs::read(third.path("big.out")).unwrap(), files[0].2);
    // Step 4: a file nobody seeds any more stays at 0%, and cannot be removed.
    fs::write(seeder.path("lonely"), content(4, 1000)).unwrap();
    seeder.run("share lonely lonely.mtorrent", "shared lonely");
    hand_over(&seeder, &third, "lonely.mtorrent");
    seeder.run("remove lonely.mtorrent", "removed lonely");
    third.run("get lonely.mtorrent lonely.out", "downloading lonely");
    third.downloads_become(&[
        "[S] big file".to_string(),
        "[D] lonely 0% (0/1 pieces, 0.0 KB/s)".to_string(),
    ]);
    third.fails(
        "remove lonely.mtorrent",
        "cannot remove lonely: still downloading (0%)",
    );
    // Step 5: wrong commands and bad .mtorrent files get one clear line each.
    third.fails("frobnicate now", "unknown command \"frobnicate\"");
    third.fails("share onlyone", "wrong arguments for share");
    third.fails("login me secret", "accounts and groups are not available");
    third.fails("share \"unclosed", "a double quote is not closed");
    third.fails("get missing.mtorrent x", "cannot read missing.mtorrent");
    let good = fs::read_to_string(seeder.path("one.mtorrent")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // The good file with line `i` (0-based) replaced.
    let with_line = |i: usize, text: &str| {
        let mut l = lines.clone();
        l[i] = text;
        l.join("\n")
    };
    let short_hash = &lines[4][..39];
    let not_hex = "z".repeat(40);
    let bad = [
        (
            "short.mtorrent",
            lines[..3].join("\n"),
            "line 4 (size) is missing",
        ),
        (
            "hashlen.mtorrent",
            with_line(4, short_hash),
            "39 hex digits of piece hashes, expected 40",
        ),
        (
            "nothex.mtorrent",
            with_line(4, &not_hex),
            "piece hashes must be hex digits",
        ),
        (
            "slash.mtorrent",
            with_line(2, "a/b"),
            "line 3: file name contains '/'",
        ),
    ];
    for (file, text, why) in bad {
        fs::write(third.path(file), text).unwrap();
        third.fails(&format!("get {file} out"), why);
    }
    for c in [&mut seeder, &mut second, &mut third] {
        c.quit();
    }
}

#[test]
fn downloads_fail_over_to_the_second_tracker_and_a_restarted_tracker_catches_up() {
    let mut pair = Pair::start("failover");
    let one = content(21, 2 * 1024 * KIB + 7);
    let two = content(22, 1024 * KIB);
    let mut seeder = pair.client("seeder", &[0, 1]);
    fs::write(seeder.path("one"), &one).unwrap();
    fs::write(seeder.path("two"), &two).unwrap();
    seeder.run("share one one.mtorrent", "shared one");
    seeder.run("share two two.mtorrent", "shared two");
    let mut taker = pair.client("taker", &[0, 1]);
    hand_over(&seeder, &taker, "one.mtorrent");
    hand_over(&seeder, &taker, "two.mtorrent");
    // Step 1: tracker A dies mid-download; the download completes, and a new one is found
    // through tracker B, which learned of the seeder from A.
    taker.run("get one.mtorrent one.out", "downloading one");
    pair.kill_tracker(0);
    taker.run("get two.mtorrent two.out", "downloading two");
    taker.downloads_become(&["[S] one".to_string(), "[S] two".to_string()]);
    assert_eq!(fs::read(taker.path("one.out")).unwrap(), one);
    assert_eq!(fs::read(taker.path("two.out")).unwrap(), two);
    assert!(
        taker.proc.stderr().contains("switching"),
        "{}",
        taker.proc.stderr()
    );
    // Step 2: A comes back, catches up from B, and a client that knows only A can fetch.
    pair.start_tracker(0);
    let mut late = pair.client("late", &[0]);
    hand_over(&seeder, &late, "two.mtorrent");
    late.run("get two.mtorrent two.out", "downloading two");
    late.downloads_become(&["[S] two".to_string()]);
    assert_eq!(fs::read(late.path("two.out")).unwrap(), two);
    let log = fs::read_to_string(pair.root.path().join("tracker0/log.txt")).unwrap();
    assert!(log.contains("caught up from"), "{log}");
    for c in [&mut seeder, &mut taker, &mut late] {
        c.quit();
    }
}

/// A fake seeder: registers itself for `data` at a tracker and serves only the pieces
/// `allowed` says, remembering every piece asked for.
struct FakeSeeder {
    allowed: Arc<Mutex<BTreeSet<u64>>>,
    asked: Arc<Mutex<BTreeSet<u64>>>,
}

impl FakeSeeder {
    fn start(tracker: &str, key: &str, name: &str, data: Vec<u8>) -> FakeSeeder {
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
                    let mut out = stream.try_clone().unwrap();
                    let mut reader = std::io::BufReader::new(stream);
                    let mut line = String::new();
                    while std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) > 0 {
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
                        if out.write_all(&reply).is_err() {
                            return;
                        }
                        line.clear();
                    }
                });
            }
        });
        let mut raw = Raw::connect(tracker);
        assert_eq!(raw.call("HELLO p2p/1 client"), "OK p2p/1 tracker");
        let mut bits = vec![0u8; pieces.div_ceil(8)];
        for p in 0..pieces {
            bits[p / 8] |= 1 << (p % 8);
        }
        let seed = format!(
            "SEED {addr} {key} {name} {size} {}",
            p2p::chunk::to_hex(&bits)
        );
        assert_eq!(raw.call(&seed), "OK");
        FakeSeeder { allowed, asked }
    }
}

#[test]
fn a_killed_client_resumes_its_download_without_fetching_verified_pieces_again() {
    let pair = Pair::start("resume");
    let data = content(31, 4 * 1024 * KIB);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "f", &data);
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    let fake = FakeSeeder::start(&pair.addr(0), &key, "f", data.clone());
    fake.allowed.lock().unwrap().extend([0, 1, 2]);
    // Step 1: the taker gets the three pieces the fake seeder gives, then is SIGKILLed.
    let port = free_port();
    let dir = pair.root.path().join("taker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f.mtorrent"), &text).unwrap();
    let trackers = vec![pair.addr(0), pair.addr(1)];
    let mut taker = Client::start(&dir, pair.root.path(), "taker-1", port, trackers.clone());
    taker.run("get f.mtorrent f.out", "downloading f");
    taker.downloads_where("three pieces verified", |l| {
        l.len() == 1 && l[0].starts_with("[D] f 37% (3/8 pieces, ")
    });
    taker.proc.kill();
    assert!(
        dir.join(".f.out.p2p-partial").exists(),
        "the partial file stays for the next run"
    );
    assert!(!dir.join("f.out").exists());
    // Step 2: every piece is on offer now; the taker comes back on the same address and
    // folder, re-verifies what it has, and fetches only the rest.
    fake.asked.lock().unwrap().clear();
    fake.allowed.lock().unwrap().extend(0..8);
    let mut again = Client::start(&dir, pair.root.path(), "taker-2", port, trackers);
    again.downloads_become(&["[S] f".to_string()]);
    assert_eq!(fs::read(dir.join("f.out")).unwrap(), data);
    let asked = fake.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        (3..8).collect::<BTreeSet<u64>>(),
        "only the missing pieces were fetched"
    );
    again.quit();
}

/// How many clients the tracker at `addr` lists as holding some piece of `key`.
fn seeders(addr: &str, key: &str) -> usize {
    let mut raw = Raw::connect(addr);
    raw.call("HELLO p2p/1 client");
    let head = raw.call(&format!("SEEDERS {key}"));
    let n: usize = head
        .strip_prefix("OK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let lines: Vec<String> = (0..n).map(|_| raw.line().expect("seeder line")).collect();
    let holds_some = |l: &String| {
        l.rsplit(' ')
            .next()
            .is_some_and(|b| b.bytes().any(|c| c != b'0'))
    };
    lines.iter().filter(|l| holds_some(l)).count()
}

#[test]
fn a_shared_file_rewritten_in_place_is_no_longer_served_and_nothing_bad_is_stored() {
    let pair = Pair::start("rewritten");
    let data = content(50, 4 * PIECE);
    let mut seeder = pair.client("seeder", &[0, 1]);
    fs::write(seeder.path("doc.bin"), &data).unwrap();
    seeder.run("share doc.bin doc.mtorrent", "shared doc.bin");
    let text = fs::read_to_string(seeder.path("doc.mtorrent")).unwrap();
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    assert!(wait_until(LIMIT, || seeders(&pair.addr(0), &key) == 1));
    // 512 KiB in the middle change, the size stays.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(seeder.path("doc.bin"))
        .unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(PIECE as u64 + 1000)).unwrap();
    f.write_all(&content(51, PIECE)).unwrap();
    drop(f);
    let mut taker = pair.client("taker", &[0, 1]);
    hand_over(&seeder, &taker, "doc.mtorrent");
    taker.run("get doc.mtorrent doc.out", "downloading doc.bin");
    // The seeder notices at its first read, says so by name, and leaves the seeder list.
    assert!(
        wait_until(LIMIT, || seeder
            .proc
            .stderr()
            .contains("no longer sharing \"doc.bin\"")),
        "{}",
        seeder.proc.stderr()
    );
    assert!(wait_until(LIMIT, || seeders(&pair.addr(0), &key) == 0));
    assert!(
        !seeder.proc.stderr().contains(&key),
        "messages name the file"
    );
    taker.downloads_where("no piece of it", |l| {
        l.len() == 1 && l[0].starts_with("[D] doc.bin 0% ")
    });
    assert!(
        !taker.path("doc.out").exists(),
        "nothing reached its destination"
    );
    taker.quit();
    seeder.quit();
}

#[test]
fn a_download_whose_every_seeder_sends_bad_data_is_given_up_by_name() {
    let pair = Pair::start("all-liars");
    let data = content(52, 3 * PIECE);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "doc.bin", &data);
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    // The only seeder serves other bytes for every piece.
    let liar = FakeSeeder::start(&pair.addr(0), &key, "doc.bin", content(53, data.len()));
    liar.allowed.lock().unwrap().extend(0..3);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(taker.path("doc.mtorrent"), &text).unwrap();
    taker.run("get doc.mtorrent doc.out", "downloading doc.bin");
    taker.downloads_where("the download failed", |l| {
        l.len() == 1 && l[0].starts_with("[F] doc.bin")
    });
    let said = taker.proc.stderr();
    assert!(
        said.contains("giving up \"doc.bin\": every peer holding the rest of it sent bad data"),
        "{said}"
    );
    assert!(!said.contains(&key), "messages name the file: {said}");
    assert!(!taker.path("doc.out").exists());
    assert!(
        !taker.path(".doc.out.p2p-partial").exists(),
        "partial data deleted"
    );
    assert!(liar.asked.lock().unwrap().len() <= 3);
    taker.quit();
}
