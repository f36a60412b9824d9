//! Shared test harness for the binaries in tests/: each room below owns one concern, and
//! `use common::*` brings them all, so a test reads as if they were one module.
// Each test binary uses only some of it.
#![allow(dead_code, unused_imports)]

mod files;
mod output;
mod procs;
mod raw;
mod swarms;

pub use files::*;
pub use output::*;
pub use procs::*;
pub use raw::*;
pub use swarms::*;
