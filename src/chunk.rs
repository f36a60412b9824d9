//! Sizes, chunk and piece arithmetic, bitsets, and hex for hashes and bitsets on the wire.
//!
//! The chunk is the unit of transfer and of the tracker's bookkeeping; the piece, a fixed
//! run of chunks, is the unit of hashing. Every "last chunk is shorter" computation lives
//! here and nowhere else.

use std::fmt;

/// Swarm mode's chunk size, fixed by the grading contract.
pub const CHUNK_SIZE: u64 = 512;
/// Chunks per piece in swarm mode: pieces of 64 KiB.
pub const CHUNKS_PER_PIECE: u64 = 128;
/// Swarm mode's piece size.
pub const PIECE_SIZE: u64 = CHUNK_SIZE * CHUNKS_PER_PIECE;
/// The piece size of `.mtorrent` files (the interactive client): 1,024 chunks.
pub const MTORRENT_PIECE_SIZE: u64 = 512 * 1024;
/// The most chunks one `GET` may ask for (512 KiB of data): a piece is fetched with one.
pub const MAX_GET_CHUNKS: u64 = 1024;
/// The largest file swarm mode accepts (64 GiB): keeps a hash list at 20 MiB at most.
pub const MAX_FILE_SIZE: u64 = 64 << 30;

/// A SHA-1 digest.
pub type Sha1Hash = [u8; 20];
/// Index of a piece within a file.
pub type PieceIndex = u32;

/// The shape of one file: its size and how it splits into chunks and pieces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    size: u64,
    piece_size: u64,
}

impl Geometry {
    /// The swarm-mode geometry (64 KiB pieces) of a file of `size` bytes, or `None` above
    /// [`MAX_FILE_SIZE`].
    pub fn new(size: u64) -> Option<Geometry> {
        Geometry::with_piece_size(size, PIECE_SIZE)
    }

    /// The geometry with pieces of `piece_size` bytes, a whole number of chunks (at most
    /// [`MAX_GET_CHUNKS`], so that one `GET` fetches a piece).
    pub fn with_piece_size(size: u64, piece_size: u64) -> Option<Geometry> {
        let chunks = piece_size / CHUNK_SIZE;
        let fits = piece_size.is_multiple_of(CHUNK_SIZE) && (1..=MAX_GET_CHUNKS).contains(&chunks);
        (size <= MAX_FILE_SIZE && fits).then_some(Geometry { size, piece_size })
    }

    pub fn piece_size(self) -> u64 {
        self.piece_size
    }

    pub fn size(self) -> u64 {
        self.size
    }

    /// `ceil(size / 512)`: 0 for an empty file.
    pub fn num_chunks(self) -> u64 {
        self.size.div_ceil(CHUNK_SIZE)
    }

    pub fn num_pieces(self) -> u32 {
        // MAX_FILE_SIZE / PIECE_SIZE fits in u32 by a wide margin.
        self.size.div_ceil(self.piece_size) as u32
    }

    /// Byte offset and length of piece `p`, or `None` if `p` is out of range.
    pub fn piece_span(self, p: PieceIndex) -> Option<(u64, usize)> {
        if p >= self.num_pieces() {
            return None;
        }
        let start = u64::from(p) * self.piece_size;
        let len = (self.size - start).min(self.piece_size);
        Some((start, len as usize))
    }

    /// First chunk and number of chunks of piece `p` (its chunk run).
    pub fn piece_chunks(self, p: PieceIndex) -> Option<(u64, u64)> {
        let (start, len) = self.piece_span(p)?;
        Some((start / CHUNK_SIZE, (len as u64).div_ceil(CHUNK_SIZE)))
    }

    /// Byte offset and length of the run of `count` chunks starting at chunk `first`, or
    /// `None` if the run is empty or reaches past the last chunk.
    pub fn chunk_run_span(self, first: u64, count: u64) -> Option<(u64, usize)> {
        let end = first.checked_add(count)?;
        if count == 0 || end > self.num_chunks() {
            return None;
        }
        let start = first * CHUNK_SIZE;
        let stop = (end * CHUNK_SIZE).min(self.size);
        Some((start, usize::try_from(stop - start).ok()?))
    }

    /// The pieces that the chunk run `[first, first + count)` touches.
    pub fn pieces_of_chunk_run(self, first: u64, count: u64) -> std::ops::RangeInclusive<u32> {
        let per_piece = self.piece_size / CHUNK_SIZE;
        let last = first + count.max(1) - 1;
        (first / per_piece) as u32..=(last / per_piece) as u32
    }
}

