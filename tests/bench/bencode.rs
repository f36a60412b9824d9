//! Just enough bencoding (BEP 3) for `make bench-bittorrent` to write its own `.torrent`
//! files: integers, byte strings and dictionaries with sorted keys, and the single-file
//! metainfo built from them together with its info hash.

/// A bencoded value; lists are not needed for a single-file torrent.
pub enum Value<'a> {
    Int(u64),
    Bytes(&'a [u8]),
    /// Keys in any order: `encode` sorts them as raw bytes, as BEP 3 asks.
    Dict(Vec<(&'a str, Value<'a>)>),
}

impl Value<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => out.extend_from_slice(format!("i{n}e").as_bytes()),
            Value::Bytes(b) => {
                out.extend_from_slice(format!("{}:", b.len()).as_bytes());
                out.extend_from_slice(b);
            }
            Value::Dict(entries) => {
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by_key(|(key, _)| key.as_bytes());
                out.push(b'd');
                for (key, value) in sorted {
                    Value::Bytes(key.as_bytes()).encode(out);
                    value.encode(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// A `.torrent` file's bytes and the SHA-1 of its bencoded info dictionary.
pub struct Metainfo {
    pub bytes: Vec<u8>,
    pub info_hash: [u8; 20],
}

impl Metainfo {
    /// The info hash as 40 lowercase hex digits (what opentracker's whitelist holds).
    pub fn info_hash_hex(&self) -> String {
        self.info_hash.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The metainfo of one file: `announce` URL, and an info dictionary with the file's name,
/// length, piece length and the SHA-1 of every piece, concatenated.
pub fn single_file(
    announce: &str,
    name: &str,
    length: u64,
    piece_length: u64,
    pieces: &[[u8; 20]],
) -> Metainfo {
    let hashes = pieces.concat();
    let info = Value::Dict(vec![
        ("name", Value::Bytes(name.as_bytes())),
        ("length", Value::Int(length)),
        ("piece length", Value::Int(piece_length)),
        ("pieces", Value::Bytes(&hashes)),
    ]);
    let mut info_bytes = Vec::new();
    info.encode(&mut info_bytes);
    let info_hash = sha1_smol::Sha1::from(&info_bytes).digest().bytes();
    // The outer dictionary, written around the info bytes already encoded.
    let mut bytes = Vec::with_capacity(info_bytes.len() + announce.len() + 32);
    bytes.push(b'd');
    Value::Bytes(b"announce").encode(&mut bytes);
    Value::Bytes(announce.as_bytes()).encode(&mut bytes);
    Value::Bytes(b"info").encode(&mut bytes);
    bytes.extend_from_slice(&info_bytes);
    bytes.push(b'e');
    Metainfo { bytes, info_hash }
}
