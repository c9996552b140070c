//! `work-pool deprovision`: plan and carry out the teardown of a pool and of what pushpool
//! built for it, keeping whatever another pool or block still names.

use std::sync::Arc;

use super::flows::show_and_apply;
use super::{Outcome, RunOptions, Session, Target};
use crate::blueprint::{Blueprint, Kind};
use crate::engine::Teardown;
use crate::error::{Error, Result};
use crate::prefect::client::WorkPool;
use crate::prefect::context::PrefectContext;
use crate::prefect::nodes::job_variable_defaults;
use crate::prefect::pool_record::{self, PoolRecord};
use crate::prefect::settings::{ProcessEnv, discover};
use crate::request::PoolMode;
use crate::ui::Console;

/// What `work-pool deprovision` is asked besides the pool.
#[derive(Debug, Clone)]
pub struct TeardownOptions {
    /// Dry run, confirmation and output, as for provisioning (`out` is not offered).
    pub run: RunOptions,
    /// Keep the work pool; reset the job variable defaults that name deleted resources.
    pub keep_pool: bool,
    /// Delete an image repository that still holds images.
    pub force: bool,
}

/// Plans the teardown of `target`'s pool, shows it, and unless it is a dry run, confirms and
/// carries it out in reverse dependency order.
pub async fn deprovision(target: Target, options: &TeardownOptions, console: &Console) -> Result<Outcome> {
    let run = &options.run;
    if run.output != crate::ui::Format::Text && !run.dry_run {
        return Err(
            Error::usage(format!("--output {}", run.output.as_str()), "prints a teardown plan for review, not its progress").fix("add --dry-run, or leave --output out")
        );
    }
    debug_assert_eq!(target.request.mode, PoolMode::Deprovision);
    super::session::check_names(std::slice::from_ref(&target))?;
    let prefect = Arc::new(PrefectContext::new(discover(&ProcessEnv)?)?);
    // A second teardown of a pool that is fully gone says so, rather than asking for --type;
    // --type still looks for what another tool may have left.
    if target.request.pool_type.is_empty() && !anything_left(&prefect, &target.request.name).await? {
        let name = &target.request.name;
        console.line(&format!(
            "Nothing to delete: work pool '{name}', its record and its credentials block are gone from {}, so nothing pushpool built for it is left.",
            prefect.client.api_url()
        ))?;
        return Ok(Outcome::NoChanges);
    }
    let session = Session::open_with(prefect, vec![target], true).await?;
    let teardown = references(&session, Teardown::new(options.force, options.keep_pool)).await?;
    let plan = session.plan_teardown(&teardown).await?;
    show_and_apply(&session, &plan, run, "Delete the resources marked 'delete'?", console).await
}

/// The type of pool `name` for a teardown, given the `pool` and its `record` as read: the
/// pool's own; once the pool is gone, `asked` (--type), else the type recorded when it was
/// provisioned ([`PoolRecord`]), else what is left tells: the type whose credentials block
/// for the pool remains, else the only type that builds resources in a cloud (a teardown
/// interrupted after the pool and its block went leaves only those), so that a re-run still
/// finds what is left.
pub(super) async fn pool_type(prefect: &PrefectContext, name: &str, asked: &str, pool: Option<&WorkPool>, record: Option<&PoolRecord>) -> Result<String> {
    if let Some(pool) = pool {
        if !asked.is_empty() && asked != pool.pool_type {
            return Err(
                Error::usage(format!("work pool '{name}'"), format!("has type '{}', not '{asked}'", pool.pool_type)).fix("leave --type out: the pool's own type is used")
            );
        }
        return Ok(pool.pool_type.clone());
    }
    if !asked.is_empty() {
        return Ok(asked.to_owned());
    }
    if let Some(record) = record {
        return Ok(record.pool_type.clone());
    }
    let blueprints = Blueprint::all()?;
    let left = with_blocks(prefect, name, &blueprints).await?;
    let candidates: Vec<&Blueprint> = match left.is_empty() {
        true => blueprints.iter().filter(|b| b.builds_in_clouds()).collect(),
        false => left,
    };
    match candidates.as_slice() {
        [only] => Ok(only.types[0].clone()),
        _ => {
            let types: Vec<&str> = candidates.iter().map(|b| b.types[0].as_str()).collect();
            Err(Error::usage(format!("work pool '{name}'"), "does not exist, and neither does its credentials block, so the type of what was built for it is unknown")
                .fix(format!("pass the type it had: --type TYPE (one of {}, or their twins)", types.join(", "))))
        }
    }
}

