//! The interactive client and the pair of trackers, end to end: real trackers and clients on
//! 127.0.0.1 driven through stdin, every byte compared, trackers killed and restarted. The set-up (a tracker pair and
//! clients) is in client/harness.rs, the fake seeder of the resume test in client/fake_seeder.rs.

mod common;
#[path = "client/fake_seeder.rs"]
mod fake_seeder;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use fake_seeder::*;
use harness::*;
use std::collections::BTreeSet;
use std::fs;
use std::io::Write;

#[test]
fn share_get_show_and_remove_across_two_trackers_and_three_clients() {
    let pair = Pair::start("client-flow");
    // How `shared` and `show downloads` give each file's size (human units, issue 13).
    let sizes = ["3.0 MiB", "512.0 KiB", "0 B", "1 B"];
    let files: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "big file",
            "big.mtorrent",
            content(3, 3 * 1024 * KIB + 12345),
        ),
        ("exact", "exact.mtorrent", content(2, PIECE)),
        ("zero", "zero.mtorrent", vec![]),
        ("one", "one.mtorrent", content(1, 1)),
    ];
    // Step 1: the seeder shares four files; each .mtorrent is checked field by field against
    // an independent SHA-1 of each 512 KiB piece.
    let mut seeder = pair.client("seeder", &[0, 1]);
    for ((name, mt, data), size) in files.iter().zip(sizes) {
        fs::write(seeder.path(name), data).unwrap();
        let pieces = match data.len().div_ceil(PIECE) {
            1 => "1 piece".to_string(),
            n => format!("{n} pieces"),
        };
        seeder.run(
            &format!("share \"{name}\" {mt}"),
            &format!("shared {name} ({size}, {pieces}) as {mt}"),
        );
        let text = fs::read_to_string(seeder.path(mt)).unwrap();
        assert_eq!(
            text,
            expected_mtorrent([&pair.addr(0), &pair.addr(1)], name, data),
            "{mt}"
        );
    }
    // Step 2: a second client gets all four at once, knowing the trackers the other way round.
    let mut second = pair.client("second", &[1, 0]);
    for (name, mt, _) in &files {
        hand_over(&seeder, &second, mt);
        second.run(
            &format!("get {mt} \"{name}.out\""),
            &format!("downloading {name} to {name}.out"),
        );
    }
    let all_seeding: Vec<String> = files
        .iter()
        .zip(sizes)
        .map(|((n, _, _), size)| format!("[S] {n} {size}"))
        .collect();
    second.downloads_become(&all_seeding);
    for (name, _, data) in &files {
        assert_eq!(
            &fs::read(second.path(&format!("{name}.out"))).unwrap(),
            data,
            "{name}"
        );
    }
    // Step 3: a third client gets the big file from both; the seeder removes it meanwhile,
    // so the third carries on from the second client.
    let mut third = pair.client("third", &[0]);
    hand_over(&seeder, &third, "big.mtorrent");
    third.run("get big.mtorrent big.out", "downloading big file");
    seeder.run(
        "remove big.mtorrent",
        "removed big file (the file stays at big file)",
    );
    assert!(
        !seeder.path("big.mtorrent").exists(),
        "the .mtorrent is deleted"
    );
    assert!(seeder.path("big file").exists(), "the file is kept");
    third.downloads_become(&["[S] big file 3.0 MiB".to_string()]);
    assert_eq!(fs::read(third.path("big.out")).unwrap(), files[0].2);
    // Step 4: a file nobody seeds any more stays at 0%, and `remove` cancels it.
    fs::write(seeder.path("lonely"), content(4, 1000)).unwrap();
    seeder.run("share lonely lonely.mtorrent", "shared lonely");
    hand_over(&seeder, &third, "lonely.mtorrent");
    seeder.run("remove lonely.mtorrent", "removed lonely");
    third.run("get lonely.mtorrent lonely.out", "downloading lonely");
    third.downloads_become(&[
        "[S] big file 3.0 MiB".to_string(),
        "[D] lonely 0% 0/1000 B 0 B/s ETA ? (0 seeders)".to_string(),
    ]);
    third.run("remove lonely.mtorrent", "cancelled lonely");
    // Step 5: wrong commands and bad .mtorrent files get one clear line each.
    third.fails("frobnicate now", "unknown command \"frobnicate\"");
    third.fails("share onlyone", "wrong arguments for share");
    third.fails(
        "create_group g",
        "create_group needs a login (create_user, then login)",
    );
    third.fails("share \"unclosed", "a double quote is not closed");
    third.fails("get missing.mtorrent x", "cannot read missing.mtorrent");
    let good = fs::read_to_string(seeder.path("one.mtorrent")).unwrap();
    let lines: Vec<&str> = good.lines().collect();
    // The good file with line `i` (0-based) replaced.
    let with_line = |i: usize, text: &str| {
        let mut l = lines.clone();
        l[i] = text;
        l.join("\n")
    };
    let short_hash = &lines[4][..39];
    let not_hex = "z".repeat(40);
    let bad = [
        (
            "short.mtorrent",
            lines[..3].join("\n"),
            "line 4 (size) is missing",
        ),
        (
            "hashlen.mtorrent",
            with_line(4, short_hash),
            "39 hex digits of piece hashes, expected 40",
        ),
        (
            "nothex.mtorrent",
            with_line(4, &not_hex),
            "piece hashes must be hex digits",
        ),
        (
            "slash.mtorrent",
            with_line(2, "a/b"),
            "line 3: file name contains '/'",
        ),
    ];
    for (file, text, why) in bad {
        fs::write(third.path(file), text).unwrap();
        third.fails(&format!("get {file} out"), why);
    }
    for c in [&mut seeder, &mut second, &mut third] {
        c.quit();
    }
}

