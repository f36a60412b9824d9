//! The upload server: answers `GET` for every chunk run whose pieces are verified here,
//! one thread per connection, reading with positioned I/O outside any lock.

use super::store::Store;
use crate::protocol::{Request, Role, VERSION};
use crate::wire::{self, LineError};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// A downloader silent this long is closed (workers idle at most a few seconds).
const IDLE: Duration = Duration::from_secs(30);

pub fn spawn(listener: TcpListener, store: Arc<Store>) -> io::Result<()> {
    thread::Builder::new()
        .name("upload-accept".into())
        .spawn(move || {
            loop {
                let stream = match listener.accept() {
                    Ok((s, _)) => s,
                    Err(e) => {
                        eprintln!("peer: accept failed: {e}");
                        thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                };
                let store = store.clone();
                let _ = thread::Builder::new()
                    .name("upload".into())
                    .spawn(move || serve(stream, &store));
            }
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
    loop {
        let reply = match wire::read_line(&mut reader, &mut line) {
            Ok(text) => match Request::parse(text) {
                Ok(Request::Hello { role: Role::Peer }) if !greeted => {
                    greeted = true;
                    format!("OK {VERSION} peer")
                }
                Ok(_) if !greeted => {
                    let _ = wire::write_line(&mut writer, "ERR hello_first")
                        .and_then(|()| writer.flush());
                    return;
                }
                Ok(Request::Get { name, first, count }) => {
                    match store.source(&name, first, count) {
                        Ok((file, offset, len)) => {
                            data.resize(len, 0);
                            match file.read_exact_at(&mut data, offset) {
                                Ok(()) => {
                                    let sent = wire::write_line(&mut writer, &format!("OK {len}"))
                                        .and_then(|()| writer.write_all(&data));
                                    if sent.is_err() {
                                        return;
                                    }
                                    String::new()
                                }
                                Err(_) => "ERR read_failed".to_string(),
                            }
                        }
                        Err(reason) => format!("ERR {reason}"),
                    }
                }
                Ok(Request::Ping) => "OK".to_string(),
                Ok(other) => format!(
                    "ERR not_a_peer_request {}",
                    other.to_string().split(' ').next().unwrap_or("")
                ),
                Err(e) => format!("ERR {e}"),
            },
            Err(LineError::NotUtf8) => "ERR not_utf8".to_string(),
            Err(LineError::TooLong) => {
                let _ = wire::write_line(&mut writer, "ERR line_too_long")
                    .and_then(|()| writer.flush());
                return;
            }
            Err(_) => return,
        };
        if !reply.is_empty() && wire::write_line(&mut writer, &reply).is_err() {
            return;
        }
        if reader.buffer().is_empty() && writer.flush().is_err() {
            return;
        }
    }
}
