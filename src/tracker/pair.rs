//! A tracker in a pair, for the interactive client: serves the [`Catalog`], keeps it in
//! `STATE_FILE` (written whole, atomically, after changes), logs to `LOG_FILE`, and keeps its
//! twin in sync: at start it pulls the twin's whole state; afterwards it forwards every change
//! it applies for a client, and applies the changes its twin forwards (without forwarding
//! them back). Synchronisation is the trackers' business only.

use super::catalog::Catalog;
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role, VERSION};
use crate::wire::{self, LineError};
use std::fs::{self, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long to wait for the twin to connect or answer.
const TWIN_TIMEOUT: Duration = Duration::from_secs(2);
/// A client silent this long is disconnected (it reconnects when it needs to).
const IDLE: Duration = Duration::from_secs(300);
const LINE_DEADLINE: Duration = Duration::from_secs(10);
const MAX_CONNECTIONS: usize = 1024;

/// Appends timestamped lines to the log file, on a thread of its own.
#[derive(Clone)]
pub struct Log(Sender<String>);

impl Log {
    fn open(path: &Path) -> io::Result<Log> {
        let mut file = OpenOptions::new().create(true).append(true).open(path)?;
        let (tx, rx) = mpsc::channel::<String>();
        thread::Builder::new()
            .name("tracker-log".into())
            .spawn(move || {
                for line in rx {
                    let secs = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    let _ = writeln!(file, "{secs:.3} {line}");
                }
            })?;
        Ok(Log(tx))
    }

    pub fn say(&self, line: String) {
        let _ = self.0.send(line);
    }
}

/// Runs a tracker of a pair until killed.
pub fn run(
    me: SocketAddr,
    twin: SocketAddr,
    state_file: PathBuf,
    log_file: PathBuf,
) -> io::Result<()> {
    let log = Log::open(&log_file)?;
    let catalog = Arc::new(Catalog::default());
    match load_state(&state_file) {
        Ok(seeds) => {
            log.say(format!(
                "loaded {} seeder entries from {}",
                seeds.len(),
                state_file.display()
            ));
            catalog.replace(&seeds);
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", state_file.display()),
            ));
        }
    }
    let listener = TcpListener::bind(me)?;
    match pull_state(twin) {
        Ok(seeds) => {
            log.say(format!(
                "caught up from {twin}: {} seeder entries",
                seeds.len()
            ));
            catalog.replace(&seeds);
        }
        Err(e) => log.say(format!(
            "twin {twin} not reachable at start ({e}); using the state file"
        )),
    }
    spawn_persister(catalog.clone(), state_file, log.clone())?;
    let forward = spawn_forwarder(twin, catalog.clone(), log.clone())?;
    log.say(format!("serving on {me}, twin {twin}"));
    crate::server::accept_loop(listener, "tracker", MAX_CONNECTIONS, move |stream, from| {
        serve(stream, from, &catalog, &forward, &log)
    })
}

fn load_state(path: &Path) -> io::Result<Vec<Request>> {
    let text = fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|l| Request::parse(l).ok())
        .filter(|r| matches!(r, Request::Seed { .. }))
        .collect())
}

/// Asks the twin for its whole state.
fn pull_state(twin: SocketAddr) -> Result<Vec<Request>, LinkError> {
    let mut link = Link::connect(twin, Role::Tracker, TWIN_TIMEOUT)?;
    let n = number(&link.call(&Request::State)?, 0)?;
    let mut seeds = Vec::new();
    for _ in 0..n {
        let line = link.line()?;
        match Request::parse(&line) {
            Ok(seed @ Request::Seed { .. }) => seeds.push(seed),
            _ => return Err(LinkError::Garbled(line)),
        }
    }
    Ok(seeds)
}

/// Writes the state file whenever the catalog changed, at most every 50 ms, through a
/// temporary file and a rename so that it is never seen half written.
fn spawn_persister(catalog: Arc<Catalog>, path: PathBuf, log: Log) -> io::Result<()> {
    thread::Builder::new()
        .name("tracker-persist".into())
        .spawn(move || {
            let mut saved = u64::MAX;
            loop {
                let version = catalog.wait_change(saved, Duration::from_secs(1));
                if version == saved {
                    continue;
                }
                let (version, seeds) = catalog.snapshot();
                let text: String = seeds.iter().map(|r| format!("{r}\n")).collect();
                let tmp = path.with_extension("tmp");
                match fs::write(&tmp, text).and_then(|()| fs::rename(&tmp, &path)) {
                    Ok(()) => saved = version,
                    Err(e) => log.say(format!("cannot write {}: {e}", path.display())),
                }
                thread::sleep(Duration::from_millis(50));
            }
        })?;
    Ok(())
}

