//! The client's engine: one thread that owns the tracker connection, the list of shared files
//! and downloads, and the background work, so the shell never waits on a lock held across
//! tracker I/O. The shell sends it [`Cmd`]s and waits for the answer. This room holds the
//! records and the loop; each concern the loop serves has its own room below it:
//! [`commands`] (what the shell asks), [`tick`] (the background work), [`saved`] (save and
//! restore across runs), [`records`] (adding a download, reading progress),
//! [`tracker_link`] (the request connection, the session, failover), [`heartbeat`] (the
//! session's `ALIVE`s, on a thread of their own), [`in_use`] (which tracker and token the
//! two threads share), [`foreign`] and [`abroad`] (the trackers of another swarm's
//! `.mtorrent`s, asked on threads of their own),
//! [`notes`] (the `--log` file) and [`view`] (how names, sizes and rates are shown);
//! [`account`] (the login, and the group records it wakes and puts to sleep) and [`groups`]
//! (the group commands) are issue 14's accounts and groups.

mod abroad;
mod account;
mod commands;
mod foreign;
mod group_files;
mod groups;
mod heartbeat;
mod in_use;
mod notes;
mod records;
mod saved;
mod tick;
mod tracker_link;
mod view;

use super::state::{self, Saved};
use crate::error::Error;
use crate::link::Link;
use crate::metainfo::Metainfo;
use crate::peer::store::Store;
use crate::protocol::Request;
use in_use::InUse;
use notes::Notes;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How often the engine reports pieces and saves state.
const TICK: Duration = Duration::from_millis(250);

/// What the shell asks for.
pub enum Cmd {
    Share {
        path: PathBuf,
        mtorrent: PathBuf,
    },
    Get {
        mtorrent: PathBuf,
        dest: PathBuf,
    },
    Show,
    Remove {
        mtorrent: PathBuf,
    },
    /// An account or group command (issue 14).
    Group(GroupCmd),
    Quit,
}

pub use groups::GroupCmd;

/// The lines to print for a command, or the error to show.
pub type Answer = Result<Vec<String>, String>;
/// What the engine thread is told: a command from the shell, and where its answer goes; or
/// news from the heartbeat.
enum Msg {
    Ask(Cmd, Sender<(Vec<String>, Answer)>),
    /// The heartbeat found tracker `lost` silent (`why`) and switched the pair to `now`.
    Switched {
        lost: usize,
        now: usize,
        why: String,
    },
    /// Tracker `at` answered the heartbeat after no tracker did.
    Back {
        at: usize,
    },
    /// The trackers do not know the session `token` any more.
    UnknownSession {
        token: String,
    },
}

/// The shell's handle: sends a command, waits for the lines to print (or an error).
pub struct Engine {
    tx: Sender<Msg>,
    events: Events,
}

/// Lines about changes nobody asked for (a download complete or failed), kept until the
/// shell takes them to print between prompts.
type Events = Arc<Mutex<Vec<String>>>;

impl Engine {
    /// Sends `cmd` and waits for its answer. Lines about background changes not yet taken
    /// (see [`Engine::take_events`]) come first in an answer's lines, so they are seen at
    /// the latest with the next command; they are taken on the engine thread with the
    /// answer, so no line can contradict the answer below it.
    pub fn ask(&self, cmd: Cmd) -> Answer {
        let (reply_tx, reply_rx) = mpsc::channel();
        self.tx
            .send(Msg::Ask(cmd, reply_tx))
            .map_err(|_| "the client has stopped".to_string())?;
        let (news, answer) = reply_rx
            .recv()
            .map_err(|_| "the client has stopped".to_string())?;
        match answer {
            Ok(lines) => Ok(news.into_iter().chain(lines).collect()),
            Err(e) => {
                // Printed before the next prompt, after the error.
                let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
                events.splice(0..0, news);
                Err(e)
            }
        }
    }

    /// The lines about what changed in the background since the last call (`complete:
    /// name (28.6 MiB)`, `failed: name: disk full`), each once, oldest first: for the shell
    /// to print on their own lines between prompts.
    pub fn take_events(&self) -> Vec<String> {
        take(&self.events)
    }
}

/// The lines kept in `events`, which are left empty.
fn take(events: &Events) -> Vec<String> {
    std::mem::take(&mut *events.lock().unwrap_or_else(|e| e.into_inner()))
}

enum Kind {
    Share,
    /// `rate`: bytes held lately; `seeders`: holders the tracker listed last; `done`: seen
    /// complete and saved as such; `told`: its failure was announced; `alone`: since when no
    /// holder was listed, and whether that was said (see [`records::Alone`]).
    Download {
        rate: view::Rate,
        seeders: usize,
        done: bool,
        told: bool,
        alone: records::Alone,
    },
}

/// The user and group a group record belongs to.
#[derive(Clone, PartialEq, Eq)]
struct InGroup {
    user: String,
    group: String,
}

