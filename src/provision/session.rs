//! What a run resolved before it plans: the Prefect API, each pool's type, blueprint, names and
//! connected clouds, the one graph of them all, and the apply markers as the run read them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use super::failure::mid_apply_error;
use super::graph::{PoolPlan, build};
use super::limits::Owners;
use super::resolve::{resolve_pool, unreachable_from_a_vpc};
use super::{Target, guides, registry};
use crate::blueprint::{Blueprint, Kind};
use crate::clouds::{self, CloudContext};
use crate::document::{PlanDocument, PoolDoc, TargetDoc};
use crate::engine::{self, Graph, Plan, summarise};
use crate::error::{Error, Result};
use crate::prefect::batch::Batch;
use crate::prefect::context::PrefectContext;
use crate::prefect::lock::{ApplyLock, LEASE_SECONDS, Markers};
use crate::prefect::pool_record::{self, PoolRecord};
use crate::prefect::settings::{ProcessEnv, discover};
use crate::request::check_pool_name;
use crate::ui::{Console, PlanHeader};

/// What a run resolved: the Prefect API, each pool with its blueprint and clouds, the graph,
/// and the apply markers as the run read them.
pub struct Session {
    pub(super) prefect: Arc<PrefectContext>,
    pub(super) pools: Vec<PoolPlan>,
    targets: Vec<Target>,
    pub(super) graph: Graph,
    markers: Markers,
    /// The owners of the credentials the run mints, counted against their limits.
    owners: Owners,
}

impl Session {
    /// Checks the names, resolves the Prefect API and every pool's type and clouds
    /// (concurrently), and builds the graph. Fails, before any write, on bad input or unusable
    /// credentials; with several pools, the error names the pools whose clouds failed.
    pub async fn open(targets: Vec<Target>, provision_infra: bool) -> Result<Self> {
        check_names(&targets)?;
        let prefect = Arc::new(PrefectContext::new(discover(&ProcessEnv)?)?.with_batch(batch_of(&targets)));
        Self::open_with(prefect, targets, provision_infra).await
    }

    /// [`Session::open`] with the Prefect API already resolved (a teardown reads it first),
    /// for targets whose names [`check_names`] passed.
    pub async fn open_with(prefect: Arc<PrefectContext>, targets: Vec<Target>, provision_infra: bool) -> Result<Self> {
        // No separate API check: every run reads Prefect (the pool, the apply markers) before
        // any write, and a refused key or a server that is down fails those reads with the same
        // clear error. The markers are read beside the pools, before any other resource (see
        // prefect::lock).
        let pools = futures::future::join_all(targets.iter().map(|t| resolve_pool(&prefect, t, provision_infra)));
        let (pools, markers) = futures::join!(pools, Markers::read(&prefect));
        let pools = per_pool(&targets, pools)?;
        let markers = markers?;
        let graph = build(&pools, &prefect)?;
        let owners = Owners::of(&pools)?;
        Ok(Self { prefect, pools, targets, graph, markers, owners })
    }

    /// What the plan's reader should know before it: that push pools run nothing on a
    /// self-hosted server, and which Prefect API URL each worker pushpool runs will use.
    pub(super) fn notes(&self, console: &Console) {
        for pool in self.pools.iter().filter(|p| p.request.addons.iter().any(|a| a == "worker")) {
            let url = pool.contexts.get("worker").and_then(|w| w.str("api_url")).unwrap_or_default();
            let warning = unreachable_from_a_vpc(url).map(|why| format!(": {why}; pass --worker-api-url with an address the tasks reach")).unwrap_or_default();
            console.note(&format!("the worker of '{}' will use the Prefect API at {url}{warning}", pool.request.name));
        }
        if self.prefect.settings.is_cloud() {
            return;
        }
        // One note per way out, however many pools it is for: a pools file of a hundred push
        // pools gets one line, not a hundred.
        let mut needing: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for pool in self.pools.iter().filter(|p| p.request.pool_type.ends_with(":push")) {
            let twin = pool.request.pool_type.trim_end_matches(":push");
            let hybrid = match Blueprint::for_type(twin) {
                Ok(Some(_)) => format!("--type {twin} and a worker"),
                _ => "Prefect Cloud".to_owned(),
            };
            needing.entry(hybrid).or_default().push(format!("'{}'", pool.request.name));
        }
        for (hybrid, pools) in needing {
            let verb = if pools.len() == 1 { "needs" } else { "need" };
            console.note(&format!("push pools run flows only on Prefect Cloud; on a self-hosted server {} {verb} {hybrid}", summarise(&pools)));
        }
    }

    /// Observes every node and returns the plan. Reads only. An owner the run would give
    /// more credentials than its limit stops it: before the reads when the graph alone says
    /// so, after them when the credentials that exist do.
    pub async fn plan(&self) -> Result<Plan> {
        self.owners.check_graph()?;
        let plan = engine::plan(&self.graph).await?;
        self.owners.check_plan(&plan)?;
        Ok(plan)
    }

