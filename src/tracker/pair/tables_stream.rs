//! The tables as the replication sees them: records merged from the twin and read back from
//! the state log, the twin's mark, the records to push or to append, the reservation of
//! sequence numbers, and the snapshot for a compaction.

use super::super::kinds::{check, now_unix};
use super::super::records::{Record, Value};
use super::{Mark, TOMBSTONE_KEEP, Tables};
use std::time::Duration;

#[path = "claims.rs"]
mod claims;
pub use claims::Twin;

impl Tables {
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
            let (key, counter) = (record.key.clone(), record.version.counter);
            t.apply(record, None);
            t.drop_if_stale(&key, counter);
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

    /// Forgets how far the twin's stream was applied: it is all sent again.
    pub fn clear_mark(&self) {
        self.lock().mark = None;
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

    /// Like [`Tables::since`], only as far as the state log holds.
    pub fn pushable_since(&self, after: u64, max: usize) -> Vec<(u64, Record)> {
        let t = self.lock();
        let mut records = t.records.since(after, max);
        records.retain(|(seq, _)| *seq <= t.durable);
        records
    }

    /// The state log holds everything up to `seq`.
    pub fn set_durable(&self, seq: u64) {
        let mut t = self.lock();
        if seq > t.durable {
            t.durable = seq;
            self.changed.notify_all();
        }
    }

    /// Waits (at most `timeout`) until the state log holds every change made so far;
    /// returns whether it does.
    pub fn settle(&self, timeout: Duration) -> bool {
        let t = self.lock();
        let target = t.records.seq();
        let (t, _) = self
            .changed
            .wait_timeout_while(t, timeout, |t| t.durable < target)
            .unwrap_or_else(|e| e.into_inner());
        t.durable >= target
    }

    /// A push connection to the twin that acknowledged this tracker's stream up to `seq`,
    /// or (`None`) one that ended or could not be made.
    pub fn twin_took(&self, seq: Option<u64>) {
        let mut t = self.lock();
        t.twin.acked = seq;
        if seq.is_none() {
            t.twin.tries += 1;
            t.twin.disconnected();
        }
        self.changed.notify_all();
    }

    /// Waits (at most `timeout`) until the twin has acknowledged every change made here so
    /// far, so that what a client was told of is known at both trackers; while no push
    /// connection is up, until the pusher (woken by the change) has tried once more.
    pub fn replicated(&self, timeout: Duration) {
        let t = self.lock();
        let (target, tries) = (t.records.seq(), t.twin.tries);
        let _ = self
            .changed
            .wait_timeout_while(t, timeout, |t| match t.twin.acked {
                Some(acked) => acked < target,
                None => t.twin.tries == tries,
            })
            .unwrap_or_else(|e| e.into_inner());
    }

    /// The sequence number of the last change stored here.
    pub fn seq(&self) -> u64 {
        self.lock().records.seq()
    }

    /// Sleeps until there is a record after `seen` to push (or `timeout`).
    pub fn wait_pushable(&self, seen: u64, timeout: Duration) {
        let t = self.lock();
        let _ = self
            .changed
            .wait_timeout_while(t, timeout, |t| {
                t.records.last_seq().min(t.durable) <= seen && !t.twin.has_unsent()
            })
            .unwrap_or_else(|e| e.into_inner());
    }

    /// Like [`Tables::since`], with the twin's mark and the current sequence number read
    /// under the same lock, so that a mark written after these records never claims a
    /// record they do not hold.
    pub fn tail(&self, after: u64, max: usize) -> (Vec<(u64, Record)>, Option<Mark>, u64) {
        let t = self.lock();
        (t.records.since(after, max), t.mark.clone(), t.records.seq())
    }

    /// How many records there are, and the current sequence number.
    pub fn size(&self) -> (usize, u64) {
        let t = self.lock();
        (t.records.len(), t.records.seq())
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
