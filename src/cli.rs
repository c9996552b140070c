//! The command line, mirroring `prefect work-pool` so that Prefect users already know it,
//! with Terraform's `plan` and `apply` for reviewed changes.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::clouds::Scope;
use crate::document::check_out_path;
use crate::error::{Error, Result};
use crate::provision::check::{Spelling, TargetCheck};
use crate::provision::{self, RunOptions, Target, TeardownOptions, read_pools_file};
use crate::request::{PoolMode, PoolRequest, read_base_job_template};
use crate::ui::{ColorChoice, Console, Format};

/// Get a Prefect push work pool ready to run flows: a reviewable plan, safe re-runs,
/// concurrent apply.
///
/// The Prefect API comes from PREFECT_API_URL / PREFECT_API_KEY or the active profile of
/// $PREFECT_HOME/profiles.toml. A run connects only to the clouds its pool types need: AWS
/// credentials and region from the standard AWS chain (AWS_ENDPOINT_URL honoured), the Modal
/// token from MODAL_TOKEN_ID/MODAL_TOKEN_SECRET or ~/.modal.toml, the Coiled token from
/// DASK_COILED__TOKEN or the dask configuration.
#[derive(Debug, Parser)]
#[command(name = "pushpool", version, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
    /// When to colour output; a non-empty NO_COLOR turns `auto` off.
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value = "auto")]
    pub color: ColorChoice,
    /// At most N requests in flight at once per service endpoint (AWS IAM, EC2 of a region,
    /// the Prefect API...), as Terraform's -parallelism: reads stay concurrent, and a pools file
    /// of a hundred pools does not get the account throttled.
    #[arg(long, global = true, value_name = "N", default_value_t = crate::parallelism::DEFAULT, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=1000))]
    pub parallelism: usize,
}

/// The top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, provision and tear down work pools.
    #[command(name = "work-pool", subcommand)]
    WorkPool(WorkPoolCommand),
    /// Show what provisioning would change, for one pool or a pools file, without any write.
    ///
    /// Exit codes with --detailed-exitcode: 0 nothing to change, 2 changes pending, 1 error.
    Plan(PlanArgs),
    /// Apply a saved plan exactly (refused if what exists changed since), or a pools file.
    Apply(ApplyArgs),
    /// Print the shell completion script for SHELL to stdout.
    #[command(long_about = COMPLETIONS_HELP)]
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: Shell,
    },
}

/// How to install each shell's script, shown by `pushpool completions --help`.
const COMPLETIONS_HELP: &str = "Print the shell completion script for SHELL to stdout.

Install it where the shell looks for completions, then open a new shell:
  bash:        pushpool completions bash > ~/.local/share/bash-completion/completions/pushpool
  zsh:         pushpool completions zsh > ~/.zfunc/_pushpool
               (with `fpath+=~/.zfunc; autoload -Uz compinit; compinit` in ~/.zshrc)
  fish:        pushpool completions fish > ~/.config/fish/completions/pushpool.fish
  PowerShell:  pushpool completions powershell >> $PROFILE";

