//! The shell: one command a line from stdin, a prompt when stdin is a terminal, an answer
//! or one clear error line for each. Both seeds' spellings are accepted. It counts the
//! commands that failed, so a script piped in can tell (the client then exits 1).

use super::engine::{Cmd, Engine, GroupCmd};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

const HELP: &str = "\
commands:
  share <path> <name>.mtorrent     share a file: writes its .mtorrent, registers as seeder
                                   (quote paths with spaces: share \"my file\" my.mtorrent)
  get <file>.mtorrent <dest>       download in the background (dest may be a folder);
                                   on a failed download, tries again
  show downloads | show_downloads  every file here: [D] name 42% 12.0/28.6 MiB 3.1 MiB/s
                                   ETA 0:05 (2 seeders) while downloading, [S] name 28.6 MiB
                                   when complete and shared, [F] name: why when it failed
  remove <file>.mtorrent           stop sharing a file (the file stays), or cancel or clear
                                   a download (its partial data is deleted)
  create_user <id> <password>      create an account; ids and group names are 1 to 32
                                   letters, digits, '-', '_' or '.'; a password has no spaces
  login <id> <password>            log in; shares again what this user shared here before
  logout                           stop sharing this user's group files until the next login
  create_group <group>             create a group; you own it
  join_group <group>               ask to join a group; its owner decides
  list_requests <group>            who asked to join a group you own
  accept_request <group> <user>    let a user who asked into a group you own
  reject_request <group> <user>    turn down a user's request to join a group you own
  leave_group <group>              leave a group (an owner hands it to the member who joined
                                   first); your shares and downloads there stop
  list_groups                      every group, marking the ones you own, belong to or asked
  list_files <group>               a group's files: name, size, seeders, id, who shares it
  upload_file <path> <group>       share a file in a group (the tracker gets only its hashes)
  download_file <group> <file> <dest>
                                   download a group's file in the background, like get; name
                                   it by its id (list_files) when two files share a name
  stop_share <group> <file>        stop sharing a file in a group, or cancel its download
  help [command]                   this text, or one command's lines
  quit                             leave every seeder list and exit
A download that completes or fails says so on a line of its own.
When commands come from a pipe or a file rather than a terminal, the client exits (at quit or
the end of that input) with status 1 if any of them failed (printed an error line), else 0.
The group commands need a login; share, get and remove need none.";

/// The commands of the first seed (and this shell's own).
const OURS: &[&str] = &[
    "share",
    "get",
    "show",
    "show_downloads",
    "remove",
    "quit",
    "help",
];

/// The commands of the accounts-and-groups seed.
const GROUPS: &[&str] = &[
    "create_user",
    "login",
    "logout",
    "create_group",
    "join_group",
    "leave_group",
    "list_requests",
    "accept_request",
    "reject_request",
    "list_groups",
    "list_files",
    "upload_file",
    "download_file",
    "stop_share",
];

/// How often news from the background (a download complete or failed) is looked for while
/// the shell waits for a line.
const NEWS: Duration = Duration::from_millis(250);

/// Runs commands until `quit` or the end of stdin. Returns whether a command failed when
/// stdin is not a terminal (a script), for the client's exit status.
pub fn run(engine: &Engine) -> bool {
    let stdin = io::stdin();
    let terminal = stdin.is_terminal();
    // True while the shell waits for a line: news is printed then, never inside an answer.
    let waiting = &Mutex::new(false);
    let (stop, stopped) = mpsc::channel::<()>();
    thread::scope(|s| {
        s.spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(NEWS) {
                let waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
                if *waiting {
                    print_news(engine, terminal, true);
                }
            }
        });
        let failed = read_commands(engine, &mut stdin.lock(), terminal, waiting);
        drop(stop);
        failed
    })
}

/// Prints the lines about background changes not printed yet, each on its own line; on a
/// terminal where a prompt is shown (`again`), below it, with the prompt drawn again after
/// them.
fn print_news(engine: &Engine, terminal: bool, again: bool) {
    let news = engine.take_events();
    if news.is_empty() {
        return;
    }
    let mut out = io::stdout().lock();
    if terminal && again {
        // Below the prompt, which is drawn again after the news: what the user has typed
        // so far stays on the screen (the terminal still holds it).
        let _ = out.write_all(b"\n");
    }
    for line in news {
        let _ = writeln!(out, "{line}");
    }
    if terminal && again {
        let _ = out.write_all(PROMPT.as_bytes());
    }
    let _ = out.flush();
}

const PROMPT: &str = "p2p> ";

/// The longest command line taken: longer ones are refused, and not kept in memory.
const MAX_LINE: usize = 8192;

