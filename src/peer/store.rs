//! The peer's files on disk and what it knows of each: which pieces are verified here,
//! which are being fetched, who holds what. Download workers ask it for the next piece to
//! fetch (rarest first, random tie-break), the upload server asks it whether a chunk run may
//! be served, and the swarm loop takes from it the reports for the tracker.
//!
//! Invariants: a piece is served only once it is in `have`, and it is in `have` only after
//! its SHA-1 matched (for a seed: once its hash is computed here); `Shared/` only ever
//! receives a file by rename once every piece has matched. A piece is fetched only once its
//! hash is known. A file served from its final place is served only while it looks as it did
//! when it was hashed or moved in (see [`Stamp`]). No disk or socket I/O happens under the
//! lock: callers get an `Arc<File>` and do positioned I/O outside.

use crate::chunk::{Bitset, FileMeta, Geometry, PieceIndex, Rng, Sha1Hash};
use crate::protocol::MAX_GET_CHUNKS;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// After this many pieces that failed their hash, a remote peer is no longer asked.
const MAX_STRIKES: u32 = 3;
/// At most this many workers fetch the same piece at once (only in the endgame).
const MAX_DUPLICATES: u8 = 2;
/// How long to leave a remote alone after its connection failed.
const RETRY_AFTER: Duration = Duration::from_secs(1);

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

/// What a file in its final place looked like when it was hashed or moved in: a write, a
/// truncation or a replacement changes one of these, and then its hashes no longer hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    mtime: (i64, i64),
    inode: (u64, u64),
}

impl Stamp {
    fn of(path: &Path) -> io::Result<Stamp> {
        let m = fs::metadata(path)?;
        if !m.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        Ok(Stamp {
            len: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            inode: (m.dev(), m.ino()),
        })
    }
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
    /// Workers fetching each piece now, and the pieces where that is not zero.
    inflight: Vec<u8>,
    busy: Bitset,
    /// What each remote holder has, as of the last refresh.
    holders: HashMap<SocketAddr, Bitset>,
    /// How many holders have each piece.
    avail: Vec<u16>,
    /// No missing piece is rarer than this (as of the last refresh; pieces only go away).
    rarest: u16,
    /// Workers writing a piece into the file now. The file is moved into place only once
    /// none is, so that no write (even of the same bytes) lands after it was stamped.
    writers: u32,
    /// Set once one worker has been told to finalize the file.
    finalizing: bool,
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
            inflight: vec![0; n],
            busy: Bitset::new(n),
            holders: HashMap::new(),
            avail: vec![0; n],
            rarest: 1,
            writers: 0,
            finalizing: false,
        }
    }

    /// One more worker fetches piece `p`.
    fn take(&mut self, p: usize) {
        self.inflight[p] = self.inflight[p].saturating_add(1);
        self.busy.set(p);
    }

    /// One worker fewer fetches piece `p`.
    fn untake(&mut self, p: usize) {
        self.inflight[p] = self.inflight[p].saturating_sub(1);
        if self.inflight[p] == 0 {
            self.busy.clear(p);
        }
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
}

/// One piece for one worker to fetch.
#[derive(Clone)]
pub struct Job {
    pub meta: Arc<FileMeta>,
    /// The file's name in messages.
    pub label: Arc<str>,
    pub file: Arc<File>,
    pub piece: PieceIndex,
}

impl Job {
    pub fn span(&self) -> (u64, usize) {
        // Jobs are only made for pieces inside the file.
        self.meta.geometry.piece_span(self.piece).unwrap_or((0, 0))
    }

    pub fn expected_hash(&self) -> Option<&Sha1Hash> {
        self.meta.piece_hashes.get(self.piece as usize)
    }
}

/// What became of a verified piece.
pub enum Verified {
    Stored,
    /// That was the last piece: the file must now be finalized.
    FileDone,
    /// Another worker delivered it first.
    Duplicate,
}

