//! Ending politely on the signals a user sends: SIGINT (Ctrl-C), SIGTERM (`kill`) and SIGHUP
//! (the terminal closed) run a caller's clean-up, say so in one line on stderr, and exit with
//! 128 + the signal's number, as a shell expects. SIGKILL (`kill -9`) cannot be caught: then
//! nothing runs and whatever the process wrote stays.
//!
//! std has no signal API, so `signal(2)` is declared here by hand; its calls are this room's
//! only `unsafe`. Why that is sound: the declaration matches the C one on every Linux libc
//! (`sighandler_t` is pointer-sized, passed as `usize` like `SIG_IGN` = 1 and `SIG_ERR` = -1),
//! and the handler does the least a handler may: it stores the signal's number in a static
//! lock-free atomic (no allocation, no lock, no I/O: async-signal-safe). Everything else, the
//! clean-up, stderr and the exit, happens on an ordinary thread that polls that atomic.
//! glibc's and musl's `signal` both keep the handler installed and restart interrupted calls
//! (BSD semantics), so the threads the signal lands on carry on until that thread exits.

use std::ffi::c_int;
use std::io::{self, Write};
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread;
use std::time::Duration;

const SIGHUP: c_int = 1;
const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

/// The signals that end a process politely, with the names said on stderr.
const ENDING: [(c_int, &str); 3] = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")];

/// `signal`'s `SIG_IGN` and `SIG_ERR`, as `sighandler_t` values.
const SIG_IGN: usize = 1;
const SIG_ERR: usize = usize::MAX;

unsafe extern "C" {
    /// `sighandler_t signal(int signum, sighandler_t handler)`: returns the previous handler.
    fn signal(signum: c_int, handler: usize) -> usize;
}

/// The first ending signal caught, 0 while none.
static CAUGHT: AtomicI32 = AtomicI32::new(0);

/// How often the watcher looks at [`CAUGHT`]: a user waits at most this long.
const POLL: Duration = Duration::from_millis(100);

/// How long the exit waits for the stdout lock before exiting without it.
const STDOUT_GRACE: Duration = Duration::from_secs(1);

/// The handler: the first signal's number wins, later ones change nothing.
extern "C" fn on_signal(number: c_int) {
    let _ = CAUGHT.compare_exchange(0, number, Ordering::SeqCst, Ordering::SeqCst);
}

/// From now on, the first SIGINT, SIGTERM or SIGHUP ends the process: a watcher thread runs
/// `clean_up`, writes `<who>: ended by <SIGNAL>` to stderr (followed by `; ` and what
/// `clean_up` returned, if anything) and exits 128 + the signal's number. A signal ignored
/// when the process started stays ignored: whoever started it asked for that (`nohup`, or
/// `cmd &` in a script, which ignores SIGINT). On an error the signals not yet caught keep
/// their default action (the process dies at once, as before).
pub fn end_on_signal<F>(who: &'static str, clean_up: F) -> io::Result<()>
where
    F: FnOnce() -> Option<String> + Send + 'static,
{
    // The watcher first: a signal caught before it ran would otherwise end nothing.
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || watch(who, clean_up))?;
    let handler = on_signal as extern "C" fn(c_int) as usize;
    for (number, _) in ENDING {
        // SAFETY: `signal` is declared as C declares it, and `on_signal` only stores into
        // an atomic, which is async-signal-safe.
        let previous = unsafe { signal(number, handler) };
        if previous == SIG_ERR {
            return Err(io::Error::last_os_error());
        }
        if previous == SIG_IGN {
            // SAFETY: as above; SIG_IGN is a value `signal` accepts.
            unsafe { signal(number, SIG_IGN) };
        }
    }
    Ok(())
}

/// The watcher: waits for a caught signal, then cleans up, says so and exits.
fn watch<F: FnOnce() -> Option<String>>(who: &str, clean_up: F) {
    let number = loop {
        thread::sleep(POLL);
        let number = CAUGHT.load(Ordering::SeqCst);
        if number != 0 {
            break number;
        }
    };
    let name = ENDING
        .iter()
        .find(|(n, _)| *n == number)
        .map_or("a signal", |(_, name)| name);
    let done = clean_up()
        .map(|what| format!("; {what}"))
        .unwrap_or_default();
    // Not eprintln!: after SIGHUP the terminal may be gone, and that must not panic here.
    let _ = writeln!(io::stderr(), "{who}: ended by {name}{done}");
    exit_between_writes(128 + number)
}

/// Exits with `code` while holding the stdout lock, so that no write to stdout is cut in
/// half (a block is written under that lock). A stdout that takes nothing more (a full pipe,
/// a paused terminal) must not keep the process alive: after [`STDOUT_GRACE`] it exits
/// anyway (std lets only one thread run the exit).
fn exit_between_writes(code: i32) -> ! {
    let locked = thread::Builder::new().name("exit".into()).spawn(move || {
        let _out = io::stdout().lock();
        std::process::exit(code)
    });
    if locked.is_ok() {
        thread::sleep(STDOUT_GRACE);
    }
    std::process::exit(code)
}
