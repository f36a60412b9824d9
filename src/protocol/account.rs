//! The messages of accounts and groups (seed 002), as one [`Ask`] inside
//! [`super::Request::Account`]: each names the session that asks, and the tracker decides from
//! that session's login what it may do. Ids and group names are checked here with
//! [`crate::account_name`], so a malformed one never reaches the tables; a password travels
//! percent-encoded (it may hold `%`).

use super::ProtoError;
use crate::account_name;
use crate::chunk::MTORRENT_PIECE_SIZE;
use crate::name;
use std::fmt;

/// The most pieces a group file may have (128 GiB in 512 KiB pieces): bounds the piece
/// hashes an `UPLOAD_FILE` carries.
pub const MAX_GROUP_PIECES: u64 = 262_144;
/// The largest group file, in bytes.
pub const MAX_GROUP_FILE: u64 = MAX_GROUP_PIECES * MTORRENT_PIECE_SIZE;

/// What a logged-in session (or one logging in) asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ask {
    /// `CREATE_USER <token> <id> <password>`
    CreateUser { id: String, password: String },
    /// `LOGIN <token> <id> <password>`
    Login { id: String, password: String },
    /// `LOGOUT <token>`
    Logout,
    /// `CREATE_GROUP <token> <group>`
    CreateGroup { group: String },
    /// `JOIN_GROUP <token> <group>`: a request the owner accepts.
    JoinGroup { group: String },
    /// `LIST_REQUESTS <token> <group>`: owner only.
    ListRequests { group: String },
    /// `ACCEPT_REQUEST <token> <group> <user>`: owner only.
    AcceptRequest { group: String, user: String },
    /// `REJECT_REQUEST <token> <group> <user>`: owner only; the request goes.
    RejectRequest { group: String, user: String },
    /// `LEAVE_GROUP <token> <group>`
    LeaveGroup { group: String },
    /// `LIST_GROUPS <token>`
    ListGroups,
    /// `LIST_FILES <token> <group>`: members only.
    ListFiles { group: String },
    /// `UPLOAD_FILE <token> <group> <info-hash> <size> <name>`, followed by the file's piece
    /// hashes, 20 raw bytes each.
    UploadFile {
        group: String,
        key: String,
        size: u64,
        name: String,
    },
    /// `FILE_HASHES <token> <group> <info-hash> <size> <from>`: a group file's piece hashes
    /// from piece `from` on, as raw bytes after the reply.
    FileHashes {
        group: String,
        key: String,
        size: u64,
        from: u64,
    },
    /// `GROUP_SEEDERS <token> <group> <info-hash> <size>`: as `SEEDERS`, members only.
    GroupSeeders {
        group: String,
        key: String,
        size: u64,
    },
    /// `STOP_SHARE <token> <group> <info-hash> <size>`
    StopShare {
        group: String,
        key: String,
        size: u64,
    },
}

impl Ask {
    pub fn verb(&self) -> &'static str {
        match self {
            Ask::CreateUser { .. } => "CREATE_USER",
            Ask::Login { .. } => "LOGIN",
            Ask::Logout => "LOGOUT",
            Ask::CreateGroup { .. } => "CREATE_GROUP",
            Ask::JoinGroup { .. } => "JOIN_GROUP",
            Ask::ListRequests { .. } => "LIST_REQUESTS",
            Ask::AcceptRequest { .. } => "ACCEPT_REQUEST",
            Ask::RejectRequest { .. } => "REJECT_REQUEST",
            Ask::LeaveGroup { .. } => "LEAVE_GROUP",
            Ask::ListGroups => "LIST_GROUPS",
            Ask::ListFiles { .. } => "LIST_FILES",
            Ask::UploadFile { .. } => "UPLOAD_FILE",
            Ask::FileHashes { .. } => "FILE_HASHES",
            Ask::GroupSeeders { .. } => "GROUP_SEEDERS",
            Ask::StopShare { .. } => "STOP_SHARE",
        }
    }

    /// The client command a user types for this (for `login_first` errors).
    pub fn command(&self) -> String {
        self.verb().to_ascii_lowercase()
    }

    /// How many raw bytes follow the request line (an upload's piece hashes).
    pub fn payload_len(&self) -> usize {
        match self {
            Ask::UploadFile { size, .. } => (pieces_of(*size) * 20) as usize,
            _ => 0,
        }
    }
}

/// The number of 512 KiB pieces of a file of `size` bytes (an empty file has none).
pub fn pieces_of(size: u64) -> u64 {
    size.div_ceil(MTORRENT_PIECE_SIZE)
}

/// The words after the token, as each verb prints them.
impl fmt::Display for Ask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ask::CreateUser { id, password } | Ask::Login { id, password } => {
                write!(f, " {id} {}", name::encode(password))
            }
            Ask::Logout | Ask::ListGroups => Ok(()),
            Ask::CreateGroup { group }
            | Ask::JoinGroup { group }
            | Ask::ListRequests { group }
            | Ask::LeaveGroup { group }
            | Ask::ListFiles { group } => write!(f, " {group}"),
            Ask::AcceptRequest { group, user } | Ask::RejectRequest { group, user } => {
                write!(f, " {group} {user}")
            }
            Ask::UploadFile {
                group,
                key,
                size,
                name: file,
            } => write!(f, " {group} {key} {size} {}", name::encode(file)),
            Ask::FileHashes {
                group,
                key,
                size,
                from,
            } => write!(f, " {group} {key} {size} {from}"),
            Ask::GroupSeeders { group, key, size } | Ask::StopShare { group, key, size } => {
                write!(f, " {group} {key} {size}")
            }
        }
    }
}

