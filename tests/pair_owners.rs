//! Issue 12, cases 2 and 3, against real trackers and clients: only a session can change its
//! own registrations (a stranger's lines change nothing of anyone else's, and a false claim
//! about a file affects only its claimant), and a client that stops heartbeating is dropped
//! from every seeder list after its time-to-live, and comes back with its next heartbeat.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::fs;
use std::time::Duration;

/// A session's time-to-live is 15 s; SEEN between the trackers every 2 s; heartbeats every
/// 3 s: past this, a silent client must be gone and a living one back.
const TTL_AND_SLACK: Duration = Duration::from_secs(30);

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
fn a_stranger_changes_nothing_of_alices_registrations_and_a_false_claim_blocks_nothing() {
    let pair = Pair::start("owners");
    let mut alice = pair.client("alice", &[0, 1]);
    let files: Vec<(String, Vec<u8>)> = (0..5)
        .map(|k| (format!("f{k}"), content(100 + k, PIECE + 1000 * k as usize)))
        .collect();
    let hashes: Vec<String> = files
        .iter()
        .map(|(name, data)| share(&mut alice, name, data))
        .collect();
    // Step 1: today's way to take alice away, `QUIT <her address>`, is refused.
    let mut stranger = PairLink::connect(&pair.addr(0)).expect("tracker A answers");
    let reply = stranger.call(&format!("QUIT {}", alice.addr()));
    assert!(
        reply.as_deref().is_some_and(|r| r.starts_with("ERR")),
        "QUIT <alice's address> must be refused, got {reply:?}"
    );
    // Step 2: the stranger's own session, claiming alice's address, and a made-up token.
    let token = stranger.open(&alice.addr());
    let made_up = "0123456789abcdef0123456789abcdef";
    for ((name, data), hash) in files.iter().zip(&hashes) {
        let size = data.len();
        let bits = full_bitset(size.div_ceil(PIECE));
        for line in [
            format!("UNSEED {made_up} {hash} {size}"),
            format!("SEED {made_up} {hash} {name} {size} {bits}"),
        ] {
            let reply = stranger.call(&line);
            assert!(
                reply.as_deref().is_some_and(|r| r.starts_with("ERR")),
                "{line:?} with a made-up token: {reply:?}"
            );
        }
        // Its own token: removing what it never registered changes nothing of alice's; a
        // claim of the same hash with another size is a file of its own.
        stranger.call(&format!("UNSEED {token} {hash} {size}"));
        let claim = format!("SEED {token} {hash} {name} {} {bits}", size + 1);
        assert_eq!(stranger.call(&claim).as_deref(), Some("OK"), "{claim}");
    }
    let reply = stranger.call(&format!("QUIT {made_up}"));
    assert!(
        reply.as_deref().is_some_and(|r| r.starts_with("ERR")),
        "QUIT with a made-up token: {reply:?}"
    );
    // Step 3: alice is still listed for all five at both trackers, bob's get through B
    // completes, and alice's next share is taken.
    for ((_, data), hash) in files.iter().zip(&hashes) {
        pair.seeders_become(hash, data.len(), &[alice.addr()], LIMIT);
    }
    let mut bob = pair.client("bob", &[1, 0]);
    hand_over(&alice, &bob, "f3.mtorrent");
    bob.run("get f3.mtorrent f3.out", "downloading f3");
    bob.downloads_become(&["[S] f3 514.9 KiB".to_string()]);
    assert_eq!(fs::read(bob.path("f3.out")).unwrap(), files[3].1);
    let sixth = content(106, 3000);
    let hash6 = share(&mut alice, "f5", &sixth);
    pair.seeders_become(&hash6, sixth.len(), &[alice.addr()], LIMIT);
    // Step 4: at her restart alice registers all six again (the false claims still stand).
    alice.quit();
    alice.restart();
    for ((_, data), hash) in files.iter().zip(&hashes).skip(1) {
        let mut want = vec![alice.addr()];
        if hash == &hashes[3] {
            want.push(bob.addr());
        }
        pair.seeders_become(hash, data.len(), &want, LIMIT);
    }
    pair.seeders_become(&hashes[0], files[0].1.len(), &[alice.addr()], LIMIT);
    pair.seeders_become(&hash6, sixth.len(), &[alice.addr()], LIMIT);
    // The stranger's own claims are its own: listed under the size it claimed.
    pair.seeders_become(&hashes[0], files[0].1.len() + 1, &[alice.addr()], LIMIT);
    assert_eq!(
        stranger.call(&format!("QUIT {token}")).as_deref(),
        Some("OK")
    );
    pair.seeders_become(&hashes[0], files[0].1.len() + 1, &[], LIMIT);
    pair.seeders_become(&hashes[0], files[0].1.len(), &[alice.addr()], LIMIT);
    pair.records_agree(LIMIT);
    bob.quit();
    alice.quit();
}

