//! What the client says and how it ends, driven through stdin with real trackers on
//! 127.0.0.1: help for one command, a clear line for keys it cannot edit with, a newline at
//! the end of a terminal's input, an exit status a script can test, remote problems kept off
//! the prompt, and tracker switches that name the tracker in use.

mod common;
// Each test binary uses only some of it.
#[allow(dead_code)]
#[path = "client/harness.rs"]
mod harness;

use common::*;
use harness::*;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A child killed when the test ends, however it ends.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What a finished run printed and how it ended.
struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The shell's error lines on stderr.
    fn errors(&self) -> Vec<&str> {
        let lines = self.stderr.lines();
        lines.filter(|l| l.starts_with("error")).collect()
    }
}

/// Runs `program args` in `dir` with `input` as its whole stdin (a pipe, then its end);
/// waits (bounded) for it to exit and reads what it printed.
fn run_with_input(program: &str, args: &[&str], dir: &Path, input: &[u8]) -> Ran {
    std::fs::create_dir_all(dir).unwrap();
    let child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(dir.join("out")).unwrap())
        .stderr(std::fs::File::create(dir.join("err")).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} runs: {e}"));
    let mut guard = Guard(child);
    let mut stdin = guard.0.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    drop(stdin);
    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = guard.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "{program} did not exit");
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |f: &str| String::from_utf8_lossy(&std::fs::read(dir.join(f)).unwrap()).into();
    Ran {
        status,
        stdout: read("out"),
        stderr: read("err"),
    }
}

/// Runs a client of `pair` in `dir` with `script` as its whole stdin.
fn piped(pair: &Pair, dir: &Path, script: &[u8]) -> Ran {
    let me = format!("127.0.0.1:{}", free_port());
    let args = ["client", &me, &pair.addr(0), &pair.addr(1)];
    run_with_input(BIN, &args, dir, script)
}

#[test]
fn a_script_whose_command_failed_exits_1_and_a_clean_one_exits_0() {
    let pair = Pair::start("voice-exit");
    let clean = piped(
        &pair,
        &pair.root.path().join("clean"),
        b"help\nshow downloads\n",
    );
    assert!(clean.status.success(), "{}", clean.stderr);
    let failing = b"show downloads\nget missing.mtorrent out\nshow downloads\n";
    let ran = piped(&pair, &pair.root.path().join("failing"), failing);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("error: "), "{}", ran.stderr);
    // A script that ends with quit tells the same.
    let quits = b"bogus\nquit\n";
    let ran = piped(&pair, &pair.root.path().join("quits"), quits);
    assert_eq!(ran.status.code(), Some(1), "{}", ran.stderr);
    let quits = b"show downloads\nquit\n";
    let ran = piped(&pair, &pair.root.path().join("quits-clean"), quits);
    assert_eq!(ran.status.code(), Some(0), "{}", ran.stderr);
}

