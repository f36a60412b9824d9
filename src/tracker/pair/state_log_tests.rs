use super::*;

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let p = std::env::temp_dir().join(format!("p2p-statelog-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn session(c: char, counter: u64) -> String {
    format!(
        "{counter}@me session {} live 127.0.0.1:9",
        c.to_string().repeat(32)
    )
}

#[test]
fn a_log_reloads_into_the_same_records_and_epoch() {
    let dir = Dir::new("reload");
    let path = dir.0.join("state");
    let tables = Tables::new("me");
    let mut log = StateLog::open(&path, &tables).unwrap();
    let epoch = log.epoch().to_string();
    tables
        .load(Record::parse(&session('a', 1)).unwrap(), 1)
        .unwrap();
    tables
        .load(Record::parse(&session('b', 2)).unwrap(), 2)
        .unwrap();
    tables.set_mark(Mark {
        origin: "twin".into(),
        epoch: "e".into(),
        seq: 7,
    });
    log.append(&tables).unwrap();
    let again = Tables::new("me");
    let reopened = StateLog::open(&path, &again).unwrap();
    assert_eq!(reopened.epoch(), epoch);
    assert_eq!(again.page(0, 10), tables.page(0, 10));
    assert_eq!(again.mark_of("twin", "e"), 7);
    let seqs: Vec<u64> = again.since(0, 10).iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2], "sequence numbers are kept");
    assert_eq!(
        again.size().1,
        2,
        "and the next change is numbered after them"
    );
}

#[test]
fn damaged_lines_are_skipped_and_the_rest_loads() {
    let dir = Dir::new("damaged");
    let path = dir.0.join("state");
    let mut text = b"p2p-pair-state 1 00000000000000aa\n".to_vec();
    text.extend(format!("1 {}\n", session('a', 1)).as_bytes());
    text.extend(b"mark twin e 9\n");
    text.extend(b"2 garbage\n\xff\xfe not utf-8\n");
    text.extend(format!("4 {}\n", session('b', 4)).as_bytes());
    text.extend(format!("5 {}", &session('c', 5)[..20]).as_bytes());
    fs::write(&path, &text).unwrap();
    let tables = Tables::new("me");
    let log = StateLog::open(&path, &tables).unwrap();
    assert_eq!(log.epoch(), "00000000000000aa");
    assert_eq!(tables.size().0, 2, "{:?}", tables.page(0, 10));
    assert_eq!(
        tables.mark_of("twin", "e"),
        0,
        "the twin sends everything again"
    );
    // The damage is gone from the file, which loads clean.
    let again = Tables::new("me");
    StateLog::open(&path, &again).unwrap();
    assert_eq!(again.page(0, 10), tables.page(0, 10));
    let written = fs::read_to_string(&path).unwrap();
    assert!(written.ends_with('\n') && !written.contains("garbage"));
}

#[test]
fn a_state_file_that_cannot_be_written_is_an_error() {
    let dir = Dir::new("unwritable");
    let tables = Tables::new("me");
    // A directory where the file should be, and a file under a missing folder.
    assert!(StateLog::open(&dir.0, &tables).is_err());
    assert!(StateLog::open(&dir.0.join("missing/state"), &tables).is_err());
    // Not a regular file: it is never read (reading /dev/zero would never end).
    assert!(StateLog::open(Path::new("/dev/zero"), &tables).is_err());
}
