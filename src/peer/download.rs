//! A download worker: one thread and one connection per remote peer. It keeps several
//! requests in flight, each for a run of adjacent pieces (the rarest the [`Store`] picks,
//! and the free ones right after it: fewer, larger requests cost less per byte), and hands
//! each piece's bytes to the store as they arrive (it verifies, writes and records them); a
//! remote that breaks the protocol or sends bad data is struck. Problems with one remote
//! (refused, reset, bad data) go where [`super::problems`] says: stderr for the swarm peer,
//! the log (or nowhere) for the interactive client, whose prompt must not hear them.

use super::problems::report;
use super::store::{Delivery, Job, Store};
use crate::chunk::{CHUNK_SIZE, MAX_GET_CHUNKS};
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

/// Requests kept in flight on one connection.
const PIPELINE: usize = 4;
/// The most pieces one request asks for (256 KiB of the swarm's 64 KiB pieces), within the
/// protocol's limit on chunks per `GET`.
const RUN_PIECES: u64 = 4;
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
                    report(&format!(
                        "fetching from {remote}: {e}{}",
                        if banned { "; not asking it again" } else { "" }
                    ));
                    worker_store.remote_failed(remote);
                }
                Err(e) => {
                    report(&format!("fetching from {remote}: {e}"));
                    worker_store.remote_failed(remote);
                }
            }
            for job in queue.iter().flatten() {
                worker_store.release(job);
            }
            worker_store.worker_done(remote);
        });
    if spawned.is_err() {
        store.worker_done(remote);
    }
}

/// Requests in flight, oldest first, each the pieces of it not yet delivered.
type Queue = VecDeque<VecDeque<Job>>;

fn fetch(store: &Store, remote: SocketAddr, queue: &mut Queue) -> Result<(), LinkError> {
    let mut link = Link::connect(remote, Role::Peer, TIMEOUT)?;
    let mut bufs = [Vec::new(), Vec::new()];
    // Set once a run is refused: this remote's holdings are not as listed.
    let mut one_at_a_time = false;
    loop {
        while queue.len() < PIPELINE {
            let mine: Vec<Job> = queue.iter().flatten().cloned().collect();
            let Some(job) = store.pick_rarest(remote, &mine) else {
                break;
            };
            let geometry = job.meta.geometry;
            let per_piece = geometry.piece_size().div_ceil(CHUNK_SIZE).max(1);
            let most = if one_at_a_time {
                1
            } else {
                (MAX_GET_CHUNKS / per_piece).clamp(1, RUN_PIECES) as usize
            };
            let mut run = VecDeque::from([job]);
            run.extend(store.extend_run(remote, &run[0], most - 1));
            let (first, _) = geometry.piece_chunks(run[0].piece).unwrap_or((0, 0));
            let count = run
                .iter()
                .map(|j| geometry.piece_chunks(j.piece).map_or(0, |(_, n)| n))
                .sum();
            let name = run[0].meta.name.clone();
            queue.push_back(run);
            link.send(&Request::Get { name, first, count })?;
        }
        let Some(run) = queue.front() else {
            if store.wait_for_work(remote, Duration::from_secs(1)) {
                continue;
            }
            return Ok(());
        };
        link.flush()?;
        let len = match link.reply() {
            Ok(words) => number(&words, 0)?,
            Err(LinkError::Refused(_)) => {
                let refused = queue.pop_front().unwrap_or_default();
                if refused.len() == 1 {
                    refused.iter().for_each(|job| store.not_held(remote, job));
                } else {
                    // Some piece of the run is not there, but which? Ask one by one.
                    refused.iter().for_each(|job| store.release(job));
                    one_at_a_time = true;
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        let expected: usize = run.iter().map(|j| j.span().1).sum();
        if len != expected as u64 {
            return Err(LinkError::Garbled(format!(
                "{len} bytes for pieces {}.. of {:?}, expected {expected}",
                run[0].piece, run[0].label
            )));
        }
        // Two pieces at a time, hashed side by side; each is taken off the queue as it
        // arrives and handed over on its own.
        while !queue.front().is_none_or(VecDeque::is_empty) {
            let mut got = Vec::with_capacity(2);
            for buf in bufs.iter_mut() {
                let Some(job) = queue.front_mut().and_then(VecDeque::pop_front) else {
                    break;
                };
                buf.resize(job.span().1, 0);
                // A valid header promised these bytes: a reply cut short breaks the protocol.
                if let Err(e) = link.payload(buf) {
                    let what = format!("piece {} of {:?} cut short: {e}", job.piece, job.label);
                    for job in got.iter().chain([&job]) {
                        store.release(job);
                    }
                    return Err(LinkError::Garbled(what));
                }
                got.push(job);
            }
            let delivered = match got.as_slice() {
                [a, b] => store
                    .deliver_two(remote, (a, &bufs[0]), (b, &bufs[1]))
                    .to_vec(),
                [a] => vec![store.deliver(remote, a, &bufs[0])],
                _ => Vec::new(),
            };
            for (job, delivery) in got.iter().zip(delivered) {
                if let Delivery::BadData { banned } = delivery {
                    report(&format!(
                        "piece {} of {:?} from {remote} failed its SHA-1 check",
                        job.piece, job.label
                    ));
                    if banned {
                        // Banned: the caller's strike for this error is not counted again.
                        return Ok(());
                    }
                }
            }
        }
        queue.pop_front();
    }
}
