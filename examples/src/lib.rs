//! Programs that embed chatcore; see the `[[example]]` entries. This library
//! holds what they share, where `cargo test` reaches it.

use std::borrow::Cow;
use std::fmt::Write;

/// `s` made harmless to print on a terminal, for every string a peer
/// controls (message text, names, profiles, error messages).
///
/// Raw, such a string can drive the reader's terminal: clear the screen,
/// move the cursor to fake earlier lines, set the window title or write
/// the clipboard (OSC 52), or reverse the order in which text is shown.
/// So C0 controls (newlines and tabs too: a message is one line) and DEL
/// are shown in caret notation (`^[` for ESC, `^?` for DEL), and C1
/// controls (U+0080 to U+009F) and the bidirectional overrides and
/// isolates (U+202A to U+202E, U+2066 to U+2069) as `\u{...}`.
/// Everything else, the rest of Unicode included, is printed as is.
pub fn terminal_safe(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match u8::try_from(c) {
            Ok(b @ 0x00..=0x1f) => {
                out.push('^');
                out.push(char::from(b + 0x40));
            }
            Ok(0x7f) => out.push_str("^?"),
            _ if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            _ => out.push(c),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    matches!(
        c,
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

#[cfg(test)]
mod tests {
    use super::terminal_safe;
    use std::borrow::Cow;

    #[test]
    fn plain_text_passes_untouched() {
        for s in [
            "",
            "hello",
            "Hello, Bob! 👋",
            "ça va? 日本語 עברית",
            "a^b \\ c",
        ] {
            assert!(
                matches!(terminal_safe(s), Cow::Borrowed(b) if b == s),
                "{s:?}"
            );
        }
    }

    #[test]
    fn controls_are_shown_not_obeyed() {
        let cases = [
            // clear screen, cursor home
            ("\u{1b}[2J\u{1b}[H", "^[[2J^[[H"),
            // OSC 52: write the clipboard, ended by BEL
            ("\u{1b}]52;c;ZXZpbA==\u{7}", "^[]52;c;ZXZpbA==^G"),
            // a faked second line, a carriage return over the sender's name
            ("hi\n[12:00] bob: pay me", "hi^J[12:00] bob: pay me"),
            ("x\rbob", "x^Mbob"),
            ("\t\0", "^I^@"),
            ("del\u{7f}", "del^?"),
            // C1: CSI and OSC as single code points
            ("\u{9b}2J\u{9d}52", "\\u{9b}2J\\u{9d}52"),
            ("\u{80}\u{9f}", "\\u{80}\\u{9f}"),
            // bidi overrides and isolates
            ("abc\u{202e}fdp.exe", "abc\\u{202e}fdp.exe"),
            (
                "\u{202a}\u{202d}\u{2066}\u{2069}",
                "\\u{202a}\\u{202d}\\u{2066}\\u{2069}",
            ),
        ];
        for (raw, shown) in cases {
            assert_eq!(terminal_safe(raw), shown, "{raw:?}");
        }
        // The neighbours of each range are left alone.
        for s in [
            "\u{20}", "\u{7e}", "\u{a0}", "\u{2029}", "\u{202f}", "\u{2065}", "\u{206a}",
        ] {
            assert_eq!(terminal_safe(s), s, "{s:?}");
        }
    }
}
