//! The background work between commands: giving up what the store dropped, telling the
//! tracker about newly verified pieces, noticing finished downloads, and refreshing who holds
//! each unfinished download so download workers start for new holders.

use super::account::account;
use super::foreign::Ask;
use super::records::Turn;
use super::{Core, Kind, view};
use crate::chunk::Bitset;
use crate::link::LinkError;
use crate::peer::download;
use crate::protocol::{Ask as GroupAsk, Request};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often the holders of each download are refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// The most holders one download fetches from (a worker thread each): plenty for speed,
/// and a tracker listing thousands cannot make the client start thousands of threads.
const MAX_HOLDERS: usize = 64;

impl Core {
    pub(super) fn tick(&mut self) {
        self.finish_refused_login();
        self.collect_foreign();
        // Files given up here (a seed changed on disk, a download nobody can complete) are
        // no longer ours to offer.
        for key in self.store.take_drops() {
            let Some(r) = self.records.iter().find(|r| r.key == key) else {
                continue;
            };
            let (name, size) = (r.meta.name.clone(), r.meta.size);
            // A download that failed says so below; a share says it here.
            if matches!(r.kind, Kind::Share) {
                let why = self.store.failure(&key).unwrap_or_default();
                let shown = view::escape(&name);
                self.event(format!("no longer sharing {shown}: {}", view::escape(&why)));
            }
            self.unregister(&key, size, &name);
        }
        // Removals no tracker took yet are sent again until one does.
        let pending: Vec<(String, u64)> = self
            .unregistering
            .iter()
            .map(|(k, s)| (k.clone(), *s))
            .collect();
        for (key, size) in pending {
            let unseed = Request::Unseed {
                token: String::new(),
                key: key.clone(),
                size,
            };
            if self.call(&unseed).is_ok() {
                self.unregistering.remove(&key);
            }
        }
        let reports = self.store.take_reports();
        for (key, _) in &reports {
            self.register(key);
        }
        // Registering what the trackers hold already changes nothing there.
        if std::mem::take(&mut self.register_again) {
            let keys: Vec<String> = self.records.iter().map(|r| r.key.clone()).collect();
            for key in &keys {
                self.register(key);
            }
        }
        let finished = self.note_downloads();
        if !reports.is_empty() || finished {
            self.save();
        }
        if self.refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
            self.refresh_holders();
        }
    }

    /// Samples each download's bytes for its rate, and says once when one completed (it
    /// is saved as a share from now on) or failed. Returns whether one completed.
    fn note_downloads(&mut self) -> bool {
        let mut finished = false;
        let mut lines = Vec::new();
        // Group downloads complete now: shared in their group from now on.
        let mut shared = Vec::new();
        for at in 0..self.records.len() {
            let held = self.bytes_held(&self.records[at]);
            let failure = self.store.failure(&self.records[at].key);
            let complete = self
                .store
                .progress(&self.records[at].key)
                .is_some_and(|(_, complete)| complete);
            let r = &mut self.records[at];
            let Kind::Download {
                rate,
                seeders,
                done,
                told,
                alone,
            } = &mut r.kind
            else {
                continue;
            };
            rate.sample(held);
            let holders = *seeders;
            // Each change is said once: `told` and `done` remember it.
            let turn = (failure.is_none() && !complete)
                .then(|| alone.note(holders, Instant::now()))
                .flatten();
            let completed = failure.is_none() && complete && !std::mem::replace(done, true);
            let failed = failure.filter(|_| !std::mem::replace(told, true));
            let (name, size) = (view::escape(&r.meta.name), r.meta.size);
            let grouped = r.group.is_some();
            match turn {
                Some(Turn::Stranded) => {
                    let why = self.why_stranded(&self.records[at]).unwrap_or_default();
                    lines.push(format!("failed: {name}: {why}"));
                }
                Some(Turn::GoingOn) => lines.push(format!(
                    "going on: {name} ({holders} seeder{})",
                    view::plural(holders)
                )),
                None => {}
            }
            if let Some(why) = failed {
                lines.push(format!("failed: {name}: {}", view::escape(&why)));
            }
            if completed {
                finished = true;
                lines.push(format!("complete: {name} ({})", view::size(size)));
                if grouped {
                    shared.push(at);
                }
            }
        }
        for line in lines {
            self.event(line);
        }
        for at in shared {
            self.share_in_group(at);
        }
        finished
    }

    /// Asks who holds each unfinished download, and starts workers for new holders. Our own
    /// pair answers at once; another swarm's trackers answer on a run of their own (see
    /// [`super::abroad`]), taken in by [`Core::collect_foreign`].
    pub(super) fn refresh_holders(&mut self) {
        self.refreshed = Some(Instant::now());
        let mut ours = Vec::new();
        let mut abroad = Vec::new();
        for r in &self.records {
            if r.stopped.is_some() || self.live_progress(&r.key).is_none_or(|(_, done)| done) {
                continue;
            }
            let (key, size) = (r.key.clone(), r.meta.size);
            if let Some(g) = &r.group {
                ours.push((key, size, Some(g.group.clone())));
            } else if self.is_foreign(r.meta.trackers) {
                let name = view::escape(&r.meta.name);
                abroad.push((r.meta.trackers, Ask { key, size, name }));
            } else {
                ours.push((key, size, None));
            }
        }
        // Other swarms hear what this client holds of their files, and are asked theirs.
        self.refresh_foreign(abroad);
        for (key, size, group) in ours {
            // A group file's holders are its members': the group is the gate.
            let seeders = match group.clone() {
                Some(group) => account(GroupAsk::GroupSeeders {
                    group,
                    key: key.clone(),
                    size,
                }),
                None => Request::Seeders {
                    key: key.clone(),
                    size,
                },
            };
            match (self.call_list(&seeders), group) {
                (Ok(lines), _) => self.apply_holders(&key, &lines),
                (Err(LinkError::Refused(r)), Some(group)) if r.starts_with("not_member ") => {
                    self.no_longer_member(&key, &group);
                }
                _ => {}
            }
        }
    }

    /// The user is no longer a member of `group`: its download of `key` there stops, shown
    /// as failed (its data kept until `stop_share` or `leave_group`).
    fn no_longer_member(&mut self, key: &str, group: &str) {
        let why = format!("you are no longer a member of {group}");
        let Some(r) = self
            .records
            .iter_mut()
            .find(|r| r.key == key && r.group.as_ref().is_some_and(|g| g.group == group))
        else {
            return;
        };
        r.stopped = Some(why.clone());
        let name = view::escape(&r.meta.name);
        self.store.set_holders(key, Vec::new());
        self.event(format!("failed: [{group}] {name}: {why}"));
    }

    /// Takes `lines` (a `SEEDERS` answer) as the holders of download `key`: its seeder count,
    /// and a download worker for each new holder.
    pub(super) fn apply_holders(&mut self, key: &str, lines: &[String]) {
        let npieces = self.store.progress(key).map_or(0, |(b, _)| b.num_bits());
        let holders: Vec<(SocketAddr, Bitset)> = lines
            .iter()
            .filter_map(|l| {
                let (addr, bits) = l.split_once(' ')?;
                let addr: SocketAddr = addr.parse().ok()?;
                let bits = Bitset::from_word(bits, npieces)?;
                (addr != self.me).then_some((addr, bits))
            })
            .take(MAX_HOLDERS)
            .collect();
        let count = holders.len();
        if let Some(Kind::Download { seeders, .. }) = self
            .records
            .iter_mut()
            .find(|r| r.key == key)
            .map(|r| &mut r.kind)
        {
            *seeders = count;
        }
        for remote in self.store.set_holders(key, holders) {
            download::spawn(self.store.clone(), remote);
        }
    }
}
