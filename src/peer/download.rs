//! A download worker: one thread and one connection per remote peer. It keeps several
//! piece requests in flight, asks the [`Store`] which piece to request next, and hands each
//! piece's bytes to it as they arrive (the store verifies, writes and records them); a remote
//! that breaks the protocol or sends bad data is struck.

use super::store::{Delivery, Job, Store};
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Piece requests kept in flight on one connection.
const PIPELINE: usize = 4;
/// How long to wait for a remote to connect or answer.
const TIMEOUT: Duration = Duration::from_secs(10);

pub fn spawn(store: Arc<Store>, remote: SocketAddr) {
    let worker_store = store.clone();
    let spawned = thread::Builder::new()
        .name(format!("fetch-{remote}"))
        .spawn(move || {
            let mut queue = VecDeque::new();
            match fetch(&worker_store, remote, &mut queue) {
                Ok(()) => {}
                // It broke the protocol (wrong lengths, garbage replies): a strike.
                Err(e @ LinkError::Garbled(_)) => {
                    let banned = worker_store.strike(remote);
                    eprintln!(
                        "peer: fetching from {remote}: {e}{}",
                        if banned { "; not asking it again" } else { "" }
                    );
                    worker_store.remote_failed(remote);
                }
                Err(e) => {
                    eprintln!("peer: fetching from {remote}: {e}");
                    worker_store.remote_failed(remote);
                }
            }
            for job in &queue {
                worker_store.release(job);
            }
            worker_store.worker_done(remote);
        });
    if spawned.is_err() {
        store.worker_done(remote);
    }
}

fn fetch(store: &Store, remote: SocketAddr, queue: &mut VecDeque<Job>) -> Result<(), LinkError> {
    let mut link = Link::connect(remote, Role::Peer, TIMEOUT)?;
    let mut buf = Vec::new();
    loop {
        while queue.len() < PIPELINE {
            let Some(job) = store.pick_rarest(remote, queue.make_contiguous()) else {
                break;
            };
            let (first, count) = job.meta.geometry.piece_chunks(job.piece).unwrap_or((0, 0));
            link.send(&Request::Get {
                name: job.meta.name.clone(),
                first,
                count,
            })?;
            queue.push_back(job);
        }
        let Some(job) = queue.front().cloned() else {
            if store.wait_for_work(remote, Duration::from_secs(1)) {
                continue;
            }
            return Ok(());
        };
        link.flush()?;
        let len = match link.reply() {
            Ok(words) => number(&words, 0)?,
            Err(LinkError::Refused(_)) => {
                queue.pop_front();
                store.not_held(remote, &job);
                continue;
            }
            Err(e) => return Err(e),
        };
        let (_, expected) = job.span();
        if len != expected as u64 {
            return Err(LinkError::Garbled(format!(
                "{len} bytes for piece {} of {:?}, expected {expected}",
                job.piece, job.label
            )));
        }
        buf.resize(expected, 0);
        // A valid header promised these bytes: a reply cut short breaks the protocol.
        link.payload(&mut buf).map_err(|e| {
            LinkError::Garbled(format!(
                "piece {} of {:?} cut short: {e}",
                job.piece, job.label
            ))
        })?;
        queue.pop_front();
        if let Delivery::BadData { banned } = store.deliver(remote, &job, &buf) {
            eprintln!(
                "peer: piece {} of {:?} from {remote} failed its SHA-1 check",
                job.piece, job.label
            );
            if banned {
                // Banned: the caller's strike for this error is not counted again.
                return Ok(());
            }
        }
    }
}
