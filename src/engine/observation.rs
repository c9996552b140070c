//! What observing a node yields: the action the plan takes, why, and the attributes known
//! so far. A leaf of the engine: node kinds, upstream views and plans all build on it.

use serde::{Deserialize, Serialize};

use super::attrs::Attrs;

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
