//! What the pair's records mean: client sessions that own registrations, who is live, which
//! file has which seeders, and the bounds on all of it. Every change a client asks for, and
//! every record the twin pushes, goes through here under one lock; the record set
//! ([`super::records`]) decides which version wins, and this room keeps its indexes in step
//! with whatever won. Liveness is soft state: when a session was last heard from, here or (by
//! `SEEN`) at the twin, is never logged or replicated as records.

use super::records::{Record, RecordSet, Stored, Value};
use crate::chunk::{Bitset, Geometry, MTORRENT_PIECE_SIZE};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A session heard from within this long is live.
pub const TTL: Duration = Duration::from_secs(15);
/// A session silent this long is forgotten, with its registrations.
pub const FORGET: Duration = Duration::from_secs(120);
/// Tombstones the twin has are kept this long, then left out of the next snapshot.
pub const TOMBSTONE_KEEP: u64 = 600;
pub const MAX_SESSIONS: usize = 4096;
pub const MAX_FILES_PER_SESSION: usize = 1024;
pub const MAX_BYTES_PER_SESSION: usize = 1 << 20;
pub const MAX_SEEDS: usize = 65_536;
pub const MAX_SEED_BYTES: usize = 16 << 20;
/// The longest registration's text, so that a record always fits a `PUT` line to the twin.
pub const MAX_RECORD_TEXT: usize = 60_000;
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
    mark: Option<Mark>,
    /// The sequence numbers up to here are reserved in the state log: only that far is
    /// pushed to the twin, so that a number the twin has seen is never given again, even
    /// after a kill loses the log's last batch.
    reserved: u64,
    started: Instant,
}

