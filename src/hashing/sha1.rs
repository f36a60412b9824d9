//! SHA-1 behind one function, with two backends: the CPU's SHA instructions (x86-64 SHA-NI,
//! through `std::arch`) where the processor has them, and `sha1_smol` everywhere else.
//! `sha1_smol` stays the reference the fast backend is tested against. The choice is made
//! once per process; setting `P2P_SHA1=portable` in the environment forces `sha1_smol`, so
//! both paths can be exercised on any machine.

use crate::chunk::Sha1Hash;
use std::sync::OnceLock;

/// The environment variable that forces the portable backend when set to `portable`.
pub const BACKEND_VAR: &str = "P2P_SHA1";

/// Which implementation computes SHA-1 in this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// `sha1_smol`, plain Rust: every machine.
    Portable,
    /// x86-64 SHA extensions (`sha1rnds4` and friends).
    ShaNi,
}

impl Backend {
    /// The backend's name as `p2p --version` and the benchmark print it.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Portable => "portable",
            Backend::ShaNi => "sha-ni",
        }
    }
}

/// The backend this process uses: SHA-NI when the CPU has it and `P2P_SHA1` does not say
/// `portable` (any other value is ignored, with a line on stderr). Decided on the first call
/// and never again.
pub fn backend() -> Backend {
    static CHOSEN: OnceLock<Backend> = OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let asked = std::env::var(BACKEND_VAR).ok();
        if let Some(other) = asked.as_deref().filter(|v| *v != "portable") {
            eprintln!("p2p: ignoring {BACKEND_VAR}={other:?}: it takes only \"portable\"");
        }
        let forced = asked.as_deref() == Some("portable");
        if !forced && sha_ni_available() {
            Backend::ShaNi
        } else {
            Backend::Portable
        }
    })
}

/// The SHA-1 digest of `data`, by this process's backend.
pub fn sha1(data: &[u8]) -> Sha1Hash {
    match backend() {
        Backend::ShaNi => sha1_sha_ni(data).unwrap_or_else(|| sha1_portable(data)),
        Backend::Portable => sha1_portable(data),
    }
}

/// The SHA-1 digest of `data` by `sha1_smol`.
pub fn sha1_portable(data: &[u8]) -> Sha1Hash {
    sha1_smol::Sha1::from(data).digest().bytes()
}

/// Whether this CPU can run [`sha1_sha_ni`].
pub fn sha_ni_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sha")
            && std::arch::is_x86_feature_detected!("sse4.1")
            && std::arch::is_x86_feature_detected!("ssse3")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The SHA-1 digest of `data` by the CPU's SHA instructions; `None` on a CPU without them.
pub fn sha1_sha_ni(data: &[u8]) -> Option<Sha1Hash> {
    #[cfg(target_arch = "x86_64")]
    {
        if !sha_ni_available() {
            return None;
        }
        let mut state = INITIAL_STATE;
        finish_sha_ni(&mut state, data, data.len());
        Some(digest_bytes(&state))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = data;
        None
    }
}

/// The SHA-1 digests of two messages, by this process's backend. With SHA-NI the two are
/// hashed side by side, block by block, which is most of the way to twice as fast as one
/// after the other; so callers with several pieces to hash hand them over two at a time.
pub fn sha1_pair(a: &[u8], b: &[u8]) -> (Sha1Hash, Sha1Hash) {
    match backend() {
        Backend::ShaNi => {
            sha1_pair_sha_ni(a, b).unwrap_or_else(|| (sha1_portable(a), sha1_portable(b)))
        }
        Backend::Portable => (sha1_portable(a), sha1_portable(b)),
    }
}

/// [`sha1_pair`] by the CPU's SHA instructions; `None` on a CPU without them.
pub fn sha1_pair_sha_ni(a: &[u8], b: &[u8]) -> Option<(Sha1Hash, Sha1Hash)> {
    #[cfg(target_arch = "x86_64")]
    {
        if !sha_ni_available() {
            return None;
        }
        let (mut state_a, mut state_b) = (INITIAL_STATE, INITIAL_STATE);
        let both = a.len().min(b.len()) / 64 * 64;
        // SAFETY: the CPU has the SHA, SSSE3 and SSE4.1 extensions (checked just above).
        unsafe { super::sha_ni::compress2(&mut state_a, &mut state_b, &a[..both], &b[..both]) };
        finish_sha_ni(&mut state_a, &a[both..], a.len());
        finish_sha_ni(&mut state_b, &b[both..], b.len());
        Some((digest_bytes(&state_a), digest_bytes(&state_b)))
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (a, b);
        None
    }
}

/// Runs the rest of a message of `total` bytes through `state` with SHA-NI: its whole
/// blocks, then its padded tail. Only called once SHA-NI was seen to be available.
#[cfg(target_arch = "x86_64")]
fn finish_sha_ni(state: &mut [u32; 5], rest: &[u8], total: usize) {
    let whole = rest.len() / 64 * 64;
    let (tail, len) = padded_tail(&rest[whole..], total as u64);
    // SAFETY: callers checked `sha_ni_available()` first.
    unsafe {
        super::sha_ni::compress(state, &rest[..whole]);
        super::sha_ni::compress(state, &tail[..len]);
    }
}

/// SHA-1's initial hash value (FIPS 180-4, 5.3.1).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const INITIAL_STATE: [u32; 5] = [
    0x6745_2301,
    0xEFCD_AB89,
    0x98BA_DCFE,
    0x1032_5476,
    0xC3D2_E1F0,
];

/// The last one or two blocks of a message whose final partial block is `rest` (under 64
/// bytes) and whose whole length is `total` bytes: `rest`, the 0x80 marker, zeros, and the
/// length in bits, big-endian. Returns the buffer and how many of its bytes are used (64 or
/// 128).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn padded_tail(rest: &[u8], total: u64) -> ([u8; 128], usize) {
    let mut tail = [0u8; 128];
    tail[..rest.len()].copy_from_slice(rest);
    tail[rest.len()] = 0x80;
    let len = if rest.len() < 56 { 64 } else { 128 };
    tail[len - 8..len].copy_from_slice(&total.wrapping_mul(8).to_be_bytes());
    (tail, len)
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn digest_bytes(state: &[u32; 5]) -> Sha1Hash {
    let mut out = [0u8; 20];
    for (bytes, word) in out.chunks_exact_mut(4).zip(state) {
        bytes.copy_from_slice(&word.to_be_bytes());
    }
    out
}
