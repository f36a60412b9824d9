//! The client's `--log` file: one line per thing the client did (shared, fetched, removed,
//! which tracker it uses), appended as it happens, for a user reading back what happened.
//! Writing it never fails a command.

use crate::error::Error;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// The open `--log` file, or nothing when none was asked for.
pub(super) struct Notes(Option<File>);

impl Notes {
    /// Opens `path` for appending, creating it if needed.
    pub(super) fn open(path: Option<PathBuf>) -> Result<Notes, Error> {
        let file = match path {
            Some(p) => Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .mode(0o600)
                    .open(&p)
                    .map_err(|e| Error::failed(p.display(), e))?,
            ),
            None => None,
        };
        Ok(Notes(file))
    }

    /// Appends one line, if there is a file.
    pub(super) fn note(&mut self, line: &str) {
        if let Some(f) = &mut self.0 {
            let _ = writeln!(f, "{line}");
        }
    }
}
