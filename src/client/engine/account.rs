//! The account logged in here (issue 14): `login` and `logout`, logging in again by itself in
//! a session the trackers opened anew, and the group records a login wakes and a logout puts
//! to sleep. The password lives in memory only, for that new session; a group record of a
//! user not logged in here is dormant (saved, not in the store, not registered, not listed).

use super::state::Saved;
use super::tracker_link::{call_on, describe, nothing};
use super::view::escape;
use super::{Answer, Core, Kind, Record};
use crate::link::LinkError;
use crate::protocol::{Ask, Request};
use std::net::SocketAddr;

/// Who is logged in here.
pub(super) struct Login {
    pub(super) user: String,
    password: String,
}

/// An account request (its token is filled in by [`Core::call`]).
pub(super) fn account(ask: Ask) -> Request {
    Request::Account {
        token: String::new(),
        ask,
    }
}

/// What the user is told when a request failed: the tracker's human text for a refusal
/// (`ERR <code> <text>`), else that no tracker answered.
pub(super) fn said(e: &LinkError) -> String {
    match e {
        LinkError::Refused(r) => escape(r.split_once(' ').map_or(r.as_str(), |(_, t)| t)),
        other => format!("no tracker answers ({})", describe(other)),
    }
}

/// `n file` or `n files`.
pub(super) fn files(n: usize) -> String {
    format!("{n} file{}", super::view::plural(n))
}

impl Core {
    /// Sends `ask`; the reply's words, or the line to show.
    pub(super) fn ask(&mut self, ask: Ask) -> Result<Vec<String>, String> {
        self.call(&account(ask)).map_err(|e| said(&e))
    }

    /// Sends `ask`, whose reply is `OK <n>` and n lines; the lines, or the line to show.
    pub(super) fn ask_list(&mut self, ask: Ask) -> Result<Vec<String>, String> {
        self.call_list(&account(ask)).map_err(|e| said(&e))
    }

    /// The user logged in here.
    pub(super) fn user(&self) -> Option<String> {
        self.account.as_ref().map(|l| l.user.clone())
    }

    pub(super) fn login(&mut self, id: String, password: String) -> Answer {
        if let Some(l) = &self.account {
            return Err(format!("already logged in as {} (logout first)", l.user));
        }
        let login = Ask::Login {
            id: id.clone(),
            password: password.clone(),
        };
        match self.call(&account(login.clone())) {
            Ok(_) => {}
            // A logout the trackers never heard (they did not answer then): end it now.
            Err(LinkError::Refused(r)) if r.starts_with("logged_in ") => {
                self.ask(Ask::Logout)?;
                self.ask(login)?;
            }
            Err(e) => return Err(said(&e)),
        }
        self.account = Some(Login {
            user: id.clone(),
            password,
        });
        let woken = self.wake(&id);
        self.save();
        self.notes.note(&format!("login {id}"));
        if woken == 0 {
            return Ok(vec![format!("logged in as {id}")]);
        }
        Ok(vec![format!(
            "logged in as {id} ({} shared again)",
            files(woken)
        )])
    }

    pub(super) fn logout(&mut self) -> Answer {
        let Some(login) = self.account.take() else {
            return Err("not logged in".to_string());
        };
        let slept = self.put_to_sleep(&login.user);
        self.save();
        if let Err(e) = self.call(&account(Ask::Logout)) {
            // The next login ends that session's login first.
            self.notes
                .note(&format!("the trackers did not take the logout: {e}"));
        }
        self.notes.note(&format!("logout {}", login.user));
        if slept == 0 {
            return Ok(vec![format!("logged out {}", login.user)]);
        }
        Ok(vec![format!(
            "logged out {} (stopped sharing {} until the next login)",
            login.user,
            files(slept)
        )])
    }