#[test]
fn arrow_keys_and_control_characters_get_a_clear_line_not_a_debug_string() {
    let pair = Pair::start("voice-keys");
    let ran = piped(
        &pair,
        &pair.root.path().join("keys"),
        b"\x1b[A\nshow\x01 downloads\n\xff\xfe\n",
    );
    let errors = ran.errors();
    assert_eq!(errors.len(), 3, "{}", ran.stderr);
    assert!(errors[0].contains("escape sequence"), "{}", errors[0]);
    assert!(
        errors[1].contains("control character (U+0001)"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("not UTF-8"), "{}", errors[2]);
    assert!(
        !ran.stderr.contains("\\u{"),
        "a Rust debug string: {}",
        ran.stderr
    );
    assert!(!ran.stderr.contains('\x1b'), "the escape echoed raw");
    assert_eq!(ran.status.code(), Some(1));
}

#[test]
fn help_with_a_command_shows_that_command_only() {
    let pair = Pair::start("voice-help");
    let ran = piped(
        &pair,
        &pair.root.path().join("help"),
        b"help share\nhelp show_downloads\n",
    );
    assert!(ran.status.success(), "{}", ran.stderr);
    let lines: Vec<&str> = ran.stdout.lines().collect();
    assert!(
        lines[0].trim_start().starts_with("share <path>"),
        "{lines:?}"
    );
    assert!(lines.iter().all(|l| !l.contains("get <file>")), "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("show downloads")),
        "{lines:?}"
    );
    let ran = piped(
        &pair,
        &pair.root.path().join("help2"),
        b"help bogus\nget x\n",
    );
    let errors = ran.errors();
    assert_eq!(errors.len(), 2, "{}", ran.stderr);
    assert!(errors[0].contains("no command \"bogus\""), "{errors:?}");
    assert!(
        errors[1].ends_with("usage: get <file>.mtorrent <dest> (try help get)"),
        "the command's form, not its description: {errors:?}"
    );
}

#[test]
fn at_the_end_of_a_terminal_s_input_the_prompt_ends_with_a_newline() {
    let pair = Pair::start("voice-tty");
    let dir = pair.root.path().join("tty");
    // script(1) gives the client a terminal; its stdin's end becomes the terminal's.
    let line = format!(
        "{BIN} client 127.0.0.1:{} {} {} 2>/dev/null",
        free_port(),
        pair.addr(0),
        pair.addr(1)
    );
    let args = ["-qec", &line, "/dev/null"];
    let ran = run_with_input("script", &args, &dir, b"show downloads\n");
    assert!(ran.status.success(), "{}", ran.stderr);
    assert!(ran.stdout.contains("p2p> "), "no prompt: {:?}", ran.stdout);
    assert!(ran.stdout.ends_with("p2p> \r\n"), "{:?}", ran.stdout);
}

/// A client of `pair` in `pair`'s folder `name`, appending its notes to `name`.log there.
fn logged_client(pair: &Pair, name: &str) -> (Proc, std::path::PathBuf) {
    let dir = pair.root.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join(format!("{name}.log"));
    let me = format!("127.0.0.1:{}", free_port());
    let log_arg = log.to_string_lossy().to_string();
    let args = ["client", &me, &pair.addr(0), &pair.addr(1), &log_arg];
    let proc = Proc::spawn_interactive(BIN, &args, &dir, pair.root.path(), name);
    (proc, log)
}

#[test]
fn a_dead_seeder_is_written_in_the_log_not_on_the_prompt() {
    let pair = Pair::start("voice-dead-seeder");
    let data = content(7, 3 * PIECE);
    let mtorrent = expected_mtorrent([&pair.addr(0), &pair.addr(1)], "lost.bin", &data);
    // A stranger says a peer at a port nobody listens on holds the whole file.
    let dead = format!("127.0.0.1:{}", free_port());
    let mut stranger = PairLink::connect(&pair.addr(0)).expect("tracker answers");
    let token = stranger.open(&dead);
    let seed = format!(
        "SEED {token} {} lost.bin {} {}",
        info_hash(&mtorrent),
        data.len(),
        full_bitset(3)
    );
    assert_eq!(stranger.call(&seed).as_deref(), Some("OK"));
    let (mut with_log, log) = logged_client(&pair, "logged");
    let mut quiet = pair.client("quiet", &[0, 1]);
    let logged_dir = pair.root.path().join("logged");
    for (dir, proc) in [(&logged_dir, &mut with_log), (&quiet.dir, &mut quiet.proc)] {
        std::fs::write(dir.join("lost.mtorrent"), &mtorrent).unwrap();
        proc.send_line("get lost.mtorrent lost.bin");
    }
    let refused = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        wait_until(LIMIT, || refused().matches("fetching from").count() >= 2),
        "the log never told of the dead seeder: {}",
        refused()
    );
    assert!(refused().contains(&dead), "{}", refused());
    for (who, err) in [
        ("logged", with_log.stderr()),
        ("quiet", quiet.proc.stderr()),
    ] {
        assert!(
            !err.contains("fetching from"),
            "{who}'s prompt heard it: {err}"
        );
    }
}

#[test]
fn a_killed_tracker_is_noticed_without_a_command_and_the_switch_names_the_other() {
    let mut pair = Pair::start("voice-killed");
    let mut client = pair.client("both", &[0, 1]);
    std::fs::write(client.path("f"), content(3, 1000)).unwrap();
    client.run("share f f.mtorrent", "shared f");
    pair.kill_tracker(0);
    // No command is typed: the heartbeat (every 3 s) finds it.
    // Said on a line of its own between prompts, on stdout, like every change of state.
    let want = format!("tracker {} stopped answering", pair.addr(0));
    let switched = |err: &str| {
        err.lines().any(|l| {
            l.starts_with(&want) && l.ends_with(&format!("; switching to {}", pair.addr(1)))
        })
    };
    let started = Instant::now();
    assert!(
        wait_until(Duration::from_secs(15), || switched(&client.proc.stdout())),
        "{}",
        client.proc.stdout()
    );
    assert!(started.elapsed() < Duration::from_secs(10), "noticed late");
}

