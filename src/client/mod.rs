//! The interactive client: a shell on stdin driving a peer that shares `.mtorrent` files
//! through a pair of trackers. The shell only reads commands and prints answers; the
//! [`engine`] thread owns the tracker connection, the records and the background work, so no
//! lock is ever held across tracker I/O.

mod engine;
mod shell;
mod state;

use crate::error::Error;
use crate::peer::{problems, store::Store, upload};
use std::fs::{OpenOptions, Permissions};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

/// Runs the client until `quit` or the end of stdin; fails (exit status 1) when commands came
/// from a script and one of them failed.
pub fn run(me: SocketAddr, trackers: Vec<SocketAddr>, log: Option<PathBuf>) -> Result<(), Error> {
    let listener =
        TcpListener::bind(me).map_err(|e| Error::failed(format!("cannot listen on {me}"), e))?;
    // Problems with one remote (refused, reset) and files given up go to the log, never to
    // the prompt: the engine says what they change for the user in lines of its own.
    let remote_log = match &log {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(p)
                .map_err(|e| Error::failed(p.display(), e))?,
        ),
        None => None,
    };
    problems::report_to(remote_log);
    let store = Arc::new(Store::empty());
    upload::spawn(listener, store.clone())?;
    let state_dir = PathBuf::from(format!(".p2p-client-{}", me.port()));
    // Its own only: it keeps the piece hashes of group files (see the README).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&state_dir)
        .and_then(|()| std::fs::set_permissions(&state_dir, Permissions::from_mode(0o700)))
        .map_err(|e| Error::failed(state_dir.display(), e))?;
    let engine = engine::start(me, trackers, store, state_dir, log)?;
    if shell::run(&engine) {
        return Err(Error::Failed(
            "client: a command from the script failed (see its error line); exit status 1".into(),
        ));
    }
    Ok(())
}
