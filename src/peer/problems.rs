//! Where the peer's diagnostics go: a problem with one remote (refused, reset, bad data) and
//! a file given up (a download that cannot be stored, a seed that changed). The swarm peer
//! says them on stderr, `peer: ` first; the interactive client sends them to its log file, or
//! nowhere, because its prompt hears only what changes the user's state (it says that in
//! lines of its own: `failed: name: why`, `[F] name: why`).

use std::fs::File;
use std::io::Write;
use std::sync::OnceLock;

/// Where problems go once set: a file (appended to), or nowhere; unset, stderr.
static PROBLEMS: OnceLock<Option<File>> = OnceLock::new();

/// Sends every later problem to `log` (appended, one line each) or, when it is None,
/// nowhere, instead of stderr. Set once, at the start (a second call changes nothing).
pub fn report_to(log: Option<File>) {
    let _ = PROBLEMS.set(log);
}

/// Reports one problem where [`report_to`] said.
pub fn report(problem: &str) {
    match PROBLEMS.get() {
        None => eprintln!("peer: {problem}"),
        // One write of the whole line: an appending file takes it in one piece, no lock held.
        Some(Some(log)) => {
            let _ = (&*log).write_all(format!("{problem}\n").as_bytes());
        }
        Some(None) => {}
    }
}