    /// Observes every node for a teardown and returns the plan. Reads only.
    pub async fn plan_teardown(&self, teardown: &engine::Teardown) -> Result<Plan> {
        engine::plan_teardown(&self.graph, teardown).await
    }

    /// Every cloud the run connected to, each scope once.
    pub(super) fn clouds(&self) -> Vec<&CloudContext> {
        clouds::distinct(self.pools.iter().flat_map(|p| &p.clouds))
    }

    /// What one apply locks: each cloud scope it writes to (pools in one AWS account share
    /// resources), and each pool that has no cloud resources.
    fn lock_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.clouds().iter().filter_map(|c| c.lock_scope()).collect();
        let cloudless = self.pools.iter().filter(|p| p.clouds.iter().all(|c| c.lock_scope().is_none()));
        keys.extend(cloudless.map(|p| format!("pool_{}", p.request.name)));
        keys.sort();
        keys.dedup();
        keys
    }

    /// Who and where the plan is for, each place with where it came from when the pools say
    /// ("from the pool's record").
    pub fn header(&self) -> PlanHeader {
        let described = |target: &TargetDoc| {
            let mut sources: Vec<&str> =
                self.pools.iter().filter(|pool| pool.clouds.iter().any(|cloud| &cloud.target() == target)).filter_map(|pool| pool.place_source.as_deref()).collect();
            sources.sort();
            sources.dedup();
            match sources.as_slice() {
                [] => target.describe(),
                sources => format!("{} ({})", target.describe(), sources.join("; ")),
            }
        };
        PlanHeader {
            pools: self.pools.iter().map(|p| (p.request.name.clone(), p.request.pool_type.clone())).collect(),
            prefect: self.prefect.client.described().to_owned(),
            targets: self.target_docs().iter().map(described).collect(),
        }
    }

    fn target_docs(&self) -> Vec<TargetDoc> {
        let mut targets: Vec<TargetDoc> = self.clouds().iter().map(|c| c.target()).collect();
        targets.sort();
        targets
    }

    /// The plan as a document, for JSON output and plan files.
    pub fn document(&self, plan: &Plan) -> PlanDocument {
        let pools = self
            .pools
            .iter()
            .zip(&self.targets)
            .map(|(pool, target)| PoolDoc {
                name: pool.request.name.clone(),
                pool_type: pool.request.pool_type.clone(),
                mode: pool.request.mode.as_str().to_owned(),
                names: target.names.clone(),
                region: target.scope.region.clone(),
                project: target.scope.project.clone(),
                subscription: target.scope.subscription.clone(),
                profile: target.scope.profile.clone(),
                paused: pool.request.paused,
                set_as_default: pool.request.set_as_default,
                base_job_template: pool.request.base_job_template.clone(),
                addons: pool.request.addons.clone(),
                options: pool.request.options.clone(),
            })
            .collect();
        PlanDocument::new(self.prefect.client.api_url(), pools, self.target_docs(), plan)
    }

    /// Applies `plan`, logs Docker in to each registry, and prints the report. A failure
    /// names the resource and cause, what was written and what was not started; with several
    /// pools, per failed pool, and which pools were applied in full (see [`mid_apply_error`]).
    pub async fn apply(&self, plan: &Plan, console: &Console) -> Result<()> {
        let keys = self.lock_keys();
        let lock = ApplyLock::acquire(&self.prefect.client, &keys, &self.markers, &|text| console.note(text)).await?;
        // Every record is written once the apply holds the lock (a refused run writes
        // nothing) and before the first cloud write, over what the run read: no read again.
        if let Err(error) = self.write_records(&self.records(plan)).await {
            let _ = lock.release(false).await;
            return Err(error);
        }
        // The registries' login tokens are read while the apply runs: Docker logs in at its end.
        let (applied, tokens) = {
            let progress = console.progress(plan);
            futures::join!(engine::apply(&self.graph, plan, &*progress), registry::tokens(self, plan))
        };
        // Whatever was written makes plans made before it stale, a failed apply's too.
        let wrote = !applied.written.is_empty();
        if !applied.failures.is_empty() {
            // The apply's own error says more than a failure to end it.
            let _ = lock.release(wrote).await;
            let pools: Vec<&str> = self.pools.iter().map(|p| p.request.name.as_str()).collect();
            return Err(mid_apply_error(&self.graph, plan.goal, &pools, &applied, registry::logs_in(self, plan)));
        }
        // Ending the apply and logging Docker in are independent: they run at once.
        let (released, repositories) = futures::join!(lock.release(wrote), registry::log_in(self, plan, &applied, tokens, console));
        released.map_err(|error| {
            let fix =
                format!("nothing else is needed: the next run takes the marker over, on this machine at once, elsewhere {LEASE_SECONDS} s after this run's last renewal");
            Error::remote(error.what, format!("{}\n  everything was applied; only marking the apply done failed", error.cause)).fix(fix)
        })?;
        match plan.goal {
            engine::Goal::Teardown => {
                // Everything went: nothing is left that the record would help find.
                let forgets = self.pools.iter().map(|pool| pool_record::forget(&self.prefect.client, &pool.request.name));
                futures::future::try_join_all(forgets).await?;
                console.torn_down(plan)
            }
            engine::Goal::Provision => console.applied(&self.header(), plan, &repositories, &guides::guides(self, &applied)),
        }
    }
}

