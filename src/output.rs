//! The lines the grading contract names, and the one lock around stdout.
//!
//! Each block is formatted whole into a `String` and written with one `write_all` under the
//! stdout lock, so no other line can land inside it. The tracker queues its blocks for a
//! printer thread rather than writing them itself (see [`queue`]), through the [`BlockSink`]
//! it was built with, so that its unit tests capture them instead. Nothing else in p2p writes
//! to stdout in swarm mode; diagnostics go to stderr.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread;

/// `PEER N CONNECT: OFFERS K` and one `N    NAME CHUNKS` line per offered file.
pub fn connect_block(id: u64, files: &[(&str, u64)]) -> String {
    let mut s = format!("PEER {id} CONNECT: OFFERS {}\n", files.len());
    for (name, chunks) in files {
        let _ = writeln!(s, "{id}    {name} {chunks}");
    }
    s
}

/// One `PEER N ACQUIRED: CHUNK X/TOTAL NAME` line per chunk, `X` 1-based, appended to `out`.
/// The tracker prints millions of these: only the chunk number is formatted per line.
pub fn acquired_lines(
    out: &mut String,
    id: u64,
    name: &str,
    total: u64,
    chunks: std::ops::Range<u64>,
) {
    let head = format!("PEER {id} ACQUIRED: CHUNK ");
    let tail = format!("/{total} {name}\n");
    out.reserve((head.len() + tail.len() + 8) * (chunks.end - chunks.start) as usize);
    for c in chunks {
        out.push_str(&head);
        push_decimal(out, c + 1);
        out.push_str(&tail);
    }
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// `PEER N DISCONNECT: RECEIVED K` and one `N    NAME` line per downloaded file.
pub fn disconnect_block<'a>(id: u64, received: impl ExactSizeIterator<Item = &'a str>) -> String {
    list_block(id, "DISCONNECT: RECEIVED", received)
}

/// `PEER N SHUTDOWN: HAS K` and one `N    NAME` line per file in `Shared/`.
pub fn shutdown_block<'a>(id: u64, files: impl ExactSizeIterator<Item = &'a str>) -> String {
    list_block(id, "SHUTDOWN: HAS", files)
}

fn list_block<'a>(id: u64, head: &str, names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let mut s = format!("PEER {id} {head} {}\n", names.len());
    for name in names {
        let _ = writeln!(s, "{id}    {name}");
    }
    s
}

/// How many bytes of blocks may wait for the printer before those who queue more wait too.
const MAX_QUEUED: usize = 2 << 20;

/// Blocks waiting to be printed, in order, and how far the printer has got.
#[derive(Default)]
struct Queue {
    blocks: VecDeque<String>,
    bytes: usize,
    queued: u64,
    written: u64,
}

/// The tracker's printer: one thread writes queued blocks to stdout in queue order, so a
/// slow stdout (a terminal, a full pipe) never holds up whoever queued them while they hold
/// the tracker's state lock. Queueing under that lock keeps the order of the state changes.
struct Printer {
    queue: Mutex<Queue>,
    changed: Condvar,
    /// Whether the printer thread runs; if it could not be started, blocks are written
    /// where they are queued, as before there was a printer.
    running: AtomicBool,
}

/// Marks a queued block: [`Ticket::wait`] returns once it is on stdout. Ticket 0 stands for
/// nothing left to wait for.
#[must_use]
pub struct Ticket(u64);

/// Where the tracker's blocks go.
pub enum BlockSink {
    /// The process-wide printer, to stdout (see [`queue`]).
    Printer,
    /// Kept in memory, for unit tests to read back.
    #[cfg(test)]
    Capture(Mutex<String>),
}

impl BlockSink {
    #[cfg(test)]
    pub fn capture() -> BlockSink {
        BlockSink::Capture(Mutex::new(String::new()))
    }

    /// Sends `block` behind every block sent before it. For the printer this is [`queue`],
    /// with what it asks of its caller.
    pub fn queue(&self, block: String) -> Ticket {
        match self {
            BlockSink::Printer => queue(block),
            #[cfg(test)]
            BlockSink::Capture(text) => {
                lock_text(text).push_str(&block);
                Ticket(0)
            }
        }
    }

