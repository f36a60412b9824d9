//! Issue 14, the tracker side, against two real trackers in raw protocol: an id is taken
//! once across the pair and logs in through the other tracker; the group flow across the
//! two; an upload's piece hashes come back byte for byte through the twin, and only to
//! members; 200 wrong logins leave the tracker responsive and other users log in at once;
//! everything survives a restart of both trackers; `RECORDS` never shows a salt or hash.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::time::{Duration, Instant};

/// How long a record may take to reach the twin.
const SYNC: Duration = Duration::from_secs(10);

/// A greeted connection to tracker `addr` with a session of its own; its token.
fn session(addr: &str) -> (Raw, String) {
    let mut raw = Raw::connect(addr);
    assert_eq!(raw.call("HELLO p2p/1 client"), "OK p2p/1 tracker");
    let reply = raw.call(&format!("OPEN 127.0.0.1:{}", free_port()));
    let token = reply.strip_prefix("OK ").expect("a token").to_string();
    (raw, token)
}

/// A session at `addr` logged in as `id` (created first when `create`).
fn user(addr: &str, id: &str, create: bool) -> (Raw, String) {
    let (mut raw, token) = session(addr);
    if create {
        assert_eq!(raw.call(&format!("CREATE_USER {token} {id} pw-{id}")), "OK");
    }
    assert_eq!(raw.call(&format!("LOGIN {token} {id} pw-{id}")), "OK");
    (raw, token)
}

/// `OK <n>` and n lines.
fn list(raw: &mut Raw, line: &str) -> Vec<String> {
    let head = raw.call(line);
    let n: usize = match head.strip_prefix("OK ").and_then(|n| n.parse().ok()) {
        Some(n) => n,
        None => panic!("{line} answered {head:?}"),
    };
    (0..n).map(|_| raw.line().expect("a listed line")).collect()
}

/// Asks `line` until the reply is `want` (a change that reached this tracker from its twin).
fn until(raw: &mut Raw, line: &str, want: &str) {
    let mut got = String::new();
    let ok = wait_until(SYNC, || {
        got = raw.call(line);
        got == want
    });
    assert!(ok, "{line}: wanted {want:?}, last {got:?}");
}

/// Lists `line` until the lines are `want`.
fn until_listed(raw: &mut Raw, line: &str, want: &[String]) {
    let mut got = Vec::new();
    let ok = wait_until(SYNC, || {
        got = list(raw, line);
        got == want
    });
    assert!(ok, "{line}: wanted {want:?}, last {got:?}");
}

/// Waits until tracker `addr` holds a record starting with `prefix` (after the version).
fn holds(addr: &str, prefix: &str) {
    let ok = wait_until(SYNC, || {
        records(addr).is_some_and(|rs| {
            rs.iter().any(|r| {
                r.split_once(' ')
                    .is_some_and(|(_, r)| r.starts_with(prefix))
            })
        })
    });
    assert!(ok, "{addr} never held {prefix}");
}

/// A group file's piece hashes (raw), its info hash and size.
fn group_file(pieces: usize) -> (Vec<u8>, String, usize) {
    let size = (pieces - 1) * PIECE + 777;
    let data = content(14, size);
    let raw: Vec<u8> = data.chunks(PIECE).flat_map(p2p::hashing::sha1).collect();
    let hex = p2p::chunk::to_hex(&raw);
    let hash = p2p::chunk::to_hex(&p2p::hashing::sha1(hex.as_bytes()));
    (raw, hash, size)
}

#[test]
fn an_id_is_taken_once_across_the_pair_and_logs_in_through_the_other() {
    let pair = Pair::start("acct-ids");
    let (a, b) = (pair.addr(0), pair.addr(1));
    let (mut at_a, ta) = session(&a);
    assert_eq!(at_a.call(&format!("CREATE_USER {ta} alice s3cret")), "OK");
    assert_eq!(
        at_a.call(&format!("CREATE_USER {ta} alice other")),
        "ERR taken user alice already exists"
    );
    holds(&b, "user alice ");
    let (mut at_b, tb) = session(&b);
    assert_eq!(
        at_b.call(&format!("CREATE_USER {tb} alice other")),
        "ERR taken user alice already exists"
    );
    assert_eq!(
        at_b.call(&format!("LOGIN {tb} alice wrong")),
        "ERR denied wrong user id or password"
    );
    assert_eq!(
        at_b.call(&format!("LOGIN {tb} nobody s3cret")),
        "ERR denied wrong user id or password"
    );
    assert_eq!(at_b.call(&format!("LOGIN {tb} alice s3cret")), "OK");
    assert_eq!(
        at_b.call(&format!("LOGIN {tb} alice s3cret")),
        "ERR logged_in already logged in as alice (logout first)"
    );
    // Commands that need a login say so, with the client's spelling.
    assert_eq!(
        at_a.call(&format!("CREATE_GROUP {ta} g")),
        "ERR login_first create_group needs a login (create_user, then login)"
    );
    assert_eq!(at_b.call(&format!("LOGOUT {tb}")), "OK");
    assert_eq!(
        at_b.call(&format!("LOGOUT {tb}")),
        "ERR not_logged_in not logged in"
    );
    // RECORDS shows neither the salt nor the hash, at either tracker.
    for addr in [&a, &b] {
        let all = records(addr).unwrap();
        let users: Vec<&String> = all.iter().filter(|r| r.contains(" user ")).collect();
        assert_eq!(users.len(), 1, "{all:?}");
        assert!(
            users[0].ends_with(" user alice live - 40000 -"),
            "{users:?}"
        );
    }
}

