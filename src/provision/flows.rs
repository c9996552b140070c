//! The flows the commands run: plan and apply targets (`work-pool create`, `provision-infra`,
//! `plan`, `apply --file`), and apply a saved plan (`apply FILE`).

use std::path::Path;
use std::time::Duration;

use super::{Outcome, RunOptions, Session, Target};
use crate::clouds::Scope;
use crate::document::PlanDocument;
use crate::engine::{self, Plan};
use crate::error::{Error, ErrorKind, Result};
use crate::request::{PoolMode, PoolRequest};
use crate::ui::{Console, Format};

/// Plans `targets`, shows the plan, and unless it is a dry run, confirms and applies it.
pub async fn provision(targets: Vec<Target>, options: &RunOptions, console: &Console) -> Result<Outcome> {
    if options.output != Format::Text && !options.dry_run {
        return Err(Error::usage(format!("--output {}", options.output.as_str()), "prints a plan for review, not an apply's progress")
            .fix("add --dry-run (or use `pushpool plan`), or leave --output out"));
    }
    let session = Session::open(targets, options.provision_infra).await?;
    session.notes(console);
    let plan = session.plan().await?;
    show_and_apply(&session, &plan, options, "Proceed with infrastructure provisioning?", console).await
}

/// Shows `plan`; unless nothing changes or it is a dry run, asks `question` (or takes
/// `--yes`) and applies it.
pub(super) async fn show_and_apply(session: &Session, plan: &Plan, options: &RunOptions, question: &str, console: &Console) -> Result<Outcome> {
    show(session, plan, options, console)?;
    if plan.is_empty() {
        return Ok(Outcome::NoChanges);
    }
    if options.dry_run {
        return Ok(Outcome::Planned);
    }
    confirm(options.yes, question, console)?;
    session.apply(plan, console).await?;
    Ok(Outcome::Applied)
}

/// Applies a saved plan: refuses one older than `max_age`, re-observes everything and refuses,
/// naming what changed, when the live state or the target is no longer what the plan saw. A
/// reviewed plan is not asked about again.
pub async fn apply_saved(path: &Path, max_age: Duration, console: &Console) -> Result<Outcome> {
    let saved = PlanDocument::load(path, max_age)?;
    let targets = saved
        .pools
        .iter()
        .map(|pool| {
            let mode = PoolMode::parse(&pool.mode).ok_or_else(|| Error::usage(format!("plan file {}", path.display()), format!("unknown mode '{}'", pool.mode)))?;
            let mut request = PoolRequest::new(&pool.name, &pool.pool_type, mode);
            request.paused = pool.paused;
            request.set_as_default = pool.set_as_default;
            request.base_job_template = pool.base_job_template.clone();
            request.add_addons(pool.addons.iter().cloned());
            request.options = pool.options.clone();
            Ok(Target {
                request,
                names: pool.names.clone(),
                scope: Scope { region: pool.region.clone(), project: pool.project.clone(), subscription: pool.subscription.clone(), profile: pool.profile.clone() },
            })
        })
        .collect::<Result<Vec<_>>>()?;
    if targets.iter().any(|t| t.request.mode == PoolMode::Deprovision) {
        return Err(Error::usage(format!("plan file {}", path.display()), "is a teardown plan, which `apply` does not take")
            .fix("tear down with `pushpool work-pool deprovision NAME`: it plans against what exists now and asks first"));
    }
    let provision_infra = saved.changes.iter().any(|c| !c.kind.starts_with("prefect."));
    let session = Session::open(targets, provision_infra).await?;
    session.notes(console);
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
        console.line("Nothing to change: the saved plan has no change left to apply.")?;
        return Ok(Outcome::NoChanges);
    }
    session.apply(&plan, console).await?;
    Ok(Outcome::Applied)
}

/// Prints the plan as asked, and saves it when asked.
fn show(session: &Session, plan: &Plan, options: &RunOptions, console: &Console) -> Result<()> {
    // One document for the file and stdout: made twice, they could differ in `created_at`.
    let document = session.document(plan);
    if let Some(out) = &options.out {
        document.save(out)?;
    }
    match options.output {
        Format::Text if plan.is_empty() => {
            let pools: Vec<String> = session.pools.iter().map(|p| format!("'{}'", p.request.name)).collect();
            let pools = pools.join(", ");
            match plan.goal {
                engine::Goal::Provision => console.line(&format!("Nothing to change: work pool {pools} and its infrastructure are up to date.")),
                engine::Goal::Teardown => console.raw(&crate::ui::render_nothing_left(&pools, plan)),
            }
        }
        Format::Text => {
            console.plan(&session.header(), plan)?;
            match options.dry_run {
                true => console.line("Dry run: nothing was changed."),
                false => Ok(()),
            }
        }
        Format::Json => console.line(document.to_json().trim_end()),
        Format::Markdown => console.markdown(&session.header(), plan),
    }
}

/// Asks `question` unless `yes`; a run without a terminal to ask on stops, saying what to add.
fn confirm(yes: bool, question: &str, console: &Console) -> Result<()> {
    if yes {
        return Ok(());
    }
    if !console.interactive() {
        return Err(Error::usage("confirmation", "this run is not interactive and nothing was changed")
            .fix("review the plan above and add --yes to apply it")
            .kind(ErrorKind::NotConfirmed));
    }
    if console.confirm(question)? { Ok(()) } else { Err(Error::usage("confirmation", "declined; nothing was changed").kind(ErrorKind::NotConfirmed)) }
}
