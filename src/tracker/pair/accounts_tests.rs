//! Unit tests of the account and group operations on the tables: ids, logins, the group
//! flow, shares and piece hashes for members only, the twin's records in the indexes, and the
//! shapes of account records.

use super::super::group_files::GroupFile;
use super::super::{Inner, Tables};
use super::*;
use crate::tracker::pair::records::Record;

const A: &str = "127.0.0.1:9001";
const V: &str = "login_first";

fn tok(c: char) -> String {
    c.to_string().repeat(32)
}

fn secret() -> Secret {
    Secret {
        salt: vec![1; 16],
        iterations: 1,
        hash: vec![2; 20],
    }
}

/// A session of `t` logged in as `id` (created now).
fn logged_in(t: &Tables, c: char, id: &str) -> String {
    let s = t.open(A, tok(c)).unwrap();
    if t.login_secret(&s, id).unwrap().is_none() {
        t.create_user(&s, id, &secret()).unwrap();
    }
    t.bind_login(&s, id).unwrap();
    s
}

fn inner(t: &Tables) -> std::sync::MutexGuard<'_, Inner> {
    t.lock()
}

#[test]
fn an_id_is_taken_once_and_a_login_is_the_sessions() {
    let t = Tables::new("me");
    let s = t.open(A, tok('a')).unwrap();
    assert!(
        t.create_group(&s, "create_group", "g")
            .unwrap_err()
            .starts_with(V)
    );
    t.may_create_user(&s, "alice").unwrap();
    t.create_user(&s, "alice", &secret()).unwrap();
    let again = t.create_user(&s, "alice", &secret()).unwrap_err();
    assert_eq!(again, "taken user alice already exists");
    assert!(t.may_create_user(&s, "alice").is_err());
    let stored = t.login_secret(&s, "alice").unwrap().unwrap();
    assert_eq!((stored.salt, stored.iterations), (vec![1; 16], 1));
    assert!(t.login_secret(&s, "nobody").unwrap().is_none());
    t.bind_login(&s, "alice").unwrap();
    let twice = t.login_secret(&s, "alice").err().unwrap();
    assert_eq!(twice, "logged_in already logged in as alice (logout first)");
    t.create_group(&s, "create_group", "g").unwrap();
    t.logout(&s).unwrap();
    assert_eq!(t.logout(&s).unwrap_err(), "not_logged_in not logged in");
    // The session stays, at its address.
    assert_eq!(inner(&t).sessions.get(&s).map(String::as_str), Some(A));
    // RECORDS shows neither salt nor hash.
    let page = t.page(0, 100).join("\n");
    assert!(page.contains("user alice live - 1 -"), "{page}");
    assert!(!page.contains(&"01".repeat(16)), "{page}");
}

#[test]
fn the_group_flow_and_an_owner_who_leaves() {
    let t = Tables::new("me");
    let alice = logged_in(&t, 'a', "alice");
    let bob = logged_in(&t, 'b', "bob");
    let carol = logged_in(&t, 'c', "carol");
    t.create_group(&alice, V, "g").unwrap();
    assert_eq!(
        t.create_group(&bob, V, "g").unwrap_err(),
        "taken group g already exists"
    );
    assert_eq!(t.join_group(&bob, V, "g").unwrap(), "alice");
    assert_eq!(
        t.join_group(&bob, V, "g").unwrap_err(),
        "asked you already asked to join g"
    );
    assert_eq!(
        t.join_group(&alice, V, "g").unwrap_err(),
        "member you are already a member of g"
    );
    assert_eq!(
        t.join_group(&bob, V, "h").unwrap_err(),
        "no_group no group h"
    );
    t.join_group(&carol, V, "g").unwrap();
    assert_eq!(
        t.list_requests(&bob, V, "g").unwrap_err(),
        "not_member you are not a member of g"
    );
    assert_eq!(t.list_requests(&alice, V, "g").unwrap(), ["bob", "carol"]);
    // A request rejected goes; asked again, it is there again.
    assert_eq!(
        t.answer_request(&bob, V, ("g", "carol"), false)
            .unwrap_err(),
        "not_owner only g's owner, alice, rejects requests"
    );
    t.answer_request(&alice, V, ("g", "carol"), false).unwrap();
    assert_eq!(t.list_requests(&alice, V, "g").unwrap(), ["bob"]);
    assert!(t.answer_request(&alice, V, ("g", "carol"), false).is_err());
    t.join_group(&carol, V, "g").unwrap();
    assert_eq!(
        t.answer_request(&alice, V, ("g", "dave"), true)
            .unwrap_err(),
        "no_request dave has not asked to join g"
    );
    // carol joins first: she is the one an owner who leaves hands the group to.
    t.answer_request(&alice, V, ("g", "carol"), true).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2));
    t.answer_request(&alice, V, ("g", "bob"), true).unwrap();
    assert_eq!(
        t.list_requests(&bob, V, "g").unwrap_err(),
        "not_owner only g's owner, alice, sees its requests"
    );
    assert_eq!(
        t.list_groups(&bob, V).unwrap(),
        ["g alice 3 member".to_string()]
    );
    assert_eq!(t.list_groups(&alice, V).unwrap(), ["g alice 3 owner"]);
    assert_eq!(t.leave_group(&alice, V, "g").unwrap(), "owner carol");
    assert_eq!(
        t.leave_group(&alice, V, "g").unwrap_err(),
        "not_member you are not a member of g"
    );
    assert_eq!(t.leave_group(&bob, V, "g").unwrap(), "left");
    t.join_group(&alice, V, "g").unwrap();
    assert_eq!(t.list_groups(&alice, V).unwrap(), ["g carol 1 asked"]);
    assert_eq!(t.leave_group(&carol, V, "g").unwrap(), "gone");
    assert!(t.list_groups(&alice, V).unwrap().is_empty());
    // The group and its pending request went; a new group of that name starts afresh.
    t.create_group(&bob, V, "g").unwrap();
    assert!(t.list_requests(&bob, V, "g").unwrap().is_empty());
}

