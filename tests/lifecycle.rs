//! Peers that come late, peers that find nobody, and peers run the way graders run them:
//! through `sh peer.sh` in separate copies of the project folder.

mod common;

use common::*;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::path::Path;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn a_peer_joining_a_living_swarm_gets_every_file_and_gives_its_own() {
    let root = TempDir::new("late");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    // The early peers stay at least 6 s, long enough for the late one to arrive.
    let early_files = [("a.bin", 300_000), ("b.bin", 1025)];
    let (early, mut procs) = start_peers(root.path(), "early", &early_files, 1, port, "6");
    // Step 1: the early peers have traded their files (every chunk of both is ACQUIRED).
    let traded = wait_until(LIMIT, || {
        let log = parse_tracker_prefix(&tracker.stdout());
        let got = |name: &str, total: u64| {
            log.acquired
                .iter()
                .any(|((_, n), xs)| n == name && xs.len() as u64 == total)
        };
        got("a.bin", chunks_of(300_000)) && got("b.bin", chunks_of(1025))
    });
    assert!(traded, "early peers did not trade: {}", tracker.stdout());
    assert!(
        procs.iter_mut().all(|p| p.try_status().is_none()),
        "an early peer left too soon"
    );
    // Step 2: the late peer joins while they are alive.
    let late = peer_folder(root.path(), "c", Some(("c.bin", content(3, 70_000))));
    procs.push(start_peer(&late, port, "1", logs, "late"));
    let specs: Vec<PeerSpec> = early.into_iter().chain([late]).collect();
    for p in &mut procs {
        p.wait(LIMIT);
    }
    // Step 3: everybody has everything, and the output says so exactly.
    check_complete_swarm(
        &specs,
        &mut procs,
        &tracker.stdout(),
        Duration::from_secs(1),
    );
    tracker.kill();
}

/// Parses only the complete lines written so far (the tracker may be mid-block).
fn parse_tracker_prefix(text: &str) -> TrackerLog {
    let acquired: String = text
        .lines()
        .filter(|l| l.contains(" ACQUIRED: "))
        .map(|l| format!("{l}\n"))
        .collect();
    parse_tracker(&acquired)
}

#[test]
fn a_peer_joining_after_everyone_left_leaves_alone_with_its_own_file() {
    let root = TempDir::new("alone");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let (_, mut procs) = start_peers(
        root.path(),
        "first",
        &[("a.txt", 600), ("b.txt", 10)],
        1,
        port,
        "1",
    );
    for p in &mut procs {
        assert!(p.wait(LIMIT).success(), "{}", p.stderr());
    }
    let before = tracker.stdout();
    let last = peer_folder(root.path(), "c", Some(("c.txt", content(3, 1000))));
    let mut alone = start_peer(&last, port, "0", logs, "alone");
    assert!(alone.wait(LIMIT).success(), "{}", alone.stderr());
    assert_eq!(alone.stdout(), "PEER 2 SHUTDOWN: HAS 1\n2    c.txt\n");
    assert!(wait_until(LIMIT, || tracker.stdout().len() > before.len() + 60));
    let after = tracker.stdout();
    assert_eq!(
        &after[before.len()..],
        "PEER 2 CONNECT: OFFERS 1\n2    c.txt 2\nPEER 2 DISCONNECT: RECEIVED 0\n"
    );
    assert_eq!(entries(&last.dir.join("Shared")), ["c.txt"]);
    assert_eq!(
        fs::read(last.dir.join("Shared/c.txt")).unwrap(),
        content(3, 1000)
    );
    tracker.kill();
}

/// A copy of the project folder as a grader makes one: the scripts, an empty Shared/, and
/// the built binary at target/release/p2p (here a link to the binary under test).
fn project_copy(root: &Path, tag: &str) -> PeerSpec {
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join(tag);
    fs::create_dir_all(dir.join("Shared")).unwrap();
    fs::create_dir_all(dir.join("target/release")).unwrap();
    for script in ["peer.sh", "tracker.sh"] {
        fs::copy(project.join(script), dir.join(script)).unwrap();
    }
    std::os::unix::fs::symlink(BIN, dir.join("target/release/p2p")).unwrap();
    PeerSpec { dir, file: None }
}

#[test]
fn peers_run_through_sh_scripts_in_separate_copies_of_the_project() {
    let root = TempDir::new("scripts");
    let logs = root.path();
    let tracker_copy = project_copy(root.path(), "tracker");
    let mut tracker = Proc::spawn("sh", &["tracker.sh"], &tracker_copy.dir, logs, "tracker");
    let port_file = tracker_copy.dir.join("port.txt");
    assert!(wait_until(LIMIT, || fs::read_to_string(&port_file)
        .is_ok_and(|s| s.ends_with('\n'))));
    let port = fs::read_to_string(&port_file).unwrap().trim().to_string();
    let mut specs = Vec::new();
    let mut procs = Vec::new();
    for (i, size) in [(0, 5000), (1, 0), (2, 200_000)] {
        let mut spec = project_copy(root.path(), &format!("copy{i}"));
        let name = format!("file {i}.dat");
        let data = content(10 + i as u64, size);
        fs::write(spec.dir.join("Shared").join(&name), &data).unwrap();
        spec.file = Some((name, data));
        // Graders start the script from inside the copy, by relative or absolute path.
        let script = match i {
            0 => "peer.sh".to_string(),
            1 => "./peer.sh".to_string(),
            _ => spec.dir.join("peer.sh").to_string_lossy().into_owned(),
        };
        procs.push(Proc::spawn(
            "sh",
            &[&script, "127.0.0.1", &port, "1"],
            &spec.dir,
            logs,
            &format!("copy{i}"),
        ));
        specs.push(spec);
    }
    for p in &mut procs {
        p.wait(LIMIT);
    }
    // The copies hold their scripts and binary too; check_complete_swarm wants Shared/ alone.
    for spec in &specs {
        for extra in ["peer.sh", "tracker.sh"] {
            fs::remove_file(spec.dir.join(extra)).unwrap();
        }
        fs::remove_dir_all(spec.dir.join("target")).unwrap();
    }
    check_complete_swarm(
        &specs,
        &mut procs,
        &tracker.stdout(),
        Duration::from_secs(1),
    );
    tracker.kill();
}

