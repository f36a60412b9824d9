use super::*;
use crate::tracker::pair::kinds::now_unix;

const A: &str = "127.0.0.1:9001";

fn hash(c: char) -> String {
    c.to_string().repeat(40)
}

#[test]
fn only_a_session_changes_its_own_registrations() {
    let t = Tables::new("me");
    let alice = t.open(A, "a".repeat(32)).unwrap();
    let mallory = t.open("127.0.0.1:9002", "b".repeat(32)).unwrap();
    let size = 3 * 512 * 1024;
    t.seed(&alice, &hash('1'), size, "f", ("07", false))
        .unwrap();
    // Mallory claims the same info hash with another size: a different file.
    t.seed(&mallory, &hash('1'), 5, "f", ("01", false)).unwrap();
    assert_eq!(
        t.seeders(&hash('1'), size),
        [(A.to_string(), "07".to_string())]
    );
    t.unseed(&mallory, &hash('1'), size).unwrap();
    assert_eq!(
        t.seeders(&hash('1'), size).len(),
        1,
        "mallory removed nothing of alice's"
    );
    assert!(
        t.quit(&"c".repeat(32)).is_err(),
        "a made-up token changes nothing"
    );
    t.quit(&mallory).unwrap();
    assert_eq!(t.seeders(&hash('1'), size).len(), 1);
    assert!(
        t.seed(&mallory, &hash('2'), 5, "g", ("01", false)).is_err(),
        "a closed session"
    );
    t.quit(&alice).unwrap();
    assert!(t.seeders(&hash('1'), size).is_empty());
}

#[test]
fn registrations_are_bounded_per_session() {
    let t = Tables::new("me");
    let s = t.open(A, "a".repeat(32)).unwrap();
    for i in 0..MAX_FILES_PER_SESSION {
        t.seed(&s, &format!("{:040x}", i), 1, "f", ("01", false))
            .unwrap();
    }
    let over = t.seed(&s, &format!("{:040x}", 99_999), 1, "f", ("01", false));
    assert!(over.unwrap_err().starts_with("too_many_files"));
    // Changing a registration it has is still fine.
    t.seed(&s, &format!("{:040x}", 0), 1, "f", ("00", false))
        .unwrap();
    assert!(
        t.seed(&s, &hash('1'), 1, "f", ("ff", false)).is_err(),
        "bits past the end"
    );
}

#[test]
fn two_tables_fed_the_same_records_in_any_order_agree() {
    let a = Tables::new("a");
    let tok = "d".repeat(32);
    a.open(A, tok.clone()).unwrap();
    a.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    a.unseed(&tok, &hash('1'), 1).unwrap();
    a.seed(&tok, &hash('2'), 1, "g", ("01", false)).unwrap();
    let changes = a.since(0, 100);
    let forward = Tables::new("b");
    let backward = Tables::new("b");
    for (seq, r) in &changes {
        forward.merge(r.clone(), "a", "e", *seq).unwrap();
    }
    for (seq, r) in changes.iter().rev() {
        backward.merge(r.clone(), "a", "e", *seq).unwrap();
    }
    assert_eq!(forward.page(0, 100), a.page(0, 100));
    assert_eq!(backward.page(0, 100), a.page(0, 100));
    assert_eq!(forward.mark_of("a", "e"), changes.last().unwrap().0);
    assert_eq!(forward.mark_of("a", "other epoch"), 0);
}

#[test]
fn records_never_show_a_token() {
    let t = Tables::new("me");
    let tok = "e".repeat(32);
    t.open(A, tok.clone()).unwrap();
    t.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    let page = t.page(0, 10);
    assert_eq!(page.len(), 2);
    assert!(page.iter().all(|l| !l.contains(&tok)), "{page:?}");
}

#[test]
fn a_removed_session_takes_its_registrations_along_at_the_twin() {
    let a = Tables::new("a");
    let b = Tables::new("b");
    let tok = "f".repeat(32);
    a.open(A, tok.clone()).unwrap();
    for (seq, r) in a.since(0, 10) {
        b.merge(r, "a", "e", seq).unwrap();
    }
    // The twin forgets the session while a registration made at `a` is on its way.
    b.with(|t| t.end_session(&tok));
    a.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    for (seq, r) in a.since(1, 10) {
        b.merge(r, "a", "e", seq).unwrap();
    }
    assert!(b.with(|t| t.owned.contains_key(&tok)));
    b.sweep(0);
    assert!(
        !b.with(|t| t.owned.contains_key(&tok)),
        "the orphan is removed"
    );
}

#[test]
fn old_tombstones_go_only_once_the_twin_has_them() {
    let t = Tables::new("me");
    let old = Record::parse(&format!("3@twin session {} gone 1", "a".repeat(32))).unwrap();
    t.merge(old, "twin", "e", 1).unwrap();
    let (_, seq) = t.size();
    assert_eq!(t.compact(seq - 1).0.len(), 1, "not acknowledged yet: kept");
    assert_eq!(t.compact(seq).0.len(), 0, "acknowledged and old: gone");
    let fresh = Record::parse(&format!(
        "4@twin session {} gone {}",
        "b".repeat(32),
        now_unix()
    ));
    t.merge(fresh.unwrap(), "twin", "e", 2).unwrap();
    assert_eq!(t.compact(u64::MAX).0.len(), 1, "a recent tombstone stays");
}