struct Record {
    kind: Kind,
    /// The user and group of a group record; None for a `.mtorrent`'s.
    group: Option<InGroup>,
    /// Why a group download stopped for good (its user left the group), shown as failed.
    stopped: Option<String>,
    meta: Metainfo,
    key: String,
    mtorrent: PathBuf,
    /// The seeded file, or the download's destination.
    path: PathBuf,
}

struct Core {
    me: SocketAddr,
    /// The tracker in use and the session's token, shared with the heartbeat.
    in_use: Arc<InUse>,
    /// The request connection, to tracker `link_at`.
    link: Option<Link>,
    link_at: usize,
    /// Files whose registration a tracker refused, so that is said once.
    refused: BTreeSet<String>,
    /// The pair switched trackers: register everything again at the next tick, in case the
    /// tracker that went away took a change it had acknowledged down with it.
    register_again: bool,
    /// Removals no tracker has taken yet: info hash → size.
    unregistering: BTreeMap<String, u64>,
    store: Arc<Store>,
    records: Vec<Record>,
    /// Saved records that could not come back at the start.
    lost: Vec<saved::Lost>,
    state_file: PathBuf,
    notes: Notes,
    refreshed: Option<Instant>,
    events: Events,
    /// The links to the trackers of other swarms' `.mtorrent`s.
    foreign: abroad::Foreign,
    /// The user logged in here, and the password to log in again in a new session (memory
    /// only).
    account: Option<account::Login>,
    /// A user the trackers would not log in again in a new session, and why: logged out
    /// here at the next tick (not while that session is being opened).
    refused_login: Option<(String, String)>,
    /// Group records of users not logged in here: saved, not in the store, not registered.
    dormant: Vec<Saved>,
    /// The client's state folder (group files' piece hashes live in `groups/` there).
    state_dir: PathBuf,
}

/// Loads the saved state (re-verifying what is on disk), opens a session and registers
/// everything with a tracker, and starts the engine and heartbeat threads.
pub fn start(
    me: SocketAddr,
    trackers: Vec<SocketAddr>,
    store: Arc<Store>,
    state_dir: PathBuf,
    log: Option<PathBuf>,
) -> Result<Engine, Error> {
    let notes = Notes::open(log)?;
    let events = Events::default();
    let mut core = Core {
        me,
        in_use: Arc::new(InUse::new(trackers, events.clone())),
        link: None,
        link_at: 0,
        refused: BTreeSet::new(),
        register_again: false,
        unregistering: BTreeMap::new(),
        store,
        records: Vec::new(),
        lost: Vec::new(),
        state_file: state_dir.join("client.state"),
        state_dir,
        notes,
        refreshed: None,
        events,
        foreign: abroad::Foreign::default(),
        account: None,
        refused_login: None,
        dormant: Vec::new(),
    };
    let saved =
        state::load(&core.state_file).map_err(|e| Error::failed(core.state_file.display(), e))?;
    for record in saved {
        // A group record sleeps until its user logs in here.
        if record.group().is_some() {
            core.dormant.push(record);
        } else {
            core.bring_back(record);
        }
    }
    core.save();
    if let Err(e) = core.call(&Request::Ping) {
        eprintln!("client: no session with the trackers yet ({e}); will keep trying");
    }
    let (tx, rx) = mpsc::channel();
    let events = core.events.clone();
    heartbeat::spawn(core.in_use.clone(), tx.clone())?;
    thread::Builder::new()
        .name("client-engine".into())
        .spawn(move || core.run(rx))?;
    Ok(Engine { tx, events })
}

impl Core {
    fn run(mut self, rx: Receiver<Msg>) {
        let mut last_tick = Instant::now();
        loop {
            match rx.recv_timeout(TICK.saturating_sub(last_tick.elapsed())) {
                Ok(Msg::Ask(cmd, reply)) => {
                    let quit = matches!(cmd, Cmd::Quit);
                    let answer = self.handle(cmd);
                    let news = take(&self.events);
                    let _ = reply.send((news, answer));
                    if quit {
                        return;
                    }
                }
                Ok(Msg::Switched { lost, now, why }) => self.note_switch(lost, now, &why),
                Ok(Msg::Back { at }) => self.note_back(at),
                Ok(Msg::UnknownSession { token }) => {
                    if self.in_use.token() == Some(token) {
                        self.forget_session();
                        // Any request opens a new session first and registers everything.
                        let _ = self.call(&Request::Ping);
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
            Cmd::Group(cmd) => self.group_command(cmd),
            Cmd::Quit => {
                self.in_use.stop();
                if self.in_use.token().is_some() {
                    let quit = Request::Quit {
                        token: String::new(),
                    };
                    if let Err(e) = self.call(&quit) {
                        eprintln!("client: the trackers did not take the quit: {e}");
                    }
                    self.in_use.set_token(None);
                }
                self.quit_foreign();
                self.save();
                self.store.shut_down();
                Ok(vec![])
            }
        }
    }
}
