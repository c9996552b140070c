//! What a teardown must not break: who else names a resource, and what the user allowed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// How many holders an "in use by" reason names before it counts the rest.
pub const NAMED_HOLDERS: usize = 3;

/// The options of a teardown and everything outside the pool being torn down that refers to
/// a resource by id, name or ARN: the job variable defaults of the other work pools and the
/// data of the other blocks. A node whose identifiers appear here is in use and kept.
#[derive(Debug, Clone, Default)]
pub struct Teardown {
    /// Delete resources that hold data (a repository with images) too.
    pub force: bool,
    /// Keep the work pool; only clear the job variable defaults that named deleted resources.
    pub keep_pool: bool,
    /// A string value → who holds it: "pool 'b'", "block 'b-aws-credentials'".
    references: BTreeMap<String, BTreeSet<String>>,
}

impl Teardown {
    /// A teardown with these options and no outside references yet.
    pub fn new(force: bool, keep_pool: bool) -> Self {
        Self { force, keep_pool, references: BTreeMap::new() }
    }

    /// Records that `holder` ("pool 'b'") refers to every string found anywhere in `value`.
    pub fn add_references(&mut self, holder: &str, value: &Value) {
        match value {
            Value::String(text) if !text.is_empty() => {
                self.references.entry(text.clone()).or_default().insert(holder.to_owned());
            }
            Value::Array(items) => items.iter().for_each(|item| self.add_references(holder, item)),
            Value::Object(fields) => fields.values().for_each(|field| self.add_references(holder, field)),
            _ => {}
        }
    }

    /// Who refers to any of `identifiers`, sorted, each once.
    pub fn holders<'a>(&self, identifiers: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let holders: BTreeSet<&String> = identifiers.into_iter().filter_map(|id| self.references.get(id)).flatten().collect();
        holders.into_iter().cloned().collect()
    }

    /// "in use by pool 'b', block 'c'" when something refers to any of `identifiers`; past
    /// [`NAMED_HOLDERS`], the first ones and how many more ("and 13 more"), so that a role
    /// sixteen pools share takes one line of the summary, not sixteen.
    pub fn in_use<'a>(&self, identifiers: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let holders = self.holders(identifiers);
        (!holders.is_empty()).then(|| format!("in use by {}", summarise(&holders)))
    }
}

/// `holders` for a reason: all of them up to [`NAMED_HOLDERS`], else the first ones and how
/// many more.
pub fn summarise(holders: &[String]) -> String {
    match holders.len().checked_sub(NAMED_HOLDERS) {
        Some(more) if more > 0 => format!("{} and {more} more", holders[..NAMED_HOLDERS].join(", ")),
        _ => holders.join(", "),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn references_are_found_at_any_depth_and_named_once() {
        let mut teardown = Teardown::new(false, false);
        let template = json!({"cluster": "c", "network": {"awsvpcConfiguration": {"subnets": ["s-1", "s-2"]}}, "count": 3});
        teardown.add_references("pool 'b'", &template);
        teardown.add_references("pool 'c'", &json!({"cluster": "c"}));
        teardown.add_references("block 'k'", &json!({"aws_access_key_id": "AKIA1"}));
        assert_eq!(teardown.in_use(["s-2"]).as_deref(), Some("in use by pool 'b'"));
        assert_eq!(teardown.holders(["c", "s-1"]), ["pool 'b'", "pool 'c'"]);
        assert_eq!(teardown.in_use(["AKIA2", "3"]), None);
        assert_eq!(teardown.in_use(["AKIA1"]).as_deref(), Some("in use by block 'k'"));
    }

    #[test]
    fn long_lists_of_holders_are_summarised() {
        let mut teardown = Teardown::new(false, false);
        for i in 0..16 {
            teardown.add_references(&format!("pool 'p{i:02}'"), &json!({"role": "r"}));
        }
        assert_eq!(teardown.in_use(["r"]).as_deref(), Some("in use by pool 'p00', pool 'p01', pool 'p02' and 13 more"));
        teardown.add_references("pool 'q'", &json!("s"));
        assert_eq!(teardown.in_use(["s"]).as_deref(), Some("in use by pool 'q'"));
    }
}
