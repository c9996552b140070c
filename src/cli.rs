//! The command line, mirroring `prefect work-pool` so that Prefect users already know it.

use std::collections::BTreeMap;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::provision::{Options, PoolMode, PoolRequest};

/// Get a Prefect push work pool ready to run flows: a reviewable plan, safe re-runs,
/// concurrent apply.
///
/// The Prefect API comes from PREFECT_API_URL / PREFECT_API_KEY or the active profile of
/// $PREFECT_HOME/profiles.toml; AWS credentials and region from the standard AWS chain
/// (AWS_ENDPOINT_URL honoured).
#[derive(Debug, Parser)]
#[command(name = "pushpool", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create and provision work pools.
    #[command(name = "work-pool", subcommand)]
    WorkPool(WorkPoolCommand),
}

/// `pushpool work-pool ...`
#[derive(Debug, Subcommand)]
pub enum WorkPoolCommand {
    /// Create a work pool, and with --provision-infra the infrastructure it needs.
    Create {
        /// The work pool's name.
        name: String,
        /// The pool type: ecs:push, or ecs for a self-hosted server with an ECS worker.
        #[arg(long = "type", value_name = "TYPE")]
        pool_type: String,
        /// Build the cloud resources the pool needs and fill its job variable defaults.
        #[arg(long)]
        provision_infra: bool,
        /// Update the pool if it exists and differs (its template is reset to the type's default).
        #[arg(long)]
        overwrite: bool,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Provision the infrastructure of an existing work pool and fill its job variable defaults.
    ProvisionInfra {
        /// The work pool's name.
        name: String,
        #[command(flatten)]
        run: RunArgs,
    },
}

/// Flags every provisioning command takes.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Apply without asking for confirmation (needed when not run from a terminal).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Show the plan and change nothing: no cloud, Prefect, profile or Docker write.
    #[arg(long)]
    pub dry_run: bool,
    /// Name a resource: ID=NAME, repeatable. IDs for ecs:push: execution_role, user, policy,
    /// credentials, cluster, vpc, internet_gateway, subnets, route_table, security_group,
    /// repository.
    #[arg(long = "set", value_name = "ID=NAME")]
    pub names: Vec<String>,
}

impl RunArgs {
    fn names(&self) -> Result<BTreeMap<String, String>> {
        self.names
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((id, name)) if !id.is_empty() && !name.is_empty() => Ok((id.to_owned(), name.to_owned())),
                _ => Err(Error::usage(format!("--set {pair}"), "is not ID=NAME").fix("e.g. --set cluster=team-cluster")),
            })
            .collect()
    }
}

impl WorkPoolCommand {
    /// The provisioning options this command asks for.
    pub fn options(self) -> Result<Options> {
        let (request, provision_infra, run) = match self {
            WorkPoolCommand::Create { name, pool_type, provision_infra, overwrite, run } => {
                (PoolRequest { name, pool_type, mode: PoolMode::Create { overwrite } }, provision_infra, run)
            }
            WorkPoolCommand::ProvisionInfra { name, run } => {
                (PoolRequest { name, pool_type: String::new(), mode: PoolMode::ProvisionInfra }, true, run)
            }
        };
        Ok(Options { names: run.names()?, request, provision_infra, dry_run: run.dry_run, yes: run.yes })
    }
}
