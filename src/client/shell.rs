//! The shell: one command a line from stdin, a prompt when stdin is a terminal, an answer
//! or one clear error line for each. Both seeds' spellings are accepted.

use super::engine::{Cmd, Engine};
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

const HELP: &str = "\
commands:
  share <path> <name>.mtorrent     share a file: writes its .mtorrent, registers as seeder
                                   (quote paths with spaces: share \"my file\" my.mtorrent)
  get <file>.mtorrent <dest>       download in the background (dest may be a folder)
  show downloads | show_downloads  [D] name 42% while downloading, [S] name when seeding
  remove <file>.mtorrent           stop sharing a complete file (the file stays)
  help                             this text
  quit                             leave every seeder list and exit";

/// Commands of the accounts-and-groups seed, not available yet.
const LATER: &[&str] = &[
    "create_user",
    "login",
    "logout",
    "create_group",
    "join_group",
    "leave_group",
    "list_requests",
    "accept_request",
    "list_groups",
    "list_files",
    "upload_file",
    "download_file",
    "stop_share",
];

pub fn run(engine: &Engine) {
    let stdin = io::stdin();
    let prompt = stdin.is_terminal();
    let mut lines = stdin.lock().lines();
    loop {
        if prompt {
            print!("p2p> ");
            let _ = io::stdout().flush();
        }
        let Some(Ok(line)) = lines.next() else {
            break;
        };
        let owned = match split_words(&line) {
            Ok(w) => w,
            Err(e) => {
                eprintln!("error: {e}");
                continue;
            }
        };
        let words: Vec<&str> = owned.iter().map(String::as_str).collect();
        let cmd = match words.as_slice() {
            [] => continue,
            ["help"] => {
                println!("{HELP}");
                continue;
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
            [
                c @ ("share" | "get" | "show" | "show_downloads" | "remove" | "quit"),
                ..,
            ] => {
                eprintln!("error: wrong arguments for {c}; usage:\n{}", usage_of(c));
                continue;
            }
            [c, ..] if LATER.contains(c) => {
                eprintln!("error: {c}: accounts and groups are not available in this version");
                continue;
            }
            [c, ..] => {
                eprintln!("error: unknown command {c:?} (try help)");
                continue;
            }
        };
        let quit = matches!(cmd, Cmd::Quit);
        match engine.ask(cmd) {
            Ok(out) => {
                for l in out {
                    println!("{l}");
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
        if quit {
            return;
        }
    }
    let _ = engine.ask(Cmd::Quit);
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

fn usage_of(command: &str) -> &'static str {
    HELP.lines()
        .find(|l| l.trim_start().starts_with(command))
        .unwrap_or(HELP)
}

#[cfg(test)]
mod tests {
    use super::split_words;

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