/// Reads one line (with its `\n`) into `line`, keeping at most [`MAX_LINE`] + 1 bytes of
/// it; returns how many bytes the whole line had (0 at the end of input).
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(total);
        }
        let (take, done) = match buf.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (buf.len(), false),
        };
        let room = (MAX_LINE + 1).saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        input.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

fn read_commands(
    engine: &Engine,
    input: &mut impl BufRead,
    terminal: bool,
    waiting: &Mutex<bool>,
) -> bool {
    let mut failed = false;
    let mut line = Vec::new();
    loop {
        {
            let mut waiting = waiting.lock().unwrap_or_else(|e| e.into_inner());
            print_news(engine, terminal, false);
            if terminal {
                print!("{PROMPT}");
                let _ = io::stdout().flush();
            }
            *waiting = true;
        }
        line.clear();
        let read = read_line(input, &mut line);
        *waiting.lock().unwrap_or_else(|e| e.into_inner()) = false;
        let outcome = match read {
            Ok(0) | Err(_) => {
                // The shell's own prompt must not be glued to ours.
                if terminal {
                    println!();
                }
                break;
            }
            Ok(n) if n > MAX_LINE => Err(format!(
                "the line is {n} bytes long; a command is at most {MAX_LINE}"
            )),
            Ok(_) => one_line(engine, &line),
        };
        match outcome {
            Ok(Next::Go) => {}
            Ok(Next::Quit) => return failed && !terminal,
            Err(e) => {
                eprintln!("error: {e}");
                failed = true;
            }
        }
    }
    let _ = engine.ask(Cmd::Quit);
    failed && !terminal
}

/// What the shell does after a line.
enum Next {
    Go,
    Quit,
}

/// Runs one line of input (with its line ending); an error is the line to show.
fn one_line(engine: &Engine, bytes: &[u8]) -> Result<Next, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| "the line is not UTF-8 text; type the command again".to_string())?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let text = text.strip_suffix('\r').unwrap_or(text);
    check_plain(text)?;
    let owned = split_words(text)?;
    let words: Vec<&str> = owned.iter().map(String::as_str).collect();
    let cmd = match words.as_slice() {
        [] => return Ok(Next::Go),
        ["help"] => {
            println!("{HELP}");
            return Ok(Next::Go);
        }
        ["help", c] => {
            let lines = help_of(c);
            if lines.is_empty() {
                let c: String = c.chars().take(40).collect();
                return Err(format!("help: no command {c:?} (try help)"));
            }
            println!("{}", lines.join("\n"));
            return Ok(Next::Go);
        }
        ["share", path, mtorrent] => Cmd::Share {
            path: PathBuf::from(path),
            mtorrent: PathBuf::from(mtorrent),
        },
        ["get", mtorrent, dest] => Cmd::Get {
            mtorrent: PathBuf::from(mtorrent),
            dest: PathBuf::from(dest),
        },
        ["show", "downloads"] | ["show_downloads"] => Cmd::Show,
        ["remove", mtorrent] => Cmd::Remove {
            mtorrent: PathBuf::from(mtorrent),
        },
        ["quit"] | ["exit"] => Cmd::Quit,
        [c, rest @ ..] if let Some(cmd) = group_command(c, rest) => Cmd::Group(cmd?),
        [c, ..] if GROUPS.contains(c) || OURS.contains(c) => {
            // The command's form: its first help line up to the description.
            let lines = help_of(c);
            let first = lines.first().map_or("", |l| l.trim());
            let form = first.split("  ").next().unwrap_or(first);
            return Err(format!(
                "wrong arguments for {c}; usage: {form} (try help {c})"
            ));
        }
        [c, ..] => {
            let c: String = c.chars().take(40).collect();
            return Err(format!("unknown command {c:?} (try help)"));
        }
    };
    let quit = matches!(cmd, Cmd::Quit);
    let out = engine.ask(cmd).map_err(|e| e.to_string())?;
    for l in out {
        println!("{l}");
    }
    Ok(if quit { Next::Quit } else { Next::Go })
}

