//! The client's states as a user lives them (issue 13): every download and share is listed,
//! failed ones say why and can be left (`get` retries, `remove` cancels or clears, the
//! space comes back at once), the destination is checked before anything is fetched, a
//! `.mtorrent` of someone else is never overwritten, progress reads like aria2c's, and names
//! from a `.mtorrent` are printed escaped. Real trackers and clients through stdin.

mod common;
#[allow(dead_code)]
#[path = "client/fake_seeder.rs"]
mod fake_seeder;
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use fake_seeder::*;
use harness::*;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The client's state file, in its folder.
fn state_of(c: &Client) -> String {
    fs::read_to_string(c.dir.join(format!(".p2p-client-{}/client.state", c.port)))
        .unwrap_or_default()
}

/// Asks `show downloads` until the client's stdout holds `want` (a line about a change in
/// the background comes at the latest with the next answer); returns all of its stdout.
fn stdout_shows(c: &mut Client, want: &str) -> String {
    let mut out = String::new();
    let seen = wait_until(LIMIT, || {
        c.proc.send_line("show downloads");
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = c.proc.stdout();
        out.contains(want)
    });
    assert!(
        seen,
        "stdout never showed {want:?}: {out:?}; stderr: {}",
        c.proc.stderr()
    );
    out
}

#[test]
fn a_get_to_a_missing_folder_is_refused_before_anything_is_fetched() {
    let pair = Pair::start("states-dest");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("orphan.bin"), content(1, 600 * KIB)).unwrap();
    seeder.run("share orphan.bin orphan.mtorrent", "shared orphan.bin");
    hand_over(&seeder, &taker, "orphan.mtorrent");
    taker.fails(
        "get orphan.mtorrent newdir/",
        "cannot download to newdir/: no such folder",
    );
    taker.fails(
        "get orphan.mtorrent newdir/x.bin",
        "cannot download to newdir/x.bin: no such folder newdir",
    );
    taker.downloads_become(&["no downloads and nothing shared".to_string()]);
    assert_eq!(state_of(&taker), "", "nothing is saved");
    let mut left = entries(&taker.dir);
    left.retain(|e| !e.starts_with(".p2p-client-"));
    assert_eq!(left, ["orphan.mtorrent"], "nothing is fetched or created");
    seeder.quit();
    taker.quit();
}

#[test]
fn remove_cancels_a_stalled_download_and_get_starts_it_again() {
    let pair = Pair::start("states-cancel");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("lonely"), content(4, 1000)).unwrap();
    seeder.run(
        "share lonely lonely.mtorrent",
        "shared lonely (1000 B, 1 piece)",
    );
    hand_over(&seeder, &taker, "lonely.mtorrent");
    seeder.run("remove lonely.mtorrent", "removed lonely");
    taker.run("get lonely.mtorrent lonely.out", "downloading lonely");
    taker.downloads_become(&["[D] lonely 0% 0/1000 B 0 B/s ETA ? (0 seeders)".to_string()]);
    assert!(taker.path(".lonely.out.p2p-partial").exists());
    taker.run("remove lonely.mtorrent", "cancelled lonely");
    assert!(
        !taker.path(".lonely.out.p2p-partial").exists(),
        "partial data deleted"
    );
    assert!(
        taker.path("lonely.mtorrent").exists(),
        "the user's .mtorrent stays"
    );
    taker.downloads_become(&["no downloads and nothing shared".to_string()]);
    assert_eq!(state_of(&taker), "");
    taker.run("get lonely.mtorrent lonely.out", "downloading lonely");
    seeder.run("share lonely lonely.mtorrent", "shared lonely");
    taker.downloads_become(&["[S] lonely 1000 B".to_string()]);
    assert_eq!(
        fs::read(taker.path("lonely.out")).unwrap(),
        content(4, 1000)
    );
    seeder.quit();
    taker.quit();
}