#[derive(Default)]
struct Inner {
    files: BTreeMap<String, Local>,
    /// Verified pieces not yet reported; an entry with no pieces reports an empty file.
    reports: BTreeMap<String, BTreeSet<PieceIndex>>,
    workers: BTreeSet<SocketAddr>,
    strikes: HashMap<SocketAddr, u32>,
    retry_at: HashMap<SocketAddr, Instant>,
    /// Every file given up, so that a later `FILES` does not start it again.
    given_up: BTreeSet<String>,
    /// Files given up and not yet announced to the tracker with `DROP`.
    drops: Vec<String>,
    /// Piece hashes of our own files computed and not yet sent to the tracker: per file, the
    /// first piece and the hashes from there (none at all for an empty file).
    hash_reports: Vec<(String, PieceIndex, Vec<Sha1Hash>)>,
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
        let mut files = BTreeMap::new();
        for entry in fs::read_dir(shared)? {
            let entry = entry?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                eprintln!("peer: skipping {:?}: name is not UTF-8", entry.file_name());
                continue;
            };
            if name.starts_with('.') || !fs::metadata(entry.path())?.is_file() {
                continue;
            }
            if let Err(e) = crate::name::validate(&name) {
                eprintln!("peer: skipping {name:?}: {e}");
                continue;
            }
            // The stamp is taken before the file is opened and read: a change made while it
            // is hashed shows at the next check.
            let stamp = Stamp::of(&entry.path())?;
            let file = File::open(entry.path())?;
            let Some(geometry) = Geometry::new(stamp.len) else {
                eprintln!(
                    "peer: skipping {name:?}: larger than {} bytes",
                    crate::chunk::MAX_FILE_SIZE
                );
                continue;
            };
            let meta = FileMeta {
                name: name.clone(),
                geometry,
                piece_hashes: Vec::new(),
            };
            let have = Bitset::new(geometry.num_pieces() as usize);
            let paths = (entry.path(), entry.path());
            let mut local = Local::new(meta, file, paths, have, Status::Own);
            local.stamp = Some(stamp);
            files.insert(name, local);
        }
        fs::create_dir_all(partial)?;
        for entry in fs::read_dir(partial)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        let store = Store::empty();
        {
            let mut inner = store.lock();
            // An empty file has no hashes to compute: say so to the tracker at once, which
            // answers whether the name is ours to share.
            inner.hash_reports = files
                .iter()
                .filter(|(_, l)| l.meta.geometry.num_pieces() == 0)
                .map(|(n, _)| (n.clone(), 0, Vec::new()))
                .collect();
            inner.files = files;
        }
        Ok(Store {
            partial: Some(partial.to_path_buf()),
            shared: shared.to_path_buf(),
            ..store
        })
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

    /// Seeds the complete file at `path`, already hashed into `meta`.
    pub fn add_seed(&self, meta: FileMeta, path: &Path) -> io::Result<()> {
        let stamp = Stamp::of(path)?;
        let file = File::open(path)?;
        let have = Bitset::full(meta.geometry.num_pieces() as usize);
        let name = meta.name.clone();
        let mut local = Local::new(
            meta,
            file,
            (path.to_path_buf(), path.to_path_buf()),
            have,
            Status::Own,
        );
        local.stamp = Some(stamp);
        self.lock().files.insert(name, local);
        self.changed.notify_all();
        Ok(())
    }

    /// Stops serving and fetching `name` and forgets it; a remote fetching it at that moment
    /// gets `ERR unknown_file` and turns to another holder.
    pub fn forget(&self, name: &str) {
        self.lock().files.remove(name);
        self.changed.notify_all();
    }

    /// Verified pieces and piece count of `name`, and whether it is complete (in place).
    pub fn progress(&self, name: &str) -> Option<(Bitset, bool)> {
        let inner = self.lock();
        let local = inner.files.get(name)?;
        Some((
            local.have.clone(),
            matches!(local.status, Status::Own | Status::Complete),
        ))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
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
        inner.hash_reports.retain(|(n, _, _)| n != name);
        drop(inner);
        eprintln!(
            "peer: not sharing {label:?}: the swarm already has other content by that name ({why})"
        );
    }

    pub fn knows(&self, name: &str) -> bool {
        let inner = self.lock();
        inner.files.contains_key(name) || inner.given_up.contains(name)
    }

    /// Gives file `name` up for good, saying why once on stderr: a download that cannot be
    /// stored or does not check out is deleted; a file that vanished or changed in `Shared/`
    /// is no longer served. The tracker is told with `DROP` (see [`Store::take_drops`]).
    pub fn give_up(&self, name: &str, why: &dyn std::fmt::Display) {
        let mut inner = self.lock();
        let was = inner.files.get(name).map(|l| l.status);
        let path = inner.files.get(name).map(|l| l.path.clone());
        let label = inner
            .files
            .get(name)
            .map_or_else(|| name.into(), |l| l.label.clone());
        let now = match was {
            Some(Status::Downloading) | None => Status::Failed,
            Some(Status::Own | Status::Complete) => Status::Lost,
            // Already given up, or never offered: nothing more to do.
            Some(Status::Failed | Status::Lost | Status::Withdrawn) => return,
        };
        if let Some(local) = inner.files.get_mut(name) {
            local.status = now;
        }
        inner.given_up.insert(name.to_string());
        inner.drops.push(name.to_string());
        inner.reports.remove(name);
        inner.hash_reports.retain(|(n, _, _)| n != name);
        drop(inner);
        self.changed.notify_all();
        if now == Status::Failed {
            if let Some(path) = path {
                let _ = fs::remove_file(path);
            }
            eprintln!("peer: giving up {label:?}: {why}");
        } else {
            eprintln!("peer: no longer sharing {label:?}: {why}");
        }
    }

    /// Takes the names given up since the last call, for `DROP`.
    pub fn take_drops(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().drops)
    }

    /// Whether a complete file we serve still looks as it did when it was hashed or moved
    /// in (size, modification time, inode): a seed rewritten, truncated, replaced or deleted
    /// under us must not be served. Call outside the lock, after reading what is to be sent.
    pub fn still_intact(&self, name: &str) -> bool {
        let expected = {
            let inner = self.lock();
            match inner.files.get(name) {
                Some(l) if matches!(l.status, Status::Own | Status::Complete) => {
                    l.stamp.map(|stamp| (l.path.clone(), stamp))
                }
                _ => None,
            }
        };
        match expected {
            None => true,
            Some((path, stamp)) => Stamp::of(&path).is_ok_and(|now| now == stamp),
        }
    }

    /// Our own files whose pieces are not all hashed yet, smallest first (so that many
    /// files become available soon), with what the hasher needs to read them.
    pub fn unhashed_seeds(&self) -> Vec<(String, Arc<File>, Geometry)> {
        let inner = self.lock();
        let mut seeds: Vec<(String, Arc<File>, Geometry)> = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Own && !l.meta.fully_hashed())
            .map(|(n, l)| (n.clone(), l.file.clone(), l.meta.geometry))
            .collect();
        seeds.sort_by_key(|(n, _, g)| (g.size(), n.clone()));
        seeds
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
        inner
            .hash_reports
            .push((name.to_string(), first as PieceIndex, hashes));
        drop(inner);
        self.changed.notify_all();
        true
    }

    /// Takes the piece hashes of our own files not yet sent to the tracker, in order.
    pub fn take_hash_reports(&self) -> Vec<(String, PieceIndex, Vec<Sha1Hash>)> {
        std::mem::take(&mut self.lock().hash_reports)
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

    /// The size of download `name`, if we download it.
    pub fn downloading_size(&self, name: &str) -> Option<u64> {
        let inner = self.lock();
        let local = inner.files.get(name)?;
        (local.status == Status::Downloading).then_some(local.meta.geometry.size())
    }

    /// How many piece hashes of `name` are known here.
    pub fn known_hashes(&self, name: &str) -> usize {
        let inner = self.lock();
        inner
            .files
            .get(name)
            .map_or(0, |l| l.meta.piece_hashes.len())
    }

    /// The complete files here (started with or downloaded), to offer when rejoining.
    pub fn complete_files(&self) -> Vec<Arc<FileMeta>> {
        let inner = self.lock();
        let complete = inner
            .files
            .values()
            .filter(|l| matches!(l.status, Status::Own | Status::Complete));
        complete.map(|l| l.meta.clone()).collect()
    }

    /// After rejoining a tracker: report again every verified piece of every download, every
    /// piece hash known of every file offered, and every file given up or refused.
    pub fn report_all_again(&self) {
        let mut inner = self.lock();
        let mut hashes = Vec::new();
        let mut pieces = BTreeMap::new();
        for (name, l) in &inner.files {
            match l.status {
                Status::Own | Status::Complete => {
                    hashes.push((name.clone(), 0, l.meta.piece_hashes.clone()));
                }
                Status::Downloading if !l.have.is_clear() => {
                    let have = l.have.iter_ones().map(|p| p as PieceIndex).collect();
                    pieces.insert(name.clone(), have);
                }
                _ => {}
            }
        }
        inner.hash_reports = hashes;
        inner.reports = pieces;
        // What we gave up or were refused, the new tracker must hear too, or it would wait
        // for us to fetch it.
        let withdrawn = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Withdrawn)
            .map(|(n, _)| n.clone());
        let drops: BTreeSet<String> = inner.given_up.iter().cloned().chain(withdrawn).collect();
        inner.drops = drops.into_iter().collect();
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
        let size = meta.geometry.size();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(!resume)
            .open(partial)?;
        let n = meta.geometry.num_pieces() as usize;
        let mut have = Bitset::new(n);
        if resume && file.metadata()?.len() == size {
            let mut buf = Vec::new();
            for p in 0..meta.geometry.num_pieces() {
                let (offset, len) = meta.geometry.piece_span(p).unwrap_or((0, 0));
                buf.resize(len, 0);
                if file.read_exact_at(&mut buf, offset).is_ok()
                    && meta.piece_hashes.get(p as usize) == Some(&crate::chunk::sha1(&buf))
                {
                    have.set(p as usize);
                }
            }
        }
        file.set_len(size)?;
        let name = meta.name.clone();
        let complete = have.is_full();
        {
            let mut inner = self.lock();
            if inner.files.contains_key(&name) {
                return Ok(());
            }
            let mut local = Local::new(
                meta,
                file,
                (partial.to_path_buf(), dest.to_path_buf()),
                have,
                Status::Downloading,
            );
            local.label = label.into();
            inner.files.insert(name.clone(), local);
        }
        if complete {
            self.finalize(&name);
        }
        Ok(())
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

    /// Replaces what we know of who holds `name`, and returns the remotes that hold pieces we
    /// lack and have no worker yet (they are counted as having one from now on). Pieces whose
    /// hashes are not known here yet do not count. If a piece we lack is held only by
    /// remotes struck out for bad data, the file can never be completed: it is given up.
    pub fn set_holders(&self, name: &str, holders: Vec<(SocketAddr, Bitset)>) -> Vec<SocketAddr> {
        let mut inner = self.lock();
        let Inner { files, strikes, .. } = &mut *inner;
        let Some(local) = files.get_mut(name) else {
            return Vec::new();
        };
        if local.status != Status::Downloading {
            return Vec::new();
        }
        let n = local.have.num_bits();
        let hashed = Bitset::prefix(n, local.meta.piece_hashes.len());
        let banned = |addr: &SocketAddr| strikes.get(addr).is_some_and(|&s| s >= MAX_STRIKES);
        local.avail = vec![0; n];
        local.holders.clear();
        let mut only_banned = Bitset::new(n);
        for (addr, mut pieces) in holders {
            if pieces.num_bits() != n {
                continue;
            }
            pieces.and_with(&hashed);
            if banned(&addr) {
                for p in pieces.iter_ones() {
                    only_banned.set(p);
                }
                continue;
            }
            for p in pieces.iter_ones() {
                local.avail[p] = local.avail[p].saturating_add(1);
            }
            local.holders.insert(addr, pieces);
        }
        let hopeless = only_banned
            .iter_ones()
            .any(|p| !local.have.get(p) && local.avail[p] == 0);
        if hopeless {
            drop(inner);
            self.give_up(name, &"every peer holding the rest of it sent bad data");
            return Vec::new();
        }
        let missing = (0..n).filter(|&p| !local.have.get(p) && local.avail[p] > 0);
        local.rarest = missing.map(|p| local.avail[p]).min().unwrap_or(1);
        let candidates: Vec<SocketAddr> = local.holders.keys().copied().collect();
        self.changed.notify_all();
        let now = Instant::now();
        let mut start = Vec::new();
        for addr in candidates {
            let banned = inner.strikes.get(&addr).is_some_and(|&s| s >= MAX_STRIKES);
            let waiting = inner.retry_at.get(&addr).is_some_and(|&t| t > now);
            if !banned && !waiting && !inner.workers.contains(&addr) && inner.useful(addr) {
                inner.workers.insert(addr);
                start.push(addr);
            }
        }
        start
    }

    /// The next piece to fetch from `remote`: the rarest piece it has that we lack and nobody
    /// fetches yet, random among equally rare ones; failing that (the endgame), a piece
    /// another worker is fetching, unless `mine` (this worker's queue) already has it.
    pub fn pick_rarest(&self, remote: SocketAddr, mine: &[Job]) -> Option<Job> {
        let salt = self
            .rng
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .next_u64();
        let mut inner = self.lock();
        let banned = inner
            .strikes
            .get(&remote)
            .is_some_and(|&s| s >= MAX_STRIKES);
        if inner.shutting_down || banned {
            return None;
        }
        let mut files: Vec<(&String, &Local)> = inner
            .files
            .iter()
            .filter(|(_, l)| l.status == Status::Downloading && l.holders.contains_key(&remote))
            .collect();
        let turn = salt as usize % files.len().max(1);
        files.rotate_left(turn);
        let mut best: Option<(u16, &str, usize)> = None;
        'files: for &(name, local) in &files {
            let theirs = &local.holders[&remote];
            for p in candidates(theirs, &local.have, &local.busy, false, salt) {
                let avail = local.avail[p];
                if best.is_none_or(|(b, _, _)| avail < b) {
                    best = Some((avail, name, p));
                    if avail <= 1 {
                        break 'files;
                    }
                    if avail <= local.rarest {
                        continue 'files;
                    }
                }
            }
        }
        let choice = best.map(|(_, name, p)| (name, p)).or_else(|| {
            files.iter().find_map(|&(name, local)| {
                let theirs = &local.holders[&remote];
                let mut spare = candidates(theirs, &local.have, &local.busy, true, salt);
                let queued = |p: usize| {
                    mine.iter()
                        .any(|j| j.piece as usize == p && j.meta.name == *name)
                };
                spare
                    .find(|&p| local.inflight[p] < MAX_DUPLICATES && !queued(p))
                    .map(|p| (name.as_str(), p))
            })
        });
        let (name, p) = choice?;
        let name = name.to_string();
        let local = inner.files.get_mut(&name)?;
        local.take(p);
        Some(Job {
            meta: local.meta.clone(),
            label: local.label.clone(),
            file: local.file.clone(),
            piece: p as PieceIndex,
        })
    }

    /// Gives a job back unfinished (connection lost, remote refused).
    pub fn release(&self, job: &Job) {
        let mut inner = self.lock();
        if let Some(local) = inner.files.get_mut(&job.meta.name) {
            local.untake(job.piece as usize);
        }
        self.changed.notify_all();
    }

    /// The remote refused a piece it was listed as holding: don't ask it again until the
    /// next refresh.
    pub fn not_held(&self, remote: SocketAddr, job: &Job) {
        let mut inner = self.lock();
        if let Some(h) = inner
            .files
            .get_mut(&job.meta.name)
            .and_then(|l| l.holders.get_mut(&remote))
        {
            h.clear(job.piece as usize);
        }
        drop(inner);
        self.release(job);
    }

    /// A worker with a verified piece asks whether to write it: not if the piece is here
    /// already or the file is no longer downloading. A yes must be followed by
    /// [`Store::verified`] or [`Store::write_failed`].
    pub fn begin_write(&self, job: &Job) -> bool {
        let mut inner = self.lock();
        match inner.files.get_mut(&job.meta.name) {
            Some(l) if l.status == Status::Downloading && !l.have.get(job.piece as usize) => {
                l.writers += 1;
                true
            }
            _ => false,
        }
    }

    /// A write begun with [`Store::begin_write`] failed (the caller gives the file up).
    pub fn write_failed(&self, job: &Job) {
        let mut inner = self.lock();
        if let Some(l) = inner.files.get_mut(&job.meta.name) {
            l.writers = l.writers.saturating_sub(1);
            l.untake(job.piece as usize);
        }
        drop(inner);
        self.changed.notify_all();
    }

    /// Records a piece whose data matched its hash and has been written (after
    /// [`Store::begin_write`]). The last writer of a complete file is told to finalize it.
    pub fn verified(&self, job: &Job) -> Verified {
        let mut inner = self.lock();
        let name = &job.meta.name;
        let Some(local) = inner.files.get_mut(name) else {
            return Verified::Duplicate;
        };
        let p = job.piece as usize;
        local.untake(p);
        local.writers = local.writers.saturating_sub(1);
        let downloading = local.status == Status::Downloading;
        let new = downloading && local.have.set(p);
        let done = downloading && local.have.is_full() && local.writers == 0 && !local.finalizing;
        if done {
            local.finalizing = true;
        }
        if new {
            inner
                .reports
                .entry(name.clone())
                .or_default()
                .insert(job.piece);
            self.changed.notify_all();
        }
        match (done, new) {
            (true, _) => Verified::FileDone,
            (false, true) => Verified::Stored,
            (false, false) => Verified::Duplicate,
        }
    }

    /// Counts a fault against `remote` (a piece that failed its hash, a reply that broke the
    /// protocol); returns whether it is now banned.
    pub fn strike(&self, remote: SocketAddr) -> bool {
        let mut inner = self.lock();
        let s = inner.strikes.entry(remote).or_insert(0);
        *s += 1;
        *s >= MAX_STRIKES
    }

    /// Moves a file whose pieces are all verified to its destination (every byte was
    /// checked against its piece's hash on arrival, so there is nothing more to check). A
    /// disk error gives it up.
    pub fn finalize(&self, name: &str) {
        let Some((path, dest)) = self
            .lock()
            .files
            .get(name)
            .map(|l| (l.path.clone(), l.dest.clone()))
        else {
            return;
        };
        match fs::rename(&path, &dest).and_then(|()| Stamp::of(&dest)) {
            Ok(stamp) => {
                let mut inner = self.lock();
                if let Some(local) = inner.files.get_mut(name) {
                    local.status = Status::Complete;
                    local.path = dest;
                    local.stamp = Some(stamp);
                    inner.reports.entry(name.to_string()).or_default();
                }
                drop(inner);
                self.changed.notify_all();
            }
            Err(e) => self.give_up(name, &e),
        }
    }

    /// A connection to `remote` failed: let it rest before the next try.
    pub fn remote_failed(&self, remote: SocketAddr) {
        self.lock()
            .retry_at
            .insert(remote, Instant::now() + RETRY_AFTER);
    }

    /// A worker for `remote` ended.
    pub fn worker_done(&self, remote: SocketAddr) {
        self.lock().workers.remove(&remote);
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

    /// Takes the verified pieces not yet reported, per file.
    pub fn take_reports(&self) -> Vec<(String, Vec<PieceIndex>)> {
        let mut inner = self.lock();
        std::mem::take(&mut inner.reports)
            .into_iter()
            .map(|(name, pieces)| (name, pieces.into_iter().collect()))
            .collect()
    }

    /// Sleeps until there is something to report (verified pieces, hashes of our own files,
    /// files given up) or `timeout` passes.
    pub fn wait_for_reports(&self, timeout: Duration) {
        let inner = self.lock();
        let _ = self.changed.wait_timeout_while(inner, timeout, |i| {
            i.reports.is_empty() && i.hash_reports.is_empty() && i.drops.is_empty()
        } && !i.shutting_down);
    }

    /// Whether some of our own files are still being hashed.
    pub fn hashing(&self) -> bool {
        let inner = self.lock();
        inner
            .files
            .values()
            .any(|l| l.status == Status::Own && !l.meta.fully_hashed())
    }

    /// Where the upload server may read the chunk run `[first, first + count)` of `name`:
    /// the file, offset and length, provided every piece the run touches is verified here.
    pub fn source(
        &self,
        name: &str,
        first: u64,
        count: u64,
    ) -> Result<(Arc<File>, u64, usize), &'static str> {
        let inner = self.lock();
        let local = inner.files.get(name).ok_or("unknown_file")?;
        if matches!(
            local.status,
            Status::Withdrawn | Status::Failed | Status::Lost
        ) {
            return Err("unknown_file");
        }
        if count > MAX_GET_CHUNKS {
            return Err("too_many_chunks");
        }
        let geometry = local.meta.geometry;
        let (offset, len) = geometry
            .chunk_run_span(first, count)
            .ok_or("bad_chunk_range")?;
        if !geometry
            .pieces_of_chunk_run(first, count)
            .all(|p| local.have.get(p as usize))
        {
            return Err("not_held");
        }
        Ok((local.file.clone(), offset, len))
    }

    /// Stops handing out work; waiting workers wake and end.
    pub fn shut_down(&self) {
        self.lock().shutting_down = true;
        self.changed.notify_all();
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

    /// Whether `name` was given up (a download that failed, a seed that changed or vanished).
    pub fn failed(&self, name: &str) -> bool {
        let inner = self.lock();
        inner
            .files
            .get(name)
            .is_some_and(|l| matches!(l.status, Status::Failed | Status::Lost))
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

impl Inner {
    /// Whether `remote` holds some piece of a downloading file that we lack.
    fn useful(&self, remote: SocketAddr) -> bool {
        self.files
            .values()
            .filter(|l| l.status == Status::Downloading)
            .any(|l| {
                l.holders
                    .get(&remote)
                    .is_some_and(|theirs| theirs.iter_ones().any(|p| !l.have.get(p)))
            })
    }
}

/// The pieces `theirs` has, `have` lacks, and that are `busy` or not as asked, visited 64 at
/// a time from a word and a bit offset that `salt` picks, so that peers asking at once are
/// handed different pieces.
fn candidates<'a>(
    theirs: &'a Bitset,
    have: &'a Bitset,
    busy: &'a Bitset,
    want_busy: bool,
    salt: u64,
) -> impl Iterator<Item = usize> + 'a {
    let n = theirs.words().len();
    let start = salt as usize % n.max(1);
    let turn = (salt >> 32) as u32 % 64;
    (0..n).flat_map(move |i| {
        let w = (start + i) % n;
        let b = busy.words()[w];
        let mut bits = theirs.words()[w] & !have.words()[w] & if want_busy { b } else { !b };
        bits = bits.rotate_right(turn);
        std::iter::from_fn(move || {
            if bits == 0 {
                return None;
            }
            let bit = bits.trailing_zeros();
            bits &= bits - 1;
            Some(w * 64 + ((bit + turn) % 64) as usize)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::{PIECE_SIZE, sha1};

    /// A store with no files of its own, in a fresh folder under the temp dir.
    fn empty_store(tag: &str) -> (Store, PathBuf) {
        let root = std::env::temp_dir().join(format!("p2p-store-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join("Shared")).unwrap();
        let store = Store::open(&root.join("Shared"), &root.join(".partial")).unwrap();
        (store, root)
    }

    fn meta(name: &str, pieces: u32) -> FileMeta {
        let geometry = Geometry::new(u64::from(pieces) * PIECE_SIZE).unwrap();
        FileMeta {
            name: name.into(),
            geometry,
            piece_hashes: (0..pieces).map(|p| sha1(&p.to_le_bytes())).collect(),
        }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn bits(n: usize, set: &[usize]) -> Bitset {
        let mut b = Bitset::new(n);
        for &i in set {
            b.set(i);
        }
        b
    }

    #[test]
    fn pieces_are_picked_rarest_first_then_shared_in_the_endgame() {
        let (store, root) = empty_store("rarest");
        store.add_download(meta("f", 100)).unwrap();
        // Remote 1 has everything; remotes 2 and 3 have all but pieces 7 and 42.
        let common: Vec<usize> = (0..100).filter(|p| *p != 7 && *p != 42).collect();
        let holders = vec![
            (addr(1), Bitset::full(100)),
            (addr(2), bits(100, &common)),
            (addr(3), bits(100, &common)),
        ];
        assert_eq!(
            store.set_holders("f", holders).len(),
            3,
            "a worker for each holder"
        );
        let first = store.pick_rarest(addr(1), &[]).unwrap();
        let second = store.pick_rarest(addr(1), &[]).unwrap();
        let mut rare = [first.piece, second.piece];
        rare.sort();
        assert_eq!(rare, [7, 42], "the two pieces only remote 1 has come first");
        // Every other piece is handed out once before any is handed out twice.
        let mut seen = BTreeSet::new();
        for _ in 0..98 {
            let job = store.pick_rarest(addr(2), &[]).unwrap();
            assert!(
                seen.insert(job.piece),
                "piece {} handed out twice",
                job.piece
            );
        }
        // Endgame: remote 2 may now duplicate a piece another worker is fetching,
        // but not one already in its own queue.
        let mine = [store.pick_rarest(addr(2), &[]).unwrap()];
        let dup = store.pick_rarest(addr(2), &mine).unwrap();
        assert_ne!(dup.piece, mine[0].piece);
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn a_rejoin_reports_again_what_was_given_up() {
        let (store, root) = empty_store("rejoin");
        store.add_download(meta("gone", 4)).unwrap();
        store.add_download(meta("kept", 4)).unwrap();
        store.give_up("gone", &"test");
        assert_eq!(store.take_drops(), ["gone"]);
        store.report_all_again();
        assert_eq!(store.take_drops(), ["gone"], "the new tracker hears it too");
        let _ = fs::remove_dir_all(root);
    }

    #[test]
    fn equally_rare_pieces_come_in_varied_orders() {
        let (store, root) = empty_store("ties");
        store.add_download(meta("g", 256)).unwrap();
        store.set_holders("g", vec![(addr(1), Bitset::full(256))]);
        let firsts: BTreeSet<u32> = (0..20)
            .map(|_| {
                let job = store.pick_rarest(addr(1), &[]).unwrap();
                store.release(&job);
                job.piece
            })
            .collect();
        assert!(firsts.len() > 5, "ties broken at random, got {firsts:?}");
        let _ = fs::remove_dir_all(root);
    }
}
