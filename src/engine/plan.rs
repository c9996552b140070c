//! Planning: observe every node at once and collect what apply (or a teardown) would do.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::{BoxFuture, join_all};

use super::graph::{Graph, NodeInfo};
use super::node::NodeRef;
use super::observation::{Action, Observation};
use super::teardown::Teardown;
use super::upstream::{SharedObservation, Upstream};
use crate::error::Result;

/// What a plan is for, which decides the order its apply follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    /// Create, update or reuse; each node after the nodes it depends on.
    Provision,
    /// Delete or keep; each node after the nodes that depend on it.
    Teardown,
}

/// One planned change: the node and its observation.
#[derive(Debug, Clone)]
pub struct Change {
    /// The node.
    pub info: NodeInfo,
    /// What was observed and decided.
    pub observed: Arc<Observation>,
}

/// The observed graph diffed against the wanted one, in dependency order.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Provisioning or teardown.
    pub goal: Goal,
    /// Every node's change, reused (or kept) ones included.
    pub changes: Vec<Change>,
}

impl Plan {
    /// True when applying would write nothing.
    pub fn is_empty(&self) -> bool {
        !self.changes.iter().any(|c| c.observed.action.writes())
    }

    /// How many changes have this action.
    pub fn count(&self, action: Action) -> usize {
        self.changes.iter().filter(|c| c.observed.action == action).count()
    }

    /// The change of node `id`.
    pub fn change(&self, id: &str) -> Option<&Change> {
        self.changes.iter().find(|c| c.info.id == id)
    }
}

/// Observes every node concurrently and returns the plan. A node's observation starts at
/// once; it waits on its dependencies' observations only where its decision needs them.
/// The first failure (in dependency order) is returned.
pub async fn plan(graph: &Graph) -> Result<Plan> {
    observe_all(graph, Goal::Provision, |_, node, upstream| async move { node.observe(&upstream).await }.boxed()).await
}

/// Observes every node for a teardown, as [`plan`] does for provisioning.
/// A resource that another pool's record says it uses ([`NodeInfo::key`]) is kept, whatever
/// that pool's type: the node kind alone sees only the references it knows to look for.
pub async fn plan_teardown(graph: &Graph, teardown: &Teardown) -> Result<Plan> {
    let teardown = std::sync::Arc::new(teardown.clone());
    observe_all(graph, Goal::Teardown, move |info, node, upstream| {
        let teardown = teardown.clone();
        async move {
            let observed = node.observe_teardown(&upstream, &teardown).await?;
            let used = info.key().filter(|_| observed.action == Action::Delete).and_then(|key| teardown.in_use([key.as_str()]));
            Ok(match used {
                Some(used) => Observation::keep(used, observed.attrs),
                None => observed,
            })
        }
        .boxed()
    })
    .await
}

async fn observe_all(graph: &Graph, goal: Goal, observe: impl Fn(NodeInfo, NodeRef, Upstream) -> BoxFuture<'static, Result<Observation>>) -> Result<Plan> {
    let mut shared: BTreeMap<String, SharedObservation> = BTreeMap::new();
    for entry in graph.entries() {
        let upstream = Upstream { deps: entry.aliases.iter().map(|(local, id)| (local.clone(), shared[id].clone())).collect(), context: entry.context.clone() };
        let observation = observe(entry.info.clone(), entry.node.clone(), upstream).map(|observed| observed.map(Arc::new));
        shared.insert(entry.info.id.clone(), observation.boxed().shared());
    }
    let observed = join_all(graph.entries().iter().map(|e| shared[&e.info.id].clone())).await;
    let changes = graph.entries().iter().zip(observed).map(|(entry, observed)| Ok(Change { info: entry.info.clone(), observed: observed? })).collect::<Result<Vec<_>>>()?;
    Ok(Plan { goal, changes })
}
