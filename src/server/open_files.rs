//! Room for many connections: the soft limit on open files is raised to the hard limit once
//! per process, since every connection holds a few descriptors and a flood of idle sockets
//! must not leave an honest newcomer without one.

use std::sync::Once;

/// Raises the soft limit on open files to the hard limit, once per process.
pub(super) fn raise_open_files_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(raise_soft_nofile);
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
fn raise_soft_nofile() {
    #[repr(C)]
    struct Rlimit {
        soft: u64,
        hard: u64,
    }
    unsafe extern "C" {
        fn getrlimit(resource: i32, limit: *mut Rlimit) -> i32;
        fn setrlimit(resource: i32, limit: *const Rlimit) -> i32;
    }
    const RLIMIT_NOFILE: i32 = 7;
    let mut limit = Rlimit { soft: 0, hard: 0 };
    // SAFETY: `limit` is a live struct laid out as the kernel's `struct rlimit`.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut limit) } == 0 && limit.soft < limit.hard {
        limit.soft = limit.hard;
        // SAFETY: as above; the kernel only reads it.
        unsafe { setrlimit(RLIMIT_NOFILE, &limit) };
    }
}

/// Elsewhere the limit stays as it is.
#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
fn raise_soft_nofile() {}
