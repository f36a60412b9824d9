//! What a user id, a group name and a password may be. The client checks before it sends and
//! the tracker checks again what arrives, with these same functions, so both say the same
//! thing in the same words. Ids and group names are plain ASCII (letters, digits, `-`, `_`,
//! `.`), so they travel as one word with no escaping and print as they are.

/// The longest user id or group name, in characters.
pub const MAX_ID: usize = 32;
/// The longest password, in bytes.
pub const MAX_PASSWORD: usize = 64;
/// How much of a bad word an error line quotes.
const QUOTED: usize = 40;

fn check(what: &str, word: &str) -> Result<(), String> {
    let ok = (1..=MAX_ID).contains(&word.len())
        && !word.starts_with(['.', '-'])
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        return Ok(());
    }
    let quoted: String = word.chars().take(QUOTED).collect();
    let quoted = quoted.escape_default();
    Err(format!(
        "{what} is 1 to {MAX_ID} letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got \"{quoted}\""
    ))
}

/// A user id.
pub fn check_id(word: &str) -> Result<(), String> {
    check("a user id", word)
}

/// A group name.
pub fn check_group(word: &str) -> Result<(), String> {
    check("a group name", word)
}

/// A password: 1 to [`MAX_PASSWORD`] bytes, no spaces or control characters.
pub fn check_password(word: &str) -> Result<(), String> {
    let ok = (1..=MAX_PASSWORD).contains(&word.len())
        && !word.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "a password is 1 to {MAX_PASSWORD} bytes without spaces"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_short_plain_words() {
        for good in ["a", "alice", "Bob_2", "x.y-z", &"a".repeat(MAX_ID)] {
            assert_eq!(check_id(good), Ok(()), "{good}");
            assert_eq!(check_group(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            ".hidden",
            "-flag",
            "a b",
            "a/b",
            "é",
            "a\u{1b}[31m",
            &"a".repeat(MAX_ID + 1),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
            assert!(check_group(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_group("a b").unwrap_err(),
            "a group name is 1 to 32 letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got \"a b\""
        );
        // A long or hostile word is quoted short and escaped.
        let long = check_id(&"x\u{7}".repeat(100)).unwrap_err();
        assert!(long.len() < 400 && !long.contains('\u{7}'), "{long}");
    }

    #[test]
    fn passwords_have_no_spaces_and_a_bound() {
        assert_eq!(check_password("s3cret!%"), Ok(()));
        assert_eq!(check_password(&"p".repeat(MAX_PASSWORD)), Ok(()));
        for bad in ["", "a b", "tab\there", &"p".repeat(MAX_PASSWORD + 1)] {
            assert!(check_password(bad).is_err(), "{bad:?}");
        }
    }
}
