//! What a teardown must not break: who else names a resource, and what the user allowed.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

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

    /// "in use by pool 'b', block 'c'" when something refers to any of `identifiers`.
    pub fn in_use<'a>(&self, identifiers: impl IntoIterator<Item = &'a str>) -> Option<String> {
        let holders = self.holders(identifiers);
        (!holders.is_empty()).then(|| format!("in use by {}", holders.join(", ")))
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
}