#[test]
fn the_group_flow_across_the_two_trackers_and_survives_a_restart_of_both() {
    let mut pair = Pair::start("acct-groups");
    let (a, b) = (pair.addr(0), pair.addr(1));
    let (mut alice, ta) = user(&a, "alice", true);
    let (mut bob, tb) = user(&b, "bob", true);
    let (mut carol, tc) = user(&b, "carol", true);
    assert_eq!(alice.call(&format!("CREATE_GROUP {ta} g")), "OK");
    until(&mut bob, &format!("JOIN_GROUP {tb} g"), "OK alice");
    assert_eq!(
        bob.call(&format!("JOIN_GROUP {tb} g")),
        "ERR asked you already asked to join g"
    );
    assert_eq!(carol.call(&format!("JOIN_GROUP {tc} g")), "OK alice");
    assert_eq!(
        list(&mut bob, &format!("LIST_GROUPS {tb}")),
        ["g alice 1 asked"]
    );
    assert_eq!(
        carol.call(&format!("LIST_REQUESTS {tc} g")),
        "ERR not_member you are not a member of g"
    );
    until_listed(
        &mut alice,
        &format!("LIST_REQUESTS {ta} g"),
        &["bob".to_string(), "carol".to_string()],
    );
    // RECORDS, open to anyone, names carol only in her user record: not as a member,
    // not as asking, not as logged in.
    for addr in [&a, &b] {
        let all = records(addr).unwrap();
        let named: Vec<&String> = all.iter().filter(|r| r.contains("carol")).collect();
        assert!(
            named.len() == 1 && named[0].contains(" user carol live "),
            "{all:#?}"
        );
    }
    assert_eq!(
        list(&mut alice, &format!("LIST_REQUESTS {ta} g")),
        ["bob", "carol"]
    );
    assert_eq!(
        alice.call(&format!("ACCEPT_REQUEST {ta} g dave")),
        "ERR no_request dave has not asked to join g"
    );
    assert_eq!(alice.call(&format!("ACCEPT_REQUEST {ta} g bob")), "OK");
    assert_eq!(alice.call(&format!("ACCEPT_REQUEST {ta} g carol")), "OK");
    assert_eq!(
        alice.call(&format!("JOIN_GROUP {ta} g")),
        "ERR member you are already a member of g"
    );

    // alice uploads through A; bob, a member, reads the hashes back through B.
    let (hashes, hash, size) = group_file(3);
    let mut up = format!("UPLOAD_FILE {ta} g {hash} {size} notes%20one.txt\n").into_bytes();
    up.extend_from_slice(&hashes);
    alice.send(&up);
    assert_eq!(alice.line().as_deref(), Some("OK"));
    until_listed(
        &mut bob,
        &format!("LIST_FILES {tb} g"),
        &[format!("{hash} {size} notes%20one.txt alice 0")],
    );
    let ask = format!("FILE_HASHES {tb} g {hash} {size} 0");
    assert_eq!(bob.call(&ask), "OK 3");
    assert_eq!(bob.bytes(60), hashes);
    assert_eq!(
        bob.call(&format!("FILE_HASHES {tb} g {hash} {size} 2")),
        "OK 1"
    );
    assert_eq!(bob.bytes(20), hashes[40..]);
    // Hashes that do not match the info hash are refused, and the connection goes on.
    let mut bad = format!("UPLOAD_FILE {tb} g {hash} {size} x\n").into_bytes();
    bad.extend_from_slice(&[7; 60]);
    bob.send(&bad);
    assert_eq!(
        bob.line().as_deref(),
        Some("ERR bad_hashes the piece hashes do not match the info hash")
    );
    assert_eq!(bob.call("PING"), "OK");

    // The owner leaves: the member who joined first owns it; alice's share goes.
    assert_eq!(alice.call(&format!("LEAVE_GROUP {ta} g")), "OK owner bob");
    until_listed(
        &mut bob,
        &format!("LIST_GROUPS {tb}"),
        &["g bob 2 owner".into()],
    );
    until_listed(&mut bob, &format!("LIST_FILES {tb} g"), &[]);
    assert_eq!(
        alice.call(&format!("FILE_HASHES {ta} g {hash} {size} 0")),
        "ERR not_member you are not a member of g"
    );
    // bob shares it again, under the same name as carol's other file.
    let mut up = format!("UPLOAD_FILE {tb} g {hash} {size} notes%20one.txt\n").into_bytes();
    up.extend_from_slice(&hashes);
    bob.send(&up);
    assert_eq!(bob.line().as_deref(), Some("OK"));
    let (h2, hash2, size2) = group_file(1);
    let mut up = format!("UPLOAD_FILE {tc} g {hash2} {size2} notes%20one.txt\n").into_bytes();
    up.extend_from_slice(&h2);
    carol.send(&up);
    assert_eq!(carol.line().as_deref(), Some("OK"));
    let files = vec![
        format!("{hash} {size} notes%20one.txt bob 0"),
        format!("{hash2} {size2} notes%20one.txt carol 0"),
    ];
    assert_eq!(list(&mut carol, &format!("LIST_FILES {tc} g")), files);
    pair.records_agree(SYNC);

    // Both trackers restart: users, groups, shares and piece hashes are all still there.
    drop((alice, bob, carol));
    pair.kill_tracker(0);
    pair.kill_tracker(1);
    pair.start_tracker(0);
    pair.start_tracker(1);
    let (mut carol, tc) = user(&a, "carol", false);
    assert_eq!(
        list(&mut carol, &format!("LIST_GROUPS {tc}")),
        ["g bob 2 member"]
    );
    assert_eq!(list(&mut carol, &format!("LIST_FILES {tc} g")), files);
    let (mut bob, tb) = user(&b, "bob", false);
    assert_eq!(
        bob.call(&format!("FILE_HASHES {tb} g {hash} {size} 0")),
        "OK 3"
    );
    assert_eq!(bob.bytes(60), hashes);
    // The last two leave: the group is gone.
    assert_eq!(carol.call(&format!("LEAVE_GROUP {tc} g")), "OK left");
    assert_eq!(bob.call(&format!("LEAVE_GROUP {tb} g")), "OK gone");
    assert_eq!(
        list(&mut bob, &format!("LIST_GROUPS {tb}")),
        Vec::<String>::new()
    );
    assert_eq!(
        bob.call(&format!("LIST_FILES {tb} g")),
        "ERR no_group no group g"
    );
}

