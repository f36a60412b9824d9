//! Serving the swarm: what the grading tracker answers on one connection, over the shared
//! [`Swarm`] table (the line protocol itself is [`crate::server`]'s). A `HASHED` whose hashes
//! do not arrive closes the connection. A peer whose connection closes without `LEAVE` is
//! dropped from the swarm.
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
use crate::server::{self, Connection, End, LineHandler, Next, Refusal, Silence};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

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

/// Serves one connection; a peer whose connection closes without `LEAVE` is dropped.
pub fn handle(stream: TcpStream, from: SocketAddr, swarm: &Swarm) {
    let mut conn = SwarmConn {
        from,
        swarm,
        joined: None,
        beat_for: None,
        staged: Vec::new(),
        staged_pieces: 0,
        refused: Vec::new(),
        patient: false,
    };
    let end = server::serve_lines(stream, &mut conn);
    let Some(id) = conn.joined.or(conn.beat_for) else {
        return;
    };
    if !matches!(end, End::Finished) && swarm.drop_peer(id) {
        let why = match end {
            End::Broken(why) | End::Refused(why) => why,
            _ if conn.beat_for.is_some() => "its heartbeat connection closed".into(),
            _ => "connection closed".into(),
        };
        eprintln!("tracker: peer {id} at {from} dropped without goodbye: {why}");
    }
}

/// What one connection to the swarm tracker has said so far.
struct SwarmConn<'a> {
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

impl LineHandler for SwarmConn<'_> {
    const READ_TIMEOUT: Duration = HEARTBEAT_TTL;
    const CLOSE_GRACEFULLY_WHEN_BROKEN: bool = true;

    fn greet(&mut self, role: Role) -> Result<String, Refusal> {
        if role == Role::Tracker {
            return Err(Refusal {
                reply: "ERR unsupported_role tracker".into(),
                why: "tracker sync is not served here".into(),
            });
        }
        Ok(format!("OK {VERSION} tracker"))
    }

    fn line_deadline(&self) -> Duration {
        if self.patient { PATIENT } else { LINE_DEADLINE }
    }

    fn on_silence(&mut self, conn: &Connection, mid_line: bool) -> Silence {
        // Silence between requests from a peer whose heartbeats still come: busy.
        if !mid_line && self.standing(conn) == Standing::Beating {
            return Silence::KeepWaiting;
        }
        if self.beat_for.is_some() {
            return Silence::End(format!("no heartbeat for {} s", HEARTBEAT_TTL.as_secs()));
        }
        let waited = if self.patient { PATIENT } else { HEARTBEAT_TTL };
        Silence::End(format!("silent for {} s", waited.as_secs()))
    }

    fn serve(&mut self, req: Request, conn: &mut Connection) -> Result<Next, String> {
        if self.standing(conn) == Standing::Gone {
            // Dropped (its heartbeats stopped): say so and close, so that the peer knows.
            let _ = conn.reply("ERR not_joined you were dropped: no heartbeat");
            return Err("dropped, and told so".into());
        }
        if let Some(id) = self.beat_for {
            let reply = match req {
                Request::Beat { id: i, .. } if i == id => "OK".to_string(),
                Request::Ping => "OK".to_string(),
                _ => "ERR heartbeat_connection BEAT and PING only".to_string(),
            };
            conn.reply(&reply).map_err(|e| e.to_string())?;
            return Ok(Next::Continue);
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
                let block = conn
                    .read_payload(count as usize * 20)
                    .map_err(|e| e.to_string())?;
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
                    conn.reply_with(&head, &hashes.concat())
                        .map_err(|e| e.to_string())?;
                    return Ok(Next::Continue);
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
                        let _ = conn.reply("OK BYE");
                        return Ok(Next::Finish);
                    }
                    (Leave::Wait(version), _) => format!("OK WAIT {version}"),
                },
            },
            Request::Get { .. } => "ERR not_a_tracker_request GET".to_string(),
            Request::Open { .. }
            | Request::Alive { .. }
            | Request::Seed { .. }
            | Request::Unseed { .. }
            | Request::Quit { .. }
            | Request::Seeders { .. }
            | Request::Records { .. }
            | Request::Sync { .. }
            | Request::Vouch { .. }
            | Request::Claim { .. }
            | Request::Put { .. }
            | Request::Seen { .. } => "ERR not_in_swarm_mode".to_string(),
            Request::Account { ask, .. } => {
                conn.reply("ERR not_in_swarm_mode")
                    .map_err(|e| e.to_string())?;
                // Raw bytes follow an upload's line: the stream is not lines any more.
                if ask.payload_len() > 0 {
                    return Err("an upload sent to a swarm tracker".into());
                }
                return Ok(Next::Continue);
            }
        };
        conn.reply(&reply).map_err(|e| e.to_string())?;
        Ok(Next::Continue)
    }
}

impl SwarmConn<'_> {
    /// Where the peer that joined on this connection stands now (`Joined` if none did), and
    /// the patience its heartbeats earn it.
    fn standing(&mut self, conn: &Connection) -> Standing {
        let Some(id) = self.joined else {
            return Standing::Joined;
        };
        let standing = self.swarm.standing(id);
        if standing == Standing::Beating && !self.patient {
            self.patient = true;
            conn.set_read_timeout(PATIENT);
        }
        standing
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
}
