//! What makes a failed bench run leave nothing behind: folders removed and children killed
//! and reaped on drop, a failure that unwinds through them, and the wait for a tracker's
//! port.txt.

use std::fs;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

/// A failed run: unwinds, so the guards kill every child and remove the folder.
pub fn fail(msg: &str) -> ! {
    panic!("bench: {msg}");
}

/// A temporary folder, removed on drop.
pub struct Work(pub PathBuf);

impl Drop for Work {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Child processes that are killed and reaped on drop unless already reaped, so a failed
/// run leaves nothing behind.
pub struct Children(pub Vec<(std::process::Child, bool)>);

impl Children {
    /// Waits for child `i` and returns what it used.
    pub fn reap(&mut self, i: usize) -> Usage {
        let (child, reaped) = &mut self.0[i];
        *reaped = true;
        reap(child.id())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (child, reaped) in &mut self.0 {
            if !*reaped {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// What a reaped child used, from the kernel's accounting (wait4).
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub status: i32,
    /// Peak resident memory, KiB.
    pub rss_kib: i64,
    /// User plus system CPU time, seconds.
    pub cpu_secs: f64,
}

/// Waits for `pid` and returns its exit status, peak RSS and CPU time.
pub fn reap(pid: u32) -> Usage {
    unsafe extern "C" {
        fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut [i64; 18]) -> i32;
    }
    let mut status = 0i32;
    let mut usage = [0i64; 18];
    // SAFETY: wait4 writes one int and one struct rusage (18 longs on 64-bit Linux).
    let r = unsafe { wait4(pid as i32, &mut status, 0, &mut usage) };
    if r != pid as i32 {
        fail(&format!("wait4 failed for {pid}"));
    }
    // struct rusage opens with ru_utime and ru_stime, two timevals (seconds, microseconds),
    // then ru_maxrss.
    let secs = |s: i64, us: i64| s as f64 + us as f64 * 1e-6;
    Usage {
        status,
        rss_kib: usage[4],
        cpu_secs: secs(usage[0], usage[1]) + secs(usage[2], usage[3]),
    }
}

/// This process's CPU-seconds so far (user + system, every thread), from getrusage.
pub fn own_cpu_secs() -> f64 {
    unsafe extern "C" {
        fn getrusage(who: i32, usage: *mut [i64; 18]) -> i32;
    }
    const RUSAGE_SELF: i32 = 0;
    let mut usage = [0i64; 18];
    // SAFETY: getrusage writes one struct rusage (18 longs on 64-bit Linux).
    if unsafe { getrusage(RUSAGE_SELF, &mut usage) } != 0 {
        fail("getrusage failed");
    }
    usage[0] as f64 + usage[1] as f64 * 1e-6 + usage[2] as f64 + usage[3] as f64 * 1e-6
}

/// Waits up to 10 s for the tracker in `dir` to write its port to port.txt.
pub fn wait_for_port(dir: &Path) -> u16 {
    let port_file = dir.join("port.txt");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = fs::read_to_string(&port_file)
            .ok()
            .and_then(|s| s.trim().parse::<u16>().ok())
        {
            return p;
        }
        if Instant::now() > deadline {
            fail("tracker wrote no port.txt");
        }
        thread::sleep(Duration::from_millis(1));
    }
}