#[test]
fn a_non_member_sees_nothing_and_its_upload_is_refused_before_the_hashes() {
    let pair = Pair::start("acct-members");
    let a = pair.addr(0);
    let (mut alice, ta) = user(&a, "alice", true);
    let (mut eve, te) = user(&a, "eve", true);
    assert_eq!(alice.call(&format!("CREATE_GROUP {ta} g")), "OK");
    let (hashes, hash, size) = group_file(2);
    let mut up = format!("UPLOAD_FILE {ta} g {hash} {size} f\n").into_bytes();
    up.extend_from_slice(&hashes);
    alice.send(&up);
    assert_eq!(alice.line().as_deref(), Some("OK"));
    let not_member = "ERR not_member you are not a member of g";
    for ask in [
        format!("LIST_FILES {te} g"),
        format!("FILE_HASHES {te} g {hash} {size} 0"),
        format!("GROUP_SEEDERS {te} g {hash} {size}"),
    ] {
        assert_eq!(eve.call(&ask), not_member, "{ask}");
    }
    assert_eq!(
        alice.call(&format!("FILE_HASHES {ta} g {} 5 0", "0".repeat(40))),
        "ERR no_file no such file in g"
    );
    // A refusal before the hashes closes the connection: they are not read as lines.
    let mut up = format!("UPLOAD_FILE {te} g {hash} {size} f\n").into_bytes();
    up.extend_from_slice(&hashes);
    eve.send(&up);
    assert_eq!(eve.line().as_deref(), Some(not_member));
    assert!(eve.closed_within(Duration::from_secs(5)));
    assert_eq!(list(&mut alice, &format!("LIST_FILES {ta} g")).len(), 1);

    // Holders: only sessions logged in as members count, and only full ones are seeders.
    let (mut eve, te) = user(&a, "eve", false);
    let full = full_bitset(2);
    for (raw, token) in [(&mut alice, &ta), (&mut eve, &te)] {
        let seed = format!("SEED {token} {hash} f {size} {full}");
        assert_eq!(raw.call(&seed), "OK");
    }
    let (mut bob, tb) = user(&a, "bob", true);
    assert_eq!(bob.call(&format!("JOIN_GROUP {tb} g")), "OK alice");
    assert_eq!(alice.call(&format!("ACCEPT_REQUEST {ta} g bob")), "OK");
    assert_eq!(bob.call(&format!("SEED {tb} {hash} f {size} 01")), "OK");
    let files = list(&mut bob, &format!("LIST_FILES {tb} g"));
    assert_eq!(files, [format!("{hash} {size} f alice 1")]);
    let holders = list(&mut bob, &format!("GROUP_SEEDERS {tb} g {hash} {size}"));
    assert_eq!(holders.len(), 2, "alice and bob, not eve: {holders:?}");
    assert!(holders.iter().any(|h| h.ends_with(&format!(" {full}"))));
    assert_eq!(list(&mut eve, &format!("SEEDERS {hash} {size}")).len(), 3);
    // Logged out, alice's session holds the file still but is no member's.
    assert_eq!(alice.call(&format!("LOGOUT {ta}")), "OK");
    let files = list(&mut bob, &format!("LIST_FILES {tb} g"));
    assert_eq!(files, [format!("{hash} {size} f alice 0")]);
    let holders = list(&mut bob, &format!("GROUP_SEEDERS {tb} g {hash} {size}"));
    assert_eq!(holders.len(), 1, "{holders:?}");
    assert_eq!(
        alice.call(&format!("LIST_FILES {ta} g")),
        "ERR login_first list_files needs a login (create_user, then login)"
    );
}

