//! File names: what a name may be, and how it travels as one word on the wire.
//!
//! A name is any UTF-8 string valid as a single Linux path component, except hidden names:
//! no `/`, no NUL, no leading `.` (which also rules out `.` and `..`), not empty, at most
//! 255 bytes. Every name that arrives from the network passes [`validate`] before it touches
//! the disk, so joining it to a folder can never leave that folder.

use std::fmt;

/// The longest name Linux accepts as one path component (NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong(usize),
    Slash,
    Nul,
    Hidden,
    BadEscape,
    NotUtf8,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "file name is empty"),
            NameError::TooLong(n) => {
                write!(f, "file name is {n} bytes, more than {MAX_NAME_BYTES}")
            }
            NameError::Slash => write!(f, "file name contains '/'"),
            NameError::Nul => write!(f, "file name contains NUL"),
            NameError::Hidden => write!(f, "file name starts with '.'"),
            NameError::BadEscape => write!(f, "file name has a bad %-escape"),
            NameError::NotUtf8 => write!(f, "file name is not UTF-8"),
        }
    }
}

impl std::error::Error for NameError {}

/// Checks that `name` is a plain, visible file name (see the module comment).
pub fn validate(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(NameError::TooLong(name.len()));
    }
    if name.contains('/') {
        return Err(NameError::Slash);
    }
    if name.contains('\0') {
        return Err(NameError::Nul);
    }
    if name.starts_with('.') {
        return Err(NameError::Hidden);
    }
    Ok(())
}

/// Percent-encodes `name` so it is one word: every byte outside printable ASCII, and `%`
/// itself, becomes `%XX`. An empty string encodes as `%` alone would be ambiguous, so the
/// empty name (never valid anyway) encodes as the empty string.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for &b in name.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Reverses [`encode`] and validates the result.
pub fn decode(word: &str) -> Result<String, NameError> {
    let name = decode_raw(word)?;
    validate(&name)?;
    Ok(name)
}

/// Reverses [`encode`] without checking that the result is a valid name (for paths).
pub fn decode_raw(word: &str) -> Result<String, NameError> {
    let bytes = word.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).and_then(|&c| hex_val(c));
            let lo = bytes.get(i + 2).and_then(|&c| hex_val(c));
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(NameError::BadEscape),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| NameError::NotUtf8)
}

pub(crate) fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_spaces_and_utf8_round_trip_as_one_word() {
        for name in ["a b", "naïve файл.txt", "100%", "foo... bar", "x\ty"] {
            let word = encode(name);
            assert!(!word.contains(' ') && !word.contains('\t'), "{word}");
            assert_eq!(decode(&word).as_deref(), Ok(name));
        }
    }

    #[test]
    fn hostile_names_are_refused() {
        assert_eq!(validate(""), Err(NameError::Empty));
        assert_eq!(validate("."), Err(NameError::Hidden));
        assert_eq!(validate(".."), Err(NameError::Hidden));
        assert_eq!(validate("../x"), Err(NameError::Slash));
        assert_eq!(validate("/etc/passwd"), Err(NameError::Slash));
        assert_eq!(validate("a/b"), Err(NameError::Slash));
        assert_eq!(validate("a\0b"), Err(NameError::Nul));
        assert_eq!(validate(&"x".repeat(4096)), Err(NameError::TooLong(4096)));
        assert_eq!(decode("..%2Fx"), Err(NameError::Slash));
        assert_eq!(decode("a%2Fb"), Err(NameError::Slash));
        assert_eq!(decode("a%00b"), Err(NameError::Nul));
        assert_eq!(decode("a%zz"), Err(NameError::BadEscape));
        assert_eq!(decode("a%4"), Err(NameError::BadEscape));
        assert_eq!(decode("%FF"), Err(NameError::NotUtf8));
    }
}
