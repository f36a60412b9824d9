//! The client's engine: one thread that owns the tracker connection (with failover to the
//! second tracker), the list of shared files and downloads, and the background work: telling
//! the tracker about verified pieces, refreshing who holds what, starting download workers,
//! and saving the state. The shell sends it [`Cmd`]s and waits for the answer.

use super::state::{self, Saved};
use crate::chunk::Bitset;
use crate::error::Error;
use crate::link::{Link, LinkError, number};
use crate::metainfo::Metainfo;
use crate::peer::{download, store::Store};
use crate::protocol::{Request, Role};
use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// How often the engine reports pieces and saves state.
const TICK: Duration = Duration::from_millis(250);
/// How often the holders of each download are refreshed.
const REFRESH: Duration = Duration::from_secs(1);
/// How long to wait for a tracker to connect or answer before trying the other.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(2);

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
    log: Option<fs::File>,
    refreshed: Option<Instant>,
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
    let log = match log {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p)
                .map_err(|e| Error::failed(p.display(), e))?,
        ),
        None => None,
    };
    let mut core = Core {
        me,
        trackers,
        current: 0,
        link: None,
        store,
        records: Vec::new(),
        state_file: state_dir.join("client.state"),
        log,
        refreshed: None,
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

fn key_of(meta: &Metainfo) -> String {
    meta.info_hash()
}

impl Core {
    fn note(&mut self, line: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{line}");
        }
    }

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
                let me = self.me;
                let _ = self.call(&Request::Quit { addr: me });
                self.save();
                self.store.shut_down();
                Ok(vec![])
            }
        }
    }

    // ---- commands ----

    fn share(&mut self, path: &Path, mtorrent: &Path) -> Answer {
        if mtorrent.extension().and_then(|e| e.to_str()) != Some("mtorrent") {
            return Err(format!("{} must end in .mtorrent", mtorrent.display()));
        }
        let meta =
            fs::metadata(path).map_err(|e| format!("cannot share {}: {e}", path.display()))?;
        if !meta.is_file() {
            return Err(format!(
                "cannot share {}: not a regular file",
                path.display()
            ));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| crate::name::validate(n).is_ok())
            .ok_or_else(|| {
                format!(
                    "cannot share {}: its name is not a valid file name",
                    path.display()
                )
            })?
            .to_string();
        let trackers = [
            self.trackers[0],
            *self.trackers.get(1).unwrap_or(&self.trackers[0]),
        ];
        let info = Metainfo::of_file(path, &name, trackers)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let key = key_of(&info);
        if self.records.iter().any(|r| r.key == key) {
            return Err(format!("{name} is already shared or downloading here"));
        }
        fs::write(mtorrent, info.to_text())
            .map_err(|e| format!("cannot write {}: {e}", mtorrent.display()))?;
        self.store
            .add_seed(info.file_meta(), path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        let pieces = info.piece_hashes.len();
        let size = info.size;
        self.records.push(Record {
            kind: Kind::Share,
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: path.into(),
        });
        self.register(&key);
        self.save();
        self.note(&format!(
            "share {} as {}",
            path.display(),
            mtorrent.display()
        ));
        Ok(vec![format!(
            "shared {name} ({size} bytes, {pieces} pieces) as {}",
            mtorrent.display()
        )])
    }

    fn get(&mut self, mtorrent: &Path, dest: &Path) -> Answer {
        let text = fs::read_to_string(mtorrent)
            .map_err(|e| format!("cannot read {}: {e}", mtorrent.display()))?;
        let info = Metainfo::parse(&text)
            .map_err(|e| format!("{} is not a valid .mtorrent: {e}", mtorrent.display()))?;
        let dest = if dest.is_dir() {
            dest.join(&info.name)
        } else {
            dest.to_path_buf()
        };
        if dest.exists() {
            return Err(format!("{} already exists", dest.display()));
        }
        let key = key_of(&info);
        if self.records.iter().any(|r| r.key == key) {
            return Err(format!(
                "{} is already shared or downloading here",
                info.name
            ));
        }
        let name = info.name.clone();
        self.start_download(info, mtorrent, &dest, false)
            .map_err(|e| format!("cannot download to {}: {e}", dest.display()))?;
        self.refresh_holders();
        self.save();
        self.note(&format!("get {} to {}", mtorrent.display(), dest.display()));
        Ok(vec![format!(
            "downloading {name} to {} in the background",
            dest.display()
        )])
    }

    fn start_download(
        &mut self,
        info: Metainfo,
        mtorrent: &Path,
        dest: &Path,
        resume: bool,
    ) -> io::Result<()> {
        let key = key_of(&info);
        let partial = partial_path(dest);
        self.store
            .add_download_to(info.file_meta(), &info.name, &partial, dest, resume)?;
        let had = self
            .store
            .progress(&key)
            .map_or(0, |(bits, _)| bits.count());
        self.records.push(Record {
            kind: Kind::Download {
                started: Instant::now(),
                had,
                done: false,
            },
            meta: info,
            key: key.clone(),
            mtorrent: mtorrent.into(),
            path: dest.into(),
        });
        self.register(&key);
        Ok(())
    }

    fn show(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for r in &self.records {
            let Kind::Download { started, had, .. } = r.kind else {
                continue;
            };
            let Some((bits, complete)) = self.live_progress(&r.key) else {
                lines.push(format!(
                    "[F] {} (failed: see the messages above)",
                    r.meta.name
                ));
                continue;
            };
            if complete {
                lines.push(format!("[S] {}", r.meta.name));
                continue;
            }
            let (have, total) = (bits.count(), bits.num_bits());
            let percent = (have * 100).checked_div(total).unwrap_or(100);
            let geometry = r.meta.geometry();
            let bytes: u64 = bits
                .iter_ones()
                .filter_map(|p| geometry.piece_span(p as u32))
                .map(|(_, l)| l as u64)
                .sum();
            let before = (had as u64).min(have as u64) * geometry.piece_size();
            let secs = started.elapsed().as_secs_f64().max(0.001);
            let rate = bytes.saturating_sub(before) as f64 / secs;
            lines.push(format!(
                "[D] {} {percent}% ({have}/{total} pieces, {})",
                r.meta.name,
                human_rate(rate)
            ));
        }
        if lines.is_empty() {
            lines.push("no downloads".to_string());
        }
        lines
    }

    fn remove(&mut self, mtorrent: &Path) -> Answer {
        let wanted = fs::canonicalize(mtorrent).unwrap_or_else(|_| mtorrent.to_path_buf());
        let at = self
            .records
            .iter()
            .position(|r| {
                fs::canonicalize(&r.mtorrent).unwrap_or_else(|_| r.mtorrent.clone()) == wanted
            })
            .ok_or_else(|| format!("{} is not shared by this client", mtorrent.display()))?;
        let r = &self.records[at];
        if let Some((bits, false)) = self.live_progress(&r.key) {
            let percent = (bits.count() * 100)
                .checked_div(bits.num_bits())
                .unwrap_or(100);
            return Err(format!(
                "cannot remove {}: still downloading ({percent}%); only complete files can be removed",
                r.meta.name
            ));
        }
        let r = self.records.remove(at);
        let me = self.me;
        let _ = self.call(&Request::Unseed {
            addr: me,
            key: r.key.clone(),
        });
        self.store.forget(&r.key);
        let _ = fs::remove_file(&r.mtorrent);
        self.save();
        self.note(&format!("remove {}", r.mtorrent.display()));
        Ok(vec![format!(
            "removed {} (the file stays at {})",
            r.meta.name,
            r.path.display()
        )])
    }

    // ---- background ----

    fn tick(&mut self) {
        // Files given up here (a seed changed on disk, a download nobody can complete) are
        // no longer ours to offer.
        for key in self.store.take_drops() {
            let me = self.me;
            if let Err(e) = self.call(&Request::Unseed { addr: me, key }) {
                eprintln!("client: the trackers did not take a removal: {e}");
            }
        }
        let reports = self.store.take_reports();
        for (key, _) in &reports {
            self.register(key);
        }
        // A download that just completed is saved as a share from now on.
        let mut finished = false;
        for r in &mut self.records {
            if let Kind::Download {
                done: done @ false, ..
            } = &mut r.kind
                && self
                    .store
                    .progress(&r.key)
                    .is_some_and(|(_, complete)| complete)
            {
                *done = true;
                finished = true;
            }
        }
        if !reports.is_empty() || finished {
            self.save();
        }
        if self.refreshed.is_none_or(|t| t.elapsed() >= REFRESH) {
            self.refresh_holders();
        }
    }

    /// Asks who holds each unfinished download, and starts workers for new holders.
    fn refresh_holders(&mut self) {
        self.refreshed = Some(Instant::now());
        let keys: Vec<String> = self
            .records
            .iter()
            .filter(|r| self.store.progress(&r.key).is_some_and(|(_, done)| !done))
            .map(|r| r.key.clone())
            .collect();
        for key in keys {
            let Ok(lines) = self.call_list(&Request::Seeders { key: key.clone() }) else {
                continue;
            };
            let npieces = self.store.progress(&key).map_or(0, |(b, _)| b.num_bits());
            let holders: Vec<(SocketAddr, Bitset)> = lines
                .iter()
                .filter_map(|l| {
                    let (addr, bits) = l.split_once(' ')?;
                    let addr: SocketAddr = addr.parse().ok()?;
                    let bits = Bitset::from_word(bits, npieces)?;
                    (addr != self.me).then_some((addr, bits))
                })
                .collect();
            for remote in self.store.set_holders(&key, holders) {
                download::spawn(self.store.clone(), remote);
            }
        }
    }

    /// Tells the tracker which pieces of `key` this client holds.
    fn register(&mut self, key: &str) {
        let Some(req) = self.seed_request(key) else {
            return;
        };
        if let Err(e) = self.call(&req) {
            eprintln!("client: the trackers did not take a registration: {e}");
        }
    }

    fn save(&mut self) {
        let records: Vec<Saved> = self
            .records
            .iter()
            .map(|r| match (&r.kind, self.store.progress(&r.key)) {
                (Kind::Download { .. }, Some((bits, false))) => Saved::Download {
                    mtorrent: r.mtorrent.clone(),
                    dest: r.path.clone(),
                    pieces: bits.to_hex(),
                },
                _ => Saved::Share {
                    path: r.path.clone(),
                    mtorrent: r.mtorrent.clone(),
                },
            })
            .collect();
        if let Err(e) = state::save(&self.state_file, &records) {
            eprintln!("client: cannot save {}: {e}", self.state_file.display());
        }
    }

    /// Brings back one saved record: a share is re-hashed against its `.mtorrent`; a
    /// download resumes, keeping the pieces on disk that still verify.
    fn restore(&mut self, saved: &Saved) -> Result<(), String> {
        let (mtorrent, path) = match saved {
            Saved::Share { path, mtorrent } => (mtorrent, path),
            Saved::Download { mtorrent, dest, .. } => (mtorrent, dest),
        };
        let text =
            fs::read_to_string(mtorrent).map_err(|e| format!("{}: {e}", mtorrent.display()))?;
        let info = Metainfo::parse(&text).map_err(|e| format!("{}: {e}", mtorrent.display()))?;
        let finished =
            matches!(saved, Saved::Share { .. }) || (path.exists() && !partial_path(path).exists());
        if finished {
            let again = Metainfo::of_file(path, &info.name, info.trackers)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            if again.piece_hashes != info.piece_hashes {
                return Err(format!("{} changed since it was shared", path.display()));
            }
            self.store
                .add_seed(info.file_meta(), path)
                .map_err(|e| e.to_string())?;
            let key = key_of(&info);
            let kind = if matches!(saved, Saved::Share { .. }) {
                Kind::Share
            } else {
                Kind::Download {
                    started: Instant::now(),
                    had: info.piece_hashes.len(),
                    done: true,
                }
            };
            self.records.push(Record {
                kind,
                meta: info,
                key,
                mtorrent: mtorrent.clone(),
                path: path.clone(),
            });
            return Ok(());
        }
        self.start_download(info, mtorrent, path, true)
            .map_err(|e| e.to_string())
    }

    // ---- trackers ----

    /// Connects to the current tracker, or failing that the other, registering everything.
    fn connect_any(&mut self) -> Result<(), LinkError> {
        let mut last = None;
        for _ in 0..self.trackers.len() {
            let addr = self.trackers[self.current];
            match Link::connect(addr, Role::Client, TRACKER_TIMEOUT) {
                Ok(link) => {
                    self.link = Some(link);
                    self.note(&format!("using tracker {addr}"));
                    let keys: Vec<String> = self.records.iter().map(|r| r.key.clone()).collect();
                    for key in keys {
                        let req = self.seed_request(&key);
                        if let (Some(req), Some(link)) = (req, self.link.as_mut()) {
                            link.call(&req)?;
                        }
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.current = (self.current + 1) % self.trackers.len();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(LinkError::Garbled("no tracker".into())))
    }

    /// Verified pieces of `key` and whether it is complete; `None` once it was given up.
    fn live_progress(&self, key: &str) -> Option<(Bitset, bool)> {
        self.store.progress(key).filter(|_| !self.store.failed(key))
    }

    fn seed_request(&self, key: &str) -> Option<Request> {
        let r = self.records.iter().find(|r| r.key == key)?;
        let (bits, _) = self.store.progress(key)?;
        Some(Request::Seed {
            addr: self.me,
            key: key.to_string(),
            name: r.meta.name.clone(),
            size: r.meta.size,
            bits: bits.to_word(),
        })
    }

    /// Sends one request, switching to the other tracker (and registering everything there)
    /// when the current one does not answer.
    fn call(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        self.call_then(req, |_, _| Ok(()))
    }

    /// Like [`Core::call`] for a reply of `OK <n>` and `n` lines; returns the lines.
    fn call_list(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        let mut lines = Vec::new();
        self.call_then(req, |link, words| {
            lines = link.lines(number(words, 0)?)?;
            Ok(())
        })?;
        Ok(lines)
    }

    fn call_then(
        &mut self,
        req: &Request,
        mut more: impl FnMut(&mut Link, &[String]) -> Result<(), LinkError>,
    ) -> Result<Vec<String>, LinkError> {
        for attempt in 0..2 {
            if self.link.is_none() {
                self.connect_any()?;
            }
            let Some(link) = self.link.as_mut() else {
                continue;
            };
            let outcome = link
                .call(req)
                .and_then(|words| more(link, &words).map(|()| words));
            match outcome {
                Ok(words) => return Ok(words),
                Err(e @ LinkError::Refused(_)) => return Err(e),
                Err(e) => {
                    let lost = self.trackers[self.current];
                    eprintln!("client: tracker {lost} stopped answering ({e}); switching");
                    self.note(&format!("lost tracker {lost}: {e}"));
                    self.link = None;
                    self.current = (self.current + 1) % self.trackers.len();
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        Err(LinkError::Garbled("no tracker".into()))
    }
}

/// Where a download to `dest` is written until it is complete: beside it, hidden.
fn partial_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.p2p-partial"))
}

fn human_rate(bytes_per_sec: f64) -> String {
    if bytes_per_sec >= 1e6 {
        format!("{:.1} MB/s", bytes_per_sec / 1e6)
    } else {
        format!("{:.1} KB/s", bytes_per_sec / 1e3)
    }
}
