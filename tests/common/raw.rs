//! A raw protocol connection, for fake peers and hostile input, and the few tracker
//! questions and offerer messages the tests build from it.

use std::time::{Duration, Instant};

/// A raw protocol client, for fake peers and hostile input.
pub struct Raw {
    pub stream: std::net::TcpStream,
    reader: std::io::BufReader<std::net::TcpStream>,
}

impl Raw {
    pub fn connect(addr: impl std::net::ToSocketAddrs) -> Raw {
        let stream = std::net::TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        stream.set_nodelay(true).expect("nodelay");
        let reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        Raw { stream, reader }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        self.stream.write_all(bytes).expect("send");
    }

    /// The next line without its ending, or None at EOF or on an error.
    pub fn line(&mut self) -> Option<String> {
        use std::io::BufRead;
        let mut buf = Vec::new();
        match self.reader.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(
                String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
            ),
        }
    }

    /// Exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        use std::io::Read;
        let mut buf = vec![0; n];
        self.reader.read_exact(&mut buf).expect("payload");
        buf
    }

    /// Sends one line and returns the reply line.
    pub fn call(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes());
        self.line()
            .unwrap_or_else(|| panic!("no reply to {line:?}"))
    }

    /// The lines of a `FILES` reply: `<name> <size> <generation>`.
    pub fn files(&mut self) -> Vec<String> {
        let head = self.call("FILES");
        let n: usize = head
            .split(' ')
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad FILES reply {head:?}"));
        (0..n).map(|_| self.line().expect("file line")).collect()
    }

    /// Sends `JOIN <port>` and returns the id and heartbeat token of the reply.
    pub fn join(&mut self, port: u16) -> (u64, u64) {
        let reply = self.call(&format!("JOIN {port}"));
        let words: Vec<&str> = reply.split(' ').collect();
        match words[..] {
            ["OK", id, token] => (id.parse().expect("id"), token.parse().expect("token")),
            _ => panic!("JOIN answered {reply:?}"),
        }
    }

    /// Whether the other side closed the connection (an EOF or a reset) within `limit`;
    /// false if it is still open then. Whatever it sends meanwhile is read and dropped.
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        use std::io::{ErrorKind, Read};
        let deadline = Instant::now() + limit;
        let mut sink = [0u8; 64 * 1024];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // `set_read_timeout` refuses zero, which `left` is not here.
            let _ = self.stream.set_read_timeout(Some(left));
            match self.reader.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => match e.kind() {
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => return true,
                    // A time-out (still open at the limit), or a signal: look again.
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted => {}
                    _ => return false,
                },
            }
        }
    }
}

/// Asks the tracker at `port` where the holders of `name` serve it, and which pieces they
/// show (`<id> <ip:port> <bitset>` lines).
pub fn holders(port: u16, name: &str) -> Vec<String> {
    let mut raw = Raw::connect(("127.0.0.1", port));
    assert_eq!(raw.call("HELLO p2p/1 peer"), "OK p2p/1 tracker");
    let encoded = p2p::name::encode(name);
    let Some(generation) = raw.files().into_iter().find_map(|line| {
        let mut words = line.split(' ');
        (words.next() == Some(encoded.as_str())).then(|| words.nth(1).map(str::to_string))?
    }) else {
        return Vec::new();
    };
    let head = raw.call(&format!("HOLDERS {encoded} {generation}"));
    let n: usize = head
        .strip_prefix("OK ")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    (0..n).map(|_| raw.line().expect("holder line")).collect()
}

/// The address (ip:port) where the one holder of `name` serves chunks.
pub fn holder_addr(port: u16, name: &str) -> String {
    let list = holders(port, name);
    assert_eq!(list.len(), 1, "{list:?}");
    list[0].split(' ').nth(1).expect("addr").to_string()
}

/// The `OFFER` line for a file `name` holding `data`.
pub fn offer_of(name: &str, data: &[u8]) -> Vec<u8> {
    format!("OFFER {} {}\n", p2p::name::encode(name), data.len()).into_bytes()
}

/// The `HASHED` line and raw piece hashes (64 KiB pieces) of all of `data`, as an offerer
/// sends them after `JOIN`.
pub fn hashed_of(name: &str, data: &[u8]) -> Vec<u8> {
    let hashes: Vec<u8> = data.chunks(65536).flat_map(p2p::hashing::sha1).collect();
    let count = hashes.len() / 20;
    let mut msg = format!("HASHED {} 0 {count}\n", p2p::name::encode(name)).into_bytes();
    msg.extend_from_slice(&hashes);
    msg
}

/// Serves one connection a line at a time, for fake trackers and fake peers: `answer` gets
/// each line (with its ending) and the stream to reply on, and says whether to go on. Ends
/// at EOF or a read error.
pub fn serve_lines(
    stream: std::net::TcpStream,
    mut answer: impl FnMut(&str, &mut std::net::TcpStream) -> bool,
) {
    use std::io::BufRead;
    let mut out = stream.try_clone().expect("clone");
    let mut reader = std::io::BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || !answer(&line, &mut out) {
            return;
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, for tests that hold
/// more sockets than a default soft limit of 1,024 allows.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn raise_fd_limit() {
    #[repr(C)]
    struct Rlimit {
        soft: u64,
        hard: u64,
    }
    unsafe extern "C" {
        fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut limit = Rlimit { soft: 0, hard: 0 };
    // SAFETY: `limit` is a live struct laid out as the kernel's `struct rlimit`.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } == 0 && limit.soft < limit.hard {
        limit.soft = limit.hard;
        // SAFETY: as above; the kernel only reads it.
        unsafe { setrlimit(RLIMIT_NOFILE, &limit) };
    }
}

/// Elsewhere: the limit stays as it is.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn raise_fd_limit() {}
