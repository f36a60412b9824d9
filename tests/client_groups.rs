//! The client's accounts and groups (issue 14), end to end: two real trackers and three
//! clients on 127.0.0.1 driven through stdin, each answer compared with design14.md's exact
//! line; a group file downloaded byte for byte, a tracker killed in the middle, logout and
//! login sharing again, a restarted client whose group records wait for their user's login.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::fs;
use std::time::Duration;

/// Runs `command` and checks that one line of its answer is exactly `line`.
fn says(c: &mut Client, command: &str, line: &str) {
    let got = c.run(command, line);
    assert!(
        got.lines().any(|l| l == line),
        "{command:?}: wanted the line {line:?}, got {got:?}"
    );
}

/// Sends `command` again (bounded) until one of its answers on `stream` holds the line
/// `line`: what one tracker just took reaches its twin a moment later.
fn once_synced(c: &mut Client, command: &str, line: &str, stream: fn(&Proc) -> String) {
    let mut last = String::new();
    let seen = wait_until(LIMIT, || {
        let before = stream(&c.proc).len();
        c.proc.send_line(command);
        let answered = wait_until(Duration::from_secs(5), || {
            let (out, err) = (c.proc.stdout(), c.proc.stderr());
            stream(&c.proc).len() > before || out.contains(line) || err.contains(line)
        });
        std::thread::sleep(Duration::from_millis(200));
        last = stream(&c.proc)[before..].to_string();
        answered && last.lines().any(|l| l == line)
    });
    assert!(seen, "{command:?}: never the line {line:?}; last {last:?}");
}

/// A user logged in on `c`, with `group` created when given.
fn logged_in(c: &mut Client, user: &str, group: Option<&str>) {
    says(
        c,
        &format!("create_user {user} pw-{user}"),
        &format!("created user {user}"),
    );
    says(
        c,
        &format!("login {user} pw-{user}"),
        &format!("logged in as {user}"),
    );
    if let Some(g) = group {
        says(
            c,
            &format!("create_group {g}"),
            &format!("created group {g} (you own it)"),
        );
    }
}

