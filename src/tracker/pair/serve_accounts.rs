//! The account and group requests on a connection of the pair ([`Request::Account`]): the
//! ones that read or write raw bytes (an upload's piece hashes, `FILE_HASHES`' reply), and
//! the password work, done outside every lock: PBKDF2 runs between two calls to the tables,
//! and the login throttle ([`super::throttle`]) refuses a try too soon before any hashing.

use super::serve::{PairConn, SAVE_WAIT, list, ok_or_err};
use super::tables::accounts::Secret;
use super::tables::group_files::GroupFile;
use super::throttle;
use crate::password::{self, ITERATIONS, KEY_LEN, SALT_LEN};
use crate::protocol::account::{Ask, pieces_of};
use crate::server::{Connection, Next};

/// How long a new user or group waits for the twin's answer to its claim (see
/// [`super::tables`]'s claims) before this tracker decides alone.
const CLAIM_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// How long an account change waits for the twin to acknowledge it before answering.
const TWIN_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// A salt and iterations that no stored password has, for the hashing a login of an unknown
/// user does anyway (so that a wrong id takes as long as a wrong password).
const DUMMY_SALT: [u8; SALT_LEN] = [0; SALT_LEN];

fn derive(password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
    let mut out = vec![0u8; KEY_LEN];
    password::pbkdf2_hmac_sha1(password.as_bytes(), salt, iterations, &mut out);
    out
}

fn new_salt() -> Vec<u8> {
    let mut salt = Vec::with_capacity(SALT_LEN);
    while salt.len() < SALT_LEN {
        salt.extend_from_slice(&crate::rng::random_u64().to_le_bytes());
    }
    salt.truncate(SALT_LEN);
    salt
}

