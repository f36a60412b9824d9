//! Hard to break: hostile input on every port, peers that lie, crash or lose their disk, a
//! tracker that dies, and floods of idle connections. Each test names the case it covers.

mod common;

use common::*;
use std::fs;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);
const MIB: usize = 1024 * 1024;

/// Case 1: a 10 MiB line with no newline gets ERR and a close, and memory stays bounded.
#[test]
fn an_overlong_line_is_refused_and_the_connection_closed() {
    let s = seeded("overlong", "f", content(1, 1500));
    let peer_addr = holder_addr(s.port, "f");
    for (addr, pid, greeting) in [
        (
            format!("127.0.0.1:{}", s.port),
            s.tracker.pid(),
            "OK p2p/1 tracker",
        ),
        (peer_addr.clone(), s.seeder.pid(), "OK p2p/1 peer"),
    ] {
        let mut raw = Raw::connect(addr.as_str());
        assert_eq!(raw.call("HELLO p2p/1 peer"), greeting);
        let mut writer = raw.stream.try_clone().unwrap();
        let flood = thread::spawn(move || {
            let block = vec![b'x'; MIB];
            for _ in 0..10 {
                if writer.write_all(&block).is_err() {
                    break;
                }
            }
        });
        let reply = raw.line().unwrap_or_default();
        assert!(reply.starts_with("ERR line_too_long"), "{addr}: {reply:?}");
        assert!(
            raw.closed_within(Duration::from_secs(10)),
            "{addr} kept the connection"
        );
        flood.join().unwrap();
        assert!(
            peak_rss_kib(pid) < 64 * 1024,
            "{addr}: peak RSS {} KiB",
            peak_rss_kib(pid)
        );
        // Still serving.
        let mut again = Raw::connect(addr.as_str());
        assert_eq!(again.call("HELLO p2p/1 peer"), greeting);
        assert_eq!(again.call("PING"), "OK");
    }
}

/// Case 2: requests split one byte per write, many in one write, and CRLF endings.
#[test]
fn split_batched_and_crlf_requests_parse_the_same() {
    let s = seeded("framing", "f", content(2, 1500));
    for addr in [format!("127.0.0.1:{}", s.port), holder_addr(s.port, "f")] {
        let mut raw = Raw::connect(addr.as_str());
        for b in b"HELLO p2p/1 peer\r\nPI" {
            raw.send(&[*b]);
            thread::sleep(Duration::from_millis(1));
        }
        assert!(raw.line().unwrap().starts_with("OK p2p/1 "));
        raw.send(b"NG\r\nPING\nPING\r\nPING\n");
        for _ in 0..4 {
            assert_eq!(raw.line().as_deref(), Some("OK"), "{addr}");
        }
    }
}

/// Case 3: non-UTF-8, empty lines, unknown commands, wrong arity, a 64 KiB argument: one
/// ERR each, and the connection still answers.
#[test]
fn each_bad_request_gets_one_err_and_the_connection_stays_usable() {
    let s = seeded("bad-requests", "f", content(3, 1500));
    for addr in [format!("127.0.0.1:{}", s.port), holder_addr(s.port, "f")] {
        let mut raw = Raw::connect(addr.as_str());
        raw.call("HELLO p2p/1 peer");
        let big = format!("GET {} 0 1\n", "a".repeat(64 * 1024 - 10));
        let bad: Vec<Vec<u8>> = vec![
            b"\xff\xfe\xfd\n".to_vec(),
            b"\n".to_vec(),
            b"FROBNICATE 1 2\n".to_vec(),
            b"GET f 0\n".to_vec(),
            b"PING extra\n".to_vec(),
            b"HOLDERS\n".to_vec(),
            big.into_bytes(),
        ];
        for line in &bad {
            raw.send(line);
            let reply = raw.line().unwrap_or_default();
            assert!(
                reply.starts_with("ERR "),
                "{addr}: {:?} got {reply:?}",
                String::from_utf8_lossy(&line[..line.len().min(40)])
            );
        }
        assert_eq!(raw.call("PING"), "OK", "{addr}");
    }
}

