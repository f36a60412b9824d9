//! One connection to the tracker: read a request line, answer it, repeat. A bad request
//! gets `ERR <reason>` and the connection stays open while the stream is still in sync; an
//! overlong line, a line too slow to arrive, or a `HASHED` whose hashes do not arrive closes
//! it. A peer whose connection closes without `LEAVE` is dropped from the swarm.
//!
//! Liveness: a joined peer keeps a second connection that only carries `BEAT` lines, sent
//! every second by a thread with nothing else to do. While it speaks, silence on the request
//! connection means the peer is busy, not dead; when it falls silent for [`HEARTBEAT_TTL`] or
//! closes, the peer is dropped, and its request connection is closed at its next request
//! (after `ERR not_joined`), so that it knows. A peer without one is dropped after that long
//! a silence on its request connection.

use super::swarm::{Leave, PeerId, Standing, Swarm};
use crate::chunk::Geometry;
use crate::name;
use crate::protocol::{Request, Role, VERSION};
use crate::wire::{self, LineError};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A peer not heard from for this long is taken for dead (heartbeats come every second).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
/// A request line must arrive in full within this time, however slowly its bytes trickle.
pub const LINE_DEADLINE: Duration = Duration::from_secs(10);
/// The read time-out and line deadline on the request connection of a peer whose heartbeats
/// come: a peer busy on a saturated machine may stall in the middle of a request.
const PATIENT: Duration = Duration::from_secs(30);
/// The most offers one connection may stage before `JOIN`.
const MAX_STAGED_OFFERS: usize = 65_536;
/// The most pieces (summed over its files) one connection may offer: 256 GiB of files, whose
/// holdings take 512 KiB of bitsets.
const MAX_STAGED_PIECES: u64 = 4 << 20;

/// How one connection ended, for the log line.
enum End {
    Closed,
    Left,
    Broken(String),
}

pub fn handle(stream: TcpStream, from: SocketAddr, swarm: &Swarm) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(HEARTBEAT_TTL));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut conn = Conn {
        reader: BufReader::new(read_half),
        writer: BufWriter::new(stream),
        from,
        swarm,
        joined: None,
        beat_for: None,
        staged: Vec::new(),
        staged_pieces: 0,
        refused: Vec::new(),
        patient: false,
    };
    let end = conn.run();
    let _ = conn.writer.flush();
    if let End::Broken(_) = end {
        wire::close_gracefully(conn.writer.get_ref());
    }
    let Some(id) = conn.joined.or(conn.beat_for) else {
        return;
    };
    if !matches!(end, End::Left) && swarm.drop_peer(id) {
        let why = match end {
            End::Broken(why) => why,
            _ if conn.beat_for.is_some() => "its heartbeat connection closed".into(),
            _ => "connection closed".into(),
        };
        eprintln!("tracker: peer {id} at {from} dropped without goodbye: {why}");
    }
}

