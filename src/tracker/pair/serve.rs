//! One connection to a tracker of the pair, from a client or from the twin: the catalog's
//! requests answered (the line protocol itself is [`crate::server`]'s); a change a client
//! makes is logged and handed to the forwarder, one the twin forwards only logged.

use super::log::Log;
use crate::protocol::{Request, Role, VERSION};
use crate::server::{Connection, LineHandler, Next, Refusal};
use crate::tracker::catalog::Catalog;
use std::net::SocketAddr;
use std::sync::mpsc::Sender;
use std::time::Duration;

/// A client silent this long is disconnected (it reconnects when it needs to).
const IDLE: Duration = Duration::from_secs(300);
const LINE_DEADLINE: Duration = Duration::from_secs(10);

/// One connection from a client or from the twin tracker.
pub struct PairConn<'a> {
    from: SocketAddr,
    catalog: &'a Catalog,
    forward: &'a Sender<Request>,
    log: &'a Log,
    /// What its `HELLO` said the other side is (`HELLO` comes before any request is served).
    role: Role,
}

impl<'a> PairConn<'a> {
    pub fn new(
        from: SocketAddr,
        catalog: &'a Catalog,
        forward: &'a Sender<Request>,
        log: &'a Log,
    ) -> PairConn<'a> {
        PairConn {
            from,
            catalog,
            forward,
            log,
            role: Role::Client,
        }
    }
}

impl LineHandler for PairConn<'_> {
    const READ_TIMEOUT: Duration = IDLE;

    fn greet(&mut self, role: Role) -> Result<String, Refusal> {
        self.role = role;
        Ok(format!("OK {VERSION} tracker"))
    }

    fn line_deadline(&self) -> Duration {
        LINE_DEADLINE
    }

    fn serve(&mut self, request: Request, conn: &mut Connection) -> Result<Next, String> {
        let reply = self.answer(request);
        conn.reply(&reply).map_err(|e| e.to_string())?;
        Ok(Next::Continue)
    }
}

impl PairConn<'_> {
    /// The reply to one request after `HELLO`.
    fn answer(&self, req: Request) -> String {
        match req {
            Request::Seed { .. } | Request::Unseed { .. } | Request::Quit { .. } => {
                match self.catalog.apply(&req) {
                    Ok(changed) => {
                        if changed {
                            let from = self.from;
                            let side = if self.role == Role::Tracker {
                                "twin"
                            } else {
                                "client"
                            };
                            self.log.say(format!("{from} {side}: {req}"));
                            if self.role != Role::Tracker {
                                let _ = self.forward.send(req);
                            }
                        }
                        "OK".to_string()
                    }
                    Err(e) => format!("ERR {e}"),
                }
            }
            Request::Seeders { key } => match self.catalog.seeders(&key) {
                None => "ERR unknown_file".to_string(),
                Some(list) => {
                    let mut out = format!("OK {}", list.len());
                    for (addr, bits) in list {
                        out.push_str(&format!("\n{addr} {bits}"));
                    }
                    out
                }
            },
            Request::State => {
                let (_, seeds) = self.catalog.snapshot();
                let mut out = format!("OK {}", seeds.len());
                for seed in seeds {
                    out.push_str(&format!("\n{seed}"));
                }
                out
            }
            Request::Ping => "OK".to_string(),
            Request::Hello { .. } => "ERR hello_twice".to_string(),
            other => format!("ERR not_in_pair_mode {}", other.verb()),
        }
    }
}
