//! What every node kind implements: observe the live object, then create or update it; and
//! for a teardown, observe it again and delete it when it is pushpool's and nobody else's.

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::attrs::Attrs;
use super::teardown::Teardown;
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
    /// Teardown: the resource is pushpool's, nothing else uses it, and it will be deleted.
    Delete,
    /// Teardown: the resource exists and stays (not pushpool's, in use, or holding data).
    Keep,
    /// Teardown: there is nothing to delete.
    Gone,
}

impl Action {
    /// True when applying this action writes something.
    pub fn writes(self) -> bool {
        matches!(self, Action::Create | Action::Update | Action::Delete)
    }

    /// The action as a word, as plan documents spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Reuse => "reuse",
            Action::Delete => "delete",
            Action::Keep => "keep",
            Action::Gone => "gone",
        }
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

    /// Teardown: the resource will be deleted; `attrs` hold what the delete needs (ids).
    pub fn delete(reason: impl Into<String>, attrs: Attrs) -> Self {
        Self { action: Action::Delete, reason: reason.into(), attrs }
    }

    /// Teardown: the resource stays, for `reason`.
    pub fn keep(reason: impl Into<String>, attrs: Attrs) -> Self {
        Self { action: Action::Keep, reason: reason.into(), attrs }
    }

    /// Teardown: nothing exists to delete.
    pub fn gone(reason: impl Into<String>) -> Self {
        Self { action: Action::Gone, reason: reason.into(), attrs: Attrs::new() }
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

    /// Runs, for a node that was applied, once every node that depends on it is done: the
    /// place to clear a marker that lets an interrupted run be cleaned up (the access key's,
    /// once the block holding the key is stored).
    fn settle<'a>(&'a self, _attrs: &'a Attrs) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    /// Reads the live object for a teardown and decides: `Delete` only when pushpool made
    /// it (its ownership tag) and nothing in `teardown`'s references still uses it, `Keep`
    /// with the reason otherwise, `Gone` when there is nothing. Must not write.
    /// `upstream` gives the teardown observations of the node's dependencies (subnets
    /// follow their VPC).
    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>>;

    /// Carries out a teardown observation: `Delete`, or `Update` for a kind that is changed
    /// rather than deleted (a kept pool's job variables). Called once every node that
    /// depends on this one is done; a resource found already deleted counts as success.
    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>>;
}

/// A shared node kind instance.
pub type NodeRef = Arc<dyn Node>;