struct Conn<'a> {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    from: SocketAddr,
    swarm: &'a Swarm,
    /// The peer that joined on this connection.
    joined: Option<PeerId>,
    /// The peer this connection carries heartbeats for.
    beat_for: Option<PeerId>,
    staged: Vec<(String, Geometry)>,
    staged_pieces: u64,
    /// Names whose offer was refused before `JOIN` (taken by other content).
    refused: Vec<String>,
    /// Whether the joined peer's heartbeats come, so that this connection may wait longer.
    patient: bool,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Conn<'_> {
    fn run(&mut self) -> End {
        let mut buf = Vec::new();
        let mut greeted = false;
        loop {
            let deadline =
                Some(Instant::now() + if self.patient { PATIENT } else { LINE_DEADLINE });
            let read = wire::read_line_by(&mut self.reader, &mut buf, deadline)
                .map(|line| Request::parse(line).map_err(|e| e.to_string()));
            let request = match read {
                Ok(request) => request,
                Err(LineError::Eof) => return End::Closed,
                Err(LineError::NotUtf8) => Err("not_utf8".to_string()),
                Err(LineError::TooLong) => {
                    let _ = self.reply(&format!("ERR line_too_long max {}", wire::MAX_LINE));
                    return End::Broken("line too long".into());
                }
                Err(LineError::TooSlow) => {
                    let _ = self.reply("ERR too_slow");
                    return End::Broken("line not finished in time".into());
                }
                // Silence between requests from a peer whose heartbeats still come: busy.
                Err(LineError::Io(e))
                    if is_timeout(&e) && buf.is_empty() && self.standing() == Standing::Beating =>
                {
                    continue;
                }
                Err(LineError::Io(e)) if is_timeout(&e) && self.beat_for.is_some() => {
                    return End::Broken(format!("no heartbeat for {} s", HEARTBEAT_TTL.as_secs()));
                }
                Err(LineError::Io(e)) if is_timeout(&e) => {
                    let waited = if self.patient { PATIENT } else { HEARTBEAT_TTL };
                    return End::Broken(format!("silent for {} s", waited.as_secs()));
                }
                Err(LineError::Io(e)) => return End::Broken(e.to_string()),
            };
            let outcome = match request {
                Err(reason) => self.reply(&format!("ERR {reason}")),
                Ok(Request::Hello { role }) if !greeted => {
                    greeted = true;
                    if role == Role::Tracker {
                        let _ = self.reply("ERR unsupported_role tracker");
                        return End::Broken("tracker sync is not served here".into());
                    }
                    self.reply(&format!("OK {VERSION} tracker"))
                }
                Ok(_) if !greeted => {
                    let _ = self.reply("ERR hello_first");
                    return End::Broken("no HELLO".into());
                }
                Ok(req) => match self.serve(req) {
                    Ok(Step::Continue) => Ok(()),
                    Ok(Step::Left) => return End::Left,
                    Err(Fatal(why)) => return End::Broken(why),
                },
            };
            if let Err(e) = outcome {
                return End::Broken(e.to_string());
            }
        }
    }

    /// Where the peer that joined on this connection stands now (`Joined` if none did), and
    /// the patience its heartbeats earn it.
    fn standing(&mut self) -> Standing {
        let Some(id) = self.joined else {
            return Standing::Joined;
        };
        let standing = self.swarm.standing(id);
        if standing == Standing::Beating && !self.patient {
            self.patient = true;
            let _ = self.reader.get_ref().set_read_timeout(Some(PATIENT));
        }
        standing
    }

    fn serve(&mut self, req: Request) -> Result<Step, Fatal> {
        if self.standing() == Standing::Gone {
            // Dropped (its heartbeats stopped): say so and close, so that the peer knows.
            let _ = self.reply("ERR not_joined you were dropped: no heartbeat");
            return Err(Fatal("dropped, and told so".into()));
        }
        if let Some(id) = self.beat_for {
            let reply = match req {
                Request::Beat { id: i, .. } if i == id => "OK".to_string(),
                Request::Ping => "OK".to_string(),
                _ => "ERR heartbeat_connection BEAT and PING only".to_string(),
            };
            self.reply(&reply).map_err(|e| Fatal(e.to_string()))?;
            return Ok(Step::Continue);
        }
        let reply = match req {
            Request::Hello { .. } => "ERR hello_twice".to_string(),
            Request::Ping => "OK".to_string(),
            Request::Offer { name, size } => self.offer(name, size),
            Request::Join { port } => match self.joined {
                Some(_) => "ERR already_joined".to_string(),
                None => {
                    let addr = SocketAddr::new(self.from.ip(), port);
                    let token = crate::rng::random_u64();
                    let offers = std::mem::take(&mut self.staged);
                    let refused = std::mem::take(&mut self.refused);
                    match self.swarm.join(addr, offers, refused, token) {
                        Ok((id, printed)) => {
                            self.joined = Some(id);
                            // The CONNECT block is on stdout before the peer hears its id.
                            printed.wait();
                            format!("OK {id} {token}")
                        }
                        Err(e) => format!("ERR {e}"),
                    }
                }
            },
            Request::Beat { id, token } => {
                if self.joined.is_some() || !self.staged.is_empty() {
                    "ERR beat_on_own_connection".to_string()
                } else {
                    match self.swarm.attach_beat(id, token) {
                        Ok(()) => {
                            self.beat_for = Some(id);
                            "OK".to_string()
                        }
                        Err(e) => format!("ERR {e}"),
                    }
                }
            }
            Request::Hashed { name, first, count } => {
                let block = wire::read_payload(&mut self.reader, count as usize * 20)
                    .map_err(|e| Fatal(e.to_string()))?;
                let hashes = crate::hashing::hashes_from_block(&block).unwrap_or_default();
                match self.joined {
                    None => "ERR join_first".to_string(),
                    Some(id) => match self.swarm.hashed(id, &name, first, &hashes) {
                        Ok(version) => format!("OK {version}"),
                        Err(e) => format!("ERR {e}"),
                    },
                }
            }
            Request::Files => {
                let (version, files) = self.swarm.files();
                let mut out = format!("OK {version} {}\n", files.len());
                for f in &files {
                    out.push_str(&format!(
                        "{} {} {}\n",
                        name::encode(&f.name),
                        f.size,
                        f.generation
                    ));
                }
                out.pop();
                out
            }
            Request::Hashes {
                name,
                generation,
                from,
            } => match self.swarm.hashes(&name, generation, from) {
                Err(e) => format!("ERR {e}"),
                Ok(hashes) => {
                    let head = format!("OK {}", hashes.len());
                    self.reply_with(&head, &hashes.concat())
                        .map_err(|e| Fatal(e.to_string()))?;
                    return Ok(Step::Continue);
                }
            },
            Request::Holders { name, generation } => match self.swarm.holders(&name, generation) {
                Err(e) => format!("ERR {e}"),
                Ok(holders) => {
                    let mut out = format!("OK {}", holders.len());
                    for h in holders {
                        out.push_str(&format!("\n{} {} {}", h.id, h.addr, h.pieces.to_hex()));
                    }
                    out
                }
            },
            Request::Have { name, runs } => match self.joined {
                None => "ERR join_first".to_string(),
                Some(id) => match self.swarm.have(id, &name, &runs) {
                    Ok(version) => format!("OK {version}"),
                    Err(e) => format!("ERR {e}"),
                },
            },
            Request::Drop { name } => match self.joined {
                None => "ERR join_first".to_string(),
                Some(id) => match self.swarm.drop_file(id, &name) {
                    Ok(version) => format!("OK {version}"),
                    Err(e) => format!("ERR {e}"),
                },
            },
            Request::Wait { version, millis } => {
                let now = self.swarm.wait(version, Duration::from_millis(millis));
                format!("OK {now}")
            }
            Request::Leave => match self.joined {
                None => "ERR join_first".to_string(),
                Some(id) => match self.swarm.leave(id, Duration::from_secs(1)) {
                    (Leave::Bye, printed) => {
                        // The DISCONNECT block is on stdout before the peer may exit.
                        if let Some(printed) = printed {
                            printed.wait();
                        }
                        let _ = self.reply("OK BYE");
                        return Ok(Step::Left);
                    }
                    (Leave::Wait(version), _) => format!("OK WAIT {version}"),
                },
            },
            Request::Get { .. } => "ERR not_a_tracker_request GET".to_string(),
            Request::Seed { .. }
            | Request::Unseed { .. }
            | Request::Quit { .. }
            | Request::Seeders { .. }
            | Request::State => "ERR not_in_swarm_mode".to_string(),
        };
        self.reply(&reply).map_err(|e| Fatal(e.to_string()))?;
        Ok(Step::Continue)
    }

    /// Stages an offer until `JOIN`, or says why not. A name a living peer shares with other
    /// content is remembered as refused, so the leave rule never waits for this peer to
    /// fetch the other version.
    fn offer(&mut self, name: String, size: u64) -> String {
        if self.joined.is_some() {
            return "ERR already_joined".to_string();
        }
        let Some(geometry) = Geometry::new(size) else {
            return format!("ERR file_too_large max {}", crate::chunk::MAX_FILE_SIZE);
        };
        let pieces = u64::from(geometry.num_pieces());
        if self.staged.len() + self.refused.len() >= MAX_STAGED_OFFERS
            || self.staged_pieces + pieces > MAX_STAGED_PIECES
        {
            return format!(
                "ERR too_many_offers max {MAX_STAGED_OFFERS} files, {MAX_STAGED_PIECES} pieces"
            );
        }
        if self.staged.iter().any(|(n, _)| *n == name) || self.refused.contains(&name) {
            return "ERR duplicate_offer".to_string();
        }
        if let Err(e) = self.swarm.check_offer(&name, geometry) {
            self.refused.push(name);
            return format!("ERR {e}");
        }
        self.staged_pieces += pieces;
        self.staged.push((name, geometry));
        "OK".to_string()
    }

    /// Queues a reply; flushes once no further request is already waiting, so pipelined
    /// requests are answered in one write.
    fn reply(&mut self, line: &str) -> io::Result<()> {
        self.reply_with(line, &[])
    }

    /// Queues a reply line followed by a raw payload, flushing as [`Conn::reply`] does.
    fn reply_with(&mut self, line: &str, payload: &[u8]) -> io::Result<()> {
        wire::write_line(&mut self.writer, line)?;
        self.writer.write_all(payload)?;
        wire::flush_if_idle(&self.reader, &mut self.writer)
    }
}

enum Step {
    Continue,
    Left,
}

struct Fatal(String);
