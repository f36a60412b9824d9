//! Randomness: a cheap generator for tie-breaks, and system entropy for tokens.

use std::hash::{BuildHasher, RandomState};
use std::io::Read;

/// A small xorshift generator for random tie-breaks; not for anything secret.
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = RandomState::new().hash_one(std::time::Instant::now());
        Rng(seed | 1)
    }

    /// A generator that repeats its sequence for the same seed (for tests that print it).
    #[cfg(test)]
    pub fn from_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// 64 random bits from the system (`/dev/urandom`), for tokens that others must not guess;
/// if that cannot be read, from the standard library's randomly seeded hasher.
pub fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    match read {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => Rng::seeded().next_u64(),
    }
}
