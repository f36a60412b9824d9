//! The download side of the store: who holds what (handed to the [`Picker`] of each
//! download), which piece a worker fetches next, and the one way a fetched piece enters the
//! store ([`Store::deliver`]: hash check, duplicate check, positioned write, report, and
//! the move into place after the last piece).

use super::{Status, Store};
use crate::chunk::{Bitset, FileMeta, PieceIndex, Sha1Hash};
use crate::hashing::{sha1, sha1_pair};
use crate::peer::disk;
use crate::peer::picker::{self, Download};
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One piece for one worker to fetch.
#[derive(Clone)]
pub struct Job {
    pub meta: Arc<FileMeta>,
    /// The file's name in messages.
    pub label: Arc<str>,
    file: Arc<File>,
    pub piece: PieceIndex,
}

impl Job {
    pub fn span(&self) -> (u64, usize) {
        // Jobs are only made for pieces inside the file.
        self.meta.geometry.piece_span(self.piece).unwrap_or((0, 0))
    }

    fn expected_hash(&self) -> Option<&Sha1Hash> {
        self.meta.piece_hashes.get(self.piece as usize)
    }
}

/// What became of a fetched piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Verified and written (if it was the last, the file was then moved into place, or
    /// given up if that failed).
    Stored,
    /// Another worker delivered it first, or the file is no longer wanted.
    Duplicate,
    /// It failed its SHA-1 check: a strike against the sender, banned at the last.
    BadData { banned: bool },
    /// The disk failed: the file is given up.
    WriteFailed,
}

impl Store {
    /// Replaces what we know of who holds `name`, and returns the remotes that hold pieces we
    /// lack and have no worker yet (they are counted as having one from now on). Pieces whose
    /// hashes are not known here yet do not count. If a piece we lack is held only by
    /// remotes struck out for bad data, the file can never be completed: it is given up.
    pub fn set_holders(&self, name: &str, holders: Vec<(SocketAddr, Bitset)>) -> Vec<SocketAddr> {
        let mut guard = self.lock();
        let inner = &mut *guard;
        let Some(local) = inner.files.get_mut(name) else {
            return Vec::new();
        };
        if local.status != Status::Downloading {
            return Vec::new();
        }
        let hashed = local.meta.piece_hashes.len();
        let remotes = &inner.remotes;
        let hopeless = local
            .picker
            .set_holders(holders, &local.have, hashed, |a| remotes.banned(*a));
        if hopeless {
            drop(guard);
            self.give_up(name, &"every peer holding the rest of it sent bad data");
            return Vec::new();
        }
        let candidates: Vec<SocketAddr> = local.picker.holders().collect();
        self.changed.notify_all();
        let now = Instant::now();
        let mut start = Vec::new();
        for addr in candidates {
            if inner.remotes.may_start(addr, now) && inner.useful(addr) {
                inner.remotes.worker_started(addr);
                start.push(addr);
            }
        }
        start
    }

