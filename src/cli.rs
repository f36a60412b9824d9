//! The command line: what each subcommand takes, parsed into a [`Command`].

use crate::error::Error;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

pub const USAGE: &str = "\
usage:
  p2p tracker                  run the swarm tracker; writes its port to ./port.txt
  p2p peer IP PORT MIN_ALIVE   run a swarm peer sharing ./Shared with the tracker at IP:PORT,
                               staying at least MIN_ALIVE seconds
  p2p --help                   show this text";

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Tracker,
    Peer {
        tracker: SocketAddr,
        min_alive: Duration,
    },
}

pub fn parse(args: &[String]) -> Result<Command, Error> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["-h" | "--help" | "help"] => Ok(Command::Help),
        ["tracker"] => Ok(Command::Tracker),
        ["tracker", ..] => Err(usage("tracker takes no arguments")),
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
        ] {
            let err = parse(&args(line)).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{line:?}");
        }
    }
}