#[test]
fn a_group_file_goes_from_owner_to_member_through_both_trackers_and_a_failover() {
    let mut pair = Pair::start("groups-flow");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let mut carol = pair.client("carol", &[0, 1]);
    let data = content(14, 1_300_000);
    fs::write(alice.path("notes.txt"), &data).unwrap();

    logged_in(&mut alice, "alice", Some("g"));
    says(
        &mut alice,
        "upload_file notes.txt g",
        "shared notes.txt (1.2 MiB, 3 pieces) in g",
    );
    alice.fails(
        "upload_file notes.txt g",
        "notes.txt is already shared in g",
    );
    // Bob, through the other tracker, is no member yet.
    logged_in(&mut bob, "bob", None);
    once_synced(
        &mut bob,
        "list_files g",
        "error: you are not a member of g",
        Proc::stderr,
    );
    says(
        &mut bob,
        "join_group g",
        "asked to join g; its owner alice decides",
    );
    says(
        &mut bob,
        "list_groups",
        "g (owner alice, 1 member) you asked to join",
    );
    says(&mut alice, "list_requests g", "bob");
    // The owner may turn a request down (seed 002: accept or reject); asked again, it is
    // there again.
    bob.fails(
        "reject_request g bob",
        "only g's owner, alice, rejects requests",
    );
    says(
        &mut alice,
        "reject_request g bob",
        "rejected bob's request to join g",
    );
    says(&mut alice, "list_requests g", "no requests to join g");
    alice.fails("reject_request g bob", "bob has not asked to join g");
    says(&mut bob, "list_groups", "g (owner alice, 1 member)");
    says(
        &mut bob,
        "join_group g",
        "asked to join g; its owner alice decides",
    );
    says(&mut alice, "list_requests g", "bob");
    says(
        &mut alice,
        "accept_request g bob",
        "bob is now a member of g",
    );
    alice.fails("accept_request g bob", "bob has not asked to join g");
    says(&mut alice, "list_requests g", "no requests to join g");
    let id = {
        let got = bob.run("list_files g", "notes.txt 1.2 MiB 1 seeder id ");
        let line = got.lines().find(|l| l.starts_with("notes.txt")).unwrap();
        assert!(line.ends_with(" from alice"), "{line}");
        line.split(' ').nth(6).unwrap().to_string()
    };

    // The tracker alice uses dies: the pair carries on with the other.
    pair.kill_tracker(0);
    says(
        &mut bob,
        &format!("download_file g {} out.bin", &id[..6]),
        "downloading notes.txt from g to out.bin in the background",
    );
    bob.downloads_become(&["[C] [g] notes.txt 1.2 MiB".to_string()]);
    assert!(same_file(&alice.path("notes.txt"), &bob.path("out.bin")));
    alice.downloads_become(&["[S] [g] notes.txt 1.2 MiB".to_string()]);
    pair.start_tracker(0);

    // Carol is no member: she sees the group, not its files.
    logged_in(&mut carol, "carol", None);
    says(&mut carol, "list_groups", "g (owner alice, 2 members)");
    carol.fails("download_file g notes.txt x", "you are not a member of g");

    // Logout stops alice's sharing until the next login, which shares again.
    says(
        &mut alice,
        "logout",
        "logged out alice (stopped sharing 1 file until the next login)",
    );
    says(
        &mut alice,
        "show downloads",
        "no downloads and nothing shared",
    );
    alice.fails(
        "list_files g",
        "list_files needs a login (create_user, then login)",
    );
    says(
        &mut alice,
        "login alice pw-alice",
        "logged in as alice (1 file shared again)",
    );
    says(&mut alice, "show downloads", "[S] [g] notes.txt 1.2 MiB");

    // Bob stops sharing; alice leaves and hands the group to him.
    says(
        &mut bob,
        "stop_share g notes.txt",
        "stopped sharing notes.txt in g (the file stays at out.bin)",
    );
    bob.fails("stop_share g notes.txt", "you share no file notes.txt in g");
    says(
        &mut alice,
        "leave_group g",
        "left g; bob owns it now (stopped sharing 1 file there)",
    );
    says(
        &mut alice,
        "show downloads",
        "no downloads and nothing shared",
    );
    says(&mut bob, "list_files g", "no files in g");
    says(
        &mut bob,
        "leave_group g",
        "left g; it had no other members, so it is gone",
    );
    says(&mut bob, "list_groups", "no groups yet");
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}

#[test]
fn a_restarted_client_keeps_group_records_dormant_until_their_user_logs_in() {
    let pair = Pair::start("groups-restart");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let data = content(15, 700_000);
    fs::write(alice.path("a.bin"), &data).unwrap();
    logged_in(&mut alice, "alice", Some("g"));
    says(
        &mut alice,
        "upload_file a.bin g",
        "shared a.bin (683.6 KiB, 2 pieces) in g",
    );
    // The same content shared as an .mtorrent too: one file here, listed twice.
    alice.run("share a.bin a.mtorrent", "shared a.bin");
    logged_in(&mut bob, "bob", None);
    once_synced(
        &mut bob,
        "join_group g",
        "asked to join g; its owner alice decides",
        Proc::stdout,
    );
    once_synced(
        &mut alice,
        "accept_request g bob",
        "bob is now a member of g",
        Proc::stdout,
    );
    once_synced(
        &mut bob,
        "download_file g a.bin got",
        "downloading a.bin from g to got in the background",
        Proc::stdout,
    );
    bob.downloads_become(&["[C] [g] a.bin 683.6 KiB".to_string()]);
    bob.quit();
    bob.restart();
    says(
        &mut bob,
        "show downloads",
        "no downloads and nothing shared",
    );
    says(
        &mut bob,
        "login bob pw-bob",
        "logged in as bob (1 file shared again)",
    );
    bob.downloads_become(&["[C] [g] a.bin 683.6 KiB".to_string()]);
    assert!(same_file(&alice.path("a.bin"), &bob.path("got")));
    // Removing the .mtorrent share leaves the group's.
    alice.run("remove a.mtorrent", "removed a.bin");
    alice.downloads_become(&["[S] [g] a.bin 683.6 KiB".to_string()]);
    let id = list_id(&mut alice);
    says(
        &mut alice,
        "list_files g",
        // bob completed his download: he shares it in g too.
        &format!("a.bin 683.6 KiB 2 seeders id {id} from alice, bob"),
    );
    alice.quit();
    bob.quit();
}

