//! A provisioning run: resolve the Prefect API and each pool's account, build one graph for
//! every pool, plan, show the plan, confirm, apply, log Docker in, report.
//!
//! [`Session`] holds what a run resolved; [`provision`], [`apply_saved`] and [`deprovision`]
//! are the flows the commands run (`work-pool create`/`provision-infra`/`plan`/`apply --file`,
//! `apply FILE` and `work-pool deprovision`).

mod graph;
mod pools_file;
mod request;
mod teardown;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use graph::{PoolPlan, build};
pub use pools_file::read_pools_file;
pub use request::{PoolMode, PoolRequest, block_name_for, check_block_name, check_pool_name};
pub use teardown::{TeardownOptions, deprovision};

use crate::blueprint::Blueprint;
use crate::clouds::aws::AwsContext;
use crate::docker::{self, Login};
use crate::document::{PlanDocument, PoolDoc, TargetDoc};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::engine::{self, Applied, Graph, Plan};
use crate::error::{Error, ErrorKind, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::lock::{ApplyLock, Markers};
use crate::prefect::settings::{ProcessEnv, discover};
use crate::secret::Secret;
use crate::ui::{Console, Format, PlanHeader};

/// One pool a run is asked to provision.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pool, its type and mode (for `provision-infra` the type is read from the pool).
    pub request: PoolRequest,
    /// Resource name overrides, node id → name.
    pub names: BTreeMap<String, String>,
    /// The AWS region, when not the credential chain's.
    pub region: Option<String>,
}

/// How a run shows its plan and whether it applies it.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Build the cloud resources (else only the pool, as with Prefect's CLI).
    pub provision_infra: bool,
    /// Plan only: no write of any kind.
    pub dry_run: bool,
    /// Apply without asking.
    pub yes: bool,
    /// How the plan is printed.
    pub output: Format,
    /// Where to save the plan as JSON.
    pub out: Option<PathBuf>,
}

/// What a run ended with, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing needed to change.
    NoChanges,
    /// A plan showed pending changes and wrote nothing.
    Planned,
    /// The plan was applied.
    Applied,
}

impl Outcome {
    /// 0, or with `detailed` Terraform's convention: 2 when changes are pending.
    pub fn exit_code(self, detailed: bool) -> u8 {
        match self {
            Outcome::Planned if detailed => 2,
            _ => 0,
        }
    }
}

/// What a run resolved: the Prefect API, each pool with its blueprint and account, the graph,
/// and the apply markers as the run read them.
pub struct Session {
    prefect: Arc<PrefectContext>,
    pools: Vec<PoolPlan>,
    targets: Vec<Target>,
    graph: Graph,
    markers: Markers,
}

impl Session {
    /// Checks the names, resolves the Prefect API and every pool's account (concurrently),
    /// and builds the graph. Fails, before any write, on bad input or unusable credentials.
    pub async fn open(targets: Vec<Target>, provision_infra: bool) -> Result<Self> {
        for (i, target) in targets.iter().enumerate() {
            check_pool_name(&target.request.name)?;
            if targets[..i].iter().any(|t| t.request.name == target.request.name) {
                return Err(Error::usage(format!("work pool '{}'", target.request.name), "is listed twice").fix("list each pool once"));
            }
        }
        let prefect = Arc::new(PrefectContext::new(discover(&ProcessEnv)?)?);
        // No separate API check: every run reads Prefect (the pool, the apply markers)
        // before any write, and a refused key or a server that is down fails those reads
        // with the same clear error. The markers are read beside the pools, before any other
        // resource (see prefect::lock).
        let pools = futures::future::try_join_all(targets.iter().map(|t| resolve_pool(&prefect, t, provision_infra)));
        let (pools, markers) = futures::join!(pools, Markers::read(&prefect.client));
        let (pools, markers) = (pools?, markers?);
        let graph = build(&pools, &prefect)?;
        Ok(Self { prefect, pools, targets, graph, markers })
    }

