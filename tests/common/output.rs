//! Strict parsers of the grading output: every line the tracker or a peer prints must match
//! one of the formats, or the test fails at that line.

use std::collections::BTreeMap;

/// The tracker's stdout, parsed strictly: every line must match a grading format.
#[derive(Debug, Default)]
pub struct TrackerLog {
    /// Peer id -> offered (name, chunks), in CONNECT order.
    pub connects: Vec<(u64, Vec<(String, u64)>)>,
    /// (peer, file) -> 1-based chunk numbers, in print order, and the total each line named.
    pub acquired: BTreeMap<(u64, String), Vec<(u64, u64)>>,
    /// Peer id -> received names, in DISCONNECT order.
    pub disconnects: Vec<(u64, Vec<String>)>,
    /// Per peer, the index of its DISCONNECT among all lines, and of its last ACQUIRED.
    pub disconnect_line: BTreeMap<u64, usize>,
    pub last_acquired_line: BTreeMap<u64, usize>,
}

fn list_lines<'a>(lines: &[&'a str], at: &mut usize, id: u64, count: usize) -> Vec<&'a str> {
    let prefix = format!("{id}    ");
    (0..count)
        .map(|_| {
            let line = lines
                .get(*at)
                .unwrap_or_else(|| panic!("block of peer {id} cut short"));
            *at += 1;
            line.strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("line {line:?} should start with {prefix:?}"))
        })
        .collect()
}

fn header(line: &str, what: &str) -> Option<(u64, usize)> {
    let rest = line.strip_prefix("PEER ")?;
    let (id, rest) = rest.split_once(' ')?;
    let count = rest.strip_prefix(what)?;
    let id = id
        .parse()
        .ok()
        .filter(|_| id.bytes().all(|b| b.is_ascii_digit()))?;
    let count = count
        .parse()
        .ok()
        .filter(|_| count.bytes().all(|b| b.is_ascii_digit()))?;
    Some((id, count))
}

pub fn parse_tracker(text: &str) -> TrackerLog {
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "tracker output ends mid-line"
    );
    let lines: Vec<&str> = text.lines().collect();
    let mut log = TrackerLog::default();
    let mut at = 0;
    while at < lines.len() {
        let line = lines[at];
        at += 1;
        if let Some((id, n)) = header(line, "CONNECT: OFFERS ") {
            let files = list_lines(&lines, &mut at, id, n)
                .into_iter()
                .map(|l| {
                    let (name, chunks) = l.rsplit_once(' ').expect("NAME CHUNKS");
                    (name.to_string(), chunks.parse().expect("chunk count"))
                })
                .collect();
            log.connects.push((id, files));
        } else if let Some((id, n)) = header(line, "DISCONNECT: RECEIVED ") {
            let names = list_lines(&lines, &mut at, id, n)
                .into_iter()
                .map(String::from)
                .collect();
            log.disconnects.push((id, names));
            log.disconnect_line.insert(id, at);
        } else if let Some(rest) = line.strip_prefix("PEER ") {
            let (id, rest) = rest.split_once(' ').expect("PEER N ...");
            let rest = rest
                .strip_prefix("ACQUIRED: CHUNK ")
                .unwrap_or_else(|| panic!("tracker line matches no format: {line:?}"));
            let (frac, name) = rest.split_once(' ').expect("X/N NAME");
            let (x, total) = frac.split_once('/').expect("X/N");
            let id: u64 = id.parse().expect("peer id");
            let pair = (x.parse().expect("X"), total.parse().expect("N"));
            log.acquired
                .entry((id, name.to_string()))
                .or_default()
                .push(pair);
            log.last_acquired_line.insert(id, at);
        } else {
            panic!("tracker line matches no format: {line:?}");
        }
    }
    log
}

/// A peer's stdout: exactly one SHUTDOWN block. Returns (id, names).
pub fn parse_shutdown(text: &str) -> (u64, Vec<String>) {
    let lines: Vec<&str> = text.lines().collect();
    let first = lines
        .first()
        .unwrap_or_else(|| panic!("peer printed nothing"));
    let (id, n) =
        header(first, "SHUTDOWN: HAS ").unwrap_or_else(|| panic!("bad SHUTDOWN line {first:?}"));
    let mut at = 1;
    let names = list_lines(&lines, &mut at, id, n)
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(
        at,
        lines.len(),
        "peer printed more than its SHUTDOWN block: {text:?}"
    );
    assert!(text.ends_with('\n'));
    (id, names)
}

/// The tracker's output up to its last complete line.
pub fn complete_blocks(out: &str) -> String {
    out.rfind('\n')
        .map(|i| out[..=i].to_string())
        .unwrap_or_default()
}
