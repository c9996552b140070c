//! The attributes a node knows about its resource: ids, ARNs, names, and secrets.
//!
//! Node kinds differ per cloud, so their outputs travel as named values, like Terraform's
//! attributes. A secret is its own variant, which is never serialized or displayed.

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

    /// A plain value, if known.
    pub fn value(&self, key: &str) -> Option<&Value> {
        match self.0.get(key) {
            Some(Attr::Value(value)) => Some(value),
            _ => None,
        }
    }

    /// A plain string value, if known.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.value(key).and_then(Value::as_str)
    }

    /// A plain string value that the node kind guarantees; its absence is a bug in that kind,
    /// reported with the node's id rather than a panic.
    pub fn require_str(&self, node: &str, key: &str) -> Result<&str> {
        self.str(key).ok_or_else(|| {
            Error::remote(format!("node '{node}'"), format!("attribute '{key}' is not known"))
        })
    }

    /// The plain values only: what a plan file and the rendered plan may hold.
    pub fn public(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .filter_map(|(key, attr)| match attr {
                Attr::Value(value) => Some((key.clone(), value.clone())),
                Attr::Secret(_) => None,
            })
            .collect()
    }
}