    /// What a capture holds so far, taken out of it (nothing for the printer).
    #[cfg(test)]
    pub fn take_captured(&self) -> String {
        match self {
            BlockSink::Printer => String::new(),
            #[cfg(test)]
            BlockSink::Capture(text) => std::mem::take(&mut *lock_text(text)),
        }
    }
}

#[cfg(test)]
fn lock_text(text: &Mutex<String>) -> MutexGuard<'_, String> {
    text.lock().unwrap_or_else(|e| e.into_inner())
}

fn printer() -> &'static Printer {
    static PRINTER: OnceLock<&'static Printer> = OnceLock::new();
    PRINTER.get_or_init(|| {
        let printer: &'static Printer = Box::leak(Box::new(Printer {
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            running: AtomicBool::new(false),
        }));
        let spawned = thread::Builder::new()
            .name("printer".into())
            .spawn(move || printer.run());
        match spawned {
            Ok(_) => printer.running.store(true, Ordering::Release),
            Err(e) => eprintln!("cannot start the printer thread ({e}): printing directly"),
        }
        printer
    })
}

impl Printer {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run(&self) {
        loop {
            let batch: Vec<String> = {
                let mut q = self.lock();
                while q.blocks.is_empty() {
                    q = self.changed.wait(q).unwrap_or_else(|e| e.into_inner());
                }
                q.blocks.drain(..).collect()
            };
            let mut out = io::stdout().lock();
            for block in &batch {
                // A closed stdout must not take the tracker down: the swarm still works.
                let _ = out.write_all(block.as_bytes());
            }
            let _ = out.flush();
            drop(out);
            let mut q = self.lock();
            q.written += batch.len() as u64;
            q.bytes -= batch.iter().map(String::len).sum::<usize>();
            drop(q);
            self.changed.notify_all();
        }
    }
}

/// Queues `block` for stdout behind every block queued before it. Call it under the lock
/// whose changes the block reports, so stdout shows them in the order they happened. Waits
/// only while more than [`MAX_QUEUED`] bytes are already waiting (stdout cannot keep up).
fn queue(block: String) -> Ticket {
    let printer = printer();
    if !printer.running.load(Ordering::Acquire) {
        emit(&block);
        return Ticket(0);
    }
    let mut q = printer.lock();
    if block.is_empty() {
        return Ticket(q.queued);
    }
    while q.bytes > MAX_QUEUED && q.written < q.queued {
        q = printer.changed.wait(q).unwrap_or_else(|e| e.into_inner());
    }
    q.bytes += block.len();
    q.blocks.push_back(block);
    q.queued += 1;
    let ticket = Ticket(q.queued);
    drop(q);
    printer.changed.notify_all();
    ticket
}

impl Ticket {
    /// Waits until the block (and so every block queued before it) is on stdout.
    pub fn wait(self) {
        if self.0 == 0 {
            return;
        }
        let printer = printer();
        let mut q = printer.lock();
        while q.written < self.0 {
            q = printer.changed.wait(q).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Writes `block` to stdout at once, under the stdout lock (a peer's SHUTDOWN block).
pub fn emit(block: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(block.as_bytes()).and_then(|()| out.flush());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_the_grading_formats_exactly() {
        assert_eq!(
            connect_block(3, &[("a b", 2), ("c", 0)]),
            "PEER 3 CONNECT: OFFERS 2\n3    a b 2\n3    c 0\n"
        );
        let mut s = String::new();
        acquired_lines(&mut s, 1, "f", 3, 1..3);
        assert_eq!(
            s,
            "PEER 1 ACQUIRED: CHUNK 2/3 f\nPEER 1 ACQUIRED: CHUNK 3/3 f\n"
        );
        assert_eq!(
            disconnect_block(2, ["x", "y"].into_iter()),
            "PEER 2 DISCONNECT: RECEIVED 2\n2    x\n2    y\n"
        );
        assert_eq!(
            shutdown_block(0, [].into_iter()),
            "PEER 0 SHUTDOWN: HAS 0\n"
        );
    }
}
