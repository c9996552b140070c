//! Modal, for `modal:push` pools: the pool's credentials block holds the token the user's own
//! Modal client uses, and with `--image-registry ecr` a Modal Secret holds the key Modal pulls
//! the flow images with.

pub mod cli;
pub mod names;
pub mod secret;
pub mod token;

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::blueprint::{Blueprint, Kind, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;

/// Builds the Modal node of `spec` for `pool`, returning its display name and implementation.
pub fn build(
    spec: &NodeSpec,
    blueprint: &Blueprint,
    names: &BTreeMap<String, String>,
    token: &token::ModalToken,
    prefect: &Arc<PrefectContext>,
    pool: &str,
) -> Result<(String, NodeRef)> {
    let at = || format!("blueprint node '{}'", spec.id);
    let Kind::ModalSecret(settings) = &spec.kind else {
        return Err(Error::usage(at(), format!("{} is not a Modal kind", spec.kind.name())));
    };
    let from = settings.from_block.as_str();
    let Some(Kind::PrefectBlock(block)) = blueprint.node(from).map(|n| &n.kind) else {
        return Err(Error::usage(at(), "`from_block` must name a prefect.block node"));
    };
    let name_of = |id: &str| names.get(id).cloned().ok_or_else(|| Error::usage(at(), format!("node '{id}' has no name")));
    let name = name_of(&spec.id)?;
    let node = secret::ModalSecret {
        name: name.clone(),
        node_id: spec.id.clone(),
        environment: token.environment.clone(),
        pool: pool.to_owned(),
        prefect: prefect.clone(),
        block_slug: block.block_type.clone(),
        block_name: name_of(from)?,
        block_node: from.to_owned(),
        values: settings.values.clone(),
    };
    Ok((name, Arc::new(node)))
}
