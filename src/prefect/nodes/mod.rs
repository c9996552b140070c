//! The node kinds of the Prefect side: `prefect.block`, `prefect.work_pool`,
//! `prefect.docker_namespace`.

mod block;
mod namespace;
mod work_pool;

use std::sync::Arc;

use serde_json::Value;

pub use block::Block;
pub use namespace::DockerNamespace;
pub use work_pool::{KNOWN_AFTER_APPLY, WorkPoolNode, job_variable_defaults};

use crate::blueprint::NodeSpec;
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::provision::PoolRequest;

/// Builds the Prefect node of `spec`, returning its display name and implementation.
pub fn build(
    spec: &NodeSpec,
    name: Option<&str>,
    prefect: &Arc<PrefectContext>,
    request: &PoolRequest,
    template_type: &str,
) -> Result<(String, NodeRef)> {
    let param = |key: &str| spec.params.get(key).cloned().ok_or_else(|| missing(spec, key));
    let named = || name.map(str::to_owned).ok_or_else(|| missing(spec, "name"));
    Ok(match spec.kind.as_str() {
        "prefect.block" => {
            let name = named()?;
            let slug = param("block_type")?.as_str().map(str::to_owned).ok_or_else(|| missing(spec, "block_type"))?;
            let node = Block { prefect: prefect.clone(), slug, name: name.clone(), data: param("data")? };
            (name, Arc::new(node))
        }
        "prefect.work_pool" => {
            let node = WorkPoolNode {
                prefect: prefect.clone(),
                request: request.clone(),
                template_type: template_type.to_owned(),
                job_variables: spec.params.get("job_variables").cloned().unwrap_or(Value::Object(Default::default())),
            };
            (request.name.clone(), Arc::new(node))
        }
        "prefect.docker_namespace" => {
            let node = DockerNamespace { prefect: prefect.clone(), registry: param("registry")? };
            (DockerNamespace::display_name(prefect), Arc::new(node))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("unknown kind '{other}'"))),
    })
}

fn missing(spec: &NodeSpec, key: &str) -> Error {
    Error::usage(format!("blueprint node '{}'", spec.id), format!("needs `{key}`"))
}
