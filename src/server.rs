//! What every listening side shares: an accept loop that caps open connections, runs each
//! connection on its own named, small-stack thread, and backs off rather than spins when
//! `accept` fails (out of file descriptors, say).

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Connection threads keep their buffers on the heap: a small stack lets thousands coexist.
const CONN_STACK: usize = 256 * 1024;
/// How long to wait after a failed `accept` before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

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
