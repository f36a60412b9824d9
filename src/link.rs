//! The calling side of a connection: say `HELLO`, send requests, read `OK`/`ERR` replies
//! and raw payloads. Used by a peer to talk to the tracker and to other peers.

use crate::protocol::{Reply, Request, Role};
use crate::wire::{self, LineError};
use std::fmt;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

#[derive(Debug)]
pub enum LinkError {
    Io(io::Error),
    /// The other side answered `ERR <reason>`.
    Refused(String),
    /// The other side answered something that is not a valid reply.
    Garbled(String),
}

impl fmt::Display for LinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "{e}"),
            LinkError::Refused(r) => write!(f, "refused: {r}"),
            LinkError::Garbled(l) => write!(f, "unexpected reply {l:?}"),
        }
    }
}

impl std::error::Error for LinkError {}

impl From<io::Error> for LinkError {
    fn from(e: io::Error) -> LinkError {
        LinkError::Io(e)
    }
}

impl From<LineError> for LinkError {
    fn from(e: LineError) -> LinkError {
        LinkError::Io(e.into())
    }
}

pub struct Link {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    buf: Vec<u8>,
}

impl Link {
    /// Connects, greets as `role`, and checks the greeting back.
    pub fn connect(addr: SocketAddr, role: Role, timeout: Duration) -> Result<Link, LinkError> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut link = Link {
            // Smaller than a piece, so BufReader reads most of a payload straight into the
            // caller's buffer instead of copying it through its own.
            reader: BufReader::with_capacity(16 * 1024, stream.try_clone()?),
            writer: BufWriter::with_capacity(64 * 1024, stream),
            buf: Vec::new(),
        };
        link.call(&Request::Hello { role })?;
        Ok(link)
    }

    /// Ends the connection both ways (the other side sees it closed).
    pub fn close(&self) {
        let _ = self.writer.get_ref().shutdown(std::net::Shutdown::Both);
    }

    pub fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        self.writer.get_ref().set_read_timeout(Some(timeout))
    }

    /// Queues a request without flushing (for pipelining).
    pub fn send(&mut self, req: &Request) -> io::Result<()> {
        wire::write_line(&mut self.writer, &req.to_string())
    }

    /// Queues a request followed by a raw payload.
    pub fn send_with(&mut self, req: &Request, payload: &[u8]) -> io::Result<()> {
        self.send(req)?;
        self.writer.write_all(payload)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Reads one reply line: the words after `OK`, or the reason of an `ERR`.
    pub fn reply(&mut self) -> Result<Vec<String>, LinkError> {
        let line = wire::read_line(&mut self.reader, &mut self.buf)?;
        match Reply::parse(line) {
            Some(Reply::Ok(words)) => Ok(words),
            Some(Reply::Err(reason)) => Err(LinkError::Refused(reason)),
            None => Err(LinkError::Garbled(line.chars().take(80).collect())),
        }
    }

    /// Sends one request and reads its reply line.
    pub fn call(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        self.send(req)?;
        self.flush()?;
        self.reply()
    }

    /// Reads the `n` lines that follow a reply's first line.
    pub fn lines(&mut self, n: u64) -> Result<Vec<String>, LinkError> {
        let mut lines = Vec::new();
        for _ in 0..n {
            lines.push(wire::read_line(&mut self.reader, &mut self.buf)?.to_string());
        }
        Ok(lines)
    }

    /// Sends a request whose reply is `OK` with a line count in word `count_at` of its
    /// words, followed by that many lines: the reply's words and the lines.
    pub fn call_list(
        &mut self,
        req: &Request,
        count_at: usize,
    ) -> Result<(Vec<String>, Vec<String>), LinkError> {
        let words = self.call(req)?;
        let lines = self.lines(number(&words, count_at)?)?;
        Ok((words, lines))
    }

    /// Reads exactly `buf.len()` payload bytes.
    pub fn payload(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.reader.read_exact(buf)
    }
}

/// Parses reply word `i` as a number, or says what was wrong.
pub fn number(words: &[String], i: usize) -> Result<u64, LinkError> {
    words
        .get(i)
        .and_then(|w| crate::protocol::parse_u64("reply", w).ok())
        .ok_or_else(|| LinkError::Garbled(words.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::thread;

    /// A node that greets, then answers every request line with `reply`.
    fn answering(reply: &'static str) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut writer = stream.try_clone().unwrap();
            let mut lines = BufReader::new(stream).lines();
            writer.write_all(b"OK p2p/1 peer\n").unwrap();
            while let Some(Ok(_)) = lines.next() {
                writer.write_all(reply.as_bytes()).unwrap();
            }
        });
        addr
    }

    #[test]
    fn a_list_reply_returns_its_head_and_as_many_lines_as_it_says() {
        let addr = answering("OK 7 2\nfirst line\nsecond line\n");
        let mut link = Link::connect(addr, Role::Peer, Duration::from_secs(5)).unwrap();
        let (head, lines) = link.call_list(&Request::Files, 1).unwrap();
        assert_eq!(head, ["7", "2"]);
        assert_eq!(lines, ["first line", "second line"]);
    }

    #[test]
    fn a_list_reply_without_its_count_is_garbled() {
        let addr = answering("OK\n");
        let mut link = Link::connect(addr, Role::Peer, Duration::from_secs(5)).unwrap();
        let got = link.call_list(&Request::Files, 0);
        assert!(matches!(got, Err(LinkError::Garbled(_))), "{got:?}");
    }
}