#[test]
fn a_lone_tracker_killed_is_one_outage_line_not_a_switch_to_itself() {
    let mut pair = Pair::start("voice-lone");
    let mut client = pair.client("lone", &[0]);
    std::fs::write(client.path("f"), content(4, 1000)).unwrap();
    client.run("share f f.mtorrent", "shared f");
    pair.kill_tracker(0);
    let outage = "\nno tracker answers (";
    assert!(
        wait_until(Duration::from_secs(15), || client
            .proc
            .stdout()
            .contains(outage)),
        "{}",
        client.proc.stdout()
    );
    let out = client.proc.stdout();
    assert!(!out.contains("switching to"), "{out}");
    assert_eq!(out.matches(outage).count(), 1, "one line: {out}");
}

/// Whether this machine shows a connection from 127.0.0.1 to `port` in CLOSE_WAIT: the far
/// end (a tracker) closed it and our end (a client) has not noticed yet.
fn closed_by_tracker(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let far = format!("0100007F:{port:04X}");
    table.lines().skip(1).any(|l| {
        let cols: Vec<&str> = l.split_whitespace().collect();
        cols.get(2) == Some(&far.as_str()) && cols.get(3) == Some(&"08")
    })
}

#[test]
fn a_connection_the_tracker_closed_while_idle_is_made_again_silently() {
    let pair = Pair::start("voice-idle");
    let (mut client, log) = logged_client(&pair, "idle");
    let dir = pair.root.path().join("idle");
    std::fs::write(dir.join("a"), content(5, 1000)).unwrap();
    std::fs::write(dir.join("b"), content(6, 1000)).unwrap();
    let before = client.stdout().len();
    client.send_line("share a a.mtorrent");
    assert!(wait_until(LIMIT, || client.stdout()[before..].contains("shared a")));
    // The tracker closes a connection silent for 30 s; the heartbeat's has its own.
    assert!(
        wait_until(Duration::from_secs(50), || closed_by_tracker(pair.ports[0])),
        "tracker 0 never closed the idle request connection"
    );
    client.send_line("share b b.mtorrent");
    assert!(
        wait_until(LIMIT, || client.stdout()[before..].contains("shared b")),
        "{}",
        client.stderr()
    );
    let said = client.stderr() + &client.stdout();
    assert!(!said.contains("stopped answering"), "{said}");
    let notes = std::fs::read_to_string(&log).unwrap();
    assert!(!notes.contains("lost tracker"), "{notes}");
}

#[test]
fn overlong_lines_and_files_that_are_no_mtorrent_get_a_short_error() {
    let pair = Pair::start("voice-long");
    let dir = pair.root.path().join("long");
    std::fs::create_dir_all(&dir).unwrap();
    // A one-line text of 2 MB, a sparse file past any .mtorrent's size, bytes that are no text.
    std::fs::write(dir.join("data.json"), "{\"k\":1,".repeat(300_000)).unwrap();
    let huge = std::fs::File::create(dir.join("huge.iso")).unwrap();
    huge.set_len(100 << 20).unwrap();
    std::fs::write(dir.join("bin.mtorrent"), [0u8, 159, 146, 150]).unwrap();
    let long_line = format!("bogus{}\n", "x".repeat(100_000));
    let script = [
        long_line.as_bytes(),
        b"get data.json out\nget huge.iso out\nget bin.mtorrent out\n",
        format!("share {} x.mtorrent\n", "y".repeat(20_000)).as_bytes(),
        // A device never ends: it must not be read.
        b"get /dev/zero out\n",
    ]
    .concat();
    let ran = piped(&pair, &dir, &script);
    let errors = ran.errors();
    assert_eq!(errors.len(), 6, "{}", ran.stderr);
    assert!(
        errors[5].ends_with("/dev/zero is not a .mtorrent: not a regular file"),
        "{errors:?}"
    );
    assert!(errors.iter().all(|e| e.len() < 300), "{errors:?}");
    assert!(
        errors[0].contains("the line is 100006 bytes long"),
        "{errors:?}"
    );
    assert!(errors[1].starts_with("error: data.json is not a valid .mtorrent: "));
    assert!(errors[1].ends_with('…'), "{errors:?}");
    assert!(
        errors[2].contains("huge.iso is not a .mtorrent: 100.0 MiB"),
        "{errors:?}"
    );
    assert!(errors[3].contains("bin.mtorrent is not a .mtorrent: it is not text"));
    assert!(
        errors[4].contains("the line is 20018 bytes long"),
        "{errors:?}"
    );
    assert_eq!(ran.status.code(), Some(1));
}