/// What each verb takes after the token, for the arity error.
fn expected(verb: &str) -> Option<(&'static str, &'static str, usize)> {
    let (wants, n) = match verb {
        "CREATE_USER" | "LOGIN" => ("<token> <id> <password>", 2),
        "LOGOUT" | "LIST_GROUPS" => ("<token>", 0),
        "CREATE_GROUP" | "JOIN_GROUP" | "LIST_REQUESTS" | "LEAVE_GROUP" | "LIST_FILES" => {
            ("<token> <group>", 1)
        }
        "ACCEPT_REQUEST" | "REJECT_REQUEST" => ("<token> <group> <user>", 2),
        "UPLOAD_FILE" => ("<token> <group> <info-hash> <size> <name>", 4),
        "FILE_HASHES" => ("<token> <group> <info-hash> <size> <from>", 4),
        "GROUP_SEEDERS" | "STOP_SHARE" => ("<token> <group> <info-hash> <size>", 3),
        _ => return None,
    };
    let command = VERBS.iter().find(|v| **v == verb)?;
    Some((command, wants, n))
}

/// Reads an account request: `None` when `verb` is not one. `words` are those after the verb;
/// `token`, `key` and `number` read a token, an info hash and a number as the rest of the
/// protocol does.
pub(super) fn parse(
    verb: &str,
    words: &[&str],
    token: impl Fn(&str) -> Result<String, ProtoError>,
    key: impl Fn(&str) -> Result<String, ProtoError>,
    number: impl Fn(&'static str, &str) -> Result<u64, ProtoError>,
) -> Option<Result<(String, Ask), ProtoError>> {
    let (command, wants, n) = expected(verb)?;
    Some((|| {
        if words.len() != n + 1 {
            return Err(ProtoError::Arity {
                command,
                expected: wants,
                got: words.len(),
            });
        }
        let token = token(words[0])?;
        let w = &words[1..];
        let bad_name = ProtoError::BadAccount;
        let id = |i: usize| account_name::check_id(w[i]).map(|()| w[i].to_string());
        let group = |i: usize| account_name::check_group(w[i]).map(|()| w[i].to_string());
        let password = |i: usize| {
            let pw = name::decode_raw(w[i]).map_err(ProtoError::BadName)?;
            account_name::check_password(&pw).map_err(bad_name)?;
            Ok::<_, ProtoError>(pw)
        };
        let size = |i: usize| {
            let size = number("size", w[i])?;
            if size > MAX_GROUP_FILE {
                return Err(ProtoError::BadNumber {
                    field: "size",
                    value: w[i].to_string(),
                });
            }
            Ok(size)
        };
        let ask = match verb {
            "CREATE_USER" => Ask::CreateUser {
                id: id(0).map_err(bad_name)?,
                password: password(1)?,
            },
            "LOGIN" => Ask::Login {
                id: id(0).map_err(bad_name)?,
                password: password(1)?,
            },
            "LOGOUT" => Ask::Logout,
            "LIST_GROUPS" => Ask::ListGroups,
            "CREATE_GROUP" => Ask::CreateGroup {
                group: group(0).map_err(bad_name)?,
            },
            "JOIN_GROUP" => Ask::JoinGroup {
                group: group(0).map_err(bad_name)?,
            },
            "LIST_REQUESTS" => Ask::ListRequests {
                group: group(0).map_err(bad_name)?,
            },
            "LEAVE_GROUP" => Ask::LeaveGroup {
                group: group(0).map_err(bad_name)?,
            },
            "LIST_FILES" => Ask::ListFiles {
                group: group(0).map_err(bad_name)?,
            },
            "ACCEPT_REQUEST" => Ask::AcceptRequest {
                group: group(0).map_err(bad_name)?,
                user: id(1).map_err(bad_name)?,
            },
            "REJECT_REQUEST" => Ask::RejectRequest {
                group: group(0).map_err(bad_name)?,
                user: id(1).map_err(bad_name)?,
            },
            "UPLOAD_FILE" => Ask::UploadFile {
                group: group(0).map_err(bad_name)?,
                key: key(w[1])?,
                size: size(2)?,
                name: name::decode(w[3]).map_err(ProtoError::BadName)?,
            },
            "FILE_HASHES" => Ask::FileHashes {
                group: group(0).map_err(bad_name)?,
                key: key(w[1])?,
                size: size(2)?,
                from: number("from", w[3])?,
            },
            "GROUP_SEEDERS" => Ask::GroupSeeders {
                group: group(0).map_err(bad_name)?,
                key: key(w[1])?,
                size: size(2)?,
            },
            _ => Ask::StopShare {
                group: group(0).map_err(bad_name)?,
                key: key(w[1])?,
                size: size(2)?,
            },
        };
        Ok((token, ask))
    })())
}

const VERBS: &[&str] = &[
    "CREATE_USER",
    "LOGIN",
    "LOGOUT",
    "CREATE_GROUP",
    "JOIN_GROUP",
    "LIST_REQUESTS",
    "ACCEPT_REQUEST",
    "REJECT_REQUEST",
    "LEAVE_GROUP",
    "LIST_GROUPS",
    "LIST_FILES",
    "UPLOAD_FILE",
    "FILE_HASHES",
    "GROUP_SEEDERS",
    "STOP_SHARE",
];
