//! What every node kind implements: observe the live object, then create or update it; and
//! for a teardown, observe it again and delete it when it is pushpool's and nobody else's.

use std::sync::Arc;

use futures::future::BoxFuture;

use super::attrs::Attrs;
use super::observation::Observation;
use super::teardown::Teardown;
use super::upstream::{Inputs, Upstream};
use crate::error::Result;

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
    fn apply<'a>(&'a self, observed: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>>;

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
