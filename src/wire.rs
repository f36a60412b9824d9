//! Reading and writing the line protocol on a byte stream: bounded lines, raw payloads.
//!
//! A line ends with `\n` (a `\r` before it is dropped) and holds at most [`MAX_LINE`] bytes.
//! A longer line means the stream can no longer be trusted: the reader reports
//! [`LineError::TooLong`] after discarding nothing more than the bound, and the caller closes
//! the connection.

use std::fmt;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// The longest line either side accepts, newline excluded.
pub const MAX_LINE: usize = 64 * 1024;

#[derive(Debug)]
pub enum LineError {
    /// The stream ended cleanly before any byte of a new line.
    Eof,
    /// The line is longer than the bound; the stream is no longer in sync.
    TooLong,
    /// The line is not UTF-8; the stream is still in sync.
    NotUtf8,
    /// The line did not arrive in full before its deadline (a sender trickling bytes).
    TooSlow,
    Io(io::Error),
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LineError::Eof => write!(f, "connection closed"),
            LineError::TooLong => write!(f, "line longer than {MAX_LINE} bytes"),
            LineError::NotUtf8 => write!(f, "line is not UTF-8"),
            LineError::TooSlow => write!(f, "line not finished in time"),
            LineError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for LineError {}

impl From<io::Error> for LineError {
    fn from(e: io::Error) -> LineError {
        LineError::Io(e)
    }
}

impl From<LineError> for io::Error {
    fn from(e: LineError) -> io::Error {
        match e {
            LineError::Io(e) => e,
            LineError::Eof => io::Error::new(io::ErrorKind::UnexpectedEof, e.to_string()),
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// Reads one line into `buf` (cleared first) and returns it without its ending.
pub fn read_line<'a, R: BufRead>(r: &mut R, buf: &'a mut Vec<u8>) -> Result<&'a str, LineError> {
    read_line_by(r, buf, None)
}

/// Like [`read_line`], but fails with [`LineError::TooSlow`] once `deadline` has passed and
/// the line is still not complete. Each read can still block for the stream's own timeout.
pub fn read_line_by<'a, R: BufRead>(
    r: &mut R,
    buf: &'a mut Vec<u8>,
    deadline: Option<Instant>,
) -> Result<&'a str, LineError> {
    read_line_checked(r, buf, |_| match deadline {
        Some(d) if Instant::now() > d => Err(LineError::TooSlow),
        _ => Ok(()),
    })
}

/// Like [`read_line_by`] on a socket, where no read blocks past `deadline` either: the
/// line is in by then or [`LineError::TooSlow`], however silent the other side. (The read
/// timeout is left as the last read set it.)
pub fn read_line_on_time<'a>(
    r: &mut BufReader<TcpStream>,
    buf: &'a mut Vec<u8>,
    deadline: Instant,
) -> Result<&'a str, LineError> {
    let line = read_line_checked(r, buf, |r| {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(LineError::TooSlow);
        }
        // Only data that has not arrived yet waits on the socket.
        if r.buffer().is_empty() {
            r.get_ref().set_read_timeout(Some(left))?;
        }
        Ok(())
    });
    match line {
        Err(LineError::Io(e)) if is_timeout(&e) => Err(LineError::TooSlow),
        other => other,
    }
}

/// Whether a read or write failed for its time-out.
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Reads one line, asking `before_read` before each read whether to go on.
fn read_line_checked<'a, R: BufRead>(
    r: &mut R,
    buf: &'a mut Vec<u8>,
    mut before_read: impl FnMut(&mut R) -> Result<(), LineError>,
) -> Result<&'a str, LineError> {
    buf.clear();
    loop {
        before_read(r)?;
        let avail = match r.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if avail.is_empty() {
            if buf.is_empty() {
                return Err(LineError::Eof);
            }
            return Err(LineError::Io(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the middle of a line",
            )));
        }
        let (take, done) = match avail.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (avail.len(), false),
        };
        if buf.len() + take > MAX_LINE + 2 {
            return Err(LineError::TooLong);
        }
        buf.extend_from_slice(&avail[..take]);
        r.consume(take);
        if done {
            break;
        }
    }
    buf.pop();
    if buf.last() == Some(&b'\r') {
        buf.pop();
    }
    if buf.len() > MAX_LINE {
        return Err(LineError::TooLong);
    }
    std::str::from_utf8(buf).map_err(|_| LineError::NotUtf8)
}

