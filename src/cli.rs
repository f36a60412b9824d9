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
  p2p --help                   show this text; p2p COMMAND --help shows one command's help";

const TRACKER_HELP: &str = "\
usage: p2p tracker
  The swarm tracker: binds 0.0.0.0 on a port the OS picks, writes that port to ./port.txt,
  and prints each peer's CONNECT, ACQUIRED and DISCONNECT blocks on stdout until killed
  (diagnostics go to stderr).

usage: p2p tracker MY_ADDR OTHER_ADDR STATE_FILE LOG_FILE
  One of the two trackers the interactive client uses: serves at MY_ADDR (ip:port), keeps
  its records in sync with its twin at OTHER_ADDR, in STATE_FILE (reloaded at start), and
  writes what it did to LOG_FILE.";

const PEER_HELP: &str = "\
usage: p2p peer IP PORT MIN_ALIVE
  A swarm peer: shares every file in ./Shared with the tracker at IP:PORT (the port is in the
  tracker's port.txt), fetches every other peer's files into ./Shared, and leaves once the
  swarm is complete and at least MIN_ALIVE seconds (like 5 or 0.5) have passed, printing its
  SHUTDOWN block on stdout.";

const CLIENT_HELP: &str = "\
usage: p2p client MY_ADDR TRACKER1 [TRACKER2] [LOG_FILE]
  The interactive client: serves its files to others at MY_ADDR (ip:port), uses the tracker
  pair at TRACKER1 and TRACKER2 (ip:port; the second when the first is down), and appends
  what it did to LOG_FILE. It reads one command a line from stdin (type help for the list)
  and keeps its state in ./.p2p-client-PORT.";

#[derive(Debug, PartialEq)]
pub enum Command {
    /// The whole usage, or (with a subcommand) that command's help.
    Help(Option<&'static str>),
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

/// Parses `args`; an argument error is one line that ends with where to read more.
pub fn parse(args: &[String]) -> Result<Command, Error> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    parse_words(&words).map_err(|e| match e {
        Error::Usage(what) => {
            let more = match words.first() {
                Some(&c) if help_of(c).is_some() => format!("p2p {c} --help"),
                _ => "p2p --help".to_string(),
            };
            Error::Usage(format!("p2p: {what} (try {more})"))
        }
        other => other,
    })
}

fn parse_words(words: &[&str]) -> Result<Command, Error> {
    if let Some(&first) = words.first()
        && words[1..].iter().any(|w| matches!(*w, "-h" | "--help"))
    {
        return Ok(Command::Help(help_of(first)));
    }
    match words {
        ["-h" | "--help" | "help"] => Ok(Command::Help(None)),
        ["help", command] => Ok(Command::Help(help_of(command))),
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

/// The help of `command`, or None (the whole usage) when it is no subcommand.
fn help_of(command: &str) -> Option<&'static str> {
    match command {
        "tracker" => Some(TRACKER_HELP),
        "peer" => Some(PEER_HELP),
        "client" => Some(CLIENT_HELP),
        _ => None,
    }
}

/// An argument error, in one line ([`parse`] adds where to read more).
fn usage(what: &str) -> Error {
    Error::Usage(what.to_string())
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
    fn help_anywhere_after_a_command_is_that_command_s_help() {
        assert_eq!(parse(&args("--help")).unwrap(), Command::Help(None));
        assert_eq!(
            parse(&args("peer 1 --help")).unwrap(),
            Command::Help(Some(PEER_HELP))
        );
        assert_eq!(
            parse(&args("help tracker")).unwrap(),
            Command::Help(Some(TRACKER_HELP))
        );
        assert_eq!(parse(&args("bogus -h")).unwrap(), Command::Help(None));
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
