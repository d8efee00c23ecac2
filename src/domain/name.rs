//! What makes two workspace names the same.

use unicode_normalization::UnicodeNormalization;
use unicode_script::{Script, UnicodeScript};
use unicode_security::confusable_detection::skeleton;

/// The key names are unique by within an organization: two names that
/// look the same get the same key. In this order:
///
/// 1. compatibility forms are folded (NFKC: NFC vs NFD, the no-break
///    space, full-width letters, ligatures);
/// 2. invisible characters go (before words are split, so a zero-width
///    space between two spaces, or at the end, leaves no word behind);
/// 3. runs of whitespace become one space, none at either end;
/// 4. a character that imitates a letter of another script reads as that
///    letter (`imitated`: Cyrillic "Т" is Latin "T", Greek "Ο" is Latin
///    "O"), while letters are never read as other letters of their own
///    script nor as digits ("m" is not "rn", "0" is not "O");
/// 5. case is folded (full case folding: "ß" is "ss"), after step 4, so
///    that folding cannot turn a look-alike into a letter that no longer
///    looks like it (Cyrillic "М" would become "м", which imitates no
///    Latin "m").
pub fn normalize_name(name: &str) -> String {
    if name.is_ascii() {
        return ascii_key(name);
    }
    unicode_key(name)
}

/// `normalize_name` of an ASCII name, without the Unicode tables: ASCII is
/// its own NFKC and NFC, every ASCII character shows, none imitates a
/// letter of another script, and its full case folding is its lower case
/// (test `ascii_names_get_the_keys_of_the_unicode_steps`).
fn ascii_key(name: &str) -> String {
    let mut key = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(word);
    }
    key.make_ascii_lowercase();
    bounded_key(key)
}

/// `normalize_name`'s five steps, for any name.
fn unicode_key(name: &str) -> String {
    let visible: String = name.nfkc().filter(|c| !is_invisible(*c)).collect();
    let mut spaced = String::with_capacity(visible.len());
    for word in visible.split_whitespace() {
        if !spaced.is_empty() {
            spaced.push(' ');
        }
        spaced.extend(word.chars().flat_map(imitated));
    }
    let composed: String = spaced.nfc().collect();
    let key: String = caseless::default_case_fold_str(&composed).nfc().collect();
    bounded_key(key)
}

/// Longest key stored as it is. A PostgreSQL btree entry holds at most
/// 2,704 bytes: a key of a name as long as the technical cap allows (1,000
/// four-byte characters, more after NFKC and case folding) would not fit
/// the unique index.
const KEY_MAX_BYTES: usize = 1_024;

/// `key`, or, past KEY_MAX_BYTES, its start and the SHA-256 of all of it:
/// still one key per name, so the unique index still decides.
fn bounded_key(key: String) -> String {
    use sha2::{Digest, Sha256};
    if key.len() <= KEY_MAX_BYTES {
        return key;
    }
    let mut end = KEY_MAX_BYTES - 80;
    while !key.is_char_boundary(end) {
        end -= 1;
    }
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    format!("{}\u{2026}sha256:{digest}", &key[..end])
}

/// `c`, or the letters of another script it imitates: its Unicode TS 39
/// prototype, taken only when `c` belongs to a script (not Common nor
/// Inherited: digits and punctuation stay what they are) and its
/// prototype's letters belong to a different one.
fn imitated(c: char) -> Vec<char> {
    let script = c.script();
    if !is_real_script(script) {
        return vec![c];
    }
    let mut buffer = [0; 4];
    let prototype: Vec<char> = skeleton(c.encode_utf8(&mut buffer)).collect();
    let prototype_script = prototype
        .iter()
        .map(|p| p.script())
        .find(|s| is_real_script(*s));
    match prototype_script {
        Some(other) if other != script => prototype,
        _ => vec![c],
    }
}

