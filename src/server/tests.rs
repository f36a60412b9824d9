//! The accept loop's two policies at a cap of two, on real sockets: refusing newcomers, and
//! closing the idlest connection (one that never finished a line first) for them.

use super::*;
use std::io::{BufRead, Read};

/// Answers `PING` after `HELLO`.
struct Pinged;

impl LineHandler for Pinged {
    const READ_TIMEOUT: Duration = Duration::from_secs(30);

    fn greet(&mut self, _: Role) -> Result<String, Refusal> {
        Ok("OK hi".into())
    }

    fn line_deadline(&self) -> Duration {
        Duration::from_secs(30)
    }

    fn serve(&mut self, _: Request, conn: &mut Connection) -> Result<Next, String> {
        conn.reply("OK")
            .map(|()| Next::Continue)
            .map_err(|e| e.to_string())
    }
}

/// A server with room for two connections, on its own (never ending) thread.
fn server(when_full: WhenFull) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        accept_loop_with(listener, "test", 2, when_full, |stream, _| {
            serve_lines(stream, &mut Pinged);
        })
    });
    addr
}

fn connect(addr: SocketAddr) -> BufReader<TcpStream> {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    BufReader::new(s)
}

/// Sends `lines` and returns the next reply line ("" at the end of the stream).
fn call(conn: &mut BufReader<TcpStream>, lines: &str) -> String {
    let _ = conn.get_ref().write_all(lines.as_bytes());
    let mut reply = String::new();
    let _ = conn.read_line(&mut reply);
    reply.trim_end().to_string()
}

/// Whether the server closed `conn` (EOF or a reset), waiting at most its read timeout.
fn closed(conn: &mut BufReader<TcpStream>) -> bool {
    let mut sink = [0; 64];
    matches!(conn.read(&mut sink), Ok(0) | Err(_))
}

#[test]
fn beyond_the_cap_a_refusing_server_answers_err_busy() {
    let addr = server(WhenFull::Refuse);
    let mut a = connect(addr);
    assert_eq!(call(&mut a, "HELLO p2p/1 peer\n"), "OK hi");
    let _silent = connect(addr);
    let mut late = connect(addr);
    assert_eq!(call(&mut late, ""), "ERR busy");
    assert_eq!(call(&mut a, "PING\n"), "OK");
}

#[test]
fn beyond_the_cap_the_idlest_connection_makes_room() {
    let addr = server(WhenFull::EvictIdlest);
    let mut talked = connect(addr);
    assert_eq!(call(&mut talked, "HELLO p2p/1 peer\n"), "OK hi");
    let mut silent = connect(addr);
    // The newcomer is served; the one that never finished a line goes, not the older one.
    let mut newcomer = connect(addr);
    // One line per call: a reply left unread would answer the next call early, before the
    // server has read (and stamped) the line that call sends.
    assert_eq!(call(&mut newcomer, "HELLO p2p/1 peer\n"), "OK hi");
    assert!(closed(&mut silent), "the silent connection is still open");
    assert_eq!(call(&mut talked, "PING\n"), "OK");
    // Now both have talked: the one whose last line is oldest goes.
    assert_eq!(call(&mut newcomer, "PING\n"), "OK");
    let mut third = connect(addr);
    assert_eq!(call(&mut third, "HELLO p2p/1 peer\n"), "OK hi");
    assert!(closed(&mut talked), "the idlest connection is still open");
    assert_eq!(call(&mut newcomer, "PING\n"), "OK");
}

#[test]
fn a_connection_silent_from_its_accept_gets_err_too_slow() {
    let addr = server(WhenFull::Refuse);
    let mut silent = connect(addr);
    let started = Instant::now();
    assert_eq!(call(&mut silent, ""), "ERR too_slow");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(2500), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

#[test]
fn a_first_line_that_is_no_valid_hello_gets_err_and_a_close() {
    let addr = server(WhenFull::Refuse);
    let mut conn = connect(addr);
    assert!(call(&mut conn, "HELLO p2p/2 peer\n").starts_with("ERR bad_hello"));
    assert!(closed(&mut conn), "still open after a bad HELLO");
}
