//! Files in groups (issue 14), tried as users would through stdin: upload, list and download
//! byte for byte (into a folder and to a file path; a 0-byte file, one of exactly one piece,
//! one of four), `show downloads` with the group, stop_share, logout that stops sharing and
//! login (also after a restart) that shares again, a leaver whose shares go, two members'
//! files of one name told apart by id, and `.mtorrent` sharing beside it all without a
//! login. Two real trackers, clients knowing them in either order; design14.md's lines.

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
use std::time::{Duration, Instant};

#[test]
fn members_upload_list_download_and_stop_sharing_byte_for_byte() {
    let pair = Pair::start("groups-files");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let mut carol = pair.client("carol", &[1, 0]);
    sign_up(&mut alice, "alice");
    sign_up(&mut bob, "bob");
    sign_up(&mut carol, "carol");
    group_of(&mut alice, "alice", "g", &mut [(&mut bob, "bob")]);
    let big = content(141, BIG);
    let one = content(142, PIECE);
    let empty: Vec<u8> = Vec::new();
    fs::write(alice.path("big.bin"), &big).unwrap();
    fs::write(alice.path("one.bin"), &one).unwrap();
    fs::write(alice.path("empty.bin"), &empty).unwrap();
    // Step 1: alice shares three files in g; the tracker gets only their metadata.
    alice.run(
        "upload_file big.bin g",
        &format!("shared big.bin ({BIG_SIZE}, 4 pieces) in g"),
    );
    alice.run(
        "upload_file one.bin g",
        "shared one.bin (512.0 KiB, 1 piece) in g",
    );
    alice.run(
        "upload_file empty.bin g",
        "shared empty.bin (0 B, 0 pieces) in g",
    );
    alice.fails("upload_file big.bin g", "big.bin is already shared in g");
    alice.fails("upload_file big.bin nope", "no group nope");
    // Step 2: a non-member can neither list nor fetch; a member lists name, size, seeders.
    carol.fails("list_files g", "you are not a member of g");
    carol.fails("download_file g big.bin x", "you are not a member of g");
    until_lines(
        &mut bob,
        "list_files g",
        &[
            file_line("big.bin", BIG_SIZE, 1, &big, "alice"),
            file_line("empty.bin", "0 B", 1, &empty, "alice"),
            file_line("one.bin", "512.0 KiB", 1, &one, "alice"),
        ],
    );
    bob.fails("download_file g nothere x", "no file nothere in g");
    // Step 3: bob fetches all three, into a folder and to file paths.
    fs::create_dir_all(bob.path("inbox")).unwrap();
    bob.run(
        "download_file g big.bin inbox",
        "downloading big.bin from g to inbox/big.bin in the background",
    );
    bob.run(
        "download_file g one.bin one.out",
        "downloading one.bin from g to one.out in the background",
    );
    bob.run(
        &format!("download_file g {} empty.out", &id_of(&empty)[..6]),
        "downloading empty.bin from g to empty.out in the background",
    );
    downloads_hold(
        &mut bob,
        &[
            format!("[C] [g] big.bin {BIG_SIZE}"),
            "[C] [g] one.bin 512.0 KiB".to_string(),
            "[C] [g] empty.bin 0 B".to_string(),
        ],
    );
    assert_eq!(fs::read(bob.path("inbox/big.bin")).unwrap(), big);
    assert_eq!(fs::read(bob.path("one.out")).unwrap(), one);
    assert_eq!(fs::read(bob.path("empty.out")).unwrap(), empty);
    downloads_hold(
        &mut alice,
        &[
            format!("[S] [g] big.bin {BIG_SIZE}"),
            "[S] [g] one.bin 512.0 KiB".to_string(),
            "[S] [g] empty.bin 0 B".to_string(),
        ],
    );
    // Every piece verified is served: bob now counts as a seeder too, and having completed
    // it he shares it in g.
    let two = format!(
        "big.bin {BIG_SIZE} 2 seeders id {} from alice, bob",
        id_of(&big)
    );
    until_answers(&mut bob, "list_files g", &two);
    // Step 4: carol joins and fetches the big file from both.
    carol.run("join_group g", "asked to join g; its owner alice decides");
    alice.run("accept_request g carol", "carol is now a member of g");
    carol.run(
        &format!("download_file g {} big.out", id_of(&big)),
        "downloading big.bin from g to big.out in the background",
    );
    downloads_hold(&mut carol, &[format!("[C] [g] big.bin {BIG_SIZE}")]);
    assert_eq!(fs::read(carol.path("big.out")).unwrap(), big);
    // Step 5: alice stops sharing one.bin; the file stays; a second stop finds nothing.
    alice.run(
        "stop_share g one.bin",
        "stopped sharing one.bin in g (the file stays at ",
    );
    assert_eq!(fs::read(alice.path("one.bin")).unwrap(), one);
    alice.fails("stop_share g one.bin", "you share no file one.bin in g");
    let shown = answer(&mut alice, "show downloads");
    assert!(
        !shown.iter().any(|l| l.contains("one.bin")),
        "alice shows no one.bin: {shown:?}"
    );
    // carol asks for it: from bob, who still holds it, or no such file once alice's share went.
    let sent = marks(&carol);
    carol.proc.send_line("download_file g one.bin one.out");
    let started = either(
        &mut carol,
        sent,
        "downloading one.bin from g to one.out in the background",
        "no file one.bin in g",
    );
    if started {
        downloads_hold(&mut carol, &["[C] [g] one.bin 512.0 KiB".to_string()]);
        assert_eq!(fs::read(carol.path("one.out")).unwrap(), one);
    }
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}