#[test]
fn a_killed_client_is_dropped_after_its_time_to_live_and_a_frozen_one_comes_back() {
    let mut pair = Pair::start("ttl");
    let data = content(200, 2 * PIECE + 77);
    let mut alice = pair.client("alice", &[0, 1]);
    let mut carol = pair.client("carol", &[1, 0]);
    let hash = share(&mut alice, "f", &data);
    assert_eq!(share(&mut carol, "f", &data), hash, "same bytes, same file");
    let size = data.len();
    pair.seeders_become(&hash, size, &[alice.addr(), carol.addr()], LIMIT);
    // Step 1: alice is SIGKILLed while seeding: dropped after her time-to-live.
    alice.proc.kill();
    pair.seeders_become(&hash, size, &[carol.addr()], TTL_AND_SLACK);
    // Step 2: both trackers restart: alice stays forgotten, carol is live again.
    pair.kill_tracker(0);
    pair.kill_tracker(1);
    pair.start_tracker(1);
    pair.start_tracker(0);
    pair.seeders_become(&hash, size, &[carol.addr()], TTL_AND_SLACK);
    // Step 3: carol frozen is dropped too; bob's download waits at 0%.
    carol.proc.freeze();
    pair.seeders_become(&hash, size, &[], TTL_AND_SLACK);
    let mut bob = pair.client("bob", &[0, 1]);
    hand_over(&carol, &bob, "f.mtorrent");
    bob.run("get f.mtorrent f.out", "downloading f");
    bob.downloads_where("nothing fetched", |l| {
        l.len() == 1 && l[0].starts_with("[D] f 0% ")
    });
    // Step 4: carol resumes: her next heartbeat lists her again, and bob's get completes.
    carol.proc.thaw();
    bob.downloads_become(&["[S] f 1.0 MiB".to_string()]);
    assert_eq!(fs::read(bob.path("f.out")).unwrap(), data);
    pair.seeders_become(&hash, size, &[bob.addr(), carol.addr()], TTL_AND_SLACK);
    bob.quit();
    carol.quit();
}

/// A share given up (its file changed on disk) is not registered again when the client
/// switches trackers: a downloader must not be sent to a holder that serves nothing.
#[test]
fn a_share_given_up_stays_unregistered_after_a_switch() {
    let mut pair = Pair::start("owners-gone");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let data = content(210, 2 * PIECE);
    let hash = share(&mut alice, "v", &data);
    let size = data.len();
    pair.seeders_become(&hash, size, &[alice.addr()], TTL_AND_SLACK);
    fs::write(alice.path("v"), [&data[..], b"x"].concat()).unwrap();
    hand_over(&alice, &bob, "v.mtorrent");
    bob.run("get v.mtorrent v.out", "downloading v");
    // Serving it, alice finds it changed and gives it up.
    alice.downloads_where("v given up", |l| {
        l.len() == 1 && l[0].starts_with("[F] v: ")
    });
    pair.seeders_become(&hash, size, &[], TTL_AND_SLACK);
    pair.kill_tracker(0);
    let switched = wait_until(TTL_AND_SLACK, || {
        alice
            .proc
            .stdout()
            .contains(&format!("switching to {}", pair.addr(1)))
    });
    assert!(switched, "{}", alice.proc.stdout());
    // Registering everything again after the switch must leave v out.
    let listed = wait_until(Duration::from_secs(5), || {
        pair.seeders(1, &hash, size).is_some_and(|s| !s.is_empty())
    });
    assert!(!listed, "{:?}", pair.seeders(1, &hash, size));
    alice.quit();
    bob.quit();
}
