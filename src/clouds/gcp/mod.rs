//! Google Cloud, for `cloud-run:push` and `cloud-run-v2:push` pools and their hybrid twins: the
//! project and region as gcloud resolves them, the token from Application Default Credentials
//! or gcloud, the REST calls, and the node kinds of a Cloud Run pool.
//!
//! Ownership: the repository carries pushpool's labels; a service account takes no labels, so
//! its description records the marks ([`service_account::marks_of`]); project role bindings
//! are pushpool's when their service account is.

mod api;
pub mod auth;
pub mod config;
mod context;
mod keys;
pub mod names;
mod project_roles;
mod repository;
mod service_account;
mod services;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use context::{GcpContext, MARKING, projects_in};
pub use keys::LIMIT as KEYS_PER_ACCOUNT;

use crate::blueprint::{Blueprint, Kind, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::minted::MintedSecret;
use crate::prefect::context::PrefectContext;

/// Builds the GCP node of `spec`, returning its display name and implementation.
pub fn build(spec: &NodeSpec, blueprint: &Blueprint, names: &BTreeMap<String, String>, gcp: &Arc<GcpContext>, prefect: &Arc<PrefectContext>) -> Result<(String, NodeRef)> {
    let name_of = |id: &str| names.get(id).cloned().ok_or_else(|| Error::usage(format!("blueprint node '{}'", spec.id), format!("node '{id}' has no name")));
    let gcp = gcp.clone();
    let node: (String, NodeRef) = match &spec.kind {
        Kind::GcpServices(settings) => {
            // Named by the APIs' short names: "run, artifactregistry".
            let name = settings.services.iter().map(|s| s.trim_end_matches(".googleapis.com")).collect::<Vec<_>>().join(", ");
            (name, Arc::new(services::Services { gcp, services: settings.services.clone() }))
        }
        Kind::GcpArtifactRepository(settings) => {
            let name = name_of(&spec.id)?;
            // Other pools name a service account by its email (`service_account_name`).
            let identifier = |id: &str| match blueprint.node(id).map(|n| &n.kind) {
                Some(Kind::GcpServiceAccount(_)) => name_of(id).map(|account| service_account::email(&gcp, &account)),
                _ => name_of(id),
            };
            let in_use_with = settings.in_use_with.iter().map(|id| identifier(id.as_str())).collect::<Result<_>>()?;
            (name.clone(), Arc::new(repository::Repository { gcp, name, in_use_with }))
        }
        Kind::GcpServiceAccount(settings) => {
            let name = name_of(&spec.id)?;
            (name.clone(), Arc::new(service_account::ServiceAccount { gcp, name, display_name: settings.display_name.clone() }))
        }
        Kind::GcpProjectRoles(settings) => {
            let account = name_of(settings.service_account.as_str())?;
            let roles = crate::policies::roles("gcp", &settings.roles)?;
            let node = project_roles::ProjectRoles { gcp, account: account.clone(), account_node: settings.service_account.as_str().to_owned(), roles };
            (account, Arc::new(node))
        }
        Kind::GcpServiceAccountKey(key) => {
            let account = name_of(key.service_account.as_str())?;
            let minter = keys::ServiceAccountKeys { gcp, account: account.clone() };
            let owner = key.service_account.as_str();
            (account, Arc::new(MintedSecret::for_block(minter, prefect.clone(), blueprint, names, &spec.id, key.block.as_str(), owner)?))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("{} is not a GCP kind", other.name()))),
    };
    Ok(node)
}
