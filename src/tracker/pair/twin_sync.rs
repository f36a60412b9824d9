//! Keeping the twin in sync: at start, pull its whole state; afterwards forward every change
//! applied for a client, pushing the whole state first on every fresh connection so that
//! nothing missed while the twin was away is lost. Synchronisation is the trackers' business
//! only.

use super::log::Log;
use crate::link::{Link, LinkError};
use crate::protocol::{Request, Role};
use crate::tracker::catalog::Catalog;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

/// How long to wait for the twin to connect or answer.
const TWIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Asks the twin for its whole state.
pub fn pull_state(twin: SocketAddr) -> Result<Vec<Request>, LinkError> {
    let mut link = Link::connect(twin, Role::Tracker, TWIN_TIMEOUT)?;
    let (_, lines) = link.call_list(&Request::State, 0)?;
    let mut seeds = Vec::new();
    for line in lines {
        match Request::parse(&line) {
            Ok(seed @ Request::Seed { .. }) => seeds.push(seed),
            _ => return Err(LinkError::Garbled(line)),
        }
    }
    Ok(seeds)
}

/// Forwards each change to the twin, on a thread of its own. A fresh connection first sends
/// the whole state, so nothing missed while the twin was away is lost.
pub fn spawn_forwarder(
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
