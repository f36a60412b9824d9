//! What the pair's records mean: client sessions that own registrations, who is live, which
//! file has which seeders, and the bounds on all of it. Every change a client asks for, and
//! every record the twin pushes, goes through here under one lock; the record set
//! ([`super::records`]) decides which version wins, and this room keeps its indexes in step
//! with whatever won. Liveness is soft state: when a session was last heard from, here or (by
//! `SEEN`) at the twin, is never logged or replicated as records.

use super::groups_index::Index;
use super::kinds::{bits_fit, now_unix, seed_key, shown};
use super::records::{Record, RecordSet, Stored, Value};
use super::throttle::Throttle;
use group_files::private_word;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// A session heard from within this long is live.
pub const TTL: Duration = Duration::from_secs(15);
/// A session silent this long is forgotten, with its registrations.
pub const FORGET: Duration = Duration::from_secs(120);
/// Tombstones the twin has are kept this long, then left out of the next snapshot.
pub const TOMBSTONE_KEEP: u64 = 600;
/// Beyond this many tombstones the oldest the twin has go at once, whatever their age; while
/// the twin is away and twice this many wait for it, no session is opened.
pub const MAX_TOMBSTONES: usize = 65_536;
pub const MAX_SESSIONS: usize = 4096;
pub const MAX_FILES_PER_SESSION: usize = 1024;
pub const MAX_BYTES_PER_SESSION: usize = 1 << 20;
pub const MAX_SEEDS: usize = 65_536;
pub const MAX_SEED_BYTES: usize = 16 << 20;
/// The longest registration's text, so that a record always fits a `PUT` line to the twin.
pub const MAX_RECORD_TEXT: usize = 60_000;
/// How many silent sessions at most give way for one registration.
const MAKE_ROOM_TRIES: usize = 64;
/// About the most record text one `RECORDS` reply carries.
const PAGE_BYTES: usize = 1 << 20;

/// The files and bytes of registrations one session holds.
#[derive(Default, Clone, Copy)]
struct Owned {
    files: usize,
    bytes: usize,
}

/// The twin's stream as far as this tracker has applied it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    pub origin: String,
    pub epoch: String,
    pub seq: u64,
}

struct Inner {
    records: RecordSet,
    /// Live sessions: token → the address its client serves chunks at.
    sessions: HashMap<String, String>,
    heard: HashMap<String, Instant>,
    /// Sessions heard from here since the last `SEEN` sent to the twin.
    to_gossip: BTreeSet<String>,
    /// (info hash, size) → the tokens registered for it.
    files: HashMap<(String, u64), BTreeSet<String>>,
    owned: HashMap<String, Owned>,
    seeds: Owned,
    /// Accounts and groups, as their records say.
    index: Index,
    mark: Option<Mark>,
    /// The state log holds every change up to this sequence number. A change is answered
    /// `OK` (to a client, or to the twin's `PUT`) and pushed to the twin only once it is
    /// here, so a kill never loses or renumbers what anyone was told of.
    durable: u64,
    /// How far the twin has acknowledged this tracker's stream, and the pushes tried.
    twin: stream::Twin,
    /// When this tracker started or last resumed from a freeze: a session is forgotten only
    /// once silent for [`FORGET`] since then too, so a tracker frozen for minutes does not
    /// forget, on waking, every client its twin heard from meanwhile.
    started: Instant,
}

pub struct Tables {
    inner: Mutex<Inner>,
    changed: Condvar,
    /// The login throttle, under its own lock.
    pub throttle: Throttle,
}