fn is_real_script(script: Script) -> bool {
    !matches!(script, Script::Common | Script::Inherited | Script::Unknown)
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
/// that render as nothing (every default-ignorable code point: the
/// combining grapheme joiner, variation selectors, Hangul fillers; and
/// the braille blank and the Khitan small script filler).
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
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{110BD}'
            | '\u{110CD}'
            | '\u{13430}'..='\u{1343F}'
            | '\u{16FE4}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// How many characters of `name` show: what the minimum length counts.
pub(super) fn visible_chars(name: &str) -> usize {
    name.chars().filter(|c| !is_invisible(*c)).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_names_get_the_keys_of_the_unicode_steps() {
        let ascii: Vec<char> = (0u8..=127).map(char::from).collect();
        for a in &ascii {
            for b in &ascii {
                let name = format!("{a}x {b}{a}\t{b}");
                assert_eq!(ascii_key(&name), unicode_key(&name), "{name:?}");
            }
        }
        let long = "Ab ".repeat(400);
        assert_eq!(ascii_key(&long), unicode_key(&long));
    }

    proptest::proptest! {
        #[test]
        fn any_ascii_name_gets_the_key_of_the_unicode_steps(name in "[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(ascii_key(&name), unicode_key(&name));
        }
    }

    /// Names a reader takes for one another: one key, both ways.
    const LOOK_ALIKES: &[(&str, &str)] = &[
        ("Team One", "Team \u{200b} One"),
        ("Team Two", "Team Two \u{200b}"),
        ("TEAM SPACE", "\u{422}\u{415}\u{410}\u{41c} SPACE"), // Cyrillic ТЕАМ
        (
            "ABE KMNOPTX",
            "\u{391}\u{392}\u{395} \u{39a}\u{39c}\u{39d}\u{39f}\u{3a1}\u{3a4}\u{3a7}", // Greek capitals
        ),
    ];

    /// Names that only resemble each other within one script: distinct.
    const DIFFERENT: &[(&str, &str)] = &[
        ("Modern Lab", "Modem Lab"),
        ("Burn Notes", "Bum Notes"),
        ("Office", "0ffice"),
        ("Team 2010", "Team 2O1O"),
        ("Alex", "AIex"),
        ("tearn space", "\u{1d1b}ea\u{28d} space"), // small capital T, turned w
    ];

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
            ("\u{401}lka", "\u{cb}lka"),        // Cyrillic Ё, Latin Ë
        ];
        for (a, b) in pairs.iter().chain(LOOK_ALIKES) {
            assert_eq!(normalize_name(a), normalize_name(b), "{a:?} vs {b:?}");
            assert_eq!(normalize_name(b), normalize_name(a), "{b:?} vs {a:?}");
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
        for (a, b) in pairs.iter().chain(DIFFERENT) {
            assert_ne!(normalize_name(a), normalize_name(b), "{a:?} vs {b:?}");
            assert_ne!(normalize_name(b), normalize_name(a), "{b:?} vs {a:?}");
        }
    }

    #[test]
    fn keys_have_no_stray_spaces_and_keep_scripts_without_a_look_alike() {
        assert_eq!(normalize_name("Team Two \u{200b}"), "team two");
        assert_eq!(normalize_name("\u{200b} Team \u{2060} One "), "team one");
        // Letters are not read as digits, whatever their script:
        // Cyrillic "З" is not "3".
        assert_ne!(normalize_name("\u{417}ero"), normalize_name("3ero"));
        assert_eq!(normalize_name("\u{16fe4}"), "");
    }

    #[test]
    fn invisible_characters_do_not_count_and_do_not_tell_names_apart() {
        assert_eq!(visible_chars("ab\u{200B}\u{200B}"), 2);
        assert_eq!(visible_chars("a\u{2062}b\u{FE0F}\u{E0041}"), 2);
        assert_eq!(visible_chars("Data"), 4);
        // Every default-ignorable code point, at the ends of its ranges.
        for c in [
            '\u{180E}',
            '\u{2065}',
            '\u{FFF0}',
            '\u{FFF8}',
            '\u{1D173}',
            '\u{E0000}',
            '\u{E0FFF}',
            '\u{16FE4}',
        ] {
            assert!(is_invisible(c), "{c:?}");
        }
        assert_eq!(
            normalize_name("Da\u{2063}ta\u{E0020}"),
            normalize_name("Data")
        );
    }

    #[test]
    fn long_keys_are_bounded_and_still_tell_names_apart() {
        let long: String = (0..1_000)
            .map(|i| char::from_u32(0x20000 + i * 7).unwrap())
            .collect();
        let mut other = long.clone();
        other.pop();
        other.push('x');
        let key = normalize_name(&long);
        assert!(key.len() <= KEY_MAX_BYTES, "{} bytes", key.len());
        assert_ne!(key, normalize_name(&other));
        assert_eq!(key, normalize_name(&format!(" {long}\u{200b}")));
        assert_eq!(normalize_name("Short"), "short");
    }

    #[test]
    fn bidi_controls_are_recognised() {
        assert!(is_bidi_control('\u{202e}'));
        assert!(is_bidi_control('\u{2067}'));
        assert!(!is_bidi_control('a'));
    }
}
