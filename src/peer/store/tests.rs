use super::serve::Refusal;
use super::*;
use crate::chunk::PIECE_SIZE;
use crate::hashing::sha1;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;

/// A store with no files of its own, in a fresh folder under the temp dir.
fn empty_store(tag: &str) -> (Store, PathBuf) {
    let root = std::env::temp_dir().join(format!("p2p-store-{tag}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(root.join("Shared")).unwrap();
    let store = Store::open(&root.join("Shared"), &root.join(".partial")).unwrap();
    (store, root)
}

/// A file of `pieces` full pieces whose bytes are piece `p`'s number, repeated.
fn content(pieces: u32) -> (FileMeta, Vec<Vec<u8>>) {
    let data: Vec<Vec<u8>> = (0..pieces)
        .map(|p| vec![p as u8; PIECE_SIZE as usize])
        .collect();
    let meta = FileMeta {
        name: "f".into(),
        geometry: Geometry::new(u64::from(pieces) * PIECE_SIZE).unwrap(),
        piece_hashes: data.iter().map(|d| sha1(d)).collect(),
    };
    (meta, data)
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

#[test]
fn a_rejoin_reports_again_what_was_given_up() {
    let (store, root) = empty_store("rejoin");
    let (meta, _) = content(4);
    store
        .add_download(FileMeta {
            name: "gone".into(),
            ..meta.clone()
        })
        .unwrap();
    store
        .add_download(FileMeta {
            name: "kept".into(),
            ..meta
        })
        .unwrap();
    store.give_up("gone", &"test");
    assert_eq!(store.take_drops(), ["gone"]);
    store.report_all_again();
    assert_eq!(store.take_drops(), ["gone"], "the new tracker hears it too");
    let _ = fs::remove_dir_all(root);
}

#[test]
fn a_download_given_up_says_why_and_gives_its_space_back_though_a_worker_holds_it() {
    let (store, root) = empty_store("space");
    let (meta, data) = content(4);
    store.add_download(meta).unwrap();
    let held = store.lock().files.get("f").map(|l| l.file.clone()).unwrap();
    held.write_all_at(&data[0], 0).unwrap();
    let partial = root.join(".partial/f");
    assert!(partial.exists());
    store.give_up("f", &"disk full");
    assert_eq!(store.failure("f").as_deref(), Some("disk full"));
    assert!(!partial.exists(), "partial deleted");
    assert_eq!(
        held.metadata().unwrap().len(),
        0,
        "and emptied: no space held"
    );
    // Forgotten, it may be fetched again from the start.
    store.discard("f");
    assert!(!store.knows("f"));
    assert_eq!(store.failure("f"), None);
    let (meta, _) = content(4);
    store.add_download(meta).unwrap();
    assert!(partial.exists());
    store.discard("f");
    assert!(
        !partial.exists(),
        "a download in progress discarded leaves nothing"
    );
    let _ = fs::remove_dir_all(root);
}

#[test]
fn a_run_takes_the_free_pieces_right_after_the_first_that_the_remote_holds() {
    let (store, root) = empty_store("run");
    let (meta, _) = content(8);
    store.add_download(meta).unwrap();
    let mut all_but_5 = Bitset::full(8);
    all_but_5.clear(5);
    let mut only_1 = Bitset::new(8);
    only_1.set(1);
    store.set_holders("f", vec![(addr(1), all_but_5), (addr(2), only_1)]);
    let first = store.pick_rarest(addr(2), &[]).unwrap();
    assert_eq!(first.piece, 1);
    let pieces = |run: &[Job]| run.iter().map(|j| j.piece).collect::<Vec<_>>();
    let none: [u32; 0] = [];
    let two = store.extend_run(addr(1), &first, 2);
    assert_eq!(pieces(&two), [2, 3], "no more than asked for");
    assert_eq!(
        pieces(&store.extend_run(addr(2), &two[1], 10)),
        none,
        "2 lacks 4"
    );
    let rest = store.extend_run(addr(1), &two[1], 10);
    assert_eq!(pieces(&rest), [4], "up to the piece the remote lacks");
    assert_eq!(
        pieces(&store.extend_run(addr(1), &first, 10)),
        none,
        "2 is taken"
    );
    store.release(&two[1]);
    assert_eq!(
        pieces(&store.extend_run(addr(1), &two[0], 10)),
        [3],
        "a released piece again, up to the piece another request has"
    );
    let _ = fs::remove_dir_all(root);
}

#[test]
fn delivered_pieces_are_checked_written_once_reported_and_the_last_moves_the_file() {
    let (store, root) = empty_store("deliver");
    let (meta, data) = content(3);
    store.add_download(meta).unwrap();
    let holders = vec![(addr(1), Bitset::full(3)), (addr(2), Bitset::full(3))];
    assert_eq!(store.set_holders("f", holders).len(), 2);
    let jobs: Vec<Job> = (0..3)
        .map(|_| store.pick_rarest(addr(1), &[]).unwrap())
        .collect();
    let piece = |job: &Job| data[job.piece as usize].as_slice();
    // Bad bytes: a strike against the sender, nothing written, the piece handed out again.
    let wrong = vec![0xEE; PIECE_SIZE as usize];
    assert_eq!(
        store.deliver(addr(2), &jobs[0], &wrong),
        Delivery::BadData { banned: false }
    );
    let again = store.pick_rarest(addr(2), &[]).unwrap();
    assert_eq!(
        again.piece, jobs[0].piece,
        "a released piece is handed out again"
    );
    assert_eq!(
        store.deliver(addr(1), &jobs[0], piece(&jobs[0])),
        Delivery::Stored
    );
    assert_eq!(
        store.deliver(addr(2), &again, piece(&again)),
        Delivery::Duplicate
    );
    assert_eq!(
        store.deliver(addr(1), &jobs[1], piece(&jobs[1])),
        Delivery::Stored
    );
    assert!(
        !root.join("Shared/f").exists(),
        "not in place before the last piece"
    );
    assert_eq!(
        store.deliver(addr(1), &jobs[2], piece(&jobs[2])),
        Delivery::Stored
    );
    assert_eq!(fs::read(root.join("Shared/f")).unwrap(), data.concat());
    let reported: Vec<u32> = store
        .take_reports()
        .into_iter()
        .flat_map(|(_, p)| p)
        .collect();
    assert_eq!(reported, [0, 1, 2], "each piece reported once");
    assert_eq!(store.shared_names(), ["f"]);
    let mut read = Vec::new();
    store.read_chunks("f", 0, 128, &mut read).unwrap();
    assert_eq!(read, data[0]);
    assert_eq!(
        store.read_chunks("f", 0, 2000, &mut read),
        Err(Refusal::TooManyChunks)
    );
    assert_eq!(
        store.read_chunks("f", 384, 1, &mut read),
        Err(Refusal::BadChunkRange)
    );
    assert_eq!(
        store.read_chunks("g", 0, 1, &mut read),
        Err(Refusal::UnknownFile)
    );
    // Rewritten in place: given up, not served.
    fs::write(root.join("Shared/f"), b"other").unwrap();
    assert_eq!(
        store.read_chunks("f", 0, 1, &mut read),
        Err(Refusal::ReadFailed)
    );
    assert_eq!(
        store.read_chunks("f", 0, 1, &mut read),
        Err(Refusal::UnknownFile)
    );
    let _ = fs::remove_dir_all(root);
}

/// A remote listed as holding every piece of "f" that refuses any `GET` touching piece
/// `missing` and serves the rest truly; returns its address.
fn holder_lacking(data: Vec<Vec<u8>>, missing: u64) -> SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut out = stream.try_clone().unwrap();
        let mut line = String::new();
        let mut reader = BufReader::new(stream);
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let words: Vec<u64> = line
                .split(' ')
                .filter_map(|w| w.trim().parse().ok())
                .collect();
            let reply = match words.as_slice() {
                _ if line.starts_with("HELLO") => b"OK p2p/1 peer\n".to_vec(),
                [first, count] if (first / 128..(first + count) / 128).contains(&missing) => {
                    b"ERR not_held\n".to_vec()
                }
                [first, count] => {
                    let pieces = (first / 128..(first + count) / 128).map(|p| &data[p as usize]);
                    let body: Vec<u8> = pieces.flatten().copied().collect();
                    [format!("OK {}\n", body.len()).into_bytes(), body].concat()
                }
                _ => b"ERR bad_request\n".to_vec(),
            };
            line.clear();
            if out.write_all(&reply).is_err() {
                return;
            }
        }
    });
    at
}

#[test]
fn a_run_refused_for_one_missing_piece_costs_only_that_piece() {
    let (store, root) = empty_store("refused-run");
    let (meta, data) = content(8);
    store.add_download(meta).unwrap();
    let remote = holder_lacking(data, 2);
    store.set_holders("f", vec![(remote, Bitset::full(8))]);
    let store = Arc::new(store);
    crate::peer::download::spawn(store.clone(), remote);
    let have = || {
        store
            .lock()
            .files
            .get("f")
            .map_or(0, |l| l.have.iter_ones().count())
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while have() < 7 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(have(), 7, "every piece but the missing one");
    let _ = fs::remove_dir_all(root);
}