/// The id `list_files g` shows for its only file.
fn list_id(c: &mut Client) -> String {
    let got = c.run("list_files g", " id ");
    let line = got.lines().find(|l| l.contains(" id ")).unwrap();
    line.split(" id ").nth(1).unwrap()[..8].to_string()
}

#[test]
fn the_shell_refuses_bad_words_and_missing_logins_without_asking() {
    let pair = Pair::start("groups-shell");
    let mut c = pair.client("c", &[0, 1]);
    c.fails(
        "create_group g",
        "create_group needs a login (create_user, then login)",
    );
    c.fails(
        "create_user \"a b\" pw",
        "a user id is 1 to 32 letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got \"a b\"",
    );
    c.fails(
        &format!("login {} pw", "x".repeat(33)),
        "a user id is 1 to 32 letters",
    );
    c.fails(
        "login al \"p w\"",
        "a password is 1 to 64 bytes without spaces",
    );
    c.fails("join_group .g", "a group name is 1 to 32 letters");
    c.fails("logout", "not logged in");
    c.fails(
        "download_file g x",
        "wrong arguments for download_file; usage: download_file <group> <file> <dest>",
    );
    says(
        &mut c,
        "help stop_share",
        "  stop_share <group> <file>        stop sharing a file in a group, or cancel its download",
    );
    logged_in(&mut c, "cee", None);
    c.fails(
        "login cee pw-cee",
        "already logged in as cee (logout first)",
    );
    c.fails("create_user cee other", "user cee already exists");
    c.fails("download_file nog x .", "no group nog");
    // Nothing the refusals above asked reached the trackers as a group.
    says(&mut c, "list_groups", "no groups yet");
    c.quit();
}

#[test]
fn a_login_the_trackers_refuse_in_a_new_session_logs_the_user_out_here() {
    // Both trackers start again from nothing (their state files lost): the client's session
    // is unknown, it opens a new one and tries to log in again, and alice no longer exists.
    // Before, the client went on calling itself logged in: every group command then said
    // it needed a login while `login` said she was logged in already.
    let mut pair = Pair::start("cg-refused");
    let mut alice = pair.client("alice", &[0, 1]);
    logged_in(&mut alice, "alice", Some("g"));
    fs::write(alice.path("a.bin"), content(7, 3000)).unwrap();
    says(
        &mut alice,
        "upload_file a.bin g",
        "shared a.bin (2.9 KiB, 1 piece) in g",
    );
    // A group's file is registered private: SEEDERS, which answers anyone, does not list
    // alice (a stranger found a non-member could fetch it through SEEDERS and RECORDS).
    let piece = p2p::chunk::to_hex(&p2p::hashing::sha1(&content(7, 3000)));
    let hash = p2p::chunk::to_hex(&p2p::hashing::sha1(piece.as_bytes()));
    for i in 0..2 {
        let listed = pair.seeders(i, &hash, 3000);
        assert_eq!(listed, Some(Vec::new()), "tracker {i}");
        // Not even part of the info hash: a piece-hash list's digest was the info hash.
        let all = records(&pair.addr(i)).unwrap().join("\n");
        assert!(
            !all.contains(&hash[..16]) && !all.contains("a.bin"),
            "{all}"
        );
    }
    for i in 0..2 {
        pair.kill_tracker(i);
        fs::remove_file(pair.state_file(i)).unwrap();
    }
    for i in 0..2 {
        pair.start_tracker(i);
    }
    let told = "logged out alice: the trackers did not log alice in again in a new session (wrong user id or password)";
    assert!(
        wait_until(LIMIT, || alice.proc.stdout().contains(told)),
        "{}",
        alice.proc.stdout()
    );
    alice.downloads_become(&["no downloads and nothing shared".to_string()]);
    alice.fails(
        "list_files g",
        "list_files needs a login (create_user, then login)",
    );
    alice.fails("login alice pw-alice", "wrong user id or password");
    // Made again, alice logs in and shares what she shared before.
    says(
        &mut alice,
        "create_user alice pw-alice",
        "created user alice",
    );
    says(
        &mut alice,
        "login alice pw-alice",
        "logged in as alice (1 file shared again)",
    );
    alice.quit();
}
