//! The records of what this client shares and downloads: how a file is keyed, where a
//! download is kept until complete, adding a download (fresh or resumed) and reading live
//! progress. Commands and restore both add downloads, so it is done here once.

use super::view::Rate;
use super::{Core, InGroup, Kind, Record};
use crate::chunk::Bitset;
use crate::metainfo::Metainfo;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub(super) fn key_of(meta: &Metainfo) -> String {
    meta.info_hash()
}

/// Whether paths `a` and `b` name the same file: as the file system resolves them when it
/// can (`./a.mtorrent` and `a.mtorrent`), else as written.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    resolved(a) == resolved(b)
}

/// Where a download to `dest` is written until it is complete: beside it, hidden.
pub(super) fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.p2p-partial"))
}

impl Core {
    /// Adds a download of `info` to `dest` (`resume`: keep the pieces on disk that still
    /// verify) and registers it with the tracker; `group` for a group file's.
    pub(super) fn start_download(
        &mut self,
        info: Metainfo,
        mtorrent: &Path,
        dest: &Path,
        resume: bool,
        group: Option<InGroup>,
    ) -> io::Result<()> {
        let key = key_of(&info);
        let partial = partial_path(dest);
        self.store
            .add_download_to(info.file_meta(), &info.name, &partial, dest, resume)?;
        self.records.push(Record {
            kind: Kind::Download {
                // A fresh download starts from nothing now; a resumed one is sampled
                // once its pieces on disk are checked, so they do not count as a rate.
                rate: if resume {
                    Rate::default()
                } else {
                    Rate::starting(0)
                },
                seeders: 0,
                done: false,
                told: false,
                alone: Default::default(),
            },
            group,
            stopped: None,
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: dest.into(),
        });
        self.register(&key);
        Ok(())
    }

    /// Verified pieces of `key` and whether it is complete; `None` once it was given up.
    pub(super) fn live_progress(&self, key: &str) -> Option<(Bitset, bool)> {
        self.store.progress(key).filter(|_| !self.store.failed(key))
    }

    /// The bytes of `key` verified here.
    pub(super) fn bytes_held(&self, r: &Record) -> u64 {
        let Some((bits, _)) = self.store.progress(&r.key) else {
            return 0;
        };
        let geometry = r.meta.geometry();
        bits.iter_ones()
            .filter_map(|p| geometry.piece_span(p as u32))
            .map(|(_, l)| l as u64)
            .sum()
    }

    /// Why download `r` is shown as failed for want of a holder (its trackers do not
    /// answer, or none lists a holder), or None.
    pub(super) fn why_stranded(&self, r: &Record) -> Option<String> {
        let Kind::Download { alone, .. } = &r.kind else {
            return None;
        };
        let why = alone.why()?;
        Some(self.trackers_silent(r).unwrap_or_else(|| why.to_string()))
    }

    /// Keeps a line for the shell to print between prompts (see `Engine::take_events`).
    pub(super) fn event(&mut self, line: String) {
        self.notes.note(&line);
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(line);
    }
}

/// How long a download has had no holder. After [`NO_SEEDER`] it is shown as failed (`[F]
/// name: no seeder left`) but kept, data and all: holders are still asked for, and it goes
/// on by itself when one comes back (`get` says so too; `remove` cancels it).
#[derive(Default)]
pub(super) struct Alone {
    since: Option<Instant>,
    /// A holder was listed at least once.
    had_seeder: bool,
    /// Shown as failed, and said so.
    stranded: bool,
}

/// A change of a download's state that [`Alone`] notices.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Turn {
    /// No holder was listed for [`NO_SEEDER`]: it is shown as failed.
    Stranded,
    /// A holder is listed again: it goes on.
    GoingOn,
}

/// How long a download may have no holder before it is shown as failed: longer than a
/// seeder's time-to-live at the trackers, so a seeder that failed over is not counted gone.
const NO_SEEDER: Duration = Duration::from_secs(20);

impl Alone {
    /// Notes that `seeders` holders are listed at `now`; returns the turn to say when the
    /// download becomes failed for want of a seeder, or goes on again.
    pub(super) fn note(&mut self, seeders: usize, now: Instant) -> Option<Turn> {
        if seeders > 0 {
            self.since = None;
            self.had_seeder = true;
            return std::mem::replace(&mut self.stranded, false).then_some(Turn::GoingOn);
        }
        let since = *self.since.get_or_insert(now);
        if self.stranded || now.saturating_duration_since(since) < NO_SEEDER {
            return None;
        }
        self.stranded = true;
        Some(Turn::Stranded)
    }

    /// Why the download is failed (no holder for a while), or None.
    pub(super) fn why(&self) -> Option<&'static str> {
        match (self.stranded, self.had_seeder) {
            (false, _) => None,
            (true, true) => Some("no seeder left"),
            (true, false) => Some("no seeder has it"),
        }
    }

    /// Starts the wait for a holder again (`get` on a download with none).
    pub(super) fn wait_again(&mut self) {
        self.since = None;
        self.stranded = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_download_alone_for_a_while_fails_and_goes_on_when_a_holder_comes_back() {
        let t0 = Instant::now();
        let at = |secs| t0 + Duration::from_secs(secs);
        let mut alone = Alone::default();
        assert_eq!(alone.note(0, at(0)), None);
        assert_eq!(alone.note(0, at(19)), None);
        assert_eq!(alone.why(), None);
        assert_eq!(alone.note(0, at(20)), Some(Turn::Stranded));
        assert_eq!(alone.note(0, at(30)), None, "said once");
        assert_eq!(alone.why(), Some("no seeder has it"));
        assert_eq!(alone.note(2, at(31)), Some(Turn::GoingOn));
        assert_eq!(alone.why(), None);
        assert_eq!(alone.note(0, at(32)), None);
        assert_eq!(alone.note(0, at(52)), Some(Turn::Stranded));
        assert_eq!(alone.why(), Some("no seeder left"));
        alone.wait_again();
        assert_eq!(alone.why(), None);
        assert_eq!(alone.note(0, at(53)), None);
        assert_eq!(alone.note(0, at(72)), None, "waits its whole time again");
    }
}
