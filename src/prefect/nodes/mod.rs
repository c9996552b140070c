//! The node kinds of the Prefect side: `prefect.block`, `prefect.work_pool`,
//! `prefect.profile_setting`.

mod block;
mod profile_setting;
mod work_pool;

use std::sync::Arc;

use serde_json::Value;

pub use block::Block;
pub use profile_setting::ProfileSetting;
pub use work_pool::{KNOWN_AFTER_APPLY, WorkPoolNode, job_variable_defaults};

use crate::blueprint::{Kind, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::request::PoolRequest;

/// Builds the Prefect node of `spec`, returning its display name and implementation.
pub fn build(spec: &NodeSpec, name: Option<&str>, prefect: &Arc<PrefectContext>, request: &PoolRequest, template_type: &str) -> Result<(String, NodeRef)> {
    let named = || name.map(str::to_owned).ok_or_else(|| Error::usage(format!("blueprint node '{}'", spec.id), "needs a name"));
    Ok(match &spec.kind {
        Kind::PrefectBlock(block) => {
            let name = named()?;
            let node = Block {
                prefect: prefect.clone(),
                slug: block.block_type.clone(),
                name: name.clone(),
                data: block.data.clone(),
                when_type_missing: block.when_type_missing.clone(),
            };
            (name, Arc::new(node))
        }
        Kind::PrefectWorkPool(pool) => {
            // A trailing `?` marks a job variable set only when the pool's template has it.
            let optional = pool.job_variables.keys().filter_map(|k| k.strip_suffix('?')).map(str::to_owned).collect();
            let job_variables = pool.job_variables.iter().map(|(k, v)| (k.trim_end_matches('?').to_owned(), v.clone())).collect();
            let node = WorkPoolNode {
                prefect: prefect.clone(),
                request: request.clone(),
                template_type: template_type.to_owned(),
                job_variables: Value::Object(job_variables),
                optional,
            };
            (request.name.clone(), Arc::new(node))
        }
        Kind::PrefectProfileSetting(setting) => {
            let node = ProfileSetting { prefect: prefect.clone(), key: setting.key.clone(), value: setting.value.clone() };
            (ProfileSetting::display_name(prefect), Arc::new(node))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("{} is not a Prefect kind", other.name()))),
    })
}
