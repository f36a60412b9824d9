//! A tracker in a pair, for the interactive client: serves the [`Catalog`], keeps it in
//! `STATE_FILE` (written whole, atomically, after changes), logs to `LOG_FILE`, and keeps its
//! twin in sync: at start it pulls the twin's whole state; afterwards it forwards every change
//! it applies for a client, and applies the changes its twin forwards (without forwarding
//! them back). This room starts it all; each concern has its own file below.

mod log;
mod persist;
mod serve;
mod twin_sync;

use super::catalog::Catalog;
use log::Log;
use serve::PairConn;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

const MAX_CONNECTIONS: usize = 1024;

/// Runs a tracker of a pair until killed.
pub fn run(
    me: SocketAddr,
    twin: SocketAddr,
    state_file: PathBuf,
    log_file: PathBuf,
) -> io::Result<()> {
    let log = Log::open(&log_file)?;
    let catalog = Arc::new(Catalog::default());
    match persist::load_state(&state_file) {
        Ok(seeds) => {
            log.say(format!(
                "loaded {} seeder entries from {}",
                seeds.len(),
                state_file.display()
            ));
            catalog.replace(&seeds);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", state_file.display()),
            ));
        }
    }
    let listener = TcpListener::bind(me)?;
    match twin_sync::pull_state(twin) {
        Ok(seeds) => {
            log.say(format!(
                "caught up from {twin}: {} seeder entries",
                seeds.len()
            ));
            catalog.replace(&seeds);
        }
        Err(e) => log.say(format!(
            "twin {twin} not reachable at start ({e}); using the state file"
        )),
    }
    persist::spawn_persister(catalog.clone(), state_file, log.clone())?;
    let forward = twin_sync::spawn_forwarder(twin, catalog.clone(), log.clone())?;
    log.say(format!("serving on {me}, twin {twin}"));
    crate::server::accept_loop(listener, "tracker", MAX_CONNECTIONS, move |stream, from| {
        crate::server::serve_lines(stream, &mut PairConn::new(from, &catalog, &forward, &log));
    })
}
