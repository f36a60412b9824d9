//! The shapes of the account and group records (`user`, `group`, `member`, `request`,
//! `share`, `meta`), checked before a record from the twin or the state log is applied, so
//! that the indexes of [`super::groups_index`] only ever see records that mean something.

use super::kinds::is_hex;
use super::tables::accounts::{PART_PIECES, parts_of};
use crate::account_name::{check_group, check_id};
use crate::protocol::account::{MAX_GROUP_FILE, pieces_of};

/// The most PBKDF2 rounds a stored password may ask for (a forged record must not make a
/// login cost minutes).
const MAX_ITERATIONS: u32 = 10_000_000;

fn size_word(word: &str) -> Result<u64, String> {
    match word.parse::<u64>() {
        Ok(size) if size <= MAX_GROUP_FILE && word == size.to_string() => Ok(size),
        _ => Err("bad size".into()),
    }
}

/// Checks the key `words` and the live value (if any) of an account or group record.
pub fn check(words: &[&str], live: Option<&str>) -> Result<(), String> {
    let value: Option<Vec<&str>> = live.map(|v| v.split(' ').collect());
    let value = value.as_deref();
    let number = |w: &str| {
        w.parse::<u64>()
            .map(|_| ())
            .map_err(|_| "bad time".to_string())
    };
    match words {
        ["user", id] => {
            check_id(id)?;
            match value {
                Some([salt, iterations, hash]) => {
                    let n: u32 = iterations.parse().map_err(|_| "bad iterations")?;
                    if is_hex(salt, 32) && is_hex(hash, 40) && (1..=MAX_ITERATIONS).contains(&n) {
                        Ok(())
                    } else {
                        Err("bad password record".into())
                    }
                }
                Some(_) => Err("bad password record".into()),
                None => Ok(()),
            }
        }
        ["group", g] => {
            check_group(g)?;
            match value {
                Some([owner]) => check_id(owner),
                Some([owner, created]) => check_id(owner).and_then(|()| number(created)),
                Some(_) => Err("bad owner".into()),
                None => Ok(()),
            }
        }
        ["member" | "request", g, user] => {
            check_group(g)?;
            check_id(user)?;
            match value {
                Some([when]) => number(when),
                Some(_) => Err("bad time".into()),
                None => Ok(()),
            }
        }
        ["share", g, user, hash, size] => {
            check_group(g)?;
            check_id(user)?;
            if !is_hex(hash, 40) {
                return Err("bad info hash".into());
            }
            size_word(size)?;
            match value {
                Some([name]) if crate::name::decode(name).is_ok() => Ok(()),
                Some(_) => Err("bad file name".into()),
                None => Ok(()),
            }
        }
        ["meta", hash, size, part] => {
            if !is_hex(hash, 40) {
                return Err("bad info hash".into());
            }
            let size = size_word(size)?;
            let part: u64 = match part.parse::<u64>() {
                Ok(p) if p < parts_of(size) && *part == p.to_string() => p,
                _ => return Err("bad part".into()),
            };
            let pieces = (pieces_of(size) - part * PART_PIECES).min(PART_PIECES);
            match value {
                Some([hex]) if is_hex(hex, pieces as usize * 40) => Ok(()),
                Some(_) => Err("bad piece hashes".into()),
                None => Ok(()),
            }
        }
        _ => Err("bad key".into()),
    }
}