/// Reads exactly `len` raw bytes that follow a header line.
pub fn read_payload<R: Read>(r: &mut R, len: usize) -> io::Result<Vec<u8>> {
    let mut data = vec![0; len];
    r.read_exact(&mut data)?;
    Ok(data)
}

/// Ends a connection after a final `ERR`: stops sending, then reads and discards what the
/// other side is still sending, for a bounded time and amount, so that closing does not reset
/// the connection before the other side has read the `ERR`.
pub fn close_gracefully(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(250)));
    let started = Instant::now();
    let mut sink = [0u8; 64 * 1024];
    let mut drained = 0usize;
    let mut reader = stream;
    while started.elapsed() < Duration::from_secs(2) && drained < 64 << 20 {
        match reader.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

/// Flushes the replies queued in `writer` unless another whole request is already waiting
/// in `reader`: pipelined requests are then answered in one write. Part of a line is not a
/// request: reading the rest of it may block, and the replies must not wait for it.
pub fn flush_if_idle<R: Read, W: Write>(reader: &BufReader<R>, writer: &mut W) -> io::Result<()> {
    if !reader.buffer().contains(&b'\n') {
        writer.flush()?;
    }
    Ok(())
}

/// Sends a last line (an `ERR` saying why) and ends the connection with
/// [`close_gracefully`].
pub fn close_with(writer: &mut io::BufWriter<TcpStream>, last: &str) {
    let _ = write_line(writer, last).and_then(|()| writer.flush());
    close_gracefully(writer.get_ref());
}

/// Writes `line` and a newline.
pub fn write_line<W: Write>(w: &mut W, line: &str) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    w.write_all(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out one byte per read, like a peer writing byte by byte.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }

    #[test]
    fn replies_wait_for_a_whole_pipelined_request_never_for_part_of_one() {
        // A writer that says whether it was flushed.
        struct Flushed(bool);
        impl Write for Flushed {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                self.0 = true;
                Ok(())
            }
        }
        // What is buffered after `PING\n` was read: a whole next line, part of one, nothing.
        for (input, flushed) in [
            (&b"PING\nPING\n"[..], false),
            (b"PING\nPIN", true),
            (b"PING\n", true),
        ] {
            let mut r = BufReader::new(input);
            let mut line = Vec::new();
            read_line(&mut r, &mut line).unwrap();
            let mut w = Flushed(false);
            flush_if_idle(&r, &mut w).unwrap();
            assert_eq!(w.0, flushed, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn lines_split_into_single_bytes_or_crlf_parse_the_same() {
        let input = b"PING\r\nFILES\n\nGET a 0 1\n";
        let mut r = BufReader::new(Trickle(input));
        let mut buf = Vec::new();
        let mut got = Vec::new();
        loop {
            match read_line(&mut r, &mut buf) {
                Ok(l) => got.push(l.to_string()),
                Err(LineError::Eof) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(got, ["PING", "FILES", "", "GET a 0 1"]);
    }

    #[test]
    fn an_overlong_line_is_refused_without_reading_it_all() {
        let input = vec![b'x'; MAX_LINE * 4];
        let mut r = BufReader::new(&input[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf),
            Err(LineError::TooLong)
        ));
        assert!(buf.len() <= MAX_LINE + 2 + 8192);
    }

    #[test]
    fn a_line_past_its_deadline_is_too_slow() {
        let mut r = BufReader::new(Trickle(b"PING\n"));
        let mut buf = Vec::new();
        let past = Some(Instant::now() - Duration::from_millis(1));
        assert!(matches!(
            read_line_by(&mut r, &mut buf, past),
            Err(LineError::TooSlow)
        ));
    }

    #[test]
    fn non_utf8_is_reported_and_the_next_line_still_reads() {
        let mut r = BufReader::new(&b"\xff\xfe\nPING\n"[..]);
        let mut buf = Vec::new();
        assert!(matches!(
            read_line(&mut r, &mut buf),
            Err(LineError::NotUtf8)
        ));
        assert_eq!(read_line(&mut r, &mut buf).unwrap(), "PING");
    }
}
