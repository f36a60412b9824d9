//! What the account and group requests do to the tables: each reads the session's login
//! (the `session` record's user, so a login through the twin counts the same), checks the
//! group's records and the bounds, and writes records, all under the tables' one lock and
//! with no I/O or password hashing there (the caller hashes between two calls). The replies'
//! human texts are the user's messages (design14.md, "Messages").

use super::super::kinds::now_unix;
use super::super::records::Value;
use super::group_files::share_key;
use super::{Inner, Tables};
use crate::protocol::account::pieces_of;

pub const MAX_USERS: usize = 65_536;
pub const MAX_GROUPS: usize = 65_536;
pub const MAX_OWNED: usize = 256;
pub const MAX_MEMBERS: usize = 4096;
pub const MAX_REQUESTS: usize = 1024;
pub const MAX_SHARES: usize = 1024;
/// Bytes of piece-hash text (hex) in all `meta` records.
pub const MAX_META_HEX: usize = 64 << 20;
/// Piece hashes per `meta` record.
pub const PART_PIECES: u64 = 1024;
/// The most piece hashes one `FILE_HASHES` reply carries.
pub const MAX_HASHES_REPLY: u64 = 65_536;
/// A `meta` record no share names is removed this long after it was written (milliseconds).
pub const META_ORPHAN_MS: u64 = 10 * 60 * 1000;

impl Inner {
    /// A `member`, `request` or `share` record (`key`, version `counter`) just merged from
    /// the twin that is older than its live group (of an earlier group of that name, come
    /// late): removed at once, so the group that took the name gains nobody unasked.
    pub(in crate::tracker::pair) fn drop_if_stale(&mut self, key: &str, counter: u64) {
        let words: Vec<&str> = key.split(' ').collect();
        let g = match words.as_slice() {
            ["member" | "request", g, _] | ["share", g, _, _, _] => *g,
            _ => return,
        };
        let stale = self.records.live(key).is_some()
            && self.index.live_group(g).is_some()
            && group_created(self, g) > counter;
        if stale {
            self.change(key.to_string(), Value::Gone(now_unix()));
        }
    }
}

/// The version counter group `g` began at (its value's second word; 0 for none).
pub(super) fn group_created(t: &Inner, g: &str) -> u64 {
    t.records
        .live(&format!("group {g}"))
        .and_then(|v| v.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2))
}

/// A stored password: `<salt hex> <iterations> <pbkdf2 hex>`.
pub struct Secret {
    pub salt: Vec<u8>,
    pub iterations: u32,
    pub hash: Vec<u8>,
}

impl Secret {
    pub fn parse(value: &str) -> Option<Secret> {
        let mut words = value.split(' ');
        let salt = crate::chunk::from_hex(words.next()?)?;
        let iterations = words.next()?.parse().ok()?;
        let hash = crate::chunk::from_hex(words.next()?)?;
        Some(Secret {
            salt,
            iterations,
            hash,
        })
    }
}

/// How many `meta` parts a file of `size` bytes has.
pub fn parts_of(size: u64) -> u64 {
    pieces_of(size).div_ceil(PART_PIECES)
}

impl Inner {
    /// The user the live session `token` is logged in as; `verb` names the command.
    pub(super) fn user_of(&mut self, token: &str, verb: &str) -> Result<String, String> {
        self.session(token)?;
        self.index
            .logins
            .get(token)
            .cloned()
            .ok_or_else(|| format!("login_first {verb} needs a login (create_user, then login)"))
    }

    /// The logged-in user and the owner of `g`, which must exist.
    fn user_and_owner(
        &mut self,
        token: &str,
        verb: &str,
        g: &str,
    ) -> Result<(String, String), String> {
        let user = self.user_of(token, verb)?;
        let (owner, _) = self
            .index
            .live_group(g)
            .ok_or_else(|| format!("no_group no group {g}"))?;
        Ok((user, owner.to_string()))
    }

    /// Whether user `id` may be made now (asked and checked again once its password is
    /// hashed): not taken here, nor held for the twin, and room for it.
    fn user_free(&mut self, token: &str, id: &str) -> Result<(), String> {
        self.session(token)?;
        let key = format!("user {id}");
        if self.records.live(&key).is_some() || self.held_for_twin(&key) {
            return Err(format!("taken user {id} already exists"));
        }
        if self.index.users >= MAX_USERS {
            return Err(format!(
                "full {MAX_USERS} users exist, the most the trackers hold"
            ));
        }
        Ok(())
    }

    /// The logged-in user who may make group `g` now (asked before the claim and checked
    /// again after): `g` not taken here, nor held for the twin, and room for it.
    fn group_free(&mut self, token: &str, verb: &str, g: &str) -> Result<String, String> {
        let user = self.user_of(token, verb)?;
        if self.index.live_group(g).is_some() || self.held_for_twin(&format!("group {g}")) {
            return Err(format!("taken group {g} already exists"));
        }
        if self.index.live_groups >= MAX_GROUPS {
            return Err(format!(
                "full {MAX_GROUPS} groups exist, the most the trackers hold"
            ));
        }
        if self.index.owned.get(&user).copied().unwrap_or(0) >= MAX_OWNED {
            return Err(format!(
                "too_many you own {MAX_OWNED} groups, the most one user may"
            ));
        }
        Ok(user)
    }

