//! Accounts and groups (issue 14), tried as users would through stdin: user ids taken once
//! across both trackers, logins and what needs one, the join/accept/leave flow with every
//! mark `list_groups` shows, odd and hostile input answered with one line that changes
//! nothing, and a flood of wrong passwords that slows down only its target. Two real
//! trackers, clients knowing them in either order; the lines are design14.md's.

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
use std::time::{Duration, Instant};

const NEEDS_LOGIN: &str = "needs a login (create_user, then login)";

#[test]
fn a_user_id_is_taken_once_across_both_trackers_and_logs_in_through_either() {
    let pair = Pair::start("groups-users");
    // alice's client asks tracker 0 first, bob's tracker 1.
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    // Step 1: without a login, the client says so itself, for every command that needs one.
    alice.fails("logout", "not logged in");
    for cmd in [
        "create_group g",
        "join_group g",
        "list_requests g",
        "accept_request g bob",
        "leave_group g",
        "list_groups",
        "list_files g",
        "upload_file x g",
        "download_file g x out",
        "stop_share g x",
    ] {
        let verb = cmd.split(' ').next().unwrap_or_default();
        alice.fails(cmd, &format!("{verb} {NEEDS_LOGIN}"));
    }
    // Step 2: alice is created through tracker 0; tracker 1 knows the id at once.
    alice.run("create_user alice pw-alice", "created user alice");
    bob.fails("create_user alice other", "user alice already exists");
    bob.fails("login alice wrong", "wrong user id or password");
    bob.run("login alice pw-alice", "logged in as alice");
    bob.fails(
        "login alice pw-alice",
        "already logged in as alice (logout first)",
    );
    bob.fails(
        "login bob pw-bob",
        "already logged in as alice (logout first)",
    );
    bob.run("logout", "logged out alice");
    bob.fails("logout", "not logged in");
    bob.fails("login nobody pw", "wrong user id or password");
    // Step 3: the same new id asked of both trackers at once: exactly one creates it.
    let (a, b) = (marks(&alice), marks(&bob));
    alice.proc.send_line("create_user dave pw-one");
    bob.proc.send_line("create_user dave pw-two");
    let taken = "user dave already exists";
    let wins = [
        either(&mut alice, a, "created user dave", taken),
        either(&mut bob, b, "created user dave", taken),
    ];
    assert_eq!(
        wins.iter().filter(|&&w| w).count(),
        1,
        "dave was created {wins:?}"
    );
    // The winner's password is dave's, through either tracker.
    let winner_pw = if wins[0] { "pw-one" } else { "pw-two" };
    let loser_pw = if wins[0] { "pw-two" } else { "pw-one" };
    alice.fails(
        &format!("login dave {loser_pw}"),
        "wrong user id or password",
    );
    bob.run(&format!("login dave {winner_pw}"), "logged in as dave");
    bob.run("logout", "logged out dave");
    // Step 4: alice logs in through tracker 0 too, and both say who they are.
    alice.run("login alice pw-alice", "logged in as alice");
    bob.run("create_user bob pw-bob", "created user bob");
    bob.run("login bob pw-bob", "logged in as bob");
    assert_eq!(answer(&mut alice, "list_groups"), ["no groups yet"]);
    alice.run("logout", "logged out alice");
    bob.run("logout", "logged out bob");
    alice.quit();
    bob.quit();
}