fn hex_of(pieces: usize) -> String {
    (0..pieces).map(|i| format!("{i:040x}")).collect()
}

#[test]
fn shares_and_piece_hashes_are_for_members_only() {
    let t = Tables::new("me");
    let alice = logged_in(&t, 'a', "alice");
    let mallory = logged_in(&t, 'm', "mallory");
    t.create_group(&alice, V, "g").unwrap();
    let size = 1100 * 512 * 1024 + 5;
    let hex = hex_of(1101);
    let hash = crate::chunk::to_hex(&crate::hashing::sha1(hex.as_bytes()));
    let file = GroupFile {
        group: "g",
        hash: &hash,
        size,
    };
    assert_eq!(
        t.may_upload(&mallory, V, &file).unwrap_err(),
        "not_member you are not a member of g"
    );
    t.may_upload(&alice, V, &file).unwrap();
    t.upload(&alice, V, &file, "my notes.txt", &hex).unwrap();
    let listed = t.list_files(&alice, V, "g").unwrap();
    assert_eq!(listed, [format!("{hash} {size} my%20notes.txt alice 0")]);
    assert!(t.list_files(&mallory, V, "g").is_err());
    assert_eq!(t.file_hashes(&alice, V, &file, 0).unwrap(), hex);
    assert_eq!(
        t.file_hashes(&alice, V, &file, 1100).unwrap(),
        hex[1100 * 40..]
    );
    assert_eq!(t.file_hashes(&alice, V, &file, 1101).unwrap(), "");
    assert!(t.file_hashes(&alice, V, &file, 1102).is_err());
    assert!(t.file_hashes(&mallory, V, &file, 0).is_err());
    // A seeder counts once it holds every piece and is logged in as a member.
    let full = crate::chunk::Bitset::full(1101).to_word();
    t.seed(&alice, &hash, size, "my notes.txt", (&full, true))
        .unwrap();
    t.seed(&mallory, &hash, size, "x", (&full, false)).unwrap();
    assert!(t.list_files(&alice, V, "g").unwrap()[0].ends_with(" alice 1"));
    assert_eq!(t.group_seeders(&alice, V, &file).unwrap().len(), 1);
    // A stranger's STOP_SHARE writes nothing into the group (a stranger found it did).
    let before = inner(&t).records.seq();
    assert_eq!(
        t.stop_share(&mallory, V, &file).unwrap_err(),
        "not_member you are not a member of g"
    );
    assert_eq!(inner(&t).records.seq(), before);
    // alice's registration is private: SEEDERS, open to anyone, lists only mallory's.
    assert_eq!(t.seeders(&hash, size).len(), 1);
    // RECORDS shows no group file's name or piece hashes, and its info hash only in
    // mallory's public registration; nothing of it can be guessed back from a digest.
    let shown = t.page(0, 1000);
    assert!(!shown.iter().any(|l| l.contains("notes")), "{shown:#?}");
    let named: Vec<&String> = shown.iter().filter(|l| l.contains(&hash)).collect();
    assert!(
        named.len() == 1 && named[0].contains(" live x "),
        "{shown:#?}"
    );
    // Leaving takes the shares along; the piece hashes stay until the sweep finds them old.
    t.join_group(&mallory, V, "g").unwrap();
    t.answer_request(&alice, V, ("g", "mallory"), true).unwrap();
    assert_eq!(t.leave_group(&alice, V, "g").unwrap(), "owner mallory");
    assert!(t.list_files(&mallory, V, "g").unwrap().is_empty());
    assert_eq!(inner(&t).index.meta.len(), 1);
    inner(&t).sweep_meta();
    assert_eq!(inner(&t).index.meta.len(), 1, "written just now");
    // Pretend the parts are old: a record with an old version, as from the state log.
    let old: Vec<Record> = {
        let t = inner(&t);
        let keys = t.records.keys_with_prefix("meta ");
        keys.filter_map(|k| t.records.record(k)).collect()
    };
    let aged = Tables::new("other");
    for (i, mut r) in old.into_iter().enumerate() {
        r.version.counter = 1_000;
        aged.load(r, i as u64 + 1).unwrap();
    }
    assert_eq!(inner(&aged).index.meta_hex, 1101 * 40);
    inner(&aged).sweep_meta();
    assert_eq!(inner(&aged).index.meta_hex, 0);
}