/// A 2 MiB tmpfs, unmounted (after the clients are gone) on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount() -> Option<SmallDisk> {
        let dir = std::env::temp_dir().join(format!("p2p-full-{}", std::process::id()));
        fs::create_dir_all(&dir).ok()?;
        let disk = SmallDisk(dir);
        let dir = disk.0.to_str()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs", dir])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(disk)
    }

    /// Bytes in use on it, as `df` says.
    fn used(&self) -> u64 {
        let out = Command::new("df")
            .args(["-B1", "--output=used"])
            .arg(&self.0)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        text.lines().nth(1).unwrap_or("").trim().parse().unwrap()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
        let _ = fs::remove_dir(&self.0);
    }
}

fn space_comes_back(disk: &SmallDisk, dir: &Path) {
    assert!(
        wait_until(LIMIT, || disk.used() < 256 * KIB as u64),
        "the disk stays full: {} bytes used, holding {:?}",
        disk.used(),
        entries(dir)
    );
}

#[test]
fn a_full_disk_fails_the_download_at_once_and_get_retries_it() {
    // Declared first, so it is unmounted after every process below has been killed.
    let Some(disk) = SmallDisk::mount() else {
        eprintln!("cannot mount a tmpfs here (not root?): the store's unit test covers it");
        return;
    };
    let pair = Pair::start("states-full");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("big"), content(9, 4 * 1024 * KIB)).unwrap();
    seeder.run("share big big.mtorrent", "shared big (4.0 MiB, 8 pieces)");
    hand_over(&seeder, &taker, "big.mtorrent");
    let dest = disk.0.join("big");
    taker.run(
        &format!("get big.mtorrent {}", dest.display()),
        "downloading big",
    );
    taker.downloads_become(&["[F] big: disk full".to_string()]);
    space_comes_back(&disk, &disk.0);
    assert_eq!(entries(&disk.0), Vec::<String>::new(), "partial deleted");
    // The failure was said once, on its own line.
    stdout_shows(&mut taker, "failed: big: disk full");
    taker.downloads_become(&["[F] big: disk full".to_string()]);
    let out = taker.proc.stdout();
    assert_eq!(out.matches("failed: big").count(), 1, "{out}");
    // `get` again retries (and fails again the same way), `remove` clears it.
    taker.run(
        &format!("get big.mtorrent {}", dest.display()),
        "downloading big",
    );
    taker.downloads_become(&["[F] big: disk full".to_string()]);
    space_comes_back(&disk, &disk.0);
    taker.run("remove big.mtorrent", "cancelled big");
    taker.downloads_become(&["no downloads and nothing shared".to_string()]);
    assert_eq!(state_of(&taker), "");
    seeder.quit();
    taker.quit();
}

#[test]
fn share_never_overwrites_a_mtorrent_it_did_not_write() {
    let pair = Pair::start("states-share");
    let mut c = pair.client("c", &[0, 1]);
    fs::write(c.path("fresh.txt"), "fresh").unwrap();
    fs::write(c.path("other.txt"), "other").unwrap();
    fs::write(c.path("notes.mtorrent"), "my own notes").unwrap();
    c.run(
        "share fresh.txt a.mtorrent",
        "shared fresh.txt (5 B, 1 piece) as a.mtorrent",
    );
    let written = fs::read_to_string(c.path("a.mtorrent")).unwrap();
    c.fails(
        "share other.txt a.mtorrent",
        "a.mtorrent already describes fresh.txt",
    );
    c.fails(
        "share other.txt notes.mtorrent",
        "notes.mtorrent already exists and is not this file's; not overwriting it",
    );
    assert_eq!(fs::read_to_string(c.path("a.mtorrent")).unwrap(), written);
    assert_eq!(
        fs::read_to_string(c.path("notes.mtorrent")).unwrap(),
        "my own notes"
    );
    c.run("share other.txt b.mtorrent", "shared other.txt");
    c.run("remove a.mtorrent", "removed fresh.txt");
    c.downloads_become(&["[S] other.txt 5 B".to_string()]);
    // A share that cannot come back after a restart says so in one readable line.
    c.quit();
    fs::remove_file(c.path("b.mtorrent")).unwrap();
    c.restart();
    let mut err = String::new();
    let said = wait_until(LIMIT, || {
        err = c.proc.stderr();
        err.contains("client: not restoring the share of other.txt (b.mtorrent): b.mtorrent: ")
    });
    assert!(said, "{err}");
    assert!(!err.contains("Share {"), "no Rust debug format: {err}");
    // It is listed as failed until remove clears it.
    c.downloads_become(&[
        "[F] other.txt: not restored: b.mtorrent: No such file or directory (os error 2)"
            .to_string(),
    ]);
    c.run(
        "remove b.mtorrent",
        "cleared other.txt (it was not restored)",
    );
    c.downloads_become(&["no downloads and nothing shared".to_string()]);
    assert_eq!(state_of(&c), "");
    c.quit();
}

