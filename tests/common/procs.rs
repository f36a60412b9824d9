//! Child processes and the guards that keep a failing test from leaking them: temporary
//! folders removed on drop, the real binary spawned with its output in files and killed on
//! drop, bounded waits, and what /proc says about a process's memory and CPU.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_p2p");

/// A folder under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path =
            std::env::temp_dir().join(format!("p2p-test-{tag}-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; returns whether it held.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// A child process whose stdout and stderr go to files; killed on drop.
pub struct Proc {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    pub out: PathBuf,
    pub err: PathBuf,
    pub started: Instant,
    status: Option<(ExitStatus, Instant)>,
}

impl Proc {
    /// Runs `program args` in `dir`, with output files `<logs>/<name>.out` and `.err`.
    pub fn spawn(program: &str, args: &[&str], dir: &Path, logs: &Path, name: &str) -> Proc {
        Proc::spawn_inner(program, args, dir, logs, name, false)
    }

    /// Like [`Proc::spawn`], with stdin a pipe that [`Proc::send_line`] writes to.
    pub fn spawn_interactive(
        program: &str,
        args: &[&str],
        dir: &Path,
        logs: &Path,
        name: &str,
    ) -> Proc {
        Proc::spawn_inner(program, args, dir, logs, name, true)
    }

    fn spawn_inner(
        program: &str,
        args: &[&str],
        dir: &Path,
        logs: &Path,
        name: &str,
        piped: bool,
    ) -> Proc {
        let out = logs.join(format!("{name}.out"));
        let err = logs.join(format!("{name}.err"));
        // Taken before the spawn, so that `lifetime` is never shorter than the real one.
        let started = Instant::now();
        let mut cmd = Command::new(program);
        cmd.args(args)
            .current_dir(dir)
            .stdin(if piped { Stdio::piped() } else { Stdio::null() })
            .stdout(fs::File::create(&out).expect("stdout file"))
            .stderr(fs::File::create(&err).expect("stderr file"));
        default_signals(&mut cmd);
        let mut child = cmd.spawn().expect("spawn");
        Proc {
            stdin: child.stdin.take(),
            child,
            out,
            err,
            started,
            status: None,
        }
    }

    /// Writes one line to the process's stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("spawned with spawn_interactive");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write stdin");
        stdin.flush().expect("flush stdin");
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The exit status, if the process has exited (remembering when it was first seen).
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.status = Some((s, Instant::now()));
        }
        self.status.map(|(s, _)| s)
    }

    /// Waits up to `limit` for the process to exit; panics with its stderr if it does not.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        if !wait_until(limit, || self.try_status().is_some()) {
            panic!(
                "process did not exit within {limit:?}; stderr: {}",
                self.stderr()
            );
        }
        self.try_status().expect("status")
    }

    /// How long the process lived, as seen from here (an upper bound of its own view).
    pub fn lifetime(&self) -> Option<Duration> {
        self.status.map(|(_, at)| at - self.started)
    }

    pub fn stdout(&self) -> String {
        fs::read_to_string(&self.out).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        fs::read_to_string(&self.err).unwrap_or_default()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the process (SIGSTOP): it keeps its sockets but answers nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen process run again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Sends a signal by `kill(1)` (std has no other way than SIGKILL); a process already
    /// gone is no failure.
    fn signal(&self, which: &str) {
        let _ = Command::new("kill")
            .args([which, &self.pid().to_string()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process's peak resident memory in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmHWM:")
}

/// A process's resident memory now, in KiB (VmRSS).
pub fn rss_kib(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:")
}

/// A `kB` field of /proc/<pid>/status (0 once the process is gone).
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A process's CPU time so far, in clock ticks (user + system).
pub fn cpu_ticks(pid: u32) -> u64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which sits in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    num(11) + num(12)
}

/// Gives the child the default action for SIGHUP, SIGINT, SIGQUIT and SIGTERM, whatever this
/// test runner inherited: started under `nohup`, or in the background of a script, it would
/// ignore some of them, and so would every child (a signal ignored at exec stays ignored).
fn default_signals(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    unsafe extern "C" {
        fn signal(signum: i32, handler: usize) -> usize;
    }
    const SIG_DFL: usize = 0;
    // SAFETY: runs in the child between fork and exec; signal(2) is async-signal-safe and
    // changes nothing but the child's own dispositions.
    unsafe {
        cmd.pre_exec(|| {
            for signum in [1, 2, 3, 15] {
                signal(signum, SIG_DFL);
            }
            Ok(())
        });
    }
}

/// Sends SIGKILL to every process of group `pgid` (a child started with
/// `process_group(0)`), by the system call itself: `kill(1)` from procps-ng 4.0.2 reads
/// `kill -9 -PGID` as a signal to every process there is. A group id of 0 or 1 (this test's
/// own group, or init) is never signalled.
pub fn kill_group(pgid: u32) {
    unsafe extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    const SIGKILL: i32 = 9;
    if let Ok(pgid) = i32::try_from(pgid)
        && pgid > 1
    {
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        unsafe { kill(-pgid, SIGKILL) };
    }
}
