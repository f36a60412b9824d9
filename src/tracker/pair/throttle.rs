//! The login throttle: consecutive wrong passwords counted per user id and per session
//! token, soft state of this tracker alone (never logged, never replicated). Up to
//! [`FREE_TRIES`] are free; after the n-th the key waits `min(2^(n-3), 64)` s, and a try
//! before that is refused at once, with no PBKDF2 computed and without being counted. It has
//! its own lock, apart from the tables', and holds at most [`MAX_KEYS`] keys.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE_TRIES: u32 = 3;
pub const MAX_WAIT_S: u64 = 64;
pub const MAX_KEYS: usize = 65_536;

struct Entry {
    fails: u32,
    /// No try before this.
    until: Instant,
}

#[derive(Default)]
pub struct Throttle {
    keys: Mutex<HashMap<String, Entry>>,
}

/// The throttle's keys for a login of `id` on the session `token`.
pub fn keys(id: &str, token: &str) -> [String; 2] {
    [format!("user {id}"), format!("session {token}")]
}

/// How long the longest of `keys` must still wait, in whole seconds rounded up.
fn wait_of(map: &HashMap<String, Entry>, keys: &[String]) -> Result<(), u64> {
    let now = Instant::now();
    let wait = keys
        .iter()
        .filter_map(|k| map.get(k))
        .map(|e| e.until.saturating_duration_since(now))
        .max()
        .unwrap_or_default();
    if wait.is_zero() {
        Ok(())
    } else {
        Err(wait.as_secs() + u64::from(wait.subsec_nanos() > 0))
    }
}

fn wait_after(fails: u32) -> Duration {
    if fails < FREE_TRIES {
        return Duration::ZERO;
    }
    let exp = (fails - FREE_TRIES).min(6);
    Duration::from_secs((1u64 << exp).min(MAX_WAIT_S))
}

impl Throttle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(seconds)` while any of `keys` must still wait.
    #[cfg(test)]
    pub fn check(&self, keys: &[String]) -> Result<(), u64> {
        wait_of(&self.lock(), keys)
    }

    /// A try of a password for `keys`: refused (`Err(seconds)`) while any must still wait,
    /// else counted as a wrong one at once, under the same lock, so that tries sent side by
    /// side are counted before any of them is hashed; [`Throttle::clear`] takes it back when
    /// the password was right.
    pub fn begin(&self, keys: &[String]) -> Result<(), u64> {
        let mut map = self.lock();
        wait_of(&map, keys)?;
        let now = Instant::now();
        for key in keys {
            if !map.contains_key(key) && map.len() >= MAX_KEYS {
                // Entries whose wait is over go first, then the one that waits least.
                map.retain(|_, e| e.until > now);
                if map.len() >= MAX_KEYS {
                    let least = map
                        .iter()
                        .min_by_key(|(_, e)| e.until)
                        .map(|(k, _)| k.clone());
                    if let Some(least) = least {
                        map.remove(&least);
                    }
                }
            }
            let entry = map.entry(key.clone()).or_insert(Entry {
                fails: 0,
                until: now,
            });
            entry.fails = entry.fails.saturating_add(1);
            entry.until = now + wait_after(entry.fails);
        }
        Ok(())
    }

    /// A right password: the counts of `keys` start again.
    pub fn clear(&self, keys: &[String]) {
        let mut map = self.lock();
        for key in keys {
            map.remove(key);
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_tries_are_free_then_the_wait_doubles_up_to_a_minute() {
        assert_eq!(wait_after(2), Duration::ZERO);
        assert_eq!(wait_after(3), Duration::from_secs(1));
        assert_eq!(wait_after(4), Duration::from_secs(2));
        assert_eq!(wait_after(9), Duration::from_secs(64));
        assert_eq!(wait_after(200), Duration::from_secs(64));
        let t = Throttle::default();
        let k = keys("alice", "t1");
        // Each try is counted as it begins: three side by side pass, the fourth waits.
        for _ in 0..3 {
            assert_eq!(t.begin(&k), Ok(()));
        }
        assert_eq!(t.begin(&k), Err(1));
        assert_eq!(t.check(&k), Err(1));
        // Another user on another session is not slowed down; the same user elsewhere is.
        assert_eq!(t.check(&keys("bob", "t2")), Ok(()));
        assert_eq!(t.begin(&keys("alice", "t2")), Err(1));
        // A right password takes its try back, and the counts start again.
        t.clear(&k);
        assert_eq!(t.check(&k), Ok(()));
    }

    #[test]
    fn the_table_is_bounded() {
        let t = Throttle::default();
        for i in 0..MAX_KEYS + 10 {
            assert_eq!(t.begin(&[format!("user u{i}")]), Ok(()));
        }
        assert!(t.len() <= MAX_KEYS);
    }
}