/// The blueprints whose credentials block for pool `name` exists.
async fn with_blocks<'a>(prefect: &PrefectContext, name: &str, blueprints: &'a [Blueprint]) -> Result<Vec<&'a Blueprint>> {
    let blocks = blueprints.iter().map(|blueprint| async move {
        let names = blueprint.names(name, &Default::default())?;
        for node in &blueprint.nodes {
            if let (Kind::PrefectBlock(block), Some(block_name)) = (&node.kind, names.get(&node.id))
                && prefect.block_document(&block.block_type, block_name).await?.is_some()
            {
                return Ok(true);
            }
        }
        Ok::<_, Error>(false)
    });
    let has_block = futures::future::try_join_all(blocks).await?;
    Ok(blueprints.iter().zip(has_block).filter(|(_, has)| *has).map(|(b, _)| b).collect())
}

/// Whether pushpool can find anything of pool `name` to tear down: the pool, its record, or a
/// credentials block of it. A provisioning writes its record before anything else and a
/// teardown deletes it last, so with none of the three nothing pushpool built is left.
async fn anything_left(prefect: &PrefectContext, name: &str) -> Result<bool> {
    let (pool, record) = futures::join!(prefect.work_pool(name), pool_record::read(prefect, name));
    if pool?.is_some() || record?.is_some() {
        return Ok(true);
    }
    Ok(!with_blocks(prefect, name, &Blueprint::all()?).await?.is_empty())
}

/// Adds to `teardown` what every other pool's job variable defaults and every other block's
/// data name: the resources a teardown of `session`'s pool must keep. A pool whose defaults
/// name only other scopes of a cloud (ARNs of other AWS accounts) is left out: a cluster of
/// the same name there is not ours. A pool that names no scope counts, which errs on the side
/// of keeping. Every other pool's record adds the resources it uses, whatever its type (a
/// Modal pool's ECR repository that an ECS pool pushes to names no job variable of either).
async fn references(session: &Session, mut teardown: Teardown) -> Result<Teardown> {
    let client = &session.prefect.client;
    let (pools, blocks, records) = futures::join!(client.work_pools(), client.block_documents(), pool_record::read_all(client));
    let ours: Vec<&str> = session.pools.iter().map(|p| p.request.name.as_str()).collect();
    let clouds = session.clouds();
    let our_blocks: Vec<&str> = session.graph.entries().iter().filter(|e| e.info.kind == "prefect.block").map(|e| e.info.name.as_str()).collect();
    for pool in pools?.iter().filter(|p| !ours.contains(&p.name.as_str())) {
        let defaults = job_variable_defaults(&pool.base_job_template);
        if !clouds.iter().any(|cloud| cloud.names_other_scopes_only(&defaults)) {
            teardown.add_references(&format!("pool '{}'", pool.name), &defaults);
        }
    }
    for block in blocks?.iter().filter(|b| !our_blocks.contains(&b.name.as_str())) {
        teardown.add_references(&format!("block '{}'", block.name), &block.data);
    }
    for (pool, record) in records?.into_iter().filter(|(pool, _)| !ours.contains(&pool.as_str())) {
        teardown.add_references(&format!("pool '{pool}'"), &serde_json::json!(record.uses));
    }
    Ok(teardown)
}
