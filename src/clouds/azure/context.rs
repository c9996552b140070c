//! A connected Azure subscription: where a run works (resolved as the Azure CLI resolves it),
//! its two API clients (ARM and Graph, a token each), and the tags pushpool puts on what it
//! creates.

use reqwest::StatusCode;
use serde_json::Value;

use super::api::Api;
use super::auth::{TokenSource, Tokens};
use super::cli::{self, Placement};
use crate::clouds::Scope;
use crate::engine::Attrs;
use crate::engine::ownership::Marking;
use crate::error::{Error, Result};
use crate::prefect::settings::ProcessEnv;
use crate::secret::Secret;

/// How pushpool tags Azure resources (ARM tags) and marks Entra ID applications (their tags,
/// as `key=value` strings).
pub const MARKING: Marking = Marking { pool_key: "prefect.work-pool" };

/// ARM's api-version of subscriptions.
const SUBSCRIPTIONS_API: &str = "2022-12-01";

/// One subscription and location, connected.
pub struct AzureContext {
    /// Cloud, subscription and location.
    pub placement: Placement,
    /// The subscription's display name.
    pub subscription_name: String,
    /// The tenant of the subscription.
    pub tenant: String,
    /// The pool this context provisions, for its tags.
    pub pool: String,
    /// Where the tokens came from.
    pub token_source: TokenSource,
    /// The ARM token, for the registry's token exchange.
    pub arm_token: Secret,
    /// Azure Resource Manager.
    pub arm: Api,
    /// Microsoft Graph.
    pub graph: Api,
}

impl AzureContext {
    /// Resolves cloud, subscription, location and tokens, and reads the subscription: one that
    /// does not exist or is not enabled stops the run here, before any other call.
    pub async fn connect(pool: &str, scope: &Scope) -> Result<Self> {
        let placement = cli::resolve(&ProcessEnv, scope.subscription.as_deref(), scope.region.as_deref())?;
        let tokens = Tokens::new(&placement)?;
        let (arm_token, graph_token) = futures::try_join!(tokens.token(&placement.cloud.arm_audience), tokens.token(&placement.cloud.graph))?;
        let arm = Api::new("Azure Resource Manager", &placement.cloud.resource_manager, arm_token.clone())?;
        let graph = Api::new("Microsoft Graph", &format!("{}/v1.0/", placement.cloud.graph.trim_end_matches('/')), graph_token)?.waiting_out_replication();
        let path = format!("subscriptions/{}?api-version={SUBSCRIPTIONS_API}", placement.subscription);
        let what = format!("Azure subscription {}", placement.subscription);
        let answer = arm.call(reqwest::Method::GET, &path, None).await?;
        let found: Value = match answer.status {
            status if status.is_success() => answer.body,
            StatusCode::NOT_FOUND | StatusCode::FORBIDDEN => {
                return Err(Error::usage(what, "does not exist, or the credentials may not use it").fix("pick another with --subscription (`az account list -o table`)"));
            }
            _ => return Err(arm.refused(&reqwest::Method::GET, &path, &answer, &what)),
        };
        if found["state"].as_str().is_some_and(|s| s != "Enabled") {
            return Err(Error::usage(what, format!("is {}, not Enabled", found["state"].as_str().unwrap_or_default())).fix("pick another with --subscription"));
        }
        let tenant = found["tenantId"].as_str().map(str::to_owned).or_else(|| placement.tenant.clone()).unwrap_or_default();
        Ok(Self {
            subscription_name: found["displayName"].as_str().unwrap_or_default().to_owned(),
            tenant,
            pool: pool.to_owned(),
            token_source: tokens.source,
            arm_token,
            arm,
            graph,
            placement,
        })
    }

    /// The subscription id.
    pub fn subscription(&self) -> &str {
        &self.placement.subscription
    }

    /// The location of new resources.
    pub fn location(&self) -> &str {
        &self.placement.location
    }

    /// The attributes `@azure.<attr>` references may name.
    pub fn attrs(&self) -> Attrs {
        Attrs::new().with("subscription", self.subscription()).with("tenant", self.tenant.as_str()).with("location", self.location())
    }

    /// The tags of what pushpool creates for the pool.
    pub fn tags(&self) -> Value {
        MARKING.marks(&self.pool).into_iter().map(|(k, v)| (k.to_owned(), Value::from(v))).collect()
    }

    /// The same marks as Entra ID application tags (`key=value` strings).
    pub fn entra_tags(&self) -> Vec<String> {
        MARKING.marks(&self.pool).into_iter().map(|(k, v)| format!("{k}={v}")).collect()
    }
}

/// The (key, value) tags of an ARM resource.
pub fn tags_of(resource: &Value) -> Vec<(&str, &str)> {
    resource["tags"].as_object().into_iter().flatten().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?))).collect()
}

/// The (key, value) marks of an Entra ID object's `key=value` tags.
pub fn entra_marks_of(object: &Value) -> Vec<(&str, &str)> {
    object["tags"].as_array().into_iter().flatten().filter_map(|t| t.as_str()?.split_once('=')).collect()
}

/// The subscription ids named anywhere in `value` by ARM resource ids (`/subscriptions/<id>/...`):
/// what tells which subscription a pool's job variables are about.
pub fn subscriptions_in(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => {
            let lower = text.to_ascii_lowercase();
            lower.strip_prefix("/subscriptions/").and_then(|rest| rest.split('/').next()).map(str::to_owned).into_iter().collect()
        }
        Value::Array(items) => items.iter().flat_map(subscriptions_in).collect(),
        Value::Object(fields) => fields.values().flat_map(subscriptions_in).collect(),
        _ => Vec::new(),
    }
}
