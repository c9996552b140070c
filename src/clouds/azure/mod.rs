//! Azure, for `azure-container-instance:push` pools and their hybrid twin: the subscription,
//! location and cloud as the Azure CLI resolves them, tokens through `azure_identity`, ARM and
//! Microsoft Graph REST of our own, and the node kinds of an ACI pool.
//!
//! Ownership: ARM resources carry pushpool's tags; Entra ID applications and service
//! principals carry them as `key=value` tags; role assignments are pushpool's when their
//! principal is.

mod api;
pub mod auth;
pub mod cli;
mod context;
mod entra;
pub mod names;
mod registry;
mod resources;
mod role_assignment;
mod secret;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use context::{AzureContext, MARKING, subscriptions_in};
use resources::{TaggedKind, TaggedResource};
pub use secret::LIMIT as SECRETS_PER_APPLICATION;

use crate::blueprint::{Blueprint, Kind, NodeSpec};
use crate::engine::NodeRef;
use crate::error::{Error, Result};
use crate::minted::MintedSecret;
use crate::prefect::context::PrefectContext;
use crate::secret::Secret;

/// Builds the Azure node of `spec`, returning its display name and implementation.
pub fn build(
    spec: &NodeSpec,
    blueprint: &Blueprint,
    names: &BTreeMap<String, String>,
    azure: &Arc<AzureContext>,
    prefect: &Arc<PrefectContext>,
) -> Result<(String, NodeRef)> {
    let name_of = |id: &str| names.get(id).cloned().ok_or_else(|| Error::usage(format!("blueprint node '{}'", spec.id), format!("node '{id}' has no name")));
    let azure = azure.clone();
    let node: (String, NodeRef) = match &spec.kind {
        Kind::AzureResourceGroup(_) => {
            let name = name_of(&spec.id)?;
            (name.clone(), Arc::new(TaggedResource { azure, name, kind: TaggedKind::ResourceGroup }))
        }
        Kind::AzureIdentity(settings) => {
            let (name, resource_group) = (name_of(&spec.id)?, name_of(settings.resource_group.as_str())?);
            (name.clone(), Arc::new(TaggedResource { azure, name, kind: TaggedKind::Identity { resource_group } }))
        }
        Kind::AzureContainerRegistry(settings) => {
            let resource_group = name_of(settings.resource_group.as_str())?;
            let in_use_with = settings.in_use_with.iter().map(|id| name_of(id.as_str())).collect::<Result<_>>()?;
            let shown = format!("tagged for pool '{}'", azure.pool);
            (shown, Arc::new(registry::Registry { azure, resource_group, in_use_with }))
        }
        Kind::AzureApplication(_) => {
            let name = name_of(&spec.id)?;
            (name.clone(), Arc::new(entra::Application { azure, name }))
        }
        Kind::AzureServicePrincipal(settings) => {
            let application = name_of(settings.application.as_str())?;
            let node = entra::ServicePrincipal { azure, application_node: settings.application.as_str().to_owned(), application: application.clone() };
            (application, Arc::new(node))
        }
        Kind::AzureClientSecret(settings) => {
            let application = name_of(settings.application.as_str())?;
            let minter = secret::ClientSecrets { azure, application: application.clone() };
            let owner = settings.application.as_str();
            let shown = format!("{application} (valid {} days)", secret::LIFETIME_DAYS);
            (shown, Arc::new(MintedSecret::for_block(minter, prefect.clone(), blueprint, names, &spec.id, settings.block.as_str(), owner)?))
        }
        Kind::AzureRoleAssignment(settings) => {
            let role_id = crate::policies::azure_role(&settings.role)?;
            let node = role_assignment::RoleAssignment {
                azure,
                role: settings.role.clone(),
                role_id,
                scope_node: settings.scope.as_str().to_owned(),
                principal_node: settings.principal.as_str().to_owned(),
            };
            (format!("{} on {} for {}", settings.role, settings.scope.as_str(), settings.principal.as_str()), Arc::new(node))
        }
        other => return Err(Error::usage(format!("node '{}'", spec.id), format!("{} is not an Azure kind", other.name()))),
    };
    Ok(node)
}

/// Docker's credentials for `registry` (a login server): an ACR refresh token from the
/// registry's token exchange for the run's ARM token, what `az acr login` does. The user
/// name is the one ACR expects with such a token.
pub async fn registry_credentials(azure: &AzureContext, registry: &str) -> Result<(String, Secret)> {
    let what = format!("token exchange of registry {registry}");
    let url = match crate::prefect::settings::Env::var(&crate::prefect::settings::ProcessEnv, "PUSHPOOL_AZURE_ACR_EXCHANGE_URL") {
        Some(template) => template.replace("{registry}", registry),
        None => format!("https://{registry}/oauth2/exchange"),
    };
    let fields = [("grant_type", "access_token"), ("service", registry), ("tenant", azure.tenant.as_str()), ("access_token", azure.arm_token.expose())];
    let (status, body) = api::post_form(&url, &fields, &what).await?;
    match body["refresh_token"].as_str() {
        Some(token) if status.is_success() => Ok(("00000000-0000-0000-0000-000000000000".to_owned(), Secret::new(token))),
        _ => {
            Err(Error::remote(what, format!("refused ({status})")).fix(format!("log in by hand: `az acr login --name {}`", registry.split('.').next().unwrap_or(registry))))
        }
    }
}
