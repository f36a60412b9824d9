//! The benchmarks' files: pseudo-random contents made from a seed, written with their
//! SHA-1 (whole, and per piece where a `.torrent` needs it), and a copy's SHA-1 read back.

use super::guards::fail;
use std::fs;
use std::io::{Read, Write};
use std::path::Path;

/// Writes `size` pseudo-random bytes seeded by `seed`; returns the SHA-1 of every `piece`
/// bytes (none without a piece size) and of the whole file.
pub fn make_file(
    path: &Path,
    seed: u64,
    size: u64,
    piece: Option<u64>,
) -> (Vec<[u8; 20]>, [u8; 20]) {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let file =
        fs::File::create(path).unwrap_or_else(|e| fail(&format!("create {}: {e}", path.display())));
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let (mut whole, mut this_piece) = (sha1_smol::Sha1::new(), sha1_smol::Sha1::new());
    let mut pieces = Vec::new();
    // A block divides a piece, so a piece's hash ends on a block's end.
    let mut block = vec![0u8; 1 << 16];
    let mut written = 0;
    while written < size {
        for word in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
        }
        let n = (size - written).min(block.len() as u64) as usize;
        if let Err(e) = out.write_all(&block[..n]) {
            fail(&format!("write {}: {e}", path.display()));
        }
        whole.update(&block[..n]);
        written += n as u64;
        if let Some(piece) = piece {
            this_piece.update(&block[..n]);
            if written % piece == 0 || written == size {
                pieces.push(this_piece.digest().bytes());
                this_piece.reset();
            }
        }
    }
    if let Err(e) = out.flush() {
        fail(&format!("write {}: {e}", path.display()));
    }
    (pieces, whole.digest().bytes())
}

/// The SHA-1 of the file at `path`, or `None` if it cannot be read.
pub fn file_sha1(path: &Path) -> Option<[u8; 20]> {
    let mut f = fs::File::open(path).ok()?;
    let mut sha = sha1_smol::Sha1::new();
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            return Some(sha.digest().bytes());
        }
        sha.update(&buf[..n]);
    }
}
