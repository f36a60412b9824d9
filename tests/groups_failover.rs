//! Accounts and groups through tracker failover and restarts (issue 14): a tracker killed in
//! the middle of the group flow, the flow going on through the other (join, accept, upload,
//! download byte for byte), the killed one restarted and the other killed, then both killed
//! and started again, after which users, groups, members and files are all still there.
//! Real trackers and clients through stdin; design14.md's lines.

mod common;
#[allow(dead_code)]
#[path = "client/groups_harness.rs"]
mod groups_harness;
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use groups_harness::*;
use harness::*;
use std::fs;

#[test]
fn the_group_flow_survives_failover_and_restarts_of_either_and_both_trackers() {
    let mut pair = Pair::start("groups-failover");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let mut carol = pair.client("carol", &[0, 1]);
    let big = content(151, BIG);
    let one = content(152, PIECE);
    fs::write(alice.path("big.bin"), &big).unwrap();
    fs::write(alice.path("one.bin"), &one).unwrap();
    // Step 1: alice (through tracker 0) signs up and creates g; bob signs up through 1.
    sign_up(&mut alice, "alice");
    sign_up(&mut bob, "bob");
    alice.run("create_group g", "created group g (you own it)");
    // Step 2: tracker 0 dies; everything goes on through tracker 1, alice still logged in.
    pair.kill_tracker(0);
    bob.run("join_group g", "asked to join g; its owner alice decides");
    alice.run("accept_request g bob", "bob is now a member of g");
    alice.run(
        "upload_file big.bin g",
        &format!("shared big.bin ({BIG_SIZE}, 4 pieces) in g"),
    );
    bob.run(
        "download_file g big.bin big.out",
        "downloading big.bin from g to big.out in the background",
    );
    downloads_hold(&mut bob, &[format!("[C] [g] big.bin {BIG_SIZE}")]);
    assert_eq!(fs::read(bob.path("big.out")).unwrap(), big);
    // carol's client knows tracker 0 first: she is created through tracker 1 all the same.
    sign_up(&mut carol, "carol");
    carol.run("join_group g", "asked to join g; its owner alice decides");
    // Step 3: tracker 0 comes back and catches up; tracker 1 dies.
    pair.start_tracker(0);
    pair.records_agree(LIMIT);
    pair.kill_tracker(1);
    assert_eq!(answer(&mut alice, "list_requests g"), ["carol"]);
    alice.run("accept_request g carol", "carol is now a member of g");
    alice.run(
        "upload_file one.bin g",
        "shared one.bin (512.0 KiB, 1 piece) in g",
    );
    fs::create_dir_all(carol.path("inbox")).unwrap();
    carol.run(
        "download_file g big.bin inbox",
        "downloading big.bin from g to inbox/big.bin in the background",
    );
    carol.run(
        &format!("download_file g {} one.out", id_of(&one)),
        "downloading one.bin from g to one.out in the background",
    );
    downloads_hold(
        &mut carol,
        &[
            format!("[C] [g] big.bin {BIG_SIZE}"),
            "[C] [g] one.bin 512.0 KiB".to_string(),
        ],
    );
    assert_eq!(fs::read(carol.path("inbox/big.bin")).unwrap(), big);
    assert_eq!(fs::read(carol.path("one.out")).unwrap(), one);
    // bob, who knew tracker 1 first, logs out and in again through tracker 0.
    bob.run("logout", "logged out bob");
    bob.run("login bob pw-bob", "logged in as bob");
    // Step 4: tracker 1 comes back; then both die and start again.
    pair.start_tracker(1);
    pair.records_agree(LIMIT);
    pair.kill_tracker(0);
    pair.kill_tracker(1);
    pair.start_tracker(0);
    pair.start_tracker(1);
    // Users, groups, members and files are all there, through either tracker.
    let groups = ["g (owner alice, 3 members) you are a member".to_string()];
    until_lines(&mut bob, "list_groups", &groups);
    until_lines(&mut carol, "list_groups", &groups);
    until_lines(
        &mut alice,
        "list_groups",
        &["g (owner alice, 3 members) you own it".to_string()],
    );
    until_answers(
        &mut bob,
        "list_files g",
        &format!("big.bin {BIG_SIZE} 3 seeders id {} from alice", id_of(&big)),
    );
    let listed = answer(&mut carol, "list_files g");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[1].starts_with("one.bin 512.0 KiB "), "{listed:?}");
    assert!(
        listed[1].contains(&format!(" id {} from alice", id_of(&one))),
        "{listed:?}"
    );
    carol.run("logout", "logged out carol");
    carol.fails("login carol wrong", "wrong user id or password");
    carol.run("login carol pw-carol", "logged in as carol");
    // Step 5: a restarted client logs in and shares again after all that.
    alice.quit();
    alice.restart();
    until_answers(
        &mut alice,
        "login alice pw-alice",
        "logged in as alice (2 files shared again)",
    );
    downloads_hold(
        &mut alice,
        &[
            format!("[S] [g] big.bin {BIG_SIZE}"),
            "[S] [g] one.bin 512.0 KiB".to_string(),
        ],
    );
    // With the others stopped, bob fetches the big file again from alice alone.
    bob.run(
        "stop_share g big.bin",
        "stopped sharing big.bin in g (the file stays at ",
    );
    carol.run(
        "stop_share g big.bin",
        "stopped sharing big.bin in g (the file stays at ",
    );
    fs::remove_file(bob.path("big.out")).unwrap();
    bob.run(
        "download_file g big.bin big.out",
        "downloading big.bin from g to big.out in the background",
    );
    downloads_hold(&mut bob, &[format!("[C] [g] big.bin {BIG_SIZE}")]);
    assert_eq!(fs::read(bob.path("big.out")).unwrap(), big);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}
