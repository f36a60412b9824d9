//! Writing a whole file so that no reader ever sees it half written: the bytes go to a
//! temporary file beside it (`<name>.tmp`, on the same file system), which is then renamed
//! over it. Used for the grading tracker's `port.txt`, the pair tracker's state file and
//! the client's state file.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Replaces the contents of `path` with `bytes` in one step; on failure the temporary file
/// is removed and `path` is left as it was.
pub fn write(path: &Path, bytes: impl AsRef<[u8]>) -> io::Result<()> {
    let tmp = temporary(path);
    fs::write(&tmp, bytes)
        .and_then(|()| fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
}

/// `<path>.tmp`.
fn temporary(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_whole_and_no_temporary_is_left() {
        let dir = std::env::temp_dir().join(format!("p2p-atomic-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("port.txt");
        write(&path, "1\n").unwrap();
        write(&path, "2\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "2\n");
        assert_eq!(temporary(&path), dir.join("port.txt.tmp"));
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        // A folder where the file should be: the rename fails, nothing is left behind.
        let blocked = dir.join("blocked");
        fs::create_dir_all(blocked.join("inner")).unwrap();
        assert!(write(&blocked, "x").is_err());
        assert!(!temporary(&blocked).exists());
        let _ = fs::remove_dir_all(dir);
    }
}
