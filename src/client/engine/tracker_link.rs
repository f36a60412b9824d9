//! The link to the trackers: one connection at a time, switching to the other tracker when
//! the current one stops answering, and registering every record with whichever tracker is
//! answering so that a failover loses nothing.

use super::Core;
use crate::link::{Link, LinkError, number};
use crate::protocol::{Request, Role};
use std::time::Duration;

/// How long to wait for a tracker to connect or answer before trying the other.
const TRACKER_TIMEOUT: Duration = Duration::from_secs(2);

impl Core {
    /// Connects to the current tracker, or failing that the other, registering everything.
    pub(super) fn connect_any(&mut self) -> Result<(), LinkError> {
        let mut last = None;
        for _ in 0..self.trackers.len() {
            let addr = self.trackers[self.current];
            match Link::connect(addr, Role::Client, TRACKER_TIMEOUT) {
                Ok(mut link) => {
                    if self.token.is_none() {
                        let words = link.call(&Request::Open { addr: self.me })?;
                        self.token = words.first().cloned();
                    }
                    self.link = Some(link);
                    self.notes.note(&format!("using tracker {addr}"));
                    let keys: Vec<String> = self.records.iter().map(|r| r.key.clone()).collect();
                    for key in keys {
                        let req = self.seed_request(&key);
                        if let (Some(req), Some(link)) = (req, self.link.as_mut()) {
                            link.call(&req)?;
                        }
                    }
                    return Ok(());
                }
                Err(e) => {
                    self.current = (self.current + 1) % self.trackers.len();
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(LinkError::Garbled("no tracker".into())))
    }

    /// Tells the tracker which pieces of `key` this client holds.
    pub(super) fn register(&mut self, key: &str) {
        let Some(req) = self.seed_request(key) else {
            return;
        };
        if let Err(e) = self.call(&req) {
            eprintln!("client: the trackers did not take a registration: {e}");
        }
    }

    fn seed_request(&self, key: &str) -> Option<Request> {
        let r = self.records.iter().find(|r| r.key == key)?;
        let (bits, _) = self.store.progress(key)?;
        Some(Request::Seed {
            token: self.token.clone()?,
            key: key.to_string(),
            name: r.meta.name.clone(),
            size: r.meta.size,
            bits: bits.to_word(),
        })
    }

    /// Sends one request, switching to the other tracker (and registering everything there)
    /// when the current one does not answer.
    pub(super) fn call(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        self.call_then(req, |_, _| Ok(()))
    }

    /// Like [`Core::call`] for a reply of `OK <n>` and `n` lines; returns the lines.
    pub(super) fn call_list(&mut self, req: &Request) -> Result<Vec<String>, LinkError> {
        let mut lines = Vec::new();
        self.call_then(req, |link, words| {
            lines = link.lines(number(words, 0)?)?;
            Ok(())
        })?;
        Ok(lines)
    }

    fn call_then(
        &mut self,
        req: &Request,
        mut more: impl FnMut(&mut Link, &[String]) -> Result<(), LinkError>,
    ) -> Result<Vec<String>, LinkError> {
        for attempt in 0..2 {
            if self.link.is_none() {
                self.connect_any()?;
            }
            let Some(link) = self.link.as_mut() else {
                continue;
            };
            let outcome = link
                .call(req)
                .and_then(|words| more(link, &words).map(|()| words));
            match outcome {
                Ok(words) => return Ok(words),
                Err(e @ LinkError::Refused(_)) => return Err(e),
                Err(e) => {
                    let lost = self.trackers[self.current];
                    eprintln!("client: tracker {lost} stopped answering ({e}); switching");
                    self.notes.note(&format!("lost tracker {lost}: {e}"));
                    self.link = None;
                    self.current = (self.current + 1) % self.trackers.len();
                    if attempt == 1 {
                        return Err(e);
                    }
                }
            }
        }
        Err(LinkError::Garbled("no tracker".into()))
    }
}
