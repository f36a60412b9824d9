//! Hard to break, part one: hostile requests on every port (the tracker's and a peer's
//! upload server) — overlong, split, garbled, out of range, badly named, oversized or
//! repeated — each refused the same way and the server still serving. Lying peers are in
//! robust_liars.rs, crashes and silence in robust_liveness.rs. Each test names its case.

mod common;

use common::*;
use std::io::Write;
use std::net::TcpListener;
use std::sync::Arc;
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
    serve_lines(stream, |line, out| {
        let word = line.split_whitespace().next().unwrap_or("");
        let reply = match word {
            "HELLO" => "OK p2p/1 tracker".to_string(),
            "JOIN" => "OK 0 1".to_string(),
            "FILES" => format!("OK 1 {}\n{}", files.len(), files.join("\n")),
            "HASHES" => "OK 0".to_string(),
            "HOLDERS" => "OK 0".to_string(),
            "LEAVE" => {
                let _ = out.write_all(b"OK BYE\n");
                return false;
            }
            _ => "OK 1".to_string(),
        };
        let _ = out.write_all(format!("{reply}\n").as_bytes());
        true
    });
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