#[test]
fn groups_are_joined_accepted_listed_and_left_with_every_answer() {
    let pair = Pair::start("groups-flow");
    let mut alice = pair.client("alice", &[0, 1]);
    let mut bob = pair.client("bob", &[1, 0]);
    let mut carol = pair.client("carol", &[1, 0]);
    sign_up(&mut alice, "alice");
    sign_up(&mut bob, "bob");
    sign_up(&mut carol, "carol");
    // Step 1: alice owns g1; bob and carol ask to join; a name is taken once.
    alice.run("create_group g1", "created group g1 (you own it)");
    bob.fails("create_group g1", "group g1 already exists");
    bob.fails("join_group nope", "no group nope");
    bob.run("join_group g1", "asked to join g1; its owner alice decides");
    bob.fails("join_group g1", "you already asked to join g1");
    carol.run("join_group g1", "asked to join g1; its owner alice decides");
    alice.fails("join_group g1", "you are already a member of g1");
    // Step 2: only the owner sees and accepts requests, oldest first; a non-member is told.
    bob.fails("list_requests g1", "you are not a member of g1");
    assert_eq!(answer(&mut alice, "list_requests g1"), ["bob", "carol"]);
    alice.fails("accept_request g1 dave", "dave has not asked to join g1");
    alice.run("accept_request g1 bob", "bob is now a member of g1");
    bob.fails("join_group g1", "you are already a member of g1");
    bob.fails(
        "list_requests g1",
        "only g1's owner, alice, sees its requests",
    );
    bob.fails(
        "accept_request g1 carol",
        "only g1's owner, alice, accepts members",
    );
    assert_eq!(answer(&mut alice, "list_requests g1"), ["carol"]);
    // Step 3: every mark of list_groups, sorted by name.
    bob.run("create_group g2", "created group g2 (you own it)");
    carol.run("create_group g3", "created group g3 (you own it)");
    alice.run("join_group g3", "asked to join g3; its owner carol decides");
    assert_eq!(
        answer(&mut alice, "list_groups"),
        [
            "g1 (owner alice, 2 members) you own it",
            "g2 (owner bob, 1 member)",
            "g3 (owner carol, 1 member) you asked to join",
        ]
    );
    assert_eq!(
        answer(&mut bob, "list_groups"),
        [
            "g1 (owner alice, 2 members) you are a member",
            "g2 (owner bob, 1 member) you own it",
            "g3 (owner carol, 1 member)",
        ]
    );
    assert_eq!(
        answer(&mut carol, "list_groups"),
        [
            "g1 (owner alice, 2 members) you asked to join",
            "g2 (owner bob, 1 member)",
            "g3 (owner carol, 1 member) you own it",
        ]
    );
    // Step 4: the owner leaves: the earliest member (bob, accepted before carol) owns g1.
    alice.run("accept_request g1 carol", "carol is now a member of g1");
    assert_eq!(
        answer(&mut alice, "list_requests g1"),
        ["no requests to join g1"]
    );
    alice.run("leave_group g1", "left g1; bob owns it now");
    alice.fails("leave_group g1", "you are not a member of g1");
    alice.fails("list_requests g1", "you are not a member of g1");
    carol.fails(
        "list_requests g1",
        "only g1's owner, bob, sees its requests",
    );
    carol.run("leave_group g1", "left g1");
    assert_eq!(
        answer(&mut carol, "list_groups"),
        [
            "g1 (owner bob, 1 member)",
            "g2 (owner bob, 1 member)",
            "g3 (owner carol, 1 member) you own it",
        ]
    );
    // Step 5: the last member leaves: the group is gone, with its pending requests.
    bob.run(
        "leave_group g1",
        "left g1; it had no other members, so it is gone",
    );
    alice.fails("join_group g1", "no group g1");
    carol.run(
        "leave_group g3",
        "left g3; it had no other members, so it is gone",
    );
    assert_eq!(
        answer(&mut alice, "list_groups"),
        ["g2 (owner bob, 1 member)"]
    );
    // A name freed is free again, through the other tracker.
    alice.run("create_group g3", "created group g3 (you own it)");
    assert_eq!(
        answer(&mut carol, "list_groups"),
        ["g2 (owner bob, 1 member)", "g3 (owner alice, 1 member)"]
    );
    for c in [&mut alice, &mut bob, &mut carol] {
        c.quit();
    }
}