/// Case 4: chunk and piece indexes out of range or not numbers: ERR, nothing read or
/// printed, and the right data still flows afterwards.
#[test]
fn out_of_range_indexes_and_lengths_are_refused() {
    let data = content(4, 1500);
    let s = seeded("indexes", "f", data.clone());
    let mut peer = Raw::connect(holder_addr(s.port, "f").as_str());
    peer.call("HELLO p2p/1 peer");
    for get in [
        "GET f -1 1",
        "GET f 4294967296 1",
        "GET f 18446744073709551615 1",
        "GET f 18446744073709551615 2",
        "GET f abc 1",
        "GET f 3 1",
        "GET f 2 2",
        "GET f 0 0",
        "GET f 0 1025",
        "GET f 0 -1",
    ] {
        let reply = peer.call(get);
        assert!(reply.starts_with("ERR "), "{get}: {reply}");
    }
    assert_eq!(peer.call("GET f 0 3"), "OK 1500");
    assert_eq!(peer.bytes(1500), data);
    // At the tracker: a joined fake peer reporting pieces that do not exist.
    let mut fake = Raw::connect(("127.0.0.1", s.port));
    fake.call("HELLO p2p/1 peer");
    assert!(fake.call("JOIN 9").starts_with("OK "));
    for have in [
        "HAVE f 1",
        "HAVE f 0-1",
        "HAVE f -1",
        "HAVE f 4294967296",
        "HAVE f 1-0",
        "HAVE f x",
    ] {
        let reply = fake.call(have);
        assert!(reply.starts_with("ERR "), "{have}: {reply}");
    }
    assert!(
        !s.tracker.stdout().contains("ACQUIRED"),
        "nothing was acquired"
    );
}

/// Case 5: hostile names, both ways: refused by the tracker and by a peer, and a peer told
/// of them by a lying tracker writes nothing outside its folders.
#[test]
fn hostile_file_names_are_refused_in_both_directions() {
    let s = seeded("names", "foo... bar", content(5, 700));
    let evil = format!("p2p-evil-{}", std::process::id());
    let hostile = [
        "..%2Fx".to_string(),
        "..%2F..%2Fetc%2Fpasswd".to_string(),
        "%2Fetc%2Fpasswd".to_string(),
        format!("%2Ftmp%2F{evil}"),
        "a%2Fb".to_string(),
        "a%00b".to_string(),
        ".".to_string(),
        "..".to_string(),
        "%2E%2E".to_string(),
        "".to_string(),
        "x".repeat(4096),
    ];
    let mut tracker = Raw::connect(("127.0.0.1", s.port));
    tracker.call("HELLO p2p/1 peer");
    let mut peer = Raw::connect(holder_addr(s.port, "foo... bar").as_str());
    peer.call("HELLO p2p/1 peer");
    for name in &hostile {
        let offer = tracker.call(&format!("OFFER {name} 10"));
        assert!(offer.starts_with("ERR "), "OFFER {name:.40}: {offer}");
        let get = peer.call(&format!("GET {name} 0 1"));
        assert!(get.starts_with("ERR "), "GET {name:.40}: {get}");
    }
    // A name with dots and spaces inside is fine.
    assert_eq!(peer.call("GET foo...%20bar 0 1"), "OK 512");

    // A lying tracker lists those names (and one good empty file) to a real peer.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let listing: Vec<String> = hostile
        .iter()
        .map(|n| format!("{n} 10 1"))
        .chain(["ok%20file 0 2".to_string()])
        .collect();
    let liar = thread::spawn(move || fake_tracker(fake, listing));
    let victim = peer_folder(s.root.path(), "victim", None);
    let mut proc = start_peer(&victim, fake_port, "0", s.root.path(), "victim");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    liar.join().unwrap();
    assert_eq!(entries(&victim.dir.join("Shared")), ["ok file"]);
    assert_eq!(entries(&victim.dir), ["Shared"]);
    assert!(!std::path::Path::new(&format!("/tmp/{evil}")).exists());
    assert!(!s.root.path().join("x").exists() && !s.root.path().join("a").exists());
    assert_eq!(proc.stdout(), "PEER 0 SHUTDOWN: HAS 1\n0    ok file\n");
}