#[test]
fn downloads_fail_over_to_the_second_tracker_and_a_restarted_tracker_catches_up() {
    let mut pair = Pair::start("failover");
    let one = content(21, 2 * 1024 * KIB + 7);
    let two = content(22, 1024 * KIB);
    let mut seeder = pair.client("seeder", &[0, 1]);
    fs::write(seeder.path("one"), &one).unwrap();
    fs::write(seeder.path("two"), &two).unwrap();
    seeder.run("share one one.mtorrent", "shared one");
    seeder.run("share two two.mtorrent", "shared two");
    let mut taker = pair.client("taker", &[0, 1]);
    hand_over(&seeder, &taker, "one.mtorrent");
    hand_over(&seeder, &taker, "two.mtorrent");
    // Step 1: tracker A dies mid-download; the download completes, and a new one is found
    // through tracker B, which learned of the seeder from A.
    taker.run("get one.mtorrent one.out", "downloading one");
    pair.kill_tracker(0);
    taker.run("get two.mtorrent two.out", "downloading two");
    taker.downloads_become(&["[S] one 2.0 MiB".to_string(), "[S] two 1.0 MiB".to_string()]);
    assert_eq!(fs::read(taker.path("one.out")).unwrap(), one);
    assert_eq!(fs::read(taker.path("two.out")).unwrap(), two);
    // Said on its own line between prompts.
    assert!(
        taker.proc.stdout().contains("switching"),
        "{}",
        taker.proc.stdout()
    );
    // Step 2: A comes back, catches up from B, and a client that knows only A can fetch.
    pair.start_tracker(0);
    let mut late = pair.client("late", &[0]);
    hand_over(&seeder, &late, "two.mtorrent");
    late.run("get two.mtorrent two.out", "downloading two");
    late.downloads_become(&["[S] two 1.0 MiB".to_string()]);
    assert_eq!(fs::read(late.path("two.out")).unwrap(), two);
    let records = pair.records_agree(LIMIT);
    assert!(
        records.iter().filter(|r| r.contains(" live ")).count() >= 3,
        "A caught up with the seeder's session and both files: {records:#?}"
    );
    for c in [&mut seeder, &mut taker, &mut late] {
        c.quit();
    }
}

#[test]
fn a_killed_client_resumes_its_download_without_fetching_verified_pieces_again() {
    let pair = Pair::start("resume");
    let data = content(31, 4 * 1024 * KIB);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "f", &data);
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    let fake = FakeSeeder::start(&pair.addr(0), &key, "f", data.clone());
    fake.allowed.lock().unwrap().extend([0, 1, 2]);
    // Step 1: the taker gets the three pieces the fake seeder gives, then is SIGKILLed.
    let port = free_port();
    let dir = pair.root.path().join("taker");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("f.mtorrent"), &text).unwrap();
    let trackers = vec![pair.addr(0), pair.addr(1)];
    let mut taker = Client::start(&dir, pair.root.path(), "taker-1", port, trackers.clone());
    taker.run("get f.mtorrent f.out", "downloading f");
    taker.downloads_where("three pieces verified", |l| {
        l.len() == 1 && l[0].starts_with("[D] f 37% 1.5/4.0 MiB ")
    });
    taker.proc.kill();
    assert!(
        dir.join(".f.out.p2p-partial").exists(),
        "the partial file stays for the next run"
    );
    assert!(!dir.join("f.out").exists());
    // Step 2: every piece is on offer now; the taker comes back on the same address and
    // folder, re-verifies what it has, and fetches only the rest.
    fake.asked.lock().unwrap().clear();
    fake.allowed.lock().unwrap().extend(0..8);
    let mut again = Client::start(&dir, pair.root.path(), "taker-2", port, trackers);
    again.downloads_become(&["[S] f 4.0 MiB".to_string()]);
    assert_eq!(fs::read(dir.join("f.out")).unwrap(), data);
    let asked = fake.asked.lock().unwrap().clone();
    assert_eq!(
        asked,
        (3..8).collect::<BTreeSet<u64>>(),
        "only the missing pieces were fetched"
    );
    again.quit();
}

