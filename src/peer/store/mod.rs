//! The peer's files and what it knows of each: where its bytes are, which pieces are
//! verified here, and whether it is offered, downloading, complete or given up. Around that
//! table, in rooms of their own: the download side ([`fetch`]: the piece picker's choices
//! and the one way a fetched piece enters the store), the upload side ([`serve`]: which
//! chunk runs may be read), and what is to be told to the tracker ([`outbox`]).
//!
//! Invariants: a piece is served only once it is in `have`, and it is in `have` only after
//! its SHA-1 matched (for a seed: once its hash is computed here); `Shared/` only ever
//! receives a file by rename once every piece has matched. A piece is fetched only once its
//! hash is known. A file served from its final place is served only while it looks as it did
//! when it was hashed or moved in (see [`Stamp`]). No disk or socket I/O happens under the
//! lock: the store takes what it needs under it (an `Arc<File>`, an offset) and reads,
//! writes or renames after letting go.

mod ending;
mod fetch;
mod outbox;
mod serve;
#[cfg(test)]
mod tests;

pub use fetch::{Delivery, Job};
pub use serve::ChunkRun;

use super::disk::{self, Stamp};
use super::picker::Picker;
use super::remotes::Remotes;
use crate::chunk::{Bitset, FileMeta, Geometry, Sha1Hash};
use crate::rng::Rng;
use outbox::Outbox;
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Found in `Shared/` at start and offered; its pieces are served as they are hashed.
    Own,
    /// Found in `Shared/` but refused by the tracker (its name is taken by other content):
    /// kept, not served.
    Withdrawn,
    Downloading,
    /// Downloaded, verified and moved into `Shared/`.
    Complete,
    /// Gave up (the disk failed, or every holder sent bad data): its partial data is deleted.
    Failed,
    /// Was in `Shared/` but is gone or changed there: no longer served.
    Lost,
}

struct Local {
    meta: Arc<FileMeta>,
    /// The file's name in messages (the key of a `.mtorrent` file is its info hash).
    label: Arc<str>,
    /// For a file in its final place: how it looked when hashed or moved in.
    stamp: Option<Stamp>,
    file: Arc<File>,
    /// Where the bytes are now: the partial file while downloading.
    path: PathBuf,
    /// Where the file belongs once complete (the same as `path` for a seed).
    dest: PathBuf,
    have: Bitset,
    status: Status,
    picker: Picker,
    /// Workers writing a piece into the file now. The file is moved into place only once
    /// none is, so that no write (even of the same bytes) lands after it was stamped.
    writers: u32,
    /// Set once one worker has been told to finalize the file.
    finalizing: bool,
    /// Why it was given up, in a few words for the user.
    why: Option<String>,
}

impl Local {
    fn new(
        meta: FileMeta,
        file: File,
        (path, dest): (PathBuf, PathBuf),
        have: Bitset,
        status: Status,
    ) -> Local {
        let n = have.num_bits();
        let label = dest
            .file_name()
            .map_or_else(|| meta.name.as_str().into(), |n| n.to_string_lossy().into());
        Local {
            meta: Arc::new(meta),
            label,
            stamp: None,
            file: Arc::new(file),
            path,
            dest,
            have,
            status,
            picker: Picker::new(n),
            writers: 0,
            finalizing: false,
            why: None,
        }
    }

    /// A complete file in its final place, as it looks now.
    fn placed(meta: FileMeta, file: File, path: &Path, have: Bitset, stamp: Stamp) -> Local {
        let paths = (path.to_path_buf(), path.to_path_buf());
        let mut local = Local::new(meta, file, paths, have, Status::Own);
        local.stamp = Some(stamp);
        local
    }

    /// Appends the hashes of the next pieces (no more than the file has); returns the index
    /// of the first piece they are for.
    fn extend_hashes(&mut self, more: &[Sha1Hash]) -> usize {
        let known = self.meta.piece_hashes.len();
        let room = self.meta.geometry.num_pieces() as usize - known;
        if !more.is_empty() && room > 0 {
            let mut meta = (*self.meta).clone();
            meta.piece_hashes
                .extend_from_slice(&more[..more.len().min(room)]);
            self.meta = Arc::new(meta);
        }
        known
    }

    fn serves(&self) -> bool {
        matches!(self.status, Status::Own | Status::Complete)
    }

    /// For a complete file we serve from its final place: where it is and how it must
    /// still look there (see [`Stamp`]).
    fn stamp_to_check(&self) -> Option<(PathBuf, Stamp)> {
        let stamp = self.stamp.filter(|_| self.serves())?;
        Some((self.path.clone(), stamp))
    }

    /// Whether this is one of our own files with pieces still to hash.
    fn unhashed(&self) -> bool {
        self.status == Status::Own && !self.meta.fully_hashed()
    }
}

#[derive(Default)]
struct Inner {
    files: BTreeMap<String, Local>,
    outbox: Outbox,
    remotes: Remotes,
    /// Every file given up, so that a later `FILES` does not start it again.
    given_up: BTreeSet<String>,
    shutting_down: bool,
}

