//! What Modal takes as a Secret's name, checked before any call: the Modal client refuses
//! any other name before it reaches Modal.

use crate::blueprint::Kind;
use crate::names::{Rule, ascii_or};

/// Modal object names (Secrets among them): up to 64 ASCII letters, digits, hyphens,
/// underscores and periods, as the client's `is_valid_object_name` checks them.
pub const SECRET: Rule = Rule {
    what: "Modal Secret name",
    len: 1..=64,
    chars: |c| ascii_or(c, "-_."),
    shape: None,
    says: "1 to 64 ASCII letters, digits, hyphens, underscores and periods",
    source: "https://modal.com/docs/reference/modal.Secret (modal/_utils/name_utils.py, is_valid_object_name)",
};

/// The rule of the name a node of `kind` gives its resource.
pub fn rule(kind: &Kind) -> Option<&'static Rule> {
    match kind {
        Kind::ModalSecret(_) => Some(&SECRET),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::holds;

    #[test]
    fn secret_names_are_1_to_64_of_their_alphabet() {
        holds(&SECRET, &["p", "prefect-ecr-pull", "a_b.c-d", &"s".repeat(64)], &["", "a b", "a/b", "a:b", &"s".repeat(65)]);
    }
}
