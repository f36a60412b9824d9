//! A saturated machine must never look like a dead peer: a swarm pinned to one core, every
//! peer seeding one large file and fetching all the others, ends with every file everywhere,
//! every peer leaving under the one id it joined with, and no peer ever dropped.

mod common;

use common::*;
use std::fs;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(600);
const PEERS: usize = 16;
const SIZE: usize = 16 * 1024 * 1024;

/// Runs `BIN args` pinned to CPU 0, so that the tracker and every peer share one core.
fn pinned(args: &[&str], dir: &std::path::Path, logs: &std::path::Path, name: &str) -> Proc {
    let mut all = vec!["-c", "0", BIN];
    all.extend_from_slice(args);
    Proc::spawn("taskset", &all, dir, logs, name)
}

#[test]
fn sixteen_peers_on_one_core_all_finish_and_none_is_dropped() {
    let root = TempDir::new("load");
    let logs = root.path();
    let tracker_dir = root.path().join("tracker");
    fs::create_dir_all(&tracker_dir).unwrap();
    let mut tracker = pinned(&["tracker"], &tracker_dir, logs, "tracker");
    let port_file = tracker_dir.join("port.txt");
    let mut port = String::new();
    assert!(wait_until(Duration::from_secs(30), || {
        port = fs::read_to_string(&port_file).unwrap_or_default();
        port.ends_with('\n')
    }));
    let port = port.trim().to_string();
    let specs: Vec<PeerSpec> = (0..PEERS)
        .map(|i| {
            let data = content(100 + i as u64, SIZE);
            peer_folder(
                root.path(),
                &format!("p{i}"),
                Some((&format!("f{i}.bin"), data)),
            )
        })
        .collect();
    let mut procs: Vec<Proc> = specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let args = ["peer", "127.0.0.1", port.as_str(), "1"];
            pinned(&args, &s.dir, logs, &format!("p{i}"))
        })
        .collect();
    for p in &mut procs {
        p.wait(LIMIT);
    }
    let dropped = tracker.stderr();
    assert!(
        !dropped.contains("dropped"),
        "a live peer was dropped: {dropped}"
    );
    for (i, p) in procs.iter().enumerate() {
        let said = p.stderr();
        assert!(
            !said.contains("lost the tracker") && !said.contains("rejoined"),
            "peer {i}: {said}"
        );
    }
    check_complete_swarm(
        &specs,
        &mut procs,
        &tracker.stdout(),
        Duration::from_secs(1),
    );
    tracker.kill();
}
