//! The indexes of accounts and groups, rebuilt from records as they change (here, from the
//! twin or from the state log alike): who exists, which session is logged in as whom, each
//! group's owner, members and requests, the shares of each group and the piece-hash parts of
//! each group file, with the counts the bounds are checked against. Records are the truth;
//! this room only keeps in step with them (see `Inner::reindex`).

use super::records::Value;
use std::collections::{BTreeMap, HashMap};

/// One group as its records say: an owner once its `group` record is live (members and
/// requests may arrive from the twin before it).
#[derive(Default, Debug)]
pub struct Group {
    pub owner: Option<String>,
    /// user → joined (unix milliseconds).
    pub members: BTreeMap<String, u64>,
    /// user → asked (unix seconds).
    pub requests: BTreeMap<String, u64>,
    /// (name, user, info hash, size) of the live shares.
    pub shares: BTreeMap<(String, String, String, u64), ()>,
}

impl Group {
    fn is_empty(&self) -> bool {
        self.owner.is_none()
            && self.members.is_empty()
            && self.requests.is_empty()
            && self.shares.is_empty()
    }

    /// The member who joined earliest, other than `but` (ties by id).
    pub fn eldest_but(&self, but: &str) -> Option<String> {
        self.members
            .iter()
            .filter(|(u, _)| u.as_str() != but)
            .min_by_key(|(u, joined)| (**joined, u.as_str()))
            .map(|(u, _)| u.clone())
    }
}

#[derive(Default)]
pub struct Index {
    pub users: usize,
    /// Session token → the user it is logged in as.
    pub logins: HashMap<String, String>,
    pub groups: BTreeMap<String, Group>,
    /// How many live groups there are.
    pub live_groups: usize,
    /// user → how many groups it owns.
    pub owned: HashMap<String, usize>,
    /// user → how many shares it has (in all groups).
    pub shares_of: HashMap<String, usize>,
    /// (info hash, size) → how many live shares name it.
    pub named: HashMap<(String, u64), usize>,
    /// (info hash, size) → its live piece-hash parts.
    pub meta: HashMap<(String, u64), BTreeMap<u64, ()>>,
    /// Bytes of piece-hash text in all live `meta` records.
    pub meta_hex: usize,
}

fn count(map: &mut HashMap<String, usize>, key: &str, up: bool) {
    let n = map.entry(key.to_string()).or_default();
    if up {
        *n += 1;
    } else {
        *n = n.saturating_sub(1);
    }
    if *n == 0 {
        map.remove(key);
    }
}

fn live(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::Live(v)) => Some(v),
        _ => None,
    }
}

impl Index {
    /// A `session` record changed: its login is the value's second word, if any.
    pub fn login(&mut self, token: &str, new: &Value) {
        match live(Some(new)).and_then(|v| v.split(' ').nth(1)) {
            Some(user) => self.logins.insert(token.to_string(), user.to_string()),
            None => self.logins.remove(token),
        };
    }

    fn group(&mut self, g: &str) -> &mut Group {
        self.groups.entry(g.to_string()).or_default()
    }

    fn tidy(&mut self, g: &str) {
        if self.groups.get(g).is_some_and(Group::is_empty) {
            self.groups.remove(g);
        }
    }

    /// Brings the indexes in step with a change of the record whose key is `words` from
    /// `old` to `new` (kinds other than accounts and groups are ignored).
    pub fn reindex(&mut self, words: &[&str], old: Option<&Value>, new: &Value) {
        let (old, new) = (live(old), live(Some(new)));
        match words {
            ["user", _] => {
                self.users = self.users + usize::from(new.is_some()) - usize::from(old.is_some());
            }
            ["group", g] => {
                // `<owner> <created>`: the owner is the first word.
                let first = |v: &str| v.split(' ').next().unwrap_or_default().to_string();
                let (old, new) = (old.map(first), new.map(first));
                if let Some(owner) = &old {
                    count(&mut self.owned, owner, false);
                    self.live_groups -= 1;
                }
                if let Some(owner) = &new {
                    count(&mut self.owned, owner, true);
                    self.live_groups += 1;
                }
                self.group(g).owner = new;
                self.tidy(g);
            }
            ["member" | "request", g, user] => {
                let group = self.group(g);
                let map = if words[0] == "member" {
                    &mut group.members
                } else {
                    &mut group.requests
                };
                match new.and_then(|v| v.parse::<u64>().ok()) {
                    Some(when) => map.insert(user.to_string(), when),
                    None => map.remove(*user),
                };
                self.tidy(g);
            }
            ["share", g, user, hash, size] => {
                let Ok(size) = size.parse::<u64>() else {
                    return;
                };
                let file = (hash.to_string(), size);
                if let Some(name) = old {
                    count(&mut self.shares_of, user, false);
                    if let Some(n) = self.named.get_mut(&file) {
                        *n -= 1;
                        if *n == 0 {
                            self.named.remove(&file);
                        }
                    }
                    let name = crate::name::decode(name).unwrap_or_default();
                    let entry = (name, user.to_string(), hash.to_string(), size);
                    self.group(g).shares.remove(&entry);
                }
                if let Some(name) = new {
                    count(&mut self.shares_of, user, true);
                    *self.named.entry(file).or_default() += 1;
                    let name = crate::name::decode(name).unwrap_or_default();
                    let entry = (name, user.to_string(), hash.to_string(), size);
                    self.group(g).shares.insert(entry, ());
                }
                self.tidy(g);
            }
            ["meta", hash, size, part] => {
                let (Ok(size), Ok(part)) = (size.parse::<u64>(), part.parse::<u64>()) else {
                    return;
                };
                let file = (hash.to_string(), size);
                if let Some(hex) = old {
                    self.meta_hex -= hex.len();
                    if let Some(parts) = self.meta.get_mut(&file) {
                        parts.remove(&part);
                        if parts.is_empty() {
                            self.meta.remove(&file);
                        }
                    }
                }
                if let Some(hex) = new {
                    self.meta_hex += hex.len();
                    self.meta.entry(file).or_default().insert(part, ());
                }
            }
            _ => {}
        }
    }

    /// The live group `g`.
    pub fn live_group(&self, g: &str) -> Option<(&str, &Group)> {
        let group = self.groups.get(g)?;
        Some((group.owner.as_deref()?, group))
    }
}
