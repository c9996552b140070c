//! `azure.role_assignment`: a role on a scope (the resource group, the registry) for a
//! principal (the service principal, the identity). Idempotent: an assignment of that role to
//! that principal on that scope, whatever its name, counts as present; a new one gets a
//! deterministic name (a name-based UUID of scope, role and principal), so that a repeated
//! create is the same object; `RoleAssignmentExists` reads as present; the `PrincipalNotFound`
//! that follows a new principal (Entra ID replication) is waited out, with a bound.
//!
//! Assignments take no tags: they are pushpool's when their principal is. A teardown deletes
//! one only when its principal goes.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::error_code;
use super::context::AzureContext;
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;
use crate::retry::{Settling, settle};

/// ARM's api-version of role assignments.
const ASSIGNMENTS_API: &str = "2022-04-01";

/// One role of one principal on one scope.
pub struct RoleAssignment {
    /// The subscription.
    pub azure: Arc<AzureContext>,
    /// The role's name, for messages ("Contributor").
    pub role: String,
    /// The role definition's id (a GUID).
    pub role_id: String,
    /// The node whose `id` attribute is the scope.
    pub scope_node: String,
    /// The node whose `principal_id` attribute is the principal.
    pub principal_node: String,
}

impl RoleAssignment {
    fn what(&self) -> String {
        format!("{} role assignment", self.role)
    }

    fn definition(&self) -> String {
        format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{}", self.azure.subscription(), self.role_id)
    }

    /// The assignment of this role to `principal` on `scope`, if any (by any name).
    async fn find(&self, scope: &str, principal: &str) -> Result<Option<Value>> {
        let filter = utf8_percent_encode(&format!("principalId eq '{principal}'"), NON_ALPHANUMERIC).to_string();
        let path = format!("{}/providers/Microsoft.Authorization/roleAssignments?$filter={filter}&api-version={ASSIGNMENTS_API}", scope.trim_start_matches('/'));
        let assignments = self.azure.arm.list(&path, &self.what()).await?;
        let role = format!("/roledefinitions/{}", self.role_id.to_ascii_lowercase());
        Ok(assignments.into_iter().find(|a| {
            let on_scope = a["properties"]["scope"].as_str().is_none_or(|s| s.eq_ignore_ascii_case(scope));
            on_scope && a["properties"]["roleDefinitionId"].as_str().is_some_and(|d| d.to_ascii_lowercase().ends_with(&role))
        }))
    }

    /// The deterministic name of this role's assignment to `principal` on `scope`.
    fn name(&self, scope: &str, principal: &str) -> String {
        let key = format!("{}|{}|{}", scope.to_ascii_lowercase(), self.role_id, principal.to_ascii_lowercase());
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, key.as_bytes()).to_string()
    }
}

impl Node for RoleAssignment {
    fn label(&self) -> &'static str {
        "role assignment"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (scope, principal) = futures::try_join!(upstream.get(&self.scope_node), upstream.get(&self.principal_node))?;
            let attrs = Attrs::new().with("role", self.role.as_str());
            let (Some(scope_id), Some(principal_id)) = (scope.attrs.str("id"), principal.attrs.str("principal_id")) else {
                return Ok(Observation::create(format!("grants {} on the new {} to the new {}", self.role, self.scope_node, self.principal_node), attrs));
            };
            if scope.action == Action::Create || principal.action == Action::Create {
                return Ok(Observation::create(format!("grants {} to {}", self.role, self.principal_node), attrs));
            }
            Ok(match self.find(scope_id, principal_id).await? {
                Some(found) => Observation::reuse("granted", attrs.with("id", found["id"].as_str().unwrap_or_default())),
                None => Observation::create(format!("grants {} on {} to {}", self.role, self.scope_node, self.principal_node), attrs),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let (scope, principal) = (inputs.str(&self.scope_node, "id")?, inputs.str(&self.principal_node, "principal_id")?);
            let id = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{}", self.name(scope, principal));
            let path = format!("{}?api-version={ASSIGNMENTS_API}", id.trim_start_matches('/'));
            let body = json!({"properties": {"roleDefinitionId": self.definition(), "principalId": principal, "principalType": "ServicePrincipal"}});
            let (path, body, what) = (&path, &body, &self.what());
            let waiting_for = format!("Entra ID to replicate principal {principal} before granting it {}", self.role);
            settle(&waiting_for, move || async move {
                let answer = self.azure.arm.call(Method::PUT, path, Some(body.clone())).await?;
                let refused = || self.azure.arm.refused(&Method::PUT, path, &answer, what);
                match (answer.status, error_code(&answer)) {
                    (status, _) if status.is_success() => Ok(Settling::Done(())),
                    // Granted already, under another name.
                    (StatusCode::CONFLICT, Some("RoleAssignmentExists")) => Ok(Settling::Done(())),
                    (StatusCode::BAD_REQUEST, Some("PrincipalNotFound")) => Ok(Settling::NotYet(refused())),
                    _ => Err(refused()),
                }
            })
            .await?;
            Ok(Attrs::new().with("id", id))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let (scope, principal) = futures::try_join!(upstream.get(&self.scope_node), upstream.get(&self.principal_node))?;
            let (Some(scope_id), Some(principal_id)) = (scope.attrs.str("id"), principal.attrs.str("principal_id")) else {
                return Ok(Observation::gone("its scope or principal does not exist"));
            };
            let Some(found) = self.find(scope_id, principal_id).await? else { return Ok(Observation::gone("not granted")) };
            let attrs = Attrs::new().with("id", found["id"].as_str().unwrap_or_default());
            Ok(match principal.action {
                Action::Delete => Observation::delete("its principal goes", attrs),
                _ => Observation::keep(format!("its principal stays ({})", principal.reason), attrs),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.role, "id")?;
            self.azure.arm.delete(&format!("{}?api-version={ASSIGNMENTS_API}", id.trim_start_matches('/')), &self.what()).await
        }
        .boxed()
    }
}
