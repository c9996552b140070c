//! A provisioning run: resolve the Prefect API, each pool's type and the clouds it needs, build
//! one graph for every pool, plan, show the plan, confirm, apply, log Docker in, report.
//!
//! [`Session`] holds what a run resolved; [`provision`], [`apply_saved`] and [`deprovision`]
//! are the flows the commands run (`work-pool create`/`provision-infra`/`plan`/`apply --file`,
//! `apply FILE` and `work-pool deprovision`). The other modules each do one step: [`graph`]
//! joins the pools' blueprints into one graph, `registry` logs Docker in after an apply,
//! `failure` says what a failed apply left, `guides` says what to do next, `resolve` what each pool resolves to before the graph,
//! `pools_file` reads `pools.toml`, [`check`] what a target's flags must fit before any call, `teardown` plans what a deprovision may delete.

pub mod check;
mod failure;
mod flows;
pub mod graph;
mod guides;
mod limits;
mod names;
mod place;
mod pools_file;
mod registry;
mod resolve;
mod session;
mod teardown;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use flows::{apply_saved, provision};
pub use graph::PoolPlan;
pub use pools_file::read_pools_file;
pub use session::Session;
pub use teardown::{TeardownOptions, deprovision};

use crate::clouds::Scope;
use crate::request::PoolRequest;
use crate::ui::Format;

/// One pool a run is asked to provision.
#[derive(Debug, Clone)]
pub struct Target {
    /// The pool, its type and mode (for `provision-infra` the type is read from the pool).
    pub request: PoolRequest,
    /// Resource name overrides, node id → name.
    pub names: BTreeMap<String, String>,
    /// Where its resources go, when not where the clouds' own configuration says.
    pub scope: Scope,
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
