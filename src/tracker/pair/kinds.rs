//! What each kind of record looks like: the shape of its key and value, checked before a
//! record from the twin or the state log is applied, and what `RECORDS` may show of it.

use super::records::{Record, Value};
use crate::account_name;
use crate::chunk::{Bitset, Geometry, MTORRENT_PIECE_SIZE};
use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn is_hex(word: &str, len: usize) -> bool {
    word.len() == len
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a piece bitset word against a file of `size` bytes.
pub fn bits_fit(size: u64, word: &str) -> bool {
    Geometry::with_piece_size(size, MTORRENT_PIECE_SIZE)
        .and_then(|g| Bitset::from_word(word, g.num_pieces() as usize))
        .is_some()
}

/// Whether a bitset word holds every piece of a file of `size` bytes.
pub fn bits_full(size: u64, word: &str) -> bool {
    Geometry::with_piece_size(size, MTORRENT_PIECE_SIZE)
        .and_then(|g| Bitset::from_word(word, g.num_pieces() as usize))
        .is_some_and(|b| b.is_full())
}

/// The key of a registration.
pub fn seed_key(token: &str, hash: &str, size: u64) -> String {
    format!("seed {token} {hash} {size}")
}

/// How far ahead of the wall clock (in milliseconds) a version may be: further is a damaged
/// or forged record, which would otherwise outrank every later change.
const MAX_AHEAD_MS: u64 = 365 * 24 * 3600 * 1000;

/// Checks that a record from the twin or the state log means something here.
pub fn check(record: &Record) -> Result<(), String> {
    if record.version.counter > now_unix().saturating_mul(1000) + MAX_AHEAD_MS {
        return Err("version far in the future".into());
    }
    let words: Vec<&str> = record.key.split(' ').collect();
    let live = match &record.value {
        Value::Live(v) => Some(v.as_str()),
        Value::Gone(_) => None,
    };
    match words.as_slice() {
        ["session", token] if is_hex(token, 32) => {
            match live.map(|v| v.split(' ').collect::<Vec<_>>()) {
                Some(v) => match v.as_slice() {
                    [addr] | [addr, _] if addr.parse::<std::net::SocketAddr>().is_err() => {
                        Err("bad session address".into())
                    }
                    [_] => Ok(()),
                    [_, user] => account_name::check_id(user),
                    _ => Err("bad session".into()),
                },
                None => Ok(()),
            }
        }
        ["seed", token, hash, size] if is_hex(token, 32) && is_hex(hash, 40) => {
            let size: u64 = size.parse().map_err(|_| "bad size")?;
            match live.map(|v| v.split(' ').collect::<Vec<_>>()) {
                Some(v) => match v.as_slice() {
                    [name, bits] | [name, bits, "private"]
                        if crate::name::decode(name).is_ok() && bits_fit(size, bits) =>
                    {
                        Ok(())
                    }
                    _ => Err("bad registration".into()),
                },
                None => Ok(()),
            }
        }
        ["session" | "seed", ..] => Err("bad key".into()),
        _ => super::kinds_accounts::check(&words, live),
    }
}

/// What `RECORDS` shows of a record: a token only as the start of its SHA-1, so that reading
/// the records gives nobody a session's token; no salt or password hash; and nothing of a
/// group's members and files (and `private` registrations) or of who is logged in: `-`.
pub fn shown(record: &Record) -> String {
    let mut record = record.clone();
    let mut words: Vec<String> = record.key.split(' ').map(str::to_string).collect();
    let digest = |word: &str| crate::chunk::to_hex(&crate::hashing::sha1(word.as_bytes())[..16]);
    if matches!(words[0].as_str(), "session" | "seed") && words.len() > 1 {
        words[1] = digest(&words[1]);
    }
    // A user's salt and password hash stay in the tracker.
    if let ("user", Value::Live(v)) = (words[0].as_str(), &record.value) {
        let iterations = v.split(' ').nth(1).unwrap_or("-");
        record.value = Value::Live(format!("- {iterations} -"));
    }
    // What is for a group's members only (who is in it or asked, its files, their piece
    // hashes, who holds them, who is logged in where) shows as `-`: a digest of a guessable
    // word (a name, a size) could be reversed, and the two trackers are compared by version.
    let private_seed =
        words[0] == "seed" && matches!(&record.value, Value::Live(v) if v.ends_with(" private"));
    if private_seed || matches!(words[0].as_str(), "member" | "request" | "share" | "meta") {
        for word in words.iter_mut().skip(1) {
            *word = "-".to_string();
        }
        if let Value::Live(v) = &mut record.value {
            *v = "-".to_string();
        }
    }
    if let ("session", Value::Live(v)) = (words[0].as_str(), &mut record.value)
        && let Some((addr, _user)) = v.split_once(' ')
    {
        *v = format!("{addr} -");
    }
    record.key = words.join(" ");
    record.to_string()
}
