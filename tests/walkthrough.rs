//! The README's walk-throughs ("The interactive client and two trackers", "Accounts and
//! groups"), run as written: the steps are read from README.md itself, so the test breaks when
//! the README and the code part.
//!
//! A walk-through is the first fenced block under its heading. In it, `# terminal N ...`
//! switches to terminal N, `$ ` starts a line typed at the shell, `p2p> ` one typed at a
//! client, other `#` lines and blank lines are comments, and every other line is output the
//! terminal must show next (`…` stands for any text). A terminal's `$ ` lines run as one `sh -c`
//! script in the project folder (a temp folder here) whose stdin stays open, so its last command
//! (a tracker or a client) reads the `p2p> ` lines that follow, as it would from a keyboard.
//!
//! Two substitutions, both because the test has no other way: `$ make` becomes a symlink
//! `target/release/p2p` to the binary cargo built for the tests, and a README port that is busy
//! on this machine is replaced by a free one everywhere (commands and expected lines). A
//! `show downloads` whose expected lines have not appeared yet is asked again, as a user would.

mod common;
#[path = "walkthrough/readme.rs"]
mod readme;

use common::*;
use readme::*;
use std::fs;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

const README: &str = include_str!("../README.md");
/// How long one step may take to show its expected lines.
const STEP_LIMIT: Duration = Duration::from_secs(10);
/// How long a repeatable query (`show downloads`) waits before it is asked again.
const ASK_AGAIN: Duration = Duration::from_millis(500);

/// One terminal: `sh -c` in its own process group, its stdout and stderr in one file (as a
/// terminal shows both), its stdin a pipe; the whole group killed on drop.
struct Terminal {
    child: Child,
    stdin: ChildStdin,
    output: std::path::PathBuf,
}