impl Inner {
    /// Brings the indexes in step with a change of `key` from `old` to `new`.
    fn reindex(&mut self, key: &str, old: Option<&Value>, new: &Value) {
        let words: Vec<&str> = key.split(' ').collect();
        match words.as_slice() {
            ["session", token] => {
                self.index.login(token, new);
                self.sessions.remove(*token);
                if let Value::Live(v) = new {
                    let addr = v.split(' ').next().unwrap_or_default();
                    self.sessions.insert(token.to_string(), addr.to_string());
                } else {
                    self.heard.remove(*token);
                }
            }
            ["seed", token, hash, size] => {
                let Ok(size) = size.parse::<u64>() else {
                    return;
                };
                let file = (hash.to_string(), size);
                let owned = self.owned.entry(token.to_string()).or_default();
                if let Some(Value::Live(v)) = old {
                    let bytes = key.len() + v.len();
                    owned.files -= 1;
                    owned.bytes -= bytes;
                    self.seeds.files -= 1;
                    self.seeds.bytes -= bytes;
                    if let Some(set) = self.files.get_mut(&file) {
                        set.remove(*token);
                    }
                }
                if let Value::Live(v) = new {
                    let bytes = key.len() + v.len();
                    owned.files += 1;
                    owned.bytes += bytes;
                    self.seeds.files += 1;
                    self.seeds.bytes += bytes;
                    self.files
                        .entry(file.clone())
                        .or_default()
                        .insert(token.to_string());
                }
                if owned.files == 0 {
                    self.owned.remove(*token);
                }
                if self.files.get(&file).is_some_and(BTreeSet::is_empty) {
                    self.files.remove(&file);
                }
            }
            _ => self.index.reindex(&words, old, new),
        }
    }

    /// Applies a record that passed [`check`]; returns whether it changed anything.
    fn apply(&mut self, record: Record, seq: Option<u64>) -> bool {
        let key = record.key.clone();
        let new = record.value.clone();
        match self.records.apply(record, seq) {
            Some(old) => {
                self.reindex(&key, old.as_ref(), &new);
                true
            }
            None => false,
        }
    }

    /// A change made here.
    fn change(&mut self, key: String, value: Value) {
        let version = self.records.next_version();
        self.apply(
            Record {
                key,
                version,
                value,
            },
            None,
        );
    }

    fn hear(&mut self, token: &str) {
        self.heard.insert(token.to_string(), Instant::now());
        self.to_gossip.insert(token.to_string());
    }

    /// The live session `token`, heard from just now.
    fn session(&mut self, token: &str) -> Result<(), String> {
        if !self.sessions.contains_key(token) {
            return Err("unknown_session open a new one".into());
        }
        self.hear(token);
        Ok(())
    }

    fn is_live(&self, token: &str) -> bool {
        self.sessions.contains_key(token)
            && self.heard.get(token).is_some_and(|t| t.elapsed() < TTL)
    }

    /// Ends the session silent longest among those past their time-to-live, if any, to make
    /// room for a live one; returns whether there was one.
    fn make_room(&mut self) -> bool {
        let started = self.started;
        let idlest = self
            .sessions
            .keys()
            .filter(|tok| !self.is_live(tok))
            .min_by_key(|tok| self.heard.get(*tok).copied().unwrap_or(started))
            .cloned();
        match idlest {
            Some(token) => {
                self.end_session(&token);
                true
            }
            None => false,
        }
    }

    /// Removes a session and every registration of it.
    fn end_session(&mut self, token: &str) {
        let prefix = format!("seed {token} ");
        let seeds: Vec<String> = self
            .records
            .keys_with_prefix(&prefix)
            .filter(|k| self.records.live(k).is_some())
            .cloned()
            .collect();
        let gone = Value::Gone(now_unix());
        for key in seeds {
            self.change(key, gone.clone());
        }
        self.change(format!("session {token}"), gone);
    }
}

