//! `azure.container_registry`: the pool's Azure Container Registry (Basic), found again by its
//! `prefect.work-pool` tag in the pool's resource group, never by a name prefix anywhere in the
//! subscription (the reference adopts any registry whose name starts with "prefect"). A new
//! name is `prefect` and twelve random characters, checked with the name-availability API
//! (registry names are global); its login server is known after apply.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use super::context::{AzureContext, MARKING, tags_of};
use crate::engine::ownership::{ImageStore, decide, decide_image_store, owned};
use crate::engine::{Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};

/// ARM's api-version of container registries.
const REGISTRIES_API: &str = "2023-07-01";

/// How many fresh names are tried before giving up.
const NAME_TRIES: usize = 3;

/// The registry tagged for the pool in its resource group.
pub struct Registry {
    /// The subscription.
    pub azure: Arc<AzureContext>,
    /// The resource group's name.
    pub resource_group: String,
    /// Names of resources (the identity) whose other users also pull from here: a teardown
    /// keeps the registry while another pool names them.
    pub in_use_with: Vec<String>,
}

impl Registry {
    fn what(&self) -> String {
        format!("container registry of pool '{}' in {}", self.azure.pool, self.resource_group)
    }

    fn registries(&self) -> String {
        format!("subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerRegistry/registries", self.azure.subscription(), self.resource_group)
    }

    fn path(&self, name: &str) -> String {
        format!("{}/{name}?api-version={REGISTRIES_API}", self.registries())
    }

    /// The registry tagged for this pool (an error when several are).
    async fn find(&self) -> Result<Option<Value>> {
        let listed = self.azure.arm.list(&format!("{}?api-version={REGISTRIES_API}", self.registries()), &self.what()).await?;
        let pool = self.azure.pool.as_str();
        let tagged: Vec<Value> = listed.into_iter().filter(|r| tags_of(r).contains(&(MARKING.pool_key, pool))).collect();
        match &tagged[..] {
            [] => Ok(None),
            [one] => Ok(Some(one.clone())),
            many => {
                let names: Vec<&str> = many.iter().filter_map(|r| r["name"].as_str()).collect();
                Err(Error::usage(self.what(), format!("several registries carry the tag {}={pool}: {}", MARKING.pool_key, names.join(", ")))
                    .fix("remove the tag from all but one (`az tag update`), then run again"))
            }
        }
    }

    /// Name, id, login server, and `flows`: the repository the summary suggests pushing flow
    /// images to (ACR makes repositories on the first push).
    fn attrs(found: &Value) -> Attrs {
        let login_server = found["properties"]["loginServer"].as_str().unwrap_or_default();
        Attrs::new()
            .with("name", found["name"].as_str().unwrap_or_default())
            .with("id", found["id"].as_str().unwrap_or_default())
            .with("login_server", login_server)
            .with("flows", format!("{login_server}/prefect-flows"))
    }

    /// A name no registry anywhere has yet.
    async fn free_name(&self) -> Result<String> {
        let path = format!("subscriptions/{}/providers/Microsoft.ContainerRegistry/checkNameAvailability?api-version={REGISTRIES_API}", self.azure.subscription());
        for _ in 0..NAME_TRIES {
            let name = format!("prefect{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
            let body = json!({"name": name, "type": "Microsoft.ContainerRegistry/registries"});
            let answer = self.azure.arm.send(Method::POST, &path, Some(body), &self.what()).await?;
            if answer["nameAvailable"] == true {
                return Ok(name);
            }
        }
        Err(Error::remote(self.what(), format!("{NAME_TRIES} random names were all taken")).fix("run again"))
    }
}

impl Node for Registry {
    fn label(&self) -> &'static str {
        "container registry"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match self.find().await? {
                Some(found) => Observation::reuse(format!("{} exists", found["name"].as_str().unwrap_or("?")), Self::attrs(&found)),
                None => Observation::create(format!("none tagged {}={} in {}", MARKING.pool_key, self.azure.pool, self.resource_group), Attrs::new()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            // A run killed after the create finds the registry by its tag instead of making a second.
            if let Some(found) = self.find().await? {
                return Ok(Self::attrs(&found));
            }
            let name = self.free_name().await?;
            let body = json!({"location": self.azure.location(), "sku": {"name": "Basic"}, "tags": self.azure.tags(), "properties": {"adminUserEnabled": false}});
            self.azure.arm.send(Method::PUT, &self.path(&name), Some(body), &self.what()).await?;
            let created =
                self.azure.arm.get(&self.path(&name), &self.what()).await?.ok_or_else(|| Error::remote(self.what(), format!("{name} was created but cannot be read")))?;
            Ok(Self::attrs(&created))
        }
        .boxed()
    }

    /// Kept while another pool names it or what it serves (`in_use_with`), or while it holds
    /// images (unless `--force`).
    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(found) = self.find().await? else { return Ok(Observation::gone(format!("no registry tagged for pool '{}'", self.azure.pool))) };
            let attrs = Self::attrs(&found);
            let name = found["name"].as_str().unwrap_or_default();
            let usages = self.azure.arm.list(&format!("{}/{name}/listUsages?api-version={REGISTRIES_API}", self.registries()), &self.what()).await?;
            let bytes = usages.iter().find(|u| u["name"] == "Size").and_then(|u| u["currentValue"].as_u64()).unwrap_or(0);
            let login_server = found["properties"]["loginServer"].as_str().unwrap_or_default();
            let in_use = teardown.in_use([name, login_server, found["id"].as_str().unwrap_or_default()]);
            let decided = decide(owned(tags_of(&found)), in_use, attrs, "created by pushpool, empty, used by no other pool");
            let contents = (bytes > 0).then(|| format!("{bytes} bytes of images"));
            Ok(decide_image_store(decided, teardown, ImageStore { in_use_with: &self.in_use_with, serving: "pull images from it", contents }))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let name = observed.attrs.require_str("container registry", "name")?;
            self.azure.arm.delete(&self.path(name), &self.what()).await
        }
        .boxed()
    }
}
