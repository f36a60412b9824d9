//! The errors that reach `main`, and the exit code each maps to.

use std::fmt;
use std::io;

#[derive(Debug)]
pub enum Error {
    /// Wrong command-line arguments: usage is printed, exit code 2.
    Usage(String),
    /// Something failed at run time: one line on stderr, exit code 1.
    Failed(String),
}

impl Error {
    pub fn failed(context: impl fmt::Display, cause: impl fmt::Display) -> Error {
        Error::Failed(format!("{context}: {cause}"))
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Usage(_) => 2,
            Error::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Failed(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Failed(e.to_string())
    }
}