    /// In a session just opened at `addr` (`token`), logs in again as the user logged in
    /// here, before anything is registered in it. A refusal (a password changed, a
    /// throttle) is said, and logs the user out here as `logout` would.
    pub(super) fn login_again(&mut self, addr: SocketAddr, token: &str) -> Result<(), LinkError> {
        let Some(l) = &self.account else {
            return Ok(());
        };
        let user = l.user.clone();
        let req = Request::Account {
            token: token.to_string(),
            ask: Ask::Login {
                id: user.clone(),
                password: l.password.clone(),
            },
        };
        match call_on(&mut self.link, addr, &req, &mut nothing) {
            Ok(_) => Ok(()),
            Err(LinkError::Refused(r)) if r.starts_with("logged_in ") => Ok(()),
            Err(e @ LinkError::Refused(_)) => {
                // Logged out here too, so that `login` can be typed again and nothing
                // pretends to be shared: as a `logout` would.
                self.account = None;
                self.refused_login = Some((user, said(&e)));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Logs out here the user the trackers would not log in again (see
    /// [`Core::login_again`]), as `logout` would, and says so.
    pub(super) fn finish_refused_login(&mut self) {
        let Some((user, why)) = self.refused_login.take() else {
            return;
        };
        self.put_to_sleep(&user);
        self.save();
        self.event(format!(
            "logged out {user}: the trackers did not log {user} in again in a new session ({why})"
        ));
    }

    /// Brings back `user`'s dormant group records (shares re-hashed, downloads resuming with
    /// what verifies on disk) and registers them; returns how many came back.
    fn wake(&mut self, user: &str) -> usize {
        let (mine, others): (Vec<Saved>, Vec<Saved>) = std::mem::take(&mut self.dormant)
            .into_iter()
            .partition(|s| s.group().is_some_and(|(u, _)| u == user));
        self.dormant = others;
        let before = self.records.len();
        for saved in mine {
            self.bring_back(saved);
        }
        let keys: Vec<String> = self.records[before..]
            .iter()
            .map(|r| r.key.clone())
            .collect();
        for key in &keys {
            self.register(key);
        }
        if !keys.is_empty() {
            self.refresh_holders();
        }
        keys.len()
    }

    /// Takes `user`'s group records out of the store (their data stays on disk) and off
    /// the trackers' lists, saved as dormant; returns how many there were.
    fn put_to_sleep(&mut self, user: &str) -> usize {
        let mut slept = 0;
        let mut at = self.records.len();
        while at > 0 {
            at -= 1;
            let r = &self.records[at];
            if r.group.as_ref().is_none_or(|g| g.user != user) {
                continue;
            }
            let saved = self.saved_of(r);
            self.dormant.push(saved);
            self.drop_record(at, false);
            slept += 1;
        }
        let (mine, others): (Vec<_>, Vec<_>) = std::mem::take(&mut self.lost)
            .into_iter()
            .partition(|l| l.saved.group().is_some_and(|(u, _)| u == user));
        self.lost = others;
        self.dormant.extend(mine.into_iter().map(|l| l.saved));
        slept
    }

    /// Takes record `at` away. The store entry and the trackers' registration go with its
    /// last record: a download still in progress is cancelled, its partial data deleted
    /// when `delete`, kept (paused) otherwise. Returns the record, and whether it was an
    /// unfinished download.
    pub(super) fn drop_record(&mut self, at: usize, delete: bool) -> (Record, bool) {
        let r = self.records.remove(at);
        let unfinished = match r.kind {
            Kind::Download { .. } => self
                .store
                .progress(&r.key)
                .is_none_or(|(_, complete)| !complete),
            Kind::Share => false,
        };
        if !self.records.iter().any(|o| o.key == r.key) {
            self.unregister(&r.key, r.meta.size, &r.meta.name);
            if delete {
                self.store.discard(&r.key);
            } else {
                self.store.set_aside(&r.key);
            }
        } else if r.group.is_none() {
            // Held now for groups only: registered again as private.
            self.register(&r.key);
        }
        (r, unfinished)
    }
}
