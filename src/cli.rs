//! The command line: what each subcommand takes, parsed into a [`Command`].

use crate::error::Error;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage:
  p2p tracker                  run the swarm tracker; writes its port to ./port.txt
  p2p peer IP PORT MIN_ALIVE   run a swarm peer sharing ./Shared with the tracker at IP:PORT,
                               staying at least MIN_ALIVE seconds
  p2p tracker MY_ADDR OTHER_ADDR STATE_FILE LOG_FILE
                               run one of two trackers kept in sync (addresses are ip:port)
  p2p client MY_ADDR TRACKER1 [TRACKER2] [LOG_FILE]
                               run the interactive client, serving others at MY_ADDR
  p2p --version                show the version and which SHA-1 backend this CPU uses
  p2p --help                   show this text";

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Tracker,
    Peer {
        tracker: SocketAddr,
        min_alive: Duration,
    },
    PairTracker {
        me: SocketAddr,
        twin: SocketAddr,
        state: PathBuf,
        log: PathBuf,
    },
    Client {
        me: SocketAddr,
        trackers: Vec<SocketAddr>,
        log: Option<PathBuf>,
    },
}

pub fn parse(args: &[String]) -> Result<Command, Error> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-h" | "--help" | "help"] => Ok(Command::Help),
        ["-V" | "--version" | "version"] => Ok(Command::Version),
        ["tracker"] => Ok(Command::Tracker),
        ["tracker", me, twin, state, log] => Ok(Command::PairTracker {
            me: addr(me)?,
            twin: addr(twin)?,
            state: PathBuf::from(state),
            log: PathBuf::from(log),
        }),
        ["tracker", ..] => Err(usage(
            "tracker takes no arguments, or MY_ADDR OTHER_ADDR STATE_FILE LOG_FILE",
        )),
        ["client", me, rest @ ..] if (1..=3).contains(&rest.len()) => {
            let mut trackers = vec![addr(rest[0])?];
            let mut log = None;
            match rest.get(1) {
                Some(second) if looks_like_addr(second) => {
                    trackers.push(addr(second)?);
                    log = rest.get(2).map(PathBuf::from);
                }
                Some(file) if rest.len() == 2 => log = Some(PathBuf::from(file)),
                Some(_) => {
                    return Err(usage("client takes MY_ADDR TRACKER1 [TRACKER2] [LOG_FILE]"));
                }
                None => {}
            }
            Ok(Command::Client {
                me: addr(me)?,
                trackers,
                log,
            })
        }
        ["client", ..] => Err(usage("client takes MY_ADDR TRACKER1 [TRACKER2] [LOG_FILE]")),
        ["peer", ip, port, min_alive] => Ok(Command::Peer {
            tracker: tracker_addr(ip, port)?,
            min_alive: seconds(min_alive)?,
        }),
        ["peer", ..] => Err(usage("peer takes IP PORT MIN_ALIVE")),
        [] => Err(usage("no command given")),
        [other, ..] => Err(usage(&format!("unknown command {other:?}"))),
    }
}

fn usage(what: &str) -> Error {
    Error::Usage(format!("p2p: {what}\n{USAGE}"))
}

/// Whether `word` ends in `:<port>`, so it names a tracker rather than a log file.
fn looks_like_addr(word: &str) -> bool {
    word.rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
}

/// An `ip:port` word, as the pair trackers and the client take them.
fn addr(word: &str) -> Result<SocketAddr, Error> {
    let (ip, port) = word
        .rsplit_once(':')
        .ok_or_else(|| usage(&format!("{word:?} is not ip:port")))?;
    tracker_addr(ip.trim_start_matches('[').trim_end_matches(']'), port)
}

fn tracker_addr(ip: &str, port: &str) -> Result<SocketAddr, Error> {
    let port: u16 = port
        .parse()
        .ok()
        .filter(|&p| p != 0 && port.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| usage(&format!("bad port {port:?}")))?;
    let mut addrs = (ip, port)
        .to_socket_addrs()
        .map_err(|e| Error::failed(format!("cannot resolve {ip:?}"), e))?;
    addrs
        .next()
        .ok_or_else(|| Error::Failed(format!("no address for {ip:?}")))
}

/// A non-negative number of seconds; fractions are allowed.
fn seconds(word: &str) -> Result<Duration, Error> {
    word.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9 && !word.starts_with('+'))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| usage(&format!("bad MIN_ALIVE {word:?}: want seconds, like 5")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn good_command_lines_parse() {
        assert_eq!(parse(&args("tracker")).unwrap(), Command::Tracker);
        assert_eq!(
            parse(&args("peer 127.0.0.1 4000 1.5")).unwrap(),
            Command::Peer {
                tracker: "127.0.0.1:4000".parse().unwrap(),
                min_alive: Duration::from_millis(1500),
            }
        );
    }

    #[test]
    fn pair_trackers_and_clients_parse() {
        let a: SocketAddr = "127.0.0.1:7001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:7002".parse().unwrap();
        assert!(matches!(
            parse(&args("tracker 127.0.0.1:7001 127.0.0.1:7002 s.txt l.txt")).unwrap(),
            Command::PairTracker { me, twin, .. } if me == a && twin == b
        ));
        let client = |line: &str| match parse(&args(line)).unwrap() {
            Command::Client { trackers, log, .. } => (trackers, log),
            other => panic!("{other:?}"),
        };
        assert_eq!(client("client 127.0.0.1:1 127.0.0.1:7001"), (vec![a], None));
        assert_eq!(
            client("client 127.0.0.1:1 127.0.0.1:7001 127.0.0.1:7002"),
            (vec![a, b], None)
        );
        assert_eq!(
            client("client 127.0.0.1:1 127.0.0.1:7001 127.0.0.1:7002 c.log"),
            (vec![a, b], Some(PathBuf::from("c.log")))
        );
        assert_eq!(
            client("client 127.0.0.1:1 127.0.0.1:7001 c.log"),
            (vec![a], Some(PathBuf::from("c.log")))
        );
    }

    #[test]
    fn bad_command_lines_are_usage_errors() {
        for line in [
            "",
            "tracker x",
            "peer",
            "peer 127.0.0.1 4000",
            "peer 127.0.0.1 0 1",
            "peer 127.0.0.1 65536 1",
            "peer 127.0.0.1 +80 1",
            "peer 127.0.0.1 80 -1",
            "peer 127.0.0.1 80 NaN",
            "peer 127.0.0.1 80 1 extra",
            "seed",
            "tracker 127.0.0.1:1 127.0.0.1:2 s",
            "tracker 127.0.0.1 127.0.0.1:2 s l",
            "client",
            "client 127.0.0.1:1",
            "client 127.0.0.1:1 127.0.0.1:2 127.0.0.1:3 log extra",
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line:?}");
        }
    }
}
