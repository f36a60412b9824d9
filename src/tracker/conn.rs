//! One connection to the tracker: read a request line, answer it, repeat. A bad request
//! gets `ERR <reason>` and the connection stays open while the stream is still in sync; an
//! overlong line, a bad hash block or silence past the heartbeat deadline closes it. A peer
//! whose connection closes without `LEAVE` is dropped from the swarm.

use super::swarm::{Leave, PeerId, Swarm};
use crate::chunk::{FileMeta, Geometry};
use crate::name;
use crate::protocol::{Request, Role, VERSION};
use crate::wire::{self, LineError};
use std::io::{self, BufReader, BufWriter, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A peer that says nothing for this long is taken for dead (peers speak every second).
pub const HEARTBEAT_TTL: Duration = Duration::from_secs(5);
/// A request line must arrive in full within this time, however slowly its bytes trickle.
pub const LINE_DEADLINE: Duration = Duration::from_secs(10);
/// The most piece hashes one connection may stage in offers before `JOIN` (80 MiB of hashes).
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
        staged: Vec::new(),
        staged_pieces: 0,
    };
    let end = conn.run();
    let _ = conn.writer.flush();
    if let End::Broken(_) = end {
        wire::close_gracefully(conn.writer.get_ref());
    }
    if let Some(id) = conn.joined
        && !matches!(end, End::Left)
        && swarm.drop_peer(id)
    {
        let why = match end {
            End::Broken(why) => why,
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
    joined: Option<PeerId>,
    staged: Vec<FileMeta>,
    staged_pieces: u64,
}

impl Conn<'_> {
    fn run(&mut self) -> End {
        let mut buf = Vec::new();
        let mut greeted = false;
        loop {
            let deadline = Some(std::time::Instant::now() + LINE_DEADLINE);
            let request = match wire::read_line_by(&mut self.reader, &mut buf, deadline) {
                Ok(line) => Request::parse(line).map_err(|e| e.to_string()),
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

    fn serve(&mut self, req: Request) -> Result<Step, Fatal> {
        let reply = match req {
            Request::Hello { .. } => "ERR hello_twice".to_string(),
            Request::Ping => "OK".to_string(),
            Request::Offer { name, size, sha1 } => self.offer(name, size, sha1)?,
            Request::Join { port } => match self.joined {
                Some(_) => "ERR already_joined".to_string(),
                None => {
                    let addr = SocketAddr::new(self.from.ip(), port);
                    match self.swarm.join(addr, std::mem::take(&mut self.staged)) {
                        Ok(id) => {
                            self.joined = Some(id);
                            self.staged_pieces = 0;
                            format!("OK {id}")
                        }
                        Err(e) => format!("ERR {e}"),
                    }
                }
            },
            Request::Files => {
                let (version, files) = self.swarm.files();
                let mut out = format!("OK {version} {}\n", files.len());
                for f in &files {
                    out.push_str(&format!(
                        "{} {} {}\n",
                        name::encode(&f.name),
                        f.geometry.size(),
                        f.sha1.map(|h| crate::chunk::to_hex(&h)).unwrap_or_default()
                    ));
                }
                out.pop();
                out
            }
            Request::Hashes { name } => match self.swarm.meta(&name) {
                None => "ERR unknown_file".to_string(),
                Some(meta) => {
                    let head = format!("OK {}", meta.piece_hashes.len());
                    self.reply_with(&head, &meta.hash_block())
                        .map_err(|e| Fatal(e.to_string()))?;
                    return Ok(Step::Continue);
                }
            },
            Request::Holders { name } => match self.swarm.holders(&name) {
                None => "ERR unknown_file".to_string(),
                Some(holders) => {
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
                    Leave::Bye => {
                        let _ = self.reply("OK BYE");
                        return Ok(Step::Left);
                    }
                    Leave::Wait(version) => format!("OK WAIT {version}"),
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

    /// Reads the hash block after an `OFFER` line and stages the offer until `JOIN`.
    fn offer(
        &mut self,
        name: String,
        size: u64,
        sha1: crate::chunk::Sha1Hash,
    ) -> Result<String, Fatal> {
        let Some(geometry) = Geometry::new(size) else {
            // The block's length follows from the size, so the stream is lost.
            let _ = self.reply("ERR file_too_large");
            return Err(Fatal("offer of an oversized file".into()));
        };
        let pieces = u64::from(geometry.num_pieces());
        if self.staged_pieces + pieces > MAX_STAGED_PIECES {
            let _ = self.reply("ERR too_many_offers");
            return Err(Fatal("too many staged offers".into()));
        }
        let block = wire::read_payload(&mut self.reader, pieces as usize * 20)
            .map_err(|e| Fatal(e.to_string()))?;
        if self.joined.is_some() {
            return Ok("ERR already_joined".to_string());
        }
        let Some(piece_hashes) = FileMeta::hashes_from_block(geometry, &block) else {
            return Ok("ERR bad_hash_block".to_string());
        };
        let meta = FileMeta {
            name,
            geometry,
            sha1: Some(sha1),
            piece_hashes,
        };
        if self.staged.iter().any(|m| m.name == meta.name) {
            return Ok("ERR duplicate_offer".to_string());
        }
        if let Err(e) = self.swarm.check_offer(&meta) {
            return Ok(format!("ERR {e}"));
        }
        self.staged_pieces += pieces;
        self.staged.push(meta);
        Ok("OK".to_string())
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
