//! What the requests about a group's files do to the tables: the shares (`share` records)
//! and the piece hashes (`meta` records, content-addressed and checked against the info hash
//! before they are written), who may see them (members of the group only), who holds them,
//! and the sweep of piece hashes no share names any more.

use super::super::kinds::{bits_full, now_unix, seed_key};
use super::super::records::Value;
use super::accounts::{
    MAX_HASHES_REPLY, MAX_META_HEX, MAX_SHARES, META_ORPHAN_MS, PART_PIECES, now_ms, parts_of,
};
use super::{Inner, Tables};
use crate::protocol::account::pieces_of;

/// A file in a group, as the requests name it.
pub struct GroupFile<'a> {
    pub group: &'a str,
    pub hash: &'a str,
    pub size: u64,
}

pub fn share_key(g: &str, user: &str, hash: &str, size: u64) -> String {
    format!("share {g} {user} {hash} {size}")
}

fn meta_key(hash: &str, size: u64, part: u64) -> String {
    format!("meta {hash} {size} {part}")
}

impl Inner {
    /// The live sessions holding pieces of (`hash`, `size`): token, address, bitset, and
    /// whether the registration is `private` (a group's file, which `SEEDERS` leaves out).
    pub(super) fn holders(&self, hash: &str, size: u64) -> Vec<(String, String, String, bool)> {
        let Some(tokens) = self.files.get(&(hash.to_string(), size)) else {
            return Vec::new();
        };
        tokens
            .iter()
            .filter(|tok| self.is_live(tok))
            .filter_map(|tok| {
                let addr = self.sessions.get(tok)?;
                let value = self.records.live(&seed_key(tok, hash, size))?;
                let mut words = value.split(' ').skip(1);
                let bits = words.next()?.to_string();
                let private = words.next() == Some("private");
                Some((tok.clone(), addr.clone(), bits, private))
            })
            .collect()
    }

    /// The live sessions holding pieces of (`hash`, `size`) that are logged in as members of
    /// `g`: token, address and bitset.
    fn member_holders(&self, g: &str, hash: &str, size: u64) -> Vec<(String, String, String)> {
        let members = self.index.groups.get(g).map(|g| &g.members);
        self.holders(hash, size)
            .into_iter()
            .filter(|(tok, ..)| {
                let user = self.index.logins.get(tok);
                user.is_some_and(|u| members.is_some_and(|m| m.contains_key(u)))
            })
            .map(|(tok, addr, bits, _)| (tok, addr, bits))
            .collect()
    }

    /// Removes the `meta` records no live share names, written long enough ago.
    pub(super) fn sweep_meta(&mut self) {
        let cutoff = now_ms().saturating_sub(META_ORPHAN_MS);
        let mut old = Vec::new();
        for ((hash, size), parts) in &self.index.meta {
            if self.index.named.contains_key(&(hash.clone(), *size)) {
                continue;
            }
            for part in parts.keys() {
                let key = meta_key(hash, *size, *part);
                if self
                    .records
                    .get(&key)
                    .is_some_and(|s| s.version.counter < cutoff)
                {
                    old.push(key);
                }
            }
        }
        for key in old {
            self.change(key, Value::Gone(now_unix()));
        }
    }

    /// The checks of an upload: the user, if it may share (`hash`, `size`) in `g`.
    fn may_upload(&mut self, token: &str, verb: &str, f: &GroupFile) -> Result<String, String> {
        let GroupFile {
            group: g,
            hash,
            size,
        } = *f;
        let user = self.member(token, verb, g)?;
        let key = share_key(g, &user, hash, size);
        let new_share = self.records.live(&key).is_none();
        if new_share && self.index.shares_of.get(&user).copied().unwrap_or(0) >= MAX_SHARES {
            return Err(format!(
                "too_many you share {MAX_SHARES} files, the most one user may"
            ));
        }
        let held = self
            .index
            .meta
            .get(&(hash.to_string(), size))
            .map_or(0, |p| p.len() as u64);
        if held < parts_of(size)
            && self.index.meta_hex + pieces_of(size) as usize * 40 > MAX_META_HEX
        {
            return Err(format!(
                "too_many the trackers hold {MAX_META_HEX} bytes of piece hashes, the most they may"
            ));
        }
        Ok(user)
    }
}

/// The word a `private` registration's value ends with.
pub(super) fn private_word(private: bool) -> &'static str {
    if private { " private" } else { "" }
}

