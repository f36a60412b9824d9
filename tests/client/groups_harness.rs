//! Helpers for the accounts-and-groups tests (issue 14): signing users up, building a group
//! through the real join/accept flow, a command's whole stdout answer read up to a sentinel,
//! commands asked again until they answer (for states that settle in the background), and
//! the id (`list_files`) and size words a file's bytes give. The lines they wait for are
//! design14.md's client lines, word for word.

use super::common::*;
use super::harness::*;
use std::time::{Duration, Instant};

/// A file of four pieces, the last one short: pieces matter.
pub const BIG: usize = 3 * PIECE + 1234;
/// How the client writes [`BIG`]'s size.
pub const BIG_SIZE: &str = "1.5 MiB";

/// The password each test gives user `id`.
pub fn pw(id: &str) -> String {
    format!("pw-{id}")
}

/// The full info hash of a file's bytes: SHA-1 of its piece hashes in hex, as a `.mtorrent`'s.
pub fn hash_of(data: &[u8]) -> String {
    info_hash(&expected_mtorrent(["a", "b"], "x", data))
}

/// The id `list_files` shows for a file: the first 8 hex digits of its info hash.
pub fn id_of(data: &[u8]) -> String {
    hash_of(data)[..8].to_string()
}

/// `create_user id pw-id` then `login id pw-id`.
pub fn sign_up(c: &mut Client, id: &str) {
    c.run(
        &format!("create_user {id} {}", pw(id)),
        &format!("created user {id}"),
    );
    c.run(
        &format!("login {id} {}", pw(id)),
        &format!("logged in as {id}"),
    );
}

/// `owner` (logged in as `owner_id`) creates group `g`; each of `members` (logged in) asks
/// to join and is accepted, in order.
pub fn group_of(owner: &mut Client, owner_id: &str, g: &str, members: &mut [(&mut Client, &str)]) {
    owner.run(
        &format!("create_group {g}"),
        &format!("created group {g} (you own it)"),
    );
    for (m, id) in members.iter_mut() {
        m.run(
            &format!("join_group {g}"),
            &format!("asked to join {g}; its owner {owner_id} decides"),
        );
        owner.run(
            &format!("accept_request {g} {id}"),
            &format!("{id} is now a member of {g}"),
        );
    }
}

/// Everything `command` printed on stdout, line by line: a sentinel command that fails is
/// sent after it, and the shell answers in order, so once the sentinel's error line is on
/// stderr the answer is whole.
pub fn answer(c: &mut Client, command: &str) -> Vec<String> {
    let (out, err) = (c.proc.stdout().len(), c.proc.stderr().len());
    c.proc.send_line(command);
    c.proc.send_line("sentinel");
    let done = wait_until(LIMIT, || {
        c.proc.stderr()[err..].contains("unknown command \"sentinel\"")
    });
    assert!(done, "{command:?}: no answer; stderr: {}", c.proc.stderr());
    c.proc.stdout()[out..]
        .lines()
        .filter(|l| !is_tracker_news(l))
        .map(str::to_string)
        .collect()
}

/// Whether `line` is the client's news of the tracker pair (a switch, an outage, a
/// recovery), which may come before any answer after a tracker was killed.
fn is_tracker_news(line: &str) -> bool {
    (line.starts_with("tracker ")
        && (line.contains(" stopped answering ") || line.ends_with(" answers again; using it")))
        || line.starts_with("no tracker answers")
}

/// Sends `command` once a second until its stdout answer holds a line containing `expect`
/// (bounded); returns that answer. For what settles in the background (seeders, failover).
pub fn until_answers(c: &mut Client, command: &str, expect: &str) -> Vec<String> {
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = answer(c, command);
        if got.iter().any(|l| l.contains(expect)) {
            return got;
        }
        assert!(
            Instant::now() < deadline,
            "{command:?}: never answered {expect:?}; last: {got:?}; stderr: {}",
            c.proc.stderr()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Sends `command` and waits until it answers `ok` on stdout or `err` on stderr; returns
/// whether it succeeded. For two clients racing for one name.
pub fn either(c: &mut Client, sent: (usize, usize), ok: &str, err: &str) -> bool {
    let (out, errs) = sent;
    let mut won = false;
    let answered = wait_until(LIMIT, || {
        won = c.proc.stdout()[out..].contains(ok);
        won || c.proc.stderr()[errs..].contains(err)
    });
    assert!(
        answered,
        "wanted {ok:?} or {err:?}; stdout: {}; stderr: {}",
        c.proc.stdout(),
        c.proc.stderr()
    );
    won
}

/// Where a client's stdout and stderr end now, for [`either`].
pub fn marks(c: &Client) -> (usize, usize) {
    (c.proc.stdout().len(), c.proc.stderr().len())
}

/// Asks `show downloads` until it lists every line of `want` (others may be there too).
pub fn downloads_hold(c: &mut Client, want: &[String]) {
    c.downloads_where(&format!("{want:?}"), |lines| {
        want.iter().all(|w| lines.contains(&w.as_str()))
    });
}

/// The `list_files` line of a file shared by one member, with its seeder count.
pub fn file_line(name: &str, size: &str, seeders: usize, data: &[u8], from: &str) -> String {
    let s = if seeders == 1 { "" } else { "s" };
    format!(
        "{name} {size} {seeders} seeder{s} id {} from {from}",
        id_of(data)
    )
}

/// Sends `command` once a second until its stdout answer is exactly `want` (bounded).
pub fn until_lines(c: &mut Client, command: &str, want: &[String]) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let got = answer(c, command);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{command:?}: wanted {want:?}; last: {got:?}; stderr: {}",
            c.proc.stderr()
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}
