use unicode_normalization::UnicodeNormalization;

use crate::error::{invalid, CoreError};

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

/// Unicode format characters (general category Cf, Unicode 15.1): invisible
/// characters that change how the text around them shows (bidi overrides,
/// zero-width spaces, ...), usable to make one name look like another.
const FORMAT_CHARS: &[(u32, u32)] = &[
    (0x00AD, 0x00AD),
    (0x0600, 0x0605),
    (0x061C, 0x061C),
    (0x06DD, 0x06DD),
    (0x070F, 0x070F),
    (0x0890, 0x0891),
    (0x08E2, 0x08E2),
    (0x180E, 0x180E),
    (0x200B, 0x200F),
    (0x202A, 0x202E),
    (0x2060, 0x2064),
    (0x2066, 0x206F),
    (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD),
    (0x110CD, 0x110CD),
    (0x13430, 0x1343F),
    (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001),
    (0xE0020, 0xE007F),
];

const ZWJ: char = '\u{200D}';
const BLACK_FLAG: char = '\u{1F3F4}';
const CANCEL_TAG: char = '\u{E007F}';

fn is_format(c: char) -> bool {
    let c = c as u32;
    FORMAT_CHARS.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..=CANCEL_TAG).contains(&c)
}

/// Pictographs, symbols, skin tones and the emoji presentation selector:
/// what stands on either side of a ZWJ in an emoji sequence (👩‍💻, 🏳️‍🌈).
fn is_emoji_part(c: char) -> bool {
    matches!(c as u32,
        0x1F000..=0x1FAFF | 0x2190..=0x21FF | 0x2300..=0x23FF | 0x2460..=0x27BF
        | 0x2900..=0x297F | 0x2B00..=0x2BFF | 0x3030 | 0x303D | 0x3297 | 0x3299
        | 0x00A9 | 0x00AE | 0x203C | 0x2049 | 0x2122 | 0x2139 | 0xFE0F | 0x20E3)
}

/// Whether the format characters of `chars` are only those emoji need: a
/// ZWJ between two emoji, and tag characters in a subdivision flag (🏴 then
/// tags, closed by the cancel tag).
fn format_chars_allowed(chars: &[char]) -> bool {
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == ZWJ {
            let joined = i > 0
                && is_emoji_part(chars[i - 1])
                && chars.get(i + 1).copied().is_some_and(is_emoji_part);
            if !joined {
                return false;
            }
        } else if is_tag(c) {
            // A run of tags must follow the black flag and end with the cancel tag.
            if i == 0 || chars[i - 1] != BLACK_FLAG {
                return false;
            }
            let run = chars[i..].iter().take_while(|c| is_tag(**c)).count();
            if run < 2 || chars[i + run - 1] != CANCEL_TAG {
                return false;
            }
            i += run;
            continue;
        } else if is_format(c) {
            return false;
        }
        i += 1;
    }
    true
}

/// The text rules for every name and short text a user gives (display
/// names, about, device names, and later group titles): trimmed, NFKC,
/// `min..=max` characters, no control characters, no line or paragraph
/// separators, and no invisible format characters except those emoji
/// sequences need. Returns the normalised text, or `invalid_argument` on
/// `field`.
pub fn normalize_text(field: &str, raw: &str, min: usize, max: usize) -> Result<String, CoreError> {
    let text: String = raw.trim().nfkc().collect();
    let chars: Vec<char> = text.chars().collect();
    if !(min..=max).contains(&chars.len()) {
        return Err(invalid(
            field,
            format!("{} has {min} to {max} characters", field.replace('_', " ")),
        ));
    }
    if chars
        .iter()
        .any(|&c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(invalid(
            field,
            format!(
                "{} must not contain control characters",
                field.replace('_', " ")
            ),
        ));
    }
    if !format_chars_allowed(&chars) {
        return Err(invalid(
            field,
            format!(
                "{} must not contain invisible formatting characters (such as direction overrides or zero-width spaces)",
                field.replace('_', " ")
            ),
        ));
    }
    Ok(text)
}

