//! The replicated records of a tracker pair, and the one rule that makes the pair converge:
//! applying a record keeps the higher version. A version is a Lamport counter and the tracker
//! that made it, so versions are totally ordered and a change made after seeing a version is
//! newer than it (and the counter keeps up with the wall clock, so a change made later in
//! real time at the other tracker is newer too); a removal is a record too (a tombstone), so it wins over the older value
//! wherever and whenever it arrives. This room knows nothing of what records mean (that is
//! [`super::tables`]); it stores them, numbers them with a local sequence number that only
//! grows (what the state log and the twin's stream follow), and reads and writes their text.

use std::collections::BTreeMap;
use std::fmt;

/// A record's version: compared by counter, then by the tracker that made it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub counter: u64,
    pub origin: String,
}

/// A record's value: the words after `live`, or the time (unix seconds) it was removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Live(String),
    Gone(u64),
}

/// One record: `<version> <kind> <key...> live <value...>` or `... gone <unix-seconds>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The kind and its key words, space-separated (`session <token>`).
    pub key: String,
    pub version: Version,
    pub value: Value,
}

/// How many key words each kind of record has.
fn key_words(kind: &str) -> Option<usize> {
    match kind {
        "session" | "user" | "group" => Some(1),
        "member" | "request" => Some(2),
        "seed" | "meta" => Some(3),
        "share" => Some(4),
        _ => None,
    }
}

impl Record {
    /// Reads a record's text; the kind's own checks are the tables'.
    pub fn parse(text: &str) -> Result<Record, String> {
        let mut words = text.split(' ');
        let version = words.next().unwrap_or_default();
        let (counter, origin) = version
            .split_once('@')
            .ok_or_else(|| format!("bad version {version:.40}"))?;
        let counter: u64 = counter
            .parse()
            .map_err(|_| format!("bad version {version:.40}"))?;
        if origin.is_empty() {
            return Err(format!("bad version {version:.40}"));
        }
        let kind = words.next().unwrap_or_default();
        let n = key_words(kind).ok_or_else(|| format!("unknown kind {kind:.40}"))?;
        let mut key = kind.to_string();
        for _ in 0..n {
            match words.next() {
                Some(w) if !w.is_empty() => {
                    key.push(' ');
                    key.push_str(w);
                }
                _ => return Err(format!("short key for {kind}")),
            }
        }
        let rest: Vec<&str> = words.collect();
        let value = match rest.split_first() {
            Some((&"live", v)) if !v.is_empty() && v.iter().all(|w| !w.is_empty()) => {
                Value::Live(v.join(" "))
            }
            Some((&"gone", [when])) => {
                Value::Gone(when.parse().map_err(|_| format!("bad time {when:.40}"))?)
            }
            _ => return Err("no live or gone value".to_string()),
        };
        Ok(Record {
            key,
            version: Version {
                counter,
                origin: origin.to_string(),
            },
            value,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.counter, self.origin)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::Live(v) => write!(f, "{} {} live {v}", self.version, self.key),
            Value::Gone(t) => write!(f, "{} {} gone {t}", self.version, self.key),
        }
    }
}

/// A stored record, with the local sequence number of its last change.
#[derive(Debug, Clone)]
pub struct Stored {
    pub version: Version,
    pub value: Value,
    pub seq: u64,
}

/// Every record this tracker holds, by key, with the Lamport clock and the sequence numbers.
pub struct RecordSet {
    me: String,
    by_key: BTreeMap<String, Stored>,
    /// Key of the record each sequence number now belongs to.
    by_seq: BTreeMap<u64, String>,
    clock: u64,
    seq: u64,
    tombstones: usize,
}

fn is_gone(value: &Value) -> bool {
    matches!(value, Value::Gone(_))
}

