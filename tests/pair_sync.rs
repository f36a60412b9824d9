//! Issue 12, case 1, against real trackers and clients: a change made while the twin is
//! frozen or down reaches it once it is back, and a restarting tracker merges rather than
//! overwrites, so no removal is undone and no share is lost, in either order of restarts.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::fs;
use std::thread;
use std::time::Duration;

/// How long a restarted tracker and its clients may take to agree again.
const SETTLE: Duration = Duration::from_secs(30);

/// Shares `name` (bytes `data`) from `client`; returns the `.mtorrent`'s info hash.
fn share(client: &mut Client, name: &str, data: &[u8]) -> String {
    fs::write(client.path(name), data).unwrap();
    client.run(
        &format!("share {name} {name}.mtorrent"),
        &format!("shared {name}"),
    );
    info_hash(&fs::read_to_string(client.path(&format!("{name}.mtorrent"))).unwrap())
}

#[test]
fn a_removal_made_while_the_twin_is_frozen_stays_removed_on_both_and_after_a_restart() {
    let mut pair = Pair::start("frozen-twin");
    let (one, two) = (content(301, PIECE + 5), content(302, 2 * PIECE));
    let mut seeder = pair.client("seeder", &[0, 1]);
    let h1 = share(&mut seeder, "f1", &one);
    let h2 = share(&mut seeder, "f2", &two);
    let mut taker = pair.client("taker", &[1, 0]);
    hand_over(&seeder, &taker, "f2.mtorrent");
    pair.seeders_become(&h2, two.len(), &[seeder.addr()], LIMIT);
    // Step 1: A restarts, so that its next change goes to B on a new connection; B is
    // frozen past the old 2 s forwarding time-out while f2 is removed through A.
    pair.kill_tracker(0);
    pair.start_tracker(0);
    pair.seeders_become(&h2, two.len(), &[seeder.addr()], LIMIT);
    pair.freeze_tracker(1);
    seeder.run("remove f2.mtorrent", "removed f2");
    thread::sleep(Duration::from_secs(4));
    pair.thaw_tracker(1);
    // Step 2: B hears of the removal; f1 is still there; a client on B can get f1.
    pair.seeders_become(&h2, two.len(), &[], SETTLE);
    pair.seeders_become(&h1, one.len(), &[seeder.addr()], SETTLE);
    hand_over(&seeder, &taker, "f1.mtorrent");
    taker.run("get f1.mtorrent f1.out", "downloading f1");
    taker.downloads_become(&["[S] f1 512.0 KiB".to_string()]);
    assert_eq!(fs::read(taker.path("f1.out")).unwrap(), one);
    // Step 3: A restarts and merges what B holds: f2 does not come back.
    pair.kill_tracker(0);
    pair.start_tracker(0);
    pair.seeders_become(&h2, two.len(), &[], SETTLE);
    let mut want = vec![seeder.addr(), taker.addr()];
    want.sort();
    pair.seeders_become(&h1, one.len(), &want, SETTLE);
    pair.records_agree(SETTLE);
    taker.quit();
    seeder.quit();
}

#[test]
fn staggered_restarts_keep_a_share_made_and_a_removal_made_while_the_twin_was_down() {
    let mut pair = Pair::start("staggered");
    let (one, three) = (content(311, PIECE + 9), content(313, 3 * PIECE - 1));
    let mut seeder = pair.client("seeder", &[0, 1]);
    let h1 = share(&mut seeder, "f1", &one);
    pair.seeders_become(&h1, one.len(), &[seeder.addr()], LIMIT);
    // Step 1: B dies; through A, f3 is shared and f1 removed; then A dies.
    pair.kill_tracker(1);
    let h3 = share(&mut seeder, "f3", &three);
    seeder.run("remove f1.mtorrent", "removed f1");
    let mut kept = String::new();
    assert!(
        wait_until(LIMIT, || {
            kept = fs::read_to_string(pair.state_file(0)).unwrap_or_default();
            // Changes are appended in batches: wait for both before the kill.
            kept.contains(&h3)
                && kept
                    .lines()
                    .any(|l| l.contains(&h1) && l.contains(" gone "))
        }),
        "A's state file never held f3 and f1's removal: {kept:?}"
    );
    pair.kill_tracker(0);
    // Step 2: B starts first, then A: both list f3 and not f1, and the seeder (which only
    // seeds) is listed again.
    pair.start_tracker(1);
    pair.start_tracker(0);
    pair.seeders_become(&h3, three.len(), &[seeder.addr()], SETTLE);
    pair.seeders_become(&h1, one.len(), &[], SETTLE);
    pair.records_agree(SETTLE);
    // Step 3: a client that knows only B gets f3 byte for byte.
    let mut late = pair.client("late", &[1]);
    hand_over(&seeder, &late, "f3.mtorrent");
    late.run("get f3.mtorrent f3.out", "downloading f3");
    late.downloads_become(&["[S] f3 1.5 MiB".to_string()]);
    assert_eq!(fs::read(late.path("f3.out")).unwrap(), three);
    late.quit();
    seeder.quit();
}

#[test]
fn a_removal_no_tracker_took_is_sent_once_one_answers() {
    let mut pair = Pair::start("removal-later");
    let (one, two) = (content(321, PIECE + 3), content(322, 7));
    let mut seeder = pair.client("seeder", &[0, 1]);
    let h1 = share(&mut seeder, "f1", &one);
    let h2 = share(&mut seeder, "f2", &two);
    pair.seeders_become(&h1, one.len(), &[seeder.addr()], LIMIT);
    pair.kill_tracker(0);
    pair.kill_tracker(1);
    seeder.run("remove f1.mtorrent", "removed f1");
    pair.start_tracker(1);
    pair.start_tracker(0);
    // The session is alive again (its heartbeats reached the trackers: f2 is listed), and
    // the removal has reached both.
    pair.seeders_become(&h2, two.len(), &[seeder.addr()], SETTLE);
    pair.seeders_become(&h1, one.len(), &[], SETTLE);
    seeder.quit();
}
