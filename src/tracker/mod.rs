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
/// written and closed before the first accept), then serve until killed.
pub fn run_grading() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let port = listener.local_addr()?.port();
    // Written whole, before the first accept: whoever reads it can connect at once.
    crate::atomic_file::write(Path::new("port.txt"), format!("{port}\n"))?;
    // stderr only: stdout is the grading contract's.
    let written = std::env::current_dir().map_or_else(
        |_| "./port.txt".into(),
        |d| d.join("port.txt").display().to_string(),
    );
    eprintln!(
        "tracker: listening on port {port} (0.0.0.0); wrote it to {written}, which stays there \
         after the tracker ends"
    );
    serve(listener, Arc::new(Swarm::new(BlockSink::Printer)))
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
