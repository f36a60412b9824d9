//! The pair tracker's state file: read once at start, then rewritten whole after changes,
//! so that a restarted tracker knows its seeders even when its twin is away.

use super::log::Log;
use crate::protocol::Request;
use crate::tracker::catalog::Catalog;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// The seeder entries kept in the state file at `path`.
pub fn load_state(path: &Path) -> io::Result<Vec<Request>> {
    let text = fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| Request::parse(l).ok())
        .filter(|r| matches!(r, Request::Seed { .. }))
        .collect())
}

/// Writes the state file whenever the catalog changed, at most every 50 ms, whole (see
/// [`crate::atomic_file`]).
pub fn spawn_persister(catalog: Arc<Catalog>, path: PathBuf, log: Log) -> io::Result<()> {
    thread::Builder::new()
        .name("tracker-persist".into())
        .spawn(move || {
            let mut saved = u64::MAX;
            loop {
                let version = catalog.wait_change(saved, Duration::from_secs(1));
                if version == saved {
                    continue;
                }
                let (version, seeds) = catalog.snapshot();
                let text: String = seeds.iter().map(|r| format!("{r}\n")).collect();
                match crate::atomic_file::write(&path, text) {
                    Ok(()) => saved = version,
                    Err(e) => log.say(format!("cannot write {}: {e}", path.display())),
                }
                thread::sleep(Duration::from_millis(50));
            }
        })?;
    Ok(())
}
