//! The command line: usage errors exit 2, run-time failures exit 1 with one clear line, and
//! nothing reaches stdout but what the grading contract names.

mod common;

use common::*;
use std::fs;
use std::net::TcpListener;
use std::process::{Command, Output};

fn run(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run p2p")
}

#[test]
fn wrong_arguments_are_one_line_pointing_to_help_and_exit_2() {
    let dir = TempDir::new("usage");
    for args in [
        &[][..],
        &["bogus"],
        &["tracker", "extra"],
        &["peer"],
        &["peer", "127.0.0.1", "4000"],
        &["peer", "127.0.0.1", "abc", "1"],
        &["peer", "127.0.0.1", "70000", "1"],
        &["peer", "127.0.0.1", "4000", "-1"],
        &["peer", "127.0.0.1", "4000", "soon"],
        &["peer", "127.0.0.1", "4000", "1", "extra"],
    ] {
        let out = run(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?} wrote to stdout");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        let more = match args.first() {
            Some(&c @ ("peer" | "tracker")) => format!("(try p2p {c} --help)\n"),
            _ => "(try p2p --help)\n".to_string(),
        };
        assert!(err.ends_with(&more), "{args:?}: {err}");
    }
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a usage error wrote files"
    );
}

#[test]
fn help_goes_to_stdout_and_exits_0() {
    let dir = TempDir::new("help");
    let out = run(&["--help"], dir.path());
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("p2p peer IP PORT MIN_ALIVE"));
}

#[test]
fn each_command_has_its_help_on_stdout_with_exit_0() {
    let dir = TempDir::new("command-help");
    for (args, says) in [
        (&["-h"][..], "p2p peer IP PORT MIN_ALIVE"),
        (&["help"], "p2p client MY_ADDR"),
        (&["peer", "--help"], "usage: p2p peer IP PORT MIN_ALIVE"),
        (
            &["peer", "127.0.0.1", "-h"],
            "usage: p2p peer IP PORT MIN_ALIVE",
        ),
        (
            &["tracker", "--help"],
            "usage: p2p tracker MY_ADDR OTHER_ADDR",
        ),
        (&["tracker", "-h"], "writes that port to ./port.txt"),
        (&["client", "--help"], "usage: p2p client MY_ADDR TRACKER1"),
        (&["help", "client"], "usage: p2p client MY_ADDR TRACKER1"),
    ] {
        let out = run(args, dir.path());
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?} wrote to stderr");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(says), "{args:?}: {text}");
    }
    assert!(
        fs::read_dir(dir.path()).unwrap().next().is_none(),
        "asking for help wrote files (a tracker started?)"
    );
    for flag in ["--version", "-V"] {
        let out = run(&[flag], dir.path());
        assert_eq!(out.status.code(), Some(0), "{flag}");
        assert!(String::from_utf8_lossy(&out.stdout).starts_with("p2p "));
    }
}

#[test]
fn version_names_the_sha1_backend_and_the_switch_forces_the_portable_one() {
    let version = |portable: bool| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--version").env_remove(p2p::hashing::BACKEND_VAR);
        if portable {
            cmd.env(p2p::hashing::BACKEND_VAR, "portable");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8(out.stdout).unwrap()
    };
    let native = if p2p::hashing::sha_ni_available() {
        "sha-ni"
    } else {
        "portable"
    };
    let expect = |backend: &str| format!("p2p {} (sha1: {backend})\n", env!("CARGO_PKG_VERSION"));
    assert_eq!(version(false), expect(native));
    assert_eq!(version(true), expect("portable"));
    let bogus = Command::new(BIN)
        .arg("--version")
        .env(p2p::hashing::BACKEND_VAR, "fast")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(bogus.stdout).unwrap(), expect(native));
    assert_eq!(
        String::from_utf8(bogus.stderr).unwrap(),
        "p2p: ignoring P2P_SHA1=\"fast\": it takes only \"portable\"\n"
    );
}

