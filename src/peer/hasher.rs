//! The swarm peer's hashing thread. A swarm peer joins before it has read its own files:
//! this thread then hashes them (with [`crate::hashing`]), smallest first, handing the
//! hashes to the [`Store`] in batches as it goes, so that each piece can be served (and the
//! tracker told) as soon as its hash is known.

use super::store::Store;
use crate::hashing::hash_pieces;
use std::sync::Arc;
use std::thread;

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