/// A fake peer on the raw protocol: joins offering nothing, and never fetches anything, so
/// no real peer can leave while it counts as alive.
fn fake_peer(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream.try_clone().unwrap();
    let mut line = String::new();
    for (req, want) in [
        ("HELLO p2p/1 peer\n", "OK p2p/1 tracker"),
        ("JOIN 9\n", "OK 0 "),
    ] {
        w.write_all(req.as_bytes()).unwrap();
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(line.starts_with(want), "{req:?} got {line:?}");
    }
    (stream, reader)
}

/// Runs a real peer beside a fake one that `vanish` makes disappear; the real peer must
/// then leave, and only it gets a DISCONNECT block.
fn survivor_leaves_once_the_fake_vanishes(tag: &str, vanish: impl FnOnce(&TcpStream)) {
    let root = TempDir::new(tag);
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let (fake, _reader) = fake_peer(port);
    let survivor = peer_folder(root.path(), "survivor", Some(("s.bin", content(2, 700))));
    let mut proc = start_peer(&survivor, port, "0", logs, "survivor");
    assert!(wait_until(LIMIT, || tracker
        .stdout()
        .contains("PEER 1 CONNECT")));
    // The survivor's file is not on the fake: the survivor may not leave yet.
    assert!(
        proc.try_status().is_none(),
        "left while a living peer lacked its file"
    );
    vanish(&fake);
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(
        tracker.stdout(),
        "PEER 0 CONNECT: OFFERS 0\nPEER 1 CONNECT: OFFERS 1\n1    s.bin 2\nPEER 1 DISCONNECT: RECEIVED 0\n"
    );
    assert_eq!(proc.stdout(), "PEER 1 SHUTDOWN: HAS 1\n1    s.bin\n");
    tracker.kill();
}

#[test]
fn a_peer_whose_connection_closes_is_dropped_without_a_disconnect_block() {
    survivor_leaves_once_the_fake_vanishes("closed", |s| {
        let _ = s.shutdown(Shutdown::Both);
    });
}

#[test]
fn a_silent_peer_is_dropped_when_its_heartbeats_stop() {
    // The connection stays open but says nothing: the heartbeat deadline drops it.
    survivor_leaves_once_the_fake_vanishes("silent", |_| {});
}

/// Sends `signal` (`STOP`, `CONT`) to process `pid`.
fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid}");
}

#[test]
fn a_frozen_peer_is_dropped_and_once_thawed_is_told_and_still_ends_cleanly() {
    let root = TempDir::new("frozen");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let data = content(8, 300_000);
    let seeder = peer_folder(root.path(), "seeder", Some(("s.bin", data.clone())));
    let sleeper = peer_folder(root.path(), "sleeper", None);
    let mut seeder_proc = start_peer(&seeder, port, "1", logs, "seeder");
    let mut sleeper_proc = start_peer(&sleeper, port, "1", logs, "sleeper");
    assert!(wait_until(LIMIT, || tracker
        .stdout()
        .contains("PEER 1 CONNECT")));
    // Frozen, it stops beating: the tracker drops it after 5 s, and the seeder leaves.
    signal(sleeper_proc.pid(), "STOP");
    assert!(wait_until(LIMIT, || tracker
        .stderr()
        .contains("no heartbeat for 5 s")));
    assert!(
        seeder_proc.wait(LIMIT).success(),
        "{}",
        seeder_proc.stderr()
    );
    // Thawed, it is told it was dropped, joins again, and leaves with what it got.
    signal(sleeper_proc.pid(), "CONT");
    assert!(
        sleeper_proc.wait(LIMIT).success(),
        "{}",
        sleeper_proc.stderr()
    );
    let said = sleeper_proc.stderr();
    assert!(said.contains("you were dropped"), "{said}");
    assert!(said.contains("rejoined the tracker"), "{said}");
    let (_, has) = parse_shutdown(&sleeper_proc.stdout());
    assert_eq!(has, entries(&sleeper.dir.join("Shared")));
    if has == ["s.bin"] {
        assert_eq!(fs::read(sleeper.dir.join("Shared/s.bin")).unwrap(), data);
    }
    assert_eq!(entries(&sleeper.dir), ["Shared"], "nothing partial left");
    tracker.kill();
}
