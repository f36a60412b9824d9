//! A `.mtorrent` of another swarm: its file is fetched through the trackers it names, not the
//! client's own pair, and while neither of those answers the client says so (in the log, and
//! in `show downloads`) without its engine waiting on them at every command. Real trackers and
//! clients on 127.0.0.1, driven through stdin.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::fs;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A client of `pair` in `pair`'s folder `name`, appending its notes to `name`.log there.
fn logged_client(pair: &Pair, name: &str) -> (Proc, PathBuf, PathBuf) {
    let dir = pair.root.path().join(name);
    fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{name}.log"));
    let me = format!("127.0.0.1:{}", free_port());
    let log_arg = log.to_string_lossy().to_string();
    let args = ["client", &me, &pair.addr(0), &pair.addr(1), &log_arg];
    let proc = Proc::spawn_interactive(BIN, &args, &dir, pair.root.path(), name);
    (proc, dir, log)
}

/// Sends `line` and waits (bounded) until stdout grew by a line containing `want`; returns
/// how long the answer took.
fn answered(proc: &mut Proc, line: &str, want: &str) -> Duration {
    let before = proc.stdout().len();
    let started = Instant::now();
    proc.send_line(line);
    let seen = wait_until(LIMIT, || proc.stdout()[before..].contains(want));
    assert!(
        seen,
        "{line:?}: no {want:?} in {:?}",
        &proc.stdout()[before..]
    );
    started.elapsed()
}

#[test]
fn a_file_of_another_pair_of_trackers_is_fetched_through_them() {
    let first = Pair::start("foreign-first");
    let second = Pair::start("foreign-second");
    // Step 1: a seeder of the first pair shares a file of several pieces.
    let data = content(13, 2 * PIECE + 777);
    let mut seeder = first.client("seeder", &[0, 1]);
    fs::write(seeder.path("far.bin"), &data).unwrap();
    seeder.run("share far.bin far.mtorrent", "shared far.bin");
    // Step 2: a client of the second pair only gets that .mtorrent, naming the first pair.
    let mut other = second.client("other", &[0, 1]);
    hand_over(&seeder, &other, "far.mtorrent");
    other.run("get far.mtorrent far.out", "downloading far.bin to far.out");
    other.downloads_become(&["[S] far.bin 1.0 MiB".to_string()]);
    assert_eq!(fs::read(other.path("far.out")).unwrap(), data);
}

#[test]
fn what_a_client_fetched_from_another_swarm_is_offered_there() {
    let first = Pair::start("foreign-offer-first");
    let second = Pair::start("foreign-offer-second");
    let data = content(17, PIECE + 99);
    let mut seeder = first.client("seeder", &[0, 1]);
    fs::write(seeder.path("far.bin"), &data).unwrap();
    seeder.run("share far.bin far.mtorrent", "shared far.bin");
    let mtorrent = fs::read_to_string(seeder.path("far.mtorrent")).unwrap();
    // Step 1: a client of the second pair fetches it; the first pair's trackers then list it
    // as a holder beside the seeder.
    let mut other = second.client("other", &[0, 1]);
    hand_over(&seeder, &other, "far.mtorrent");
    other.run("get far.mtorrent far.out", "downloading far.bin");
    other.downloads_become(&["[S] far.bin 512.1 KiB".to_string()]);
    let hash = info_hash(&mtorrent);
    first.seeders_become(&hash, data.len(), &[seeder.addr(), other.addr()], LIMIT);
    // Step 2: the seeder stops sharing; a newcomer of the first pair gets the file from the
    // client of the second.
    let mut newcomer = first.client("newcomer", &[1]);
    hand_over(&seeder, &newcomer, "far.mtorrent");
    seeder.run("remove far.mtorrent", "removed far.bin");
    first.seeders_become(&hash, data.len(), &[other.addr()], LIMIT);
    newcomer.run("get far.mtorrent far.out", "downloading far.bin");
    newcomer.downloads_become(&["[S] far.bin 512.1 KiB".to_string()]);
    assert_eq!(fs::read(newcomer.path("far.out")).unwrap(), data);
}

