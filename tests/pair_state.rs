//! Issue 12, case 6, against real trackers: the state log in the pair protocol's format
//! (docs/PROTOCOL.md, "State file"): a damaged line is reported on stderr with its line number
//! and the rest loads; two trackers' state files in one folder stay apart; an unwritable
//! state file is one line on stderr and exit 1; and a tracker says on stdout when it serves.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const START: Duration = Duration::from_secs(20);

/// Starts a pair tracker in `dir` at `me` with twin `twin` (which may be away).
fn tracker(dir: &Path, logs: &Path, me: &str, twin: &str, state: &str, name: &str) -> Proc {
    let log = format!("{state}.log");
    Proc::spawn(BIN, &["tracker", me, twin, state, &log], dir, logs, name)
}

/// Waits for the tracker's one line saying it serves, and returns it.
fn serving_line(t: &Proc) -> String {
    let mut line = String::new();
    let said = wait_until(START, || {
        line = t.stdout().lines().next().unwrap_or("").to_string();
        line.contains(" serving, ")
    });
    assert!(
        said,
        "no serving line on stdout: {:?}; stderr: {}",
        t.stdout(),
        t.stderr()
    );
    line
}

#[test]
fn a_tracker_says_once_where_it_serves_its_twin_and_its_state_file() {
    let root = TempDir::new("serving");
    let (me, twin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let t = tracker(root.path(), root.path(), &me, &twin, "state.txt", "t");
    let line = serving_line(&t);
    assert_eq!(
        line,
        format!("tracker {me} serving, twin {twin}, state state.txt (0 records)")
    );
    assert!(
        PairLink::connect(&me).is_some(),
        "it answers once it said so"
    );
    assert_eq!(t.stdout().lines().count(), 1, "{:?}", t.stdout());
}

#[test]
fn damaged_state_lines_are_reported_by_number_and_the_rest_loads() {
    let root = TempDir::new("damaged");
    let port = free_port();
    let (me, twin) = (
        format!("127.0.0.1:{port}"),
        format!("127.0.0.1:{}", free_port()),
    );
    let token = "5f".repeat(16);
    let hash = |k: u8| format!("{k:02x}").repeat(20);
    let good = [
        format!("1@{me} session {token} live 127.0.0.1:5001"),
        format!("2@{me} seed {token} {} 1000 live f1 01", hash(1)),
        format!("3@{me} seed {token} {} 3000 live f3 01", hash(3)),
    ];
    let mut text = b"p2p-pair-state 1 00000000000000aa\n".to_vec();
    text.extend(format!("1 {}\n2 {}\n", good[0], good[1]).bytes());
    text.extend(b"this is garbage\n"); // line 4
    text.extend(format!("4 4@{me} seed {token} {} 20\n", hash(2)).bytes()); // line 5: cut
    text.extend(b"5 5@x seed \xff\xfe broken\n"); // line 6: not UTF-8
    text.extend(format!("6 {}\n", good[2]).bytes());
    fs::write(root.path().join("state.txt"), &text).unwrap();
    // Step 1: the tracker starts although its twin is away, and says which lines it skipped.
    let mut t = tracker(root.path(), root.path(), &me, &twin, "state.txt", "t1");
    let line = serving_line(&t);
    assert!(line.ends_with("(3 records)"), "{line}");
    let err = t.stderr();
    for bad in [4, 5, 6] {
        assert!(
            err.lines().any(|l| l.contains(&format!("line {bad}"))),
            "line {bad} not reported: {err:?}"
        );
    }
    for fine in [1, 2, 3, 7] {
        assert!(
            !err.lines().any(|l| l.contains(&format!("line {fine}"))),
            "good line {fine} reported: {err:?}"
        );
    }
    let mut want: Vec<String> = good
        .iter()
        .map(|r| r.replace(&token, &shown_token(&token)))
        .collect();
    want.sort();
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    assert_eq!(records(&me).map(sorted), Some(want.clone()));
    // Step 2: a change is saved and the good records survive it, across a restart.
    let extra = PairLink::connect(&me).unwrap().open("127.0.0.1:5002");
    assert!(
        wait_until(START, || fs::read_to_string(root.path().join("state.txt"))
            .is_ok_and(|s| s.contains(&extra))),
        "the new session was never written"
    );
    t.kill();
    let t = tracker(root.path(), root.path(), &me, &twin, "state.txt", "t2");
    serving_line(&t);
    let now = records(&me).map(sorted).unwrap_or_default();
    assert_eq!(now.len(), 4, "{now:#?}");
    assert!(want.iter().all(|r| now.contains(r)), "{now:#?}");
    assert!(
        now.iter().any(|r| r.contains(&shown_token(&extra))),
        "{now:#?}"
    );
}

#[test]
fn two_trackers_keep_their_state_files_apart_in_one_folder() {
    let root = TempDir::new("one-folder");
    let addrs = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let start = |i: usize, run: u8| {
        let state = ["pair.a", "pair.b"][i];
        let t = tracker(
            root.path(),
            root.path(),
            &addrs[i],
            &addrs[1 - i],
            state,
            &format!("{state}-{run}"),
        );
        serving_line(&t);
        t
    };
    let (mut a, mut b) = (start(0, 1), start(1, 1));
    // Many changes at both at once, so that both write their files side by side.
    let writers: Vec<_> = (0..2)
        .map(|i| {
            let addr = addrs[i].clone();
            std::thread::spawn(move || {
                let mut link = PairLink::connect(&addr).expect("tracker answers");
                let token = link.open(&format!("127.0.0.1:{}", 6000 + i));
                for k in 0..300u32 {
                    let hash = format!("{i:02x}{k:038x}");
                    let seed = format!("SEED {token} {hash} n{k} 100 01");
                    assert_eq!(link.call(&seed).as_deref(), Some("OK"), "{seed}");
                    if k % 3 == 0 {
                        let unseed = format!("UNSEED {token} {hash} 100");
                        assert_eq!(link.call(&unseed).as_deref(), Some("OK"));
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    let both = records_of_both(&addrs);
    assert!(both.len() >= 2 * 300, "{} records", both.len());
    // Each file alone brings back the whole state: start each with its twin away, once
    // both files hold every file's record (they are appended in batches).
    let hashes: Vec<String> = (0..2)
        .flat_map(|i| (0..300u32).map(move |k| format!("{i:02x}{k:038x}")))
        .collect();
    for state in ["pair.a", "pair.b"] {
        assert!(
            wait_until(START, || {
                let text = fs::read_to_string(root.path().join(state)).unwrap_or_default();
                hashes.iter().all(|h| text.contains(h.as_str()))
            }),
            "{state} never held every record"
        );
    }
    a.kill();
    b.kill();
    for (i, state) in ["pair.a", "pair.b"].iter().enumerate() {
        let head = fs::read_to_string(root.path().join(state)).unwrap_or_default();
        assert!(
            head.starts_with("p2p-pair-state 1 "),
            "{state}: {:?}",
            head.lines().next()
        );
        let mut t = start(i, 2);
        let mut got = records(&addrs[i]).unwrap_or_default();
        got.sort();
        assert!(
            got == both,
            "{state} alone holds {} of {} records",
            got.len(),
            both.len()
        );
        t.kill();
    }
}

/// The records both trackers agree on (bounded wait), sorted.
fn records_of_both(addrs: &[String; 2]) -> Vec<String> {
    let mut both = (None, None);
    let agree = wait_until(START, || {
        both = (records(&addrs[0]), records(&addrs[1]));
        both.0.is_some() && both.0 == both.1
    });
    assert!(agree, "the two never agreed");
    let mut v = both.0.unwrap_or_default();
    v.sort();
    v
}

/// Makes a file unwritable even for root (`chattr +i`), and writable again on drop.
struct Immutable(PathBuf);

impl Immutable {
    fn new(path: &Path) -> Immutable {
        let made = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        if !made {
            // Without the capability, a read-only mode is enough for a user who is not root.
            let mut perms = fs::metadata(path).unwrap().permissions();
            perms.set_readonly(true);
            fs::set_permissions(path, perms).unwrap();
        }
        assert!(
            fs::OpenOptions::new().append(true).open(path).is_err(),
            "cannot make {} unwritable here",
            path.display()
        );
        Immutable(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_unwritable_state_file_is_one_line_on_stderr_and_exit_1() {
    let root = TempDir::new("unwritable");
    let path = root.path().join("state.txt");
    fs::write(&path, "p2p-pair-state 1 00000000000000bb\n").unwrap();
    let _lock = Immutable::new(&path);
    let (me, twin) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut t = tracker(root.path(), root.path(), &me, &twin, "state.txt", "t");
    let status = t.wait(START);
    assert_eq!(status.code(), Some(1), "stderr: {}", t.stderr());
    let err = t.stderr();
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(
        err.contains("state.txt"),
        "the line names the file: {err:?}"
    );
    assert_eq!(t.stdout(), "", "it never said it serves");
}

#[test]
fn a_tracker_that_cannot_listen_says_where_and_creates_no_files() {
    let root = TempDir::new("taken");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let me = taken.local_addr().unwrap().to_string();
    let twin = format!("127.0.0.1:{}", free_port());
    let mut t = tracker(root.path(), root.path(), &me, &twin, "state.txt", "t");
    let status = t.wait(START);
    assert_eq!(status.code(), Some(1), "stderr: {}", t.stderr());
    let err = t.stderr();
    assert!(err.contains(&format!("cannot listen on {me}: ")), "{err:?}");
    assert!(!root.path().join("state.txt").exists());
    assert!(!root.path().join("state.txt.log").exists());
}

/// A change a tracker answered `OK` to is in its state log already: killed at once (its twin
/// away, so nothing comes back from there), it still knows the change when it restarts.
#[test]
fn a_change_answered_ok_survives_a_kill_right_after() {
    let mut pair = Pair::start("kill-after-ok");
    pair.kill_tracker(1);
    for round in 0..5 {
        let mut link = PairLink::connect(&pair.addr(0)).expect("tracker A answers");
        let token = link.open("127.0.0.1:9");
        let hash = format!("{round:040x}");
        let seed = format!("SEED {token} {hash} f{round} 1 01");
        assert_eq!(link.call(&seed).as_deref(), Some("OK"));
        pair.kill_tracker(0);
        pair.start_tracker(0);
        let records = records(&pair.addr(0)).expect("tracker A answers again");
        let kept = records
            .iter()
            .any(|r| r.contains(&format!(" {hash} 1 live f{round} 01")));
        assert!(
            kept,
            "round {round}: the registration was lost: {records:#?}"
        );
    }
}

/// A damaged line loses a record at one tracker only: its twin sends everything again, so the
/// two agree once more.
#[test]
fn a_record_lost_to_a_damaged_line_comes_back_from_the_twin() {
    let mut pair = Pair::start("damaged-twin");
    let mut link = PairLink::connect(&pair.addr(0)).expect("tracker A answers");
    let token = link.open("127.0.0.1:9");
    for i in 0..3 {
        let seed = format!("SEED {token} {:040x} f{i} 1 01", i + 1);
        assert_eq!(link.call(&seed).as_deref(), Some("OK"));
    }
    let before = pair.records_agree(START);
    // A has written that it holds B's stream (B's copies of A's four records) up to the end:
    // B will not send those again unless A asks for everything.
    let path = pair.state_file(0);
    let marked = wait_until(START, || {
        fs::read_to_string(&path).is_ok_and(|t| {
            t.lines()
                .filter_map(|l| l.strip_prefix("mark "))
                .filter_map(|m| m.rsplit(' ').next()?.parse::<u64>().ok())
                .any(|seq| seq >= 4)
        })
    });
    assert!(marked, "{}", fs::read_to_string(&path).unwrap_or_default());
    pair.kill_tracker(0);
    pair.kill_tracker(1);
    // The line of the second registration at A is garbled.
    let text = fs::read_to_string(&path).unwrap();
    let target = format!(" {:040x} 1 live", 2);
    assert!(text.contains(&target), "{text}");
    let damaged: String = text
        .lines()
        .map(|l| {
            if l.contains(&target) {
                "12 garbage".to_string()
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    fs::write(&path, damaged).unwrap();
    pair.start_tracker(0);
    pair.start_tracker(1);
    assert_eq!(pair.records_agree(START), before);
    assert!(pair.tracker(0).stderr().contains("skipped"));
}
