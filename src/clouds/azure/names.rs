//! What Azure takes as the names pushpool gives and as tag values, from "Naming rules and
//! restrictions for Azure resources" and the tagging reference, checked before any call.

use crate::blueprint::Kind;
use crate::names::Rule;

/// The naming rules page every Azure name rule below comes from.
const NAMING_RULES: &str = "https://learn.microsoft.com/azure/azure-resource-manager/management/resource-name-rules";

/// `Microsoft.Resources/resourcegroups`: 1 to 90 letters, digits, underscores, parentheses,
/// hyphens and periods (letters and digits as Unicode has them), not ending with a period.
pub const RESOURCE_GROUP: Rule = Rule {
    what: "resource group name",
    len: 1..=90,
    chars: |c| c.is_alphanumeric() || "_()-.".contains(c),
    shape: Some((|name| !name.ends_with('.'), "ends with a period")),
    says: "1 to 90 letters, digits, underscores, parentheses, hyphens and periods, not ending with a period",
    source: NAMING_RULES,
};

/// `Microsoft.ManagedIdentity/userAssignedIdentities`: 3 to 128 ASCII letters, digits,
/// hyphens and underscores, starting with a letter or digit.
pub const IDENTITY: Rule = Rule {
    what: "user-assigned identity name",
    len: 3..=128,
    chars: |c| c.is_ascii_alphanumeric() || "-_".contains(c),
    shape: Some((|name| name.starts_with(|c: char| c.is_ascii_alphanumeric()), "does not start with a letter or digit")),
    says: "3 to 128 ASCII letters, digits, hyphens and underscores, starting with a letter or digit",
    source: NAMING_RULES,
};

/// Tag values: up to 256 characters, any of them (only tag names have a forbidden set). The
/// pool name is the value of every resource's `prefect.work-pool` tag.
pub const TAG_VALUE: Rule = Rule {
    what: "Azure tag value",
    len: 0..=256,
    chars: |_| true,
    shape: None,
    says: "up to 256 characters",
    source: "https://learn.microsoft.com/azure/azure-resource-manager/management/tag-resources#limitations",
};

/// The rule of the name a node of `kind` gives its resource; None for a kind whose name is
/// made for it (a registry, a role assignment) or comes from another node.
pub fn rule(kind: &Kind) -> Option<&'static Rule> {
    match kind {
        Kind::AzureResourceGroup(_) => Some(&RESOURCE_GROUP),
        Kind::AzureIdentity(_) => Some(&IDENTITY),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::holds;

    #[test]
    fn resource_groups_are_1_to_90_not_ending_with_a_period() {
        holds(&RESOURCE_GROUP, &["r", "prefect-aci-push-pool-rg", "team_(a).rg-1", "équipe", &"g".repeat(90)], &["", "rg.", "a b", "a/b", "a#b", &"g".repeat(91)]);
    }

    #[test]
    fn identities_are_3_to_128_from_a_letter_or_digit() {
        holds(&IDENTITY, &["abc", "prefect-acr-identity", "1_id", &"i".repeat(128)], &["ab", "-abc", "_abc", "a.bc", "a bc", &"i".repeat(129)]);
    }

    #[test]
    fn tag_values_hold_256_characters() {
        holds(&TAG_VALUE, &["", "any <thing> & %", &"v".repeat(256)], &[&"v".repeat(257)]);
    }
}
