//! The upload server: answers `GET` for every chunk run whose pieces are verified here,
//! one thread per connection, outside any lock. The bytes go from the file to the socket
//! without passing through user space (`sendfile`, at an explicit offset). A connection
//! silent from the start is closed after 3 s, and at the cap the idlest makes room for a
//! newcomer, so that idle sockets cannot keep a downloader out.

use super::store::{ChunkRun, Store};
use crate::protocol::{Request, Role, VERSION};
use crate::server::{self, Connection, LineHandler, Next, Refusal, WhenFull};
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A downloader silent this long is closed (workers idle at most a few seconds).
const IDLE: Duration = Duration::from_secs(30);
/// A request line must arrive in full within this time.
const LINE_DEADLINE: Duration = Duration::from_secs(60);
/// At most this many downloaders are served at once; the idlest is closed for a newcomer.
const MAX_CONNECTIONS: usize = 512;

pub fn spawn(listener: TcpListener, store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new()
        .name("upload-accept".into())
        .spawn(move || {
            let full = WhenFull::EvictIdlest;
            server::accept_loop_with(
                listener,
                "upload",
                MAX_CONNECTIONS,
                full,
                move |stream, _| {
                    let mut chunks = ChunkServer { store: &store };
                    server::serve_lines(stream, &mut chunks);
                },
            )
        })?;
    Ok(())
}

/// Whether a failed send was the connection's doing (gone, or too slow to take the bytes)
/// rather than the file's.
fn is_socket_error(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    matches!(
        e.kind(),
        WouldBlock | TimedOut | BrokenPipe | ConnectionReset | ConnectionAborted | NotConnected
    )
}

/// One downloader's connection: `GET` answered from the store, straight from the file.
struct ChunkServer<'a> {
    store: &'a Store,
}

impl ChunkServer<'_> {
    /// Sends a cleared chunk run after its `OK` line. A run whose file turns out cut short or
    /// unreadable is not served again, and the connection ends (its `OK` already went out).
    fn send(&self, conn: &mut Connection, name: &str, run: &ChunkRun) -> io::Result<()> {
        let header = format!("OK {}", run.len);
        let sent = conn
            .reply_from_file(&header, &run.file, run.offset, run.len)
            .inspect_err(|e| {
                // Not the socket's fault: the file could not be read. Not served again.
                if !is_socket_error(e) {
                    self.store.cut_short(name);
                }
            })?;
        if sent < run.len {
            self.store.cut_short(name);
            return Err(io::Error::other(
                "the file ended early while it was being sent",
            ));
        }
        Ok(())
    }
}

impl LineHandler for ChunkServer<'_> {
    const READ_TIMEOUT: Duration = IDLE;
    const WRITE_TIMEOUT: Option<Duration> = Some(IDLE);

    fn greet(&mut self, role: Role) -> Result<String, Refusal> {
        match role {
            Role::Peer => Ok(format!("OK {VERSION} peer")),
            _ => Err(Refusal {
                reply: "ERR hello_first".into(),
                why: "no HELLO from a peer".into(),
            }),
        }
    }

    fn line_deadline(&self) -> Duration {
        LINE_DEADLINE
    }

    fn serve(&mut self, request: Request, conn: &mut Connection) -> Result<Next, String> {
        let replied = match request {
            Request::Get { name, first, count } => {
                match self.store.chunk_run(&name, first, count) {
                    Ok(run) => self.send(conn, &name, &run),
                    Err(reason) => conn.reply(&format!("ERR {reason}")),
                }
            }
            Request::Ping => conn.reply("OK"),
            other => conn.reply(&format!("ERR not_a_peer_request {}", other.verb())),
        };
        replied.map(|()| Next::Continue).map_err(|e| e.to_string())
    }
}
