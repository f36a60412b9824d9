//! The grading contract, end to end: a real tracker and real peers on 127.0.0.1, each in
//! its own folder, and every printed line and every byte checked.

mod common;

use common::*;
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(60);

/// Runs one swarm of peers, each starting with one (name, size) file, all with MIN_ALIVE
/// `alive` seconds, and checks it completely.
fn swarm(tag: &str, files: &[(&str, usize)], alive: u64) {
    let root = TempDir::new(tag);
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let (specs, mut procs) = start_peers(root.path(), "peer", files, 1, port, &alive.to_string());
    for p in &mut procs {
        p.wait(LIMIT);
    }
    let out = tracker.stdout();
    check_complete_swarm(&specs, &mut procs, &out, Duration::from_secs(alive));
    let ids: Vec<u64> = parse_tracker(&out)
        .connects
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        ids,
        (0..files.len() as u64).collect::<Vec<_>>(),
        "ids count from 0"
    );
    assert!(
        tracker.try_status().is_none(),
        "the tracker runs until killed"
    );
    tracker.kill();
}

#[test]
fn two_peers_exchange_their_files() {
    swarm("two", &[("a.txt", 513), ("b.bin", 2 * 1024 * 1024 + 3)], 1);
}

#[test]
fn four_peers_exchange_files_of_edge_sizes() {
    swarm(
        "four",
        &[
            ("zero", 0),
            ("one", 1),
            ("full-chunk", 512),
            ("big", 3 * 1024 * 1024),
        ],
        1,
    );
}

#[test]
fn eight_peers_exchange_files_from_empty_to_megabytes() {
    let files = [
        ("f0", 0),
        ("f1", 1),
        ("f511", 511),
        ("f512", 512),
        ("f513", 513),
        ("f3m", 3 * 1024 * 1024 + 5),
        ("f1m", 1024 * 1024),
        ("f200k", 200_000),
    ];
    swarm("eight", &files, 1);
}

#[test]
fn names_with_spaces_dots_and_utf8_travel_intact() {
    swarm(
        "names",
        &[
            ("my file.txt", 700),
            ("naïve ünïcödé файл.bin", 70_000),
            ("foo... bar", 1),
        ],
        1,
    );
}
