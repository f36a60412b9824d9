//! What every listening side shares, so that the tracker, the tracker pair and the peer's
//! chunk server speak the line protocol the same way: an accept loop that caps open
//! connections, runs each connection on its own named, small-stack thread, and backs off
//! rather than spins when `accept` fails (out of file descriptors, say); and one serve loop
//! per connection, with the role's answers plugged in as a [`LineHandler`].
//!
//! The serve loop reads one bounded line by a deadline and parses it as a [`Request`]. A bad
//! line gets `ERR <reason>` and the connection stays open while the stream is still in sync;
//! a line too long or too slow, a refused or missing `HELLO`, gets a last `ERR` and a
//! graceful close. Replies to pipelined requests are flushed once no further request is
//! waiting, so they leave in one write.

use crate::protocol::{Request, Role};
use crate::wire::{self, LineError};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// Connection threads keep their buffers on the heap: a small stack lets thousands coexist.
const CONN_STACK: usize = 256 * 1024;
/// How long to wait after a failed `accept` before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The reply buffer of a role that does not say otherwise (std's default).
const DEFAULT_WRITE_BUFFER: usize = 8 * 1024;

/// Counts one open connection; the count drops with the guard, whatever ends the thread.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Accepts connections forever, handing each to `handle` on a thread named `role-<addr>`.
/// Beyond `max` open connections a newcomer gets `ERR busy` and is closed.
pub fn accept_loop<F>(listener: TcpListener, role: &str, max: usize, handle: F) -> !
where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    let handle = Arc::new(handle);
    let open = Arc::new(AtomicUsize::new(0));
    loop {
        let (stream, from) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("{role}: accept failed: {e}");
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        if open.fetch_add(1, Ordering::Relaxed) >= max {
            open.fetch_sub(1, Ordering::Relaxed);
            let _ = (&stream).write_all(b"ERR busy\n");
            continue;
        }
        let slot = Slot(open.clone());
        let handle = handle.clone();
        let spawned = thread::Builder::new()
            .name(format!("{role}-{from}"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                let _slot = slot;
                handle(stream, from);
            });
        if let Err(e) = spawned {
            eprintln!("{role}: cannot start a thread for {from}: {e}");
        }
    }
}

/// What a role answers on a connection the serve loop runs (see [`serve_lines`]).
pub trait LineHandler {
    /// How long a read may block before [`LineHandler::on_silence`] is asked what to do.
    const READ_TIMEOUT: Duration;
    /// How long a write may block, if bounded.
    const WRITE_TIMEOUT: Option<Duration> = None;
    /// The reply buffer's size.
    const WRITE_BUFFER: usize = DEFAULT_WRITE_BUFFER;
    /// Whether a connection that breaks (I/O error, silence, failed reply) is closed
    /// gracefully too, not only one refused with a last `ERR`.
    const CLOSE_GRACEFULLY_WHEN_BROKEN: bool = false;

    /// Answers the first `HELLO`: the reply line, or a [`Refusal`] that ends the connection.
    fn greet(&mut self, role: Role) -> Result<String, Refusal>;

    /// The time the next request line has to arrive in full, from now.
    fn line_deadline(&self) -> Duration;

    /// The read timed out, between requests or (`mid_line`) inside one: keep waiting, or
    /// end the connection (as broken, saying why).
    fn on_silence(&mut self, conn: &Connection, mid_line: bool) -> Silence {
        let _ = (conn, mid_line);
        Silence::End(format!("silent for {} s", Self::READ_TIMEOUT.as_secs()))
    }

    /// Serves one request after `HELLO`, replying through `conn`. An error ends the
    /// connection as broken, saying why.
    fn serve(&mut self, request: Request, conn: &mut Connection) -> Result<Next, String>;
}

/// A `HELLO` the role does not serve: the last reply, and why (for a log line).
pub struct Refusal {
    pub reply: String,
    pub why: String,
}

/// What to do about a read that timed out.
pub enum Silence {
    KeepWaiting,
    End(String),
}

/// What follows a served request.
pub enum Next {
    /// Read the next request.
    Continue,
    /// The conversation is over (a peer's `OK BYE`): close the connection.
    Finish,
}

/// How a connection ended.
pub enum End {
    /// The other side closed it between requests.
    Closed,
    /// The handler finished it ([`Next::Finish`]).
    Finished,
    /// A last `ERR` was sent (a line too long or too slow, no or a refused `HELLO`).
    Refused(String),
    /// Reading or replying failed, the other side fell silent, or the handler gave up.
    Broken(String),
}

/// One connection's two halves: replies go out through a buffer that is flushed once no
/// further request is waiting; a request's raw payload is read from behind its line.
pub struct Connection {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

impl Connection {
    /// Queues a reply line.
    pub fn reply(&mut self, line: &str) -> io::Result<()> {
        self.reply_with(line, &[])
    }