#[test]
fn the_twins_records_land_in_the_indexes() {
    let a = Tables::new("a");
    let alice = logged_in(&a, 'a', "alice");
    a.create_group(&alice, V, "g").unwrap();
    let b = Tables::new("b");
    for (seq, r) in a.since(0, 100) {
        b.merge(r, "a", "e", seq).unwrap();
    }
    b.seen(std::slice::from_ref(&alice));
    assert_eq!(b.list_groups(&alice, V).unwrap(), ["g alice 1 owner"]);
    assert!(
        b.login_secret(&alice, "alice").is_err(),
        "logged in there too"
    );
}

#[test]
fn account_records_of_the_wrong_shape_are_refused() {
    let t = Tables::new("me");
    let h = "b".repeat(40);
    for bad in [
        format!("1@x user alice live {} 1 {}", "a".repeat(31), h),
        "1@x user alice live - 1 -".to_string(),
        format!("1@x user .alice live {} 1 {}", "a".repeat(32), h),
        "1@x group g live bad%20owner".to_string(),
        "1@x member g alice live soon".to_string(),
        format!("1@x share g alice {h} 10 live ../x"),
        format!("1@x share g alice {h} ten live x"),
        format!("1@x meta {h} 10 1 live {h}"),
        format!("1@x meta {h} 10 0 live {}", "b".repeat(80)),
        format!("1@x session {} live 127.0.0.1:1 al%ice", "a".repeat(32)),
    ] {
        let r = Record::parse(&bad).unwrap();
        assert!(t.merge(r, "x", "e", 1).is_err(), "{bad}");
    }
    for good in [
        format!("1@x user alice live {} 40000 {}", "a".repeat(32), h),
        format!("1@x meta {h} 10 0 live {h}"),
        format!("1@x share g alice {h} 10 live a%20b"),
        format!("1@x session {} live 127.0.0.1:1 alice", "a".repeat(32)),
    ] {
        let r = Record::parse(&good).unwrap();
        assert!(t.merge(r, "x", "e", 1).is_ok(), "{good}");
    }
}

#[test]
fn records_of_an_earlier_group_of_the_name_make_nobody_a_member_of_the_new_one() {
    // A reviewer's sequence: bob was accepted into alice's g at one tracker, which died
    // before passing it on; alice left through the other, so g was gone; the accept came
    // back late. Then carol made a new g: bob must not be in it, nor a late dave.
    let t = Tables::new("me");
    let alice = logged_in(&t, 'a', "alice");
    let carol = logged_in(&t, 'c', "carol");
    let bob = logged_in(&t, 'b', "bob");
    t.create_group(&alice, V, "g").unwrap();
    assert_eq!(t.leave_group(&alice, V, "g").unwrap(), "gone");
    let late = |who: &str, counter: u64| Record {
        key: format!("member g {who}"),
        version: crate::tracker::pair::records::Version {
            counter,
            origin: "twin".into(),
        },
        value: Value::Live("1".into()),
    };
    t.merge(late("bob", 5), "twin", "e", 1).unwrap();
    t.create_group(&carol, V, "g").unwrap();
    assert_eq!(t.list_groups(&carol, V).unwrap(), ["g carol 1 owner"]);
    assert_eq!(
        t.list_files(&bob, V, "g").unwrap_err(),
        "not_member you are not a member of g"
    );
    // One that arrives after the new group was made goes at once, too.
    let dave = logged_in(&t, 'd', "dave");
    t.merge(late("dave", 6), "twin", "e", 2).unwrap();
    assert!(inner(&t).records.live("member g dave").is_none());
    assert_eq!(
        t.list_files(&dave, V, "g").unwrap_err(),
        "not_member you are not a member of g"
    );
    // The hand-over keeps the group's beginning: its members stay members.
    t.join_group(&bob, V, "g").unwrap();
    t.answer_request(&carol, V, ("g", "bob"), true).unwrap();
    assert_eq!(t.leave_group(&carol, V, "g").unwrap(), "owner bob");
    assert_eq!(t.list_groups(&bob, V).unwrap(), ["g bob 1 owner"]);
}
