//! Reading a request line: its verb picks the fields, and a cursor over the words after it
//! reads each field by its kind, naming the field in the error when a word is bad. A line
//! with the wrong number of words is refused before any field is read.

use super::{
    MAX_HASH_BATCH, MAX_RECORDS_PAGE, MAX_SEEN, MAX_WAIT_MS, PieceRun, Request, Role, VERSION,
};
use crate::name::{self, NameError};
use std::fmt;
use std::net::SocketAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    Empty,
    Unknown(String),
    Arity {
        command: &'static str,
        expected: &'static str,
        got: usize,
    },
    BadNumber {
        field: &'static str,
        value: String,
    },
    BadName(NameError),
    BadHash(String),
    BadRun(String),
    BadHello(String),
    BadToken(String),
    /// A user id, group name or password that is not one: the reason, already short.
    BadAccount(String),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Empty => write!(f, "empty_line"),
            ProtoError::Unknown(c) => write!(f, "unknown_command {}", clip(c)),
            ProtoError::Arity {
                command,
                expected,
                got,
            } => write!(f, "bad_arguments {command} wants {expected}, got {got}"),
            ProtoError::BadNumber { field, value } => {
                write!(f, "bad_number {field} {}", clip(value))
            }
            ProtoError::BadName(e) => write!(f, "bad_name {e}"),
            ProtoError::BadHash(h) => write!(f, "bad_hash {}", clip(h)),
            ProtoError::BadRun(r) => write!(f, "bad_run {}", clip(r)),
            ProtoError::BadHello(h) => write!(f, "bad_hello {}", clip(h)),
            ProtoError::BadToken(t) => write!(f, "bad_token {}", clip(t)),
            ProtoError::BadAccount(why) => write!(f, "bad_name {why}"),
        }
    }
}

impl std::error::Error for ProtoError {}