impl RecordSet {
    /// An empty set for the tracker named `me` (its own address).
    pub fn new(me: &str) -> RecordSet {
        RecordSet {
            me: me.to_string(),
            by_key: BTreeMap::new(),
            by_seq: BTreeMap::new(),
            clock: 0,
            seq: 0,
            tombstones: 0,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Stored> {
        self.by_key.get(key)
    }

    /// The live value of `key`, if it has one.
    pub fn live(&self, key: &str) -> Option<&str> {
        match &self.by_key.get(key)?.value {
            Value::Live(v) => Some(v),
            Value::Gone(_) => None,
        }
    }

    /// The highest sequence number given so far.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The sequence number of the record changed last (0 when there is none).
    pub fn last_seq(&self) -> u64 {
        self.by_seq.keys().next_back().copied().unwrap_or(0)
    }

    /// How many of the records are tombstones.
    pub fn tombstones(&self) -> usize {
        self.tombstones
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// A new version of this tracker's, newer than every version it has seen and no older
    /// than the wall clock in milliseconds (a hybrid logical clock): a change made after
    /// another in real time, at the other tracker and not yet seen here (a client's removal
    /// through one tracker of what it registered through the other), is still the newer.
    pub fn next_version(&mut self) -> Version {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 2));
        self.clock = (self.clock + 1).max(now);
        Version {
            counter: self.clock,
            origin: self.me.clone(),
        }
    }

    /// Applies `record` if it is newer than what `key` holds; returns the value it replaced
    /// (`Some(None)` when the key was new), or `None` when nothing changed. `seq` keeps a
    /// number read back from the state log; otherwise the record gets the next one.
    pub fn apply(&mut self, record: Record, seq: Option<u64>) -> Option<Option<Value>> {
        if self
            .by_key
            .get(&record.key)
            .is_some_and(|s| s.version >= record.version)
        {
            return None;
        }
        self.clock = self.clock.max(record.version.counter);
        let seq = match seq {
            Some(s) => {
                self.seq = self.seq.max(s);
                s
            }
            None => {
                self.seq += 1;
                self.seq
            }
        };
        let stored = Stored {
            version: record.version,
            value: record.value,
            seq,
        };
        self.tombstones += usize::from(is_gone(&stored.value));
        let old = self.by_key.insert(record.key.clone(), stored);
        if let Some(old) = &old {
            self.by_seq.remove(&old.seq);
            self.tombstones -= usize::from(is_gone(&old.value));
        }
        self.by_seq.insert(seq, record.key);
        Some(old.map(|o| o.value))
    }

    /// Forgets a record entirely (a tombstone nobody needs any more).
    pub fn purge(&mut self, key: &str) {
        if let Some(old) = self.by_key.remove(key) {
            self.by_seq.remove(&old.seq);
            self.tombstones -= usize::from(is_gone(&old.value));
        }
    }

    /// The records changed after `after`, in sequence order, at most `max` of them.
    pub fn since(&self, after: u64, max: usize) -> Vec<(u64, Record)> {
        self.by_seq
            .range(after + 1..)
            .take(max)
            .filter_map(|(seq, key)| Some((*seq, self.record(key)?)))
            .collect()
    }

    /// The record stored under `key`.
    pub fn record(&self, key: &str) -> Option<Record> {
        let s = self.by_key.get(key)?;
        Some(Record {
            key: key.to_string(),
            version: s.version.clone(),
            value: s.value.clone(),
        })
    }

    /// Every record, in key order, with its sequence number.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Stored)> {
        self.by_key.iter()
    }

    /// The keys starting with `prefix`, in order.
    pub fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a String> {
        self.by_key
            .range(prefix.to_string()..)
            .map(|(k, _)| k)
            .take_while(move |k| k.starts_with(prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> Record {
        Record::parse(text).unwrap()
    }

    #[test]
    fn text_round_trips() {
        for t in [
            "3@127.0.0.1:7001 session 0123 live 127.0.0.1:9000",
            "4@b seed t h 12 live my%20file 0f",
            "5@a seed t h 12 gone 1700000000",
            "6@a member g u live -",
        ] {
            assert_eq!(rec(t).to_string(), t);
        }
        for bad in [
            "",
            "x session t live a",
            "3 session t live a",
            "3@a nothing t live a",
            "3@a seed t h live a",
            "3@a session t",
            "3@a session t live",
            "3@a session t gone soon",
            "3@a session t gone 1 2",
            "3@a session t maybe 1",
            "3@a session t live a  b",
        ] {
            assert!(Record::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn the_higher_version_wins_in_any_order() {
        let changes = [
            rec("1@a session t live x"),
            rec("2@b session t live y"),
            rec("2@a session t gone 5"),
            rec("1@b session t live z"),
        ];
        let mut orders = vec![vec![0, 1, 2, 3], vec![3, 2, 1, 0], vec![1, 3, 0, 2]];
        orders.push(vec![2, 2, 0, 1, 3, 1]);
        for order in orders {
            let mut set = RecordSet::new("c");
            for &i in &order {
                set.apply(changes[i].clone(), None);
            }
            assert_eq!(set.live("session t"), Some("y"), "order {order:?}");
            assert_eq!(set.record("session t"), Some(changes[1].clone()));
        }
    }

    #[test]
    fn a_change_after_seeing_a_version_is_newer() {
        let mut set = RecordSet::new("a");
        set.apply(rec("41@z session t live x"), None);
        let v = set.next_version();
        assert!(v > rec("41@z session t live x").version);
    }

    #[test]
    fn sequence_numbers_follow_the_changes() {
        let mut set = RecordSet::new("a");
        set.apply(rec("1@a session t live x"), None);
        set.apply(rec("1@a session u live x"), None);
        assert_eq!(set.apply(rec("1@a session t live x"), None), None);
        set.apply(rec("2@a session t gone 3"), None);
        let since: Vec<String> = set
            .since(0, 10)
            .iter()
            .map(|(_, r)| r.key.clone())
            .collect();
        assert_eq!(since, ["session u", "session t"]);
        assert_eq!(set.since(2, 10).len(), 1);
        assert_eq!(set.seq(), 3);
        set.apply(rec("9@b session v live x"), Some(40));
        assert_eq!(set.seq(), 40);
        assert!(set.next_version().counter > 9);
    }
}
