//! The upload server: answers `GET` for every chunk run whose pieces are verified here,
//! one thread per connection, reading with positioned I/O outside any lock.

use super::store::Store;
use crate::protocol::{Request, Role, VERSION};
use crate::server::{self, Connection, LineHandler, Next, Refusal};
use std::io;
use std::net::TcpListener;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A downloader silent this long is closed (workers idle at most a few seconds).
const IDLE: Duration = Duration::from_secs(30);
/// A request line must arrive in full within this time.
const LINE_DEADLINE: Duration = Duration::from_secs(60);
/// At most this many downloaders are served at once.
const MAX_CONNECTIONS: usize = 512;

pub fn spawn(listener: TcpListener, store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new()
        .name("upload-accept".into())
        .spawn(move || {
            crate::server::accept_loop(listener, "upload", MAX_CONNECTIONS, move |stream, _| {
                let mut chunks = ChunkServer {
                    store: &store,
                    data: Vec::new(),
                };
                server::serve_lines(stream, &mut chunks);
            })
        })?;
    Ok(())
}

/// One downloader's connection: `GET` answered from the store, through one reused buffer.
struct ChunkServer<'a> {
    store: &'a Store,
    data: Vec<u8>,
}

impl LineHandler for ChunkServer<'_> {
    const READ_TIMEOUT: Duration = IDLE;
    const WRITE_TIMEOUT: Option<Duration> = Some(IDLE);
    // A full piece (64 KiB) is at least the buffer's size, so BufWriter sends it straight from
    // `data` after the header instead of copying it first.
    const WRITE_BUFFER: usize = crate::chunk::PIECE_SIZE as usize;

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
                match self.store.read_chunks(&name, first, count, &mut self.data) {
                    Ok(()) => conn.reply_with(&format!("OK {}", self.data.len()), &self.data),
                    Err(reason) => conn.reply(&format!("ERR {reason}")),
                }
            }
            Request::Ping => conn.reply("OK"),
            other => conn.reply(&format!("ERR not_a_peer_request {}", other.verb())),
        };
        replied.map(|()| Next::Continue).map_err(|e| e.to_string())
    }
}