    /// The logged-in user, who must be a member of `g`.
    pub(super) fn member(&mut self, token: &str, verb: &str, g: &str) -> Result<String, String> {
        let (user, _) = self.user_and_owner(token, verb, g)?;
        let (_, group) = self.index.live_group(g).ok_or("no_group")?;
        if !group.members.contains_key(&user) {
            return Err(format!("not_member you are not a member of {g}"));
        }
        Ok(user)
    }
}

impl Tables {
    /// `CREATE_USER`, before the password is hashed: may `id` be created?
    pub fn may_create_user(&self, token: &str, id: &str) -> Result<(), String> {
        self.with(|t| t.user_free(token, id))
    }

    /// `CREATE_USER`, once hashed: the user, if `id` is still free.
    pub fn create_user(&self, token: &str, id: &str, secret: &Secret) -> Result<(), String> {
        let value = format!(
            "{} {} {}",
            crate::chunk::to_hex(&secret.salt),
            secret.iterations,
            crate::chunk::to_hex(&secret.hash)
        );
        self.with(|t| {
            t.user_free(token, id)?;
            t.change(format!("user {id}"), Value::Live(value));
            Ok(())
        })
    }

    /// `LOGIN`, before the password is hashed: the stored secret of `id` (`None`: no such
    /// user), if the session is not logged in already.
    pub fn login_secret(&self, token: &str, id: &str) -> Result<Option<Secret>, String> {
        self.with(|t| {
            t.session(token)?;
            if let Some(user) = t.index.logins.get(token) {
                return Err(format!(
                    "logged_in already logged in as {user} (logout first)"
                ));
            }
            Ok(t.records
                .live(&format!("user {id}"))
                .and_then(Secret::parse))
        })
    }

    /// `LOGIN`, once the password matched: the session is logged in as `id`.
    pub fn bind_login(&self, token: &str, id: &str) -> Result<(), String> {
        self.with(|t| {
            t.session(token)?;
            if let Some(user) = t.index.logins.get(token) {
                return Err(format!(
                    "logged_in already logged in as {user} (logout first)"
                ));
            }
            let addr = t.sessions.get(token).cloned().unwrap_or_default();
            t.change(
                format!("session {token}"),
                Value::Live(format!("{addr} {id}")),
            );
            Ok(())
        })
    }

    /// `LOGOUT`.
    pub fn logout(&self, token: &str) -> Result<(), String> {
        self.with(|t| {
            t.session(token)?;
            if !t.index.logins.contains_key(token) {
                return Err("not_logged_in not logged in".into());
            }
            let addr = t.sessions.get(token).cloned().unwrap_or_default();
            t.change(format!("session {token}"), Value::Live(addr));
            Ok(())
        })
    }

    /// Whether `CREATE_GROUP` may be claimed from the twin (see `group_free`).
    pub fn may_create_group(&self, token: &str, verb: &str, g: &str) -> Result<(), String> {
        self.with(|t| t.group_free(token, verb, g).map(|_| ()))
    }

    /// `CREATE_GROUP`: the creator owns it and is its first member.
    pub fn create_group(&self, token: &str, verb: &str, g: &str) -> Result<(), String> {
        self.with(|t| {
            let user = t.group_free(token, verb, g)?;
            // What an earlier group of this name left behind (records of it that arrived
            // after its removal) goes, so that nobody is a member of this one unasked.
            let left: Vec<String> = t.index.groups.get(g).map_or_else(Vec::new, |old| {
                let members = old.members.keys().map(|u| format!("member {g} {u}"));
                let requests = old.requests.keys().map(|u| format!("request {g} {u}"));
                let shares = old
                    .shares
                    .keys()
                    .map(|(_, u, h, size)| share_key(g, u, h, *size));
                members.chain(requests).chain(shares).collect()
            });
            for key in left {
                t.change(key, Value::Gone(now_unix()));
            }
            // The value names the version this group begins at: a record of the group that
            // is older (of an earlier group of the name, arriving late) is removed on arrival.
            let created = t.records.next_version().counter;
            t.change(
                format!("group {g}"),
                Value::Live(format!("{user} {created}")),
            );
            t.change(
                format!("member {g} {user}"),
                Value::Live(now_ms().to_string()),
            );
            Ok(())
        })
    }

