use unicode_normalization::UnicodeNormalization;

use crate::error::CoreError;

fn invalid(field: &str, message: impl Into<String>) -> CoreError {
    CoreError::InvalidArgument {
        field: field.to_owned(),
        message: message.into(),
    }
}

/// NFKC, lowercase, trimmed: the form directory searches and usernames compare in.
pub fn search_key(s: &str) -> String {
    s.trim().nfkc().collect::<String>().to_lowercase()
}

/// Validates a username and returns `(as typed, key)`: 3 to 32 letters,
/// digits, `_`, `.` or `-`; the key (NFKC + lowercase) is what must be unique,
/// so `Ａlice` and `alice` collide.
pub fn normalize_username(raw: &str) -> Result<(String, String), CoreError> {
    let typed: String = raw.trim().nfkc().collect();
    let len = typed.chars().count();
    if !(3..=32).contains(&len) {
        return Err(invalid("username", "a username has 3 to 32 characters"));
    }
    if !typed
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(invalid(
            "username",
            "a username may contain only letters, digits, '_', '.' and '-'",
        ));
    }
    let key = typed.to_lowercase();
    Ok((typed, key))
}

/// Validates an email address and returns `(as typed, key)`; the key
/// (NFKC, lowercase) is what must be unique.
pub fn normalize_email(raw: &str) -> Result<(String, String), CoreError> {
    let typed: String = raw.trim().nfkc().collect();
    let bad = || invalid("email", "not a valid email address");
    if typed.len() > 254 || typed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad());
    }
    let (local, domain) = typed.split_once('@').ok_or_else(bad)?;
    if local.is_empty()
        || local.len() > 64
        || domain.contains('@')
        || !domain.contains('.')
        || domain.starts_with('.')
        || domain.ends_with('.')
        || domain.contains("..")
    {
        return Err(bad());
    }
    let key = typed.to_lowercase();
    Ok((typed, key))
}

/// Normalises a phone number to E.164 (`+` then 8 to 15 digits, the first
/// not 0). Spaces, dashes, dots and parentheses are dropped; a leading `00`
/// stands for `+`. Numbers without a country code are refused rather than
/// guessed.
pub fn normalize_phone(raw: &str) -> Result<String, CoreError> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err(invalid(
            "phone",
            "a phone number starts with its country code, like +44 20 7946 0000",
        ));
    };
    if !(8..=15).contains(&digits.len())
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(invalid("phone", "not a valid international phone number"));
    }
    Ok(format!("+{digits}"))
}

/// Trims a display name and checks it has 1 to 64 characters and no control characters.
pub fn normalize_display_name(raw: &str) -> Result<String, CoreError> {
    let name: String = raw.trim().nfkc().collect();
    let len = name.chars().count();
    if !(1..=64).contains(&len) || name.chars().any(char::is_control) {
        return Err(invalid(
            "display_name",
            "a display name has 1 to 64 characters and no control characters",
        ));
    }
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_compare_case_insensitively_after_nfkc() {
        let (_, a) = normalize_username("Alice").unwrap();
        let (_, b) = normalize_username("ＡＬＩＣＥ").unwrap(); // fullwidth
        assert_eq!(a, b);
        assert!(normalize_username("al").is_err());
        assert!(normalize_username("al ice").is_err());
        assert!(normalize_username("bob!").is_err());
    }

    #[test]
    fn emails_are_validated_and_lowercased() {
        assert_eq!(
            normalize_email(" Bob@Example.COM ").unwrap().1,
            "bob@example.com"
        );
        for bad in [
            "bob",
            "bob@",
            "@x.com",
            "bob@x",
            "a@b@c.com",
            "bo b@x.com",
            "bob@.x.com",
            "bob@x..com",
        ] {
            assert!(normalize_email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            normalize_phone("+44 (20) 7946-0000").unwrap(),
            "+442079460000"
        );
        assert_eq!(normalize_phone("0049 30 1234567").unwrap(), "+49301234567");
        for bad in [
            "020 7946 0000",
            "+0123456789",
            "+12",
            "+1234567890123456",
            "+44 20 ABC",
        ] {
            assert!(normalize_phone(bad).is_err(), "{bad}");
        }
    }
}