#[test]
fn odd_names_and_passwords_get_one_line_each_and_change_nothing() {
    let pair = Pair::start("groups-odd");
    let mut alice = pair.client("alice", &[1, 0]);
    let id_rule =
        "a user id is 1 to 32 letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got";
    let group_rule = "a group name is 1 to 32 letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got";
    let pw_rule = "a password is 1 to 64 bytes without spaces";
    let long = "a".repeat(33);
    alice.fails("create_user onlyone", "wrong arguments for create_user");
    alice.fails("create_user", "wrong arguments for create_user");
    alice.fails(
        &format!("create_user {long} pw"),
        &format!("{id_rule} \"{long}\""),
    );
    alice.fails("create_user \"a b\" pw", &format!("{id_rule} \"a b\""));
    alice.fails("create_user \"\" pw", &format!("{id_rule} \"\""));
    alice.fails("create_user .hidden pw", &format!("{id_rule} \".hidden\""));
    alice.fails("create_user -dash pw", &format!("{id_rule} \"-dash\""));
    alice.fails("create_user al/ice pw", &format!("{id_rule} \"al/ice\""));
    alice.fails("create_user alice \"p w\"", pw_rule);
    alice.fails(&format!("create_user alice {}", "p".repeat(65)), pw_rule);
    // A control character never reaches the engine: the shell refuses the line.
    alice.fails(
        "create_user al\u{7}ice pw",
        "the line holds a control character (U+0007)",
    );
    alice.fails(
        &format!("login {long} pw"),
        &format!("{id_rule} \"{long}\""),
    );
    // Nothing was created: the longest good id and a good name still work.
    let longest = format!("a{}", "b".repeat(31));
    sign_up(&mut alice, &longest);
    sign_up_again_fails(&mut alice, &longest);
    alice.fails(
        &format!("create_group {long}"),
        &format!("{group_rule} \"{long}\""),
    );
    alice.fails(
        "create_group \"my group\"",
        &format!("{group_rule} \"my group\""),
    );
    alice.fails("create_group .g", &format!("{group_rule} \".g\""));
    alice.fails("join_group \"a b\"", &format!("{group_rule} \"a b\""));
    alice.fails("list_files \"a b\"", &format!("{group_rule} \"a b\""));
    alice.fails("create_group", "wrong arguments for create_group");
    assert_eq!(answer(&mut alice, "list_groups"), ["no groups yet"]);
    alice.run(
        "create_group a.b-c_D9",
        "created group a.b-c_D9 (you own it)",
    );
    assert_eq!(
        answer(&mut alice, "list_groups"),
        [format!("a.b-c_D9 (owner {longest}, 1 member) you own it")]
    );
    alice.quit();
}

/// The longest id is whole: creating it again is refused as taken, not as too long.
fn sign_up_again_fails(c: &mut Client, id: &str) {
    c.fails(
        &format!("create_user {id} x"),
        &format!("user {id} already exists"),
    );
}

#[test]
fn two_hundred_wrong_logins_slow_down_only_their_target() {
    let pair = Pair::start("groups-flood");
    let mut mallory = pair.client("mallory", &[0, 1]);
    let mut bob = pair.client("bob", &[0, 1]);
    let mut carol = pair.client("carol", &[1, 0]);
    mallory.run("create_user alice pw-alice", "created user alice");
    bob.run("create_user bob pw-bob", "created user bob");
    sign_up(&mut carol, "carol");
    carol.run("create_group g", "created group g (you own it)");
    // Step 1: 200 wrong passwords for alice, in a row, from one client.
    for _ in 0..200 {
        mallory.proc.send_line("login alice wrong");
    }
    // Step 2: meanwhile bob logs in at once, and the tracker answers a fresh question.
    let sent = Instant::now();
    bob.run("login bob pw-bob", "logged in as bob");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "bob's login took {:?} during the flood",
        sent.elapsed()
    );
    let sent = Instant::now();
    bob.run("list_groups", "g (owner carol, 1 member)");
    assert!(
        sent.elapsed() < Duration::from_secs(5),
        "list_groups took {:?} during the flood",
        sent.elapsed()
    );
    // Step 3: every wrong login got one line: wrong at first, then slow down.
    let mut errors = Vec::new();
    let all = wait_until(LIMIT, || {
        errors = error_lines(&mallory);
        errors.len() >= 200
    });
    assert!(all, "{} of 200 answered", errors.len());
    let wrong = "error: wrong user id or password";
    let slow = "error: too many wrong passwords for alice or from this client; try again in ";
    assert!(errors[..3].iter().all(|e| e == wrong), "{:?}", &errors[..3]);
    assert!(errors.iter().any(|e| e.starts_with(slow)), "{errors:?}");
    assert!(
        errors
            .iter()
            .all(|e| e == wrong || (e.starts_with(slow) && e.ends_with(" s"))),
        "{errors:?}"
    );
    // Step 4: once the wait is over, alice's own password works again.
    until_logged_in(&mut mallory, "alice");
    carol.fails(
        "login carol pw-carol",
        "already logged in as carol (logout first)",
    );
    for c in [&mut mallory, &mut bob, &mut carol] {
        c.quit();
    }
}

/// The client's error lines so far.
fn error_lines(c: &Client) -> Vec<String> {
    c.proc
        .stderr()
        .lines()
        .filter(|l| l.starts_with("error: "))
        .map(str::to_string)
        .collect()
}

/// Tries `login id pw-id` every 2 s until it answers `logged in as id` (bounded: the
/// longest wait the throttle imposes is 64 s, and the flood lasts a few seconds).
fn until_logged_in(c: &mut Client, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = answer(c, &format!("login {id} {}", pw(id)));
        if got.iter().any(|l| l == &format!("logged in as {id}")) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} never logged in again: {}",
            c.proc.stderr()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}
