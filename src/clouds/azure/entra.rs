//! Microsoft Entra ID node kinds, through Microsoft Graph: `azure.application` (the app
//! registration the pool's credentials belong to) and `azure.service_principal` (its identity
//! in the tenant). Both are found by a server-side filter (display name, app id), never by
//! listing the tenant, read to the last page (a filtered page may be short, even empty, and
//! still link to the next), and carry pushpool's marks as `key=value` tags. While a client
//! secret is being minted, the application's tags also record when (see [`crate::minted`]).
//! A service principal created right after its application waits until Entra ID has
//! replicated the application.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::context::{AzureContext, entra_marks_of};
use crate::engine::ownership::{decide, owned};
use crate::engine::{Action, Attrs, Inputs, Node, Observation, Teardown, Upstream};
use crate::error::{Error, Result};
use crate::minted::{Mark, PENDING, with_pending_word};
use crate::retry::{Settling, settle};

/// The tag word of a secret about to be minted.
const PENDING_SECRET: &str = "pushpool.secret-pending-since";

/// A Graph collection path filtered by `field eq 'value'`.
fn filtered(collection: &str, field: &str, value: &str) -> String {
    let filter = format!("{field} eq '{}'", value.replace('\'', "''"));
    format!("{collection}?$filter={}", utf8_percent_encode(&filter, NON_ALPHANUMERIC))
}

/// The application named `display_name`, if exactly one exists (several is an error).
pub async fn find_application(azure: &AzureContext, display_name: &str) -> Result<Option<Value>> {
    let what = format!("application {display_name}");
    let apps = azure.graph.list(&filtered("applications", "displayName", display_name), &what).await?;
    match &apps[..] {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        many => Err(Error::usage(what, format!("{} applications have this display name, so it is unclear which is the pool's", many.len()))
            .fix("rename or delete the others (`az ad app list --display-name <name>`), or pick another name with --set app=<name>")),
    }
}

/// The mark of a pending secret recorded in an application's tags.
fn pending_in(app: &Value) -> Option<Mark> {
    entra_marks_of(app).into_iter().find(|(k, _)| *k == PENDING_SECRET).and_then(|(_, v)| Mark::parse(v))
}

/// Records (`Some`) or clears (`None`) a pending secret in the application's tags, keeping the others.
pub async fn set_pending(azure: &AzureContext, app: &Value, pending: Option<&Mark>) -> Result<()> {
    let current: Vec<String> = app["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str().map(str::to_owned)).collect();
    let tags = with_pending_word(&current, PENDING_SECRET, pending);
    if tags == current {
        return Ok(());
    }
    let id = app["id"].as_str().unwrap_or_default();
    azure
        .graph
        .send(Method::PATCH, &format!("applications/{id}"), Some(json!({"tags": tags})), &format!("application {}", app["displayName"].as_str().unwrap_or(id)))
        .await
        .map(drop)
}

/// `azure.application`: the app registration whose client secret the block holds.
pub struct Application {
    /// The tenant and subscription.
    pub azure: Arc<AzureContext>,
    /// Its display name.
    pub name: String,
}

impl Application {
    fn what(&self) -> String {
        format!("application {}", self.name)
    }

    fn attrs(&self, app: &Value) -> Attrs {
        let mut attrs = Attrs::new()
            .with("name", self.name.as_str())
            .with("object_id", app["id"].as_str().unwrap_or_default())
            .with("app_id", app["appId"].as_str().unwrap_or_default());
        if let Some(mark) = pending_in(app) {
            attrs = attrs.hint(PENDING, mark.to_string());
        }
        attrs
    }
}

impl Node for Application {
    fn label(&self) -> &'static str {
        "app registration"
    }

    fn observe<'a>(&'a self, _: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            Ok(match find_application(&self.azure, &self.name).await? {
                Some(app) => Observation::reuse("exists", self.attrs(&app)),
                None => Observation::create(format!("missing in tenant {}", self.azure.tenant), Attrs::new().with("name", self.name.as_str())),
            })
        }
        .boxed()
    }

    /// Created with the pending-secret mark already in its tags: the secret minted next needs
    /// no call of its own to set it.
    fn apply<'a>(&'a self, _: &'a Observation, _: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let mut tags = self.azure.entra_tags();
            tags.push(format!("{PENDING_SECRET}={}", Mark::at(crate::clock::unix_seconds())));
            let body = json!({"displayName": self.name, "tags": tags, "notes": "Credentials of Prefect work pools; created by pushpool."});
            let created = self.azure.graph.send(Method::POST, "applications", Some(body), &self.what()).await?;
            Ok(self.attrs(&created))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, _: &'a Upstream, teardown: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let Some(app) = find_application(&self.azure, &self.name).await? else { return Ok(Observation::gone("does not exist")) };
            let attrs = self.attrs(&app);
            let ids = [app["appId"].as_str().unwrap_or_default(), app["id"].as_str().unwrap_or_default()];
            Ok(decide(owned(entra_marks_of(&app)), teardown.in_use(ids), attrs, "created by pushpool, used by no other pool"))
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.name, "object_id")?;
            let answer = self.azure.graph.call(Method::DELETE, &format!("applications/{id}"), None).await?;
            match answer.status {
                status if status.is_success() || status == StatusCode::NOT_FOUND => Ok(()),
                _ => Err(self.azure.graph.refused(&Method::DELETE, &format!("applications/{id}"), &answer, &self.what())),
            }
        }
        .boxed()
    }
}