/// An account or group command of the right shape (`None` for any other), its ids, group
/// names and password checked before anything is sent; the login is the engine's to check.
fn group_command(c: &str, args: &[&str]) -> Option<Result<GroupCmd, String>> {
    use crate::account_name::{check_group, check_id, check_password};
    let s = |w: &str| w.to_string();
    let cmd = match (c, args) {
        ("create_user" | "login", [id, pw]) => (|| {
            check_id(id)?;
            check_password(pw)?;
            let (id, password) = (s(id), s(pw));
            Ok(if c == "login" {
                GroupCmd::Login { id, password }
            } else {
                GroupCmd::CreateUser { id, password }
            })
        })(),
        ("logout", []) => Ok(GroupCmd::Logout),
        ("list_groups", []) => Ok(GroupCmd::ListGroups),
        ("create_group" | "join_group" | "list_requests" | "leave_group" | "list_files", [g]) => {
            check_group(g).map(|()| {
                let group = s(g);
                match c {
                    "create_group" => GroupCmd::CreateGroup { group },
                    "join_group" => GroupCmd::JoinGroup { group },
                    "list_requests" => GroupCmd::ListRequests { group },
                    "leave_group" => GroupCmd::LeaveGroup { group },
                    _ => GroupCmd::ListFiles { group },
                }
            })
        }
        (c @ ("accept_request" | "reject_request"), [g, user]) => check_group(g).and_then(|()| {
            check_id(user)?;
            Ok(GroupCmd::AnswerRequest {
                group: s(g),
                user: s(user),
                accept: c == "accept_request",
            })
        }),
        ("upload_file", [path, g]) => check_group(g).map(|()| GroupCmd::UploadFile {
            path: PathBuf::from(path),
            group: s(g),
        }),
        ("download_file", [g, file, dest]) => check_group(g).map(|()| GroupCmd::DownloadFile {
            group: s(g),
            file: s(file),
            dest: PathBuf::from(dest),
        }),
        ("stop_share", [g, file]) => check_group(g).map(|()| GroupCmd::StopShare {
            group: s(g),
            file: s(file),
        }),
        _ => return None,
    };
    Some(cmd)
}

/// The help lines of command `c`, spelled with `_` or a space (`show_downloads`).
fn help_of(c: &str) -> Vec<&'static str> {
    let lines = usage_lines(c);
    if lines.is_empty() {
        usage_lines(&c.replace('_', " "))
    } else {
        lines
    }
}

/// Refuses a line holding escape sequences (arrow keys, which this shell does not edit with)
/// or other control characters, with a message that says which.
fn check_plain(text: &str) -> Result<(), String> {
    if text.contains('\x1b') {
        return Err(
            "the line holds an escape sequence (an arrow or function key?); \
                    this shell has no line editing: type the command again as plain text"
                .to_string(),
        );
    }
    match text.chars().find(|&c| c.is_control() && c != '\t') {
        Some(c) => Err(format!(
            "the line holds a control character (U+{:04X}); type the command again as plain text",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Splits a command line into words: spaces separate words, except inside double quotes or
/// after a backslash, so `share "my file.txt" my.mtorrent` works.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                word.get_or_insert_with(String::new);
            }
            '\\' => {
                let next = chars.next().ok_or("a backslash ends the line")?;
                word.get_or_insert_with(String::new).push(next);
            }
            c if c.is_whitespace() && !quoted => words.extend(word.take()),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    if quoted {
        return Err("a double quote is not closed".to_string());
    }
    words.extend(word);
    Ok(words)
}

/// The lines of [`HELP`] about `command` (its first line and the indented ones after it).
fn usage_lines(command: &str) -> Vec<&'static str> {
    let mut lines = Vec::new();
    for line in HELP.lines().skip(1) {
        let about = line.trim_start();
        let first = line.starts_with("  ") && !line.starts_with("   ");
        if first {
            if !lines.is_empty() {
                break;
            }
            let spelled = about.split(" | ").any(|s| {
                s.strip_prefix(command)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
            });
            if spelled {
                lines.push(line);
            }
        } else if !lines.is_empty() && line.starts_with("   ") {
            lines.push(line);
        } else if !lines.is_empty() {
            break;
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::{MAX_LINE, read_line, split_words};

    #[test]
    fn a_long_line_is_counted_whole_but_kept_short() {
        let long = vec![b'x'; 3 * MAX_LINE];
        let input = [&long[..], b"\nshow downloads\n"].concat();
        let mut input = std::io::BufReader::with_capacity(100, &input[..]);
        let mut line = Vec::new();
        assert_eq!(read_line(&mut input, &mut line).unwrap(), 3 * MAX_LINE + 1);
        assert_eq!(line.len(), MAX_LINE + 1);
        line.clear();
        assert_eq!(read_line(&mut input, &mut line).unwrap(), 15);
        assert_eq!(line, b"show downloads\n");
        line.clear();
        assert_eq!(read_line(&mut input, &mut line).unwrap(), 0);
    }

    #[test]
    fn quotes_and_backslashes_keep_spaces_in_one_word() {
        assert_eq!(
            split_words(r#"share "my file.txt" a.mtorrent"#).unwrap(),
            ["share", "my file.txt", "a.mtorrent"]
        );
        assert_eq!(
            split_words(r"get a\ b.mtorrent  out ").unwrap(),
            ["get", "a b.mtorrent", "out"]
        );
        assert_eq!(split_words(r#"x """#).unwrap(), ["x", ""]);
        assert!(split_words(r#"share "open"#).is_err());
        assert!(split_words("x \\").is_err());
    }
}
