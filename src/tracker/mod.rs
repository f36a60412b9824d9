//! The tracker: the grading tracker accepts connections, one thread each, over one shared
//! [`Swarm`] table; the tracker pair for the interactive client lives in [`pair`].

mod pair;
mod serve_swarm;
pub mod swarm;

use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use crate::output::BlockSink;
use crate::server::{self, WhenFull};
pub use swarm::Swarm;

/// Grading mode: bind 0.0.0.0 on a port the OS picks, publish it in `port.txt` (fully
/// written and closed before the first accept), then serve until a signal ends it (see
/// [`crate::signals`]): Ctrl-C, `kill` or a closed terminal remove `port.txt` if it still
/// holds this port; `kill -9` leaves it.
pub fn run_grading() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let port = listener.local_addr()?.port();
    let contents = format!("{port}\n");
    // Caught before port.txt exists: a signal sent as soon as it appears must remove it.
    let mine = contents.clone();
    let removed =
        match crate::signals::end_on_signal("tracker", move || Some(remove_if_mine(&mine))) {
            Ok(()) => "removed when Ctrl-C, kill or a closed terminal ends the tracker",
            Err(e) => {
                eprintln!("tracker: cannot catch Ctrl-C or kill ({e})");
                "which stays there after the tracker ends"
            }
        };
    // Written whole, before the first accept: whoever reads it can connect at once.
    crate::atomic_file::write(Path::new(PORT_FILE), contents)?;
    // stderr only: stdout is the grading contract's.
    let written = std::env::current_dir().map_or_else(
        |_| format!("./{PORT_FILE}"),
        |d| d.join(PORT_FILE).display().to_string(),
    );
    eprintln!("tracker: listening on port {port} (0.0.0.0); wrote it to {written}, {removed}");
    serve(listener, Arc::new(Swarm::new(BlockSink::Printer)))
}

/// Where the grading tracker publishes its port, in the folder it runs in.
const PORT_FILE: &str = "port.txt";

/// Removes `port.txt` if it still holds `mine`: another tracker started in the same folder
/// since may have replaced it, and its port must stay. Says what was done, for stderr.
fn remove_if_mine(mine: &str) -> String {
    match std::fs::read_to_string(PORT_FILE) {
        Ok(found) if found == mine => match std::fs::remove_file(PORT_FILE) {
            Ok(()) => format!("removed {PORT_FILE}"),
            Err(e) => format!("could not remove {PORT_FILE}: {e}"),
        },
        Ok(_) => format!("left {PORT_FILE}: it holds another tracker's port"),
        Err(e) if e.kind() == io::ErrorKind::NotFound => format!("{PORT_FILE} was gone"),
        Err(e) => format!("left {PORT_FILE}: cannot read it: {e}"),
    }
}

/// A tracker of a pair serving interactive clients (see [`pair`]).
pub fn run_pair(
    me: std::net::SocketAddr,
    twin: std::net::SocketAddr,
    state: &Path,
    log: &Path,
) -> io::Result<()> {
    pair::run(me, twin, state.to_path_buf(), log.to_path_buf())
}

/// At most this many connections are served at once; more get `ERR busy` and are closed
/// (none is evicted: a peer's request connection may rightly be idle while it downloads).
pub const MAX_CONNECTIONS: usize = 2048;

/// Serves `listener` forever, one thread per connection.
pub fn serve(listener: TcpListener, swarm: Arc<Swarm>) -> io::Result<()> {
    let full = WhenFull::Refuse;
    server::accept_loop_with(
        listener,
        "tracker",
        MAX_CONNECTIONS,
        full,
        move |stream, from| serve_swarm::handle(stream, from, &swarm),
    )
}
