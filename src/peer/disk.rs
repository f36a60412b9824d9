//! The peer's files and folders on disk: finding the files to offer in `Shared/`, the
//! partial files of downloads in progress (and, on resume, which of their pieces already
//! check out), moving a complete download into place, and the [`Stamp`] that tells whether a
//! file in its final place is still the one that was hashed. The bytes of pieces are read
//! and written by the store's upload and download sides, with positioned I/O on a shared
//! `File`; nothing here runs under the store's lock.

use crate::chunk::{Bitset, FileMeta, Geometry};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What a file in its final place looked like when it was hashed or moved in: a write, a
/// truncation or a replacement changes one of these, and then its hashes no longer hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    len: u64,
    mtime: (i64, i64),
    inode: (u64, u64),
}

impl Stamp {
    pub fn of(path: &Path) -> io::Result<Stamp> {
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

    /// Whether the file at `path` still looks as it did.
    pub fn holds_for(self, path: &Path) -> bool {
        Stamp::of(path).is_ok_and(|now| now == self)
    }
}

/// A file found in `Shared/`, opened but not read.
pub struct Found {
    pub name: String,
    pub path: PathBuf,
    pub file: File,
    pub geometry: Geometry,
    pub stamp: Stamp,
}

/// The files to offer in `shared`: regular, visible, with valid names and sizes. Others
/// are skipped with a line on stderr.
pub fn scan_shared(shared: &Path) -> io::Result<Vec<Found>> {
    let mut found = Vec::new();
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
        found.push(Found {
            name,
            path: entry.path(),
            file,
            geometry,
            stamp,
        });
    }
    Ok(found)
}

/// Creates `dir` if need be and removes the files left in it by an earlier run.
pub fn clear_partial_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

/// Opens the partial file of a download at `path`, sized to the whole file. With `resume`,
/// what it already holds is kept, and the pieces that match their hashes are returned as
/// verified; otherwise it starts empty.
pub fn open_partial(path: &Path, meta: &FileMeta, resume: bool) -> io::Result<(File, Bitset)> {
    let size = meta.geometry.size();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(!resume)
        .open(path)?;
    let have = if resume && file.metadata()?.len() == size {
        crate::hashing::verified_pieces(&file, meta)
    } else {
        Bitset::new(meta.geometry.num_pieces() as usize)
    };
    file.set_len(size)?;
    Ok((file, have))
}

/// Moves a complete download from `path` to `dest`; returns how it looks there.
pub fn move_into_place(path: &Path, dest: &Path) -> io::Result<Stamp> {
    fs::rename(path, dest)?;
    Stamp::of(dest)
}