/// What everyone agrees a file is: its name, size and piece hashes, as computed by its
/// first owner. `name` is the key a file goes by on the wire: the file name in swarm mode,
/// the info hash for `.mtorrent` files. In swarm mode the hashes arrive while the owner is
/// still computing them, so `piece_hashes` may be a prefix of the full list for a while: a
/// piece is fetched only once its hash is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileMeta {
    pub name: String,
    pub geometry: Geometry,
    pub piece_hashes: Vec<Sha1Hash>,
}

impl FileMeta {
    /// Whether every piece's hash is known.
    pub fn fully_hashed(&self) -> bool {
        self.piece_hashes.len() == self.geometry.num_pieces() as usize
    }
}

/// A fixed-length set of bits, one per piece.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bitset {
    words: Vec<u64>,
    len: usize,
}

impl Bitset {
    pub fn new(len: usize) -> Bitset {
        Bitset {
            words: vec![0; len.div_ceil(64)],
            len,
        }
    }

    pub fn full(len: usize) -> Bitset {
        Bitset::prefix(len, len)
    }

    /// A set of `len` bits whose first `ones` (at most `len`) are set.
    pub fn prefix(len: usize, ones: usize) -> Bitset {
        let mut b = Bitset::new(len);
        let ones = ones.min(len);
        for w in 0..ones / 64 {
            b.words[w] = u64::MAX;
        }
        if !ones.is_multiple_of(64) {
            b.words[ones / 64] = (1u64 << (ones % 64)) - 1;
        }
        b
    }

    /// Keeps only the bits that `other` (of the same length) has too.
    pub fn and_with(&mut self, other: &Bitset) {
        for (w, o) in self.words.iter_mut().zip(&other.words) {
            *w &= o;
        }
    }

    /// How many bits the set has room for (the number of pieces).
    pub fn num_bits(&self) -> usize {
        self.len
    }