/// Serves one peer connection as a tracker that lists `files`, holds none of them, and lets
/// the peer leave as soon as it asks.
fn fake_tracker(listener: TcpListener, files: Vec<String>) {
    let (stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut out = stream.try_clone().unwrap();
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
            return;
        }
        let word = line.split_whitespace().next().unwrap_or("");
        let reply = match word {
            "HELLO" => "OK p2p/1 tracker".to_string(),
            "JOIN" => "OK 0 1".to_string(),
            "FILES" => format!("OK 1 {}\n{}", files.len(), files.join("\n")),
            "HASHES" => "OK 0".to_string(),
            "HOLDERS" => "OK 0".to_string(),
            "LEAVE" => {
                let _ = out.write_all(b"OK BYE\n");
                return;
            }
            _ => "OK 1".to_string(),
        };
        let _ = out.write_all(format!("{reply}\n").as_bytes());
    }
}

/// The ways a fake holder lies about a piece.
#[derive(Clone, Copy, Debug)]
enum Lie {
    RandomBytes,
    WrongPiece,
    TooLong,
    CutShort,
}

/// Case 6: lying holders (random bytes, the wrong piece, a reply too long, a reply cut
/// short) are caught, never reported, and dropped; the file comes whole from the honest one.
#[test]
fn lying_peers_are_caught_dropped_and_routed_around() {
    let data = content(6, 4 * MIB + 100);
    let s = seeded("liar", "f", data.clone());
    let mut liars = Vec::new();
    for lie in [
        Lie::RandomBytes,
        Lie::WrongPiece,
        Lie::TooLong,
        Lie::CutShort,
    ] {
        liars.push((lie, lying_holder(s.port, "f", &data, lie)));
    }
    let taker = peer_folder(s.root.path(), "taker", None);
    let mut proc = start_peer(&taker, s.port, "0", s.root.path(), "taker");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(fs::read(taker.dir.join("Shared/f")).unwrap(), data);
    let (id, _) = parse_shutdown(&proc.stdout());
    let log = parse_tracker(&s.tracker.stdout());
    let mut xs: Vec<u64> = log.acquired[&(id, "f".to_string())]
        .iter()
        .map(|(x, _)| *x)
        .collect();
    xs.sort();
    assert_eq!(
        xs,
        (1..=chunks_of(data.len())).collect::<Vec<_>>(),
        "each chunk reported once"
    );
    let said = proc.stderr();
    assert!(said.contains("failed its SHA-1 check"), "{said}");
    assert!(
        said.contains("bytes for piece"),
        "a too-long reply is caught: {said}"
    );
    assert!(
        said.contains("cut short"),
        "a cut-short reply is caught: {said}"
    );
    for (lie, asked) in liars {
        let asked = asked.load(Ordering::Relaxed);
        // At most three strikes, each with a few requests already in flight.
        assert!(
            (1..=12).contains(&asked),
            "{lie:?} liar asked {asked} times"
        );
    }
}

