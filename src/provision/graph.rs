//! Turns a blueprint into the engine's graph for one pool, with each cloud's node kinds.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::request::{PoolRequest, check_block_name};
use crate::blueprint::Blueprint;
use crate::clouds::aws::{self, AwsContext};
use crate::engine::{Entry, Graph, NodeInfo};
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::nodes;

/// The contexts of the systems a blueprint's nodes live in.
pub struct Systems {
    /// The Prefect API and profile.
    pub prefect: Arc<PrefectContext>,
    /// The AWS account, for blueprints on AWS.
    pub aws: Option<Arc<AwsContext>>,
}

/// Builds the graph of `blueprint` for `request`, with `names` (node id → name) resolved.
pub fn build(blueprint: &Blueprint, request: &PoolRequest, names: &BTreeMap<String, String>, systems: &Systems) -> Result<Graph> {
    let mut entries = Vec::with_capacity(blueprint.nodes.len());
    for spec in &blueprint.nodes {
        let (system, _) = spec.kind.split_once('.').unwrap_or_default();
        let (name, node) = match system {
            "prefect" => {
                if spec.kind == "prefect.block" {
                    check_block_name(names.get(&spec.id).map(String::as_str).unwrap_or_default(), &spec.id)?;
                }
                nodes::build(spec, names.get(&spec.id).map(String::as_str), &systems.prefect, request, &blueprint.template_type)?
            }
            "aws" => {
                let context = systems.aws.as_ref().ok_or_else(|| Error::usage(format!("node '{}'", spec.id), "needs an AWS context"))?;
                aws::build(spec, blueprint, names, context, &systems.prefect)?
            }
            other => return Err(Error::usage(format!("node '{}'", spec.id), format!("unknown system '{other}'"))),
        };
        let info = NodeInfo { id: spec.id.clone(), kind: spec.kind.clone(), label: node.label().to_owned(), name, says: spec.says.clone(), after: spec.after.clone() };
        entries.push(Entry { info, node });
    }
    let mut context = BTreeMap::new();
    if let Some(aws) = &systems.aws {
        context.insert("aws".to_owned(), aws.attrs());
    }
    Graph::new(entries, context)
}
