//! The attributes a node knows about its resource: ids, ARNs, names, and secrets.
//!
//! Node kinds differ per cloud, so their outputs travel as named values, like Terraform's
//! attributes. A secret is its own variant, which is never serialized or displayed; a hint
//! (what an observation tells its own apply: "the trust policy drifted") is kept apart from
//! the public attributes a reviewer reads.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::secret::Secret;

/// One attribute value: plain data, or a secret that must not be shown.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// Data that may be shown and saved in a plan file.
    Value(Value),
    /// Data that must never be shown or saved.
    Secret(Secret),
    /// Data the node kind keeps for its own apply: saved with a plan (a stale hint makes a
    /// stale plan) but not one of the resource's public attributes.
    Hint(Value),
}

/// The named attributes of one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Attrs(BTreeMap<String, Attr>);

impl Attrs {
    /// No attributes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a plain value (builder style).
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.set(key, value);
        self
    }

    /// Sets a plain value.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        self.0.insert(key.to_owned(), Attr::Value(value.into()));
    }

    /// Adds a hint (builder style).
    pub fn hint(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), Attr::Hint(value.into()));
        self
    }

    /// Sets a secret value.
    pub fn set_secret(&mut self, key: &str, value: Secret) {
        self.0.insert(key.to_owned(), Attr::Secret(value));
    }

    /// Adds every attribute of `other`, replacing those with the same name.
    pub fn extend(&mut self, other: Attrs) {
        self.0.extend(other.0);
    }

    /// The attribute, if known.
    pub fn get(&self, key: &str) -> Option<&Attr> {
        self.0.get(key)
    }

    /// A plain value or hint, if known.
    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.0.get(key) {
            Some(Attr::Value(value) | Attr::Hint(value)) => Some(value),
            _ => None,
        }
    }

    /// A hint or value read as a list of strings: empty when absent.
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.value(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
    }

    /// A hint or value read as a flag, `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> bool {
        self.value(key).and_then(Value::as_bool).unwrap_or(default)
    }

    /// A plain string value, if known.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }

    /// A plain string value that the node kind guarantees; its absence is a bug in that kind,
    /// reported with the node's id rather than a panic.
    pub fn require_str(&self, node: &str, key: &str) -> Result<&str> {
        self.str(key).ok_or_else(|| Error::remote(format!("node '{node}'"), format!("attribute '{key}' is not known")))
    }

    /// The plain values only: the resource's attributes as a plan shows them.
    pub fn public(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .filter_map(|(key, attr)| match attr {
                Attr::Value(value) => Some((key.clone(), value.clone())),
                Attr::Secret(_) | Attr::Hint(_) => None,
            })
            .collect()
    }

    /// The hints only: what a plan file keeps for its apply, apart from the attributes.
    pub fn hints(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .filter_map(|(key, attr)| match attr {
                Attr::Hint(value) => Some((key.clone(), value.clone())),
                _ => None,
            })
            .collect()
    }
}
