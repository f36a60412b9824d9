//! SHA-1, and hashing files into piece hashes: the one room that computes digests. The
//! swarm peer hashes its own files piece by piece while it already serves them (see
//! `peer::hasher`); the interactive client hashes a file whole before it writes its
//! `.mtorrent`; download workers verify each piece as it arrives.

mod sha1;
#[cfg(target_arch = "x86_64")]
mod sha_ni;

pub use sha1::{
    BACKEND_VAR, Backend, backend, sha_ni_available, sha1, sha1_pair, sha1_pair_sha_ni,
    sha1_portable, sha1_sha_ni,
};

use crate::chunk::{FileMeta, Geometry, Sha1Hash};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

/// How long hashes gather before [`hash_pieces`] hands them over together.
const BATCH_EVERY: Duration = Duration::from_millis(50);

/// Splits a raw block of piece hashes (as `HASHED` and `HASHES` carry them) into hashes;
/// `None` unless its length is a multiple of 20.
pub fn hashes_from_block(block: &[u8]) -> Option<Vec<Sha1Hash>> {
    if !block.len().is_multiple_of(20) {
        return None;
    }
    block.chunks(20).map(|h| h.try_into().ok()).collect()
}

/// Reads `file` front to back in the pieces of `geometry`, handing their hashes to `take`
/// in order, a batch every [`BATCH_EVERY`] and one at the end; stops early when `take`
/// returns false.
pub fn hash_pieces(
    file: &File,
    geometry: Geometry,
    mut take: impl FnMut(Vec<Sha1Hash>) -> bool,
) -> io::Result<()> {
    let piece = geometry.piece_size() as usize;
    // Two pieces at a time, hashed side by side (see `sha1_pair`).
    let mut buf = vec![0; 2 * piece];
    let mut batch = Vec::new();
    let mut since = Instant::now();
    let n = geometry.num_pieces();
    let mut p = 0;
    while p < n {
        let (offset, len_a) = geometry.piece_span(p).unwrap_or((0, 0));
        let len_b = geometry.piece_span(p + 1).map_or(0, |(_, len)| len);
        let (a, b) = buf.split_at_mut(piece);
        file.read_exact_at(&mut a[..len_a], offset)?;
        if p + 1 < n {
            file.read_exact_at(&mut b[..len_b], offset + len_a as u64)?;
            let (hash_a, hash_b) = sha1_pair(&a[..len_a], &b[..len_b]);
            batch.extend([hash_a, hash_b]);
            p += 2;
        } else {
            batch.push(sha1(&a[..len_a]));
            p += 1;
        }
        if p == n || since.elapsed() >= BATCH_EVERY {
            if !take(std::mem::take(&mut batch)) {
                return Ok(());
            }
            since = Instant::now();
        }
    }
    Ok(())
}

/// Hashes the whole of `file` in pieces of `piece_size` bytes. `None` if it is too large.
pub fn hash_file(name: &str, file: &File, piece_size: u64) -> io::Result<Option<FileMeta>> {
    let size = file.metadata()?.len();
    let Some(geometry) = Geometry::with_piece_size(size, piece_size) else {
        return Ok(None);
    };
    let mut piece_hashes = Vec::with_capacity(geometry.num_pieces() as usize);
    hash_pieces(file, geometry, |batch| {
        piece_hashes.extend(batch);
        true
    })?;
    Ok(Some(FileMeta {
        name: name.to_string(),
        geometry,
        piece_hashes,
    }))
}

/// Which pieces of `file` already hold the data `meta`'s hashes say they should (for a
/// download resumed from a partial file). A piece that cannot be read is not verified.
pub fn verified_pieces(file: &File, meta: &FileMeta) -> crate::chunk::Bitset {
    let n = meta.geometry.num_pieces();
    let mut have = crate::chunk::Bitset::new(n as usize);
    let mut buf = Vec::new();
    for p in 0..n {
        let (offset, len) = meta.geometry.piece_span(p).unwrap_or((0, 0));
        buf.resize(len, 0);
        if file.read_exact_at(&mut buf, offset).is_ok()
            && meta.piece_hashes.get(p as usize) == Some(&sha1(&buf))
        {
            have.set(p as usize);
        }
    }
    have
}

#[cfg(test)]
mod tests;