impl Terminal {
    fn open(n: u32, script: &str, project: &Path, logs: &Path) -> Terminal {
        let output = logs.join(format!("terminal{n}.txt"));
        let file = fs::File::create(&output).expect("output file");
        let mut child = Command::new("sh")
            .args(["-c", script])
            .current_dir(project)
            .stdin(Stdio::piped())
            .stdout(file.try_clone().expect("output file"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .expect("spawn sh");
        let stdin = child.stdin.take().expect("piped stdin");
        Terminal {
            child,
            stdin,
            output,
        }
    }

    fn output(&self) -> String {
        fs::read_to_string(&self.output).unwrap_or_default()
    }

    fn type_line(&mut self, line: &str) {
        let sent = self
            .stdin
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|_| self.stdin.flush());
        assert!(
            sent.is_ok(),
            "typing {line:?}: nothing reads it; output:\n{}",
            self.output()
        );
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        // The group: sh and what it started (a tracker, a client).
        kill_group(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `steps` in `project`; returns each terminal's output.
fn run(steps: &[Step], project: &Path, logs: &Path) -> Vec<(u32, String)> {
    let mut terminals: Vec<(u32, Terminal)> = Vec::new();
    for step in steps {
        let n = step.terminal;
        let (from, again) = match &step.input {
            Input::Shell(lines) => {
                let script: Vec<&str> = lines
                    .iter()
                    .map(|l| if l == "make" { ":" } else { l.as_str() })
                    .collect();
                terminals.push((n, Terminal::open(n, &script.join("\n"), project, logs)));
                (0, None)
            }
            Input::Client(cmd) => {
                let term = terminal(&mut terminals, n);
                let from = term.output().len();
                term.type_line(cmd);
                let again = matches!(cmd.as_str(), "show downloads" | "show_downloads");
                (from, again.then_some(cmd))
            }
        };
        let deadline = Instant::now() + STEP_LIMIT;
        let (mut from, mut asked) = (from, Instant::now());
        loop {
            let term = terminal(&mut terminals, n);
            let out = term.output();
            if shows_in_order(out.get(from..).unwrap_or(""), &step.expect) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "terminal {n}, after {:?}: wanted {:#?}; it shows:\n{}",
                step.input,
                step.expect,
                out.get(from..).unwrap_or("")
            );
            if let Some(cmd) = again
                && asked.elapsed() >= ASK_AGAIN
            {
                from = out.len();
                term.type_line(cmd);
                asked = Instant::now();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    terminals.iter().map(|(n, t)| (*n, t.output())).collect()
}

fn terminal(terminals: &mut [(u32, Terminal)], n: u32) -> &mut Terminal {
    terminals
        .iter_mut()
        .find(|(m, _)| *m == n)
        .map(|(_, t)| t)
        .unwrap_or_else(|| panic!("terminal {n} is used before its `$ ` lines"))
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    walk(CLIENT_HEADING);
}

#[test]
fn the_readme_groups_walkthrough_runs_as_written() {
    walk(GROUPS_HEADING);
}

/// Runs the walk-through under `heading` and checks what it left.
fn walk(heading: &str) {
    let block = walkthrough_block(README, heading);
    let map = port_map(&ports_named(&block));
    let text = substitute(&block.join("\n"), &map);
    let steps = steps(&text.lines().collect::<Vec<_>>());
    let first_shell = steps.iter().find_map(|s| match &s.input {
        Input::Shell(lines) => Some(lines),
        Input::Client(_) => None,
    });
    assert_eq!(
        first_shell.and_then(|l| l.first()).map(String::as_str),
        Some("make"),
        "the walk-through starts by building"
    );

    let root = TempDir::new("walkthrough");
    let (project, logs) = (root.path().join("project"), root.path().join("logs"));
    fs::create_dir_all(project.join("target/release")).expect("project folder");
    fs::create_dir_all(&logs).expect("logs folder");
    std::os::unix::fs::symlink(BIN, project.join("target/release/p2p")).expect("symlink");

    let outputs = run(&steps, &project, &logs);

    // Nothing the walk-through wrote is outside its scratch folder.
    let mut top = entries(&project);
    top.sort();
    assert_eq!(top, ["demo", "target"], "the project folder after the walk");
    let demo = entries(&project.join("demo"));
    for file in ["state1.txt", "log1.txt", "state2.txt", "log2.txt"] {
        assert!(
            demo.iter().any(|e| e == file),
            "demo/ holds {file}: {demo:?}"
        );
    }
    // Each client kept its state in its own folder.
    for client in ["alice", "bob"] {
        let held = entries(&project.join("demo").join(client));
        assert!(
            held.iter().any(|e| e.starts_with(".p2p-client-")),
            "demo/{client} holds the client's state folder: {held:?}"
        );
    }
    // And no terminal showed an error the README does not show. A client whose command
    // failed ends its run with one more line, for scripts: only because these terminals'
    // keyboards are pipes (on a real terminal, `quit` exits 0 without it).
    let for_scripts =
        "client: a command from the script failed (see its error line); exit status 1";
    for (n, out) in outputs {
        let shown = |l: &str| text.lines().any(|t| matches_line(t, l));
        let errors: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("error") && !shown(l) && *l != for_scripts)
            .collect();
        assert!(errors.is_empty(), "terminal {n} showed {errors:#?}");
    }
}

#[test]
fn the_walkthrough_reader_reads_terminals_inputs_and_outputs() {
    let block = [
        "# terminal 1, somewhere",
        "$ make",
        "$ p2p tracker",
        "tracker … serving",
        "",
        "# terminal 2",
        "$ p2p client",
        "p2p> show downloads",
        "[S] a",
        "# a comment",
        "# terminal 1 again",
        "p2p> quit",
    ];
    let got = steps(&block);
    let want = vec![
        Step {
            terminal: 1,
            input: Input::Shell(vec!["make".into(), "p2p tracker".into()]),
            expect: vec!["tracker … serving".into()],
        },
        Step {
            terminal: 2,
            input: Input::Shell(vec!["p2p client".into()]),
            expect: vec![],
        },
        Step {
            terminal: 2,
            input: Input::Client("show downloads".into()),
            expect: vec!["[S] a".into()],
        },
        Step {
            terminal: 1,
            input: Input::Client("quit".into()),
            expect: vec![],
        },
    ];
    assert_eq!(got, want);
    assert!(matches_line("tracker … serving", "tracker 1.2 serving"));
    assert!(!matches_line("tracker … serving", "tracker 1.2 serving!"));
    assert!(matches_line("[S] a", "[S] a"));
    assert!(!matches_line("[S] a", "[S] ab"));
    assert!(shows_in_order("x\na\ny\nb\n", &["a".into(), "b".into()]));
    assert!(!shows_in_order("b\na\n", &["a".into(), "b".into()]));
    let map = vec![("127.0.0.1:7001".to_string(), "127.0.0.1:7002".to_string())];
    assert_eq!(
        substitute("127.0.0.1:7001 127.0.0.1:70012 127.0.0.1:7002", &map),
        "127.0.0.1:7002 127.0.0.1:70012 127.0.0.1:7002"
    );
}

#[test]
fn the_readme_points_only_at_files_in_the_project() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (line, path) in paths_pointed_at(README) {
        let outside = path.starts_with("..") || path.contains("/../");
        assert!(
            !outside,
            "README.md:{line}: {path:?} is outside the project"
        );
        if path.starts_with('/') {
            continue; // a system path (/usr/bin/time), not the project's
        }
        assert!(
            path.is_empty() || root.join(&path).exists(),
            "README.md:{line}: {path:?} does not exist"
        );
    }
}

#[test]
fn the_minimum_rust_version_is_stated_and_agrees() {
    let manifest = include_str!("../Cargo.toml");
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"'))
        .expect("Cargo.toml states rust-version");
    assert!(
        README.contains(&format!("Rust {version} or later")),
        "README.md states \"Rust {version} or later\""
    );
}