/// `pushpool work-pool ...`
#[derive(Debug, Subcommand)]
pub enum WorkPoolCommand {
    /// Create a work pool, and with --provision-infra the infrastructure it needs.
    Create {
        /// The work pool's name.
        name: String,
        /// The pool type: ecs:push, cloud-run:push, cloud-run-v2:push,
        /// azure-container-instance:push, modal:push or coiled:push; for a self-hosted server,
        /// where push pools never run, ecs, cloud-run, cloud-run-v2 or azure-container-instance
        /// with a worker.
        #[arg(long = "type", value_name = "TYPE")]
        pool_type: String,
        /// Build the cloud resources the pool needs and fill its job variable defaults.
        #[arg(long)]
        provision_infra: bool,
        /// Update the pool if it exists and differs (its template is reset to the type's
        /// default, or to --base-job-template).
        #[arg(long)]
        overwrite: bool,
        /// Start the pool from this base job template (JSON) instead of the type's default;
        /// the provisioned defaults are filled into it.
        #[arg(long, value_name = "FILE")]
        base_job_template: Option<PathBuf>,
        /// Create the pool paused.
        #[arg(long)]
        paused: bool,
        /// Make the pool the default work pool of the active Prefect profile.
        #[arg(long)]
        set_as_default: bool,
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
    /// Delete a work pool and what pushpool built for it, in reverse dependency order.
    ///
    /// Only resources with pushpool's ownership tag (managed-by=pushpool) are deleted; those
    /// another pool or block still names are kept, and the plan says why.
    Deprovision {
        /// The work pool's name.
        name: String,
        /// The pool's type, needed only when the pool itself is already gone and pushpool
        /// knows several types.
        #[arg(long = "type", value_name = "TYPE")]
        pool_type: Option<String>,
        /// Keep the work pool; reset the job variable defaults that name deleted resources.
        #[arg(long)]
        keep_pool: bool,
        /// Delete the image repository even when it holds images.
        #[arg(long)]
        force: bool,
        /// Delete without asking for confirmation (needed when not run from a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Show the teardown plan and delete nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        naming: Naming,
        /// How to print the plan (json and markdown with --dry-run only).
        #[arg(long, value_enum, default_value = "text")]
        output: Format,
        /// Exit 2 when something is left to delete, 0 when nothing is (1 stays an error).
        #[arg(long)]
        detailed_exitcode: bool,
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
    #[command(flatten)]
    pub naming: Naming,
    #[command(flatten)]
    pub report: Report,
}

/// How a plan is shown and saved.
#[derive(Debug, Args)]
pub struct Report {
    /// How to print the plan (json and markdown with a dry run or `plan` only).
    #[arg(long, value_enum, default_value = "text")]
    pub output: Format,
    /// Save the plan as JSON to FILE, for `pushpool apply FILE`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when changes are pending, 0 when there are none (1 stays an error).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

impl Report {
    /// Checks `--out` before anything is read: a plan that cannot be saved is found at once,
    /// not after every cloud read.
    fn check_out(&self) -> Result<()> {
        self.out.as_deref().map_or(Ok(()), check_out_path)
    }
}

/// Resource names and region of a pool given on the command line.
#[derive(Debug, Args)]
pub struct Naming {
    /// Name a resource: ID=NAME, repeatable. IDs for ecs:push: execution_role, user, policy,
    /// credentials, cluster, vpc, internet_gateway, subnets, route_table, security_group,
    /// repository.
    #[arg(long = "set", value_name = "ID=NAME")]
    pub names: Vec<String>,
    /// The region (--location for Azure), instead of the cloud's configured one (the AWS
    /// credential chain's; gcloud's run/region, else us-central1; the Azure CLI's default
    /// location, else eastus).
    #[arg(long, visible_alias = "location")]
    pub region: Option<String>,
    /// The Google Cloud project (Cloud Run pools), instead of gcloud's core/project.
    #[arg(long)]
    pub project: Option<String>,
    /// The Azure subscription, id or name (ACI pools), instead of the Azure CLI's default one.
    #[arg(long)]
    pub subscription: Option<String>,
    /// The AWS profile (AWS pools), resolved as the AWS CLI does (AWS_CONFIG_FILE: keys,
    /// role_arn, SSO, credential_process); it wins over AWS_ACCESS_KEY_ID. Remembered in the
    /// pool's record: later runs of the pool use it without the flag.
    #[arg(long)]
    pub profile: Option<String>,
    /// Where flow images live, for a pool type without a registry of its own: `ecr` (modal:push)
    /// builds a private ECR repository, a pull-only key and the Modal Secret holding it.
    /// Remembered: later runs of the pool build it without the flag.
    #[arg(long, value_name = "REGISTRY")]
    pub image_registry: Option<String>,
    /// Run the pool's worker as an ECS service with a task role (hybrid `ecs` pools, for a
    /// self-hosted Prefect server). Remembered, like --image-registry.
    #[arg(long)]
    pub worker: bool,
    /// The worker's image, instead of prefecthq/prefect:3-latest (prefect-aws is installed at
    /// start unless the image has it).
    #[arg(long, value_name = "IMAGE")]
    pub worker_image: Option<String>,
    /// The Prefect API URL the worker uses, when the tasks reach the server under another name
    /// than this machine does.
    #[arg(long, value_name = "URL")]
    pub worker_api_url: Option<String>,
}

impl Naming {
    fn names(&self) -> Result<BTreeMap<String, String>> {
        self.names
            .iter()
            .map(|pair| match pair.split_once('=') {
                Some((id, name)) if !id.is_empty() && !name.is_empty() => Ok((id.to_owned(), name.to_owned())),
                _ => Err(Error::usage(format!("--set {pair}"), "is not ID=NAME").fix("e.g. --set cluster=team-cluster")),
            })
            .collect()
    }

    /// The target of a run that provisions infrastructure when `provisioning`, checked before
    /// any call.
    fn target(&self, request: PoolRequest, provisioning: bool) -> Result<Target> {
        let request = request.with_image_registry(self.image_registry.as_deref()).with_worker(self.worker, self.worker_image.as_deref(), self.worker_api_url.as_deref());
        let target = Target {
            request,
            names: self.names()?,
            scope: Scope { region: self.region.clone(), project: self.project.clone(), subscription: self.subscription.clone(), profile: self.profile.clone() },
        };
        TargetCheck::provisioning(provisioning).check(&target, Spelling::Flag)?;
        Ok(target)
    }
}

/// `pushpool plan ...`
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// The work pool's name (or --file).
    #[arg(required_unless_present = "file", requires = "pool_type")]
    pub name: Option<String>,
    /// The pool type.
    #[arg(long = "type", value_name = "TYPE")]
    pub pool_type: Option<String>,
    /// Plan every pool of a pools file (see the README for its format).
    #[arg(long, value_name = "POOLS_TOML", conflicts_with_all = ["name", "pool_type", "names", "region", "project", "subscription", "profile", "image_registry", "worker", "worker_image", "worker_api_url"])]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub naming: Naming,
    #[command(flatten)]
    pub report: Report,
}

/// `pushpool apply ...`
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A plan saved with `pushpool plan --out FILE`.
    #[arg(required_unless_present = "file", conflicts_with = "file")]
    pub plan_file: Option<PathBuf>,
    /// Apply every pool of a pools file.
    #[arg(long, value_name = "POOLS_TOML")]
    pub file: Option<PathBuf>,
    /// Apply a pools file without asking for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Refuse a saved plan older than this ("24h", "90m", "2d").
    #[arg(long, value_name = "DURATION", default_value = "24h", value_parser = parse_duration, conflicts_with = "file")]
    pub max_age: Duration,
}

/// A duration as people write it ("24h", "90m").
fn parse_duration(text: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 24h, 90m, 2d)"))
}

