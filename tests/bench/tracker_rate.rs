//! The tracker alone (`--tracker-rate`): how fast it prints ACQUIRED lines into a file when
//! fake peers report pieces as fast as it answers.

use super::BIN;
use super::guards::{Children, Work, fail, wait_for_port};
use std::fs;
use std::io::Write;
use std::net::TcpStream;
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

/// Reads one reply line from a raw connection.
fn reply(r: &mut std::io::BufReader<TcpStream>) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(r, &mut line).expect("reply");
    line
}

/// Measures the tracker alone: one fake peer offers a file of `pieces` pieces, a second
/// reports holding all of it, `batch` pieces per HAVE line, pipelined; the tracker prints 128
/// ACQUIRED lines per piece into a file. Reports lines per second until the last reply.
pub fn print_rate(pieces: u64, batch: u64) -> String {
    let work = Work(std::env::temp_dir().join(format!("p2p-bench-rate-{}", std::process::id())));
    fs::create_dir_all(&work.0).expect("dir");
    let out = work.0.join("out");
    let mut tracker = Children(vec![(
        Command::new(BIN)
            .arg("tracker")
            .current_dir(&work.0)
            .stdout(fs::File::create(&out).expect("out"))
            .spawn()
            .expect("tracker"),
        false,
    )]);
    let port = wait_for_port(&work.0);
    let connect = || {
        let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let r = std::io::BufReader::new(s.try_clone().expect("clone"));
        (s, r)
    };
    let size = pieces * 65536;
    let (mut owner, mut owner_r) = connect();
    write!(owner, "HELLO p2p/1 peer\nOFFER f {size}\nJOIN 9\n").expect("offer");
    for _ in 0..3 {
        reply(&mut owner_r);
    }
    // The owner's piece hashes, in batches as large as HASHED allows.
    let batch_max = p2p::protocol::MAX_HASH_BATCH;
    for first in (0..pieces).step_by(batch_max as usize) {
        let count = batch_max.min(pieces - first);
        writeln!(owner, "HASHED f {first} {count}").expect("hashed");
        owner
            .write_all(&vec![0u8; count as usize * 20])
            .expect("hashes");
        let r = reply(&mut owner_r);
        if !r.starts_with("OK") {
            fail(&format!("HASHED refused: {r}"));
        }
    }
    let (mut taker, mut taker_r) = connect();
    taker
        .write_all(b"HELLO p2p/1 peer\nJOIN 10\n")
        .expect("join");
    reply(&mut taker_r);
    reply(&mut taker_r);
    let lines: Vec<String> = (0..pieces.div_ceil(batch))
        .map(|b| {
            format!(
                "HAVE f {}-{}\n",
                b * batch,
                ((b + 1) * batch).min(pieces) - 1
            )
        })
        .collect();
    let start = Instant::now();
    let sender = thread::spawn(move || {
        for l in lines {
            taker.write_all(l.as_bytes()).expect("have");
        }
        taker
    });
    for _ in 0..pieces.div_ceil(batch) {
        let r = reply(&mut taker_r);
        if !r.starts_with("OK") {
            fail(&format!("HAVE refused: {r}"));
        }
    }
    // The tracker's printer writes behind the replies: the time that counts is when the
    // last line is in the file.
    let expected = pieces * 128;
    let fixed = format!("PEER 1 ACQUIRED: CHUNK /{expected} f\n").len() as u64;
    let bytes: u64 = (1..=expected).map(|x| fixed + x.ilog10() as u64 + 1).sum();
    let all_written = Instant::now() + Duration::from_secs(60);
    while fs::metadata(&out).map_or(0, |m| m.len()) < bytes && Instant::now() < all_written {
        thread::sleep(Duration::from_millis(1));
    }
    let secs = start.elapsed().as_secs_f64();
    let _taker = sender.join();
    let _ = tracker.0[0].0.kill();
    tracker.reap(0);
    let printed = fs::read_to_string(&out)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(" ACQUIRED: "))
        .count();
    if printed as u64 != expected {
        fail(&format!("{printed} ACQUIRED lines, expected {expected}"));
    }
    format!(
        "tracker printed {printed} ACQUIRED lines in {secs:.3} s: {:.2} million lines/s into a file",
        printed as f64 / secs / 1e6
    )
}
