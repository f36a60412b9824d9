//! The lines the grading contract names, and the one lock around stdout.
//!
//! Each block is formatted whole into a `String` and written with one `write_all` under the
//! stdout lock, so no other line can land inside it. Nothing else in p2p writes to stdout in
//! swarm mode; diagnostics go to stderr.

use std::fmt::Write as _;
use std::io::{self, Write};

/// `PEER N CONNECT: OFFERS K` and one `N    NAME CHUNKS` line per offered file.
pub fn connect_block(id: u64, files: &[(&str, u64)]) -> String {
    let mut s = format!("PEER {id} CONNECT: OFFERS {}\n", files.len());
    for (name, chunks) in files {
        let _ = writeln!(s, "{id}    {name} {chunks}");
    }
    s
}

/// One `PEER N ACQUIRED: CHUNK X/TOTAL NAME` line per chunk, `X` 1-based, appended to `out`.
/// The tracker prints millions of these: only the chunk number is formatted per line.
pub fn acquired_lines(
    out: &mut String,
    id: u64,
    name: &str,
    total: u64,
    chunks: std::ops::Range<u64>,
) {
    let head = format!("PEER {id} ACQUIRED: CHUNK ");
    let tail = format!("/{total} {name}\n");
    out.reserve((head.len() + tail.len() + 8) * (chunks.end - chunks.start) as usize);
    for c in chunks {
        out.push_str(&head);
        push_decimal(out, c + 1);
        out.push_str(&tail);
    }
}

fn push_decimal(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or_default());
}

/// `PEER N DISCONNECT: RECEIVED K` and one `N    NAME` line per downloaded file.
pub fn disconnect_block<'a>(id: u64, received: impl ExactSizeIterator<Item = &'a str>) -> String {
    list_block(id, "DISCONNECT: RECEIVED", received)
}

/// `PEER N SHUTDOWN: HAS K` and one `N    NAME` line per file in `Shared/`.
pub fn shutdown_block<'a>(id: u64, files: impl ExactSizeIterator<Item = &'a str>) -> String {
    list_block(id, "SHUTDOWN: HAS", files)
}

fn list_block<'a>(id: u64, head: &str, names: impl ExactSizeIterator<Item = &'a str>) -> String {
    let mut s = format!("PEER {id} {head} {}\n", names.len());
    for name in names {
        let _ = writeln!(s, "{id}    {name}");
    }
    s
}

/// Writes `block` to stdout under the stdout lock, taken before `guard` is released: the
/// order of blocks on stdout is then the order of the state changes that `guard` protected,
/// while the state lock itself is not held during the write.
pub fn emit_after<G>(guard: G, block: &str) {
    let mut out = io::stdout().lock();
    drop(guard);
    if block.is_empty() {
        return;
    }
    // A closed stdout must not take the tracker or a peer down: the swarm still works.
    let _ = out.write_all(block.as_bytes()).and_then(|()| out.flush());
}

/// Writes `block` to stdout under the stdout lock.
pub fn emit(block: &str) {
    emit_after((), block);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_match_the_grading_formats_exactly() {
        assert_eq!(
            connect_block(3, &[("a b", 2), ("c", 0)]),
            "PEER 3 CONNECT: OFFERS 2\n3    a b 2\n3    c 0\n"
        );
        let mut s = String::new();
        acquired_lines(&mut s, 1, "f", 3, 1..3);
        assert_eq!(
            s,
            "PEER 1 ACQUIRED: CHUNK 2/3 f\nPEER 1 ACQUIRED: CHUNK 3/3 f\n"
        );
        assert_eq!(
            disconnect_block(2, ["x", "y"].into_iter()),
            "PEER 2 DISCONNECT: RECEIVED 2\n2    x\n2    y\n"
        );
        assert_eq!(
            shutdown_block(0, [].into_iter()),
            "PEER 0 SHUTDOWN: HAS 0\n"
        );
    }
}
