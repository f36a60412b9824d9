//! The swarm table's rules, checked without sockets; its blocks are captured, not printed.

use super::*;
use crate::hashing::sha1;

/// A file of `size` bytes whose content `seed` stands for: its offer and its hashes.
fn file(size: u64, seed: u8) -> (Geometry, Vec<Sha1Hash>) {
    let g = Geometry::new(size).unwrap();
    (
        g,
        (0..g.num_pieces())
            .map(|p| sha1(&[seed, p as u8]))
            .collect(),
    )
}

/// A swarm whose blocks are captured, not printed.
fn swarm() -> Swarm {
    Swarm::new(BlockSink::capture())
}

fn addr(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// Joins a peer at `port` offering `files` (name, size, seed) and sends all their hashes.
fn seeder(s: &Swarm, port: u16, files: &[(&str, u64, u8)]) -> PeerId {
    let offers = files
        .iter()
        .map(|&(n, size, seed)| (n.to_string(), file(size, seed).0))
        .collect();
    let (id, _) = s.join(addr(port), offers, vec![], 7).unwrap();
    for &(n, size, seed) in files {
        s.hashed(id, n, 0, &file(size, seed).1).unwrap();
    }
    id
}

fn leave(s: &Swarm, id: PeerId) -> Leave {
    s.leave(id, Duration::ZERO).0
}

#[test]
fn ids_count_from_zero_and_a_conflicting_offer_is_refused() {
    let s = swarm();
    assert_eq!(seeder(&s, 1, &[("a", 10, 1)]), 0);
    assert!(s.check_offer("a", file(11, 1).0).is_err(), "another size");
    assert!(
        s.check_offer("a", file(10, 2).0).is_ok(),
        "compared by hashes later"
    );
    assert_eq!(seeder(&s, 2, &[("a", 10, 1)]), 1, "the same content");
}

#[test]
fn a_peer_leaves_only_when_everyone_holds_the_same_pieces() {
    let s = swarm();
    let a = seeder(&s, 1, &[("a", 200_000, 1)]);
    let b = seeder(&s, 2, &[("e", 0, 2)]);
    assert!(matches!(leave(&s, a), Leave::Wait(_)), "b lacks a's file");
    assert!(matches!(leave(&s, b), Leave::Wait(_)), "b lacks a's file");
    s.have(b, "a", &[PieceRun { first: 0, last: 3 }]).unwrap();
    assert!(
        matches!(leave(&s, a), Leave::Wait(_)),
        "a lacks the empty file"
    );
    s.have(a, "e", &[]).unwrap();
    assert_eq!(leave(&s, a), Leave::Bye);
    assert_eq!(leave(&s, b), Leave::Bye, "alone now");
}

#[test]
fn an_offerer_holds_its_whole_file_but_shows_only_the_pieces_it_hashed() {
    let s = swarm();
    let (g, hashes) = file(200_000, 1);
    let (a, _) = s.join(addr(1), vec![("a".into(), g)], vec![], 7).unwrap();
    let (b, _) = s.join(addr(2), vec![], vec![], 8).unwrap();
    let generation = s.files().1[0].generation;
    let shown = |s: &Swarm| s.holders("a", generation).unwrap()[0].pieces.count();
    assert_eq!(shown(&s), 0, "no hash known yet");
    assert!(s.have(b, "a", &[PieceRun { first: 0, last: 0 }]).is_err());
    assert!(
        matches!(leave(&s, b), Leave::Wait(_)),
        "b lacks a's whole file"
    );
    s.hashed(a, "a", 0, &hashes[..2]).unwrap();
    assert_eq!(shown(&s), 2);
    assert_eq!(s.hashes("a", generation, 1).unwrap(), hashes[1..2]);
    assert!(s.hashed(a, "a", 3, &hashes[3..]).is_err(), "out of order");
    s.hashed(a, "a", 2, &hashes[2..]).unwrap();
    assert_eq!(shown(&s), 4);
    assert!(
        s.holders("a", generation + 1).is_err(),
        "another generation"
    );
    s.have(b, "a", &[PieceRun { first: 0, last: 3 }]).unwrap();
    assert_eq!(leave(&s, b), Leave::Bye);
}

#[test]
fn same_name_other_content_is_found_out_by_its_hashes_and_not_waited_for() {
    let s = swarm();
    let p0 = seeder(&s, 1, &[("same", 3, 1)]);
    let (same, other) = (file(3, 1), file(3, 2));
    let (p1, _) = s
        .join(
            addr(2),
            vec![("same".into(), same.0), ("x".into(), file(5, 3).0)],
            vec![],
            9,
        )
        .unwrap();
    s.hashed(p1, "x", 0, &file(5, 3).1).unwrap();
    let refused = s.hashed(p1, "same", 0, &other.1).unwrap_err();
    assert!(refused.starts_with("name_taken"), "{refused}");
    assert!(
        s.hashed(p1, "same", 0, &same.1).is_err(),
        "refused for good"
    );
    // p1 gave the name up: nobody waits for it to hold p0's version, nor for p0 to
    // hold p1's.
    s.have(p0, "x", &[PieceRun { first: 0, last: 0 }]).unwrap();
    assert_eq!(leave(&s, p1), Leave::Bye);
    assert_eq!(leave(&s, p0), Leave::Bye);
}

#[test]
fn an_offer_taken_between_staging_and_join_is_dropped_not_fatal() {
    let s = swarm();
    let p0 = seeder(&s, 1, &[("same", 600, 1)]);
    let (p1, _) = s
        .join(
            addr(2),
            vec![("same".into(), file(700, 2).0)],
            vec!["early".into()],
            9,
        )
        .unwrap();
    let listed: Vec<usize> = s
        .holders("same", s.files().1[0].generation)
        .unwrap()
        .iter()
        .map(|h| h.id as usize)
        .collect();
    assert_eq!(listed, [p0 as usize], "p1's copy is not published");
    let told = s.hashed(p1, "same", 0, &file(700, 2).1).unwrap_err();
    assert!(
        told.starts_with("name_taken"),
        "p1 learns it at HASHED: {told}"
    );
    let early = s.hashed(p1, "early", 0, &[]).unwrap_err();
    assert!(early.starts_with("name_taken"), "{early}");
    assert_eq!(
        leave(&s, p1),
        Leave::Bye,
        "p1 does not wait for p0's version"
    );
    assert_eq!(leave(&s, p0), Leave::Bye);
}

#[test]
fn a_name_nobody_holds_any_more_is_defined_anew() {
    let s = swarm();
    let p0 = seeder(&s, 1, &[("f", 600, 1)]);
    let first = s.files().1[0].generation;
    assert_eq!(leave(&s, p0), Leave::Bye);
    seeder(&s, 2, &[("f", 700, 2)]);
    let listed = s.files().1;
    assert_eq!((listed[0].size, listed.len()), (700, 1));
    assert_ne!(listed[0].generation, first);
    assert!(s.hashes("f", first, 0).is_err(), "the old content is gone");
}

#[test]
fn heartbeats_need_the_peer_token_and_one_connection() {
    let s = swarm();
    let (a, _) = s.join(addr(1), vec![], vec![], 42).unwrap();
    assert_eq!(s.standing(a), Standing::Joined);
    assert!(s.attach_beat(a, 41).is_err(), "wrong token");
    assert!(s.attach_beat(a + 1, 42).is_err(), "no such peer");
    s.attach_beat(a, 42).unwrap();
    assert_eq!(s.standing(a), Standing::Beating);
    assert!(
        s.attach_beat(a, 42).is_err(),
        "a second heartbeat connection"
    );
    assert!(s.drop_peer(a));
    assert_eq!(s.standing(a), Standing::Gone);
}

#[test]
fn one_address_joins_once_and_a_dropped_file_is_not_waited_for() {
    let s = swarm();
    let a = seeder(&s, 1, &[("a", 1000, 1)]);
    assert!(
        s.join(addr(1), vec![], vec![], 1).is_err(),
        "address in use"
    );
    let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
    assert!(matches!(leave(&s, a), Leave::Wait(_)), "b lacks a's file");
    s.drop_file(b, "a").unwrap();
    assert_eq!(leave(&s, a), Leave::Bye, "b gave the file up");
}

#[test]
fn a_seeder_that_gives_its_file_up_is_not_waited_for_by_the_others() {
    let s = swarm();
    let a = seeder(&s, 1, &[("a", 200_000, 1)]);
    let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
    s.have(b, "a", &[PieceRun { first: 0, last: 1 }]).unwrap();
    assert!(
        matches!(leave(&s, b), Leave::Wait(_)),
        "b lacks pieces 2 and 3"
    );
    s.drop_file(a, "a").unwrap();
    assert_eq!(leave(&s, b), Leave::Bye, "nobody living holds the rest");
    assert_eq!(leave(&s, a), Leave::Bye);
}

#[test]
fn pieces_past_the_end_are_refused() {
    let s = swarm();
    let a = seeder(&s, 1, &[("a", 512, 1)]);
    assert!(s.have(a, "a", &[PieceRun { first: 1, last: 1 }]).is_err());
    assert!(s.have(a, "nope", &[]).is_err());
    assert!(s.have(99, "a", &[]).is_err());
    assert!(s.hashed(a, "a", 1, &[sha1(b"x")]).is_err());
    let b = seeder(&s, 2, &[("big", 200_000, 2)]);
    let twice = [
        PieceRun { first: 0, last: 3 },
        PieceRun { first: 0, last: 3 },
    ];
    let refused = s.have(a, "big", &twice).unwrap_err();
    assert!(refused.starts_with("bad_runs"), "{refused}");
    assert!(s.have(b, "big", &twice[..1]).is_ok());
}

#[test]
fn a_dropped_peer_stops_counting() {
    let s = swarm();
    let a = seeder(&s, 1, &[("a", 1000, 1)]);
    let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
    assert!(matches!(leave(&s, b), Leave::Wait(_)));
    assert!(s.drop_peer(a));
    assert!(s.files().1.is_empty());
    assert_eq!(leave(&s, b), Leave::Bye);
}

#[test]
fn the_blocks_say_who_connected_acquired_and_disconnected_in_order() {
    let s = swarm();
    // 1000 bytes: two chunks, in one piece.
    let a = seeder(&s, 1, &[("a", 1000, 1)]);
    let (b, _) = s.join(addr(2), vec![], vec![], 1).unwrap();
    s.have(b, "a", &[PieceRun { first: 0, last: 0 }]).unwrap();
    assert_eq!(leave(&s, b), Leave::Bye);
    assert_eq!(
        s.blocks.take_captured(),
        format!(
            "PEER {a} CONNECT: OFFERS 1\n{a}    a 2\n\
             PEER {b} CONNECT: OFFERS 0\n\
             PEER {b} ACQUIRED: CHUNK 1/2 a\n\
             PEER {b} ACQUIRED: CHUNK 2/2 a\n\
             PEER {b} DISCONNECT: RECEIVED 1\n{b}    a\n"
        )
    );
    assert!(s.drop_peer(a));
    assert_eq!(s.blocks.take_captured(), "", "no block for a peer dropped");
}
