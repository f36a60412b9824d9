//! Swarm set-ups: a tracker, peer folders with their files, running peers, a seeded peer
//! ready to serve, and the end-to-end check of a swarm in which every peer met every other.

use super::{
    BIN, Proc, TempDir, chunks_of, content, entries, holder_addr, holders, parse_shutdown,
    parse_tracker, wait_until,
};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Starts the grading tracker in `dir` and returns it with its port (read from port.txt).
pub fn start_tracker(dir: &Path, logs: &Path) -> (Proc, u16) {
    fs::create_dir_all(dir).expect("tracker dir");
    let tracker = Proc::spawn(BIN, &["tracker"], dir, logs, "tracker");
    let port_file = dir.join("port.txt");
    let mut port = None;
    let found = wait_until(Duration::from_secs(10), || {
        port = fs::read_to_string(&port_file).ok().and_then(|s| {
            let digits = s.strip_suffix('\n')?;
            digits.parse::<u16>().ok()
        });
        port.is_some()
    });
    assert!(found, "tracker wrote no valid port.txt");
    (tracker, port.expect("port"))
}

/// A tracker and one real peer that keeps serving `name` (MIN_ALIVE 600 s), ready: every
/// piece of it hashed and shown to others.
pub struct Seeded {
    pub root: TempDir,
    pub tracker: Proc,
    pub port: u16,
    pub seeder: Proc,
    pub spec: PeerSpec,
    /// Where the seeder serves chunks.
    pub addr: String,
}

pub fn seeded(tag: &str, name: &str, data: Vec<u8>) -> Seeded {
    let root = TempDir::new(tag);
    let (tracker, port) = start_tracker(&root.path().join("tracker"), root.path());
    let pieces = data.len().div_ceil(65536);
    let spec = peer_folder(root.path(), "seeder", Some((name, data)));
    let seeder = start_peer(&spec, port, "600", root.path(), "seeder");
    let full = p2p::chunk::Bitset::full(pieces).to_hex();
    let hashed = wait_until(Duration::from_secs(60), || {
        holders(port, name)
            .first()
            .is_some_and(|h| h.ends_with(&format!(" {full}")))
    });
    assert!(hashed, "the seeder hashed its file: {}", seeder.stderr());
    let addr = holder_addr(port, name);
    Seeded {
        root,
        tracker,
        port,
        seeder,
        spec,
        addr,
    }
}

/// One peer of a test swarm: its folder and the file it starts with.
pub struct PeerSpec {
    pub dir: PathBuf,
    pub file: Option<(String, Vec<u8>)>,
}

/// Makes `<root>/<tag>/Shared` holding `file`.
pub fn peer_folder(root: &Path, tag: &str, file: Option<(&str, Vec<u8>)>) -> PeerSpec {
    let dir = root.join(tag);
    fs::create_dir_all(dir.join("Shared")).expect("Shared");
    let file = file.map(|(name, data)| {
        fs::write(dir.join("Shared").join(name), &data).expect("write shared file");
        (name.to_string(), data)
    });
    PeerSpec { dir, file }
}

pub fn start_peer(spec: &PeerSpec, port: u16, alive: &str, logs: &Path, name: &str) -> Proc {
    let port = port.to_string();
    Proc::spawn(
        BIN,
        &["peer", "127.0.0.1", &port, alive],
        &spec.dir,
        logs,
        name,
    )
}

/// Makes one folder per `(name, size)` under `root` (peer `tag0`, `tag1`, ...), the file's
/// bytes seeded by `seed + i`, and starts a peer in each with MIN_ALIVE `alive`.
pub fn start_peers(
    root: &Path,
    tag: &str,
    files: &[(&str, usize)],
    seed: u64,
    port: u16,
    alive: &str,
) -> (Vec<PeerSpec>, Vec<Proc>) {
    let specs: Vec<PeerSpec> = files
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let data = content(seed + i as u64, *size);
            peer_folder(root, &format!("{tag}{i}"), Some((name, data)))
        })
        .collect();
    let procs = specs
        .iter()
        .enumerate()
        .map(|(i, s)| start_peer(s, port, alive, root, &format!("{tag}{i}")))
        .collect();
    (specs, procs)
}

