//! The tracker: accepts connections, one thread each, over one shared [`Swarm`] table.

mod conn;
pub mod swarm;

use std::fs;
use std::io;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::thread;

pub use swarm::Swarm;

/// Grading mode: bind 0.0.0.0 on a port the OS picks, publish it in `port.txt` (fully
/// written and closed before the first accept), then serve until killed.
pub fn run_grading() -> io::Result<()> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, 0))?;
    let port = listener.local_addr()?.port();
    publish_port(Path::new("port.txt"), port)?;
    serve(listener, Arc::new(Swarm::default()))
}

/// Writes `port` and a newline to `path` through a rename, so a reader never sees it half
/// written.
fn publish_port(path: &Path, port: u16) -> io::Result<()> {
    let tmp = path.with_extension("txt.tmp");
    fs::write(&tmp, format!("{port}\n"))?;
    fs::rename(&tmp, path).inspect_err(|_| {
        let _ = fs::remove_file(&tmp);
    })
}

/// Serves `listener` forever, one named thread per connection.
pub fn serve(listener: TcpListener, swarm: Arc<Swarm>) -> io::Result<()> {
    loop {
        let (stream, from) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait a moment
                // rather than spin, and keep serving.
                eprintln!("tracker: accept failed: {e}");
                thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        let swarm = swarm.clone();
        let spawned = thread::Builder::new()
            .name(format!("tracker-conn-{from}"))
            .spawn(move || conn::handle(stream, from, &swarm));
        if let Err(e) = spawned {
            eprintln!("tracker: cannot start a thread for {from}: {e}");
        }
    }
}