#[test]
fn a_download_that_cannot_come_back_is_listed_as_failed_until_get_or_remove() {
    let pair = Pair::start("states-lost");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("gone"), content(7, 1000)).unwrap();
    seeder.run("share gone gone.mtorrent", "shared gone");
    hand_over(&seeder, &taker, "gone.mtorrent");
    seeder.quit();
    taker.run("get gone.mtorrent gone.out", "downloading gone");
    taker.quit();
    let text = fs::read_to_string(taker.path("gone.mtorrent")).unwrap();
    fs::remove_file(taker.path("gone.mtorrent")).unwrap();
    let failed = [
        "[F] gone.out: not restored: gone.mtorrent: No such file or directory (os error 2)"
            .to_string(),
    ];
    // Kept across restarts: each start tries again.
    for _ in 0..2 {
        taker.restart();
        taker.downloads_become(&failed);
        taker.quit();
    }
    taker.restart();
    taker.downloads_become(&failed);
    fs::write(taker.path("gone.mtorrent"), text).unwrap();
    taker.run("get gone.mtorrent gone.out", "downloading gone");
    seeder.restart();
    taker.downloads_become(&["[S] gone 1000 B".to_string()]);
    assert_eq!(fs::read(taker.path("gone.out")).unwrap(), content(7, 1000));
    seeder.quit();
    taker.quit();
}

#[test]
fn shares_and_finished_downloads_are_listed_also_after_a_restart() {
    let pair = Pair::start("states-list");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("notes.txt"), content(2, 600_000)).unwrap();
    seeder.run("share notes.txt notes.mtorrent", "shared notes.txt");
    let listed = ["[S] notes.txt 585.9 KiB".to_string()];
    seeder.downloads_become(&listed);
    hand_over(&seeder, &taker, "notes.mtorrent");
    taker.run("get notes.mtorrent notes.out", "downloading notes.txt");
    taker.downloads_become(&listed);
    for c in [&mut seeder, &mut taker] {
        c.quit();
        c.restart();
        c.downloads_become(&listed);
    }
    seeder.quit();
    taker.quit();
}

#[test]
fn progress_shows_a_recent_rate_time_left_seeders_and_one_complete_line() {
    let pair = Pair::start("states-progress");
    let data = content(31, 4 * 1024 * KIB);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "f", &data);
    let fake = FakeSeeder::start(&pair.addr(0), &info_hash(&text), "f", data.clone());
    fake.allowed.lock().unwrap().extend([0, 1, 2]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(taker.path("f.mtorrent"), &text).unwrap();
    taker.run("get f.mtorrent f.out", "downloading f");
    // Three pieces came, then nothing: the rate falls to 0 within seconds, not an average.
    taker.downloads_become(&["[D] f 37% 1.5/4.0 MiB 0 B/s ETA ? (1 seeder)".to_string()]);
    fake.allowed.lock().unwrap().extend(0..8);
    taker.downloads_become(&["[S] f 4.0 MiB".to_string()]);
    stdout_shows(&mut taker, "complete: f (4.0 MiB)");
    taker.downloads_become(&["[S] f 4.0 MiB".to_string()]);
    let out = taker.proc.stdout();
    assert_eq!(out.matches("complete: f").count(), 1, "said once: {out}");
    assert_eq!(fs::read(taker.path("f.out")).unwrap(), data);
    taker.quit();
}

