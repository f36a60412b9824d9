//! What every listening side shares, so that the tracker, the tracker pair and the peer's
//! chunk server speak the line protocol the same way: an accept loop that caps open
//! connections, runs each connection on its own named, small-stack thread, and backs off
//! rather than spins when `accept` fails (out of file descriptors, say); and one serve loop
//! per connection, with the role's answers plugged in as a [`LineHandler`].
//!
//! Idle sockets must not keep honest newcomers out. A connection has
//! [`LineHandler::FIRST_LINE_DEADLINE`] (3 s) from its accept to finish its first line; and
//! at the cap the role chooses ([`WhenFull`]) between refusing the newcomer with `ERR busy`
//! and closing the idlest connection to make room for it. The process's soft limit on open
//! files is raised to its hard limit when serving starts, so that the cap, not the limit,
//! is what a flood meets.
//!
//! The serve loop reads one bounded line by a deadline and parses it as a [`Request`]. A bad
//! line gets `ERR <reason>` and the connection stays open while the stream is still in sync;
//! a line too long or too slow, a refused or missing `HELLO`, gets a last `ERR` and a
//! graceful close. Replies to pipelined requests are flushed once no further request is
//! waiting, so they leave in one write.

use crate::protocol::{Request, Role};
use crate::wire::{self, LineError, is_timeout};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// Connection threads keep their buffers on the heap: a small stack lets thousands coexist.
const CONN_STACK: usize = 256 * 1024;
/// How long to wait after a failed `accept` before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// The reply buffer of a role that does not say otherwise (std's default).
const DEFAULT_WRITE_BUFFER: usize = 8 * 1024;

/// What the accept loop does with a newcomer when `max` connections are open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenFull {
    /// Answer `ERR busy` and close it. For the grading tracker, where a peer's request
    /// connection may rightly stay idle for long while its heartbeats come.
    Refuse,
    /// Shut down the connection idle longest, so that the newcomer is served: first the one
    /// accepted longest ago of those that never finished a line, else the one whose last
    /// line is oldest. While evicted connections are still ending, up to `max` more may be
    /// open; beyond that, newcomers are refused.
    EvictIdlest,
}

/// Accepts connections forever, handing each to `handle` on a thread named `role-<addr>`;
/// with `max` connections open, the idlest is closed for a newcomer
/// ([`WhenFull::EvictIdlest`]).
pub fn accept_loop<F>(listener: TcpListener, role: &str, max: usize, handle: F) -> !
where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    accept_loop_with(listener, role, max, WhenFull::EvictIdlest, handle)
}

/// Like [`accept_loop`], with the role's choice of what happens beyond `max`.
pub fn accept_loop_with<F>(
    listener: TcpListener,
    role: &str,
    max: usize,
    when_full: WhenFull,
    handle: F,
) -> !
where
    F: Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
{
    open_files::raise_open_files_limit();
    let handle = Arc::new(handle);
    let registry = Arc::new(Registry::new(max, when_full));
    loop {
        let (stream, from) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) => {
                eprintln!("{role}: accept failed: {e}");
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let slot = match Registry::admit(&registry, &stream) {
            Ok(Some(slot)) => slot,
            Ok(None) => {
                let _ = (&stream).write_all(b"ERR busy\n");
                continue;
            }
            Err(e) => {
                // Out of descriptors, most likely: as when `accept` itself fails.
                eprintln!("{role}: accept failed: cannot keep a handle on {from}: {e}");
                let _ = (&stream).write_all(b"ERR busy\n");
                drop(stream);
                thread::sleep(ACCEPT_BACKOFF);
                continue;
            }
        };
        let handle = handle.clone();
        let spawned = thread::Builder::new()
            .name(format!("{role}-{from}"))
            .stack_size(CONN_STACK)
            .spawn(move || {
                ACTIVITY.with(|a| *a.borrow_mut() = Some(slot.activity.clone()));
                let _slot = slot;
                handle(stream, from);
            });
        if let Err(e) = spawned {
            eprintln!("{role}: cannot start a thread for {from}: {e}");
        }
    }
}

thread_local! {
    /// The activity of the connection this thread serves, stamped by its serve loop.
    static ACTIVITY: RefCell<Option<Arc<Activity>>> = const { RefCell::new(None) };
}

/// When a connection was accepted and last finished a line: written by its own thread,
/// read by the accept loop choosing whom to evict, without a lock.
struct Activity {
    accepted: Instant,
    /// Microseconds from `accepted` to the end of its last line, plus one; 0 before any.
    last_line: AtomicU64,
}

impl Activity {
    fn stamp(&self) {
        let us = u64::try_from(self.accepted.elapsed().as_micros()).unwrap_or(u64::MAX - 1);
        self.last_line.store(us + 1, Ordering::Relaxed);
    }

    /// Orders connections by how idle they are, idlest first: never a line, then the
    /// oldest last line.
    fn idleness(&self) -> (bool, Instant) {
        match self.last_line.load(Ordering::Relaxed) {
            0 => (false, self.accepted),
            us => (true, self.accepted + Duration::from_micros(us - 1)),
        }
    }
}