#[test]
fn a_shared_file_rewritten_in_place_is_no_longer_served_and_nothing_bad_is_stored() {
    let pair = Pair::start("rewritten");
    let data = content(50, 4 * PIECE);
    let mut seeder = pair.client("seeder", &[0, 1]);
    fs::write(seeder.path("doc.bin"), &data).unwrap();
    seeder.run("share doc.bin doc.mtorrent", "shared doc.bin");
    let text = fs::read_to_string(seeder.path("doc.mtorrent")).unwrap();
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    assert!(wait_until(LIMIT, || seeders(
        &pair.addr(0),
        &key,
        data.len()
    ) == 1));
    // 512 KiB in the middle change, the size stays.
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(seeder.path("doc.bin"))
        .unwrap();
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(PIECE as u64 + 1000)).unwrap();
    f.write_all(&content(51, PIECE)).unwrap();
    drop(f);
    let mut taker = pair.client("taker", &[0, 1]);
    hand_over(&seeder, &taker, "doc.mtorrent");
    taker.run("get doc.mtorrent doc.out", "downloading doc.bin");
    // The seeder notices at its first read, says so by name on a line of its own (its
    // prompt hears no diagnostics), and leaves the seeder list.
    let said = "no longer sharing doc.bin: it changed or vanished on disk";
    assert!(
        wait_until(LIMIT, || seeder.proc.stdout().contains(said)),
        "{}",
        seeder.proc.stdout()
    );
    assert!(
        !seeder.proc.stderr().contains("peer:"),
        "{}",
        seeder.proc.stderr()
    );
    assert!(wait_until(LIMIT, || seeders(
        &pair.addr(0),
        &key,
        data.len()
    ) == 0));
    assert!(
        !seeder.proc.stderr().contains(&key),
        "messages name the file"
    );
    taker.downloads_where("no piece of it", |l| {
        l.len() == 1 && l[0].starts_with("[D] doc.bin 0% ")
    });
    assert!(
        !taker.path("doc.out").exists(),
        "nothing reached its destination"
    );
    taker.quit();
    seeder.quit();
}

#[test]
fn a_download_whose_every_seeder_sends_bad_data_is_given_up_by_name() {
    let pair = Pair::start("all-liars");
    let data = content(52, 3 * PIECE);
    let text = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "doc.bin", &data);
    let key = p2p::chunk::to_hex(&p2p::hashing::sha1(text.lines().nth(4).unwrap().as_bytes()));
    // The only seeder serves other bytes for every piece.
    let liar = FakeSeeder::start(&pair.addr(0), &key, "doc.bin", content(53, data.len()));
    liar.allowed.lock().unwrap().extend(0..3);
    let mut taker = pair.client("taker", &[0, 1]);
    fs::write(taker.path("doc.mtorrent"), &text).unwrap();
    taker.run("get doc.mtorrent doc.out", "downloading doc.bin");
    taker.downloads_where("the download failed", |l| {
        l.len() == 1 && l[0].starts_with("[F] doc.bin")
    });
    let said = "failed: doc.bin: every peer holding the rest of it sent bad data";
    assert!(
        wait_until(LIMIT, || taker.proc.stdout().contains(said)),
        "{}",
        taker.proc.stdout()
    );
    let err = taker.proc.stderr();
    assert!(
        !err.contains("peer:"),
        "no diagnostics at the prompt: {err}"
    );
    assert!(!taker.path("doc.out").exists());
    assert!(
        !taker.path(".doc.out.p2p-partial").exists(),
        "partial data deleted"
    );
    assert!(liar.asked.lock().unwrap().len() <= 3);
    taker.quit();
}
