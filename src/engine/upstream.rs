//! What a node sees of the others: their observations while planning, their final
//! attributes while applying.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::{BoxFuture, Shared};
use serde_json::Value;

use super::attrs::{Attr, Attrs};
use super::observation::Observation;
use super::reference::referenced_nodes;
use crate::error::{Error, Result};

/// A dependency's observation, awaited by many.
pub(crate) type SharedObservation = Shared<BoxFuture<'static, Result<Arc<Observation>>>>;

/// The observations of a node's dependencies, available as they complete. Every read of a
/// plan starts at once; a node awaits its dependencies only for the decision that needs them.
pub struct Upstream {
    pub(crate) deps: BTreeMap<String, SharedObservation>,
    pub(crate) context: BTreeMap<String, Attrs>,
}

impl Upstream {
    /// The observation of dependency `id`. Asking for a node that is not a declared
    /// dependency is a bug in the blueprint and reported as such.
    pub async fn get(&self, id: &str) -> Result<Arc<Observation>> {
        let dep = self.deps.get(id).ok_or_else(|| undeclared(id))?;
        dep.clone().await
    }

    /// The observed attributes of every dependency `template` references, and the context:
    /// what [`resolve`](super::reference::resolve) needs at plan time.
    pub async fn attrs_for(&self, template: &Value) -> Result<BTreeMap<String, Attrs>> {
        let mut known = self.context.clone();
        for node in referenced_nodes(template) {
            if !self.context.contains_key(&node) {
                known.insert(node.clone(), self.get(&node).await?.attrs.clone());
            }
        }
        Ok(known)
    }
}

/// The final attributes of a node's dependencies and the context, during apply.
pub struct Inputs {
    pub(crate) attrs: BTreeMap<String, Attrs>,
}

impl Inputs {
    /// Inputs from explicit attributes (dependencies and context).
    pub fn new(attrs: BTreeMap<String, Attrs>) -> Self {
        Self { attrs }
    }

    /// An attribute of a dependency or of the context.
    pub fn get(&self, node: &str, key: &str) -> Option<&Attr> {
        self.attrs.get(node)?.get(key)
    }

    /// A string attribute that must be known by now.
    pub fn str(&self, node: &str, key: &str) -> Result<&str> {
        self.attrs.get(node).ok_or_else(|| undeclared(node))?.require_str(node, key)
    }

    /// The attributes of every dependency and of the context.
    pub fn all(&self) -> &BTreeMap<String, Attrs> {
        &self.attrs
    }

    /// All attributes of a dependency.
    pub fn node(&self, node: &str) -> Result<&Attrs> {
        self.attrs.get(node).ok_or_else(|| undeclared(node))
    }
}

fn undeclared(id: &str) -> Error {
    Error::usage(format!("node '{id}'"), "is used by a node that does not declare it in `after`").fix("add it to the node's `after` list in the blueprint")
}