    /// The bits, 64 to a word, bit `i` at bit `i % 64` of word `i / 64`.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// Whether no bit is set.
    pub fn is_clear(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Clears bit `i`.
    pub fn clear(&mut self, i: usize) {
        if i < self.len {
            self.words[i / 64] &= !(1 << (i % 64));
        }
    }

    pub fn get(&self, i: usize) -> bool {
        i < self.len && self.words[i / 64] >> (i % 64) & 1 == 1
    }

    /// Sets bit `i`; returns whether it was newly set. Out-of-range bits are ignored.
    pub fn set(&mut self, i: usize) -> bool {
        if i >= self.len || self.get(i) {
            return false;
        }
        self.words[i / 64] |= 1 << (i % 64);
        true
    }

    pub fn count(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_full(&self) -> bool {
        self.count() == self.len
    }

    pub fn iter_ones(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len).filter(|&i| self.get(i))
    }

    /// Hex of the bytes, bit `i` being bit `i % 8` of byte `i / 8`.
    pub fn to_hex(&self) -> String {
        let mut out = String::with_capacity(self.len.div_ceil(8) * 2);
        for byte in 0..self.len.div_ceil(8) {
            let b = (self.words[byte / 8] >> (byte % 8 * 8)) as u8;
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Parses [`Bitset::to_hex`] output for a set of `len` bits; bits past `len` must be 0.
    pub fn from_hex(hex: &str, len: usize) -> Option<Bitset> {
        let bytes = from_hex(hex)?;
        if bytes.len() != len.div_ceil(8) {
            return None;
        }
        let mut b = Bitset::new(len);
        for (i, byte) in bytes.iter().enumerate() {
            b.words[i / 8] |= u64::from(*byte) << (i % 8 * 8);
        }
        let valid = b.iter_ones().count() == b.count();
        valid.then_some(b)
    }
}

impl Bitset {
    /// The bitset as one word, on the wire and in state files: its hex, or `-` for a set of
    /// no bits (an empty file), so that the word is never empty.
    pub fn to_word(&self) -> String {
        bits_word(&self.to_hex()).to_string()
    }

    /// Parses [`Bitset::to_word`] output for a set of `len` bits.
    pub fn from_word(word: &str, len: usize) -> Option<Bitset> {
        Bitset::from_hex(bits_hex(word), len)
    }
}

/// The word for a bitset given as hex: `-` for none at all (see [`Bitset::to_word`]).
pub fn bits_word(hex: &str) -> &str {
    if hex.is_empty() { "-" } else { hex }
}

/// The hex of a bitset word: empty for `-` (see [`Bitset::to_word`]).
pub fn bits_hex(word: &str) -> &str {
    if word == "-" { "" } else { word }
}

impl fmt::Debug for Bitset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bitset({}/{} {})", self.count(), self.len, self.to_hex())
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn from_hex(hex: &str) -> Option<Vec<u8>> {
    let h = hex.as_bytes();
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.chunks(2)
        .map(|p| Some(crate::name::hex_val(p[0])? << 4 | crate::name::hex_val(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_counts_follow_ceil_of_size_over_512() {
        let cases = [(0, 0, 0), (1, 1, 1), (511, 1, 1), (512, 1, 1), (513, 2, 1)];
        for (size, chunks, pieces) in cases {
            let g = Geometry::new(size).unwrap();
            assert_eq!((g.num_chunks(), g.num_pieces()), (chunks, pieces), "{size}");
        }
        let g = Geometry::new(PIECE_SIZE * 2 + 1).unwrap();
        assert_eq!(g.num_pieces(), 3);
        assert_eq!(g.piece_span(2), Some((PIECE_SIZE * 2, 1)));
        assert_eq!(g.piece_chunks(2), Some((256, 1)));
        assert_eq!(g.piece_span(3), None);
        assert!(Geometry::new(MAX_FILE_SIZE + 1).is_none());
    }

    #[test]
    fn mtorrent_pieces_are_512_kib_and_one_get_each() {
        let g = Geometry::with_piece_size(3 * 1024 * 1024 + 12345, MTORRENT_PIECE_SIZE).unwrap();
        assert_eq!(g.num_pieces(), 7);
        assert_eq!(g.piece_chunks(0), Some((0, 1024)));
        assert_eq!(g.piece_chunks(6), Some((6144, 25)));
        assert_eq!(g.pieces_of_chunk_run(1023, 2), 0..=1);
        assert!(
            Geometry::with_piece_size(10, 1000).is_none(),
            "not whole chunks"
        );
        assert!(
            Geometry::with_piece_size(10, 1024 * 1024).is_none(),
            "over one GET"
        );
    }

    #[test]
    fn chunk_runs_are_checked_against_the_file_end() {
        let g = Geometry::new(1000).unwrap();
        assert_eq!(g.chunk_run_span(0, 2), Some((0, 1000)));
        assert_eq!(g.chunk_run_span(1, 1), Some((512, 488)));
        assert_eq!(g.chunk_run_span(2, 1), None);
        assert_eq!(g.chunk_run_span(0, 0), None);
        assert_eq!(g.chunk_run_span(u64::MAX, 2), None);
    }

    #[test]
    fn bitsets_round_trip_through_hex_and_reject_stray_bits() {
        let mut b = Bitset::new(70);
        for i in [0, 9, 63, 64, 69] {
            assert!(b.set(i));
        }
        assert!(!b.set(9));
        assert!(!b.set(70));
        let hex = b.to_hex();
        assert_eq!(hex.len(), 18);
        assert_eq!(Bitset::from_hex(&hex, 70), Some(b.clone()));
        assert_eq!(Bitset::from_hex(&hex, 80), None);
        assert_eq!(Bitset::from_hex("ff", 3), None);
        assert!(Bitset::full(5).is_full());
        assert!(Bitset::new(0).is_full());
        for (len, ones) in [(0, 0), (5, 3), (64, 64), (70, 64), (130, 129), (10, 99)] {
            let p = Bitset::prefix(len, ones);
            let expected: Vec<usize> = (0..ones.min(len)).collect();
            assert_eq!(p.iter_ones().collect::<Vec<_>>(), expected, "{len} {ones}");
        }
        let mut a = Bitset::full(70);
        a.and_with(&Bitset::prefix(70, 65));
        assert_eq!(a.count(), 65);
        assert_eq!(Bitset::new(0).to_word(), "-");
        assert_eq!(Bitset::from_word("-", 0), Some(Bitset::new(0)));
        assert_eq!(Bitset::from_word("-", 3), None);
        assert_eq!(Bitset::from_word(&a.to_word(), 70), Some(a));
    }
}