#[test]
fn records_that_mean_nothing_here_are_refused() {
    let t = Tables::new("me");
    for bad in [
        format!("1@x session {} live nowhere", "a".repeat(32)),
        "1@x session short live 127.0.0.1:1".to_string(),
        format!(
            "1@x seed {} {} 10 live f ff",
            "a".repeat(32),
            "b".repeat(40)
        ),
        format!(
            "1@x seed {} {} ten live f 01",
            "a".repeat(32),
            "b".repeat(40)
        ),
        format!(
            "1@x seed {} {} 10 live ../f 01",
            "a".repeat(32),
            "b".repeat(40)
        ),
    ] {
        let r = Record::parse(&bad).unwrap();
        assert!(t.merge(r, "x", "e", 1).is_err(), "{bad}");
    }
    assert_eq!(t.size().0, 0);
}

#[test]
fn a_removal_through_one_tracker_beats_a_registration_through_the_other_not_yet_seen() {
    // The registering tracker's name sorts last: a tie of counters would go its way.
    let (a, b) = (Tables::new("z"), Tables::new("b"));
    let tok = "9".repeat(32);
    a.open(A, tok.clone()).unwrap();
    for (seq, r) in a.since(0, 10) {
        b.merge(r, "a", "e", seq).unwrap();
    }
    // Registered through `a`; `a` dies before passing it on; removed through `b`.
    a.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    b.unseed(&tok, &hash('1'), 1).unwrap();
    // `a` comes back and pushes the registration: the removal stays.
    for (seq, r) in a.since(1, 10) {
        b.merge(r, "a", "e", seq).unwrap();
    }
    b.with(|t| t.hear(&tok));
    assert!(b.seeders(&hash('1'), 1).is_empty(), "{:?}", b.page(0, 10));
}

#[test]
fn silent_sessions_give_way_to_live_ones_at_the_cap() {
    let t = Tables::new("me");
    for i in 0..MAX_SESSIONS {
        t.open(A, format!("{i:032x}")).unwrap();
    }
    // All of them are live: the cap holds.
    assert!(t.open(A, "f".repeat(32)).unwrap_err().starts_with("full"));
    t.with(|t| t.heard.clear());
    assert!(
        t.open(A, "f".repeat(32)).is_ok(),
        "a silent session gave way"
    );
}

#[test]
fn tombstones_beyond_the_bound_go_once_the_twin_has_them() {
    let t = Tables::new("me");
    let tok = "8".repeat(32);
    t.open(A, tok.clone()).unwrap();
    for i in 0..MAX_TOMBSTONES + 10 {
        t.unseed(&tok, &format!("{i:040x}"), 1).unwrap();
    }
    t.sweep(0);
    assert_eq!(
        t.with(|t| t.records.tombstones()),
        MAX_TOMBSTONES + 10,
        "not acknowledged"
    );
    t.sweep(u64::MAX);
    assert_eq!(t.with(|t| t.records.tombstones()), MAX_TOMBSTONES);
}

#[test]
fn a_tracker_resumed_from_a_long_freeze_does_not_forget_its_sessions() {
    let long_ago = Instant::now().checked_sub(FORGET * 2).unwrap();
    for resumed in [false, true] {
        let t = Tables::new("me");
        let tok = "7".repeat(32);
        t.open(A, tok.clone()).unwrap();
        t.with(|t| {
            t.heard.insert(tok.clone(), long_ago);
            t.started = long_ago;
        });
        if resumed {
            t.resumed();
        }
        t.sweep(0);
        let kept = t.alive(&tok).is_ok();
        assert_eq!(kept, resumed, "resumed: {resumed}");
    }
}

#[test]
fn sharing_again_outranks_a_removal_through_the_twin_not_yet_seen() {
    let (a, b) = (Tables::new("z"), Tables::new("b"));
    let tok = "6".repeat(32);
    a.open(A, tok.clone()).unwrap();
    a.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    for (seq, r) in a.since(0, 10) {
        b.merge(r, "z", "e", seq).unwrap();
    }
    b.unseed(&tok, &hash('1'), 1).unwrap();
    std::thread::sleep(Duration::from_millis(5));
    // The same registration again, at `a`, which has not seen the removal yet.
    a.seed(&tok, &hash('1'), 1, "f", ("01", false)).unwrap();
    for (seq, r) in b.since(0, 10) {
        a.merge(r, "b", "e", seq).unwrap();
    }
    assert_eq!(a.seeders(&hash('1'), 1).len(), 1, "{:?}", a.page(0, 10));
}

#[test]
fn a_version_far_in_the_future_is_refused() {
    let t = Tables::new("me");
    let forged = format!(
        "18446744073709551615@x session {} live 127.0.0.1:9",
        "5".repeat(32)
    );
    assert!(
        t.merge(Record::parse(&forged).unwrap(), "x", "e", 1)
            .is_err()
    );
    let fine = format!(
        "{}@x session {} live 127.0.0.1:9",
        now_unix() * 1000,
        "5".repeat(32)
    );
    assert!(t.merge(Record::parse(&fine).unwrap(), "x", "e", 2).is_ok());
}