    /// `JOIN_GROUP`: a request; the group's owner.
    pub fn join_group(&self, token: &str, verb: &str, g: &str) -> Result<String, String> {
        self.with(|t| {
            let (user, owner) = t.user_and_owner(token, verb, g)?;
            let (_, group) = t.index.live_group(g).ok_or("no_group")?;
            if group.members.contains_key(&user) {
                return Err(format!("member you are already a member of {g}"));
            }
            if group.requests.contains_key(&user) {
                return Err(format!("asked you already asked to join {g}"));
            }
            if group.requests.len() >= MAX_REQUESTS {
                return Err(format!(
                    "too_many {g} has {MAX_REQUESTS} requests waiting, the most a group holds"
                ));
            }
            t.change(
                format!("request {g} {user}"),
                Value::Live(now_unix().to_string()),
            );
            Ok(owner)
        })
    }

    /// `LIST_REQUESTS`: who asked to join `g`, oldest first.
    pub fn list_requests(&self, token: &str, verb: &str, g: &str) -> Result<Vec<String>, String> {
        self.with(|t| {
            // A stranger to the group is told so, a member that the owner decides.
            let user = t.member(token, verb, g)?;
            let (owner, group) = t.index.live_group(g).ok_or("no_group")?;
            if user != owner {
                return Err(format!(
                    "not_owner only {g}'s owner, {owner}, sees its requests"
                ));
            }
            let mut asked: Vec<(u64, String)> = group
                .requests
                .iter()
                .map(|(u, when)| (*when, u.clone()))
                .collect();
            asked.sort();
            Ok(asked.into_iter().map(|(_, u)| u).collect())
        })
    }

    /// `ACCEPT_REQUEST` (`accept`: the request becomes a member) or `REJECT_REQUEST` (it
    /// goes).
    pub fn answer_request(
        &self,
        token: &str,
        verb: &str,
        (g, who): (&str, &str),
        accept: bool,
    ) -> Result<(), String> {
        self.with(|t| {
            let (user, owner) = t.user_and_owner(token, verb, g)?;
            if user != owner {
                let does = if accept {
                    "accepts members"
                } else {
                    "rejects requests"
                };
                return Err(format!("not_owner only {g}'s owner, {owner}, {does}"));
            }
            let (_, group) = t.index.live_group(g).ok_or("no_group")?;
            if !group.requests.contains_key(who) {
                return Err(format!("no_request {who} has not asked to join {g}"));
            }
            if !accept {
                t.change(format!("request {g} {who}"), Value::Gone(now_unix()));
                return Ok(());
            }
            if group.members.len() >= MAX_MEMBERS {
                return Err(format!(
                    "too_many {g} has {MAX_MEMBERS} members, the most a group holds"
                ));
            }
            t.change(format!("request {g} {who}"), Value::Gone(now_unix()));
            t.change(
                format!("member {g} {who}"),
                Value::Live(now_ms().to_string()),
            );
            Ok(())
        })
    }

    /// `LEAVE_GROUP`: the reply after `OK` (`left`, `owner <new>` or `gone`).
    pub fn leave_group(&self, token: &str, verb: &str, g: &str) -> Result<String, String> {
        self.with(|t| {
            let user = t.member(token, verb, g)?;
            let (owner, group) = t.index.live_group(g).ok_or("no_group")?;
            let was_owner = owner == user;
            let heir = group.eldest_but(&user);
            let shares: Vec<String> = group
                .shares
                .keys()
                .filter(|(_, u, _, _)| *u == user)
                .map(|(_, u, hash, size)| share_key(g, u, hash, *size))
                .collect();
            let requests: Vec<String> = group
                .requests
                .keys()
                .map(|u| format!("request {g} {u}"))
                .collect();
            let gone = Value::Gone(now_unix());
            for key in shares {
                t.change(key, gone.clone());
            }
            t.change(format!("member {g} {user}"), gone.clone());
            match heir {
                None => {
                    for key in requests {
                        t.change(key, gone.clone());
                    }
                    t.change(format!("group {g}"), gone);
                    Ok("gone".to_string())
                }
                Some(heir) if was_owner => {
                    let created = group_created(t, g);
                    t.change(
                        format!("group {g}"),
                        Value::Live(format!("{heir} {created}")),
                    );
                    Ok(format!("owner {heir}"))
                }
                Some(_) => Ok("left".to_string()),
            }
        })
    }

    /// `LIST_GROUPS`: `<g> <owner> <members> <you>` for every group, by name.
    pub fn list_groups(&self, token: &str, verb: &str) -> Result<Vec<String>, String> {
        self.with(|t| {
            let user = t.user_of(token, verb)?;
            Ok(t.index
                .groups
                .iter()
                .filter_map(|(g, group)| {
                    let owner = group.owner.as_deref()?;
                    let you = if owner == user {
                        "owner"
                    } else if group.members.contains_key(&user) {
                        "member"
                    } else if group.requests.contains_key(&user) {
                        "asked"
                    } else {
                        "-"
                    };
                    Some(format!("{g} {owner} {} {you}", group.members.len()))
                })
                .collect())
        })
    }
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