/// A "tracker" that takes connections and never answers: every request to it waits the
/// client's whole timeout (2 s).
fn mute() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    (listener, addr)
}

#[test]
fn trackers_that_do_not_answer_are_noted_and_not_waited_on_at_every_command() {
    let pair = Pair::start("foreign-mute");
    let (_a, a) = mute();
    let (_b, b) = mute();
    let data = content(5, 1000);
    let (mut client, dir, log) = logged_client(&pair, "lonely");
    fs::write(
        dir.join("mute.mtorrent"),
        expected_mtorrent([&a, &b], "mute.bin", &data),
    )
    .unwrap();
    answered(
        &mut client,
        "get mute.mtorrent mute.bin",
        "downloading mute.bin",
    );
    let notes = || fs::read_to_string(&log).unwrap_or_default();
    let want = format!("its trackers {a} and {b} do not answer");
    assert!(
        wait_until(LIMIT, || notes().contains(&want)),
        "the log never said {want:?}: {}",
        notes()
    );
    // Neither is asked again for 10 s: the shell's commands are answered at once meanwhile
    // (asking them would hold the engine 4 s every second).
    for _ in 0..4 {
        let took = answered(&mut client, "show downloads", "mute.bin");
        assert!(
            // Asking them would take 4 s (2 s each); the bound is loose for a busy machine.
            took < Duration::from_secs(3),
            "show downloads took {took:?}"
        );
    }
    assert!(!client.stderr().contains("answer"), "{}", client.stderr());
}

#[test]
fn a_download_whose_trackers_do_not_answer_says_so_in_show_downloads() {
    let pair = Pair::start("foreign-dead");
    let (a, b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let data = content(6, 1000);
    let mut client = pair.client("alone", &[0, 1]);
    fs::write(
        client.path("dead.mtorrent"),
        expected_mtorrent([&a, &b], "dead.bin", &data),
    )
    .unwrap();
    client.run("get dead.mtorrent dead.bin", "downloading dead.bin");
    let end = format!("(its trackers {a} and {b} do not answer)");
    client.downloads_where(&end, |lines| {
        lines.len() == 1 && lines[0].starts_with("[D] dead.bin 0% ") && lines[0].ends_with(&end)
    });
    // Past the wait for a holder (20 s) it is failed, for that reason, said once.
    let why = format!("its trackers {a} and {b} do not answer");
    client.downloads_become(&[format!("[F] dead.bin: {why}")]);
    let said = format!("failed: dead.bin: {why}");
    let seen = wait_until(LIMIT, || client.proc.stdout().contains(&said));
    assert!(seen, "{}", client.proc.stdout());
}

/// A "tracker" that takes connections and sends one byte a second, never a whole line: a
/// read never times out, so a request to it never ends. Stops after `limit`.
fn dribbling(limit: Duration) -> String {
    use std::io::Write;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let end = Instant::now() + limit;
        for stream in listener.incoming().take(8).flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                while Instant::now() < end && stream.write_all(b"O").is_ok() {
                    std::thread::sleep(Duration::from_secs(1));
                }
            });
        }
    });
    addr
}

#[test]
fn trackers_that_never_finish_a_line_hold_up_no_command_and_quit() {
    let pair = Pair::start("foreign-dribble");
    let a = dribbling(Duration::from_secs(90));
    let b = dribbling(Duration::from_secs(90));
    let (mut client, dir, _log) = logged_client(&pair, "patient");
    fs::write(
        dir.join("slow.mtorrent"),
        expected_mtorrent([&a, &b], "slow.bin", &content(7, 1000)),
    )
    .unwrap();
    let took = answered(
        &mut client,
        "get slow.mtorrent slow.bin",
        "downloading slow.bin",
    );
    // They would hold it for ever; the bound is loose for a busy machine.
    assert!(took < Duration::from_secs(5), "get took {took:?}");
    for _ in 0..3 {
        let took = answered(&mut client, "show downloads", "slow.bin");
        assert!(
            took < Duration::from_secs(5),
            "show downloads took {took:?}"
        );
    }
    client.send_line("quit");
    let status = client.wait(LIMIT);
    assert!(status.success(), "{}", client.stderr());
}
