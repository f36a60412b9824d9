//! Passwords as the trackers will keep them (accounts, issue 14): never in clear, only a
//! random salt and PBKDF2-HMAC-SHA1 of the password (RFC 8018, section 5.2) over
//! [`ITERATIONS`] rounds, compared in constant time. HMAC-SHA1 (RFC 2104) is built here on
//! `sha1_smol`, the one hash crate the project has: the padded key's inner and outer states
//! are computed once and cloned for each round, so a round costs two SHA-1 blocks.

use sha1_smol::Sha1;

/// Rounds of PBKDF2 for a stored password: tens of thousands, as DESIGN.md asks (about 9 ms
/// per password on the machine this was written on, release build; a list of guesses pays
/// that for each).
pub const ITERATIONS: u32 = 40_000;

/// Bytes of random salt per password.
pub const SALT_LEN: usize = 16;

/// Bytes of derived key kept per password (one SHA-1 output).
pub const KEY_LEN: usize = 20;

const BLOCK: usize = 64;

/// HMAC-SHA1 with its key already absorbed.
struct Hmac {
    inner: Sha1,
    outer: Sha1,
}

impl Hmac {
    fn new(key: &[u8]) -> Hmac {
        let mut block = [0u8; BLOCK];
        if key.len() > BLOCK {
            block[..20].copy_from_slice(&Sha1::from(key).digest().bytes());
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = Sha1::new();
        inner.update(&block.map(|b| b ^ 0x36));
        let mut outer = Sha1::new();
        outer.update(&block.map(|b| b ^ 0x5c));
        Hmac { inner, outer }
    }

    /// The MAC of the concatenation of `parts`.
    fn mac(&self, parts: &[&[u8]]) -> [u8; 20] {
        let mut inner = self.inner.clone();
        for part in parts {
            inner.update(part);
        }
        let mut outer = self.outer.clone();
        outer.update(&inner.digest().bytes());
        outer.digest().bytes()
    }
}

/// Fills `out` with PBKDF2-HMAC-SHA1 of `password` and `salt` over `iterations` rounds (at
/// least one).
pub fn pbkdf2_hmac_sha1(password: &[u8], salt: &[u8], iterations: u32, out: &mut [u8]) {
    let hmac = Hmac::new(password);
    for (i, chunk) in out.chunks_mut(20).enumerate() {
        let index = u32::try_from(i + 1).unwrap_or(u32::MAX).to_be_bytes();
        let mut u = hmac.mac(&[salt, &index]);
        let mut t = u;
        for _ in 1..iterations {
            u = hmac.mac(&[&u]);
            for (t, u) in t.iter_mut().zip(u) {
                *t ^= u;
            }
        }
        chunk.copy_from_slice(&t[..chunk.len()]);
    }
}

/// Whether `a` and `b` are equal, taking the same time whichever bytes differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn derived(password: &[u8], salt: &[u8], iterations: u32, len: usize) -> String {
        let mut out = vec![0; len];
        pbkdf2_hmac_sha1(password, salt, iterations, &mut out);
        crate::chunk::to_hex(&out)
    }

    /// Password, salt, rounds, length, and the derived key in hex.
    type Vector = (&'static [u8], &'static [u8], u32, usize, &'static str);

    /// The test vectors of RFC 6070 (all but the one of 16,777,216 rounds).
    #[test]
    fn rfc_6070_vectors() {
        let cases: [Vector; 5] = [
            (
                b"password",
                b"salt",
                1,
                20,
                "0c60c80f961f0e71f3a9b524af6012062fe037a6",
            ),
            (
                b"password",
                b"salt",
                2,
                20,
                "ea6c014dc72d6f8ccd1ed92ace1d41f0d8de8957",
            ),
            (
                b"password",
                b"salt",
                4096,
                20,
                "4b007901b765489abead49d926f721d065a429c1",
            ),
            (
                b"passwordPASSWORDpassword",
                b"saltSALTsaltSALTsaltSALTsaltSALTsalt",
                4096,
                25,
                "3d2eec4fe41c849b80c8d83662c0e44a8b291a964cf2f07038",
            ),
            (
                b"pass\0word",
                b"sa\0lt",
                4096,
                16,
                "56fa6aa75548099dcc37d7f03425e0c3",
            ),
        ];
        for (password, salt, iterations, len, want) in cases {
            assert_eq!(derived(password, salt, iterations, len), want);
        }
    }

    #[test]
    fn a_key_longer_than_a_block_is_hashed_first() {
        let long = [7u8; 100];
        let hashed = Sha1::from(&long[..]).digest().bytes();
        assert_eq!(
            derived(&long, b"salt", 3, 20),
            derived(&hashed, b"salt", 3, 20)
        );
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
        assert!(same(b"", b""));
    }
}