    /// Tells a self-hosted server's user that push pools run nothing there.
    fn note_push_pools(&self, console: &Console) {
        if self.prefect.settings.is_cloud() {
            return;
        }
        for pool in self.pools.iter().filter(|p| p.request.pool_type.ends_with(":push")) {
            console.note(&format!(
                "push pools run flows only on Prefect Cloud; on a self-hosted server '{}' needs --type {} and a worker",
                pool.request.name,
                pool.request.pool_type.trim_end_matches(":push")
            ));
        }
    }

    /// Observes every node and returns the plan. Reads only.
    pub async fn plan(&self) -> Result<Plan> {
        engine::plan(&self.graph).await
    }

    /// Observes every node for a teardown and returns the plan. Reads only.
    pub async fn plan_teardown(&self, teardown: &engine::Teardown) -> Result<Plan> {
        engine::plan_teardown(&self.graph, teardown).await
    }

    /// What one apply locks: each AWS account it writes to (pools in one account share
    /// resources), and each pool that has no cloud account.
    fn lock_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .pools
            .iter()
            .map(|p| match &p.aws {
                Some(aws) => format!("aws_{}", aws.account_id),
                None => format!("pool_{}", p.request.name),
            })
            .collect();
        keys.sort();
        keys.dedup();
        keys
    }

    /// Who and where the plan is for.
    pub fn header(&self) -> PlanHeader {
        PlanHeader {
            pools: self.pools.iter().map(|p| (p.request.name.clone(), p.request.pool_type.clone())).collect(),
            prefect: self.prefect.client.api_url().to_owned(),
            targets: self.target_docs().iter().map(|t| format!("AWS account {}, region {}", t.account, t.region)).collect(),
        }
    }

    fn target_docs(&self) -> Vec<TargetDoc> {
        let mut targets: Vec<TargetDoc> = self
            .pools
            .iter()
            .filter_map(|p| p.aws.as_ref())
            .map(|aws| TargetDoc { cloud: "aws".into(), account: aws.account_id.clone(), region: aws.region.clone() })
            .collect();
        targets.sort();
        targets.dedup();
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
                region: target.region.clone(),
            })
            .collect();
        PlanDocument::new(self.prefect.client.api_url(), pools, self.target_docs(), plan)
    }

    /// Applies `plan`, logs Docker in to each registry, and prints the report. A failure
    /// names the resource and cause, what was written and what was not started.
    pub async fn apply(&self, plan: &Plan, console: &Console) -> Result<()> {
        let keys = self.lock_keys();
        let lock = ApplyLock::acquire(&self.prefect.client, &keys, &self.markers, &|text| console.note(text)).await?;
        // The registries' login tokens are read while the apply runs: Docker logs in at its end.
        let (applied, tokens) = {
            let progress = console.progress(plan);
            futures::join!(engine::apply(&self.graph, plan, &progress), self.registry_tokens(plan))
        };
        // Whatever was written makes plans made before it stale, a failed apply's too.
        let wrote = !applied.written.is_empty();
        if let Some((_, error)) = &applied.failure {
            // The apply's own error says more than a failure to end it.
            let _ = lock.release(wrote).await;
            return Err(mid_apply_error(&self.graph, &applied, error));
        }
        // Ending the apply and logging Docker in are independent: they run at once.
        let (released, repositories) = futures::join!(lock.release(wrote), self.log_in(plan, &applied, tokens, console));
        released.map_err(|error| {
            let fix = format!(
                "nothing else is needed on this machine: its next run takes the marker over; from another machine, wait an hour or delete {} (`prefect variable unset NAME`)",
                error.what
            );
            Error::remote(error.what, format!("{}\n  everything was applied; only marking the apply done failed", error.cause)).fix(fix)
        })?;
        match plan.goal {
            engine::Goal::Teardown => console.torn_down(plan),
            engine::Goal::Provision => console.applied(&self.header(), plan, &repositories),
        }
        Ok(())
    }

    /// The registry login of each AWS account a provisioning plan pushes images to.
    async fn registry_tokens(&self, plan: &Plan) -> Vec<(String, Result<(String, Secret)>)> {
        if plan.goal == engine::Goal::Teardown {
            return Vec::new();
        }
        let mut accounts: Vec<&Arc<AwsContext>> = Vec::new();
        for aws in self.pools.iter().filter(|p| p.blueprint.registry.is_some()).filter_map(|p| p.aws.as_ref()) {
            if !accounts.iter().any(|a| a.account_id == aws.account_id) {
                accounts.push(aws);
            }
        }
        futures::future::join_all(accounts.into_iter().map(|aws| async move { (aws.account_id.clone(), aws.docker_credentials().await) })).await
    }

    /// After a provisioning apply: logs Docker in to each pool's registry (once per host),
    /// with its account's token from `tokens`, and returns the repositories images go to.
    async fn log_in(&self, plan: &Plan, applied: &Applied, tokens: Vec<(String, Result<(String, Secret)>)>, console: &Console) -> Vec<String> {
        let mut repositories = Vec::new();
        if plan.goal == engine::Goal::Teardown {
            return repositories;
        }
        let mut logged_in = Vec::new();
        for pool in &self.pools {
            let (Some(registry), Some(aws)) = (&pool.blueprint.registry, &pool.aws) else { continue };
            let attrs = applied_attrs_of(&self.graph, applied, &pool.request.name);
            if let Some(host) = resolved_string(&registry.host, &attrs).filter(|h| !logged_in.contains(h)) {
                let token = tokens.iter().find(|(account, _)| *account == aws.account_id).map(|(_, token)| token);
                docker_login(&host, token, console).await;
                logged_in.push(host);
            }
            repositories.extend(resolved_string(&registry.repository, &attrs));
        }
        repositories.dedup();
        repositories
    }
}

