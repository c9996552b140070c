//! `gcp.service_account_key`: the service account's JSON key that the credentials block holds,
//! minted through the shared algorithm of [`crate::minted`]: this module says how IAM lists,
//! marks (the account's description), mints and deletes keys, and that IAM allows ten per
//! account. An organization policy that forbids keys gets its own error.

use std::sync::Arc;

use base64::Engine;
use futures::FutureExt;
use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::api::GoogleError;
use super::context::GcpContext;
use super::service_account::{email, path, set_pending};
use crate::clock::unix_of_rfc3339;
use crate::error::{Error, Result};
use crate::minted::{Credential, Mark, MintFailure, Minted, Minter};
use crate::secret::Secret;

/// The organization policy constraint that forbids service account keys.
const NO_KEYS_CONSTRAINT: &str = "constraints/iam.disableServiceAccountKeyCreation";

/// IAM's limit of user-managed keys per service account, which no quota raises.
pub const LIMIT: (usize, &str) = (10, "IAM's limit per service account");

/// The user-managed keys of one service account.
pub struct ServiceAccountKeys {
    /// The project.
    pub gcp: Arc<GcpContext>,
    /// The account id.
    pub account: String,
}

impl ServiceAccountKeys {
    fn what(&self) -> String {
        format!("key of service account {}", email(&self.gcp, &self.account))
    }

    fn keys_path(&self) -> String {
        format!("{}/keys", path(&self.gcp, &self.account))
    }

    /// The failure of a key creation Google refused.
    fn refusal(&self, answer: &crate::http::Answer, call: &str) -> MintFailure {
        let google = GoogleError::of(answer);
        let email = email(&self.gcp, &self.account);
        if google.violations.iter().any(|v| v == NO_KEYS_CONSTRAINT) || google.message.contains("Key creation is not allowed") {
            return MintFailure::Failed(
                Error::remote(self.what(), format!("an organization policy forbids service account keys in project {} ({NO_KEYS_CONSTRAINT})", self.gcp.project()))
                    .fix("ask an organization policy admin to exempt this project from the constraint, or run a hybrid `cloud-run` pool whose worker uses its own identity instead of a key"),
            );
        }
        match answer.status {
            // A service account just created is not visible to every IAM server at once.
            StatusCode::NOT_FOUND => MintFailure::Refused(Error::remote(self.what(), format!("service account {email} is not visible yet (404)"))),
            status if status.is_server_error() => MintFailure::Unknown(self.gcp.iam.refused(&Method::POST, call, answer, &self.what())),
            _ => MintFailure::Failed(self.gcp.iam.refused(&Method::POST, call, answer, &self.what())),
        }
    }
}

impl Minter for ServiceAccountKeys {
    fn label(&self) -> &'static str {
        "service account key"
    }

    fn noun(&self) -> &'static str {
        "key"
    }

    fn owner(&self) -> String {
        format!("service account {}", email(&self.gcp, &self.account))
    }

    fn limit(&self) -> (usize, &'static str) {
        LIMIT
    }

    fn quota_fix(&self) -> String {
        format!(
            "delete a key you no longer use (`gcloud iam service-accounts keys delete <id> --iam-account {}`), or pick another account with --set service_account=<name>, then run again",
            email(&self.gcp, &self.account)
        )
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Credential>>> {
        async move {
            let listed = self.gcp.iam.get(&format!("{}?keyTypes=USER_MANAGED", self.keys_path()), &self.what()).await?;
            let now = crate::clock::unix_seconds();
            let keys = listed.as_ref().and_then(|l| l["keys"].as_array()).cloned().unwrap_or_default();
            Ok(keys
                .iter()
                .filter_map(|key| {
                    let id = key["name"].as_str()?.rsplit('/').next()?.to_owned();
                    let expired = key["validBeforeTime"].as_str().and_then(unix_of_rfc3339).is_some_and(|end| end <= now);
                    Some(Credential { id, created: key["validAfterTime"].as_str().and_then(unix_of_rfc3339), active: key["disabled"] != true && !expired, hint: None })
                })
                .collect())
        }
        .boxed()
    }

    fn mark<'a>(&'a self, mark: &'a Mark) -> BoxFuture<'a, Result<()>> {
        async move { set_pending(&self.gcp, &self.account, Some(mark)).await }.boxed()
    }

    fn unmark(&self) -> BoxFuture<'_, Result<()>> {
        async move { set_pending(&self.gcp, &self.account, None).await }.boxed()
    }

    /// The key file comes back once, base64-encoded in `privateKeyData`; it becomes a JSON
    /// secret, so that the block holds it as the object Prefect's `GcpCredentials` expects.
    fn mint(&self) -> BoxFuture<'_, std::result::Result<Minted, MintFailure>> {
        async move {
            let call = self.keys_path();
            let body = json!({"privateKeyType": "TYPE_GOOGLE_CREDENTIALS_FILE", "keyAlgorithm": "KEY_ALG_RSA_2048"});
            let answer = self.gcp.iam.call(Method::POST, &call, Some(body)).await.map_err(MintFailure::Unknown)?;
            if !answer.status.is_success() {
                return Err(self.refusal(&answer, &call));
            }
            let broken = |why: &str| MintFailure::Failed(Error::remote(self.what(), format!("the created key {why}")));
            let data = answer.body["privateKeyData"].as_str().ok_or_else(|| broken("came without privateKeyData"))?;
            let file = base64::engine::general_purpose::STANDARD.decode(data).map_err(|_| broken("is not base64"))?;
            let file: Value = serde_json::from_slice(&file).map_err(|_| broken("is not a JSON key file"))?;
            let id = file["private_key_id"].as_str().ok_or_else(|| broken("has no private_key_id"))?.to_owned();
            Ok(Minted { id, secret: Secret::json(&file) })
        }
        .boxed()
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<()>> {
        async move { self.gcp.iam.delete(&format!("{}/{id}", self.keys_path()), &self.what()).await.map(drop) }.boxed()
    }
}