impl Tables {
    pub fn new(me: &str) -> Tables {
        Tables {
            inner: Mutex::new(Inner {
                records: RecordSet::new(me),
                sessions: HashMap::new(),
                heard: HashMap::new(),
                to_gossip: BTreeSet::new(),
                files: HashMap::new(),
                owned: HashMap::new(),
                seeds: Owned::default(),
                index: Index::default(),
                mark: None,
                durable: 0,
                twin: stream::Twin::default(),
                started: Instant::now(),
            }),
            changed: Condvar::new(),
            throttle: Throttle::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` under the lock and wakes the watchers if the sequence number moved.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut t = self.lock();
        let before = t.records.seq();
        let out = f(&mut t);
        if t.records.seq() != before {
            self.changed.notify_all();
        }
        out
    }

    /// `OPEN`: a new session for the client serving at `addr`; its token.
    pub fn open(&self, addr: &str, token: String) -> Result<String, String> {
        self.with(|t| {
            if t.sessions.len() >= MAX_SESSIONS && !t.make_room() {
                return Err(format!("full {MAX_SESSIONS} sessions are open"));
            }
            if t.records.tombstones() > 2 * MAX_TOMBSTONES {
                return Err("full the twin has yet to take this tracker's removals".into());
            }
            t.change(format!("session {token}"), Value::Live(addr.to_string()));
            t.hear(&token);
            Ok(token)
        })
    }

    /// `ALIVE`.
    pub fn alive(&self, token: &str) -> Result<(), String> {
        self.with(|t| t.session(token))
    }

    /// `SEED`: the session's registration for (`hash`, `size`).
    pub fn seed(
        &self,
        token: &str,
        hash: &str,
        size: u64,
        name: &str,
        (bits, private): (&str, bool),
    ) -> Result<(), String> {
        if !bits_fit(size, bits) {
            return Err("bad_bitset for that size".into());
        }
        self.with(|t| {
            t.session(token)?;
            let key = seed_key(token, hash, size);
            let value = format!(
                "{} {bits}{}",
                crate::name::encode(name),
                private_word(private)
            );
            if key.len() + value.len() > MAX_RECORD_TEXT {
                return Err(format!(
                    "too_large a registration is at most {MAX_RECORD_TEXT} bytes"
                ));
            }
            // Even a registration this tracker holds already gets a new version: the twin
            // may hold a newer removal of it that has not arrived yet (a share again after a
            // remove through the other tracker), which the client's `SEED` must outrank.
            let old = t.records.live(&key).map(str::len);
            let (new_bytes, old_bytes) =
                (key.len() + value.len(), old.map_or(0, |o| key.len() + o));
            let mine = t.owned.get(token).copied().unwrap_or_default();
            let new_file = usize::from(old.is_none());
            if mine.files + new_file > MAX_FILES_PER_SESSION {
                return Err(format!(
                    "too_many_files {MAX_FILES_PER_SESSION} per session"
                ));
            }
            // What is counted already includes the old value.
            if mine.bytes - old_bytes + new_bytes > MAX_BYTES_PER_SESSION {
                return Err(format!(
                    "too_many_files {MAX_BYTES_PER_SESSION} bytes of registrations per session"
                ));
            }
            let over = |t: &Inner| {
                t.seeds.files + new_file > MAX_SEEDS
                    || t.seeds.bytes - old_bytes + new_bytes > MAX_SEED_BYTES
            };
            // Sessions past their time-to-live give way first, a bounded number at a time.
            for _ in 0..MAKE_ROOM_TRIES {
                if !over(t) || !t.make_room() {
                    break;
                }
            }
            if over(t) {
                return Err("full the trackers hold all the registrations they can".into());
            }
            t.change(key, Value::Live(value));
            Ok(())
        })
    }

    /// `UNSEED`.
    pub fn unseed(&self, token: &str, hash: &str, size: u64) -> Result<(), String> {
        self.with(|t| {
            t.session(token)?;
            let key = seed_key(token, hash, size);
            // A tombstone even for a registration not known here: it may be on its way from
            // the twin, and must not come back when it arrives.
            let gone = matches!(t.records.get(&key), Some(s) if matches!(s.value, Value::Gone(_)));
            if !gone {
                t.change(key, Value::Gone(now_unix()));
            }
            Ok(())
        })
    }

    /// `QUIT`.
    pub fn quit(&self, token: &str) -> Result<(), String> {
        self.with(|t| {
            t.session(token)?;
            t.end_session(token);
            Ok(())
        })
    }

    /// `SEEDERS`: the live sessions holding pieces of (`hash`, `size`): address and bitset.
    /// A group's file held by no `.mtorrent` (a `private` registration) is not listed: only
    /// `GROUP_SEEDERS` tells its holders, to members.
    pub fn seeders(&self, hash: &str, size: u64) -> Vec<(String, String)> {
        let t = self.lock();
        let holders = t.holders(hash, size).into_iter();
        holders
            .filter(|(.., private)| !private)
            .map(|(_, addr, bits, _)| (addr, bits))
            .collect()
    }

    /// `RECORDS`: a page of records as shown to anyone.
    pub fn page(&self, from: u64, max: u64) -> Vec<String> {
        let t = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0;
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        for (key, _) in t.records.iter().skip(from).take(max as usize) {
            let Some(record) = t.records.record(key) else {
                continue;
            };
            let line = shown(&record);
            bytes += line.len() + 1;
            out.push(line);
            if bytes >= PAGE_BYTES {
                break;
            }
        }
        out
    }

    /// `SEEN`: the twin heard from these sessions just now.
    pub fn seen(&self, tokens: &[String]) {
        let mut t = self.lock();
        let now = Instant::now();
        // A session the twin heard from may reach us a moment before its record does.
        for token in tokens {
            t.heard.insert(token.clone(), now);
        }
    }

    /// The sessions heard from here since the last call.
    pub fn take_gossip(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().to_gossip)
            .into_iter()
            .collect()
    }

    /// Forgets sessions silent for [`FORGET`] (counted from start for those not heard from
    /// since) and registrations whose session is gone.
    ///
    /// Beyond [`MAX_TOMBSTONES`], the oldest tombstones the twin has acknowledged (its
    /// sequence number at most `acked`) go, whatever their age.
    pub fn sweep(&self, acked: u64) {
        self.with(|t| {
            let started = t.started;
            let silent: Vec<String> = t
                .sessions
                .keys()
                .filter(|tok| {
                    let heard = t.heard.get(*tok).copied().unwrap_or(started);
                    heard.max(started).elapsed() >= FORGET
                })
                .cloned()
                .collect();
            for token in silent {
                t.end_session(&token);
            }
            let orphans: Vec<String> = t
                .owned
                .keys()
                .filter(|tok| {
                    !t.sessions.contains_key(*tok)
                        && matches!(
                            t.records.get(&format!("session {tok}")),
                            Some(Stored {
                                value: Value::Gone(_),
                                ..
                            })
                        )
                })
                .cloned()
                .collect();
            for token in orphans {
                t.end_session(&token);
            }
            t.sweep_meta();
            // Heard of through `SEEN`, but whose record never came.
            let sessions = &t.sessions;
            t.heard
                .retain(|tok, when| sessions.contains_key(tok) || when.elapsed() < FORGET);
            t.to_gossip.retain(|tok| sessions.contains_key(tok));
            let excess = t.records.tombstones().saturating_sub(MAX_TOMBSTONES);
            if excess > 0 {
                let mut old: Vec<(u64, String)> = t
                    .records
                    .iter()
                    .filter_map(|(k, s)| match s.value {
                        Value::Gone(when) if s.seq <= acked => Some((when, k.clone())),
                        _ => None,
                    })
                    .collect();
                old.sort();
                for (_, key) in old.into_iter().take(excess) {
                    t.records.purge(&key);
                }
            }
        });
    }

    /// This tracker was frozen (or its machine asleep): silence is counted from now.
    pub fn resumed(&self) {
        self.lock().started = Instant::now();
    }
}

#[path = "tables_stream.rs"]
mod stream;

#[path = "accounts.rs"]
pub mod accounts;

#[path = "group_files.rs"]
pub mod group_files;

#[cfg(test)]
#[path = "tables_tests.rs"]
mod tests;
