//! The swarm benchmark: `make bench`, `make bench-scale`, `make bench-quick`.
//!
//! Lays out one folder per peer as a grader would (the scripts, the release binary, one file
//! in `Shared/`), runs the real `sh tracker.sh` and `sh peer.sh`, times from the first peer's
//! start to the last peer's exit, checks every copy's SHA-1, and prints one line per run. In
//! the same run it measures this machine's floor for the same bytes: SHA-1 in 64 KiB pieces
//! on every core, writing them into fresh files, and one loopback TCP stream with large
//! writes; `ratio` is swarm seconds over floor seconds, `cpu_ratio` the same for
//! CPU-seconds.
//!
//! Options (after `--`): `--quick` (a small correctness smoke test, no timing claims),
//! `--scale` (the table N = 2..32 × 1, 32, 256 MiB, skipping runs above 4 GB moved),
//! `--tracker-rate` (how fast the tracker prints ACQUIRED lines into a file),
//! `--bittorrent` (the same swarm through aria2 and opentracker, alternating with p2p's),
//! `-n PEERS`, `--mib SIZE`, `--alive SECONDS`.
//!
//! Rooms: `run` (one swarm run, checked and measured), `floor` (the machine's floor),
//! `tracker_rate` (the tracker alone), `guards` (children and folders that clean up),
//! `bittorrent` (p2p beside aria2), `torrent_run` (one aria2 swarm), `bencode` (.torrent files),
//! `data` (the files both make and check).

mod bencode;
mod bittorrent;
mod data;
mod floor;
mod guards;
mod run;
mod torrent_run;
mod tracker_rate;

use floor::floor;
use run::swarm;
use tracker_rate::print_rate;

const BIN: &str = env!("CARGO_BIN_EXE_p2p");
const MIB: u64 = 1024 * 1024;

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut peers, mut mib, mut alive) = (8u64, 32u64, 1u64);
    let (mut quick, mut scale, mut tracker_rate, mut torrent) = (false, false, false, false);
    while let Some(a) = args.next() {
        let mut value = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage_error(&format!("{what} wants a number")))
        };
        match a.as_str() {
            "--bench" => {}
            "--quick" => quick = true,
            "--scale" => scale = true,
            "--tracker-rate" => tracker_rate = true,
            "--bittorrent" => torrent = true,
            "-n" => peers = value("-n"),
            "--mib" => mib = value("--mib"),
            "--alive" => alive = value("--alive"),
            other => usage_error(&format!("unknown option {other:?}")),
        }
    }
    if quick {
        let run = swarm(3, MIB + 7, 1);
        println!("{}", run.line());
        println!("bench-quick ok");
        return;
    }
    if torrent {
        if peers < 2 || mib == 0 {
            usage_error("--bittorrent wants -n 2 or more and --mib 1 or more");
        }
        bittorrent::compare(peers, mib * MIB);
        return;
    }
    if tracker_rate {
        println!("{}", print_rate(16384, 64));
        return;
    }
    if scale {
        println!(
            "{:>5} {:>8} {:>9} {:>9} {:>10} {:>8} {:>7}",
            "peers", "size", "moved", "seconds", "transfers", "MB/s", "ratio"
        );
        for mib in [1, 32, 256] {
            for peers in [2, 4, 8, 16, 32] {
                let moved = peers * (peers - 1) * mib * MIB;
                if moved > 4_000_000_000 {
                    continue;
                }
                let run = swarm(peers, mib * MIB, alive);
                let floor = floor(moved);
                println!(
                    "{peers:>5} {:>5}MiB {:>7.0}MB {:>9.3} {:>10.3} {:>8.0} {:>7.2}",
                    mib,
                    moved as f64 / 1e6,
                    run.secs,
                    run.transfers_secs,
                    run.mbps(),
                    run.secs / floor.total()
                );
            }
        }
        return;
    }
    let run = swarm(peers, mib * MIB, alive);
    let floor = floor(run.moved());
    println!("{}", run.line());
    println!(
        "{} ratio={:.2} cpu_ratio={:.2}",
        floor.line(run.moved()),
        run.secs / floor.total(),
        run.cpu_secs / floor.cpu
    );
}

fn usage_error(msg: &str) -> ! {
    eprintln!("bench: {msg}");
    std::process::exit(2);
}