impl PairConn<'_> {
    /// Serves one account request, replying through `conn`. An upload refused before its
    /// piece hashes were read ends the connection (they would be read as lines).
    pub fn serve_account(
        &mut self,
        token: String,
        ask: Ask,
        conn: &mut Connection,
    ) -> Result<Next, String> {
        let changes = matches!(
            ask,
            Ask::CreateUser { .. }
                | Ask::Login { .. }
                | Ask::Logout
                | Ask::CreateGroup { .. }
                | Ask::JoinGroup { .. }
                | Ask::AcceptRequest { .. }
                | Ask::RejectRequest { .. }
                | Ask::LeaveGroup { .. }
                | Ask::UploadFile { .. }
                | Ask::StopShare { .. }
        );
        let t = self.tables;
        let verb = ask.command();
        let reply = match ask {
            Ask::UploadFile {
                group,
                key,
                size,
                name,
            } => {
                let file = GroupFile {
                    group: &group,
                    hash: &key,
                    size,
                };
                if let Err(e) = t.may_upload(&token, &verb, &file) {
                    conn.reply(&format!("ERR {e}")).map_err(|e| e.to_string())?;
                    return Err(format!("upload refused before its hashes: {e}"));
                }
                let raw = conn
                    .read_payload((pieces_of(size) * 20) as usize)
                    .map_err(|e| format!("upload's hashes: {e}"))?;
                let hex = crate::chunk::to_hex(&raw);
                let sum = crate::chunk::to_hex(&crate::hashing::sha1(hex.as_bytes()));
                if sum != key {
                    "ERR bad_hashes the piece hashes do not match the info hash".to_string()
                } else {
                    let done = t.upload(&token, &verb, &file, &name, &hex);
                    if done.is_ok() {
                        self.log
                            .say(format!("{} shared {key} {size} in {group}", self.from));
                    }
                    ok_or_err(done)
                }
            }
            Ask::FileHashes {
                group,
                key,
                size,
                from,
            } => match t.file_hashes(&token, &verb, &file_of(&group, &key, size), from) {
                Ok(hex) => {
                    let raw = crate::chunk::from_hex(&hex).unwrap_or_default();
                    let line = format!("OK {}", raw.len() / 20);
                    conn.reply_with(&line, &raw).map_err(|e| e.to_string())?;
                    return Ok(Next::Continue);
                }
                Err(e) => format!("ERR {e}"),
            },
            Ask::CreateUser { id, password } => self.create_user(&token, &id, &password),
            Ask::Login { id, password } => self.login(&token, &id, &password),
            Ask::Logout => ok_or_err(t.logout(&token)),
            Ask::CreateGroup { group } => {
                let key = format!("group {group}");
                match t.may_create_group(&token, &verb, &group) {
                    Err(e) => format!("ERR {e}"),
                    Ok(()) if !t.claim(&key, CLAIM_WAIT) => {
                        format!("ERR taken group {group} already exists")
                    }
                    Ok(()) => {
                        let made = t.create_group(&token, &verb, &group);
                        t.unclaim(&key);
                        ok_or_err(made)
                    }
                }
            }
            Ask::JoinGroup { group } => match t.join_group(&token, &verb, &group) {
                Ok(owner) => format!("OK {owner}"),
                Err(e) => format!("ERR {e}"),
            },
            Ask::ListRequests { group } => listed(t.list_requests(&token, &verb, &group)),
            Ask::AcceptRequest { group, user } => {
                ok_or_err(t.answer_request(&token, &verb, (&group, &user), true))
            }
            Ask::RejectRequest { group, user } => {
                ok_or_err(t.answer_request(&token, &verb, (&group, &user), false))
            }
            Ask::LeaveGroup { group } => match t.leave_group(&token, &verb, &group) {
                Ok(how) => format!("OK {how}"),
                Err(e) => format!("ERR {e}"),
            },
            Ask::ListGroups => listed(t.list_groups(&token, &verb)),
            Ask::ListFiles { group } => listed(t.list_files(&token, &verb, &group)),
            Ask::GroupSeeders { group, key, size } => {
                listed(t.group_seeders(&token, &verb, &file_of(&group, &key, size)))
            }
            Ask::StopShare { group, key, size } => {
                ok_or_err(t.stop_share(&token, &verb, &file_of(&group, &key, size)))
            }
        };
        let reply = if changes && reply.starts_with("OK") && !t.settle(SAVE_WAIT) {
            "ERR not_saved the state file cannot be written now".to_string()
        } else {
            reply
        };
        if changes && reply.starts_with("OK") {
            // An account or group made here is known at the twin before the client hears
            // OK, so the client's next step through the twin finds it (unless the twin is
            // away: then it gets it when it comes back).
            t.replicated(TWIN_WAIT);
        }
        conn.reply(&reply).map_err(|e| e.to_string())?;
        Ok(Next::Continue)
    }

    /// `CREATE_USER`: the password is hashed between the check that the id is free and the
    /// insertion, which checks again.
    fn create_user(&self, token: &str, id: &str, pw: &str) -> String {
        if let Err(e) = self.tables.may_create_user(token, id) {
            return format!("ERR {e}");
        }
        let salt = new_salt();
        let hash = derive(pw, &salt, ITERATIONS);
        let secret = Secret {
            salt,
            iterations: ITERATIONS,
            hash,
        };
        let key = format!("user {id}");
        if !self.tables.claim(&key, CLAIM_WAIT) {
            return format!("ERR taken user {id} already exists");
        }
        let made = self.tables.create_user(token, id, &secret);
        self.tables.unclaim(&key);
        if made.is_ok() {
            self.log.say(format!("{} created user {id}", self.from));
        }
        ok_or_err(made)
    }

    /// `LOGIN`: throttled per user id and per session before any hashing.
    fn login(&self, token: &str, id: &str, pw: &str) -> String {
        let t = self.tables;
        let stored = match t.login_secret(token, id) {
            Ok(stored) => stored,
            Err(e) => return format!("ERR {e}"),
        };
        let keys = throttle::keys(id, token);
        // Counted before the hashing: tries sent side by side cannot all pass.
        if let Err(wait) = t.throttle.begin(&keys) {
            return format!(
                "ERR slow_down too many wrong passwords for {id} or from this client; try again in {wait} s"
            );
        }
        let right = match &stored {
            Some(s) => password::same(&derive(pw, &s.salt, s.iterations), &s.hash),
            None => {
                let _ = derive(pw, &DUMMY_SALT, ITERATIONS);
                false
            }
        };
        if !right {
            self.log
                .say(format!("{} failed to log in as {id}", self.from));
            return "ERR denied wrong user id or password".to_string();
        }
        t.throttle.clear(&keys);
        let bound = t.bind_login(token, id);
        if bound.is_ok() {
            self.log.say(format!("{} logged in as {id}", self.from));
        }
        ok_or_err(bound)
    }
}

fn file_of<'a>(group: &'a str, hash: &'a str, size: u64) -> GroupFile<'a> {
    GroupFile { group, hash, size }
}

fn listed(lines: Result<Vec<String>, String>) -> String {
    match lines {
        Ok(lines) => list(lines),
        Err(e) => format!("ERR {e}"),
    }
}
