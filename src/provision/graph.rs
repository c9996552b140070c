//! Turns the blueprints of one or more pools into one engine graph, in which a resource that
//! several pools want (the default IAM user, the cluster, the repository) is one node.
//!
//! Two pools' nodes are the same resource when kind, scope (the cloud's: account and region,
//! account only for IAM) and name are equal, and so are the names of the nodes their settings
//! point at (a policy attached to the same user). Same kind, scope and name with different
//! settings is a conflict: both would manage one object differently, so the run stops before
//! any read.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::blueprint::{Blueprint, Kind, NodeSpec};
use crate::clouds::{CloudContext, aws, azure, gcp, modal};
use crate::engine::{Attrs, Entry, Graph, NodeInfo, NodeRef};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::nodes;
use crate::prefect::pool_record::PoolRecord;
use crate::request::{PoolRequest, check_block_name};

/// One pool of a run, resolved: what is asked, its blueprint and names, and its clouds.
pub struct PoolPlan {
    /// The pool and its mode.
    pub request: PoolRequest,
    /// The pool type's graph.
    pub blueprint: Blueprint,
    /// Node id → resource name, overrides applied.
    pub names: BTreeMap<String, String>,
    /// The clouds the blueprint names, connected.
    pub clouds: Vec<CloudContext>,
    /// The `prefect` and `worker` contexts' attributes.
    pub contexts: BTreeMap<String, Attrs>,
    /// Where the clouds' place came from, for the plan header ("from the pool's record");
    /// None for a new pool, placed by the flags and the clouds' defaults.
    pub place_source: Option<String>,
    /// The pool's record as the run read it (see [`pool_record`](crate::prefect::pool_record)):
    /// an apply writes it only where it differs, without reading it again.
    pub recorded: Option<PoolRecord>,
}

impl PoolPlan {
    /// The connected cloud named `name` ("aws"), if the blueprint names it.
    pub fn cloud(&self, name: &str) -> Option<&CloudContext> {
        self.clouds.iter().find(|c| c.name() == name)
    }

    fn scope(&self, spec: &NodeSpec) -> String {
        self.cloud(spec.kind.system()).map(|cloud| cloud.node_scope(spec.kind.name())).unwrap_or_default()
    }

    /// The names of the nodes `spec`'s settings point at, e.g. `attach_to=prefect-ecs-user`.
    fn references(&self, spec: &NodeSpec) -> Vec<String> {
        spec.kind
            .node_settings()
            .into_iter()
            .map(|(setting, id, _)| format!("{setting}={}", self.names.get(id.as_str()).map(String::as_str).unwrap_or(id.as_str())))
            .collect()
    }

    /// The attributes of each cloud and context, for `@cloud.attr` references.
    pub fn context(&self) -> BTreeMap<String, Attrs> {
        let clouds = self.clouds.iter().map(|cloud| (cloud.name().to_owned(), cloud.attrs()));
        self.contexts.clone().into_iter().chain(clouds).collect()
    }
}

/// Builds the graph of every pool's blueprint, sharing the nodes they have in common.
pub fn build(pools: &[PoolPlan], prefect: &Arc<PrefectContext>) -> Result<Graph> {
    let graph_ids = graph_ids(pools)?;
    // Each graph id is built once, from the first pool that has it.
    let mut entries: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for (pool, ids) in pools.iter().zip(&graph_ids) {
        for spec in &pool.blueprint.nodes {
            let id = &ids[&spec.id];
            if let Some(&at) = index.get(id) {
                entries[at].info.pools.push(pool.request.name.clone());
                continue;
            }
            let (name, node) = build_node(spec, pool, prefect)?;
            let aliases: BTreeMap<String, String> = spec.after.iter().map(|dep| (dep.clone(), ids[dep].clone())).collect();
            let info = NodeInfo {
                id: id.clone(),
                kind: spec.kind.name().to_owned(),
                label: node.label().to_owned(),
                name,
                says: spec.says.clone(),
                after: aliases.values().cloned().collect(),
                pools: vec![pool.request.name.clone()],
                // A credential is one block's: no other pool's record may keep it.
                scope: if spec.kind.held_by_one_block() { String::new() } else { pool.scope(spec) },
            };
            index.insert(id.clone(), entries.len());
            let mut entry = Entry::new(info, node, pool.context());
            entry.aliases = aliases;
            entries.push(entry);
        }
    }
    Graph::new(entries)
}

