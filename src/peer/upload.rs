//! The upload server: answers `GET` for every chunk run whose pieces are verified here,
//! one thread per connection, reading with positioned I/O outside any lock.

use super::store::Store;
use crate::protocol::{Request, Role, VERSION};
use crate::wire::{self, LineError};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

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
                serve(stream, &store)
            })
        })?;
    Ok(())
}

fn serve(stream: TcpStream, store: &Store) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE));
    let _ = stream.set_write_timeout(Some(IDLE));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    // A full piece (64 KiB) is at least the buffer's size, so BufWriter sends it straight from
    // `data` after the header instead of copying it first.
    let mut writer = BufWriter::with_capacity(crate::chunk::PIECE_SIZE as usize, stream);
    let mut line = Vec::new();
    let mut data = Vec::new();
    let mut greeted = false;
    let last = loop {
        let deadline = Some(Instant::now() + LINE_DEADLINE);
        let reply = match wire::read_line_by(&mut reader, &mut line, deadline) {
            Ok(text) => match Request::parse(text) {
                Ok(Request::Hello { role: Role::Peer }) if !greeted => {
                    greeted = true;
                    format!("OK {VERSION} peer")
                }
                Ok(_) if !greeted => break "ERR hello_first".to_string(),
                Ok(Request::Get { name, first, count }) => {
                    match store.read_chunks(&name, first, count, &mut data) {
                        Ok(()) => {
                            let head = format!("OK {}", data.len());
                            if wire::write_line(&mut writer, &head)
                                .and_then(|()| writer.write_all(&data))
                                .is_err()
                            {
                                return;
                            }
                            String::new()
                        }
                        Err(reason) => format!("ERR {reason}"),
                    }
                }
                Ok(Request::Ping) => "OK".to_string(),
                Ok(other) => {
                    let command = other.to_string();
                    let command = command.split(' ').next().unwrap_or_default().to_string();
                    format!("ERR not_a_peer_request {command}")
                }
                Err(e) => format!("ERR {e}"),
            },
            Err(LineError::NotUtf8) => "ERR not_utf8".to_string(),
            Err(LineError::TooLong) => break format!("ERR line_too_long max {}", wire::MAX_LINE),
            Err(LineError::TooSlow) => break "ERR too_slow".to_string(),
            Err(LineError::Eof | LineError::Io(_)) => return,
        };
        if !reply.is_empty() && wire::write_line(&mut writer, &reply).is_err() {
            return;
        }
        if wire::flush_if_idle(&reader, &mut writer).is_err() {
            return;
        }
    };
    // The stream cannot be trusted any more: a last ERR, then close without a reset.
    wire::close_with(&mut writer, &last);
}
