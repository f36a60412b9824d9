//! How the client shows things to a person: names with their control characters escaped
//! (a `.mtorrent` from anyone must not clear the screen or retitle the window), human sizes,
//! a rate over the last few seconds and the time left. Every line the engine answers with
//! goes through here, so the looks DESIGN.md settles live in one room.

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

/// How far back the rate looks: long enough to smooth bursts, short enough that a stall
/// shows within seconds.
const WINDOW: Duration = Duration::from_secs(5);

/// `text` with every control character written as an escape (`\u{1b}`, `\n`, `\t`), and
/// the marks that turn the direction of text (U+200E/F, U+202A-E, U+2066-9), which could
/// make a name show another extension than it has.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let turns = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || turns {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// At most `max` characters of `text`, with `…` when it was cut.
pub(super) fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// A path as [`escape`] shows names.
pub(super) fn escape_path(path: &Path) -> String {
    escape(&path.to_string_lossy())
}

const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];

/// `bytes` with one decimal in the largest binary unit it reaches: `28.6 MiB`, `512 B`.
pub(super) fn size(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let (value, unit) = scaled(bytes as f64);
    format!("{value:.1} {unit}")
}

/// Done and total in the total's unit: `12.0/28.6 MiB`.
pub(super) fn part_of(done: u64, total: u64) -> String {
    if total < 1024 {
        return format!("{done}/{total} B");
    }
    let (t, unit) = scaled(total as f64);
    let d = t * done as f64 / total as f64;
    format!("{d:.1}/{t:.1} {unit}")
}

fn scaled(mut value: f64) -> (f64, &'static str) {
    let mut unit = UNITS[0];
    value /= 1024.0;
    for u in &UNITS[1..] {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    (value, unit)
}

/// `n piece` or `n pieces`.
pub(super) fn pieces(n: usize) -> String {
    format!("{n} piece{}", plural(n))
}

/// The `s` after a count that is not 1.
pub(super) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Time left as `m:ss` (or `h:mm:ss`), `?` when nothing arrives.
pub(super) fn eta(left: u64, per_sec: f64) -> String {
    if per_sec < 1.0 {
        return "?".to_string();
    }
    let secs = (left as f64 / per_sec).ceil().min(360_000_000.0) as u64;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// Bytes held by a download over the last few seconds, for its rate.
#[derive(Default)]
pub(super) struct Rate {
    samples: VecDeque<(Instant, u64)>,
}

impl Rate {
    /// Notes that `bytes` are held now; forgets what is older than the window needs.
    pub(super) fn sample(&mut self, bytes: u64) {
        self.sample_at(bytes, Instant::now());
    }

    fn sample_at(&mut self, bytes: u64, now: Instant) {
        self.samples.push_back((now, bytes));
        while self.samples.len() > 2
            && self
                .samples
                .get(1)
                .is_some_and(|(t, _)| now.duration_since(*t) >= WINDOW)
        {
            self.samples.pop_front();
        }
    }

    /// A rate whose download starts now with `bytes` held.
    pub(super) fn starting(bytes: u64) -> Rate {
        let mut rate = Rate::default();
        rate.sample(bytes);
        rate
    }

    /// Bytes a second from the oldest sample in the window to `held` bytes at `now` (0 until
    /// they are a moment apart), so a fast download shows its rate from its first moments.
    pub(super) fn per_sec(&self, held: u64, now: Instant) -> f64 {
        let Some((t0, b0)) = self.samples.front() else {
            return 0.0;
        };
        let secs = now.saturating_duration_since(*t0).as_secs_f64();
        if secs < 0.05 {
            return 0.0;
        }
        held.saturating_sub(*b0) as f64 / secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape("a\u{1b}]0;pwned\u{7}b"), "a\\u{1b}]0;pwned\\u{7}b");
        assert_eq!(escape("tab\there\nü x"), "tab\\there\\nü x");
        assert_eq!(escape("a\u{202e}gpj.exe"), "a\\u{202e}gpj.exe");
        assert_eq!(excerpt("ünïcode", 3), "ünï…");
        assert_eq!(excerpt("short", 5), "short");
    }

    #[test]
    fn sizes_are_human() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(600_000), "585.9 KiB");
        assert_eq!(size(30_000_000), "28.6 MiB");
        assert_eq!(size(3 << 30), "3.0 GiB");
        assert_eq!(part_of(12_582_912, 30_000_000), "12.0/28.6 MiB");
        assert_eq!(pieces(1), "1 piece");
        assert_eq!(pieces(2), "2 pieces");
    }

    #[test]
    fn the_rate_is_over_the_last_seconds_up_to_now() {
        let rate = Rate::starting(1000);
        let t0 = rate.samples[0].0;
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(rate.per_sec(1000, at(0)), 0.0, "no time passed");
        assert_eq!(rate.per_sec(101_000, at(100)), 1_000_000.0);
        let mut rate = Rate::default();
        assert_eq!(rate.per_sec(5, at(100)), 0.0, "no sample yet");
        rate.samples.push_back((at(0), 0));
        rate.samples.push_back((at(6000), 6000));
        rate.samples.push_back((at(7000), 6000));
        rate.sample_at(6000, at(12_000));
        assert_eq!(
            rate.samples.len(),
            2,
            "what is older than the window is forgotten"
        );
        assert_eq!(rate.per_sec(6000, at(12_000)), 0.0, "a stall shows as 0");
    }

    #[test]
    fn time_left_reads_as_a_clock() {
        assert_eq!(eta(5 * 1024, 1024.0), "0:05");
        assert_eq!(eta(3700, 1.0), "1:01:40");
        assert_eq!(eta(10, 0.0), "?");
    }
}