impl Tables {
    /// `LIST_FILES`: `<info-hash> <size> <name> <user> <seeders>` per share, by name then
    /// user; seeders are the live members' sessions holding every piece.
    pub fn list_files(&self, token: &str, verb: &str, g: &str) -> Result<Vec<String>, String> {
        self.with(|t| {
            t.member(token, verb, g)?;
            let (_, group) = t.index.live_group(g).ok_or("no_group")?;
            Ok(group
                .shares
                .keys()
                .map(|(name, user, hash, size)| {
                    let seeders = t
                        .member_holders(g, hash, *size)
                        .iter()
                        .filter(|(_, _, bits)| bits_full(*size, bits))
                        .count();
                    let name = crate::name::encode(name);
                    format!("{hash} {size} {name} {user} {seeders}")
                })
                .collect())
        })
    }

    /// `UPLOAD_FILE`, before its piece hashes are read: what can be refused already.
    pub fn may_upload(&self, token: &str, verb: &str, f: &GroupFile) -> Result<(), String> {
        self.with(|t| t.may_upload(token, verb, f).map(|_| ()))
    }

    /// `UPLOAD_FILE`, once the piece hashes (`hex`, checked against `hash`) are here: the
    /// `meta` parts not held yet, and the user's share.
    pub fn upload(
        &self,
        token: &str,
        verb: &str,
        f: &GroupFile,
        name: &str,
        hex: &str,
    ) -> Result<(), String> {
        let GroupFile {
            group: g,
            hash,
            size,
        } = *f;
        self.with(|t| {
            let user = t.may_upload(token, verb, f)?;
            let per_part = (PART_PIECES * 40) as usize;
            for part in 0..parts_of(size) {
                let key = meta_key(hash, size, part);
                if t.records.live(&key).is_some() {
                    continue;
                }
                let from = part as usize * per_part;
                let text = hex
                    .get(from..(from + per_part).min(hex.len()))
                    .unwrap_or_default();
                t.change(key, Value::Live(text.to_string()));
            }
            let value = crate::name::encode(name);
            t.change(share_key(g, &user, hash, size), Value::Live(value));
            Ok(())
        })
    }

    /// `FILE_HASHES`: the hex of pieces `from..` (at most [`MAX_HASHES_REPLY`]) of a file
    /// shared in `g`.
    pub fn file_hashes(
        &self,
        token: &str,
        verb: &str,
        f: &GroupFile,
        from: u64,
    ) -> Result<String, String> {
        let GroupFile {
            group: g,
            hash,
            size,
        } = *f;
        self.with(|t| {
            t.member(token, verb, g)?;
            let (_, group) = t.index.live_group(g).ok_or("no_group")?;
            let shared = group
                .shares
                .keys()
                .any(|(_, _, h, s)| h == hash && *s == size);
            if !shared {
                return Err(format!("no_file no such file in {g}"));
            }
            let pieces = pieces_of(size);
            if from > pieces {
                return Err(format!(
                    "bad_from piece {from} is past the file's {pieces} pieces"
                ));
            }
            let count = (pieces - from).min(MAX_HASHES_REPLY);
            let mut out = String::with_capacity(count as usize * 40);
            for piece in from..from + count {
                let part = t
                    .records
                    .live(&meta_key(hash, size, piece / PART_PIECES))
                    .ok_or_else(|| format!("no_file no such file in {g}"))?;
                let at = (piece % PART_PIECES) as usize * 40;
                let one = part
                    .get(at..at + 40)
                    .ok_or_else(|| format!("no_file no such file in {g}"))?;
                out.push_str(one);
            }
            Ok(out)
        })
    }

    /// `GROUP_SEEDERS`: as `SEEDERS`, only sessions logged in as members of `g`.
    pub fn group_seeders(
        &self,
        token: &str,
        verb: &str,
        f: &GroupFile,
    ) -> Result<Vec<String>, String> {
        let GroupFile {
            group: g,
            hash,
            size,
        } = *f;
        self.with(|t| {
            t.member(token, verb, g)?;
            Ok(t.member_holders(g, hash, size)
                .into_iter()
                .map(|(_, addr, bits)| format!("{addr} {bits}"))
                .collect())
        })
    }

    /// `STOP_SHARE`: the user's share of that file in `g` goes (if any); members only, so
    /// that a stranger writes no record into a group.
    pub fn stop_share(&self, token: &str, verb: &str, f: &GroupFile) -> Result<(), String> {
        let GroupFile {
            group: g,
            hash,
            size,
        } = *f;
        self.with(|t| {
            let user = t.member(token, verb, g)?;
            let key = share_key(g, &user, hash, size);
            // A tombstone even for a share not known here: it may be on its way from the twin.
            if !matches!(t.records.get(&key), Some(s) if matches!(s.value, Value::Gone(_))) {
                t.change(key, Value::Gone(now_unix()));
            }
            Ok(())
        })
    }
}