pub struct Tables {
    inner: Mutex<Inner>,
    changed: Condvar,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn is_hex(word: &str, len: usize) -> bool {
    word.len() == len
        && word
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a piece bitset word against a file of `size` bytes.
fn bits_fit(size: u64, word: &str) -> bool {
    Geometry::with_piece_size(size, MTORRENT_PIECE_SIZE)
        .and_then(|g| Bitset::from_word(word, g.num_pieces() as usize))
        .is_some()
}

/// The key of a registration.
fn seed_key(token: &str, hash: &str, size: u64) -> String {
    format!("seed {token} {hash} {size}")
}

/// Checks that a record from the twin or the state log means something here.
pub fn check(record: &Record) -> Result<(), String> {
    let words: Vec<&str> = record.key.split(' ').collect();
    let live = match &record.value {
        Value::Live(v) => Some(v.as_str()),
        Value::Gone(_) => None,
    };
    match words.as_slice() {
        ["session", token] if is_hex(token, 32) => match live {
            Some(v)
                if v.split(' ')
                    .next()
                    .is_some_and(|a| a.parse::<std::net::SocketAddr>().is_ok()) =>
            {
                Ok(())
            }
            Some(_) => Err("bad session address".into()),
            None => Ok(()),
        },
        ["seed", token, hash, size] if is_hex(token, 32) && is_hex(hash, 40) => {
            let size: u64 = size.parse().map_err(|_| "bad size")?;
            match live.map(|v| v.split(' ').collect::<Vec<_>>()) {
                Some(v) => match v.as_slice() {
                    [name, bits] if crate::name::decode(name).is_ok() && bits_fit(size, bits) => {
                        Ok(())
                    }
                    _ => Err("bad registration".into()),
                },
                None => Ok(()),
            }
        }
        ["session" | "seed", ..] => Err("bad key".into()),
        // Accounts and groups: reserved, kept as they come.
        _ => Ok(()),
    }
}

/// What `RECORDS` shows of a key: a token only as the start of its SHA-1, so that reading the
/// records gives nobody a session's token.
fn shown(record: &Record) -> String {
    let mut record = record.clone();
    let mut words: Vec<String> = record.key.split(' ').map(str::to_string).collect();
    if matches!(words[0].as_str(), "session" | "seed") && words.len() > 1 {
        let digest = crate::hashing::sha1(words[1].as_bytes());
        words[1] = crate::chunk::to_hex(&digest[..16]);
    }
    record.key = words.join(" ");
    record.to_string()
}

impl Inner {
    /// Brings the indexes in step with a change of `key` from `old` to `new`.
    fn reindex(&mut self, key: &str, old: Option<&Value>, new: &Value) {
        let words: Vec<&str> = key.split(' ').collect();
        match words.as_slice() {
            ["session", token] => {
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
            _ => {}
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
                mark: None,
                reserved: 0,
                started: Instant::now(),
            }),
            changed: Condvar::new(),
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
            if t.sessions.len() >= MAX_SESSIONS {
                return Err(format!("full {MAX_SESSIONS} sessions are open"));
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
        bits: &str,
    ) -> Result<(), String> {
        if !bits_fit(size, bits) {
            return Err("bad_bitset for that size".into());
        }
        self.with(|t| {
            t.session(token)?;
            let key = seed_key(token, hash, size);
            let value = format!("{} {bits}", crate::name::encode(name));
            if key.len() + value.len() > MAX_RECORD_TEXT {
                return Err(format!(
                    "too_large a registration is at most {MAX_RECORD_TEXT} bytes"
                ));
            }
            let old = t.records.live(&key).map(str::len);
            if old == Some(value.len()) && t.records.live(&key) == Some(value.as_str()) {
                return Ok(());
            }
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
            if t.seeds.files + new_file > MAX_SEEDS
                || t.seeds.bytes - old_bytes + new_bytes > MAX_SEED_BYTES
            {
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
            if t.records.live(&key).is_some() {
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
    pub fn seeders(&self, hash: &str, size: u64) -> Vec<(String, String)> {
        let t = self.lock();
        let Some(tokens) = t.files.get(&(hash.to_string(), size)) else {
            return Vec::new();
        };
        tokens
            .iter()
            .filter(|tok| t.is_live(tok))
            .filter_map(|tok| {
                let addr = t.sessions.get(tok)?;
                let value = t.records.live(&seed_key(tok, hash, size))?;
                let bits = value.split(' ').nth(1)?;
                Some((addr.clone(), bits.to_string()))
            })
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

    /// `SYNC`: how far the stream of `origin` in `epoch` has been applied here.
    pub fn mark_of(&self, origin: &str, epoch: &str) -> u64 {
        match &self.lock().mark {
            Some(m) if m.origin == origin && m.epoch == epoch => m.seq,
            _ => 0,
        }
    }

    /// `PUT`: a record of the twin's stream (`origin`, `epoch`) numbered `seq` there.
    pub fn merge(&self, record: Record, origin: &str, epoch: &str, seq: u64) -> Result<(), String> {
        check(&record)?;
        self.with(|t| {
            t.apply(record, None);
            t.mark = Some(Mark {
                origin: origin.to_string(),
                epoch: epoch.to_string(),
                seq,
            });
        });
        Ok(())
    }

    /// Loads one record read back from the state log, with its sequence number.
    pub fn load(&self, record: Record, seq: u64) -> Result<(), String> {
        check(&record)?;
        self.with(|t| {
            t.apply(record, Some(seq));
        });
        Ok(())
    }

    pub fn set_mark(&self, mark: Mark) {
        self.lock().mark = Some(mark);
    }

    pub fn mark(&self) -> Option<Mark> {
        self.lock().mark.clone()
    }

    /// The records changed after `after`, in sequence order (at most `max`).
    #[cfg(test)]
    pub fn since(&self, after: u64, max: usize) -> Vec<(u64, Record)> {
        self.lock().records.since(after, max)
    }

    /// Like [`Tables::since`], only as far as the state log has reserved the numbers.
    pub fn pushable_since(&self, after: u64, max: usize) -> Vec<(u64, Record)> {
        let t = self.lock();
        let mut records = t.records.since(after, max);
        records.retain(|(seq, _)| *seq <= t.reserved);
        records
    }

    /// The state log has reserved the sequence numbers up to `seq`.
    pub fn set_reserved(&self, seq: u64) {
        let mut t = self.lock();
        if seq > t.reserved {
            t.reserved = seq;
            self.changed.notify_all();
        }
    }

    /// A state log read back reserved the numbers up to `seq`: new ones come after it.
    pub fn skip_reserved(&self, seq: u64) {
        self.lock().records.skip_to(seq);
    }

    /// Sleeps until there is something after `seen` to push (or `timeout`).
    pub fn wait_pushable(&self, seen: u64, timeout: Duration) {
        let t = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(t, timeout, |t| t.records.seq().min(t.reserved) <= seen)
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Like [`Tables::since`], with the twin's mark read under the same lock, so that a mark
    /// written after these records never claims a record they do not hold.
    pub fn tail(&self, after: u64, max: usize) -> (Vec<(u64, Record)>, Option<Mark>) {
        let t = self.lock();
        (t.records.since(after, max), t.mark.clone())
    }

    /// How many records there are, and the current sequence number.
    pub fn size(&self) -> (usize, u64) {
        let t = self.lock();
        (t.records.len(), t.records.seq())
    }

    /// Forgets sessions silent for [`FORGET`] (counted from start for those not heard from
    /// since) and registrations whose session is gone.
    pub fn sweep(&self) {
        self.with(|t| {
            let started = t.started;
            let silent: Vec<String> = t
                .sessions
                .keys()
                .filter(|tok| t.heard.get(*tok).copied().unwrap_or(started).elapsed() >= FORGET)
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
            // Heard of through `SEEN`, but whose record never came.
            let sessions = &t.sessions;
            t.heard
                .retain(|tok, when| sessions.contains_key(tok) || when.elapsed() < FORGET);
        });
    }

    /// Drops tombstones older than [`TOMBSTONE_KEEP`] that the twin has acknowledged (its
    /// sequence number is at most `acked`), and returns every record left with its sequence
    /// number, the sequence number they reach and the twin's mark, for a snapshot.
    pub fn compact(&self, acked: u64) -> (Vec<(u64, Record)>, u64, Option<Mark>) {
        let mut t = self.lock();
        let cutoff = now_unix().saturating_sub(TOMBSTONE_KEEP);
        let old: Vec<String> = t
            .records
            .iter()
            .filter(|(_, s)| {
                matches!(s.value, Value::Gone(when) if when < cutoff) && s.seq <= acked
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in old {
            t.records.purge(&key);
        }
        let keys: Vec<String> = t.records.iter().map(|(k, _)| k.clone()).collect();
        let mut all: Vec<(u64, Record)> = keys
            .iter()
            .filter_map(|k| Some((t.records.get(k)?.seq, t.records.record(k)?)))
            .collect();
        all.sort_by_key(|(seq, _)| *seq);
        (all, t.records.seq(), t.mark.clone())
    }

    /// Sleeps until the sequence number passes `seen` (or `timeout`); returns it.
    pub fn wait_change(&self, seen: u64, timeout: Duration) -> u64 {
        let t = self.lock();
        let (t, _) = self
            .changed
            .wait_timeout_while(t, timeout, |t| t.records.seq() <= seen)
            .unwrap_or_else(|e| e.into_inner());
        t.records.seq()
    }
}

#[cfg(test)]
#[path = "tables_tests.rs"]
mod tests;
