//! Swarms that must still end, with every file each peer can get: two files by one name, a
//! seed rewritten under its owner, a seed too large to hash before joining. Real tracker and
//! peers on 127.0.0.1; every peer must leave with exit 0 and its SHUTDOWN block.

mod common;

use common::*;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(120);
const MIB: usize = 1024 * 1024;

/// Waits for every peer and checks it exited 0; returns its SHUTDOWN names.
fn all_leave(procs: &mut [Proc]) -> Vec<Vec<String>> {
    procs
        .iter_mut()
        .map(|p| {
            assert!(p.wait(LIMIT).success(), "{}", p.stderr());
            parse_shutdown(&p.stdout()).1
        })
        .collect()
}

/// How many lines of `text` mention `what`.
fn lines_with(text: &str, what: &str) -> usize {
    text.lines().filter(|l| l.contains(what)).count()
}

/// P0 holds `same.txt` = `first`, P1 holds `same.txt` = `second` and `x.txt`, P2 holds
/// nothing. With `staggered`, P1 and P2 start once P0's hashes are in, so P0's version
/// defines the name; otherwise all start at once and either may. Checks that everyone
/// leaves, each of P0 and P1 keeps its own bytes, the one refused says so in one line, and
/// everyone else gets the other version and every other file.
fn one_name_two_contents(tag: &str, first: &[u8], second: &[u8], staggered: bool) {
    let root = TempDir::new(tag);
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let x = content(7, 70_000);
    let p0 = peer_folder(root.path(), "p0", Some(("same.txt", first.to_vec())));
    let p1 = peer_folder(root.path(), "p1", Some(("same.txt", second.to_vec())));
    fs::write(p1.dir.join("Shared/x.txt"), &x).unwrap();
    let p2 = peer_folder(root.path(), "p2", None);
    // A fake peer that joins first and lacks everything keeps P0 from leaving alone before
    // the others are in; it vanishes once they are.
    let holdout = Holdout::join(port);
    let mut procs = vec![start_peer(&p0, port, "1", logs, "p0")];
    if staggered {
        let hashed = wait_until(LIMIT, || {
            holders(port, "same.txt")
                .first()
                .is_some_and(|h| h.ends_with(" 01"))
        });
        assert!(hashed, "P0's hashes reached the tracker");
    }
    procs.push(start_peer(&p1, port, "1", logs, "p1"));
    procs.push(start_peer(&p2, port, "1", logs, "p2"));
    let all_in = wait_until(LIMIT, || {
        tracker.stdout().matches(" CONNECT: ").count() == 4
    });
    assert!(all_in, "{}", tracker.stdout());
    drop(holdout);
    let has = all_leave(&mut procs);
    let both = ["same.txt".to_string(), "x.txt".to_string()];
    assert_eq!(has, [both.clone(), both.clone(), both], "SHUTDOWN blocks");
    let refused: Vec<usize> = (0..2)
        .filter(|&i| procs[i].stderr().contains("not sharing \"same.txt\""))
        .collect();
    assert_eq!(refused.len(), 1, "exactly one copy is refused: {refused:?}");
    if staggered {
        assert_eq!(refused, [1], "the later copy is refused");
    }
    let loser = &procs[refused[0]];
    assert_eq!(
        lines_with(&loser.stderr(), "same.txt"),
        1,
        "one line: {}",
        loser.stderr()
    );
    let winner = if refused == [0] { second } else { first };
    let read = |spec: &PeerSpec, name: &str| fs::read(spec.dir.join("Shared").join(name)).ok();
    assert_eq!(
        read(&p0, "same.txt").as_deref(),
        Some(first),
        "P0 keeps its own"
    );
    assert_eq!(
        read(&p1, "same.txt").as_deref(),
        Some(second),
        "P1 keeps its own"
    );
    assert_eq!(
        read(&p2, "same.txt").as_deref(),
        Some(winner),
        "one version"
    );
    for spec in [&p0, &p2] {
        assert_eq!(read(spec, "x.txt").as_deref(), Some(&x[..]));
    }
    for spec in [&p0, &p1, &p2] {
        assert_eq!(entries(&spec.dir), ["Shared"], "nothing partial left");
    }
    let log = parse_tracker(&tracker.stdout());
    assert_eq!(log.disconnects.len(), 3, "every real peer said goodbye");
    tracker.kill();
}

/// A raw peer that joins offering nothing and stays alive until dropped.
struct Holdout(std::net::TcpStream);

