//! What every node kind implements: observe the live object, then create or update it.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::attrs::Attrs;
use super::upstream::{Inputs, Upstream};
use crate::error::Result;

/// What the plan does with one node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The resource is missing and will be created.
    Create,
    /// The resource exists but differs from what is wanted, and will be changed in place.
    Update,
    /// The resource exists as wanted and is used as it is.
    Reuse,
}

impl Action {
    /// True when applying this action writes something.
    pub fn writes(self) -> bool {
        !matches!(self, Action::Reuse)
    }
}

/// The outcome of observing one node: the action, why, and what is already known.
#[derive(Debug, Clone)]
pub struct Observation {
    /// What apply will do.
    pub action: Action,
    /// Why, in a few words a reviewer understands ("missing", "policy document differs: ...").
    pub reason: String,
    /// Attributes known before apply: all of them for a reused resource, the predictable
    /// ones (name, ARN computed from the account) for one to be created.
    pub attrs: Attrs,
}

impl Observation {
    /// The resource is missing.
    pub fn create(reason: impl Into<String>, attrs: Attrs) -> Self {
        Self { action: Action::Create, reason: reason.into(), attrs }
    }

    /// The resource exists and needs a change.
    pub fn update(reason: impl Into<String>, attrs: Attrs) -> Self {
        Self { action: Action::Update, reason: reason.into(), attrs }
    }

    /// The resource exists as wanted.
    pub fn reuse(reason: impl Into<String>, attrs: Attrs) -> Self {
        Self { action: Action::Reuse, reason: reason.into(), attrs }
    }
}

/// A resource kind of some cloud (or of Prefect, or of the local machine).
///
/// Observation must not write; apply is only called for `Create` and `Update`, after every
/// dependency has been applied, with their final attributes in `inputs`.
pub trait Node: Send + Sync {
    /// What the resource is called in the summary: "IAM role", "VPC", "block".
    fn label(&self) -> &'static str;

    /// Reads the live object and decides what to do. `upstream` gives the observations of the
    /// node's dependencies, for decisions that depend on them (a block whose key is replaced).
    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>>;

    /// Creates or updates the resource and returns its attributes (those of the observation
    /// are kept unless replaced).
    fn apply<'a>(
        &'a self,
        observed: &'a Observation,
        inputs: &'a Inputs,
    ) -> BoxFuture<'a, Result<Attrs>>;

    /// Runs once the whole apply has succeeded, for a node that was applied: the place to
    /// clear a marker that lets an interrupted run be cleaned up (see the access key).
    fn settle<'a>(&'a self, _attrs: &'a Attrs) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A shared node kind instance.
pub type NodeRef = Arc<dyn Node>;