/// Reads what a target needs before its graph can be built: the pool's type for
/// `provision-infra`, the blueprint, the names, and the AWS account.
async fn resolve_pool(prefect: &PrefectContext, target: &Target, provision_infra: bool) -> Result<PoolPlan> {
    let mut request = target.request.clone();
    // Whether the pool's type must be read first. The account is then connected to at the
    // same time, as every pool type pushpool provisions is on AWS: one round trip, not two.
    let type_read = matches!(request.mode, PoolMode::ProvisionInfra | PoolMode::Deprovision);
    let pool_type = async {
        match request.mode {
            PoolMode::Deprovision => teardown::pool_type(prefect, &request.name, &request.pool_type).await.map(Some),
            PoolMode::ProvisionInfra => match prefect.work_pool(&request.name).await? {
                Some(pool) => Ok(Some(pool.pool_type)),
                None => Err(Error::usage(format!("work pool '{}'", request.name), "does not exist")
                    .fix(format!("create it with `pushpool work-pool create {} --type ecs:push --provision-infra`", request.name))),
            },
            _ => Ok(None),
        }
    };
    let early_aws = async {
        match type_read && provision_infra {
            true => AwsContext::connect(&request.name, target.region.as_deref()).await.map(Some),
            false => Ok(None),
        }
    };
    let (pool_type, early_aws) = futures::join!(pool_type, early_aws);
    if let Some(pool_type) = pool_type? {
        request.pool_type = pool_type;
    }
    let blueprint = blueprint_for(&request.pool_type, provision_infra)?;
    let names = blueprint.names(&request.name, &target.names)?;
    let aws = match (blueprint.cloud.as_str(), early_aws?) {
        ("aws", Some(aws)) => Some(Arc::new(aws)),
        ("aws", None) => Some(Arc::new(AwsContext::connect(&request.name, target.region.as_deref()).await?)),
        _ => None,
    };
    Ok(PoolPlan { request, blueprint, names, aws })
}