/// Checks a swarm in which every peer met every other: every file everywhere, byte for
/// byte; the tracker's and every peer's output exact and consistent. `peers[i]` ran as
/// `procs[i]` with MIN_ALIVE `alive`.
pub fn check_complete_swarm(
    peers: &[PeerSpec],
    procs: &mut [Proc],
    tracker_out: &str,
    alive: Duration,
) {
    let log = parse_tracker(tracker_out);
    let all: BTreeMap<&str, &[u8]> = peers
        .iter()
        .filter_map(|p| p.file.as_ref())
        .map(|(n, d)| (n.as_str(), d.as_slice()))
        .collect();
    let all_names: Vec<String> = all.keys().map(|s| s.to_string()).collect();
    assert_eq!(log.connects.len(), peers.len(), "one CONNECT per peer");
    let ids: Vec<u64> = log.connects.iter().map(|(id, _)| *id).collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids grow in connection order: {ids:?}"
    );
    for (spec, proc) in peers.iter().zip(procs.iter_mut()) {
        let status = proc.wait(Duration::from_secs(60));
        assert!(status.success(), "peer failed: {}", proc.stderr());
        let lived = proc.lifetime().expect("exited");
        assert!(lived >= alive, "peer lived {lived:?} < MIN_ALIVE {alive:?}");
        let (id, has) = parse_shutdown(&proc.stdout());
        // Its CONNECT lists exactly its own file, with the right chunk count.
        let (_, offered) = log
            .connects
            .iter()
            .find(|(i, _)| *i == id)
            .expect("CONNECT for SHUTDOWN id");
        let expected: Vec<(String, u64)> = spec
            .file
            .iter()
            .map(|(n, d)| (n.clone(), chunks_of(d.len())))
            .collect();
        assert_eq!(offered, &expected, "CONNECT of peer {id}");
        assert_eq!(has, all_names, "SHUTDOWN of peer {id}");
        // RECEIVED: every file but its own, each chunk ACQUIRED exactly once, in range.
        let own: Vec<&String> = spec.file.iter().map(|(n, _)| n).collect();
        let received: Vec<String> = all_names
            .iter()
            .filter(|n| !own.contains(n))
            .cloned()
            .collect();
        let (_, got) = log
            .disconnects
            .iter()
            .find(|(i, _)| *i == id)
            .expect("DISCONNECT");
        assert_eq!(got, &received, "DISCONNECT of peer {id}");
        for name in &all_names {
            let total = chunks_of(all[name.as_str()].len());
            let lines = log
                .acquired
                .get(&(id, name.clone()))
                .cloned()
                .unwrap_or_default();
            if own.contains(&name) {
                assert!(lines.is_empty(), "peer {id} ACQUIRED its own file {name}");
                continue;
            }
            let mut xs: Vec<u64> = lines
                .iter()
                .map(|&(x, t)| {
                    assert_eq!(t, total, "total chunks of {name}");
                    x
                })
                .collect();
            xs.sort_unstable();
            assert_eq!(
                xs,
                (1..=total).collect::<Vec<_>>(),
                "peer {id} chunks of {name}"
            );
        }
        if let Some(&last) = log.last_acquired_line.get(&id) {
            assert!(
                last < log.disconnect_line[&id],
                "peer {id} ACQUIRED after DISCONNECT"
            );
        }
        // Shared/ holds exactly every file, byte for byte, and nothing partial is left.
        let shared = spec.dir.join("Shared");
        assert_eq!(entries(&shared), all_names, "Shared/ of peer {id}");
        for (name, data) in &all {
            let got = fs::read(shared.join(name)).expect("read copy");
            assert!(got == *data, "peer {id}: {name} differs");
        }
        assert_eq!(
            entries(&spec.dir),
            ["Shared"],
            "peer {id} left files beside Shared/"
        );
    }
    let set: BTreeSet<u64> = log.disconnects.iter().map(|(i, _)| *i).collect();
    assert_eq!(set.len(), peers.len(), "one DISCONNECT per peer");
}