#[test]
fn two_hundred_wrong_logins_leave_the_tracker_responsive_and_bob_logs_in_at_once() {
    let pair = Pair::start("acct-throttle");
    let a = pair.addr(0);
    let (_alice, _) = user(&a, "alice", true);
    let (mut bob, tb) = session(&a);
    assert_eq!(bob.call(&format!("CREATE_USER {tb} bob pw-bob")), "OK");
    let (mut mallory, tm) = session(&a);
    let attack = std::thread::spawn(move || {
        let mut replies = Vec::new();
        for i in 0..200 {
            replies.push(mallory.call(&format!("LOGIN {tm} alice guess{i}")));
        }
        replies
    });
    let started = Instant::now();
    assert_eq!(bob.call(&format!("LOGIN {tb} bob pw-bob")), "OK");
    assert_eq!(bob.call("PING"), "OK");
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "bob's login took {took:?}");
    let replies = attack.join().unwrap();
    let denied = replies
        .iter()
        .filter(|r| r.starts_with("ERR denied"))
        .count();
    let slowed = replies
        .iter()
        .filter(|r| r.starts_with("ERR slow_down too many wrong passwords for alice or from this client; try again in "))
        .count();
    assert_eq!(denied + slowed, 200, "{replies:?}");
    assert!(denied <= 10, "{denied} tries hashed: {replies:?}");
    // alice herself waits too, from another session: the key is her id.
    let (mut other, to) = session(&a);
    let reply = other.call(&format!("LOGIN {to} alice pw-alice"));
    assert!(reply.starts_with("ERR slow_down"), "{reply}");
}

#[test]
fn wrong_logins_sent_side_by_side_from_fresh_sessions_are_counted_before_any_is_hashed() {
    // A reviewer's attack: 40 sessions each send one wrong password for alice at the same
    // moment; before, every try that arrived while others were being hashed passed the
    // throttle (33 of 40 were hashed). Three free tries mean three, however they come.
    let pair = Pair::start("acct-side-by-side");
    let a = pair.addr(0);
    let (_alice, _) = user(&a, "alice", true);
    let sessions: Vec<(Raw, String)> = (0..40).map(|_| session(&a)).collect();
    let go = std::sync::Arc::new(std::sync::Barrier::new(sessions.len()));
    let tries: Vec<_> = sessions
        .into_iter()
        .enumerate()
        .map(|(i, (mut raw, token))| {
            let go = go.clone();
            std::thread::spawn(move || {
                go.wait();
                raw.call(&format!("LOGIN {token} alice guess{i}"))
            })
        })
        .collect();
    let replies: Vec<String> = tries.into_iter().map(|t| t.join().unwrap()).collect();
    let denied = replies
        .iter()
        .filter(|r| r.starts_with("ERR denied"))
        .count();
    let slowed = replies
        .iter()
        .filter(|r| r.starts_with("ERR slow_down"))
        .count();
    assert_eq!(denied + slowed, 40, "{replies:?}");
    assert_eq!(denied, 3, "tries hashed: {replies:?}");
}
