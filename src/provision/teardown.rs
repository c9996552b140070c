//! `work-pool deprovision`: plan and carry out the teardown of a pool and of what pushpool
//! built for it, keeping whatever another pool or block still names.

use super::flows::show_and_apply;
use super::{Outcome, RunOptions, Session, Target};
use crate::request::PoolMode;
use crate::blueprint::{Blueprint, Kind};
use crate::engine::Teardown;
use crate::error::{Error, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::nodes::job_variable_defaults;
use crate::prefect::pool_record::{self, PoolRecord};
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
        return Err(Error::usage(format!("--output {}", run.output.as_str()), "prints a teardown plan for review, not its progress")
            .fix("add --dry-run, or leave --output out"));
    }
    debug_assert_eq!(target.request.mode, PoolMode::Deprovision);
    let session = Session::open(vec![target], true).await?;
    let teardown = references(&session, Teardown::new(options.force, options.keep_pool)).await?;
    let plan = session.plan_teardown(&teardown).await?;
    show_and_apply(&session, &plan, run, "Delete the resources marked 'delete'?", console).await
}

/// The type of pool `name` for a teardown, and its record when it was read (Some(None): read,
/// and there is none): the pool's own; once the pool is gone, `asked`
/// (--type), else the type recorded when it was provisioned ([`PoolRecord`]), else what is
/// left tells: the type whose credentials block for the pool remains,
/// else the only type that builds resources in a cloud (a teardown interrupted after the pool
/// and its block went leaves only those), so that a re-run still finds what is left.
pub(super) async fn pool_type(prefect: &PrefectContext, name: &str, asked: &str) -> Result<(String, Option<Option<PoolRecord>>)> {
    if let Some(pool) = prefect.work_pool(name).await? {
        if !asked.is_empty() && asked != pool.pool_type {
            return Err(Error::usage(format!("work pool '{name}'"), format!("has type '{}', not '{asked}'", pool.pool_type))
                .fix("leave --type out: the pool's own type is used"));
        }
        return Ok((pool.pool_type, None));
    }
    let recorded = pool_record::read(&prefect.client, name).await?;
    if !asked.is_empty() {
        return Ok((asked.to_owned(), Some(recorded)));
    }
    if let Some(record) = &recorded {
        return Ok((record.pool_type.clone(), Some(recorded.clone())));
    }
    let blueprints = Blueprint::all()?;
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
    let left: Vec<&Blueprint> = blueprints.iter().zip(&has_block).filter(|(_, has)| **has).map(|(b, _)| b).collect();
    let candidates = match left.is_empty() {
        true => blueprints.iter().filter(|b| b.builds_in_clouds()).collect(),
        false => left,
    };
    match candidates.as_slice() {
        [only] => Ok((only.types[0].clone(), Some(None))),
        _ => {
            let types: Vec<&str> = candidates.iter().map(|b| b.types[0].as_str()).collect();
            Err(Error::usage(format!("work pool '{name}'"), "does not exist, and neither does its credentials block, so the type of what was built for it is unknown")
                .fix(format!("pass the type it had: --type TYPE (one of {}, or their twins)", types.join(", "))))
        }
    }
}

/// Adds to `teardown` what every other pool's job variable defaults and every other block's
/// data name: the resources a teardown of `session`'s pool must keep. A pool whose defaults
/// name only other scopes of a cloud (ARNs of other AWS accounts) is left out: a cluster of
/// the same name there is not ours. A pool that names no scope counts, which errs on the side
/// of keeping.
async fn references(session: &Session, mut teardown: Teardown) -> Result<Teardown> {
    let client = &session.prefect.client;
    let (pools, blocks) = futures::join!(client.work_pools(), client.block_documents());
    let ours: Vec<&str> = session.pools.iter().map(|p| p.request.name.as_str()).collect();
    let clouds = session.clouds();
    let our_blocks: Vec<&str> =
        session.graph.entries().iter().filter(|e| e.info.kind == "prefect.block").map(|e| e.info.name.as_str()).collect();
    for pool in pools?.iter().filter(|p| !ours.contains(&p.name.as_str())) {
        let defaults = job_variable_defaults(&pool.base_job_template);
        if !clouds.iter().any(|cloud| cloud.names_other_scopes_only(&defaults)) {
            teardown.add_references(&format!("pool '{}'", pool.name), &defaults);
        }
    }
    for block in blocks?.iter().filter(|b| !our_blocks.contains(&b.name.as_str())) {
        teardown.add_references(&format!("block '{}'", block.name), &block.data);
    }
    Ok(teardown)
}
