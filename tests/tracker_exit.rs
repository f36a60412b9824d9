//! The swarm tracker ended by a signal a user sends (Ctrl-C, `kill`, a closed terminal):
//! it removes the port.txt it wrote, unless another tracker has replaced it since, says so in
//! one line on stderr, prints nothing on stdout, and exits 128 + the signal's number.

mod common;

use common::*;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

const EXIT_WITHIN: Duration = Duration::from_secs(10);

/// Sends `signal` (a name `kill(1)` knows, like "TERM") to `proc`.
fn send(proc: &Proc, signal: &str) {
    let sent = Command::new("kill")
        .args([format!("-{signal}"), proc.pid().to_string()])
        .stderr(Stdio::null())
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} failed");
}

/// How a status reads in a failure message: an exit code, or the signal that killed it.
fn shown(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        _ => format!("{status:?}"),
    }
}

/// Starts a tracker, sends it `signal`, and checks the whole polite ending.
fn ends_politely_on(signal: &str, code: i32) {
    let root = TempDir::new(&format!("exit-{signal}"));
    let (mut tracker, _port) = start_tracker(root.path(), root.path());
    send(&tracker, signal);
    let status = tracker.wait(EXIT_WITHIN);
    let err = tracker.stderr();
    assert_eq!(
        status.code(),
        Some(code),
        "{}; stderr: {err}",
        shown(status)
    );
    assert!(
        !root.path().join("port.txt").exists(),
        "port.txt stayed; stderr: {err}"
    );
    assert_eq!(tracker.stdout(), "", "stdout is the grading contract's");
    let said = format!("tracker: ended by SIG{signal}; removed port.txt");
    assert!(err.lines().any(|l| l == said), "stderr: {err}");
}

#[test]
fn kill_removes_port_txt_and_exits_143() {
    ends_politely_on("TERM", 143);
}

#[test]
fn ctrl_c_removes_port_txt_and_exits_130() {
    ends_politely_on("INT", 130);
}

#[test]
fn a_closed_terminal_removes_port_txt_and_exits_129() {
    ends_politely_on("HUP", 129);
}

#[test]
fn a_port_txt_another_tracker_replaced_stays() {
    let root = TempDir::new("exit-replaced");
    let (mut tracker, port) = start_tracker(root.path(), root.path());
    let port_file = root.path().join("port.txt");
    let other = format!("{}\n", if port == 1 { 2 } else { port - 1 });
    fs::write(&port_file, &other).expect("replace port.txt");
    send(&tracker, "TERM");
    let status = tracker.wait(EXIT_WITHIN);
    let err = tracker.stderr();
    assert_eq!(status.code(), Some(143), "{}; stderr: {err}", shown(status));
    assert_eq!(
        fs::read_to_string(&port_file).ok().as_deref(),
        Some(other.as_str()),
        "another tracker's port.txt must stay; stderr: {err}"
    );
    assert!(
        err.lines()
            .any(|l| l.starts_with("tracker: ended by SIGTERM; left port.txt")),
        "stderr: {err}"
    );
    assert_eq!(tracker.stdout(), "");
}

/// `nohup`, or `cmd &` in a script, starts the tracker with a signal ignored: it stays
/// ignored. The SIGINT goes first; were it caught, the tracker would exit 130 and say SIGINT.
#[test]
fn a_signal_ignored_by_whoever_started_the_tracker_stays_ignored() {
    let root = TempDir::new("exit-ignored");
    let script = format!("trap '' INT; exec '{BIN}' tracker");
    let mut tracker = Proc::spawn("sh", &["-c", &script], root.path(), root.path(), "tracker");
    let port_file = root.path().join("port.txt");
    assert!(
        wait_until(EXIT_WITHIN, || fs::read_to_string(&port_file)
            .is_ok_and(|s| s.ends_with('\n'))),
        "no port.txt; stderr: {}",
        tracker.stderr()
    );
    send(&tracker, "INT");
    send(&tracker, "TERM");
    let status = tracker.wait(EXIT_WITHIN);
    let err = tracker.stderr();
    assert_eq!(status.code(), Some(143), "{}; stderr: {err}", shown(status));
    assert!(!port_file.exists(), "stderr: {err}");
    assert!(!err.contains("SIGINT"), "stderr: {err}");
}
