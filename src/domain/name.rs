//! What makes two workspace names the same.

use unicode_normalization::UnicodeNormalization;
use unicode_security::confusable_detection::skeleton;

/// The key names are unique by within an organization: two names that
/// look the same get the same key. Compatibility forms are folded (NFKC:
/// NFC vs NFD, the no-break space, full-width letters, ligatures), then
/// case (full case folding: "ß" is "ss"), then runs of whitespace become
/// one space and invisible format characters go, then characters that are
/// confusable across scripts map to one prototype (Unicode TS 39's
/// skeleton: Cyrillic "а" is Latin "a", "0" is "O").
pub fn normalize_name(name: &str) -> String {
    let folded = caseless::default_case_fold_str(&name.nfkc().collect::<String>());
    let mut spaced = String::with_capacity(folded.len());
    for word in folded
        .split(char::is_whitespace)
        .filter(|word| !word.is_empty())
    {
        if !spaced.is_empty() {
            spaced.push(' ');
        }
        spaced.extend(word.chars().filter(|c| !is_invisible(*c)));
    }
    let prototype: String = skeleton(&spaced).collect();
    caseless::default_case_fold_str(&prototype).nfc().collect()
}

/// Bidirectional controls: they reorder how a name is shown, so two
/// different names could look alike or a name could hide its text.
pub(super) fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters that show nothing: every format character (Unicode
/// category Cf: zero-width spaces and joiners, the byte-order mark, the
/// soft hyphen, bidirectional controls, tags), and the other code points
/// that render as nothing (the combining grapheme joiner, variation
/// selectors, Hangul fillers, the braille blank).
pub(super) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{0600}'..='\u{0605}'
            | '\u{061C}'
            | '\u{06DD}'
            | '\u{070F}'
            | '\u{0890}'..='\u{0891}'
            | '\u{08E2}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{2800}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF9}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0001}'
            | '\u{E0020}'..='\u{E007F}'
            | '\u{E0100}'..='\u{E01EF}'
    )
}

/// How many characters of `name` show: what the minimum length counts.
pub fn visible_chars(name: &str) -> usize {
    name.chars().filter(|c| !is_invisible(*c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_the_same_have_one_key() {
        let pairs = [
            ("Caf\u{e9}", "Cafe\u{301}"),       // NFC vs NFD
            ("Team\u{a0}One", "Team One"),      // no-break space
            ("Team   One ", " team one"),       // spaces, case
            ("\u{430}lpha", "alpha"),           // Cyrillic a
            ("Stra\u{df}e", "STRASSE"),         // sharp s
            ("Zero\u{200b}Width", "ZeroWidth"), // zero-width space
            ("\u{ff34}eam", "Team"),            // full-width T
            ("\u{fb01}nance", "finance"),       // ligature
        ];
        for (a, b) in pairs {
            assert_eq!(normalize_name(a), normalize_name(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn names_that_differ_keep_different_keys() {
        let pairs = [
            ("Team A", "Team B"),
            ("Caf\u{e9}", "Cafe"),
            ("Marketing", "Marketing 2"),
            ("\u{65e5}\u{672c}", "\u{4e2d}\u{6587}"),
        ];
        for (a, b) in pairs {
            assert_ne!(normalize_name(a), normalize_name(b), "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn invisible_characters_do_not_count_and_do_not_tell_names_apart() {
        assert_eq!(visible_chars("ab\u{200B}\u{200B}"), 2);
        assert_eq!(visible_chars("a\u{2062}b\u{FE0F}\u{E0041}"), 2);
        assert_eq!(visible_chars("Data"), 4);
        assert_eq!(
            normalize_name("Da\u{2063}ta\u{E0020}"),
            normalize_name("Data")
        );
    }

    #[test]
    fn bidi_controls_are_recognised() {
        assert!(is_bidi_control('\u{202e}'));
        assert!(is_bidi_control('\u{2067}'));
        assert!(!is_bidi_control('a'));
    }
}
