//! Hard to break, part three: liveness. Peers that crash or fall silent, a tracker that
//! dies, floods of idle or trickling connections and running out of file descriptors: the
//! dead are dropped, the living finish, and every server keeps serving. Each test names the
//! case it covers.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::thread;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

/// Liveness, both ways: a peer whose heartbeat connection closes is dropped at once, and
/// its request connection, still open, is told so and closed at its next request; a peer
/// whose heartbeats come is not dropped for a silent request connection.
#[test]
fn a_peer_dropped_through_its_heartbeat_is_told_and_a_beating_one_is_kept() {
    let root = TempDir::new("beat");
    let (tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let mut main = Raw::connect(("127.0.0.1", port));
    main.call("HELLO p2p/1 peer");
    let (id, token) = main.join(9);
    let mut beat = Raw::connect(("127.0.0.1", port));
    beat.call("HELLO p2p/1 peer");
    assert!(
        beat.call(&format!("BEAT {id} {}", token ^ 1))
            .starts_with("ERR bad_token")
    );
    assert_eq!(beat.call(&format!("BEAT {id} {token}")), "OK");
    let mut other = Raw::connect(("127.0.0.1", port));
    other.call("HELLO p2p/1 peer");
    assert!(
        other
            .call(&format!("BEAT {id} {token}"))
            .starts_with("ERR already_beating")
    );
    assert!(
        beat.call("HAVE f 0")
            .starts_with("ERR heartbeat_connection")
    );
    // Beats every second for 7 s while the request connection says nothing: still in.
    for _ in 0..7 {
        std::thread::sleep(Duration::from_secs(1));
        assert_eq!(beat.call(&format!("BEAT {id} {token}")), "OK");
    }
    assert_eq!(main.call("PING"), "OK", "a silent but beating peer is kept");
    assert!(
        !tracker.stderr().contains("dropped"),
        "{}",
        tracker.stderr()
    );
    // The heartbeat connection closes: dropped at once, and told at the next request.
    beat.stream.shutdown(std::net::Shutdown::Both).unwrap();
    assert!(wait_until(LIMIT, || tracker
        .stderr()
        .contains(&format!("peer {id} "))));
    assert!(
        tracker.stderr().contains("its heartbeat connection closed"),
        "{}",
        tracker.stderr()
    );
    assert!(main.call("PING").starts_with("ERR not_joined"));
    assert_eq!(main.line(), None, "then closed");
}

/// The id of the peer whose CONNECT block offered nothing.
fn empty_handed_id(tracker_out: &str) -> Option<u64> {
    let log = parse_tracker(&complete_blocks(tracker_out));
    log.connects
        .iter()
        .find(|(_, files)| files.is_empty())
        .map(|(id, _)| *id)
}

/// Case 7: a downloading peer SIGKILLed mid-swarm is dropped at once; the others finish and
/// leave without waiting for it, and it gets no DISCONNECT block.
#[test]
fn a_downloader_killed_mid_swarm_is_dropped_and_the_others_leave() {
    let root = TempDir::new("kill-downloader");
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let files = [("a.bin", 3 * MIB), ("b.bin", 3 * MIB + 1)];
    let (specs, mut procs) = start_peers(root.path(), "seed", &files, 1, port, "2");
    let victim_spec = peer_folder(root.path(), "victim", None);
    let mut victim = start_peer(&victim_spec, port, "600", root.path(), "victim");
    let mut victim_id = None;
    assert!(wait_until(LIMIT, || {
        victim_id = empty_handed_id(&tracker.stdout());
        victim_id.is_some_and(|id| tracker.stdout().contains(&format!("PEER {id} ACQUIRED")))
    }));
    victim.kill();
    for p in &mut procs {
        p.wait(LIMIT);
    }
    let out = tracker.stdout();
    let log = parse_tracker(&out);
    let gone: Vec<u64> = log.disconnects.iter().map(|(id, _)| *id).collect();
    assert!(
        !gone.contains(&victim_id.unwrap()),
        "the killed peer got a DISCONNECT: {gone:?}"
    );
    assert_eq!(gone.len(), 2);
    // The survivors' own view is exact: filter the victim out and check them as a swarm.
    let kept: String = filter_peer(&out, victim_id.unwrap());
    check_complete_swarm(&specs, &mut procs, &kept, Duration::from_secs(2));
    tracker.kill();
}

/// The tracker output without peer `id`'s blocks and lines.
fn filter_peer(out: &str, id: u64) -> String {
    let mut kept = String::new();
    let mut skipping = false;
    for line in out.lines() {
        let header = line.starts_with("PEER ");
        if header {
            skipping = line.starts_with(&format!("PEER {id} "));
        } else if !line.starts_with(&format!("{id}    ")) {
            skipping = false;
        }
        if !skipping {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// Case 8: a seeder SIGKILLed while a downloader fetches from it and from a second holder:
/// the download completes from the second holder.
#[test]
fn a_seeder_killed_mid_download_is_replaced_by_the_other_holder() {
    let data = content(8, 4 * MIB + 3);
    let mut s = seeded("kill-seeder", "f", data.clone());
    let second = peer_folder(s.root.path(), "second", Some(("f", data.clone())));
    let mut second_proc = start_peer(&second, s.port, "600", s.root.path(), "second");
    assert!(wait_until(LIMIT, || holders(s.port, "f").len() == 2));
    let taker = peer_folder(s.root.path(), "taker", None);
    let mut proc = start_peer(&taker, s.port, "0", s.root.path(), "taker");
    assert!(wait_until(LIMIT, || s
        .tracker
        .stdout()
        .contains("PEER 2 ACQUIRED")));
    s.seeder.kill();
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(fs::read(taker.dir.join("Shared/f")).unwrap(), data);
    let log = parse_tracker(&s.tracker.stdout());
    let mut xs: Vec<u64> = log.acquired[&(2, "f".to_string())]
        .iter()
        .map(|(x, _)| *x)
        .collect();
    xs.sort();
    assert_eq!(xs, (1..=chunks_of(data.len())).collect::<Vec<_>>());
    second_proc.kill();
}

/// Case 9: the tracker dies while peers run: they keep trading with the peers they know,
/// say so once, retry, and exit 1 with a clear message when it does not come back; nothing
/// partial is ever left in Shared/.
#[test]
fn peers_ride_out_a_dead_tracker_then_exit_1() {
    let data = content(9, 3 * MIB);
    let mut s = seeded("kill-tracker", "f", data.clone());
    let taker = peer_folder(s.root.path(), "taker", None);
    let mut proc = start_peer(&taker, s.port, "600", s.root.path(), "taker");
    assert!(wait_until(LIMIT, || s
        .tracker
        .stdout()
        .contains("PEER 1 ACQUIRED")));
    s.tracker.kill();
    for p in [&mut proc, &mut s.seeder] {
        let status = p.wait(LIMIT);
        assert_eq!(status.code(), Some(1), "{}", p.stderr());
        let err = p.stderr();
        assert_eq!(
            err.matches("retrying for").count(),
            1,
            "the loss is reported once: {err}"
        );
        assert!(
            err.trim_end().ends_with("did not come back within 10 s"),
            "{err}"
        );
        assert_eq!(p.stdout(), "", "no SHUTDOWN block after a failure");
    }
    // The taker finished the file from the seeder it knew, after the tracker was gone.
    assert_eq!(entries(&taker.dir.join("Shared")), ["f"]);
    assert_eq!(fs::read(taker.dir.join("Shared/f")).unwrap(), data);
    assert_eq!(
        entries(&taker.dir),
        ["Shared"],
        "no partial data left behind"
    );
}

/// Case 10: a thousand idle connections and a slow sender do not stop a swarm; idle
/// connections are closed after the deadline; the slow one is cut off.
#[test]
fn idle_and_slow_connections_are_closed_and_the_swarm_still_completes() {
    let root = TempDir::new("idle");
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let mut idle: Vec<Raw> = (0..1000)
        .map(|_| Raw::connect(("127.0.0.1", port)))
        .collect();
    // A sender trickling a byte every 2 s: never silent long enough to time out, never done.
    let mut slow = Raw::connect(("127.0.0.1", port));
    let mut trickle = slow.stream.try_clone().unwrap();
    thread::spawn(move || {
        for b in b"HELLO p2p/1 peer\n" {
            if trickle.write_all(&[*b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_secs(2));
        }
    });
    let slow = thread::spawn(move || slow.line());
    let files = [("x", 100_000), ("y", 513), ("z", 0)];
    let (specs, mut procs) = start_peers(root.path(), "p", &files, 1, port, "1");
    for p in &mut procs {
        p.wait(LIMIT);
    }
    check_complete_swarm(
        &specs,
        &mut procs,
        &tracker.stdout(),
        Duration::from_secs(1),
    );
    for raw in &mut idle {
        assert!(
            raw.closed_within(Duration::from_secs(20)),
            "an idle connection stayed open"
        );
    }
    assert_eq!(slow.join().unwrap().as_deref(), Some("ERR too_slow"));
    tracker.kill();
}

/// Case 10, continued: when file descriptors run out, the accept loop neither spins nor
/// dies, and serves again once descriptors free up.
#[test]
fn running_out_of_file_descriptors_neither_spins_nor_crashes() {
    let root = TempDir::new("fds");
    let script = format!("ulimit -n 48 && exec '{BIN}' tracker");
    let mut tracker = Proc::spawn("sh", &["-c", &script], root.path(), root.path(), "tracker");
    let port_file = root.path().join("port.txt");
    assert!(wait_until(LIMIT, || fs::read_to_string(&port_file)
        .is_ok_and(|s| s.ends_with('\n'))));
    let port: u16 = fs::read_to_string(&port_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let flood: Vec<TcpStreamHolder> = (0..100).map(|_| TcpStreamHolder::connect(port)).collect();
    thread::sleep(Duration::from_millis(300));
    let before = cpu_ticks(tracker.pid());
    thread::sleep(Duration::from_secs(2));
    let spent = cpu_ticks(tracker.pid()) - before;
    assert!(
        spent < 50,
        "the tracker spent {spent} ticks in 2 s while out of descriptors"
    );
    assert!(
        tracker.try_status().is_none(),
        "the tracker died: {}",
        tracker.stderr()
    );
    assert!(
        tracker.stderr().contains("accept failed"),
        "{}",
        tracker.stderr()
    );
    drop(flood);
    let served = wait_until(LIMIT, || {
        let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut raw = RawFrom::new(stream);
        raw.ask("HELLO p2p/1 peer") == "OK p2p/1 tracker"
    });
    assert!(served, "the tracker serves again");
    tracker.kill();
}

/// A connection that is only held open (its stream is never read).
struct TcpStreamHolder(#[allow(dead_code)] Option<std::net::TcpStream>);

impl TcpStreamHolder {
    fn connect(port: u16) -> TcpStreamHolder {
        TcpStreamHolder(std::net::TcpStream::connect(("127.0.0.1", port)).ok())
    }
}

/// A one-shot line client that tolerates a dead connection (answers "").
struct RawFrom(std::io::BufReader<std::net::TcpStream>);

impl RawFrom {
    fn new(stream: std::net::TcpStream) -> RawFrom {
        RawFrom(std::io::BufReader::new(stream))
    }

    fn ask(&mut self, line: &str) -> String {
        let _ = self.0.get_mut().write_all(format!("{line}\n").as_bytes());
        let mut reply = String::new();
        let _ = std::io::BufRead::read_line(&mut self.0, &mut reply);
        reply.trim_end().to_string()
    }
}

/// The helper the closing checks rely on: a connection still open at the limit is not taken
/// for closed, one the other side closes is, and what it sent before closing is skipped.
#[test]
fn closed_within_tells_an_open_connection_from_a_closed_one() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut raw = Raw::connect(listener.local_addr().unwrap());
    let (mut held, _) = listener.accept().unwrap();
    held.write_all(b"a line before anything\n").unwrap();
    assert!(
        !raw.closed_within(Duration::from_millis(300)),
        "an open connection was taken for closed"
    );
    held.write_all(b"a last line\n").unwrap();
    drop(held);
    assert!(
        raw.closed_within(Duration::from_secs(5)),
        "a closed connection was taken for open"
    );
}