/// The blueprint for `pool_type`; without `--provision-infra`, only its pool node.
fn blueprint_for(pool_type: &str, provision_infra: bool) -> Result<Blueprint> {
    let mut blueprint = Blueprint::for_type(pool_type)?.ok_or_else(|| {
        Error::usage(format!("work pool type '{pool_type}'"), "pushpool cannot provision infrastructure for it")
            .fix(format!("use one of: {}", Blueprint::supported_types().join(", ")))
    })?;
    if !provision_infra {
        blueprint.nodes.retain(|n| n.kind == "prefect.work_pool");
        for node in &mut blueprint.nodes {
            node.after.clear();
            node.params.remove("job_variables");
        }
        blueprint.cloud = String::new();
        blueprint.registry = None;
    }
    Ok(blueprint)
}

/// Plans `targets`, shows the plan, and unless it is a dry run, confirms and applies it.
pub async fn provision(targets: Vec<Target>, options: &RunOptions, console: &Console) -> Result<Outcome> {
    if options.output != Format::Text && !options.dry_run {
        return Err(Error::usage(format!("--output {}", options.output.as_str()), "prints a plan for review, not an apply's progress")
            .fix("add --dry-run (or use `pushpool plan`), or leave --output out"));
    }
    let session = Session::open(targets, options.provision_infra).await?;
    session.note_push_pools(console);
    let plan = session.plan().await?;
    show(&session, &plan, options, console)?;
    if plan.is_empty() {
        return Ok(Outcome::NoChanges);
    }
    if options.dry_run {
        return Ok(Outcome::Planned);
    }
    confirm(options.yes, "Proceed with infrastructure provisioning?", console)?;
    session.apply(&plan, console).await?;
    Ok(Outcome::Applied)
}

