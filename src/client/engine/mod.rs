//! The client's engine: one thread that owns the tracker connection, the list of shared files
//! and downloads, and the background work, so the shell never waits on a lock held across
//! tracker I/O. The shell sends it [`Cmd`]s and waits for the answer. This room holds the
//! records and the loop; each concern the loop serves has its own room below it:
//! [`commands`] (what the shell asks), [`tick`] (the background work), [`saved`] (save and
//! restore across runs), [`records`] (adding a download, reading progress),
//! [`tracker_link`] (the tracker connection with failover) and [`notes`] (the `--log` file).

mod commands;
mod notes;
mod records;
mod saved;
mod tick;
mod tracker_link;

use super::state;
use crate::error::Error;
use crate::link::Link;
use crate::metainfo::Metainfo;
use crate::peer::store::Store;
use crate::protocol::Request;
use notes::Notes;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// How often the engine reports pieces and saves state.
const TICK: Duration = Duration::from_millis(250);

/// What the shell asks for.
pub enum Cmd {
    Share { path: PathBuf, mtorrent: PathBuf },
    Get { mtorrent: PathBuf, dest: PathBuf },
    Show,
    Remove { mtorrent: PathBuf },
    Quit,
}

/// The lines to print for a command, or the error to show.
pub type Answer = Result<Vec<String>, String>;
/// A command and where its answer goes.
type Asked = (Cmd, Sender<Answer>);

/// The shell's handle: sends a command, waits for the lines to print (or an error).
pub struct Engine {
    tx: Sender<Asked>,
}

impl Engine {
    pub fn ask(&self, cmd: Cmd) -> Answer {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .send((cmd, reply_tx))
            .map_err(|_| "the client has stopped".to_string())?;
        reply_rx
            .recv()
            .map_err(|_| "the client has stopped".to_string())?
    }
}

enum Kind {
    Share,
    /// `had`: pieces verified when the download (re)started, for the rate; `done`: seen
    /// complete and saved as such.
    Download {
        started: Instant,
        had: usize,
        done: bool,
    },
}

struct Record {
    kind: Kind,
    meta: Metainfo,
    key: String,
    mtorrent: PathBuf,
    /// The seeded file, or the download's destination.
    path: PathBuf,
}

struct Core {
    me: SocketAddr,
    trackers: Vec<SocketAddr>,
    current: usize,
    link: Option<Link>,
    store: Arc<Store>,
    records: Vec<Record>,
    state_file: PathBuf,
    notes: Notes,
    refreshed: Option<Instant>,
    /// The session's token, once a tracker opened one.
    token: Option<String>,
    beaten: Option<Instant>,
}

/// Loads the saved state (re-verifying what is on disk), registers everything with a
/// tracker, and starts the engine thread.
pub fn start(
    me: SocketAddr,
    trackers: Vec<SocketAddr>,
    store: Arc<Store>,
    state_dir: PathBuf,
    log: Option<PathBuf>,
) -> Result<Engine, Error> {
    let notes = Notes::open(log)?;
    let mut core = Core {
        me,
        trackers,
        current: 0,
        link: None,
        store,
        records: Vec::new(),
        state_file: state_dir.join("client.state"),
        notes,
        refreshed: None,
        token: None,
        beaten: None,
    };
    let saved =
        state::load(&core.state_file).map_err(|e| Error::failed(core.state_file.display(), e))?;
    for record in saved {
        if let Err(e) = core.restore(&record) {
            eprintln!("client: not restoring {record:?}: {e}");
        }
    }
    core.save();
    if let Err(e) = core.connect_any() {
        eprintln!("client: no tracker answers yet ({e}); will keep trying");
    }
    let (tx, rx) = mpsc::channel();
    thread::Builder::new()
        .name("client-engine".into())
        .spawn(move || core.run(rx))?;
    Ok(Engine { tx })
}

impl Core {
    fn run(mut self, rx: Receiver<Asked>) {
        let mut last_tick = Instant::now();
        loop {
            match rx.recv_timeout(TICK.saturating_sub(last_tick.elapsed())) {
                Ok((cmd, reply)) => {
                    let quit = matches!(cmd, Cmd::Quit);
                    let answer = self.handle(cmd);
                    let _ = reply.send(answer);
                    if quit {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.handle(Cmd::Quit);
                    return;
                }
            }
            if last_tick.elapsed() >= TICK {
                last_tick = Instant::now();
                self.tick();
            }
        }
    }

    fn handle(&mut self, cmd: Cmd) -> Answer {
        match cmd {
            Cmd::Share { path, mtorrent } => self.share(&path, &mtorrent),
            Cmd::Get { mtorrent, dest } => self.get(&mtorrent, &dest),
            Cmd::Show => Ok(self.show()),
            Cmd::Remove { mtorrent } => self.remove(&mtorrent),
            Cmd::Quit => {
                if let Some(token) = self.token.clone() {
                    let _ = self.call(&Request::Quit { token });
                }
                self.save();
                self.store.shut_down();
                Ok(vec![])
            }
        }
    }
}
