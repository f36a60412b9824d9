//! The end of a file here: given up (a download that cannot be stored or does not check
//! out, a seed that changed or vanished) and why, or forgotten at the user's word. A partial
//! file is emptied before it is deleted, so its space comes back at once even while a worker
//! still holds it open (the disk-full case must not stay full until the client exits).

use super::{Status, Store};
use crate::peer::problems::report;
use std::fs::{self, File};
use std::path::Path;

impl Store {
    /// Gives file `name` up for good, saying why once (see [`crate::peer::problems`]): a
    /// download that cannot be
    /// stored or does not check out is deleted; a file that vanished or changed in `Shared/`
    /// is no longer served. The tracker is told with `DROP` (see [`Store::take_drops`]).
    pub fn give_up(&self, name: &str, why: &dyn std::fmt::Display) {
        self.give_up_as(name, why, None);
    }

    /// [`Store::give_up`], with `short` (if any) as what [`Store::failure`] tells the user
    /// instead of the whole of `why` (`disk full` rather than the OS error's words).
    pub(super) fn give_up_as(&self, name: &str, why: &dyn std::fmt::Display, short: Option<&str>) {
        let mut inner = self.lock();
        let local = inner.files.get_mut(name);
        let partial = local.as_ref().map(|l| (l.path.clone(), l.file.clone()));
        let label = local
            .as_ref()
            .map_or_else(|| name.into(), |l| l.label.clone());
        let now = match local.as_ref().map(|l| l.status) {
            Some(Status::Downloading) | None => Status::Failed,
            Some(Status::Own | Status::Complete) => Status::Lost,
            // Already given up, or never offered: nothing more to do.
            Some(Status::Failed | Status::Lost | Status::Withdrawn) => return,
        };
        if let Some(local) = local {
            local.status = now;
            local.why = Some(short.map_or_else(|| why.to_string(), String::from));
        }
        inner.given_up.insert(name.to_string());
        inner.outbox.drop_file(name);
        drop(inner);
        self.changed.notify_all();
        if now == Status::Failed {
            if let Some((path, file)) = partial {
                delete_partial(&path, &file);
            }
            report(&format!("giving up {label:?}: {why}"));
        } else {
            report(&format!("no longer sharing {label:?}: {why}"));
        }
    }

    /// Why `name` was given up (a download that failed, a seed that changed or vanished),
    /// or None while it is fine.
    pub fn failure(&self, name: &str) -> Option<String> {
        let inner = self.lock();
        let local = inner.files.get(name)?;
        matches!(local.status, Status::Failed | Status::Lost)
            .then(|| local.why.clone().unwrap_or_default())
    }

    /// Forgets `name` for good, as if it had never been here: a download in progress stops
    /// and its partial data is deleted at once (its space released, though a worker may
    /// still hold the file open), and it may be added again later, even if it was given up.
    pub fn discard(&self, name: &str) {
        let mut inner = self.lock();
        let gone = inner.files.remove(name);
        inner.given_up.remove(name);
        inner.outbox.forget(name);
        drop(inner);
        self.changed.notify_all();
        // A download being moved into place is complete: emptying its file now would empty
        // the finished file, so it is left to land.
        let partial = |l: &super::Local| {
            matches!(l.status, Status::Downloading | Status::Failed) && !l.finalizing
        };
        if let Some(l) = gone.filter(partial) {
            delete_partial(&l.path, &l.file);
        }
    }

    /// Forgets `name` as [`Store::discard`] does, but keeps a download's partial data on
    /// disk (a client whose user logs out pauses that user's downloads; the next login
    /// resumes them, re-verifying what is there).
    pub fn set_aside(&self, name: &str) {
        let mut inner = self.lock();
        inner.files.remove(name);
        inner.given_up.remove(name);
        inner.outbox.forget(name);
        drop(inner);
        self.changed.notify_all();
    }

    /// Whether `name` was given up (a download that failed, a seed that changed or vanished).
    pub fn failed(&self, name: &str) -> bool {
        let inner = self.lock();
        inner
            .files
            .get(name)
            .is_some_and(|l| matches!(l.status, Status::Failed | Status::Lost))
    }
}

/// Deletes a download's partial file, emptying it first: workers may still hold it open,
/// and an open file deleted keeps its space until the last handle closes.
fn delete_partial(path: &Path, file: &File) {
    let _ = file.set_len(0);
    let _ = fs::remove_file(path);
}