impl Session {
    /// What a provisioning records of each pool that builds cloud resources (see
    /// [`pool_record`]): its type, where it lives and what it uses, so that a teardown finds
    /// them even without the pool, every later run works there, and a teardown of another
    /// pool keeps what this one uses. Only the pools whose record would change.
    fn records(&self, plan: &Plan) -> Vec<(&PoolPlan, PoolRecord)> {
        if plan.goal != engine::Goal::Provision {
            return Vec::new();
        }
        let building = self.pools.iter().filter(|pool| !pool.clouds.is_empty() && pool.blueprint.builds_in_clouds());
        let records = building.map(|pool| {
            let request = &pool.request;
            let mut uses: Vec<String> = self.graph.entries().iter().filter(|e| e.info.pools.contains(&request.name)).filter_map(|e| e.info.key()).collect();
            uses.sort();
            let record = PoolRecord {
                pool_type: request.pool_type.clone(),
                addons: request.addons.clone(),
                options: request.options.clone(),
                places: pool.clouds.iter().filter(|c| c.lock_scope().is_some()).map(CloudContext::target).collect(),
                uses,
            };
            (pool, record)
        });
        records.filter(|(pool, record)| pool.recorded.as_ref() != Some(record)).collect()
    }

    /// Writes `records`, each over the record the run read.
    async fn write_records(&self, records: &[(&PoolPlan, PoolRecord)]) -> Result<()> {
        let writes = records.iter().map(|(pool, record)| pool_record::put(&self.prefect.client, &pool.request.name, record, pool.recorded.as_ref()));
        futures::future::try_join_all(writes).await.map(drop)
    }
}

/// The reads by pool of `targets`, batched (see [`crate::prefect::batch`]): their pools, their
/// records, and the blocks their blueprints name (for the targets whose type is known before
/// the pool is read; a name the blueprint would not use in the end is read for nothing).
fn batch_of(targets: &[Target]) -> Batch {
    let pools: BTreeSet<String> = targets.iter().map(|t| t.request.name.clone()).collect();
    let records = pools.iter().map(|pool| pool_record::variable_name(pool)).collect();
    let mut blueprints: HashMap<(&str, &[String]), Option<Blueprint>> = HashMap::new();
    let mut blocks: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for target in targets.iter().filter(|t| !t.request.pool_type.is_empty()) {
        let key = (target.request.pool_type.as_str(), target.request.addons.as_slice());
        let blueprint = blueprints.entry(key).or_insert_with(|| Blueprint::for_pool(key.0, key.1, &|_| true).ok().flatten());
        let Some(blueprint) = blueprint else { continue };
        let Ok(names) = blueprint.names(&target.request.name, &target.names) else { continue };
        for node in &blueprint.nodes {
            if let (Kind::PrefectBlock(block), Some(name)) = (&node.kind, names.get(&node.id)) {
                blocks.entry(block.block_type.clone()).or_default().insert(name.clone());
            }
        }
    }
    Batch::of(pools, records, blocks)
}

/// Refuses a pool name Prefect would refuse, and a pool listed twice.
pub(super) fn check_names(targets: &[Target]) -> Result<()> {
    let mut seen = std::collections::HashSet::new();
    for target in targets {
        check_pool_name(&target.request.name)?;
        if !seen.insert(target.request.name.as_str()) {
            return Err(Error::usage(format!("work pool '{}'", target.request.name), "is listed twice").fix("list each pool once"));
        }
    }
    Ok(())
}

/// Each pool's resolution, or an error naming every pool that failed and why: with several
/// pools, one pool's missing cloud credentials must not read as the others' failure.
fn per_pool(targets: &[Target], resolved: Vec<Result<PoolPlan>>) -> Result<Vec<PoolPlan>> {
    if targets.len() == 1 {
        return resolved.into_iter().collect();
    }
    let failed: Vec<String> = targets
        .iter()
        .zip(&resolved)
        .filter_map(|(target, result)| result.as_ref().err().map(|e| (target, e)))
        .map(|(target, error)| format!("work pool '{}': {error}", target.request.name).replace('\n', "\n    "))
        .collect();
    if failed.is_empty() {
        return Ok(resolved.into_iter().map(|r| r.expect("no failure")).collect());
    }
    let fine: Vec<String> = targets.iter().zip(&resolved).filter(|(_, r)| r.is_ok()).map(|(t, _)| format!("'{}'", t.request.name)).collect();
    let mut cause = format!("{} of {} pools cannot be planned; nothing was written:\n  - {}", failed.len(), targets.len(), failed.join("\n  - "));
    if !fine.is_empty() {
        cause.push_str(&format!("\n  the other pools ({}) are fine", fine.join(", ")));
    }
    Err(Error::usage("pools", cause).fix("fix each pool's problem above (or plan the others on their own), then run again"))
}
