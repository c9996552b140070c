//! What the report says to do next for each pool, after a provisioning apply: its blueprint's
//! guides (a `prefect.yaml` fragment), filled with the pool's name and what was applied.

use super::Session;
use super::registry::applied_attrs_of;
use crate::engine::Applied;

/// Each guide of each pool as (title, text), in the pools' order.
pub(super) fn guides(session: &Session, applied: &Applied) -> Vec<(String, String)> {
    let mut guides = Vec::new();
    for pool in &session.pools {
        let mut attrs = applied_attrs_of(&session.graph, applied, &pool.request.name);
        attrs.extend(pool.context());
        for guide in &pool.blueprint.guides {
            let text = guide.render(&pool.request.name, &pool.request.pool_type, |node, attr| attrs.get(node)?.value(attr).cloned());
            guides.push((format!("{} (work pool '{}')", guide.title, pool.request.name), text));
        }
    }
    guides
}