#[test]
fn the_scripts_pass_usage_errors_through() {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("script-usage");
    fs::create_dir_all(dir.path().join("target/release")).unwrap();
    fs::copy(project.join("peer.sh"), dir.path().join("peer.sh")).unwrap();
    std::os::unix::fs::symlink(BIN, dir.path().join("target/release/p2p")).unwrap();
    let out = Command::new("sh")
        .arg("peer.sh")
        .arg("127.0.0.1")
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn the_scripts_show_help_and_exit_0() {
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("script-help");
    fs::create_dir_all(dir.path().join("target/release")).unwrap();
    for script in ["peer.sh", "tracker.sh"] {
        fs::copy(project.join(script), dir.path().join(script)).unwrap();
    }
    std::os::unix::fs::symlink(BIN, dir.path().join("target/release/p2p")).unwrap();
    for (script, says) in [
        ("peer.sh", "usage: p2p peer IP PORT MIN_ALIVE"),
        ("tracker.sh", "usage: p2p tracker"),
    ] {
        for flag in ["--help", "-h"] {
            let out = Command::new("sh")
                .args([script, flag])
                .current_dir(dir.path())
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(0), "sh {script} {flag}");
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains(says), "sh {script} {flag}: {text}");
        }
    }
    assert!(
        !dir.path().join("port.txt").exists(),
        "sh tracker.sh --help started a tracker"
    );
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn dead_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[test]
fn an_unreachable_tracker_is_one_line_and_exit_1() {
    let root = TempDir::new("no-tracker");
    let spec = peer_folder(root.path(), "p", Some(("f", content(1, 100))));
    let out = run(
        &["peer", "127.0.0.1", &dead_port().to_string(), "1"],
        &spec.dir,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("tracker"), "{err}");
    assert_eq!(entries(&spec.dir.join("Shared")), ["f"], "Shared/ changed");
}

#[test]
fn a_missing_shared_folder_is_one_line_and_exit_1() {
    let root = TempDir::new("no-shared");
    let logs = root.path();
    let (mut tracker, port) = start_tracker(&root.path().join("tracker"), logs);
    let empty = root.path().join("empty");
    fs::create_dir_all(&empty).unwrap();
    let out = run(&["peer", "127.0.0.1", &port.to_string(), "1"], &empty);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("Shared"), "{err}");
    assert_eq!(tracker.stdout(), "", "the tracker saw no peer");
    tracker.kill();
}

#[test]
fn the_tracker_writes_its_port_and_nothing_else_to_stdout() {
    let root = TempDir::new("port");
    let (mut tracker, port) = start_tracker(root.path(), root.path());
    assert_ne!(port, 0);
    assert_eq!(
        fs::read_to_string(root.path().join("port.txt")).unwrap(),
        format!("{port}\n")
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
    // stderr tells a user at the terminal where the port went, and what it is.
    let path = root.path().join("port.txt").display().to_string();
    let told = |err: &str| err.contains(&path) && err.contains(&format!("port {port}"));
    assert!(
        wait_until(std::time::Duration::from_secs(10), || told(
            &tracker.stderr()
        )),
        "stderr: {:?}",
        tracker.stderr()
    );
    assert_eq!(tracker.stdout(), "");
    tracker.kill();
}

#[test]
fn the_demo_prints_each_peer_under_its_own_heading_in_order() {
    use std::os::unix::process::CommandExt;
    let project = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = TempDir::new("demo");
    fs::create_dir_all(dir.path().join("target/release")).unwrap();
    fs::create_dir_all(dir.path().join("tests/sh")).unwrap();
    for file in ["peer.sh", "tracker.sh", "tests/sh/swarm.sh"] {
        fs::copy(project.join(file), dir.path().join(file)).unwrap();
    }
    std::os::unix::fs::symlink(BIN, dir.path().join("target/release/p2p")).unwrap();
    let out = dir.path().join("demo.out");
    let mut child = Command::new("sh")
        .args([
            "tests/sh/swarm.sh",
            "-n",
            "3",
            "-s",
            "1000",
            "-a",
            "0.5",
            "-v",
        ])
        .current_dir(dir.path())
        .stdout(fs::File::create(&out).unwrap())
        .process_group(0)
        .spawn()
        .unwrap();
    // Kills the script's whole group (tracker and peers too) however the test ends.
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            kill_group(self.0);
        }
    }
    let _group = Group(child.id());
    let mut status = None;
    assert!(
        wait_until(std::time::Duration::from_secs(60), || {
            status = child.try_wait().unwrap();
            status.is_some()
        }),
        "swarm.sh did not end"
    );
    let text = fs::read_to_string(&out).unwrap();
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{text}");
    let mut heading: Option<&str> = None;
    let mut shown = Vec::new();
    for line in text.lines() {
        if line.starts_with("=== PEER ") {
            heading = Some(line);
        } else if let Some(rest) = line.strip_prefix("PEER ")
            && let Some((n, _)) = rest.split_once(" SHUTDOWN:")
        {
            let want = format!("=== PEER {n} (folder peer");
            assert!(
                heading.is_some_and(|h| h.starts_with(&want)),
                "{line:?} under {heading:?}:\n{text}"
            );
            shown.push(n.parse::<u32>().unwrap());
        }
    }
    assert_eq!(shown, [0, 1, 2], "{text}");
}