#[test]
fn logout_stops_sharing_until_login_and_a_leaver_shares_no_more() {
    let pair = Pair::start("groups-logout");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let mut carol = pair.client("carol", &[0, 1]);
    sign_up(&mut alice, "alice");
    sign_up(&mut bob, "bob");
    sign_up(&mut carol, "carol");
    group_of(
        &mut alice,
        "alice",
        "g",
        &mut [(&mut bob, "bob"), (&mut carol, "carol")],
    );
    let big = content(143, BIG);
    fs::write(alice.path("big.bin"), &big).unwrap();
    alice.run(
        "upload_file big.bin g",
        &format!("shared big.bin ({BIG_SIZE}, 4 pieces) in g"),
    );
    // Step 1: alice logs out: her group records are hidden and she shares nothing.
    alice.run(
        "logout",
        "logged out alice (stopped sharing 1 file until the next login)",
    );
    alice.downloads_become(&["no downloads and nothing shared".to_string()]);
    until_answers(
        &mut bob,
        "list_files g",
        &file_line("big.bin", BIG_SIZE, 0, &big, "alice"),
    );
    // Step 2: bob's download does not progress while the only sharer is logged out.
    bob.run(
        "download_file g big.bin big.out",
        "downloading big.bin from g to big.out in the background",
    );
    let waiting = format!("[D] [g] big.bin 0% 0.0/{BIG_SIZE} 0 B/s ETA ? (0 seeders)");
    bob.downloads_become(std::slice::from_ref(&waiting));
    let stalled = |lines: &[&str]| {
        lines.len() == 1
            && (lines[0] == waiting || lines[0].starts_with("[F] [g] big.bin: no seeder"))
    };
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let shown = answer(&mut bob, "show downloads");
        let lines: Vec<&str> = shown.iter().map(String::as_str).collect();
        assert!(stalled(&lines), "progress with no sharer: {lines:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Step 2b: bob logs out in the middle of his download: it pauses, hidden, its partial
    // data kept. Half of it arrives meanwhile (written here, as if fetched before): the
    // login resumes from what verifies on disk.
    bob.run(
        "logout",
        "logged out bob (stopped sharing 1 file until the next login)",
    );
    bob.downloads_become(&["no downloads and nothing shared".to_string()]);
    let partial = bob.path(".big.out.p2p-partial");
    assert!(partial.exists(), "a paused download keeps its partial data");
    {
        use std::os::unix::fs::FileExt;
        let file = fs::OpenOptions::new().write(true).open(&partial).unwrap();
        file.write_all_at(&big[..2 * PIECE], 0).unwrap();
    }
    bob.run("login bob pw-bob", "logged in as bob (1 file shared again)");
    bob.downloads_where("the download resumed at half", |lines| {
        lines.len() == 1 && lines[0].starts_with("[D] [g] big.bin 50% 1.0/")
    });
    // Step 3: alice logs in again: she shares again, and bob's download completes.
    alice.run(
        "login alice pw-alice",
        "logged in as alice (1 file shared again)",
    );
    downloads_hold(&mut alice, &[format!("[S] [g] big.bin {BIG_SIZE}")]);
    downloads_hold(&mut bob, &[format!("[C] [g] big.bin {BIG_SIZE}")]);
    assert_eq!(fs::read(bob.path("big.out")).unwrap(), big);
    // Step 4: a restarted client logs in and shares again (bob stops, so only alice has it).
    bob.run(
        "stop_share g big.bin",
        "stopped sharing big.bin in g (the file stays at ",
    );
    alice.quit();
    alice.restart();
    alice.downloads_become(&["no downloads and nothing shared".to_string()]);
    alice.run(
        "login alice pw-alice",
        "logged in as alice (1 file shared again)",
    );
    carol.run(
        "download_file g big.bin big.out",
        "downloading big.bin from g to big.out in the background",
    );
    downloads_hold(&mut carol, &[format!("[C] [g] big.bin {BIG_SIZE}")]);
    assert_eq!(fs::read(carol.path("big.out")).unwrap(), big);
    // Step 5: bob shares a file of his own, then leaves: his shares in g go with him.
    let notes = content(144, 1234);
    fs::write(bob.path("bobs.txt"), &notes).unwrap();
    bob.run(
        "upload_file bobs.txt g",
        "shared bobs.txt (1.2 KiB, 1 piece) in g",
    );
    until_answers(
        &mut alice,
        "list_files g",
        &file_line("bobs.txt", "1.2 KiB", 1, &notes, "bob"),
    );
    bob.run("leave_group g", "left g");
    bob.fails("list_files g", "you are not a member of g");
    bob.fails("download_file g bobs.txt x", "you are not a member of g");
    let listed = answer(&mut alice, "list_files g");
    assert!(!listed.is_empty(), "alice's own file is listed");
    assert!(
        listed
            .iter()
            .all(|l| !l.contains("bobs.txt") && !l.contains("bob,") && !l.ends_with(" bob")),
        "nothing of bob's is listed after he left: {listed:?}"
    );
    let shown = answer(&mut bob, "show downloads");
    assert!(
        shown
            .iter()
            .all(|l| !l.starts_with("[S] [g]") && !l.starts_with("[C] [g]")),
        "bob shares nothing in g: {shown:?}"
    );
    assert_eq!(
        fs::read(bob.path("bobs.txt")).unwrap(),
        notes,
        "the file stays"
    );
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}

#[test]
fn two_files_of_one_name_are_told_apart_and_mtorrents_need_no_login() {
    let pair = Pair::start("groups-names");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    // carol never logs in: she uses .mtorrent files only.
    let mut carol = pair.client("carol", &[1, 0]);
    sign_up(&mut alice, "alice");
    sign_up(&mut bob, "bob");
    group_of(&mut alice, "alice", "g", &mut [(&mut bob, "bob")]);
    let (a, b) = (content(145, 1234), content(146, 1234));
    fs::write(alice.path("notes.txt"), &a).unwrap();
    fs::write(bob.path("notes.txt"), &b).unwrap();
    alice.run(
        "upload_file notes.txt g",
        "shared notes.txt (1.2 KiB, 1 piece) in g",
    );
    bob.run(
        "upload_file notes.txt g",
        "shared notes.txt (1.2 KiB, 1 piece) in g",
    );
    // Step 1: both are listed, sorted by id, each with its own sharer.
    let mut want = [
        file_line("notes.txt", "1.2 KiB", 1, &a, "alice"),
        file_line("notes.txt", "1.2 KiB", 1, &b, "bob"),
    ];
    want.sort_by_key(|l| l.split(" id ").nth(1).unwrap_or_default().to_string());
    until_lines(&mut alice, "list_files g", &want);
    assert_eq!(answer(&mut bob, "list_files g"), want);
    // Step 2: the name alone is refused; the id fetches the right one.
    let mut ids = [id_of(&a), id_of(&b)];
    ids.sort();
    alice.fails(
        "download_file g notes.txt theirs.txt",
        &format!(
            "2 files in g are named notes.txt (ids {}, {}); name one by its id",
            ids[0], ids[1]
        ),
    );
    alice.run(
        &format!("download_file g {} theirs.txt", &id_of(&b)[..6]),
        "downloading notes.txt from g to theirs.txt in the background",
    );
    downloads_hold(
        &mut alice,
        &[
            "[S] [g] notes.txt 1.2 KiB".to_string(),
            "[C] [g] notes.txt 1.2 KiB".to_string(),
        ],
    );
    assert_eq!(fs::read(alice.path("theirs.txt")).unwrap(), b);
    assert_eq!(
        fs::read(alice.path("notes.txt")).unwrap(),
        a,
        "hers is untouched"
    );
    // Step 3: .mtorrent sharing goes on beside the groups, for a client with no login.
    let plain = content(148, PIECE + 1);
    fs::write(alice.path("plain.bin"), &plain).unwrap();
    alice.run(
        "share plain.bin plain.mtorrent",
        "shared plain.bin (512.0 KiB, 2 pieces) as plain.mtorrent",
    );
    hand_over(&alice, &carol, "plain.mtorrent");
    carol.run(
        "get plain.mtorrent a.bin",
        "downloading plain.bin to a.bin in the background",
    );
    carol.downloads_become(&["[S] plain.bin 512.0 KiB".to_string()]);
    assert_eq!(fs::read(carol.path("a.bin")).unwrap(), plain);
    let own = content(147, 3 * KIB);
    fs::write(carol.path("own.bin"), &own).unwrap();
    carol.run(
        "share own.bin own.mtorrent",
        "shared own.bin (3.0 KiB, 1 piece)",
    );
    hand_over(&carol, &bob, "own.mtorrent");
    bob.run("get own.mtorrent own.out", "downloading own.bin to own.out");
    downloads_hold(&mut bob, &["[S] own.bin 3.0 KiB".to_string()]);
    assert_eq!(fs::read(bob.path("own.out")).unwrap(), own);
    carol.fails(
        "list_files g",
        "list_files needs a login (create_user, then login)",
    );
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}