impl Command {
    /// Runs the command and returns the exit code of a success.
    pub async fn run(self, console: &Console) -> Result<u8> {
        match self {
            Command::WorkPool(WorkPoolCommand::Create { name, pool_type, provision_infra, overwrite, base_job_template, paused, set_as_default, run }) => {
                run.report.check_out()?;
                let mut request = PoolRequest::new(name, pool_type, PoolMode::Create { overwrite });
                request.base_job_template = base_job_template.as_deref().map(read_base_job_template).transpose()?;
                request.paused = paused;
                request.set_as_default = set_as_default;
                let target = run.naming.target(request, provision_infra)?;
                provision_one(vec![target], provision_infra, run, console).await
            }
            Command::WorkPool(WorkPoolCommand::ProvisionInfra { name, run }) => {
                run.report.check_out()?;
                let target = run.naming.target(PoolRequest::new(name, "", PoolMode::ProvisionInfra), true)?;
                provision_one(vec![target], true, run, console).await
            }
            Command::WorkPool(WorkPoolCommand::Deprovision { name, pool_type, keep_pool, force, yes, dry_run, naming, output, detailed_exitcode }) => {
                let target = naming.target(PoolRequest::new(name, pool_type.unwrap_or_default(), PoolMode::Deprovision), true)?;
                let run = RunOptions { provision_infra: true, dry_run, yes, output, out: None };
                let options = TeardownOptions { run, keep_pool, force };
                Ok(provision::deprovision(target, &options, console).await?.exit_code(detailed_exitcode))
            }
            Command::Plan(PlanArgs { name, pool_type, file, naming, report }) => {
                report.check_out()?;
                let targets = match (file, name, pool_type) {
                    (Some(file), ..) => read_pools_file(&file)?,
                    (None, Some(name), Some(pool_type)) => vec![naming.target(PoolRequest::new(name, pool_type, PoolMode::Ensure), true)?],
                    _ => return Err(Error::usage("pushpool plan", "needs a pool name and --type, or --file")),
                };
                let options = RunOptions { provision_infra: true, dry_run: true, yes: false, output: report.output, out: report.out };
                Ok(provision::provision(targets, &options, console).await?.exit_code(report.detailed_exitcode))
            }
            Command::Apply(ApplyArgs { plan_file, file, yes, max_age }) => {
                let outcome = match (plan_file, file) {
                    (Some(plan), None) => provision::apply_saved(&plan, max_age, console).await?,
                    (None, Some(file)) => {
                        let options = RunOptions { provision_infra: true, dry_run: false, yes, output: Format::Text, out: None };
                        provision::provision(read_pools_file(&file)?, &options, console).await?
                    }
                    _ => return Err(Error::usage("pushpool apply", "needs a plan file or --file")),
                };
                Ok(outcome.exit_code(false))
            }
            Command::Completions { shell } => {
                console.raw(&completion_script(shell))?;
                Ok(0)
            }
        }
    }
}

