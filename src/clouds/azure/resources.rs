//! The ARM node kinds of an ACI pool: `azure.resource_group` and
//! `azure.user_assigned_identity`, tagged as pushpool's; a teardown deletes them only with the
//! tag and when no other pool names them.

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

/// `azure.resource_group`: the group every resource of the pool lives in.
pub struct ResourceGroup {
    /// The subscription.
    pub azure: Arc<AzureContext>,
    /// The group's name.
    pub name: String,
}

impl ResourceGroup {
    fn path(&self) -> String {
        format!("subscriptions/{}/resourcegroups/{}?api-version={GROUPS_API}", self.azure.subscription(), self.name)
    }

    fn what(&self) -> String {
        format!("resource group {}", self.name)
    }

    fn attrs(&self, found: Option<&Value>) -> Attrs {
        let id = format!("/subscriptions/{}/resourceGroups/{}", self.azure.subscription(), self.name);
        let id = found.and_then(|f| f["id"].as_str()).map(str::to_owned).unwrap_or(id);
        Attrs::new().with("name", self.name.as_str()).with("id", id)
    }
}

impl Node for ResourceGroup {
    fn label(&self) -> &'static str {
        "resource group"
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
            let attrs = self.attrs(Some(&found));
            let in_use = teardown.in_use([self.name.as_str()]);
            Ok(decide(owned(tags_of(&found)), in_use, attrs, "created by pushpool, used by no other pool; everything left in it goes too"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.azure.arm.delete(&self.path(), &self.what()).await }.boxed()
    }
}

/// `azure.user_assigned_identity`: the identity container groups pull images as.
pub struct Identity {
    /// The subscription.
    pub azure: Arc<AzureContext>,
    /// The identity's name.
    pub name: String,
    /// The resource group's name.
    pub resource_group: String,
}

impl Identity {
    fn path(&self) -> String {
        format!(
            "subscriptions/{}/resourceGroups/{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{}?api-version={IDENTITIES_API}",
            self.azure.subscription(),
            self.resource_group,
            self.name
        )
    }

    fn what(&self) -> String {
        format!("managed identity {}", self.name)
    }

    fn attrs(&self, found: Option<&Value>) -> Attrs {
        let mut attrs = Attrs::new().with("name", self.name.as_str());
        if let Some(found) = found {
            attrs.set("id", found["id"].as_str().unwrap_or_default());
            attrs.set("principal_id", found["properties"]["principalId"].as_str().unwrap_or_default());
            attrs.set("client_id", found["properties"]["clientId"].as_str().unwrap_or_default());
        }
        attrs
    }
}

impl Node for Identity {
    fn label(&self) -> &'static str {
        "managed identity"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match self.azure.arm.get(&self.path(), &self.what()).await? {
                Some(found) => Observation::reuse("exists", self.attrs(Some(&found))),
                None => Observation::create("missing", self.attrs(None)),
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
            let attrs = self.attrs(Some(&found));
            let id = found["id"].as_str().unwrap_or_default();
            Ok(decide(owned(tags_of(&found)), teardown.in_use([id, id.to_ascii_lowercase().as_str()]), attrs, "created by pushpool, used by no other pool"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, _: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move { self.azure.arm.delete(&self.path(), &self.what()).await }.boxed()
    }
}
