//! Reading README.md: the walk-through's block turned into steps (which terminal, what is
//! typed, what it must show), the matching of expected lines (`…` for any text), the ports it
//! names and their replacements, and the paths the README points at.

use std::net::TcpListener;

/// The headings whose first fenced block is a walk-through: `.mtorrent` files, then accounts
/// and groups.
pub const CLIENT_HEADING: &str = "## The interactive client and two trackers";
pub const GROUPS_HEADING: &str = "### Accounts and groups";

/// What one line of the walk-through asks the terminal to do.
#[derive(Debug, PartialEq)]
pub enum Input {
    /// A run of consecutive `$ ` lines, run as one script.
    Shell(Vec<String>),
    /// One `p2p> ` line, written to the terminal's running command.
    Client(String),
}

/// An input in a terminal and the output lines it must show, in order.
#[derive(Debug, PartialEq)]
pub struct Step {
    pub terminal: u32,
    pub input: Input,
    pub expect: Vec<String>,
}

/// A walk-through's block: the first fenced block after `heading`.
pub fn walkthrough_block<'a>(readme: &'a str, heading: &str) -> Vec<&'a str> {
    let after = readme
        .split_once(heading)
        .map(|(_, rest)| rest)
        .unwrap_or_else(|| panic!("README.md has no {heading:?}"));
    let mut lines = after.lines().skip_while(|l| !l.starts_with("```"));
    assert!(lines.next().is_some(), "no fenced block under {heading:?}");
    lines.take_while(|l| !l.starts_with("```")).collect()
}

/// The walk-through's steps, in the order a reader meets them.
pub fn steps(block: &[&str]) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut terminal = None;
    for line in block {
        let line = line.trim_end();
        if let Some(rest) = line.strip_prefix("# terminal ") {
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            terminal = Some(n.parse().unwrap_or_else(|_| panic!("bad header {line:?}")));
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let terminal = terminal.unwrap_or_else(|| panic!("{line:?} comes before any terminal"));
        let last = steps.last_mut().filter(|s| s.terminal == terminal);
        if let Some(cmd) = line.strip_prefix("$ ") {
            match last {
                Some(Step {
                    input: Input::Shell(lines),
                    expect,
                    ..
                }) if expect.is_empty() => lines.push(cmd.to_string()),
                _ => {
                    let again = steps
                        .iter()
                        .any(|s| s.terminal == terminal && matches!(s.input, Input::Shell(_)));
                    assert!(!again, "terminal {terminal}: `$ ` lines must come first");
                    steps.push(Step {
                        terminal,
                        input: Input::Shell(vec![cmd.to_string()]),
                        expect: vec![],
                    });
                }
            }
        } else if let Some(cmd) = line.strip_prefix("p2p> ") {
            steps.push(Step {
                terminal,
                input: Input::Client(cmd.to_string()),
                expect: vec![],
            });
        } else {
            let step = last.unwrap_or_else(|| panic!("output {line:?} follows no input"));
            step.expect.push(line.to_string());
        }
    }
    steps
}

/// Whether `line` is `pattern`, where `…` in the pattern stands for any text.
pub fn matches_line(pattern: &str, line: &str) -> bool {
    let mut parts = pattern.split('…');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = line.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.is_empty()
}

/// Whether `output` holds every `expect` line as a whole line, in order.
pub fn shows_in_order(output: &str, expect: &[String]) -> bool {
    let mut lines = output.lines();
    expect
        .iter()
        .all(|want| lines.any(|got| matches_line(want, got.trim_end())))
}

/// The `127.0.0.1:PORT` ports the walk-through names, each once.
pub fn ports_named(block: &[&str]) -> Vec<u16> {
    let mut ports = Vec::new();
    for line in block {
        for (_, rest) in line
            .match_indices("127.0.0.1:")
            .map(|(i, m)| line.split_at(i + m.len()))
        {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(p) = digits.parse::<u16>()
                && !ports.contains(&p)
            {
                ports.push(p);
            }
        }
    }
    ports
}

/// The README's ports, each kept when it is free here and else swapped for a free one.
pub fn port_map(ports: &[u16]) -> Vec<(String, String)> {
    // Held until every port is chosen, so that no two replacements are the same port.
    let mut held = Vec::new();
    let mut map = Vec::new();
    for &p in ports {
        let listener = TcpListener::bind(("127.0.0.1", p))
            .or_else(|_| TcpListener::bind("127.0.0.1:0"))
            .expect("a free port");
        let now = listener.local_addr().expect("bound").port();
        if now != p {
            eprintln!("walkthrough: port {p} is busy here, using {now}");
        }
        map.push((format!("127.0.0.1:{p}"), format!("127.0.0.1:{now}")));
        held.push(listener);
    }
    map
}

pub fn substitute(text: &str, map: &[(String, String)]) -> String {
    // One pass over the text, so that a replacement is never replaced again.
    let mut out = String::new();
    let mut rest = text;
    while !rest.is_empty() {
        match map.iter().find(|(from, _)| {
            rest.starts_with(from.as_str())
                && !rest[from.len()..].starts_with(|c: char| c.is_ascii_digit())
        }) {
            Some((from, to)) => {
                out.push_str(to);
                rest = &rest[from.len()..];
            }
            None => {
                let c = rest.chars().next().unwrap_or_default();
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    out
}

/// The paths README.md points at outside its code blocks: link targets and `code` spans that
/// name a file of the project (under docs/ or tests/) or climb out of it (`../`).
pub fn paths_pointed_at(readme: &str) -> Vec<(usize, String)> {
    let mut paths = Vec::new();
    let mut in_block = false;
    for (i, line) in readme.lines().enumerate() {
        if line.starts_with("```") {
            in_block = !in_block;
        }
        if in_block {
            continue;
        }
        for (at, _) in line.match_indices("](") {
            let target: String = line[at + 2..].chars().take_while(|&c| c != ')').collect();
            if !target.starts_with("http://") && !target.starts_with("https://") {
                let path = target.split('#').next().unwrap_or("");
                paths.push((i + 1, path.to_string()));
            }
        }
        for span in line.split('`').skip(1).step_by(2) {
            let named = ["../", "/", "docs/", "tests/"]
                .iter()
                .any(|p| span.starts_with(p));
            if named && span.len() > 1 && !span.contains(' ') {
                paths.push((i + 1, span.to_string()));
            }
        }
    }
    paths
}