/// The completion script of `shell` for pushpool's whole command line.
pub fn completion_script(shell: Shell) -> String {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "pushpool", &mut script);
    String::from_utf8(script).expect("clap_complete writes UTF-8")
}

async fn provision_one(targets: Vec<Target>, provision_infra: bool, run: RunArgs, console: &Console) -> Result<u8> {
    let options = RunOptions { provision_infra, dry_run: run.dry_run, yes: run.yes, output: run.report.output, out: run.report.out };
    Ok(provision::provision(targets, &options, console).await?.exit_code(run.report.detailed_exitcode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_scripts_know_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh] {
            let script = completion_script(shell);
            for word in ["work-pool", "provision-infra", "deprovision"] {
                assert!(script.contains(word), "{shell} script lacks {word}");
            }
        }
    }

    #[test]
    fn create_help_names_every_type_pushpool_provisions() {
        let mut command = Cli::command();
        let help = command.find_subcommand_mut("work-pool").and_then(|c| c.find_subcommand_mut("create")).expect("the subcommand exists").render_long_help().to_string();
        let words: Vec<&str> = help.split(|c: char| !(c.is_ascii_alphanumeric() || c == ':' || c == '-')).collect();
        for pool_type in crate::blueprint::Blueprint::supported_types() {
            assert!(words.contains(&pool_type.as_str()), "{pool_type} missing from:\n{help}");
        }
    }

    #[test]
    fn completions_help_says_how_to_install() {
        let help = Cli::command().find_subcommand_mut("completions").expect("the subcommand exists").render_long_help().to_string();
        assert!(help.contains("pushpool completions zsh > ~/.zfunc/_pushpool"), "{help}");
    }
}