/// Forwards each change to the twin, on a thread of its own. A fresh connection first sends
/// the whole state, so nothing missed while the twin was away is lost.
fn spawn_forwarder(
    twin: SocketAddr,
    catalog: Arc<Catalog>,
    log: Log,
) -> io::Result<Sender<Request>> {
    let (tx, rx) = mpsc::channel::<Request>();
    thread::Builder::new()
        .name("tracker-sync".into())
        .spawn(move || forward(twin, &catalog, &log, rx))?;
    Ok(tx)
}

fn forward(twin: SocketAddr, catalog: &Catalog, log: &Log, changes: Receiver<Request>) {
    let mut link: Option<Link> = None;
    for change in changes {
        for _attempt in 0..2 {
            if link.is_none() {
                link = connect_and_push(twin, catalog).ok();
                if link.is_none() {
                    // The twin is away; it pulls the whole state when it comes back.
                    break;
                }
                log.say(format!("connected to twin {twin}"));
            }
            if let Some(l) = &mut link {
                match l.call(&change) {
                    Ok(_) | Err(LinkError::Refused(_)) => break,
                    Err(e) => {
                        log.say(format!("lost twin {twin}: {e}"));
                        link = None;
                    }
                }
            }
        }
    }
}

fn connect_and_push(twin: SocketAddr, catalog: &Catalog) -> Result<Link, LinkError> {
    let mut link = Link::connect(twin, Role::Tracker, TWIN_TIMEOUT)?;
    let (_, seeds) = catalog.snapshot();
    for seed in &seeds {
        link.send(seed)?;
    }
    link.flush()?;
    for _ in &seeds {
        match link.reply() {
            Ok(_) | Err(LinkError::Refused(_)) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(link)
}

/// One connection from a client or from the twin tracker.
fn serve(
    stream: TcpStream,
    from: SocketAddr,
    catalog: &Catalog,
    forward: &Sender<Request>,
    log: &Log,
) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(IDLE));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = BufWriter::new(stream);
    let mut line = Vec::new();
    let mut role = None;
    let last = loop {
        let deadline = Some(Instant::now() + LINE_DEADLINE);
        let request = match wire::read_line_by(&mut reader, &mut line, deadline) {
            Ok(text) => Request::parse(text).map_err(|e| e.to_string()),
            Err(LineError::NotUtf8) => Err("not_utf8".to_string()),
            Err(LineError::TooLong) => break format!("ERR line_too_long max {}", wire::MAX_LINE),
            Err(LineError::TooSlow) => break "ERR too_slow".to_string(),
            Err(LineError::Eof | LineError::Io(_)) => return,
        };
        let reply = match (request, role) {
            (Err(e), _) => format!("ERR {e}"),
            (Ok(Request::Hello { role: r }), None) => {
                role = Some(r);
                format!("OK {VERSION} tracker")
            }
            (Ok(_), None) => break "ERR hello_first".to_string(),
            (Ok(req), Some(role)) => answer(req, role, from, catalog, forward, log),
        };
        if wire::write_line(&mut writer, &reply).is_err() {
            return;
        }
        if wire::flush_if_idle(&reader, &mut writer).is_err() {
            return;
        }
    };
    wire::close_with(&mut writer, &last);
}

fn answer(
    req: Request,
    role: Role,
    from: SocketAddr,
    catalog: &Catalog,
    forward: &Sender<Request>,
    log: &Log,
) -> String {
    match req {
        Request::Seed { .. } | Request::Unseed { .. } | Request::Quit { .. } => {
            match catalog.apply(&req) {
                Ok(changed) => {
                    if changed {
                        log.say(format!(
                            "{from} {}: {req}",
                            if role == Role::Tracker {
                                "twin"
                            } else {
                                "client"
                            }
                        ));
                        if role != Role::Tracker {
                            let _ = forward.send(req);
                        }
                    }
                    "OK".to_string()
                }
                Err(e) => format!("ERR {e}"),
            }
        }
        Request::Seeders { key } => match catalog.seeders(&key) {
            None => "ERR unknown_file".to_string(),
            Some(list) => {
                let mut out = format!("OK {}", list.len());
                for (addr, bits) in list {
                    out.push_str(&format!("\n{addr} {bits}"));
                }
                out
            }
        },
        Request::State => {
            let (_, seeds) = catalog.snapshot();
            let mut out = format!("OK {}", seeds.len());
            for seed in seeds {
                out.push_str(&format!("\n{seed}"));
            }
            out
        }
        Request::Ping => "OK".to_string(),
        Request::Hello { .. } => "ERR hello_twice".to_string(),
        other => {
            let command = other.to_string();
            format!(
                "ERR not_in_pair_mode {}",
                command.split(' ').next().unwrap_or_default()
            )
        }
    }
}
