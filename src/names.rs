//! The shape of a cloud's naming rule: how long a name may be, which characters it takes, and
//! what else its API reference asks (a first letter, no trailing period), with the reference.
//!
//! Each cloud keeps its rules in one table (`clouds::<cloud>::names`), so that a name the cloud
//! would refuse is refused by the plan, before any read, rather than by a call halfway through
//! an apply. The rules are plain character tests, not regular expressions: the few patterns
//! the clouds publish read as a length, an alphabet and a shape, and are tested at their limits.

use std::ops::RangeInclusive;

/// A test of a whole name (how it starts and ends, where separators go) and what it refuses, in
/// words: `(|name| !name.ends_with('-'), "ends with a hyphen")`.
pub type Shape = (fn(&str) -> bool, &'static str);

/// One cloud's rule for one kind of name or value.
#[derive(Debug)]
pub struct Rule {
    /// What the cloud calls the name: "IAM user name".
    pub what: &'static str,
    /// How many characters it may have.
    pub len: RangeInclusive<usize>,
    /// Whether a character is one the name may hold.
    pub chars: fn(char) -> bool,
    /// A further test of the whole name (how it starts and ends, where separators go), and
    /// what it asks in words; None where the length and the characters are the whole rule.
    pub shape: Option<Shape>,
    /// The whole rule in words, for the error: "1 to 64 ASCII letters, digits and _+=,.@-".
    pub says: &'static str,
    /// The API reference the rule comes from.
    pub source: &'static str,
}

impl Rule {
    /// Why `value` breaks the rule (its length, its first wrong character, its shape), or
    /// None when the cloud would take it.
    pub fn broken_by(&self, value: &str) -> Option<String> {
        let count = value.chars().count();
        if !self.len.contains(&count) {
            return Some(format!("has {count} characters"));
        }
        if let Some(c) = value.chars().find(|c| !(self.chars)(*c)) {
            return Some(format!("contains {}", quoted_char(c)));
        }
        match self.shape {
            Some((fits, asks)) if !fits(value) => Some(asks.to_owned()),
            _ => None,
        }
    }

    /// The cause of an error about a value that breaks the rule: why, the rule and its source.
    pub fn cause(&self, why: &str) -> String {
        format!("{why}, and {}s are {} ({})", self.what, self.says, self.source)
    }
}

/// `value` as an error shows it: control characters escaped, and a long one cut to its first
/// 64 characters with its length.
pub fn shown(value: &str) -> String {
    let escaped: String = value.chars().take(64).flat_map(char::escape_debug).collect();
    match value.chars().count() {
        n if n > 64 => format!("'{escaped}…' ({n} characters)"),
        _ => format!("'{escaped}'"),
    }
}

/// A character as an error names it: `' '` (a space), `'\n'`.
fn quoted_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c => format!("'{}'", c.escape_debug()),
    }
}

/// Whether `c` is an ASCII letter or digit, or one of `extra`.
pub fn ascii_or(c: char, extra: &str) -> bool {
    c.is_ascii_alphanumeric() || extra.contains(c)
}

/// Whether `c` is a lowercase ASCII letter or digit, or one of `extra`.
pub fn lowercase_or(c: char, extra: &str) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c)
}

/// Asserts that each of `good` keeps `rule` and each of `bad` breaks it: the rules' tests, at
/// their limits.
#[cfg(test)]
pub fn holds(rule: &Rule, good: &[&str], bad: &[&str]) {
    for name in good {
        assert_eq!(rule.broken_by(name), None, "{}: {name:?}", rule.what);
    }
    for name in bad {
        assert!(rule.broken_by(name).is_some(), "{}: {name:?} must be refused", rule.what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULE: Rule = Rule {
        what: "test name",
        len: 2..=4,
        chars: |c| ascii_or(c, "-"),
        shape: Some((|name| !name.ends_with('-'), "ends with a hyphen")),
        says: "2 to 4 letters, digits and hyphens, not ending with a hyphen",
        source: "https://example.invalid/reference",
    };

    #[test]
    fn a_rule_names_the_length_the_character_or_the_shape_it_refuses() {
        assert_eq!(RULE.broken_by("ab"), None);
        assert_eq!(RULE.broken_by("a-bc"), None);
        assert_eq!(RULE.broken_by("a").as_deref(), Some("has 1 characters"));
        assert_eq!(RULE.broken_by("abcde").as_deref(), Some("has 5 characters"));
        assert_eq!(RULE.broken_by("a b").as_deref(), Some("contains a space"));
        assert_eq!(RULE.broken_by("a\nb").as_deref(), Some("contains '\\n'"));
        assert_eq!(RULE.broken_by("ab-").as_deref(), Some("ends with a hyphen"));
        assert!(RULE.cause("has 5 characters").contains("test names are 2 to 4 letters"));
    }

    #[test]
    fn long_values_are_cut_and_control_characters_escaped() {
        assert_eq!(shown("a\nb"), "'a\\nb'");
        let long = shown(&"x".repeat(300));
        assert!(long.ends_with("…' (300 characters)") && long.len() < 90, "{long}");
    }
}