pub struct Store {
    /// Swarm mode's `Shared/`, where downloads go when complete.
    shared: PathBuf,
    /// Swarm mode's hidden folder for downloads in progress, removed at the end if empty.
    partial: Option<PathBuf>,
    inner: Mutex<Inner>,
    changed: Condvar,
    rng: Mutex<Rng>,
}

impl Store {
    /// Scans `shared` for the files to offer (regular, visible, valid names) without reading
    /// them: they are hashed later, by [`crate::peer::hasher`]. Prepares `partial` (emptied
    /// of leftovers) for downloads.
    pub fn open(shared: &Path, partial: &Path) -> io::Result<Store> {
        let mut found = disk::scan_shared(shared)?;
        found.sort_by(|a, b| a.name.cmp(&b.name));
        disk::clear_partial_dir(partial)?;
        let store = Store {
            partial: Some(partial.to_path_buf()),
            shared: shared.to_path_buf(),
            ..Store::empty()
        };
        {
            let mut inner = store.lock();
            for f in found {
                let meta = FileMeta {
                    name: f.name.clone(),
                    geometry: f.geometry,
                    piece_hashes: Vec::new(),
                };
                let have = Bitset::new(f.geometry.num_pieces() as usize);
                // An empty file has no hashes to compute: say so to the tracker at once,
                // which answers whether the name is ours to share.
                if f.geometry.num_pieces() == 0 {
                    inner.outbox.hashes(&f.name, 0, Vec::new());
                }
                let local = Local::placed(meta, f.file, &f.path, have, f.stamp);
                inner.files.insert(f.name, local);
            }
        }
        Ok(store)
    }