#[test]
fn names_from_a_mtorrent_are_printed_escaped() {
    let pair = Pair::start("states-escape");
    let mut taker = pair.client("taker", &[0, 1]);
    let name = "evil\u{1b}]0;owned\u{7}\u{1b}[2J.bin";
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], name, b"data");
    fs::write(taker.path("evil.mtorrent"), &text).unwrap();
    let shown = "evil\\u{1b}]0;owned\\u{7}\\u{1b}[2J.bin";
    taker.run(
        "get evil.mtorrent .",
        &format!("downloading {shown} to ./{shown} in the background"),
    );
    taker.downloads_become(&[format!("[D] {shown} 0% 0/4 B 0 B/s ETA ? (0 seeders)")]);
    assert!(!taker.proc.stdout().contains('\u{1b}'), "no raw escape");
    // Errors quoting a name escape it too (the shell may refuse escapes typed in a line,
    // so the name comes from a .mtorrent here too).
    let other = expected_mtorrent([&pair.addr(0), &pair.addr(1)], name, b"other");
    fs::write(taker.path("other.mtorrent"), other).unwrap();
    fs::write(taker.path(name), "in the way").unwrap();
    taker.fails("get other.mtorrent .", &format!("./{shown} already exists"));
    assert!(!taker.proc.stderr().contains('\u{1b}'), "no raw escape");
    taker.quit();
}

#[test]
fn a_download_whose_folder_vanished_fails_saying_so_and_get_retries_it() {
    let pair = Pair::start("states-folder");
    let data = content(32, 4 * 1024 * KIB);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "f", &data);
    let fake = FakeSeeder::start(&pair.addr(0), &info_hash(&text), "f", data.clone());
    fake.allowed.lock().unwrap().extend([0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(taker.path("f.mtorrent"), &text).unwrap();
    fs::create_dir_all(taker.path("sub")).unwrap();
    taker.run(
        "get f.mtorrent sub",
        "downloading f to sub/f in the background",
    );
    taker.downloads_where("two pieces", |l| {
        l.len() == 1 && l[0].starts_with("[D] f 25% 1.0/4.0 MiB ")
    });
    fs::remove_dir_all(taker.path("sub")).unwrap();
    fake.allowed.lock().unwrap().extend(0..8);
    taker.downloads_become(&["[F] f: its folder is missing".to_string()]);
    // The folder it went to means the same file again (not a file named sub), and a retry
    // that cannot start leaves the failure as it was.
    for dest in ["sub/", "sub"] {
        taker.fails(
            &format!("get f.mtorrent {dest}"),
            "cannot download to sub/f: no such folder sub",
        );
    }
    taker.downloads_become(&["[F] f: its folder is missing".to_string()]);
    assert!(!taker.path("sub").exists());
    fs::create_dir_all(taker.path("sub")).unwrap();
    taker.run("get f.mtorrent sub", "downloading f to sub/f");
    taker.downloads_become(&["[S] f 4.0 MiB".to_string()]);
    assert_eq!(fs::read(taker.path("sub/f")).unwrap(), data);
    taker.quit();
}

#[test]
fn a_state_file_naming_one_share_twice_brings_it_back_once() {
    let pair = Pair::start("states-twice");
    let mut c = pair.client("c", &[0, 1]);
    fs::write(c.path("fresh.txt"), "fresh").unwrap();
    c.run("share fresh.txt a.mtorrent", "shared fresh.txt");
    c.quit();
    // As a client before issue 13 could leave it.
    let state = c.dir.join(format!(".p2p-client-{}/client.state", c.port));
    let line = fs::read_to_string(&state).unwrap();
    fs::write(&state, format!("{line}{line}")).unwrap();
    c.restart();
    c.downloads_become(&["[S] fresh.txt 5 B".to_string()]);
    assert!(
        c.proc
            .stderr()
            .contains("client: not restoring the share of fresh.txt (a.mtorrent): a.mtorrent already came back as fresh.txt"),
        "{}",
        c.proc.stderr()
    );
    c.quit();
}

#[test]
fn a_download_nobody_holds_fails_after_a_while_and_get_waits_again() {
    let pair = Pair::start("states-alone");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("alone"), content(5, 1000)).unwrap();
    seeder.run("share alone alone.mtorrent", "shared alone");
    hand_over(&seeder, &taker, "alone.mtorrent");
    seeder.run("remove alone.mtorrent", "removed alone");
    taker.run("get alone.mtorrent alone.out", "downloading alone");
    taker.downloads_become(&["[D] alone 0% 0/1000 B 0 B/s ETA ? (0 seeders)".to_string()]);
    // Past the wait for a holder (20 s), it is failed, said once, its partial kept.
    let failed = ["[F] alone: no seeder has it".to_string()];
    taker.downloads_become(&failed);
    stdout_shows(&mut taker, "failed: alone: no seeder has it");
    assert!(taker.path(".alone.out.p2p-partial").exists());
    taker.run(
        "get alone.mtorrent alone.out",
        "waiting again for a seeder of alone (to alone.out)",
    );
    taker.downloads_become(&["[D] alone 0% 0/1000 B 0 B/s ETA ? (0 seeders)".to_string()]);
    seeder.run("share alone alone.mtorrent", "shared alone");
    taker.downloads_become(&["[S] alone 1000 B".to_string()]);
    assert_eq!(fs::read(taker.path("alone.out")).unwrap(), content(5, 1000));
    let out = taker.proc.stdout();
    assert_eq!(out.matches("failed: alone").count(), 1, "{out}");
    seeder.quit();
    taker.quit();
}

