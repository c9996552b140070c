//! What Google Cloud takes as the names pushpool gives, from each API's reference, checked
//! before any call. The pool name goes into labels through [`label_value`](super::context::label_value),
//! which makes any name a valid label value, so it has no rule here.

use crate::blueprint::Kind;
use crate::names::{Rule, lowercase_or};

/// Whether `id` starts with a lowercase letter and ends with a letter or digit.
fn letter_to_alphanumeric(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase()) && id.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// IAM `projects.serviceAccounts.create` `accountId`: 6 to 30 characters matching
/// `[a-z]([-a-z0-9]*[a-z0-9])`.
pub const SERVICE_ACCOUNT: Rule = Rule {
    what: "service account id",
    len: 6..=30,
    chars: |c| lowercase_or(c, "-"),
    shape: Some((letter_to_alphanumeric, "does not start with a letter and end with a letter or digit")),
    says: "6 to 30 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit",
    source: "https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/create",
};

/// Artifact Registry `projects.locations.repositories.create` `repositoryId`: up to 63
/// lowercase letters, digits and hyphens, starting with a letter and ending with a letter or
/// digit (Google's resource id rule, AIP-122).
pub const ARTIFACT_REPOSITORY: Rule = Rule {
    what: "Artifact Registry repository id",
    len: 1..=63,
    says: "1 to 63 lowercase letters, digits and hyphens, starting with a letter and ending with a letter or digit",
    source: "https://cloud.google.com/artifact-registry/docs/repositories/create-repos",
    ..SERVICE_ACCOUNT
};

/// The rule of the name a node of `kind` gives its resource; None for a kind named by
/// another node (a key, project roles) or by a fixed list (services).
pub fn rule(kind: &Kind) -> Option<&'static Rule> {
    match kind {
        Kind::GcpServiceAccount(_) => Some(&SERVICE_ACCOUNT),
        Kind::GcpArtifactRepository(_) => Some(&ARTIFACT_REPOSITORY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::holds;

    #[test]
    fn account_ids_are_6_to_30_from_a_letter_to_a_letter_or_digit() {
        holds(
            &SERVICE_ACCOUNT,
            &["prefect-cloud-run", "abcdef", "a2345b", &"a".repeat(30)],
            &["short", "Prefect-run", "1prefect-run", "prefect-run-", "prefect_run", &"a".repeat(31)],
        );
    }

    #[test]
    fn repository_ids_are_1_to_63_from_a_letter_to_a_letter_or_digit() {
        holds(&ARTIFACT_REPOSITORY, &["p", "prefect-images", "images2", &"r".repeat(63)], &["", "Prefect-images", "2images", "images-", "prefect_images", &"r".repeat(64)]);
    }
}