/// The open connections, so that a full server can choose whom to close.
struct Registry {
    max: usize,
    when_full: WhenFull,
    open: Mutex<Open>,
}

#[derive(Default)]
struct Open {
    next_id: u64,
    /// Every connection whose thread has not ended.
    conns: HashMap<u64, Entry>,
    /// How many of `conns` were shut down to make room and are still ending.
    evicted: usize,
}

struct Entry {
    activity: Arc<Activity>,
    /// A handle on the socket, to shut it down.
    stream: Arc<TcpStream>,
    evicted: bool,
}

/// One open connection's place in the [`Registry`]; given up when its thread ends.
struct Slot {
    id: u64,
    activity: Arc<Activity>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let gone = {
            let mut open = self.registry.lock();
            let gone = open.conns.remove(&self.id);
            if gone.as_ref().is_some_and(|e| e.evicted) {
                open.evicted -= 1;
            }
            gone
        };
        // The registry's handle on the socket is closed outside the lock.
        drop(gone);
    }
}

impl Registry {
    fn new(max: usize, when_full: WhenFull) -> Registry {
        Registry {
            max,
            when_full,
            open: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Open> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A slot for `stream`, making room as the role chose; `None` to refuse it.
    fn admit(registry: &Arc<Registry>, stream: &TcpStream) -> io::Result<Option<Slot>> {
        let handle = Arc::new(stream.try_clone()?);
        let activity = Arc::new(Activity {
            accepted: Instant::now(),
            last_line: AtomicU64::new(0),
        });
        let (id, victim) = {
            let mut open = registry.lock();
            let victim = match open.conns.len() - open.evicted {
                n if n < registry.max => None,
                _ if registry.when_full == WhenFull::Refuse => return Ok(None),
                _ if open.evicted >= registry.max => return Ok(None),
                _ => open.evict_idlest(),
            };
            let id = open.next_id;
            open.next_id += 1;
            let entry = Entry {
                activity: activity.clone(),
                stream: handle,
                evicted: false,
            };
            open.conns.insert(id, entry);
            (id, victim)
        };
        if let Some(victim) = victim {
            // Its thread sees the end of its stream (or a failed write) and frees its slot.
            let _ = victim.shutdown(Shutdown::Both);
        }
        Ok(Some(Slot {
            id,
            activity,
            registry: registry.clone(),
        }))
    }
}

impl Open {
    /// Marks the idlest connection not yet evicted as evicted, and returns its stream.
    fn evict_idlest(&mut self) -> Option<Arc<TcpStream>> {
        let victim = self
            .conns
            .values_mut()
            .filter(|e| !e.evicted)
            .min_by_key(|e| e.activity.idleness())?;
        victim.evicted = true;
        let stream = victim.stream.clone();
        self.evicted += 1;
        Some(stream)
    }
}

/// What a role answers on a connection the serve loop runs (see [`serve_lines`]).
pub trait LineHandler {
    /// How long a read may block before [`LineHandler::on_silence`] is asked what to do.
    const READ_TIMEOUT: Duration;
    /// How long a connection has from its accept to be greeted (its `HELLO` line in full).
    const FIRST_LINE_DEADLINE: Duration = Duration::from_secs(3);
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

    fn run<H: LineHandler>(&mut self, handler: &mut H, accepted: Instant) -> End {
        let mut line = Vec::new();
        let mut greeted = false;
        let activity = ACTIVITY.with(|a| a.borrow().clone());
        loop {
            let read = if greeted {
                let deadline = Some(Instant::now() + handler.line_deadline());
                wire::read_line_by(&mut self.reader, &mut line, deadline)
            } else {
                let deadline = accepted + H::FIRST_LINE_DEADLINE;
                wire::read_line_on_time(&mut self.reader, &mut line, deadline)
            };
            if let (Ok(_) | Err(LineError::NotUtf8), Some(activity)) = (&read, &activity) {
                activity.stamp();
            }
            let request = match read {
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
                // A first line that is no valid `HELLO` is refused like a missing one.
                Err(reason) if !greeted => {
                    return self.refuse(&format!("ERR {reason}"), "no valid HELLO");
                }
                Err(reason) => self
                    .reply(&format!("ERR {reason}"))
                    .map(|()| Next::Continue),
                Ok(Request::Hello { role }) if !greeted => {
                    // From here on, silence is the role's to judge.
                    self.set_read_timeout(H::READ_TIMEOUT);
                    match handler.greet(role) {
                        Ok(answer) => {
                            greeted = true;
                            self.reply(&answer).map(|()| Next::Continue)
                        }
                        Err(refusal) => return self.refuse(&refusal.reply, &refusal.why),
                    }
                }
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

/// Serves one connection with `handler` until it ends, flushes what is queued, closes it
/// gracefully after a last `ERR` (and when broken, if the role says so), and says how it
/// ended.
pub fn serve_lines<H: LineHandler>(stream: TcpStream, handler: &mut H) -> End {
    let accepted = ACTIVITY
        .with(|a| a.borrow().as_ref().map(|a| a.accepted))
        .unwrap_or_else(Instant::now);
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
    let end = conn.run(handler, accepted);
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

mod open_files;
#[cfg(test)]
mod tests;