impl Holdout {
    fn join(port: u16) -> Holdout {
        let mut raw = Raw::connect(("127.0.0.1", port));
        raw.call("HELLO p2p/1 peer");
        assert!(raw.call("JOIN 9").starts_with("OK "));
        let stream = raw.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            loop {
                if (&raw.stream).write_all(b"PING\n").is_err() || raw.line().is_none() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        Holdout(stream)
    }
}

impl Drop for Holdout {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

#[test]
fn a_name_taken_by_other_content_of_the_same_size_is_refused_and_everyone_leaves() {
    one_name_two_contents("same-size", b"one", b"two", true);
}

#[test]
fn a_name_taken_by_content_of_another_size_is_refused_and_everyone_leaves() {
    one_name_two_contents("other-size", b"one", b"three!", true);
}

#[test]
fn two_copies_of_a_name_started_together_end_with_one_version_everywhere_else() {
    one_name_two_contents("together", b"one", b"two", false);
}

/// Writes 1 MiB of other bytes into the middle of `path`, keeping its size.
fn overwrite_middle(path: &std::path::Path) {
    let len = fs::metadata(path).unwrap().len();
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(len / 2 - MIB as u64 / 2)).unwrap();
    f.write_all(&content(666, MIB)).unwrap();
}

#[test]
fn a_seed_rewritten_in_place_is_given_up_before_another_piece_is_served() {
    let data = content(40, 8 * MIB);
    let s = seeded("rewritten", "doc.bin", data.clone());
    let mut raw = Raw::connect(s.addr.as_str());
    raw.call("HELLO p2p/1 peer");
    assert_eq!(raw.call("GET doc.bin 0 128"), "OK 65536");
    assert_eq!(raw.bytes(65536), data[..65536]);
    overwrite_middle(&s.spec.dir.join("Shared/doc.bin"));
    // Piece 0 itself is unchanged on disk, but the file is not what was hashed any more.
    assert_eq!(raw.call("GET doc.bin 0 128"), "ERR read_failed");
    assert_eq!(raw.call("GET doc.bin 0 128"), "ERR unknown_file");
    assert!(
        wait_until(LIMIT, || holders(s.port, "doc.bin").is_empty()),
        "the tracker was told"
    );
    let said = s.seeder.stderr();
    assert_eq!(lines_with(&said, "\"doc.bin\""), 1, "{said}");
    assert!(said.contains("no longer sharing \"doc.bin\""), "{said}");
    // A peer that comes now finds nobody holding it, and leaves without it.
    let taker = peer_folder(s.root.path(), "taker", None);
    let mut proc = start_peer(&taker, s.port, "0", s.root.path(), "taker");
    assert!(proc.wait(LIMIT).success(), "{}", proc.stderr());
    assert_eq!(proc.stdout(), "PEER 1 SHUTDOWN: HAS 0\n");
    assert_eq!(entries(&taker.dir), ["Shared"]);
    assert_eq!(entries(&taker.dir.join("Shared")), Vec::<String>::new());
    let log = parse_tracker(&s.tracker.stdout());
    assert_eq!(log.disconnects, [(1, vec![])], "the taker said goodbye");
}

#[test]
fn a_seed_rewritten_while_others_download_it_never_reaches_them_and_both_leave() {
    let root = TempDir::new("rewritten-live");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let data = content(41, 64 * MIB);
    let owner = peer_folder(root.path(), "owner", Some(("big.bin", data)));
    let original = root.path().join("big.orig");
    fs::copy(owner.dir.join("Shared/big.bin"), &original).unwrap();
    let taker = peer_folder(root.path(), "taker", None);
    let mut procs = vec![
        start_peer(&owner, port, "1", logs, "owner"),
        start_peer(&taker, port, "1", logs, "taker"),
    ];
    // As soon as the taker has something, the owner's file changes under it.
    assert!(wait_until(LIMIT, || tracker.stdout().contains("ACQUIRED")));
    overwrite_middle(&owner.dir.join("Shared/big.bin"));
    let has = all_leave(&mut procs);
    assert_eq!(
        has[0],
        ["big.bin"],
        "the owner's file is still in its Shared/"
    );
    // The taker got the file whole from before the change, or nothing at all.
    let copy = taker.dir.join("Shared/big.bin");
    match has[1].as_slice() {
        [] => assert!(!copy.exists()),
        [one] if one == "big.bin" => assert!(same_file(&copy, &original)),
        other => panic!("taker has {other:?}"),
    }
    assert_eq!(entries(&taker.dir), ["Shared"], "nothing partial left");
    assert_eq!(parse_tracker(&tracker.stdout()).disconnects.len(), 2);
    tracker.kill();
}

#[test]
fn a_big_seed_is_in_the_swarm_at_once_and_an_empty_peer_beside_it_gets_all_of_it() {
    let root = TempDir::new("big-seed");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    // 512 MiB: on this machine kind, longer to hash than the empty peer's MIN_ALIVE of 1 s.
    // Each MiB is one random MiB stamped with its index, so that no two pieces are alike.
    let seed = peer_folder(root.path(), "seed", None);
    let path = seed.dir.join("Shared/big.bin");
    {
        let block = content(42, MIB);
        let mut f = std::io::BufWriter::new(fs::File::create(&path).unwrap());
        for i in 0..512u64 {
            f.write_all(&i.to_le_bytes()).unwrap();
            f.write_all(&block[8..]).unwrap();
        }
        f.flush().unwrap();
    }
    let empty = peer_folder(root.path(), "empty", None);
    let mut procs = vec![
        start_peer(&seed, port, "1", logs, "seed"),
        start_peer(&empty, port, "1", logs, "empty"),
    ];
    let has = all_leave(&mut procs);
    assert_eq!(has, [["big.bin"], ["big.bin"]]);
    assert!(same_file(&empty.dir.join("Shared/big.bin"), &path));
    let log = parse_tracker(&tracker.stdout());
    let received: Vec<&Vec<String>> = log.disconnects.iter().map(|(_, r)| r).collect();
    assert!(
        received.contains(&&vec!["big.bin".to_string()]),
        "{received:?}"
    );
    tracker.kill();
}