    /// The next piece to fetch from `remote` (see [`picker::pick_rarest`]); `mine` is this
    /// worker's queue, which the endgame does not duplicate.
    pub fn pick_rarest(&self, remote: SocketAddr, mine: &[Job]) -> Option<Job> {
        let salt = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64();
        let mut inner = self.lock();
        if inner.shutting_down || inner.remotes.banned(remote) {
            return None;
        }
        let names: Vec<&String> = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Downloading)
            .map(|(n, _)| n)
            .collect();
        let downloads: Vec<Download<'_>> = names
            .iter()
            .map(|n| {
                let l = &inner.files[*n];
                (n.as_str(), &l.picker, &l.have)
            })
            .collect();
        let queued = |name: &str, p: usize| {
            mine.iter()
                .any(|j| j.piece as usize == p && j.meta.name == name)
        };
        let (i, p) = picker::pick_rarest(&downloads, remote, salt, queued)?;
        let name = names[i].clone();
        let local = inner.files.get_mut(&name)?;
        local.picker.take(p);
        Some(Job {
            meta: local.meta.clone(),
            label: local.label.clone(),
            file: local.file.clone(),
            piece: p as PieceIndex,
        })
    }

    /// Takes up to `more` pieces right after `first`'s that `remote` holds, we lack, and no
    /// worker fetches, stopping at the first that does not qualify: with `first` they make
    /// one run of pieces that a single request can carry.
    pub fn extend_run(&self, remote: SocketAddr, first: &Job, more: usize) -> Vec<Job> {
        let mut inner = self.lock();
        let Some(local) = inner.files.get_mut(&first.meta.name) else {
            return Vec::new();
        };
        if local.status != Status::Downloading {
            return Vec::new();
        }
        let hashed = local.meta.piece_hashes.len();
        let mut run = Vec::new();
        for p in (first.piece as usize + 1..hashed).take(more) {
            if !local.picker.free_at(remote, &local.have, p) {
                break;
            }
            local.picker.take(p);
            run.push(Job {
                meta: local.meta.clone(),
                label: local.label.clone(),
                file: local.file.clone(),
                piece: p as PieceIndex,
            });
        }
        run
    }

    /// Gives a job back unfinished (connection lost, remote refused).
    pub fn release(&self, job: &Job) {
        let mut inner = self.lock();
        if let Some(local) = inner.files.get_mut(&job.meta.name) {
            local.picker.untake(job.piece as usize);
        }
        self.changed.notify_all();
    }

    /// The remote refused a piece it was listed as holding: don't ask it again until the
    /// next refresh.
    pub fn not_held(&self, remote: SocketAddr, job: &Job) {
        if let Some(l) = self.lock().files.get_mut(&job.meta.name) {
            l.picker.not_held(remote, job.piece as usize);
        }
        self.release(job);
    }

    /// Hands over the bytes of `job`'s piece as `remote` sent them: checked against the
    /// piece's hash, written in place unless another worker did so first, then recorded
    /// and queued for the tracker; the last piece of a file moves it into place. The hash
    /// and the write happen outside the lock.
    pub fn deliver(&self, remote: SocketAddr, job: &Job, data: &[u8]) -> Delivery {
        self.keep(remote, job, data, &sha1(data))
    }

    /// [`Store::deliver`] for two pieces at once, hashed side by side (see
    /// [`crate::hashing::sha1_pair`]); each is then kept or refused on its own.
    pub fn deliver_two(
        &self,
        remote: SocketAddr,
        (job_a, data_a): (&Job, &[u8]),
        (job_b, data_b): (&Job, &[u8]),
    ) -> [Delivery; 2] {
        let (digest_a, digest_b) = sha1_pair(data_a, data_b);
        [
            self.keep(remote, job_a, data_a, &digest_a),
            self.keep(remote, job_b, data_b, &digest_b),
        ]
    }

    /// The rest of a delivery once the bytes' `digest` is known.
    fn keep(&self, remote: SocketAddr, job: &Job, data: &[u8], digest: &Sha1Hash) -> Delivery {
        if job.expected_hash() != Some(digest) {
            self.release(job);
            let banned = self.strike(remote);
            return Delivery::BadData { banned };
        }
        if !self.begin_write(job) {
            self.release(job);
            return Delivery::Duplicate;
        }
        let (offset, _) = job.span();
        if let Err(e) = job.file.write_all_at(data, offset) {
            let _ = self.end_write(job, false);
            let short = (e.kind() == io::ErrorKind::StorageFull).then_some("disk full");
            self.give_up_as(&job.meta.name, &format!("cannot write it: {e}"), short);
            return Delivery::WriteFailed;
        }
        match self.end_write(job, true) {
            (_, true) => self.finalize(&job.meta.name),
            (true, false) => {}
            (false, false) => return Delivery::Duplicate,
        }
        Delivery::Stored
    }

    /// Whether to write a verified piece: not if it is here already or the file is no longer
    /// downloading. A yes must be followed by [`Store::end_write`].
    fn begin_write(&self, job: &Job) -> bool {
        let mut inner = self.lock();
        match inner.files.get_mut(&job.meta.name) {
            Some(l) if l.status == Status::Downloading && !l.have.get(job.piece as usize) => {
                l.writers += 1;
                true
            }
            _ => false,
        }
    }

    /// Ends a write begun with [`Store::begin_write`]; a piece `written` is recorded as
    /// verified and queued for the tracker. Returns whether the piece is new here, and
    /// whether this was the last writer of a complete file, which must now finalize it.
    fn end_write(&self, job: &Job, written: bool) -> (bool, bool) {
        let mut inner = self.lock();
        let name = &job.meta.name;
        let Some(local) = inner.files.get_mut(name) else {
            return (false, false);
        };
        let p = job.piece as usize;
        local.picker.untake(p);
        local.writers = local.writers.saturating_sub(1);
        let downloading = written && local.status == Status::Downloading;
        let new = downloading && local.have.set(p);
        // Not only the writer of a new piece: of two writing the same last piece, the one
        // that ends last finalizes.
        let done = downloading && local.have.is_full() && local.writers == 0 && !local.finalizing;
        if done {
            local.finalizing = true;
        }
        if new {
            inner.outbox.piece(name, job.piece);
        }
        drop(inner);
        self.changed.notify_all();
        (new, done)
    }

    /// Moves a file whose pieces are all verified to its destination (every byte was
    /// checked against its piece's hash on arrival, so there is nothing more to check). A
    /// disk error gives it up.
    pub(super) fn finalize(&self, name: &str) {
        let Some((path, dest)) = self
            .lock()
            .files
            .get(name)
            .map(|l| (l.path.clone(), l.dest.clone()))
        else {
            return;
        };
        match disk::move_into_place(&path, &dest) {
            Ok(stamp) => {
                let mut inner = self.lock();
                if let Some(local) = inner.files.get_mut(name) {
                    local.status = Status::Complete;
                    local.path = dest;
                    local.stamp = Some(stamp);
                    inner.outbox.complete(name);
                }
                drop(inner);
                self.changed.notify_all();
            }
            Err(e) => {
                let gone = dest
                    .parent()
                    .is_some_and(|d| !d.as_os_str().is_empty() && !d.is_dir());
                self.give_up_as(name, &e, gone.then_some("its folder is missing"));
            }
        }
    }

    /// Counts a fault against `remote` (a piece that failed its hash, a reply that broke the
    /// protocol); returns whether it is now banned.
    pub fn strike(&self, remote: SocketAddr) -> bool {
        self.lock().remotes.strike(remote)
    }

    /// A connection to `remote` failed: let it rest before the next try.
    pub fn remote_failed(&self, remote: SocketAddr) {
        self.lock().remotes.rest(remote);
    }

    /// A worker for `remote` ended.
    pub fn worker_done(&self, remote: SocketAddr) {
        self.lock().remotes.worker_done(remote);
    }

    /// Waits up to `timeout` for a change, then says whether `remote` still has pieces we lack.
    pub fn wait_for_work(&self, remote: SocketAddr, timeout: Duration) -> bool {
        let inner = self.lock();
        let (inner, _) = self
            .changed
            .wait_timeout(inner, timeout)
            .unwrap_or_else(|e| e.into_inner());
        !inner.shutting_down && inner.useful(remote)
    }
}

impl super::Inner {
    /// Whether `remote` holds some piece of a downloading file that we lack.
    fn useful(&self, remote: SocketAddr) -> bool {
        self.files
            .values()
            .filter(|l| l.status == Status::Downloading)
            .any(|l| l.picker.useful(remote, &l.have))
    }
}
