//! Names that come from peers (display names, and file names once attachments exist) are data,
//! and no such name may disguise what it is: the Unicode bidirectional embedding, override and
//! isolate controls (U+202A–U+202E, U+2066–U+2069) are removed before a name is stored or shown.
//! With them, "\u{202E}gnp.exe" is drawn as "exe.png" (`docs/threat-model.md`, Names that lie).
//!
//! Right-to-left names still display correctly: the Unicode bidirectional algorithm orders
//! Arabic or Hebrew letters by their own direction; only the explicit controls that override it
//! are removed. The implicit marks (U+200E, U+200F, U+061C) cannot reorder a run of strong
//! characters and are kept.

/// Whether `c` is a bidirectional embedding, override or isolate control.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// `name` without bidirectional controls, trimmed.
pub fn neutralise_bidi(name: &str) -> String {
    let kept: String = name.chars().filter(|&c| !is_bidi_control(c)).collect();
    kept.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use test_case::test_case;

    #[test_case("\u{202E}gnp.exe\u{202C}", "gnp.exe" ; "right-to-left override hides an exe")]
    #[test_case("photo\u{2067}gnp.exe\u{2069}", "photognp.exe" ; "right-to-left isolate")]
    #[test_case("\u{202A}\u{202B}\u{202D}Bob\u{2066}\u{2068}", "Bob" ; "every embedding and isolate")]
    #[test_case("Chloé Martin", "Chloé Martin" ; "plain names are unchanged")]
    #[test_case("שלום", "שלום" ; "right-to-left letters are unchanged")]
    #[test_case("a\u{200F}b", "a\u{200F}b" ; "implicit marks are kept")]
    #[test_case(" \u{202E} ", "" ; "nothing but controls")]
    fn bidi_controls_are_removed(name: &str, expected: &str) {
        assert_eq!(neutralise_bidi(name), expected);
    }

    #[test]
    fn no_control_survives_any_input() {
        for code in 0x2000u32..0x2100 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let name = format!("x{c}y");
            assert!(!neutralise_bidi(&name).chars().any(is_bidi_control));
        }
    }
}
