//! A tracker in a pair, for the interactive client. Both trackers hold one replicated set of
//! records ([`records`]: the higher version wins, removals are tombstones) whose meaning,
//! indexes and bounds are [`tables`]'s; each keeps them in an append-only state log
//! ([`state_log`]), pushes them to its twin ([`twin_sync`]) and serves clients and the twin
//! ([`serve`]). This room starts it all: a state file or log that cannot be used is an error
//! before anything is served.

mod groups_index;
mod kinds;
mod kinds_accounts;
mod log;
mod records;
mod serve;
mod serve_accounts;
mod state_log;
mod tables;
mod throttle;
mod twin_sync;

use log::Log;
use serve::PairConn;
use state_log::StateLog;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use tables::Tables;
use twin_sync::Pusher;

const MAX_CONNECTIONS: usize = 1024;
/// How often silent sessions and orphaned registrations are swept.
const SWEEP: Duration = Duration::from_secs(1);
/// A sweep this much later than due means the tracker itself was stopped.
const FROZEN: Duration = Duration::from_secs(5);

/// Runs a tracker of a pair until killed.
pub fn run(
    me: SocketAddr,
    twin: SocketAddr,
    state_file: PathBuf,
    log_file: PathBuf,
) -> io::Result<()> {
    let named = |path: &PathBuf| {
        let path = path.display().to_string();
        move |e: io::Error| io::Error::new(e.kind(), format!("{path}: {e}"))
    };
    // First, so a tracker that cannot listen creates no files.
    let listener = TcpListener::bind(me)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {me}: {e}")))?;
    let log = Log::open(&log_file).map_err(named(&log_file))?;
    let tables = Arc::new(Tables::new(&me.to_string()));
    let state = StateLog::open(&state_file, &tables).map_err(named(&state_file))?;
    let epoch = state.epoch().to_string();
    let acked = Arc::new(AtomicU64::new(0));
    let nonce = Arc::new(Mutex::new(None));
    state.spawn_appender(tables.clone(), acked.clone(), log.clone())?;
    Pusher {
        me,
        twin,
        epoch,
        tables: tables.clone(),
        acked: acked.clone(),
        nonce: nonce.clone(),
        log: log.clone(),
    }
    .spawn()?;
    let (sweeper, twin_acked) = (tables.clone(), acked.clone());
    thread::Builder::new()
        .name("tracker-sweep".into())
        .spawn(move || {
            loop {
                let slept = Instant::now();
                thread::sleep(SWEEP);
                // A sleep that overran by far: the process was frozen (SIGSTOP) or the machine
                // slept; clients were not silent, this tracker was.
                if slept.elapsed() > SWEEP + FROZEN {
                    sweeper.resumed();
                }
                sweeper.sweep(twin_acked.load(Ordering::Relaxed));
            }
        })?;
    let (records, _) = tables.size();
    log.say(format!("serving on {me}, twin {twin}, {records} records"));
    {
        let mut out = io::stdout().lock();
        writeln!(
            out,
            "tracker {me} serving, twin {twin}, state {} ({records} records)",
            state_file.display()
        )?;
        out.flush()?;
    }
    crate::server::accept_loop(listener, "tracker", MAX_CONNECTIONS, move |stream, from| {
        crate::server::serve_lines(
            stream,
            &mut PairConn {
                from,
                twin,
                tables: &tables,
                log: &log,
                role: crate::protocol::Role::Client,
                stream: None,
                nonce: &nonce,
            },
        );
    })
}