/// Each pool's node ids and the graph id each is (its own, or one another pool's node has):
/// two pools' nodes are one when they are one resource. A resource two pools would manage
/// differently is refused.
pub(super) fn graph_ids(pools: &[PoolPlan]) -> Result<Vec<BTreeMap<String, String>>> {
    let single = pools.len() == 1;
    let mut graph_ids: Vec<BTreeMap<String, String>> = Vec::with_capacity(pools.len());
    let mut by_identity: HashMap<String, String> = HashMap::new();
    let mut by_object: HashMap<String, (String, &str, Vec<String>)> = HashMap::new();
    for pool in pools {
        let mut ids = BTreeMap::new();
        for spec in &pool.blueprint.nodes {
            let name = pool.names.get(&spec.id).cloned().unwrap_or_default();
            if matches!(spec.kind, Kind::PrefectBlock(_)) {
                check_block_name(&name, &spec.id)?;
            }
            let object = format!("{}|{}|{name}|{}", spec.kind.name(), pool.scope(spec), spec.kind.identity());
            let references = pool.references(spec);
            let identity = format!("{object}|{}", references.join(","));
            // A node without a name of its own (an access key) is told apart by what it points at.
            let conflict = by_object.get(&object).filter(|(other, ..)| !name.is_empty() && *other != identity);
            if let Some((_, other_pool, other_refs)) = conflict {
                let theirs: Vec<&String> = other_refs.iter().filter(|r| !references.contains(r)).collect();
                let ours: Vec<&String> = references.iter().filter(|r| !other_refs.contains(r)).collect();
                let show = |refs: &[&String]| refs.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ");
                return Err(Error::usage(
                    format!("{} '{name}'", spec.kind.name()),
                    format!("pools '{other_pool}' and '{}' both use it, with different settings ({} against {})", pool.request.name, show(&theirs), show(&ours)),
                )
                .fix(format!("give one pool its own name for it: --set {}=<name> (or `set` in the pools file)", spec.id)));
            }
            by_object.insert(object, (identity.clone(), pool.request.name.as_str(), references));
            let id = by_identity.entry(identity).or_insert_with(|| if single { spec.id.clone() } else { format!("{}/{}", pool.request.name, spec.id) }).clone();
            ids.insert(spec.id.clone(), id);
        }
        graph_ids.push(ids);
    }
    Ok(graph_ids)
}

fn build_node(spec: &NodeSpec, pool: &PoolPlan, prefect: &Arc<PrefectContext>) -> Result<(String, NodeRef)> {
    let system = spec.kind.system();
    if system == "prefect" {
        return nodes::build(spec, pool.names.get(&spec.id).map(String::as_str), prefect, &pool.request, &pool.blueprint.template_type_for(&pool.request.pool_type));
    }
    let missing = || Error::usage(format!("node '{}'", spec.id), format!("needs the {system} cloud, which the run did not connect to"));
    match pool.cloud(system).ok_or_else(missing)? {
        CloudContext::Aws(context) => aws::build(spec, &pool.blueprint, &pool.names, context, prefect),
        CloudContext::Gcp(context) => gcp::build(spec, &pool.blueprint, &pool.names, context, prefect),
        CloudContext::Azure(context) => azure::build(spec, &pool.blueprint, &pool.names, context, prefect),
        CloudContext::Modal(token) => modal::build(spec, &pool.blueprint, &pool.names, token, prefect, &pool.request.name),
        CloudContext::Coiled(_) => Err(Error::usage(format!("node '{}'", spec.id), format!("{system} has no node kinds"))),
    }
}