/// Applies a saved plan: re-observes everything and refuses, naming what changed, when the
/// live state or the target is no longer what the plan saw. A reviewed plan is not asked
/// about again.
pub async fn apply_saved(path: &Path, console: &Console) -> Result<Outcome> {
    let saved = PlanDocument::load(path)?;
    let targets = saved
        .pools
        .iter()
        .map(|pool| {
            let mode = PoolMode::parse(&pool.mode)
                .ok_or_else(|| Error::usage(format!("plan file {}", path.display()), format!("unknown mode '{}'", pool.mode)))?;
            Ok(Target {
                request: PoolRequest { name: pool.name.clone(), pool_type: pool.pool_type.clone(), mode },
                names: pool.names.clone(),
                region: pool.region.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if targets.iter().any(|t| t.request.mode == PoolMode::Deprovision) {
        return Err(Error::usage(format!("plan file {}", path.display()), "is a teardown plan, which `apply` does not take")
            .fix("tear down with `pushpool work-pool deprovision NAME`: it plans against what exists now and asks first"));
    }
    let provision_infra = saved.changes.iter().any(|c| !c.kind.starts_with("prefect."));
    let session = Session::open(targets, provision_infra).await?;
    session.note_push_pools(console);
    let plan = session.plan().await?;
    let differences = saved.differences(&session.document(&plan));
    if !differences.is_empty() {
        return Err(Error::usage(
            format!("plan file {}", path.display()),
            format!("no longer matches what exists, so nothing was applied:\n  - {}", differences.join("\n  - ")),
        )
        .fix("make and review a new plan (`pushpool plan ... --out FILE`), then apply that"));
    }
    if plan.is_empty() {
        console.line("Nothing to change: the saved plan has no change left to apply.");
        return Ok(Outcome::NoChanges);
    }
    session.apply(&plan, console).await?;
    Ok(Outcome::Applied)
}

fn show(session: &Session, plan: &Plan, options: &RunOptions, console: &Console) -> Result<()> {
    if let Some(out) = &options.out {
        session.document(plan).save(out)?;
    }
    match options.output {
        Format::Text if plan.is_empty() => {
            let pools: Vec<String> = session.pools.iter().map(|p| format!("'{}'", p.request.name)).collect();
            let pools = pools.join(", ");
            match plan.goal {
                engine::Goal::Provision => console.line(&format!("Nothing to change: work pool {pools} and its infrastructure are up to date.")),
                engine::Goal::Teardown => print!("{}", crate::ui::render_nothing_left(&pools, plan)),
            }
        }
        Format::Text => {
            console.plan(&session.header(), plan);
            if options.dry_run {
                console.line("Dry run: nothing was changed.");
            }
        }
        Format::Json => console.line(session.document(plan).to_json().trim_end()),
        Format::Markdown => console.markdown(&session.header(), plan),
    }
    Ok(())
}

fn confirm(yes: bool, question: &str, console: &Console) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !console.interactive() {
        return Err(Error::usage("confirmation", "this run is not interactive and nothing was changed")
            .fix("review the plan above and add --yes to apply it")
            .kind(ErrorKind::NotConfirmed));
    }
    if console.confirm(question)? {
        Ok(())
    } else {
        Err(Error::usage("confirmation", "declined; nothing was changed").kind(ErrorKind::NotConfirmed))
    }
}

/// The error of a failed apply: what failed, what exists now, and how to resume.
fn mid_apply_error(graph: &Graph, applied: &Applied, error: &Error) -> Error {
    let label = |id: &String| graph.entry(id).map(|e| format!("{} {}", e.info.label, e.info.name)).unwrap_or_else(|| id.clone());
    let done: Vec<String> = applied.written.iter().map(label).collect();
    let skipped: Vec<String> = applied.not_started.iter().map(|i| format!("{} {}", i.label, i.name)).collect();
    let mut cause = error.cause.clone();
    cause.push_str(&format!(
        "\n  written before the failure: {}",
        if done.is_empty() { "nothing".to_owned() } else { done.join(", ") }
    ));
    if !skipped.is_empty() {
        cause.push_str(&format!("\n  not started: {}", skipped.join(", ")));
    }
    let resume = "run the same command again: pushpool finds what exists and resumes";
    let fix = match &error.fix {
        Some(fix) => format!("{fix}; then {resume}"),
        None => format!("fix the cause, then {resume}"),
    };
    Error::remote(error.what.clone(), cause).fix(fix)
}

/// The applied attributes of `pool`'s nodes, by their blueprint ids.
fn applied_attrs_of(graph: &Graph, applied: &Applied, pool: &str) -> BTreeMap<String, engine::Attrs> {
    graph
        .entries()
        .iter()
        .filter(|e| e.info.pools.iter().any(|p| p == pool))
        .filter_map(|e| {
            let local = e.info.id.rsplit('/').next().unwrap_or(&e.info.id).to_owned();
            Some((local, applied.attrs.get(&e.info.id)?.clone()))
        })
        .collect()
}

/// A reference resolved against applied attributes, when it is a known string.
fn resolved_string(reference: &serde_json::Value, attrs: &BTreeMap<String, engine::Attrs>) -> Option<String> {
    match resolve(reference, attrs, Secrets::Refuse) {
        Ok(Resolved::Known(serde_json::Value::String(value))) => Some(value),
        _ => None,
    }
}

async fn docker_login(registry: &str, token: Option<&Result<(String, Secret)>>, console: &Console) {
    let result = match token {
        Some(Ok((user, password))) => docker::login(registry, user, password).await,
        Some(Err(error)) => Err(error.clone()),
        None => Err(Error::remote(format!("docker login to {registry}"), "no registry token was read for its account")),
    };
    match result {
        Ok(Login::Done) => console.line(&format!("Docker is logged in to {registry}.")),
        Ok(Login::NotInstalled) => console.note(&format!(
            "Docker is not installed, so it was not logged in to {registry}; the rest of the provisioning stands. Later: `aws ecr get-login-password | docker login --username AWS --password-stdin {registry}`"
        )),
        Err(error) => console.note(&format!("{error}\n  the rest of the provisioning stands")),
    }
}
