//! Issue 12's randomized convergence test: two trackers and three clients, a seeded random
//! schedule of a few hundred operations (share, remove, quit, restart or kill a client;
//! freeze, resume, kill, restart a tracker, restarts staggered), then both trackers' records
//! compared line by line, each file's seeders compared with what the schedule left, and every
//! file still shared fetched byte for byte by a fresh client. `P2P_SEED` replays a schedule,
//! `P2P_OPS` sets its length; the seed is printed when the test fails.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::collections::BTreeSet;
use std::fs;
use std::time::{Duration, Instant};

const CLIENTS: usize = 3;
const FILES_EACH: usize = 5;
/// Tracker events cost the clients up to 2 s each (their failover), so they are few.
const TRACKER_EVENTS: usize = 20;
const SETTLE: Duration = Duration::from_secs(40);

/// splitmix64: small, and the same schedule for the same seed everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// One of `items`, if any.
    fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// Prints the seed when the test fails, whatever fails.
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("pair_converge failed with P2P_SEED={}", self.0);
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Tracker {
    Up,
    Frozen,
    Dead,
}

/// A client and what the schedule says it shares.
struct Peer {
    client: Client,
    running: bool,
    files: Vec<(String, Vec<u8>)>,
    shared: BTreeSet<usize>,
    /// Each file's `.mtorrent` text, once it was shared.
    mtorrents: Vec<Option<String>>,
}

impl Peer {
    fn share(&mut self, k: usize) {
        let name = self.files[k].0.clone();
        self.client.run(
            &format!("share {name} {name}.mtorrent"),
            &format!("shared {name}"),
        );
        let text = fs::read_to_string(self.client.path(&format!("{name}.mtorrent"))).unwrap();
        self.mtorrents[k] = Some(text);
        self.shared.insert(k);
    }

    fn remove(&mut self, k: usize) {
        let name = &self.files[k].0;
        self.client.run(
            &format!("remove {name}.mtorrent"),
            &format!("removed {name}"),
        );
        self.shared.remove(&k);
    }
}

