//! Hashing files into piece hashes. A swarm peer joins before it has read its own files:
//! a thread of this room then hashes them, smallest first, handing the hashes to the
//! [`Store`] in batches as it goes, so that each piece can be served (and the tracker told)
//! as soon as its hash is known. The interactive client hashes a file whole before it writes
//! its `.mtorrent`.

use super::store::Store;
use crate::chunk::{FileMeta, Geometry, Sha1Hash, sha1};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

/// How long hashes gather before they are handed over together.
const BATCH_EVERY: Duration = Duration::from_millis(50);

/// Hashes every one of our own files that is not hashed yet, on a thread of its own.
pub fn spawn(store: Arc<Store>) {
    let spawned = thread::Builder::new()
        .name("hasher".into())
        .spawn(move || hash_seeds(&store));
    if let Err(e) = spawned {
        eprintln!("peer: cannot start hashing: {e}");
    }
}

fn hash_seeds(store: &Store) {
    for (name, file, geometry) in store.unhashed_seeds() {
        let hashed = hash_pieces(&file, geometry, |batch| store.add_own_hashes(&name, batch));
        match hashed {
            Err(e) => store.give_up(&name, &format!("cannot read it: {e}")),
            Ok(()) if !store.still_intact(&name) => {
                store.give_up(&name, &"it changed in Shared/ while it was being hashed");
            }
            Ok(()) => {}
        }
    }
}

/// Reads `file` front to back in the pieces of `geometry`, handing their hashes to `take`
/// in order, a batch every [`BATCH_EVERY`] and one at the end; stops early when `take`
/// returns false.
fn hash_pieces(
    file: &File,
    geometry: Geometry,
    mut take: impl FnMut(Vec<Sha1Hash>) -> bool,
) -> io::Result<()> {
    let mut buf = vec![0; geometry.piece_size() as usize];
    let mut batch = Vec::new();
    let mut since = Instant::now();
    let n = geometry.num_pieces();
    for p in 0..n {
        let (offset, len) = geometry.piece_span(p).unwrap_or((0, 0));
        file.read_exact_at(&mut buf[..len], offset)?;
        batch.push(sha1(&buf[..len]));
        if p + 1 == n || since.elapsed() >= BATCH_EVERY {
            if !take(std::mem::take(&mut batch)) {
                return Ok(());
            }
            since = Instant::now();
        }
    }
    Ok(())
}

/// Hashes the whole of `file` in pieces of `piece_size` bytes. `None` if it is too large.
pub fn hash_file(name: &str, file: &File, piece_size: u64) -> io::Result<Option<FileMeta>> {
    let size = file.metadata()?.len();
    let Some(geometry) = Geometry::with_piece_size(size, piece_size) else {
        return Ok(None);
    };
    let mut piece_hashes = Vec::with_capacity(geometry.num_pieces() as usize);
    hash_pieces(file, geometry, |batch| {
        piece_hashes.extend(batch);
        true
    })?;
    Ok(Some(FileMeta {
        name: name.to_string(),
        geometry,
        piece_hashes,
    }))
}
