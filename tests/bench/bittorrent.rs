//! `make bench-bittorrent`: p2p beside aria2 + opentracker on the same work, in one
//! invocation. Three rounds, each p2p's swarm (`run::swarm(n, size, 1)`) then aria2's
//! (`torrent_run::aria2_swarm(n, size)`); every run's line, then this machine's floor for the
//! same bytes, both medians, the ratios p2p / aria2 and each side's CPU over the floor's. Ratios are only ever computed from runs of this one invocation. Without
//! `aria2c` or `opentracker` on PATH, p2p's rounds still run and aria2's are skipped.

use super::floor::floor;
use super::run::{Run, swarm};
use super::torrent_run::{Aria2Run, aria2_swarm};
use std::path::Path;

const ROUNDS: usize = 3;

/// Whether an executable named `name` is in one of PATH's folders.
fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| is_executable(&dir.join(name))))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Returns free heap memory and resets this process's peak RSS to its current RSS. A child's
/// peak RSS (from wait4) starts at the peak of the process it was spawned from: exec records
/// the old address space's peak, and a vforked child's old address space is the bench's.
/// Reading a p2p tracker's output lifts the bench's peak to that output's size, so without
/// this every later child would report it.
fn reset_peak_rss() {
    unsafe extern "C" {
        fn malloc_trim(pad: usize) -> i32;
    }
    // SAFETY: glibc's malloc_trim only returns free heap memory to the system.
    unsafe { malloc_trim(0) };
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The medians of one side's runs: wall seconds, CPU-seconds, CPU-seconds per GB.
struct Medians {
    secs: f64,
    cpu: f64,
    cpu_per_gb: f64,
}

impl Medians {
    fn of(runs: &[(f64, f64, f64)]) -> Medians {
        let pick = |f: fn(&(f64, f64, f64)) -> f64| median(runs.iter().map(f).collect());
        Medians {
            secs: pick(|r| r.0),
            cpu: pick(|r| r.1),
            cpu_per_gb: pick(|r| r.2),
        }
    }

    fn text(&self, who: &str) -> String {
        format!(
            "{who} median seconds={:.3} cpu={:.2}s cpu_per_gb={:.2}s",
            self.secs, self.cpu, self.cpu_per_gb
        )
    }
}

fn p2p_figures(run: &Run) -> (f64, f64, f64) {
    (run.secs, run.cpu_secs, run.cpu_per_gb())
}

fn aria2_figures(run: &Aria2Run) -> (f64, f64, f64) {
    (run.secs, run.cpu_secs, run.cpu_per_gb())
}

pub fn compare(peers: u64, size: u64) {
    let missing: Vec<&str> = ["aria2c", "opentracker"]
        .into_iter()
        .filter(|tool| !on_path(tool))
        .collect();
    if !missing.is_empty() {
        println!(
            "bittorrent: {} not on PATH; aria2 is skipped (apt-get install aria2 opentracker)",
            missing.join(" and ")
        );
    }
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        reset_peak_rss();
        let run = swarm(peers, size, 1);
        println!("round {round} p2p {}", run.line());
        ours.push(p2p_figures(&run));
        if missing.is_empty() {
            reset_peak_rss();
            let run = aria2_swarm(peers, size);
            println!("round {round} {}", run.line());
            theirs.push(aria2_figures(&run));
        }
    }
    let ours = Medians::of(&ours);
    if theirs.is_empty() {
        println!("bittorrent: {} | aria2 skipped", ours.text("p2p"));
        return;
    }
    let theirs = Medians::of(&theirs);
    // The floor of the same bytes, in this invocation too: what neither side can go below.
    let moved = peers * (peers - 1) * size;
    let floor = floor(moved);
    let floor_per_gb = floor.cpu / (moved as f64 / 1e9);
    println!("bittorrent: {}", floor.line(moved));
    println!(
        "bittorrent: {} | {} | ratio wall={:.2} cpu_per_gb={:.2} | over the floor's cpu_per_gb: p2p {:.2} aria2 {:.2}",
        ours.text("p2p"),
        theirs.text("aria2"),
        ours.secs / theirs.secs,
        ours.cpu_per_gb / theirs.cpu_per_gb,
        ours.cpu_per_gb / floor_per_gb,
        theirs.cpu_per_gb / floor_per_gb
    );
}
