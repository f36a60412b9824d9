//! One connection to a tracker of the pair, from a client or from the twin: the requests
//! answered (the line protocol itself is [`crate::server`]'s). A client's changes name its
//! session's token, and [`Tables`] lets a token change only its own session's records; the
//! twin's records arrive after a `SYNC` that names the twin, and only then.

use super::log::Log;
use super::records::Record;
use super::tables::Tables;
use crate::protocol::{Request, Role, VERSION};
use crate::server::{Connection, LineHandler, Next, Refusal};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

/// A connection silent this long is closed (a client opens it again when it needs to).
const IDLE: Duration = Duration::from_secs(30);
const LINE_DEADLINE: Duration = Duration::from_secs(10);

/// One connection from a client or from the twin tracker.
pub struct PairConn<'a> {
    pub from: SocketAddr,
    pub twin: SocketAddr,
    pub tables: &'a Tables,
    pub log: &'a Log,
    /// What its `HELLO` said the other side is.
    pub role: Role,
    /// The twin's stream, once `SYNC` named it: (tracker, epoch).
    pub stream: Option<(String, String)>,
    /// The nonce this tracker's own pusher syncs with (see [`super::twin_sync`]).
    pub nonce: &'a Mutex<Option<String>>,
}

impl LineHandler for PairConn<'_> {
    const READ_TIMEOUT: Duration = IDLE;
    /// An upload refused before its piece hashes were read ends the connection with them
    /// still unread: closed gracefully, the client reads the `ERR` rather than a reset.
    const CLOSE_GRACEFULLY_WHEN_BROKEN: bool = true;

    fn greet(&mut self, role: Role) -> Result<String, Refusal> {
        self.role = role;
        Ok(format!("OK {VERSION} tracker"))
    }

    fn line_deadline(&self) -> Duration {
        LINE_DEADLINE
    }

    fn serve(&mut self, request: Request, conn: &mut Connection) -> Result<Next, String> {
        if let Request::Account { token, ask } = request {
            return self.serve_account(token, ask, conn);
        }
        let reply = self.answer(request);
        conn.reply(&reply).map_err(|e| e.to_string())?;
        Ok(Next::Continue)
    }
}

pub(super) fn ok_or_err(outcome: Result<(), String>) -> String {
    match outcome {
        Ok(()) => "OK".to_string(),
        Err(e) => format!("ERR {e}"),
    }
}

/// `OK <n>` and the lines.
pub(super) fn list(lines: Vec<String>) -> String {
    let mut out = format!("OK {}", lines.len());
    for line in lines {
        out.push('\n');
        out.push_str(&line);
    }
    out
}

/// 32 hex digits from `/dev/urandom`.
fn new_token() -> String {
    format!(
        "{:016x}{:016x}",
        crate::rng::random_u64(),
        crate::rng::random_u64()
    )
}

/// How long a change may wait for the state log before its reply says it was not saved.
pub(super) const SAVE_WAIT: Duration = Duration::from_secs(5);

impl PairConn<'_> {
    /// The reply to one request after `HELLO`: a change is answered `OK` only once the state
    /// log holds it (and only then does it go to the twin), so no tracker that dies a moment
    /// later takes back what it said.
    fn answer(&mut self, req: Request) -> String {
        let changes = matches!(
            req,
            Request::Open { .. }
                | Request::Seed { .. }
                | Request::Unseed { .. }
                | Request::Quit { .. }
                | Request::Put { .. }
        );
        let reply = self.reply_to(req);
        if changes && reply.starts_with("OK") && !self.tables.settle(SAVE_WAIT) {
            return "ERR not_saved the state file cannot be written now".to_string();
        }
        reply
    }

    fn reply_to(&mut self, req: Request) -> String {
        let t = self.tables;
        match req {
            Request::Open { addr } if addr.port() == 0 || addr.ip().is_unspecified() => {
                format!("ERR bad_address {addr} is not an address others can reach")
            }
            Request::Open { addr } => match t.open(&addr.to_string(), new_token()) {
                Ok(token) => {
                    self.log
                        .say(format!("{} opened a session for {addr}", self.from));
                    format!("OK {token}")
                }
                Err(e) => format!("ERR {e}"),
            },
            Request::Alive { token } => ok_or_err(t.alive(&token)),
            Request::Seed {
                token,
                key,
                name,
                size,
                bits,
                private,
            } => ok_or_err(t.seed(&token, &key, size, &name, (&bits, private))),
            Request::Unseed { token, key, size } => ok_or_err(t.unseed(&token, &key, size)),
            Request::Quit { token } => ok_or_err(t.quit(&token)),
            Request::Seeders { key, size } => list(
                t.seeders(&key, size)
                    .into_iter()
                    .map(|(addr, bits)| format!("{addr} {bits}"))
                    .collect(),
            ),
            Request::Records { from, max } => list(t.page(from, max)),
            Request::Sync {
                tracker,
                epoch,
                nonce,
            } => {
                if self.role != Role::Tracker || tracker != self.twin {
                    return format!("ERR not_my_twin this tracker's twin is {}", self.twin);
                }
                if !super::twin_sync::vouched(self.twin, &nonce) {
                    self.log.say(format!(
                        "{} claimed to be twin {tracker}; refused",
                        self.from
                    ));
                    return "ERR not_my_twin the twin does not vouch for that nonce".to_string();
                }
                let seq = t.mark_of(&tracker.to_string(), &epoch);
                self.log.say(format!(
                    "twin {tracker} syncing from {}: we have its stream up to {seq}",
                    self.from
                ));
                self.stream = Some((tracker.to_string(), epoch));
                format!("OK {seq}")
            }
            Request::Put { seq, record } => {
                let Some((origin, epoch)) = &self.stream else {
                    return "ERR sync_first".to_string();
                };
                let merged = Record::parse(&record).and_then(|r| t.merge(r, origin, epoch, seq));
                match merged {
                    Ok(()) => "OK".to_string(),
                    Err(e) => format!("ERR bad_record {e}"),
                }
            }
            Request::Seen { tokens } => {
                if self.stream.is_none() {
                    return "ERR sync_first".to_string();
                }
                t.seen(&tokens);
                "OK".to_string()
            }
            Request::Claim { version, kind, key } => {
                if self.stream.is_none() {
                    return "ERR sync_first".to_string();
                }
                let version = version.split_once('@').and_then(|(c, o)| {
                    Some(super::records::Version {
                        counter: c.parse().ok()?,
                        origin: o.to_string(),
                    })
                });
                match version.map(|v| t.grant(&format!("{kind} {key}"), v)) {
                    Some(true) => "OK".to_string(),
                    Some(false) => format!("ERR taken {kind} {key} exists or is claimed here"),
                    None => "ERR bad_version".to_string(),
                }
            }
            Request::Vouch { nonce } => {
                let ours = self.nonce.lock().unwrap_or_else(|e| e.into_inner());
                if ours.as_deref() == Some(nonce.as_str()) {
                    "OK".to_string()
                } else {
                    "ERR not_vouched".to_string()
                }
            }
            Request::Ping => "OK".to_string(),
            Request::Hello { .. } => "ERR hello_twice".to_string(),
            other => format!("ERR not_in_pair_mode {}", other.verb()),
        }
    }
}
