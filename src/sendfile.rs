//! Sending a run of a file's bytes to a socket without copying them through user space:
//! `sendfile(2)` with an explicit offset, so that many connections can send from one shared
//! file handle at once without a file position to fight over.
//!
//! `std::io::copy` does not do this for a `File` into a `TcpStream`: it declines `sendfile`
//! there, because the kernel sends the page cache's pages themselves, so a change made to
//! the file before they leave can still show. p2p accepts that: every piece is verified by
//! its receiver's SHA-1, and a file that changes under its server is given up (see
//! `peer::store`).

use std::fs::File;
use std::io;
use std::net::TcpStream;

/// Sends up to `len` bytes of `file`, from `offset`, to `socket`; returns how many went out
/// (fewer only if the file ends first). The socket's write timeout applies to each step. A
/// file the kernel cannot send this way (a file system without the support) is read and
/// written instead.
#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn send_file(socket: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn sendfile(out_fd: i32, in_fd: i32, offset: *mut i64, count: usize) -> isize;
    }
    /// The most one call moves (Linux's own cap is a little under 2 GiB).
    const STEP: u64 = 1 << 30;
    let mut at = i64::try_from(offset).map_err(|_| io::Error::other("offset too large"))?;
    let mut sent = 0;
    while sent < len {
        let step = (len - sent).min(STEP) as usize;
        // SAFETY: both descriptors belong to objects borrowed for this call, and `at` is a
        // live i64 the kernel reads and advances.
        let n = unsafe { sendfile(socket.as_raw_fd(), file.as_raw_fd(), &mut at, step) };
        match n {
            0 => break,
            n if n > 0 => sent += n as u64,
            _ => {
                let e = io::Error::last_os_error();
                // EINVAL, ENOSYS, EOPNOTSUPP before anything left: not supported here.
                if sent == 0 && matches!(e.raw_os_error(), Some(22 | 38 | 95)) {
                    return read_then_write(socket, file, offset, len);
                }
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
    Ok(sent)
}

/// Elsewhere: positioned reads into a buffer, then writes.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn send_file(socket: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    read_then_write(socket, file, offset, len)
}

/// The same through user space: positioned reads into a buffer, then writes.
fn read_then_write(socket: &TcpStream, file: &File, offset: u64, len: u64) -> io::Result<u64> {
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; len.min(1 << 16) as usize];
    let mut sent = 0;
    while sent < len {
        let want = (len - sent).min(buf.len() as u64) as usize;
        let n = file.read_at(&mut buf[..want], offset + sent)?;
        if n == 0 {
            break;
        }
        (&mut &*socket).write_all(&buf[..n])?;
        sent += n as u64;
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// Sends `(offset, len)` runs of a file through a loopback connection; returns what each
    /// call reported and every byte that arrived.
    fn through_loopback(content: &[u8], runs: &[(u64, u64)]) -> (Vec<u64>, Vec<u8>) {
        let path = std::env::temp_dir().join(format!("p2p-sendfile-{}", crate::rng::random_u64()));
        std::fs::File::create(&path)
            .unwrap()
            .write_all(content)
            .unwrap();
        let file = File::open(&path).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let sender = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut receiver, _) = listener.accept().unwrap();
        let reported = runs
            .iter()
            .map(|&(offset, len)| send_file(&sender, &file, offset, len).unwrap())
            .collect();
        drop(sender);
        let mut got = Vec::new();
        receiver.read_to_end(&mut got).unwrap();
        let _ = std::fs::remove_file(&path);
        (reported, got)
    }

    #[test]
    fn runs_arrive_whole_and_in_order_from_a_shared_handle() {
        let content: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
        let runs = [
            (65536, 65536),
            (0, 100),
            (299_990, 10),
            (1, 0),
            (12345, 200_000),
        ];
        let (reported, got) = through_loopback(&content, &runs);
        assert_eq!(reported, [65536, 100, 10, 0, 200_000]);
        let expected: Vec<u8> = runs
            .iter()
            .flat_map(|&(o, l)| content[o as usize..(o + l) as usize].to_vec())
            .collect();
        assert!(got == expected, "the bytes that arrived differ");
    }

    #[test]
    fn a_file_that_ends_early_sends_what_it_has_and_says_so() {
        let content = vec![9u8; 1000];
        let (reported, got) = through_loopback(&content, &[(900, 500), (2000, 10)]);
        assert_eq!(reported, [100, 0]);
        assert_eq!(got, vec![9u8; 100]);
    }
}