    /// A store with no files, for the interactive client, which adds seeds and downloads
    /// wherever the user keeps them.
    pub fn empty() -> Store {
        Store {
            partial: None,
            shared: PathBuf::new(),
            inner: Mutex::new(Inner::default()),
            changed: Condvar::new(),
            rng: Mutex::new(Rng::seeded()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Seeds the complete file at `path`, already hashed into `meta`.
    pub fn add_seed(&self, meta: FileMeta, path: &Path) -> io::Result<()> {
        let stamp = Stamp::of(path)?;
        let file = File::open(path)?;
        let have = Bitset::full(meta.geometry.num_pieces() as usize);
        let name = meta.name.clone();
        let local = Local::placed(meta, file, path, have, stamp);
        self.lock().files.insert(name, local);
        self.changed.notify_all();
        Ok(())
    }

    /// Starts downloading a file the tracker listed into the hidden partial folder; it moves
    /// into `Shared/` when complete. An empty file is complete at once.
    pub fn add_download(&self, meta: FileMeta) -> io::Result<()> {
        let partial = self.partial.clone().unwrap_or_default().join(&meta.name);
        let dest = self.shared.join(&meta.name);
        let label = meta.name.clone();
        self.add_download_to(meta, &label, &partial, &dest, false)
    }

    /// Starts downloading into `partial`, to be renamed to `dest` when complete; messages
    /// call it `label`. With `resume`, the pieces already in `partial` are verified and kept
    /// rather than fetched again. An empty file is complete at once.
    pub fn add_download_to(
        &self,
        meta: FileMeta,
        label: &str,
        partial: &Path,
        dest: &Path,
        resume: bool,
    ) -> io::Result<()> {
        let (file, have) = disk::open_partial(partial, &meta, resume)?;
        let name = meta.name.clone();
        let complete = have.is_full();
        {
            let mut inner = self.lock();
            if inner.files.contains_key(&name) {
                return Ok(());
            }
            let paths = (partial.to_path_buf(), dest.to_path_buf());
            let mut local = Local::new(meta, file, paths, have, Status::Downloading);
            local.label = label.into();
            inner.files.insert(name.clone(), local);
        }
        if complete {
            self.finalize(&name);
        }
        Ok(())
    }

    /// Verified pieces and piece count of `name`, and whether it is complete (in place).
    pub fn progress(&self, name: &str) -> Option<(Bitset, bool)> {
        let inner = self.lock();
        let local = inner.files.get(name)?;
        Some((local.have.clone(), local.serves()))
    }

    /// The tracker refused our copy of `name` (other content goes by that name in the swarm):
    /// keep it in `Shared/` untouched, but stop serving, hashing and offering it. Says why
    /// once on stderr.
    pub fn withdraw(&self, name: &str, why: &str) {
        let mut inner = self.lock();
        let Some(l) = inner.files.get_mut(name) else {
            return;
        };
        if l.status != Status::Own {
            return;
        }
        l.status = Status::Withdrawn;
        let label = l.label.clone();
        inner.outbox.forget_hashes(name);
        drop(inner);
        eprintln!(
            "peer: not sharing {label:?}: the swarm already has other content by that name ({why})"
        );
    }

    pub fn knows(&self, name: &str) -> bool {
        let inner = self.lock();
        inner.files.contains_key(name) || inner.given_up.contains(name)
    }

    /// Our own files whose pieces are not all hashed yet, smallest first (so that many
    /// files become available soon), with what the hasher needs to read them.
    pub fn unhashed_seeds(&self) -> Vec<(String, Arc<File>, Geometry)> {
        let inner = self.lock();
        let mut seeds: Vec<(String, Arc<File>, Geometry)> = inner
            .files
            .iter()
            .filter(|(_, l)| l.unhashed())
            .map(|(n, l)| (n.clone(), l.file.clone(), l.meta.geometry))
            .collect();
        seeds.sort_by_key(|(n, _, g)| (g.size(), n.clone()));
        seeds
    }

    /// Whether some of our own files are still being hashed.
    pub fn hashing(&self) -> bool {
        let inner = self.lock();
        inner.files.values().any(Local::unhashed)
    }

    /// Records the hashes of the next pieces of our own file `name` (none, for an empty
    /// file): those pieces may be served from now on, and the hashes go to the tracker with
    /// the next report. Returns false once the file is no longer ours to hash (withdrawn,
    /// given up).
    pub fn add_own_hashes(&self, name: &str, hashes: Vec<Sha1Hash>) -> bool {
        let mut inner = self.lock();
        let Some(local) = inner.files.get_mut(name) else {
            return false;
        };
        if local.status != Status::Own {
            return false;
        }
        let first = local.extend_hashes(&hashes);
        for p in first..local.meta.piece_hashes.len() {
            local.have.set(p);
        }
        inner.outbox.hashes(name, first as u32, hashes);
        drop(inner);
        self.changed.notify_all();
        true
    }

    /// Learns the piece hashes of download `name` from piece `first` on: those already
    /// known must be the same (false if not: it is other content), the rest are added. Its
    /// pieces are fetched only once their hashes are known.
    pub fn add_download_hashes(&self, name: &str, first: usize, hashes: &[Sha1Hash]) -> bool {
        let mut inner = self.lock();
        let Some(local) = inner.files.get_mut(name) else {
            return true;
        };
        let known = local.meta.piece_hashes.len();
        if local.status != Status::Downloading || first > known {
            return true;
        }
        let overlap = (known - first).min(hashes.len());
        if local.meta.piece_hashes[first..first + overlap] != hashes[..overlap] {
            return false;
        }
        local.extend_hashes(&hashes[overlap..]);
        true
    }

    /// How many piece hashes of `name` are known here.
    pub fn known_hashes(&self, name: &str) -> usize {
        let inner = self.lock();
        inner
            .files
            .get(name)
            .map_or(0, |l| l.meta.piece_hashes.len())
    }

    /// The size of download `name`, if we download it.
    pub fn downloading_size(&self, name: &str) -> Option<u64> {
        let inner = self.lock();
        let local = inner.files.get(name)?;
        (local.status == Status::Downloading).then_some(local.meta.geometry.size())
    }

    /// Names and piece counts of the files still downloading.
    pub fn downloading(&self) -> Vec<(String, usize)> {
        let inner = self.lock();
        let names = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Downloading);
        names.map(|(n, l)| (n.clone(), l.have.num_bits())).collect()
    }

    /// Whether some file has every piece verified but is not yet in `Shared/`: leaving now
    /// would tell the tracker we hold a file that `Shared/` does not show.
    pub fn finishing(&self) -> bool {
        let inner = self.lock();
        inner
            .files
            .values()
            .any(|l| l.status == Status::Downloading && l.have.is_full())
    }

    /// The complete files here (started with or downloaded), to offer when rejoining.
    pub fn complete_files(&self) -> Vec<Arc<FileMeta>> {
        let inner = self.lock();
        let complete = inner.files.values().filter(|l| l.serves());
        complete.map(|l| l.meta.clone()).collect()
    }

    /// The names of the files now in `Shared/`: those we started with (shared or not) and
    /// those we completed, unless they have since vanished from there.
    pub fn shared_names(&self) -> Vec<String> {
        let placed: Vec<(String, PathBuf, Status)> = {
            let inner = self.lock();
            let placed = inner
                .files
                .iter()
                .filter(|(_, l)| l.status != Status::Downloading && l.status != Status::Failed);
            placed
                .map(|(n, l)| (n.clone(), l.path.clone(), l.status))
                .collect()
        };
        placed
            .into_iter()
            .filter(|(_, path, status)| {
                *status != Status::Lost || fs::metadata(path).is_ok_and(|m| m.is_file())
            })
            .map(|(n, _, _)| n)
            .collect()
    }

    /// Stops handing out work; waiting workers wake and end.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.changed.notify_all();
    }

    /// Removes the partial files of downloads that did not complete, and swarm mode's partial
    /// folder if that leaves it empty.
    pub fn discard_partials(&self) {
        let paths: Vec<PathBuf> = {
            let inner = self.lock();
            let partial = inner
                .files
                .values()
                .filter(|l| l.status == Status::Downloading);
            partial.map(|l| l.path.clone()).collect()
        };
        for path in paths {
            let _ = fs::remove_file(path);
        }
        if let Some(dir) = &self.partial {
            let _ = fs::remove_dir(dir);
        }
    }
}