#[test]
fn a_finished_download_is_said_while_the_shell_waits_for_a_line() {
    let pair = Pair::start("states-news");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("notes.txt"), content(6, 600_000)).unwrap();
    seeder.run("share notes.txt notes.mtorrent", "shared notes.txt");
    hand_over(&seeder, &taker, "notes.mtorrent");
    taker.run("get notes.mtorrent notes.out", "downloading notes.txt");
    // No command is typed after the get: the line comes by itself, once.
    let said = wait_until(LIMIT, || {
        taker
            .proc
            .stdout()
            .contains("\ncomplete: notes.txt (585.9 KiB)\n")
    });
    assert!(said, "{:?}", taker.proc.stdout());
    taker.downloads_become(&["[S] notes.txt 585.9 KiB".to_string()]);
    let out = taker.proc.stdout();
    assert_eq!(out.matches("complete: notes.txt").count(), 1, "{out}");
    seeder.quit();
    taker.quit();
}

#[test]
fn clearing_a_download_that_was_not_restored_deletes_its_partial_data() {
    let pair = Pair::start("states-clear");
    let mut seeder = pair.client("seeder", &[0, 1]);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(seeder.path("half"), content(8, 1000)).unwrap();
    seeder.run("share half half.mtorrent", "shared half");
    hand_over(&seeder, &taker, "half.mtorrent");
    seeder.quit();
    taker.run("get half.mtorrent half.out", "downloading half");
    let partial = taker.path(".half.out.p2p-partial");
    assert!(wait_until(LIMIT, || partial.exists()));
    taker.quit();
    fs::remove_file(taker.path("half.mtorrent")).unwrap();
    taker.restart();
    taker.downloads_where("not restored", |l| {
        l.len() == 1 && l[0].starts_with("[F] half.out: not restored: ")
    });
    taker.run(
        "remove half.mtorrent",
        "cleared half.out (it was not restored)",
    );
    assert!(!partial.exists(), "its partial data stayed");
    assert_eq!(state_of(&taker), "");
    taker.quit();
}
