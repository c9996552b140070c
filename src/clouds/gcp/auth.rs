//! The access token of a run: Application Default Credentials through Google's own
//! `google-cloud-auth`, else the token of an installed `gcloud`, else the metadata server.
//!
//! Order, and why:
//! 1. **An ADC file**: `GOOGLE_APPLICATION_CREDENTIALS`, else the file
//!    `gcloud auth application-default login` writes. A service account key is signed into a
//!    token locally (no call); a user's refresh token is exchanged at Google's token endpoint.
//! 2. **gcloud**, when installed: `gcloud auth print-access-token`, for users of plain
//!    `gcloud auth login` (which writes no ADC file). Its token is read from its standard
//!    output and never shown.
//! 3. **The metadata server**, which only answers on Google Cloud (a VM, Cloud Run, GKE). It is
//!    tried last and briefly, so that a laptop with gcloud never waits for it;
//!    `GCE_METADATA_HOST` moves it, as for every Google client.
//!
//! Nothing found: the error names `gcloud auth application-default login` and
//! `GOOGLE_APPLICATION_CREDENTIALS`, before anything is read or written.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use google_cloud_auth::credentials::{AccessTokenCredentials, Builder};

use super::config::config_dir;
use crate::error::{Error, Result};
use crate::prefect::settings::{Env, ProcessEnv};
use crate::secret::Secret;

/// The scope of every call pushpool makes.
const CLOUD_PLATFORM: &str = "https://www.googleapis.com/auth/cloud-platform";

/// How long the metadata server may take to answer before it counts as absent.
const METADATA_WAIT: Duration = Duration::from_secs(3);

/// Where a run's token came from, for the plan header and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// An Application Default Credentials file.
    AdcFile(PathBuf),
    /// `gcloud auth print-access-token`.
    Gcloud,
    /// The metadata server of the machine.
    MetadataServer,
}

/// An access token and where it came from.
pub struct Token {
    /// The OAuth access token (about an hour's validity).
    pub secret: Secret,
    /// Where it came from.
    pub source: TokenSource,
}

const NO_CREDENTIALS_FIX: &str = "run `gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, then run again";

/// The ADC file in use: `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's well-known file when
/// it exists.
fn adc_file(env: &dyn Env) -> Option<PathBuf> {
    if let Some(path) = env.var("GOOGLE_APPLICATION_CREDENTIALS") {
        return Some(PathBuf::from(path));
    }
    let path = config_dir(env)?.join("application_default_credentials.json");
    path.is_file().then_some(path)
}

/// The installed `gcloud`, if any.
pub fn gcloud_on_path() -> Option<PathBuf> {
    crate::program::on_path("gcloud")
}

/// Finds a token, in the order of the module docs.
pub async fn token() -> Result<Token> {
    if let Some(path) = adc_file(&ProcessEnv) {
        let credentials = adc_credentials().map_err(|e| no_token(&format!("the credentials file {} cannot be used: {e}", path.display())))?;
        let token = credentials.access_token().await.map_err(|e| no_token(&format!("the credentials of {} gave no token: {e}", path.display())))?;
        return Ok(Token { secret: Secret::new(token.token), source: TokenSource::AdcFile(path) });
    }
    if let Some(gcloud) = gcloud_on_path() {
        return gcloud_token(&gcloud).await.map(|secret| Token { secret, source: TokenSource::Gcloud });
    }
    let metadata = async { adc_credentials().ok()?.access_token().await.ok() };
    match tokio::time::timeout(METADATA_WAIT, metadata).await {
        Ok(Some(token)) => Ok(Token { secret: Secret::new(token.token), source: TokenSource::MetadataServer }),
        _ => Err(no_token("no Application Default Credentials file, no gcloud on PATH, and no metadata server (this is not a Google Cloud machine)")),
    }
}

fn adc_credentials() -> std::result::Result<AccessTokenCredentials, google_cloud_auth::build_errors::Error> {
    Builder::default().with_scopes([CLOUD_PLATFORM]).build_access_token_credentials()
}

fn no_token(cause: &str) -> Error {
    Error::usage("Google Cloud credentials", cause).fix(NO_CREDENTIALS_FIX)
}

/// `gcloud auth print-access-token`: the token on standard output, errors on standard error.
async fn gcloud_token(gcloud: &Path) -> Result<Secret> {
    let output = tokio::process::Command::new(gcloud)
        .args(["auth", "print-access-token", "--quiet"])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| no_token(&format!("gcloud ({}) could not be started: {e}", gcloud.display())))?;
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && !token.is_empty() {
        return Ok(Secret::new(token));
    }
    // gcloud's error never holds the token (there was none); keep only its last line.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let reason = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no token printed").trim().to_owned();
    Err(no_token(&format!("`gcloud auth print-access-token` failed: {reason}")))
}