/// Keeps echoed input short, so an error line never grows with what provoked it.
fn clip(s: &str) -> String {
    const MAX: usize = 60;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A plain decimal number: digits only (no sign, no spaces), within `u64`.
pub fn parse_u64(field: &'static str, word: &str) -> Result<u64, ProtoError> {
    let bad = || bad_number(field, word);
    if word.is_empty() || !word.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    word.parse().map_err(|_| bad())
}

fn bad_number(field: &'static str, word: &str) -> ProtoError {
    ProtoError::BadNumber {
        field,
        value: word.to_string(),
    }
}

fn parse_u32(field: &'static str, word: &str) -> Result<u32, ProtoError> {
    let n = parse_u64(field, word)?;
    u32::try_from(n).map_err(|_| bad_number(field, word))
}

fn parse_run(word: &str) -> Result<PieceRun, ProtoError> {
    let bad = || ProtoError::BadRun(word.to_string());
    let (a, b) = word.split_once('-').unwrap_or((word, word));
    let first = parse_u32("piece", a).map_err(|_| bad())?;
    let last = parse_u32("piece", b).map_err(|_| bad())?;
    if first > last {
        return Err(bad());
    }
    Ok(PieceRun { first, last })
}

fn is_lower_hex(word: &str) -> bool {
    word.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The words after a verb, read one field at a time.
struct Fields<'a> {
    words: std::slice::Iter<'a, &'a str>,
}

impl<'a> Fields<'a> {
    /// The fields of `command`, which takes exactly `n` of them (`expected` says which, for
    /// the error).
    fn exactly(
        command: &'static str,
        expected: &'static str,
        n: usize,
        words: &'a [&'a str],
    ) -> Result<Fields<'a>, ProtoError> {
        if words.len() != n {
            return Err(ProtoError::Arity {
                command,
                expected,
                got: words.len(),
            });
        }
        Ok(Fields {
            words: words.iter(),
        })
    }

    /// The next word as it is. The count was checked when the cursor was made, so a word is
    /// always there for a field the verb takes.
    fn word(&mut self) -> &'a str {
        self.words.next().copied().unwrap_or_default()
    }

    fn name(&mut self) -> Result<String, ProtoError> {
        name::decode(self.word()).map_err(ProtoError::BadName)
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, ProtoError> {
        parse_u64(field, self.word())
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, ProtoError> {
        parse_u32(field, self.word())
    }

    fn addr(&mut self) -> Result<SocketAddr, ProtoError> {
        let word = self.word();
        word.parse().map_err(|_| bad_number("address", word))
    }

    /// An info hash: 40 lowercase hex digits.
    fn key(&mut self) -> Result<String, ProtoError> {
        let word = self.word();
        let ok = word.len() == 40 && is_lower_hex(word);
        ok.then(|| word.to_string())
            .ok_or_else(|| ProtoError::BadHash(word.to_string()))
    }

    /// A session token: 32 lowercase hex digits.
    fn token(&mut self) -> Result<String, ProtoError> {
        let word = self.word();
        (word.len() == 32 && is_lower_hex(word))
            .then(|| word.to_string())
            .ok_or_else(|| ProtoError::BadToken(word.to_string()))
    }

    /// A piece bitset word (see [`crate::chunk::Bitset::to_word`]); checked against the
    /// piece count by whoever knows the file.
    fn bits(&mut self) -> Result<String, ProtoError> {
        let word = self.word();
        let hex = crate::chunk::bits_hex(word);
        let ok = hex.len().is_multiple_of(2) && hex.bytes().all(|b| b.is_ascii_hexdigit());
        ok.then(|| word.to_string())
            .ok_or_else(|| ProtoError::BadRun(word.to_string()))
    }
}

impl Request {
    pub fn parse(line: &str) -> Result<Request, ProtoError> {
        let words: Vec<&str> = line.split(' ').collect();
        let (command, args) = match words.split_first() {
            Some((c, a)) if !c.is_empty() => (*c, a),
            _ if line.is_empty() => return Err(ProtoError::Empty),
            _ => return Err(ProtoError::Unknown(line.to_string())),
        };
        let fields = |command, expected, n| Fields::exactly(command, expected, n, args);
        let request = match command {
            "HELLO" => {
                let mut f = fields("HELLO", "<version> <role>", 2)?;
                let version = f.word();
                if version != VERSION {
                    return Err(ProtoError::BadHello(version.to_string()));
                }
                let role = match f.word() {
                    "peer" => Role::Peer,
                    "client" => Role::Client,
                    "tracker" => Role::Tracker,
                    other => return Err(ProtoError::BadHello(other.to_string())),
                };
                Request::Hello { role }
            }
            "OFFER" => {
                let mut f = fields("OFFER", "<name> <size>", 2)?;
                Request::Offer {
                    name: f.name()?,
                    size: f.u64("size")?,
                }
            }
            "HASHED" => {
                let mut f = fields("HASHED", "<name> <first> <count>", 3)?;
                let (name, first, count_word) = (f.word(), f.word(), f.word());
                // The count is checked first: it says how many bytes follow the line.
                let count = parse_u32("count", count_word)?;
                if u64::from(count) > MAX_HASH_BATCH {
                    return Err(bad_number("count", count_word));
                }
                Request::Hashed {
                    name: name::decode(name).map_err(ProtoError::BadName)?,
                    first: parse_u32("first", first)?,
                    count,
                }
            }
            "BEAT" => {
                let mut f = fields("BEAT", "<id> <token>", 2)?;
                Request::Beat {
                    id: f.u64("id")?,
                    token: f.u64("token")?,
                }
            }
            "JOIN" => {
                let mut f = fields("JOIN", "<port>", 1)?;
                let word = f.word();
                let port = u16::try_from(parse_u64("port", word)?)
                    .ok()
                    .filter(|&p| p != 0)
                    .ok_or_else(|| bad_number("port", word))?;
                Request::Join { port }
            }
            "FILES" => fields("FILES", "nothing", 0).map(|_| Request::Files)?,
            "HASHES" => {
                let mut f = fields("HASHES", "<name> <generation> <from>", 3)?;
                Request::Hashes {
                    name: f.name()?,
                    generation: f.u64("generation")?,
                    from: f.u32("from")?,
                }
            }
            "HOLDERS" => {
                let mut f = fields("HOLDERS", "<name> <generation>", 2)?;
                Request::Holders {
                    name: f.name()?,
                    generation: f.u64("generation")?,
                }
            }
            "HAVE" => {
                let Some((name, runs)) = args.split_first() else {
                    return Err(ProtoError::Arity {
                        command: "HAVE",
                        expected: "<name> [<run> ...]",
                        got: 0,
                    });
                };
                let runs = runs
                    .iter()
                    .map(|w| parse_run(w))
                    .collect::<Result<_, _>>()?;
                Request::Have {
                    name: name::decode(name).map_err(ProtoError::BadName)?,
                    runs,
                }
            }
            "DROP" => Request::Drop {
                name: fields("DROP", "<name>", 1)?.name()?,
            },
            "WAIT" => {
                let mut f = fields("WAIT", "<version> <ms>", 2)?;
                Request::Wait {
                    version: f.u64("version")?,
                    millis: f.u64("ms")?.min(MAX_WAIT_MS),
                }
            }
            "LEAVE" => fields("LEAVE", "nothing", 0).map(|_| Request::Leave)?,
            "PING" => fields("PING", "nothing", 0).map(|_| Request::Ping)?,
            "GET" => {
                let mut f = fields("GET", "<name> <first-chunk> <count>", 3)?;
                Request::Get {
                    name: f.name()?,
                    first: f.u64("chunk")?,
                    count: f.u64("count")?,
                }
            }
            "OPEN" => Request::Open {
                addr: fields("OPEN", "<addr>", 1)?.addr()?,
            },
            "ALIVE" => Request::Alive {
                token: fields("ALIVE", "<token>", 1)?.token()?,
            },
            "SEED" => {
                // A sixth word, `private`, keeps a group file's holders out of `SEEDERS`.
                let private = args.len() == 6 && args[5] == "private";
                let n = if private { 6 } else { 5 };
                let wants = "<token> <info-hash> <name> <size> <bitset> [private]";
                let mut f = fields("SEED", wants, n)?;
                Request::Seed {
                    token: f.token()?,
                    key: f.key()?,
                    name: f.name()?,
                    size: f.u64("size")?,
                    bits: f.bits()?,
                    private,
                }
            }
            "UNSEED" => {
                let mut f = fields("UNSEED", "<token> <info-hash> <size>", 3)?;
                Request::Unseed {
                    token: f.token()?,
                    key: f.key()?,
                    size: f.u64("size")?,
                }
            }
            "QUIT" => Request::Quit {
                token: fields("QUIT", "<token>", 1)?.token()?,
            },
            "SEEDERS" => {
                let mut f = fields("SEEDERS", "<info-hash> <size>", 2)?;
                Request::Seeders {
                    key: f.key()?,
                    size: f.u64("size")?,
                }
            }
            "RECORDS" => {
                let mut f = fields("RECORDS", "<from> <max>", 2)?;
                Request::Records {
                    from: f.u64("from")?,
                    max: f.u64("max")?.min(MAX_RECORDS_PAGE),
                }
            }
            "SYNC" => {
                let mut f = fields("SYNC", "<tracker> <epoch> <nonce>", 3)?;
                let tracker = f.addr()?;
                let epoch = f.word();
                if epoch.len() != 16 || !is_lower_hex(epoch) {
                    return Err(ProtoError::BadHash(epoch.to_string()));
                }
                Request::Sync {
                    tracker,
                    epoch: epoch.to_string(),
                    nonce: f.token()?,
                }
            }
            "VOUCH" => Request::Vouch {
                nonce: fields("VOUCH", "<nonce>", 1)?.token()?,
            },
            "PUT" => {
                let Some((seq, record)) = args.split_first().filter(|(_, r)| !r.is_empty()) else {
                    return Err(ProtoError::Arity {
                        command: "PUT",
                        expected: "<seq> <record>",
                        got: args.len(),
                    });
                };
                Request::Put {
                    seq: parse_u64("seq", seq)?,
                    record: record.join(" "),
                }
            }
            "SEEN" => {
                if args.is_empty() || args.len() > MAX_SEEN {
                    return Err(ProtoError::Arity {
                        command: "SEEN",
                        expected: "1 to 1000 tokens",
                        got: args.len(),
                    });
                }
                let mut f = fields("SEEN", "<token> ...", args.len())?;
                let tokens = (0..args.len())
                    .map(|_| f.token())
                    .collect::<Result<_, _>>()?;
                Request::Seen { tokens }
            }
            "CLAIM" => {
                let mut f = fields("CLAIM", "<version> <user|group> <key>", 3)?;
                let version = f.word();
                let ok = version
                    .split_once('@')
                    .is_some_and(|(c, o)| parse_u64("version", c).is_ok() && !o.is_empty());
                if !ok {
                    return Err(bad_number("version", version));
                }
                let (kind, key) = (f.word(), f.word());
                let checked = match kind {
                    "user" => crate::account_name::check_id(key),
                    "group" => crate::account_name::check_group(key),
                    _ => Err(format!("{kind:.40} is not user or group")),
                };
                checked.map_err(ProtoError::BadAccount)?;
                Request::Claim {
                    version: version.to_string(),
                    kind: kind.to_string(),
                    key: key.to_string(),
                }
            }
            other => {
                let token = |w: &str| Fields::exactly("", "", 1, &[w]).and_then(|mut f| f.token());
                let key = |w: &str| Fields::exactly("", "", 1, &[w]).and_then(|mut f| f.key());
                let (token, ask) = super::account::parse(other, args, token, key, parse_u64)
                    .ok_or_else(|| ProtoError::Unknown(other.to_string()))??;
                Request::Account { token, ask }
            }
        };
        Ok(request)
    }
}
