//! Free text that people read: member names, emergency reasons, rule names.
//!
//! Such text reaches patients' phones and regulators' screens, so it may not
//! carry what changes how the text around it reads: control characters (line
//! breaks and escapes that forge lines in a log or a list) or bidirectional
//! controls (which reorder what is shown, as in CVE-2021-42574).

/// Why a text was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("starts or ends with white space")]
    Padded,
    #[error("holds a control character")]
    Control,
    #[error("holds a bidirectional control (U+061C, U+200E, U+200F, U+202A to U+202E, U+2066 to U+2069)")]
    Bidi,
}

/// Bidirectional formatting characters: marks, embeddings, overrides and isolates.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Checks a one-line text shown to people: 1 to `max_chars` characters, no
/// surrounding white space, no control characters (Unicode `Cc`, and the line
/// and paragraph separators), no bidirectional controls.
pub fn check_shown_text(text: &str, max_chars: usize) -> Result<(), TextError> {
    if text.is_empty() {
        return Err(TextError::Empty);
    }
    if text.chars().count() > max_chars {
        return Err(TextError::TooLong(max_chars));
    }
    if text.trim() != text {
        return Err(TextError::Padded);
    }
    if text
        .chars()
        .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        return Err(TextError::Control);
    }
    if text.chars().any(is_bidi_control) {
        return Err(TextError::Bidi);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_text_refuses_controls_overrides_and_excess() {
        assert_eq!(check_shown_text("Patient unconscious in ED", 64), Ok(()));
        assert_eq!(check_shown_text("患者昏迷，急诊", 64), Ok(()));
        assert_eq!(check_shown_text("", 64), Err(TextError::Empty));
        assert_eq!(check_shown_text(" padded", 64), Err(TextError::Padded));
        assert_eq!(
            check_shown_text(&"x".repeat(65), 64),
            Err(TextError::TooLong(64))
        );
        assert_eq!(check_shown_text(&"语".repeat(64), 64), Ok(()));
        for c in [
            '\n', '\r', '\t', '\u{0}', '\u{1b}', '\u{7f}', '\u{85}', '\u{2028}',
        ] {
            assert_eq!(
                check_shown_text(&format!("a{c}b"), 64),
                Err(TextError::Control),
                "{c:?}"
            );
        }
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{202e}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}', '\u{200f}',
        ] {
            assert_eq!(
                check_shown_text(&format!("a{c}b"), 64),
                Err(TextError::Bidi),
                "{c:?}"
            );
        }
    }
}
