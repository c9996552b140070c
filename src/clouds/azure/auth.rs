//! Access tokens, one per audience (ARM, Microsoft Graph), through Microsoft's maintained
//! `azure_identity`: a service principal in the environment (`AZURE_TENANT_ID`,
//! `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`), else workload identity (CI runners with
//! `AZURE_FEDERATED_TOKEN_FILE`), else the Azure CLI's login (`az account get-access-token`).
//! Nothing found or a token refused: the error names `az login` and the variables.

use std::sync::Arc;

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::TokenCredential;
use azure_core::http::ClientOptions;
use azure_identity::{AzureCliCredential, AzureCliCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions, WorkloadIdentityCredential};

use super::cli::Placement;
use crate::error::{Error, Result};
use crate::prefect::settings::{Env, ProcessEnv};
use crate::secret::Secret;

/// Where a run's tokens come from, for the plan header and errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// `AZURE_CLIENT_ID`, `AZURE_TENANT_ID` and `AZURE_CLIENT_SECRET`.
    ServicePrincipal,
    /// `AZURE_FEDERATED_TOKEN_FILE` (GitHub Actions, AKS).
    WorkloadIdentity,
    /// The Azure CLI's login.
    AzureCli,
}

/// The credential of a run.
pub struct Tokens {
    credential: Arc<dyn TokenCredential>,
    /// Where the tokens come from.
    pub source: TokenSource,
}

const FIX: &str = "run `az login` (and `az account set --subscription <id>`), or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, then run again";

impl Tokens {
    /// Chooses the credential, in the order of the module docs.
    pub fn new(placement: &Placement) -> Result<Self> {
        let env = ProcessEnv;
        let failed = |e: azure_core::Error| Error::usage("Azure credentials", e.to_string()).fix(FIX);
        let secret_vars = (env.var("AZURE_TENANT_ID"), env.var("AZURE_CLIENT_ID"), env.var("AZURE_CLIENT_SECRET"));
        if let (Some(tenant), Some(client), Some(secret)) = secret_vars {
            let mut custom = CustomConfiguration::default();
            custom.authority_host = placement.cloud.login.clone();
            let client_options = ClientOptions { cloud: Some(Arc::new(CloudConfiguration::from(custom))), ..Default::default() };
            let options = ClientSecretCredentialOptions { client_options };
            let credential = ClientSecretCredential::new(&tenant, client, secret.into(), Some(options)).map_err(failed)?;
            return Ok(Self { credential, source: TokenSource::ServicePrincipal });
        }
        if env.var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
            return Ok(Self { credential: WorkloadIdentityCredential::new(None).map_err(failed)?, source: TokenSource::WorkloadIdentity });
        }
        let options = AzureCliCredentialOptions { subscription: Some(placement.subscription.clone()), ..Default::default() };
        Ok(Self { credential: AzureCliCredential::new(Some(options)).map_err(failed)?, source: TokenSource::AzureCli })
    }

    /// A token for `audience` (a resource URL such as `https://management.core.windows.net/`).
    pub async fn token(&self, audience: &str) -> Result<Secret> {
        let scope = format!("{}/.default", audience.trim_end_matches('/'));
        let token = self.credential.get_token(&[&scope], None).await.map_err(|e| {
            // The CLI's own message says what is wrong ("Please run 'az login'"); it holds no token.
            let cause = e.to_string();
            let cause = cause.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ");
            Error::usage(format!("Azure token for {audience}"), cause).fix(FIX)
        })?;
        Ok(Secret::new(token.token.secret()))
    }
}
