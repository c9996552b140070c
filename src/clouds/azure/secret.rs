//! `azure.client_secret`: the application's client secret that the credentials block holds,
//! minted through the shared algorithm of [`crate::minted`]: Graph's `addPassword` with an
//! explicit end date (one year), `removePassword`, the application's tags as the pending mark.
//!
//! The block holds the secret, not its id. Entra ID shows each secret's first three characters
//! (`hint`); the secret whose hint matches and that Entra ID still accepts (a client-credentials
//! token request) is the block's. One it no longer accepts no longer works, whatever the list says.

use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::post_form;
use super::context::AzureContext;
use super::entra::{find_application, set_pending};
use crate::clock::unix_of_rfc3339;
use crate::error::{Error, Result};
use crate::minted::{Credential, MintFailure, Minted, Minter};
use crate::secret::Secret;

/// How long a new secret lasts: shown in the plan, and the block needs a new one after it.
pub const LIFETIME_DAYS: i64 = 365;

/// The client secrets of one application.
pub struct ClientSecrets {
    /// The tenant.
    pub azure: Arc<AzureContext>,
    /// The application's display name.
    pub application: String,
}

impl ClientSecrets {
    fn what(&self) -> String {
        format!("client secret of application {}", self.application)
    }

    async fn app(&self) -> Result<Value> {
        find_application(&self.azure, &self.application).await?.ok_or_else(|| Error::remote(self.what(), "the application does not exist"))
    }

    /// Whether Entra ID still accepts `secret` for the application.
    async fn works(&self, app_id: &str, secret: &str) -> Result<bool> {
        let cloud = &self.azure.placement.cloud;
        let url = format!("{}/{}/oauth2/v2.0/token", cloud.login.trim_end_matches('/'), self.azure.tenant);
        let scope = format!("{}/.default", cloud.arm_audience.trim_end_matches('/'));
        let fields = [("grant_type", "client_credentials"), ("client_id", app_id), ("client_secret", secret), ("scope", scope.as_str())];
        let (status, _) = post_form(&url, &fields, &self.what()).await?;
        Ok(status.is_success())
    }
}

impl Minter for ClientSecrets {
    fn label(&self) -> &'static str {
        "client secret"
    }

    fn noun(&self) -> &'static str {
        "secret"
    }

    fn owner(&self) -> String {
        format!("application {}", self.application)
    }

    fn limit(&self) -> (usize, &'static str) {
        (10, "pushpool's limit per application (Entra ID refuses more at some point)")
    }

    fn quota_fix(&self) -> String {
        format!("remove a secret you no longer use (`az ad app credential delete --id <appId> --key-id <id>`) from {}, then run again", self.application)
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Credential>>> {
        async move {
            let Some(app) = find_application(&self.azure, &self.application).await? else { return Ok(Vec::new()) };
            let now = crate::clock::unix_seconds();
            let secrets = app["passwordCredentials"].as_array().cloned().unwrap_or_default();
            Ok(secrets
                .iter()
                .filter_map(|s| {
                    Some(Credential {
                        id: s["keyId"].as_str()?.to_owned(),
                        created: s["startDateTime"].as_str().and_then(unix_of_rfc3339),
                        active: s["endDateTime"].as_str().and_then(unix_of_rfc3339).is_none_or(|end| end > now),
                        hint: s["hint"].as_str().map(str::to_owned),
                    })
                })
                .collect())
        }
        .boxed()
    }

    fn mark(&self, since: i64) -> BoxFuture<'_, Result<()>> {
        async move { set_pending(&self.azure, &self.app().await?, Some(since)).await }.boxed()
    }

    fn unmark(&self) -> BoxFuture<'_, Result<()>> {
        async move { set_pending(&self.azure, &self.app().await?, None).await }.boxed()
    }

    fn mint(&self) -> BoxFuture<'_, std::result::Result<Minted, MintFailure>> {
        async move {
            let app = self.app().await.map_err(MintFailure::Failed)?;
            let path = format!("applications/{}/addPassword", app["id"].as_str().unwrap_or_default());
            let end = humantime::format_rfc3339_seconds(std::time::SystemTime::now() + std::time::Duration::from_secs(LIFETIME_DAYS as u64 * 86_400));
            let body = json!({"passwordCredential": {"displayName": format!("pushpool {}", self.azure.pool), "endDateTime": end.to_string()}});
            let answer = self.azure.graph.call(Method::POST, &path, Some(body)).await.map_err(MintFailure::Unknown)?;
            let refused = || self.azure.graph.refused(&Method::POST, &path, &answer, &self.what());
            match answer.status {
                status if status.is_success() => {
                    let field = |name: &str| answer.body[name].as_str().map(str::to_owned).ok_or_else(|| MintFailure::Failed(Error::remote(self.what(), format!("addPassword returned no {name}"))));
                    Ok(Minted { id: field("keyId")?, secret: Secret::new(field("secretText")?) })
                }
                status if status.is_server_error() => Err(MintFailure::Unknown(refused())),
                StatusCode::NOT_FOUND => Err(MintFailure::Refused(refused())),
                _ => Err(MintFailure::Failed(refused().fix(self.quota_fix()))),
            }
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move {
            let Some(app) = find_application(&self.azure, &self.application).await? else { return Ok(()) };
            let path = format!("applications/{}/removePassword", app["id"].as_str().unwrap_or_default());
            let answer = self.azure.graph.call(Method::POST, &path, Some(json!({"keyId": id}))).await?;
            match answer.status {
                // Graph answers 400 for a key id the application no longer has.
                status if status.is_success() || status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST => Ok(()),
                _ => Err(self.azure.graph.refused(&Method::POST, &path, &answer, &self.what())),
            }
        }
        .boxed()
    }

    fn identify<'a>(&'a self, held: &'a str, credentials: &'a [Credential]) -> BoxFuture<'a, Result<Option<String>>> {
        async move {
            let candidates: Vec<&Credential> = credentials.iter().filter(|c| c.hint.as_deref().is_some_and(|h| held.starts_with(h))).collect();
            let Some(first) = candidates.first() else { return Ok(None) };
            let Some(app) = find_application(&self.azure, &self.application).await? else { return Ok(None) };
            let works = self.works(app["appId"].as_str().unwrap_or_default(), held).await?;
            Ok(works.then(|| first.id.clone()))
        }
        .boxed()
    }
}
