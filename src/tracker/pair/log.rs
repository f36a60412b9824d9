//! The pair tracker's log: timestamped lines appended to its log file by a thread of its
//! own, so that no connection waits for the disk.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::thread;
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends timestamped lines to the log file, on a thread of its own.
#[derive(Clone)]
pub struct Log(Sender<String>);

impl Log {
    pub fn open(path: &Path) -> io::Result<Log> {
        // Its owner's only, as the state log: it names who shared what in which group.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        let (tx, rx) = mpsc::channel::<String>();
        thread::Builder::new()
            .name("tracker-log".into())
            .spawn(move || {
                for line in rx {
                    let secs = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    let _ = writeln!(file, "{secs:.3} {line}");
                }
            })?;
        Ok(Log(tx))
    }

    pub fn say(&self, line: String) {
        let _ = self.0.send(line);
    }
}