/// `azure.service_principal`: the application's identity in the tenant, which roles are
/// granted to.
pub struct ServicePrincipal {
    /// The tenant and subscription.
    pub azure: Arc<AzureContext>,
    /// The application node.
    pub application_node: String,
    /// The application's display name.
    pub application: String,
}

impl ServicePrincipal {
    fn what(&self) -> String {
        format!("service principal of {}", self.application)
    }

    async fn find(&self, app_id: &str) -> Result<Option<Value>> {
        Ok(self.azure.graph.list(&filtered("servicePrincipals", "appId", app_id), &self.what()).await?.into_iter().next())
    }

    fn attrs(sp: &Value) -> Attrs {
        Attrs::new().with("principal_id", sp["id"].as_str().unwrap_or_default())
    }
}

impl Node for ServicePrincipal {
    fn label(&self) -> &'static str {
        "service principal"
    }

    fn observe<'a>(&'a self, upstream: &'a Upstream) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let app = upstream.get(&self.application_node).await?;
            let Some(app_id) = app.attrs.str("app_id").filter(|_| app.action != Action::Create) else {
                return Ok(Observation::create("its application is new", Attrs::new()));
            };
            Ok(match self.find(app_id).await? {
                Some(sp) => Observation::reuse("exists", Self::attrs(&sp)),
                None => Observation::create("missing", Attrs::new()),
            })
        }
        .boxed()
    }

    fn apply<'a>(&'a self, _: &'a Observation, inputs: &'a Inputs) -> BoxFuture<'a, Result<Attrs>> {
        async move {
            let app_id = inputs.str(&self.application_node, "app_id")?;
            let body = json!({"appId": app_id, "tags": self.azure.entra_tags()});
            let (body, what) = (&body, &self.what());
            let waiting_for = format!("Entra ID to replicate application {}, created moments ago", self.application);
            let sp = settle(&waiting_for, move || async move {
                let answer = self.azure.graph.call(Method::POST, "servicePrincipals", Some(body.clone())).await?;
                let refused = || self.azure.graph.refused(&Method::POST, "servicePrincipals", &answer, what);
                match answer.status {
                    status if status.is_success() => Ok(Settling::Done(answer.body)),
                    // Made meanwhile (a create whose answer was lost): use it.
                    StatusCode::CONFLICT => Ok(Settling::Done(self.find(app_id).await?.ok_or_else(|| Error::remote(what, "exists (409) but cannot be found"))?)),
                    // Graph's answer while the application is not yet on every replica.
                    StatusCode::BAD_REQUEST if answer.detail().contains("does not reference a valid application object") => Ok(Settling::NotYet(refused())),
                    _ => Err(refused()),
                }
            })
            .await?;
            Ok(Self::attrs(&sp))
        }
        .boxed()
    }

    fn observe_teardown<'a>(&'a self, upstream: &'a Upstream, _: &'a Teardown) -> BoxFuture<'a, Result<Observation>> {
        async move {
            let app = upstream.get(&self.application_node).await?;
            let Some(app_id) = app.attrs.str("app_id") else { return Ok(Observation::gone("its application does not exist")) };
            let Some(sp) = self.find(app_id).await? else { return Ok(Observation::gone("does not exist")) };
            Ok(match app.action {
                Action::Delete => Observation::delete("goes with its application", Self::attrs(&sp)),
                _ => Observation::keep(format!("its application stays ({})", app.reason), Self::attrs(&sp)),
            })
        }
        .boxed()
    }

    fn tear_down<'a>(&'a self, observed: &'a Observation) -> BoxFuture<'a, Result<()>> {
        async move {
            let id = observed.attrs.require_str(&self.application, "principal_id")?;
            let path = format!("servicePrincipals/{id}");
            let answer = self.azure.graph.call(Method::DELETE, &path, None).await?;
            match answer.status {
                status if status.is_success() || status == StatusCode::NOT_FOUND => Ok(()),
                _ => Err(self.azure.graph.refused(&Method::DELETE, &path, &answer, &self.what())),
            }
        }
        .boxed()
    }
}
