//! The tagged ARM node kinds of an ACI pool, one implementation for both:
//! `azure.resource_group` and `azure.user_assigned_identity`. Each is read by name, created
//! with a PUT of its location and pushpool's tags, and deleted by a teardown only with the tags
//! and when no other pool names it.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use super::context::{AzureContext, tags_of};
use crate::engine::ownership::{decide, owned};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::Result;

/// ARM's api-version of resource groups.
const GROUPS_API: &str = "2021-04-01";
/// ARM's api-version of user-assigned identities.
const IDENTITIES_API: &str = "2023-01-31";

/// Which tagged resource.
pub enum TaggedKind {
    /// The group every resource of the pool lives in.
    ResourceGroup,
    /// The identity container groups pull images as, in `resource_group`.
    Identity {
        /// The resource group's name.
        resource_group: String,
    },
}

/// A tagged ARM resource of one name.
pub struct TaggedResource {
    /// The subscription.
    pub azure: Arc<AzureContext>,
    /// The resource's name.
    pub name: String,
    /// Which resource.
    pub kind: TaggedKind,
}

impl TaggedResource {
    fn path(&self) -> String {
        let subscription = self.azure.subscription();
        match &self.kind {
            TaggedKind::ResourceGroup => format!("subscriptions/{subscription}/resourcegroups/{}?api-version={GROUPS_API}", self.name),
            TaggedKind::Identity { resource_group } => format!(
                "subscriptions/{subscription}/resourceGroups/{resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}?api-version={IDENTITIES_API}",
                self.name
            ),
        }
    }

    fn what(&self) -> String {
        format!("{} {}", self.label(), self.name)
    }

    /// Name and id (a resource group's id is known before it exists), and an identity's
    /// principal and client ids.
    fn attrs(&self, found: Option<&Value>) -> Attrs {
        let mut attrs = Attrs::new().with("name", self.name.as_str());
        if let TaggedKind::ResourceGroup = self.kind {
            attrs.set("id", format!("/subscriptions/{}/resourceGroups/{}", self.azure.subscription(), self.name));
        }
        if let Some(found) = found {
            attrs.set("id", found["id"].as_str().unwrap_or_default());
            for (attr, field) in [("principal_id", "principalId"), ("client_id", "clientId")] {
                if let Some(value) = found["properties"][field].as_str() {
                    attrs.set(attr, value);
                }
            }
        }
        attrs
    }

    /// What other pools name it by: a group by name, an identity by its id.
    fn identifiers(&self, found: &Value) -> Vec<String> {
        let id = found["id"].as_str().unwrap_or_default();
        match self.kind {
            TaggedKind::ResourceGroup => vec![self.name.clone()],
            TaggedKind::Identity { .. } => vec![id.to_owned(), id.to_ascii_lowercase()],
        }
    }
}

impl Node for TaggedResource {
    fn label(&self) -> &'static str {
        match self.kind {
            TaggedKind::ResourceGroup => "resource group",
            TaggedKind::Identity { .. } => "managed identity",
        }
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match self.azure.arm.get(&self.path(), &self.what()).await? {
                Some(found) => Observation::reuse(format!("exists in {}", found["location"].as_str().unwrap_or("?")), self.attrs(Some(&found))),
                None => Observation::create(format!("missing in subscription {}", self.azure.subscription()), self.attrs(None)),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let body = json!({"location": self.azure.location(), "tags": self.azure.tags()});
            let created = self.azure.arm.send(Method::PUT, &self.path(), Some(body), &self.what()).await?;
            Ok(self.attrs(Some(&created)))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(found) = self.azure.arm.get(&self.path(), &self.what()).await? else { return Ok(Observation::gone("does not exist")) };
            let identifiers = self.identifiers(&found);
            let in_use = teardown.in_use(identifiers.iter().map(String::as_str));
            Ok(decide(owned(tags_of(&found)), in_use, self.attrs(Some(&found)), "created by pushpool, used by no other pool"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.azure.arm.delete(&self.path(), &self.what()).await }.boxed()
    }
}
