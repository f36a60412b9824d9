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

/// A tracker and one real peer that keeps serving `name` (MIN_ALIVE 600 s).
struct Seeded {
    root: TempDir,
    tracker: Proc,
    port: u16,
    seeder: Proc,
    spec: PeerSpec,
}

fn seeded(tag: &str, name: &str, data: Vec<u8>) -> Seeded {
    let root = TempDir::new(tag);
    let (tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let spec = peer_folder(root.path(), "seeder", Some((name, data)));
    let seeder = start_peer(&spec, port, "600", root.path(), "seeder");
    assert!(
        wait_until(LIMIT, || tracker.stdout().contains("CONNECT")),
        "seeder joined"
    );
    Seeded {
        root,
        tracker,
        port,
        seeder,
        spec,
    }
}

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
    let sha = "0".repeat(40);
    for name in &hostile {
        let offer = tracker.call(&format!("OFFER {name} 10 {sha}"));
        assert!(offer.starts_with("ERR "), "OFFER {name:.40}: {offer}");
        let get = peer.call(&format!("GET {name} 0 1"));
        assert!(get.starts_with("ERR "), "GET {name:.40}: {get}");
    }
    // A name with dots and spaces inside is fine.
    assert_eq!(peer.call("GET foo...%20bar 0 1"), "OK 512");

    // A lying tracker lists those names (and one good empty file) to a real peer.
    let fake = TcpListener::bind("127.0.0.1:0").unwrap();
    let fake_port = fake.local_addr().unwrap().port();
    let empty_sha = p2p::chunk::to_hex(&p2p::chunk::sha1(b""));
    let listing: Vec<String> = hostile
        .iter()
        .map(|n| format!("{n} 10 {sha}"))
        .chain([format!("ok%20file 0 {empty_sha}")])
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
            "JOIN" => "OK 0".to_string(),
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
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let asked = Arc::new(AtomicUsize::new(0));
        let (counter, bytes) = (asked.clone(), data.clone());
        thread::spawn(move || lying_server(listener, bytes, lie, counter));
        // Join the swarm as a holder of the real file, and keep the heartbeat going.
        let mut fake = Raw::connect(("127.0.0.1", s.port));
        fake.call("HELLO p2p/1 peer");
        fake.send(&offer_of("f", &data));
        assert_eq!(fake.line().as_deref(), Some("OK"));
        assert!(fake.call(&format!("JOIN {port}")).starts_with("OK "));
        thread::spawn(move || {
            while fake.call("PING") == "OK" {
                thread::sleep(Duration::from_millis(500));
            }
        });
        liars.push((lie, asked));
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
