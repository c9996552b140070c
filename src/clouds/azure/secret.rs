//! `azure.client_secret`: the application's client secret that the credentials block holds,
//! minted through the shared algorithm of [`crate::minted`]: Graph's `addPassword` with an
//! explicit end date (one year), `removePassword`, the application's tags as the pending mark.
//!
//! The block holds the secret, not its id. Entra ID shows each secret's first three characters
//! (`hint`); the secret whose hint matches and that Entra ID still accepts (a client-credentials
//! token request) is the block's. One it refuses as expired (AADSTS7000222, which it answers
//! only for a secret of the application) is the expired secret with that hint, if exactly one
//! is listed: the block's dead secret, which a new one replaces. Any other refusal means the
//! secret no longer works, whatever the list says.

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
use crate::minted::{Credential, Mark, MintFailure, Minted, Minter};
use crate::secret::Secret;

/// How long a new secret lasts: shown in the plan, and the block needs a new one after it.
pub const LIFETIME_DAYS: i64 = 365;

/// Entra ID's error code for a secret of the application that has expired.
const SECRET_EXPIRED: i64 = 7_000_222;

/// What Entra ID says of a secret offered for the application.
enum Verdict {
    /// It accepts it.
    Works,
    /// It is one of the application's secrets, expired.
    Expired,
    /// It refuses it for another reason (no such secret).
    Refused,
}

/// How many secrets pushpool lets one application have: Entra ID refuses more at some
/// point, and a block needs only one.
pub const LIMIT: (usize, &str) = (10, "pushpool's limit per application (Entra ID refuses more at some point)");

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
    async fn verdict(&self, app_id: &str, secret: &str) -> Result<Verdict> {
        let cloud = &self.azure.placement.cloud;
        let url = format!("{}/{}/oauth2/v2.0/token", cloud.login.trim_end_matches('/'), self.azure.tenant);
        let scope = format!("{}/.default", cloud.arm_audience.trim_end_matches('/'));
        let fields = [("grant_type", "client_credentials"), ("client_id", app_id), ("client_secret", secret), ("scope", scope.as_str())];
        let (status, body) = post_form(&url, &fields, &self.what()).await?;
        let expired = body["error_codes"].as_array().is_some_and(|codes| codes.iter().any(|c| c.as_i64() == Some(SECRET_EXPIRED)));
        Ok(match (status.is_success(), expired) {
            (true, _) => Verdict::Works,
            (false, true) => Verdict::Expired,
            (false, false) => Verdict::Refused,
        })
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
        LIMIT
    }

    fn quota_fix(&self) -> String {
        format!(
            "remove a secret you no longer use (`az ad app credential delete --id <appId> --key-id <id>`) from {}, or pick another application with --set app=<name>, then run again",
            self.application
        )
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

    fn mark<'a>(&'a self, mark: &'a Mark) -> BoxFuture<'a, Result<()>> {
        async move { set_pending(&self.azure, &self.app().await?, Some(mark)).await }.boxed()
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
                    let field = |name: &str| {
                        answer.body[name]
                            .as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| MintFailure::Failed(Error::remote(self.what(), format!("addPassword returned no {name}"))))
                    };
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
            Ok(match self.verdict(app["appId"].as_str().unwrap_or_default(), held).await? {
                Verdict::Works => Some(first.id.clone()),
                Verdict::Expired => match &candidates.iter().filter(|c| !c.active).collect::<Vec<_>>()[..] {
                    [expired] => Some(expired.id.clone()),
                    _ => None,
                },
                Verdict::Refused => None,
            })
        }
        .boxed()
    }
}