/// Case 6, the end of it: when every holder of a file lies, the downloader strikes them all
/// out, gives the file up (saying so, by name), and leaves instead of waiting for ever.
#[test]
fn a_file_whose_every_holder_lies_is_given_up_and_the_peer_leaves() {
    let root = TempDir::new("all-liars");
    let (tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let data = content(20, MIB);
    // The liar offers the real file's hashes, so it is the one holder of "f".
    let asked = lying_holder(port, "f", &data, Lie::RandomBytes);
    let taker = peer_folder(root.path(), "taker", None);
    let mut proc = start_peer(&taker, port, "0", root.path(), "taker");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(proc.stdout(), "PEER 1 SHUTDOWN: HAS 0\n");
    let said = proc.stderr();
    assert!(
        said.contains("giving up \"f\": every peer holding the rest of it sent bad data"),
        "{said}"
    );
    assert_eq!(entries(&taker.dir.join("Shared")), Vec::<String>::new());
    assert_eq!(entries(&taker.dir), ["Shared"], "nothing partial left");
    let asked = asked.load(Ordering::Relaxed);
    assert!(
        (3..=12).contains(&asked),
        "the liar was asked {asked} times"
    );
    let log = parse_tracker(&complete_blocks(&tracker.stdout()));
    assert!(log.acquired.is_empty(), "nothing bad was reported");
    assert_eq!(log.disconnects, [(1, vec![])]);
}

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

/// Offers are bounded by the pieces they would take, not only by their number.
#[test]
fn offers_of_huge_files_are_bounded_per_connection() {
    let root = TempDir::new("huge-offers");
    let (_tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let mut raw = Raw::connect(("127.0.0.1", port));
    raw.call("HELLO p2p/1 peer");
    let max = 64u64 << 30;
    for i in 0..4 {
        assert_eq!(raw.call(&format!("OFFER big{i} {max}")), "OK");
    }
    assert!(
        raw.call(&format!("OFFER big4 {max}"))
            .starts_with("ERR too_many_offers")
    );
    assert!(
        raw.call(&format!("OFFER big5 {}", max + 1))
            .starts_with("ERR file_too_large")
    );
    assert_eq!(raw.call("OFFER empty 0"), "OK", "still in sync");
    let (id, _) = raw.join(9);
    assert_eq!(id, 0);
    // A report of pieces whose hashes nobody sent is refused before any work.
    let runs = ["0-1048575"; 3].join(" ");
    assert!(
        raw.call(&format!("HAVE big0 {runs}"))
            .starts_with("ERR bad_piece")
    );
    assert_eq!(raw.call("PING"), "OK");
}

/// Joins the swarm at `port` as a holder of `name` = `data` (its true hashes sent) that
/// answers every GET with `lie`, and keeps its tracker connection alive. Returns how many
/// requests it was sent.
fn lying_holder(port: u16, name: &str, data: &[u8], lie: Lie) -> Arc<AtomicUsize> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let liar_port = listener.local_addr().unwrap().port();
    let asked = Arc::new(AtomicUsize::new(0));
    let (counter, bytes) = (asked.clone(), data.to_vec());
    thread::spawn(move || lying_server(listener, bytes, lie, counter));
    let mut fake = Raw::connect(("127.0.0.1", port));
    fake.call("HELLO p2p/1 peer");
    fake.send(&offer_of(name, data));
    assert_eq!(fake.line().as_deref(), Some("OK"));
    fake.join(liar_port);
    fake.send(&hashed_of(name, data));
    assert!(fake.line().unwrap().starts_with("OK "));
    thread::spawn(move || {
        while fake.call("PING") == "OK" {
            thread::sleep(Duration::from_millis(500));
        }
    });
    asked
}

/// Answers every GET with the same kind of lie.
fn lying_server(listener: TcpListener, data: Vec<u8>, lie: Lie, asked: Arc<AtomicUsize>) {
    for stream in listener.incoming().flatten() {
        let asked = asked.clone();
        let data = data.clone();
        thread::spawn(move || {
            let mut out = stream.try_clone().unwrap();
            let mut reader = std::io::BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                if std::io::BufRead::read_line(&mut reader, &mut line).unwrap_or(0) == 0 {
                    return;
                }
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() == Some(&"HELLO") {
                    let _ = out.write_all(b"OK p2p/1 peer\n");
                    continue;
                }
                let first: usize = words.get(2).and_then(|w| w.parse().ok()).unwrap_or(0);
                let count: usize = words.get(3).and_then(|w| w.parse().ok()).unwrap_or(1);
                let start = (first * 512).min(data.len());
                let end = (start + count * 512).min(data.len());
                let len = end - start;
                let n = asked.fetch_add(1, Ordering::Relaxed);
                let reply = match lie {
                    Lie::RandomBytes => [
                        format!("OK {len}\n").into_bytes(),
                        content(99 + n as u64, len),
                    ]
                    .concat(),
                    Lie::WrongPiece => {
                        let other = (start + 65536) % data.len();
                        let wrong: Vec<u8> =
                            data.iter().cycle().skip(other).take(len).copied().collect();
                        [format!("OK {len}\n").into_bytes(), wrong].concat()
                    }
                    Lie::TooLong => {
                        [format!("OK {}\n", len + 10).into_bytes(), vec![0; len + 10]].concat()
                    }
                    Lie::CutShort => {
                        let _ = out.write_all(format!("OK {len}\n").as_bytes());
                        let _ = out.write_all(&data[start..start + len / 2]);
                        let _ = out.shutdown(std::net::Shutdown::Both);
                        return;
                    }
                };
                if out.write_all(&reply).is_err() {
                    return;
                }
            }
        });
    }
}

