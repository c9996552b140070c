//! Planning: observe every node at once and collect what apply would do.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::join_all;

use super::graph::{Graph, NodeInfo};
use super::node::{Action, Observation};
use super::upstream::{SharedObservation, Upstream};
use crate::error::Result;

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
    /// Every node's change, reused ones included.
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
    let mut shared: BTreeMap<String, SharedObservation> = BTreeMap::new();
    for entry in graph.entries() {
        let upstream = Upstream {
            deps: entry.aliases.iter().map(|(local, id)| (local.clone(), shared[id].clone())).collect(),
            context: entry.context.clone(),
        };
        let node = entry.node.clone();
        let observation = async move { node.observe(&upstream).await.map(Arc::new) };
        shared.insert(entry.info.id.clone(), observation.boxed().shared());
    }
    let observed = join_all(graph.entries().iter().map(|e| shared[&e.info.id].clone())).await;
    let changes = graph
        .entries()
        .iter()
        .zip(observed)
        .map(|(entry, observed)| Ok(Change { info: entry.info.clone(), observed: observed? }))
        .collect::<Result<Vec<_>>>()?;
    Ok(Plan { changes })
}
