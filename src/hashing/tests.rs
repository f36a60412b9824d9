use super::*;
use crate::chunk::to_hex;
use crate::rng::Rng;

/// Digests published for SHA-1: FIPS 180's examples and RFC 3174's test cases, plus the
/// empty message and a pangram.
fn published_vectors() -> Vec<(Vec<u8>, &'static str)> {
    vec![
        (b"".to_vec(), "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (b"abc".to_vec(), "a9993e364706816aba3e25717850c26c9cd0d89d"),
        (
            b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".to_vec(),
            "84983e441c3bd26ebaae4aa1f95129e5e54670f1",
        ),
        (
            b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu".to_vec(),
            "a49b2446a02c645bf419f995b67091253a04a259",
        ),
        (vec![b'a'; 1_000_000], "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
        (
            b"01234567".repeat(80),
            "dea356a2cddd90c7a7ecedc5ebb563934f460452",
        ),
        (
            b"The quick brown fox jumps over the lazy dog".to_vec(),
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
        ),
    ]
}

#[test]
fn every_backend_gives_the_published_digests() {
    for (message, digest) in published_vectors() {
        assert_eq!(to_hex(&sha1_portable(&message)), digest, "portable");
        assert_eq!(to_hex(&sha1(&message)), digest, "{:?}", backend());
        match sha1_sha_ni(&message) {
            Some(fast) => assert_eq!(to_hex(&fast), digest, "sha-ni, {} bytes", message.len()),
            None => eprintln!("no SHA extensions on this CPU: the portable backend only"),
        }
    }
}

/// Fills `buf` with the next bytes of `rng`.
fn fill(rng: &mut Rng, buf: &mut [u8]) {
    for word in buf.chunks_mut(8) {
        word.copy_from_slice(&rng.next_u64().to_le_bytes()[..word.len()]);
    }
}

/// SHA-NI against `sha1_smol` on random messages of every length from 0 to 200 bytes (500
/// each: the padding's one-block and two-block cases and every split between) and of every
/// length within 70 bytes of 64 KiB (10 each: a piece of the swarm mode), 101,910 in all.
#[test]
fn sha_ni_agrees_with_sha1_smol_on_random_messages_around_every_block_boundary() {
    if !sha_ni_available() {
        eprintln!("no SHA extensions on this CPU: nothing to compare");
        return;
    }
    let seed = crate::rng::random_u64();
    let mut rng = Rng::from_seed(seed);
    let mut buf = vec![0u8; 65536 + 70];
    let lengths = (0..=200usize)
        .flat_map(|len| std::iter::repeat_n(len, 500))
        .chain((65536 - 70..=65536 + 70).flat_map(|len| std::iter::repeat_n(len, 10)));
    let mut compared = 0;
    for len in lengths {
        fill(&mut rng, &mut buf[..len]);
        let message = &buf[..len];
        assert_eq!(
            sha1_sha_ni(message),
            Some(sha1_portable(message)),
            "{len} bytes differ (seed {seed}: Rng::from_seed reproduces the inputs)"
        );
        compared += 1;
    }
    assert_eq!(compared, 201 * 500 + 141 * 10);
}

#[test]
fn pairs_give_the_published_digests_in_every_combination() {
    let vectors = published_vectors();
    for (a, digest_a) in &vectors {
        for (b, digest_b) in &vectors {
            let (x, y) = sha1_pair(a, b);
            assert_eq!(
                (to_hex(&x), to_hex(&y)),
                (digest_a.to_string(), digest_b.to_string())
            );
            if let Some((x, y)) = sha1_pair_sha_ni(a, b) {
                assert_eq!(to_hex(&x), *digest_a, "{} and {} bytes", a.len(), b.len());
                assert_eq!(to_hex(&y), *digest_b, "{} and {} bytes", a.len(), b.len());
            }
        }
    }
}

/// Two messages hashed side by side against `sha1_smol` one by one: 30,000 pairs of random
/// lengths up to 200 bytes (equal, one shorter, either one empty), and 1,000 pairs within 70
/// bytes of 64 KiB.
#[test]
fn sha_ni_pairs_agree_with_sha1_smol_whatever_the_two_lengths() {
    if !sha_ni_available() {
        eprintln!("no SHA extensions on this CPU: nothing to compare");
        return;
    }
    let seed = crate::rng::random_u64();
    let mut rng = Rng::from_seed(seed);
    let (mut a, mut b) = (vec![0u8; 65536 + 70], vec![0u8; 65536 + 70]);
    let length = |rng: &mut Rng, around: usize, spread: usize| {
        around - spread.min(around) + (rng.next_u64() % (2 * spread as u64 + 1)) as usize
    };
    for i in 0..31_000 {
        let (around, spread) = if i < 30_000 { (100, 100) } else { (65536, 70) };
        let len_a = length(&mut rng, around, spread);
        let len_b = if i % 3 == 0 {
            len_a
        } else {
            length(&mut rng, around, spread)
        };
        fill(&mut rng, &mut a[..len_a]);
        fill(&mut rng, &mut b[..len_b]);
        let (x, y) = (&a[..len_a], &b[..len_b]);
        assert_eq!(
            sha1_pair_sha_ni(x, y),
            Some((sha1_portable(x), sha1_portable(y))),
            "{len_a} and {len_b} bytes differ (seed {seed}: Rng::from_seed reproduces the inputs)"
        );
    }
}

/// The dispatching `sha1` agrees with the reference whichever backend this process chose
/// (`P2P_SHA1=portable` picks the other one: CI runs these tests both ways).
#[test]
fn sha1_agrees_with_the_reference_on_unaligned_slices() {
    let mut rng = Rng::from_seed(7);
    let mut buf = vec![0u8; 4096];
    fill(&mut rng, &mut buf);
    for start in 0..16 {
        for len in [
            0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 1000, 4000,
        ] {
            let message = &buf[start..start + len];
            assert_eq!(sha1(message), sha1_portable(message), "{start}+{len}");
        }
    }
}

#[test]
fn the_backend_follows_the_switch() {
    let forced = std::env::var(BACKEND_VAR).is_ok_and(|v| v == "portable");
    let expected = if forced || !sha_ni_available() {
        Backend::Portable
    } else {
        Backend::ShaNi
    };
    assert_eq!(backend(), expected);
}

#[test]
fn hash_blocks_split_in_twenties_or_not_at_all() {
    let block: Vec<u8> = (0..60).collect();
    let hashes = hashes_from_block(&block).unwrap();
    assert_eq!(hashes.len(), 3);
    assert_eq!(hashes[2][0], 40);
    assert_eq!(hashes_from_block(&block[..59]), None);
    assert_eq!(hashes_from_block(&[]), Some(Vec::new()));
}

/// Files of an odd and an even number of pieces, a short last piece or none, hashed two
/// pieces at a time: each piece's hash as `sha1_smol` gives it, in order.
#[test]
fn a_file_hashes_into_its_pieces_in_order() {
    let mut rng = Rng::from_seed(11);
    for size in [0usize, 1, 1000, 2048, 3000, 4096, 5 * 1024 + 100] {
        let mut data = vec![0u8; size];
        fill(&mut rng, &mut data);
        let path =
            std::env::temp_dir().join(format!("p2p-hash-file-{}-{size}", std::process::id()));
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let meta = hash_file("f", &file, 1024).unwrap().unwrap();
        let _ = std::fs::remove_file(&path);
        let expected: Vec<Sha1Hash> = data.chunks(1024).map(sha1_portable).collect();
        assert_eq!(meta.piece_hashes, expected, "{size} bytes");
    }
}