    /// Queues a reply line followed by a raw payload.
    pub fn reply_with(&mut self, line: &str, payload: &[u8]) -> io::Result<()> {
        wire::write_line(&mut self.writer, line)?;
        self.writer.write_all(payload)?;
        wire::flush_if_idle(&self.reader, &mut self.writer)
    }

    /// Sends a reply line, then up to `len` bytes of `file` from `offset`: the line is
    /// flushed first, and the bytes go from the file to the socket inside the kernel (see
    /// [`crate::sendfile`]). Returns how many bytes went out; fewer than `len` means the
    /// file was cut short.
    pub fn reply_from_file(
        &mut self,
        line: &str,
        file: &File,
        offset: u64,
        len: u64,
    ) -> io::Result<u64> {
        wire::write_line(&mut self.writer, line)?;
        self.writer.flush()?;
        crate::sendfile::send_file(self.writer.get_ref(), file, offset, len)
    }

    /// Reads exactly `len` raw bytes that follow the request line.
    pub fn read_payload(&mut self, len: usize) -> io::Result<Vec<u8>> {
        wire::read_payload(&mut self.reader, len)
    }

    /// Changes how long a read may block from now on.
    pub fn set_read_timeout(&self, timeout: Duration) {
        let _ = self.reader.get_ref().set_read_timeout(Some(timeout));
    }

    fn run<H: LineHandler>(&mut self, handler: &mut H) -> End {
        let mut line = Vec::new();
        let mut greeted = false;
        loop {
            let deadline = Some(Instant::now() + handler.line_deadline());
            let request = match wire::read_line_by(&mut self.reader, &mut line, deadline) {
                Ok(text) => Request::parse(text).map_err(|e| e.to_string()),
                Err(LineError::NotUtf8) => Err("not_utf8".to_string()),
                Err(LineError::TooLong) => {
                    let last = format!("ERR line_too_long max {}", wire::MAX_LINE);
                    return self.refuse(&last, "line too long");
                }
                Err(LineError::TooSlow) => {
                    return self.refuse("ERR too_slow", "line not finished in time");
                }
                Err(LineError::Eof) => return End::Closed,
                Err(LineError::Io(e)) if is_timeout(&e) => {
                    match handler.on_silence(self, !line.is_empty()) {
                        Silence::KeepWaiting => continue,
                        Silence::End(why) => return End::Broken(why),
                    }
                }
                Err(LineError::Io(e)) => return End::Broken(e.to_string()),
            };
            let served = match request {
                Err(reason) => self
                    .reply(&format!("ERR {reason}"))
                    .map(|()| Next::Continue),
                Ok(Request::Hello { role }) if !greeted => match handler.greet(role) {
                    Ok(answer) => {
                        greeted = true;
                        self.reply(&answer).map(|()| Next::Continue)
                    }
                    Err(refusal) => return self.refuse(&refusal.reply, &refusal.why),
                },
                Ok(_) if !greeted => return self.refuse("ERR hello_first", "no HELLO"),
                Ok(request) => match handler.serve(request, self) {
                    Ok(next) => Ok(next),
                    Err(why) => return End::Broken(why),
                },
            };
            match served {
                Ok(Next::Continue) => {}
                Ok(Next::Finish) => return End::Finished,
                Err(e) => return End::Broken(e.to_string()),
            }
        }
    }

    /// Queues a last reply; the connection is then closed gracefully.
    fn refuse(&mut self, last: &str, why: &str) -> End {
        let _ = wire::write_line(&mut self.writer, last);
        End::Refused(why.to_string())
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Serves one connection with `handler` until it ends, flushes what is queued, closes it
/// gracefully after a last `ERR` (and when broken, if the role says so), and says how it
/// ended.
pub fn serve_lines<H: LineHandler>(stream: TcpStream, handler: &mut H) -> End {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(H::READ_TIMEOUT));
    if let Some(timeout) = H::WRITE_TIMEOUT {
        let _ = stream.set_write_timeout(Some(timeout));
    }
    let Ok(read_half) = stream.try_clone() else {
        return End::Closed;
    };
    let mut conn = Connection {
        reader: BufReader::new(read_half),
        writer: BufWriter::with_capacity(H::WRITE_BUFFER, stream),
    };
    let end = conn.run(handler);
    let _ = conn.writer.flush();
    let graceful = match end {
        End::Refused(_) => true,
        End::Broken(_) => H::CLOSE_GRACEFULLY_WHEN_BROKEN,
        End::Closed | End::Finished => false,
    };
    if graceful {
        // The stream cannot be trusted any more: close without a reset.
        wire::close_gracefully(conn.writer.get_ref());
    }
    end
}
