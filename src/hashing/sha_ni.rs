//! SHA-1's compression function on the x86-64 SHA extensions: each `sha1rnds4` does four
//! rounds, `sha1msg1`/`sha1msg2` extend the message schedule four words at a time, and
//! `sha1nexte` carries E from one group of rounds to the next. Only reached through
//! `super::sha1`, after the CPU was seen to have the instructions.

use std::arch::x86_64::{
    __m128i, _mm_add_epi32, _mm_extract_epi32, _mm_loadu_si128, _mm_set_epi32, _mm_set_epi64x,
    _mm_sha1msg1_epu32, _mm_sha1msg2_epu32, _mm_sha1nexte_epu32, _mm_sha1rnds4_epu32,
    _mm_shuffle_epi8, _mm_shuffle_epi32, _mm_storeu_si128, _mm_xor_si128,
};

/// Runs SHA-1's compression over each 64-byte block of `blocks` (whose length is a multiple
/// of 64), updating `state` (A, B, C, D, E).
///
/// # Safety
/// The CPU must have the SHA, SSSE3 and SSE4.1 extensions.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn compress(state: &mut [u32; 5], blocks: &[u8]) {
    debug_assert!(blocks.len().is_multiple_of(64));
    // The message is big-endian and the instructions want a group's first word in the highest
    // lane: reversing all sixteen bytes of a load does both.
    let reverse = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    // SAFETY: `state` holds five u32s; the load reads the first four (16 bytes).
    let mut abcd = unsafe { _mm_loadu_si128(state.as_ptr().cast()) };
    // A in the highest lane, as `sha1rnds4` expects; E alone in the highest lane of its own.
    abcd = _mm_shuffle_epi32(abcd, 0x1B);
    let mut e0 = _mm_set_epi32(state[4] as i32, 0, 0, 0);
    for block in blocks.chunks_exact(64) {
        let p = block.as_ptr().cast::<__m128i>();
        // SAFETY: `block` is 64 bytes long: four unaligned 16-byte loads stay inside it.
        let load = |i: usize| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(p.add(i)) }, reverse);
        let (mut w0, mut w1, mut w2, mut w3) = (load(0), load(1), load(2), load(3));
        let (abcd_in, e_in) = (abcd, e0);

        // Rounds 0-3 take E from the state; every later group takes it from the A of the
        // state two groups back (`sha1nexte` rotates it), `prev` here.
        let mut prev = abcd;
        abcd = _mm_sha1rnds4_epu32(abcd, _mm_add_epi32(e0, w0), 0);
        macro_rules! rounds {
            ($w:expr, $f:literal) => {
                let e = _mm_sha1nexte_epu32(prev, $w);
                prev = abcd;
                abcd = _mm_sha1rnds4_epu32(abcd, e, $f);
            };
        }
        // W[i] from W[i-4], W[i-3], W[i-2], W[i-1], four words at once, then its rounds.
        macro_rules! extend_then_rounds {
            ($a:ident, $b:ident, $c:ident, $d:ident, $f:literal) => {
                $a = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($a, $b), $c), $d);
                rounds!($a, $f);
            };
        }
        rounds!(w1, 0);
        rounds!(w2, 0);
        rounds!(w3, 0);
        extend_then_rounds!(w0, w1, w2, w3, 0);
        extend_then_rounds!(w1, w2, w3, w0, 1);
        extend_then_rounds!(w2, w3, w0, w1, 1);
        extend_then_rounds!(w3, w0, w1, w2, 1);
        extend_then_rounds!(w0, w1, w2, w3, 1);
        extend_then_rounds!(w1, w2, w3, w0, 1);
        extend_then_rounds!(w2, w3, w0, w1, 2);
        extend_then_rounds!(w3, w0, w1, w2, 2);
        extend_then_rounds!(w0, w1, w2, w3, 2);
        extend_then_rounds!(w1, w2, w3, w0, 2);
        extend_then_rounds!(w2, w3, w0, w1, 2);
        extend_then_rounds!(w3, w0, w1, w2, 3);
        extend_then_rounds!(w0, w1, w2, w3, 3);
        extend_then_rounds!(w1, w2, w3, w0, 3);
        extend_then_rounds!(w2, w3, w0, w1, 3);
        extend_then_rounds!(w3, w0, w1, w2, 3);

        e0 = _mm_sha1nexte_epu32(prev, e_in);
        abcd = _mm_add_epi32(abcd, abcd_in);
    }
    abcd = _mm_shuffle_epi32(abcd, 0x1B);
    // SAFETY: the store writes the first four u32s of `state` (16 bytes).
    unsafe { _mm_storeu_si128(state.as_mut_ptr().cast(), abcd) };
    state[4] = _mm_extract_epi32(e0, 3) as u32;
}

