//! Hard to break, part two: peers that lie about what they serve, and seeds that change or
//! a disk that fills up under a peer. Each is caught, never passed on as good data, and the
//! swarm routes around it. Each test names the case it covers.

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
    // The honest seeder is frozen until every liar has been asked once: otherwise the
    // taker may fetch everything from it before asking any liar (1 run in 8 did). Frozen
    // for less than the tracker's 5 s heartbeat silence, so it is not dropped.
    s.seeder.freeze();
    let taker = peer_folder(s.root.path(), "taker", None);
    let mut proc = start_peer(&taker, s.port, "0", s.root.path(), "taker");
    let all_asked = wait_until(Duration::from_secs(4), || {
        liars.iter().all(|(_, a)| a.load(Ordering::Relaxed) > 0)
    });
    s.seeder.thaw();
    assert!(
        all_asked,
        "every liar was asked while the seeder was frozen"
    );
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
    // Three strikes, with a few requests in flight; a request can carry a run of up to four
    // pieces, so the three bad ones may all come in one reply.
    let asked = asked.load(Ordering::Relaxed);
    assert!(
        (1..=12).contains(&asked),
        "the liar was asked {asked} times"
    );
    let log = parse_tracker(&complete_blocks(&tracker.stdout()));
    assert!(log.acquired.is_empty(), "nothing bad was reported");
    assert_eq!(log.disconnects, [(1, vec![])]);
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
            serve_lines(stream, |line, out| {
                let words: Vec<&str> = line.split_whitespace().collect();
                if words.first() == Some(&"HELLO") {
                    let _ = out.write_all(b"OK p2p/1 peer\n");
                    return true;
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
                        return false;
                    }
                };
                out.write_all(&reply).is_ok()
            })
        });
    }
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