/// A display name: [`normalize_text`] with 1 to 64 characters.
pub fn normalize_display_name(raw: &str) -> Result<String, CoreError> {
    normalize_text("display_name", raw, 1, 64)
}

/// The "about" line of a profile: [`normalize_text`] with 0 to 256 characters.
pub fn normalize_about(raw: &str) -> Result<String, CoreError> {
    normalize_text("about", raw, 0, 256)
}

/// A device's name: [`normalize_text`] with 0 to 64 characters; empty
/// becomes "unnamed device".
pub fn normalize_device_name(raw: &str) -> Result<String, CoreError> {
    let name = normalize_text("device", raw, 0, 64)?;
    Ok(if name.is_empty() {
        "unnamed device".to_owned()
    } else {
        name
    })
}

/// A profile picture reference: empty (no picture) or a media id, 16 to 64
/// characters from `A-Z a-z 0-9 _ -`, the shape media uploads are named by.
/// Never a URL or a path: a client loads media by id from its own server
/// with its session, so a profile cannot point anyone's client elsewhere.
/// Returns `None` for no picture.
pub fn normalize_avatar(raw: &str) -> Result<Option<String>, CoreError> {
    let id = raw.trim();
    if id.is_empty() {
        return Ok(None);
    }
    if !(16..=64).contains(&id.len())
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
    {
        return Err(invalid(
            "avatar",
            "avatar is empty or the id of an uploaded picture (16 to 64 letters, digits, '_' or '-')",
        ));
    }
    Ok(Some(id.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_refuse_controls_and_invisible_formatting_but_keep_emoji() {
        for good in [
            "Alice Liddell",
            "Ёжик 🦔",
            "👩\u{200D}💻 dev",
            "🏳\u{FE0F}\u{200D}🌈",
            "👨\u{1F3FD}\u{200D}🚀",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F} Scot",
            "שלום",
        ] {
            assert!(normalize_display_name(good).is_ok(), "{good:?}");
        }
        for bad in [
            "Bob\u{202E}evil",
            "Al\u{200B}ice",
            "\u{2066}Alice\u{2069}",
            "Eve\u{1b}[2J",
            "a\u{0}b",
            "a\u{7}b",
            "a\nb",
            "a\u{2028}b",
            "a\u{200D}b",
            "\u{200D}🚀",
            "x\u{E0067}\u{E007F}",
            "🏴\u{E0067}\u{E0062}",
            "soft\u{AD}hyphen",
            "bom\u{FEFF}",
            "",
            "   ",
        ] {
            let err = normalize_display_name(bad).unwrap_err();
            assert!(
                matches!(&err, CoreError::InvalidArgument { field, .. } if field == "display_name"),
                "{bad:?}: {err:?}"
            );
        }
        assert!(normalize_about("").is_ok());
        assert!(normalize_about("hi\u{1b}]52;c;AAAA\u{7}").is_err());
        assert_eq!(normalize_device_name(" ").unwrap(), "unnamed device");
        assert!(normalize_device_name("phone\u{202E}").is_err());
    }

    #[test]
    fn avatars_are_media_ids_only() {
        assert_eq!(normalize_avatar(" ").unwrap(), None);
        assert_eq!(
            normalize_avatar("0190f3a2b7c84d2e9a1b2c3d4e5f6a7b")
                .unwrap()
                .as_deref(),
            Some("0190f3a2b7c84d2e9a1b2c3d4e5f6a7b")
        );
        for bad in [
            "javascript:alert(1)",
            "/\\attacker.example/x.png",
            "https://example.com/a.png",
            "/media/0190f3a2b7c84d2e9a1b",
            "short",
            "0190f3a2b7c84d2e9a1b2c3d4e5f6a7b0190f3a2b7c84d2e9a1b2c3d4e5f6a7b0",
        ] {
            assert!(normalize_avatar(bad).is_err(), "{bad}");
        }
    }

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
