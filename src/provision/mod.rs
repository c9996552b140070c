//! One provisioning run, from the request to the final summary: resolve the Prefect API and
//! the cloud account, build the pool type's graph, plan, confirm, apply, log Docker in.

mod graph;
mod request;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use graph::{Systems, build};
pub use request::{PoolMode, PoolRequest, check_block_name, check_pool_name};

use crate::blueprint::Blueprint;
use crate::clouds::aws::AwsContext;
use crate::docker::{self, Login};
use crate::engine::{self, Applied, Graph};
use crate::engine::reference::{Resolved, Secrets, resolve};
use crate::error::{Error, ErrorKind, Result};
use crate::prefect::context::PrefectContext;
use crate::prefect::settings::{ProcessEnv, discover};
use crate::ui::{Console, PlanHeader};

/// Everything a provisioning command asks for.
#[derive(Debug, Clone)]
pub struct Options {
    /// The pool and what to do with it. For `provision-infra` the type is read from the pool.
    pub request: PoolRequest,
    /// Build the cloud resources (else only the pool is created, as with Prefect's CLI).
    pub provision_infra: bool,
    /// Plan only: no write of any kind.
    pub dry_run: bool,
    /// Apply without asking.
    pub yes: bool,
    /// Name overrides, node id → name.
    pub names: BTreeMap<String, String>,
}

/// What a run ended with, for the exit code.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing needed to change.
    NoChanges,
    /// A dry run showed pending changes and wrote nothing.
    Planned,
    /// The plan was applied.
    Applied,
}

/// Runs one provisioning command.
pub async fn run(options: Options, console: &Console) -> Result<Outcome> {
    let mut request = options.request.clone();
    check_pool_name(&request.name)?;
    let prefect = Arc::new(PrefectContext::new(discover(&ProcessEnv)?)?);

    if request.mode == PoolMode::ProvisionInfra {
        request.pool_type = existing_pool_type(&prefect, &request.name).await?;
    }
    let blueprint = blueprint_for(&request.pool_type, options.provision_infra)?;
    if request.pool_type.ends_with(":push") && !prefect.settings.is_cloud() {
        console.note(&format!(
            "push pools run flows only on Prefect Cloud; on a self-hosted server use --type {} with a worker",
            request.pool_type.trim_end_matches(":push")
        ));
    }

    let (checked, aws) = futures::join!(prefect.client.check(), connect(&blueprint, &request.name));
    checked?;
    let aws = aws?;
    let names = blueprint.names(&request.name, &options.names)?;
    let systems = Systems { prefect: prefect.clone(), aws: aws.clone() };
    let graph = build(&blueprint, &request, &names, &systems)?;
    let plan = engine::plan(&graph).await?;

    let header = PlanHeader {
        pool: request.name.clone(),
        pool_type: request.pool_type.clone(),
        prefect: prefect.client.api_url().to_owned(),
        target: aws.as_ref().map(|a| format!("AWS account {}, region {}", a.account_id, a.region)),
    };
    if plan.is_empty() {
        console.line(&format!("Nothing to change: work pool '{}' and its infrastructure are up to date.", request.name));
        return Ok(Outcome::NoChanges);
    }
    console.plan(&header, &plan);
    if options.dry_run {
        console.line("Dry run: nothing was changed.");
        return Ok(Outcome::Planned);
    }
    confirm(&options, console)?;

    let applied = engine::apply(&graph, &plan, &console.progress(&plan)).await;
    if let Some((_, error)) = &applied.failure {
        return Err(mid_apply_error(&graph, &applied, error));
    }
    let registry = blueprint.registry.as_ref().map(|r| (resolved_string(&r.host, &applied), resolved_string(&r.repository, &applied)));
    if let (Some((Some(host), _)), Some(aws)) = (&registry, &aws) {
        docker_login(host, aws, console).await;
    }
    console.applied(&header, &plan, registry.and_then(|(_, repository)| repository).as_deref());
    Ok(Outcome::Applied)
}

/// The type of an existing pool, for `provision-infra`.
async fn existing_pool_type(prefect: &PrefectContext, name: &str) -> Result<String> {
    match prefect.work_pool(name).await? {
        Some(pool) => Ok(pool.pool_type),
        None => Err(Error::usage(format!("work pool '{name}'"), "does not exist")
            .fix(format!("create it with `pushpool work-pool create {name} --type ecs:push --provision-infra`"))),
    }
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

async fn connect(blueprint: &Blueprint, pool: &str) -> Result<Option<Arc<AwsContext>>> {
    match blueprint.cloud.as_str() {
        "aws" => Ok(Some(Arc::new(AwsContext::connect(pool).await?))),
        _ => Ok(None),
    }
}

fn confirm(options: &Options, console: &Console) -> Result<()> {
    if options.yes {
        return Ok(());
    }
    if !console.interactive() {
        return Err(Error::usage("confirmation", "this run is not interactive and nothing was changed")
            .fix("review the plan above and add --yes to apply it")
            .kind(ErrorKind::NotConfirmed));
    }
    if console.confirm("Proceed with infrastructure provisioning?")? {
        Ok(())
    } else {
        Err(Error::usage("confirmation", "declined; nothing was changed").kind(ErrorKind::NotConfirmed))
    }
}

/// The error of a failed apply: what failed, what exists now, and how to resume.
fn mid_apply_error(graph: &Graph, applied: &Applied, error: &Error) -> Error {
    let label = |id: &String| graph.entry(id).map(|e| format!("{} {}", e.info.label, e.info.name)).unwrap_or_else(|| id.clone());
    let done: Vec<String> = applied.written.iter().map(label).collect();
    let skipped: Vec<String> = applied.not_started.iter().map(|i| i.name.clone()).collect();
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

/// A reference resolved against the applied attributes, when it is a known string.
fn resolved_string(reference: &serde_json::Value, applied: &Applied) -> Option<String> {
    match resolve(reference, &applied.attrs, Secrets::Refuse) {
        Ok(Resolved::Known(serde_json::Value::String(value))) => Some(value),
        _ => None,
    }
}

async fn docker_login(registry: &str, aws: &AwsContext, console: &Console) {
    let result = async {
        let (user, password) = aws.docker_credentials().await?;
        docker::login(registry, &user, &password).await
    }
    .await;
    match result {
        Ok(Login::Done) => console.line(&format!("Docker is logged in to {registry}.")),
        Ok(Login::NotInstalled) => console.note(&format!(
            "Docker is not installed, so it was not logged in to {registry}; the rest of the provisioning stands. Later: `aws ecr get-login-password | docker login --username AWS --password-stdin {registry}`"
        )),
        Err(error) => console.note(&format!("{error}\n  the rest of the provisioning stands")),
    }
}