#[test]
fn the_pair_converges_after_a_random_schedule_and_every_shared_file_is_fetched_whole() {
    let seed = std::env::var("P2P_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    let ops: usize = std::env::var("P2P_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let _report = SeedOnFailure(seed);
    eprintln!("pair_converge: P2P_SEED={seed} P2P_OPS={ops}");
    let mut rng = Rng(seed);
    let began = Instant::now();
    let mut pair = Pair::start("converge");
    let mut peers: Vec<Peer> = (0..CLIENTS)
        .map(|i| {
            let knows = if i % 2 == 0 { [0, 1] } else { [1, 0] };
            let client = pair.client(&format!("c{i}"), &knows);
            let files: Vec<(String, Vec<u8>)> = (0..FILES_EACH)
                .map(|k| {
                    let len = 1 + rng.below(PIECE + PIECE / 2);
                    (
                        format!("c{i}f{k}"),
                        content(seed ^ (i * 16 + k) as u64, len),
                    )
                })
                .collect();
            for (name, data) in &files {
                fs::write(client.path(name), data).unwrap();
            }
            Peer {
                client,
                running: true,
                files,
                shared: BTreeSet::new(),
                mtorrents: vec![None; FILES_EACH],
            }
        })
        .collect();
    let mut trackers = [Tracker::Up; 2];
    let mut events = 0;
    let mut log = Vec::new();
    for _ in 0..ops {
        let roll = rng.below(100);
        let i = rng.below(CLIENTS);
        let p = &mut peers[i];
        let unshared: Vec<usize> = (0..FILES_EACH).filter(|k| !p.shared.contains(k)).collect();
        let shared: Vec<usize> = p.shared.iter().copied().collect();
        match roll {
            0..=39 if p.running => {
                if let Some(k) = rng.pick(&unshared) {
                    log.push(format!("c{i} share f{k}"));
                    p.share(k);
                }
            }
            40..=64 if p.running => {
                if let Some(k) = rng.pick(&shared) {
                    log.push(format!("c{i} remove f{k}"));
                    p.remove(k);
                }
            }
            65..=70 if p.running => {
                log.push(format!("c{i} quit"));
                p.client.quit();
                p.running = false;
            }
            71..=76 => {
                log.push(format!("c{i} kill -9 and restart"));
                p.client.restart();
                p.running = true;
            }
            77..=89 if events < TRACKER_EVENTS => {
                events += 1;
                let t = rng.below(2);
                let step = tracker_event(&mut pair, &mut trackers, t, &mut rng);
                log.push(step);
            }
            _ if !p.running => {
                log.push(format!("c{i} start"));
                p.client.restart();
                p.running = true;
            }
            _ => {}
        }
    }
    let schedule_took = began.elapsed();
    // Everything back: trackers resumed or started, clients started.
    for (t, state) in trackers.iter().enumerate() {
        match state {
            Tracker::Frozen => pair.thaw_tracker(t),
            Tracker::Dead => pair.start_tracker(t),
            Tracker::Up => {}
        }
    }
    for p in peers.iter_mut().filter(|p| !p.running) {
        p.client.restart();
        p.running = true;
    }
    let schedule = log.join("; ");
    // Each file is listed at both trackers by its client exactly when the schedule left it
    // shared.
    let mut wrong = Vec::new();
    let settled = wait_until(SETTLE, || {
        wrong.clear();
        for p in &peers {
            for (k, text) in p.mtorrents.iter().enumerate() {
                let Some(text) = text else { continue };
                let (hash, size) = (info_hash(text), p.files[k].1.len());
                let want: Vec<String> = if p.shared.contains(&k) {
                    vec![p.client.addr()]
                } else {
                    vec![]
                };
                for t in 0..2 {
                    let got = pair.seeders(t, &hash, size);
                    if got.as_ref() != Some(&want) {
                        wrong.push(format!(
                            "{} at tracker {t}: {got:?}, wanted {want:?}",
                            p.files[k].0
                        ));
                    }
                }
            }
        }
        wrong.is_empty()
    });
    assert!(
        settled,
        "seeders never matched the schedule: {wrong:#?}\nschedule: {schedule}"
    );
    let records = pair.records_agree(SETTLE);
    // A fresh client fetches every file still shared, byte for byte.
    let mut fresh = pair.client("fresh", &[1, 0]);
    let mut want = Vec::new();
    for p in &peers {
        for &k in &p.shared {
            let (name, data) = &p.files[k];
            let text = p.mtorrents[k]
                .as_ref()
                .expect("shared files have a .mtorrent");
            fs::write(fresh.path(&format!("{name}.mtorrent")), text).unwrap();
            fresh.run(
                &format!("get {name}.mtorrent {name}.out"),
                &format!("downloading {name}"),
            );
            want.push((name.clone(), data));
        }
    }
    // Each is complete and shared: `[S] name size`.
    let names: Vec<String> = want.iter().map(|(n, _)| format!("[S] {n} ")).collect();
    if !names.is_empty() {
        fresh.downloads_where("every file complete", |lines| {
            lines.len() == names.len() && lines.iter().zip(&names).all(|(l, n)| l.starts_with(n))
        });
    }
    for (name, data) in &want {
        let got = fs::read(fresh.path(&format!("{name}.out"))).unwrap_or_default();
        assert!(&got == *data, "{name} differs; schedule: {schedule}");
    }
    eprintln!(
        "pair_converge: {ops} operations ({events} on trackers) in {schedule_took:?}, {} records agreed, {} files fetched, {:?} in all",
        records.len(),
        want.len(),
        began.elapsed()
    );
    fresh.quit();
    for p in &mut peers {
        p.client.quit();
    }
}

/// One freeze, resume, kill, start or staggered restart of tracker `t`, never leaving both
/// trackers away for longer than a restart; returns what it did.
fn tracker_event(pair: &mut Pair, state: &mut [Tracker; 2], t: usize, rng: &mut Rng) -> String {
    let other = 1 - t;
    match (state[t], state[other]) {
        (Tracker::Frozen, _) => {
            pair.thaw_tracker(t);
            state[t] = Tracker::Up;
            format!("resume tracker {t}")
        }
        (Tracker::Dead, _) => {
            pair.start_tracker(t);
            state[t] = Tracker::Up;
            format!("start tracker {t}")
        }
        (Tracker::Up, Tracker::Up) if rng.below(2) == 0 => {
            pair.freeze_tracker(t);
            state[t] = Tracker::Frozen;
            format!("freeze tracker {t}")
        }
        (Tracker::Up, Tracker::Up) => {
            pair.kill_tracker(t);
            state[t] = Tracker::Dead;
            format!("kill tracker {t}")
        }
        (Tracker::Up, Tracker::Dead) => {
            // Staggered: t dies too, the other starts first, then t.
            pair.kill_tracker(t);
            pair.start_tracker(other);
            pair.start_tracker(t);
            state[other] = Tracker::Up;
            format!("kill tracker {t}, start tracker {other}, start tracker {t}")
        }
        (Tracker::Up, Tracker::Frozen) => {
            pair.thaw_tracker(other);
            state[other] = Tracker::Up;
            format!("resume tracker {other}")
        }
    }
}
