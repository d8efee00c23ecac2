//! The name rules of check 2: which names a route accepts, counted as its
//! document's framework counts them.

use super::{
    FieldViolation, Reason, excerpt,
    name::{is_bidi_control, is_invisible, visible_chars},
};

/// The longest name on a route whose document sets no maximum (seeds 000
/// and 003): a technical cap, far above any real name, that bounds what
/// one name costs to store, key and answer.
pub const NAME_TECHNICAL_MAX_CHARS: usize = 1_000;

/// The name bounds and whether a billing email is required: settings for
/// gRPC and the routes that take them, each seed's document's own on its
/// route (000: more than 3 characters; 001: 1 to 128 as sent and the
/// email required; 002: 1 to 100 after trimming; 003: not empty).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRules {
    /// Counts the characters that show: invisible ones make no name
    /// longer to the eye.
    pub min_chars: usize,
    /// Counts every character of the name as stored.
    pub max_chars: usize,
    pub require_billing_email: bool,
    /// Surrounding whitespace is trimmed before the name is counted and
    /// stored (the service's own rule; Django REST framework's); else the
    /// name counts and is stored as sent (pydantic's).
    pub trim: bool,
    /// An empty or blank name is refused as too short, in the too-short
    /// message (seed 000, whose one 400 covers it), not as missing.
    pub blank_is_too_short: bool,
}

impl Default for NameRules {
    /// 4 to 100 characters after trimming: the rule every seed accepts.
    fn default() -> Self {
        Self {
            min_chars: 4,
            max_chars: 100,
            require_billing_email: false,
            trim: true,
            blank_is_too_short: false,
        }
    }
}

/// The name rules (check 2): something that shows, no control or
/// bidirectional characters, within `rules`' bounds. The name as it is
/// stored: trimmed or as sent, as `rules` say.
pub fn check_name<'a>(
    name: &'a str,
    rules: &NameRules,
    violations: &mut Vec<FieldViolation>,
) -> &'a str {
    let name = if rules.trim { name.trim() } else { name };
    let shown = name.chars().any(|c| !is_invisible(c) && !c.is_whitespace());
    let too_short = || {
        FieldViolation::new(
            "name",
            Reason::NameTooShort,
            format!(
                "The name of the workspace '{}' must contain more than {} characters. Give your workspace a longer name.",
                excerpt(name),
                rules.min_chars.saturating_sub(1)
            ),
        )
    };
    let violation = if !shown {
        // pydantic's min_length refuses "" itself; a blank name is the
        // service's refusal.
        if rules.blank_is_too_short || (!rules.trim && name.is_empty() && rules.min_chars > 0) {
            Some(too_short())
        } else {
            Some(FieldViolation::new(
                "name",
                Reason::NameRequired,
                "The name of the workspace must not be empty, nor only whitespace or invisible characters.",
            ))
        }
    } else if name.chars().any(|c| c.is_control() || is_bidi_control(c)) {
        Some(FieldViolation::new(
            "name",
            Reason::NameInvalidCharacters,
            "The name of the workspace must not contain control or bidirectional formatting characters.",
        ))
    } else if visible_chars(name) < rules.min_chars {
        Some(too_short())
    } else if name.chars().count() > rules.max_chars {
        Some(FieldViolation::new(
            "name",
            Reason::NameTooLong,
            format!(
                "The name of the workspace must contain at most {} characters. Give your workspace a shorter name.",
                rules.max_chars
            ),
        ))
    } else {
        None
    };
    violations.extend(violation);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, rules: &NameRules) -> Result<String, Reason> {
        let mut violations = Vec::new();
        let kept = check_name(name, rules, &mut violations).to_owned();
        match violations.first() {
            None => Ok(kept),
            Some(violation) => Err(violation.reason),
        }
    }

    const AS_SENT: NameRules = NameRules {
        min_chars: 1,
        max_chars: 128,
        require_billing_email: true,
        trim: false,
        blank_is_too_short: false,
    };

    #[test]
    fn bounds_count_characters_not_bytes() {
        let rules = NameRules::default();
        assert_eq!(check("abc", &rules), Err(Reason::NameTooShort));
        assert!(check("äöüß", &rules).is_ok());
        assert!(check(&"é".repeat(100), &rules).is_ok());
        assert_eq!(check(&"é".repeat(101), &rules), Err(Reason::NameTooLong));
        assert!(check(&"\u{1F680}".repeat(128), &AS_SENT).is_ok());
        assert_eq!(
            check(&"\u{1F680}".repeat(129), &AS_SENT),
            Err(Reason::NameTooLong)
        );
    }

    #[test]
    fn trimming_rules_trim_and_as_sent_rules_count_what_was_sent() {
        let trimmed = NameRules::default();
        assert_eq!(check("  Data Team  ", &trimmed).as_deref(), Ok("Data Team"));
        assert!(check(&format!(" {} ", "é".repeat(100)), &trimmed).is_ok());
        assert_eq!(check(" abc ", &trimmed), Err(Reason::NameTooShort));
        assert_eq!(check(" ab ", &AS_SENT).as_deref(), Ok(" ab "));
        assert!(check(&format!("{} ", "é".repeat(127)), &AS_SENT).is_ok());
        assert_eq!(
            check(&format!(" {} ", "é".repeat(127)), &AS_SENT),
            Err(Reason::NameTooLong)
        );
    }

    #[test]
    fn blank_names_are_refused_in_each_rules_terms() {
        assert_eq!(
            check("   ", &NameRules::default()),
            Err(Reason::NameRequired)
        );
        assert_eq!(check("", &AS_SENT), Err(Reason::NameTooShort));
        assert_eq!(check("   ", &AS_SENT), Err(Reason::NameRequired));
        assert_eq!(check("\u{200b}", &AS_SENT), Err(Reason::NameRequired));
        let seed_000 = NameRules {
            blank_is_too_short: true,
            trim: false,
            ..NameRules::default()
        };
        for blank in ["", "    "] {
            assert_eq!(check(blank, &seed_000), Err(Reason::NameTooShort));
        }
        assert!(check("abc ", &seed_000).is_ok());
    }

    #[test]
    fn control_and_bidi_characters_are_refused_under_every_rule() {
        for rules in [NameRules::default(), AS_SENT] {
            assert_eq!(
                check("bad\u{7}name", &rules),
                Err(Reason::NameInvalidCharacters)
            );
            assert_eq!(
                check("Invoice \u{202e}fdp.exe", &rules),
                Err(Reason::NameInvalidCharacters)
            );
        }
        assert_eq!(
            check("tab\tname", &AS_SENT),
            Err(Reason::NameInvalidCharacters)
        );
    }
}