/// The id of the peer whose CONNECT block offered nothing.
fn empty_handed_id(tracker_out: &str) -> Option<u64> {
    let log = parse_tracker(&complete_blocks(tracker_out));
    log.connects
        .iter()
        .find(|(_, files)| files.is_empty())
        .map(|(id, _)| *id)
}

/// The tracker's output up to its last complete line.
fn complete_blocks(out: &str) -> String {
    out.rfind('\n')
        .map(|i| out[..=i].to_string())
        .unwrap_or_default()
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

/// Case 11: the same peer address joining twice at once, and the same chunk reported twice:
/// exactly one effect each.
#[test]
fn duplicate_registrations_have_exactly_one_effect() {
    let root = TempDir::new("dup");
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    for listen in 7000..7020u16 {
        let barrier = Arc::new(std::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|_| {
                let barrier = barrier.clone();
                thread::spawn(move || {
                    let mut raw = Raw::connect(("127.0.0.1", port));
                    raw.call("HELLO p2p/1 peer");
                    barrier.wait();
                    let reply = raw.call(&format!("JOIN {listen}"));
                    (reply, raw)
                })
            })
            .collect();
        let replies: Vec<(String, Raw)> = racers.into_iter().map(|t| t.join().unwrap()).collect();
        let ok = replies.iter().filter(|(r, _)| r.starts_with("OK ")).count();
        let refused = replies
            .iter()
            .filter(|(r, _)| r.starts_with("ERR address_in_use"))
            .count();
        assert_eq!(
            (ok, refused),
            (1, 1),
            "{:?}",
            replies.iter().map(|(r, _)| r).collect::<Vec<_>>()
        );
    }
    let data = content(11, 1000);
    let mut owner = Raw::connect(("127.0.0.1", port));
    owner.call("HELLO p2p/1 peer");
    owner.send(&offer_of("g", &data));
    assert_eq!(owner.line().as_deref(), Some("OK"));
    let (owner_id, _) = owner.join(8000);
    owner.send(&hashed_of("g", &data));
    assert!(owner.line().unwrap().starts_with("OK "));
    let mut taker = Raw::connect(("127.0.0.1", port));
    taker.call("HELLO p2p/1 peer");
    let (taker_id, _) = taker.join(8001);
    taker.send(b"HAVE g 0\nHAVE g 0\nHAVE g 0-0\n");
    for _ in 0..3 {
        assert!(taker.line().unwrap().starts_with("OK "));
    }
    // The tracker's printer writes behind its replies, but a DISCONNECT block is on stdout
    // before its BYE, and so is everything printed before it.
    assert_eq!(taker.call("LEAVE"), "OK BYE");
    let log = parse_tracker(&tracker.stdout());
    assert_eq!(log.acquired[&(taker_id, "g".to_string())], [(1, 2), (2, 2)]);
    assert!(!log.acquired.contains_key(&(owner_id, "g".to_string())));
    tracker.kill();
}

/// Case 12: a seed deleted or truncated under a seeding peer: it answers ERR, never short or
/// stale data, stops offering the file, and downloaders use the other holder.
#[test]
fn a_seed_deleted_or_truncated_under_a_seeder_is_no_longer_served() {
    let one = content(12, MIB);
    let two = content(13, MIB + 77);
    let s = seeded("vanish", "one", one.clone());
    // The seeder also holds "two"; a second peer holds both.
    fs::write(s.spec.dir.join("Shared/two"), &two).unwrap_or(());
    let root = s.root.path();
    let other = peer_folder(root, "other", Some(("one", one.clone())));
    fs::write(other.dir.join("Shared/two"), &two).unwrap();
    let mut other_proc = start_peer(&other, s.port, "600", root, "other");
    assert!(wait_until(LIMIT, || holders(s.port, "one").len() == 2));
    let seeder_addr = holders(s.port, "one")
        .into_iter()
        .find(|h| h.starts_with("0 "))
        .and_then(|h| h.split(' ').nth(1).map(str::to_string))
        .unwrap();
    fs::remove_file(s.spec.dir.join("Shared/one")).unwrap();
    let mut raw = Raw::connect(seeder_addr.as_str());
    raw.call("HELLO p2p/1 peer");
    assert_eq!(raw.call("GET one 0 128"), "ERR read_failed");
    assert_eq!(
        raw.call("GET one 0 128"),
        "ERR unknown_file",
        "no longer offered"
    );
    assert!(
        wait_until(LIMIT, || holders(s.port, "one").len() == 1),
        "the tracker was told"
    );
    let taker = peer_folder(root, "taker", None);
    let mut proc = start_peer(&taker, s.port, "0", root, "taker");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(fs::read(taker.dir.join("Shared/one")).unwrap(), one);
    assert_eq!(fs::read(taker.dir.join("Shared/two")).unwrap(), two);
    assert!(
        s.seeder.stderr().contains("no longer sharing \"one\""),
        "{}",
        s.seeder.stderr()
    );
    other_proc.kill();
}

/// Case 12, truncation: a seed cut short under its seeder is refused, never served short.
#[test]
fn a_truncated_seed_is_refused_never_served_short() {
    let data = content(14, 200_000);
    let s = seeded("truncate", "t", data);
    let addr = holder_addr(s.port, "t");
    fs::OpenOptions::new()
        .write(true)
        .open(s.spec.dir.join("Shared/t"))
        .unwrap()
        .set_len(100_000)
        .unwrap();
    let mut raw = Raw::connect(addr.as_str());
    raw.call("HELLO p2p/1 peer");
    // The first piece is still on disk whole, but the file changed: refused all the same.
    assert_eq!(raw.call("GET t 0 128"), "ERR read_failed");
    assert_eq!(raw.call("GET t 256 128"), "ERR unknown_file");
    assert!(wait_until(LIMIT, || holders(s.port, "t").is_empty()));
}

/// Case 13: the downloader's disk fills up: a clear error, nothing partial in Shared/, and
/// it keeps serving what it has until the swarm lets it go.
#[test]
fn a_full_disk_gives_a_clear_error_and_the_peer_keeps_serving() {
    let big = content(15, 3 * MIB);
    let small = content(16, 20_000);
    let s = seeded("disk-full", "big", big.clone());
    let root = s.root.path();
    let mount = root.join("small-disk");
    fs::create_dir_all(&mount).unwrap();
    fs::write(root.join("small.src"), &small).unwrap();
    // The downloader runs on a 1 MiB tmpfs of its own, in a private mount namespace; it
    // writes what its Shared/ held at the end beside the mount, where the test can see it.
    let script = format!(
        "mount -t tmpfs -o size=1m none '{m}' && mkdir '{m}/Shared' && cp '{r}/small.src' '{m}/Shared/small' \
         && cd '{m}' && '{BIN}' peer 127.0.0.1 {p} 0; rc=$?; ls -A '{m}' > '{r}/top.txt'; ls -A '{m}/Shared' > '{r}/shared.txt'; \
         cmp -s '{m}/Shared/small' '{r}/small.src' && echo same > '{r}/small.txt'; exit $rc",
        m = mount.display(),
        r = root.display(),
        p = s.port
    );
    let mut proc = Proc::spawn("unshare", &["-rm", "sh", "-c", &script], root, root, "full");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    let err = proc.stderr();
    assert!(
        err.contains("giving up \"big\": cannot write it: No space left on device"),
        "{err}"
    );
    assert_eq!(
        fs::read_to_string(root.join("shared.txt")).unwrap(),
        "small\n",
        "nothing partial in Shared/"
    );
    assert_eq!(
        fs::read_to_string(root.join("top.txt")).unwrap(),
        "Shared\n",
        "no partial data left"
    );
    assert_eq!(
        fs::read_to_string(root.join("small.txt")).unwrap(),
        "same\n"
    );
    // It kept uploading: the seeder got its small file from it.
    assert!(wait_until(LIMIT, || fs::read(
        s.spec.dir.join("Shared/small")
    )
    .is_ok_and(|d| d == small)));
    let log = parse_tracker(&complete_blocks(&s.tracker.stdout()));
    let (_, received) = log
        .disconnects
        .iter()
        .find(|(id, _)| *id == 1)
        .expect("DISCONNECT");
    assert!(received.is_empty(), "{received:?}");
    assert_eq!(proc.stdout(), "PEER 1 SHUTDOWN: HAS 1\n1    small\n");
}