/// Runs SHA-1's compression over two independent messages at once, block `i` of `blocks_a`
/// beside block `i` of `blocks_b` (both the same length, a multiple of 64), updating
/// `state_a` and `state_b`. Each group of rounds waits on the one before it; interleaving
/// two messages lets the CPU work on one while the other waits, which is most of the way to
/// twice the speed of [`compress`].
///
/// # Safety
/// The CPU must have the SHA, SSSE3 and SSE4.1 extensions.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub unsafe fn compress2(
    state_a: &mut [u32; 5],
    state_b: &mut [u32; 5],
    blocks_a: &[u8],
    blocks_b: &[u8],
) {
    debug_assert!(blocks_a.len() == blocks_b.len() && blocks_a.len().is_multiple_of(64));
    let reverse = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
    // SAFETY: each state holds five u32s; the loads read the first four (16 bytes).
    let (mut abcd_a, mut abcd_b) = unsafe {
        (
            _mm_loadu_si128(state_a.as_ptr().cast()),
            _mm_loadu_si128(state_b.as_ptr().cast()),
        )
    };
    abcd_a = _mm_shuffle_epi32(abcd_a, 0x1B);
    abcd_b = _mm_shuffle_epi32(abcd_b, 0x1B);
    let mut e_a = _mm_set_epi32(state_a[4] as i32, 0, 0, 0);
    let mut e_b = _mm_set_epi32(state_b[4] as i32, 0, 0, 0);
    for (block_a, block_b) in blocks_a.chunks_exact(64).zip(blocks_b.chunks_exact(64)) {
        let (pa, pb) = (
            block_a.as_ptr().cast::<__m128i>(),
            block_b.as_ptr().cast::<__m128i>(),
        );
        // SAFETY: both blocks are 64 bytes long: four unaligned 16-byte loads stay inside.
        let load_a = |i: usize| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(pa.add(i)) }, reverse);
        let load_b = |i: usize| _mm_shuffle_epi8(unsafe { _mm_loadu_si128(pb.add(i)) }, reverse);
        let (mut a0, mut a1, mut a2, mut a3) = (load_a(0), load_a(1), load_a(2), load_a(3));
        let (mut b0, mut b1, mut b2, mut b3) = (load_b(0), load_b(1), load_b(2), load_b(3));
        let (abcd_a_in, e_a_in, abcd_b_in, e_b_in) = (abcd_a, e_a, abcd_b, e_b);

        // As in `compress`, for each message side by side.
        let (mut prev_a, mut prev_b) = (abcd_a, abcd_b);
        abcd_a = _mm_sha1rnds4_epu32(abcd_a, _mm_add_epi32(e_a, a0), 0);
        abcd_b = _mm_sha1rnds4_epu32(abcd_b, _mm_add_epi32(e_b, b0), 0);
        macro_rules! rounds {
            ($wa:expr, $wb:expr, $f:literal) => {
                let ea = _mm_sha1nexte_epu32(prev_a, $wa);
                let eb = _mm_sha1nexte_epu32(prev_b, $wb);
                prev_a = abcd_a;
                prev_b = abcd_b;
                abcd_a = _mm_sha1rnds4_epu32(abcd_a, ea, $f);
                abcd_b = _mm_sha1rnds4_epu32(abcd_b, eb, $f);
            };
        }
        macro_rules! extend_then_rounds {
            ($a:ident, $b:ident, $c:ident, $d:ident, $p:ident, $q:ident, $r:ident, $s:ident, $f:literal) => {
                $a = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($a, $b), $c), $d);
                $p = _mm_sha1msg2_epu32(_mm_xor_si128(_mm_sha1msg1_epu32($p, $q), $r), $s);
                rounds!($a, $p, $f);
            };
        }
        rounds!(a1, b1, 0);
        rounds!(a2, b2, 0);
        rounds!(a3, b3, 0);
        extend_then_rounds!(a0, a1, a2, a3, b0, b1, b2, b3, 0);
        extend_then_rounds!(a1, a2, a3, a0, b1, b2, b3, b0, 1);
        extend_then_rounds!(a2, a3, a0, a1, b2, b3, b0, b1, 1);
        extend_then_rounds!(a3, a0, a1, a2, b3, b0, b1, b2, 1);
        extend_then_rounds!(a0, a1, a2, a3, b0, b1, b2, b3, 1);
        extend_then_rounds!(a1, a2, a3, a0, b1, b2, b3, b0, 1);
        extend_then_rounds!(a2, a3, a0, a1, b2, b3, b0, b1, 2);
        extend_then_rounds!(a3, a0, a1, a2, b3, b0, b1, b2, 2);
        extend_then_rounds!(a0, a1, a2, a3, b0, b1, b2, b3, 2);
        extend_then_rounds!(a1, a2, a3, a0, b1, b2, b3, b0, 2);
        extend_then_rounds!(a2, a3, a0, a1, b2, b3, b0, b1, 2);
        extend_then_rounds!(a3, a0, a1, a2, b3, b0, b1, b2, 3);
        extend_then_rounds!(a0, a1, a2, a3, b0, b1, b2, b3, 3);
        extend_then_rounds!(a1, a2, a3, a0, b1, b2, b3, b0, 3);
        extend_then_rounds!(a2, a3, a0, a1, b2, b3, b0, b1, 3);
        extend_then_rounds!(a3, a0, a1, a2, b3, b0, b1, b2, 3);

        e_a = _mm_sha1nexte_epu32(prev_a, e_a_in);
        e_b = _mm_sha1nexte_epu32(prev_b, e_b_in);
        abcd_a = _mm_add_epi32(abcd_a, abcd_a_in);
        abcd_b = _mm_add_epi32(abcd_b, abcd_b_in);
    }
    // SAFETY: the stores write the first four u32s of each state (16 bytes).
    unsafe {
        _mm_storeu_si128(state_a.as_mut_ptr().cast(), _mm_shuffle_epi32(abcd_a, 0x1B));
        _mm_storeu_si128(state_b.as_mut_ptr().cast(), _mm_shuffle_epi32(abcd_b, 0x1B));
    }
    state_a[4] = _mm_extract_epi32(e_a, 3) as u32;
    state_b[4] = _mm_extract_epi32(e_b, 3) as u32;
}
