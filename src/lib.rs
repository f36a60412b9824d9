//! p2p: a BitTorrent-style peer-to-peer file-sharing system. One binary, three roles: the
//! tracker, the automatic swarm peer, and the interactive client. The modules are rooms by
//! concern; each only calls the rooms below it (README, "Layout", lists them in that order).
//! Only what the integration tests use is public.

pub mod account_name;
mod atomic_file;
pub mod chunk;
pub(crate) mod cli;
pub(crate) mod client;
pub(crate) mod error;
pub mod hashing;
pub(crate) mod link;
pub(crate) mod metainfo;
pub mod name;
pub(crate) mod output;
pub mod password;
pub(crate) mod peer;
pub mod protocol;
pub(crate) mod rng;
pub(crate) mod sendfile;
pub(crate) mod server;
pub(crate) mod signals;
pub(crate) mod tracker;
pub mod wire;

use cli::Command;
use error::Error;

/// Runs the command line `args` (without the program name).
pub fn run(args: &[String]) -> Result<(), Error> {
    match cli::parse(args)? {
        Command::Help(text) => {
            println!("{}", text.unwrap_or(cli::USAGE));
            Ok(())
        }
        Command::Version => {
            let sha1 = hashing::backend().name();
            println!("p2p {} (sha1: {sha1})", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Tracker => tracker::run_grading().map_err(|e| Error::failed("tracker", e)),
        Command::Peer { tracker, min_alive } => peer::run(tracker, min_alive),
        Command::PairTracker {
            me,
            twin,
            state,
            log,
        } => tracker::run_pair(me, twin, &state, &log).map_err(|e| Error::failed("tracker", e)),
        Command::Client { me, trackers, log } => client::run(me, trackers, log),
    }
}
