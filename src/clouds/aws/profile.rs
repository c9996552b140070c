//! Named AWS profiles (`--profile`, a pools file's `profile`), resolved as the AWS CLI resolves
//! them: aws-config's own parser and file locations (`AWS_CONFIG_FILE`,
//! `AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/config` and `~/.aws/credentials`) and its
//! profile credential provider (`role_arn` with `source_profile` or `credential_source`, SSO,
//! `credential_process`, keys).
//!
//! A profile named on the command line wins over credentials in the environment, as the CLI's
//! `--profile` does: a pools file that puts each pool in its own account must not have every
//! pool land in the account of the shell's `AWS_ACCESS_KEY_ID`.

use aws_config::profile::ProfileFileCredentialsProvider;
use aws_config::provider_config::ProviderConfig;
use aws_smithy_runtime_api::client::http::SharedHttpClient;
use aws_types::os_shim_internal::{Env, Fs};

use crate::error::{Error, Result};
use crate::prefect::settings::{Env as _, ProcessEnv};

/// Refuses a profile that neither AWS file defines, naming the profile, the files read, the
/// profiles they do define and the fix; a file that cannot be parsed is named with its error.
pub async fn check_defined(name: &str) -> Result<()> {
    let what = format!("AWS profile '{name}'");
    let files = describe_files();
    let profiles = aws_config::profile::load(&Fs::real(), &Env::real(), &Default::default(), None).await.map_err(|e| {
        Error::usage(&what, format!("{files} cannot be read: {e}")).fix("fix the file named above (`aws configure list-profiles` shows what the AWS CLI makes of it)")
    })?;
    if profiles.get_profile(name).is_some() {
        return Ok(());
    }
    let mut known: Vec<&str> = profiles.profiles().collect();
    known.sort_unstable();
    let defined = match known.as_slice() {
        [] => "they define no profile".to_owned(),
        known => format!("they define {}", known.join(", ")),
    };
    Err(Error::usage(what, format!("is not defined in {files}; {defined}")).fix(format!(
        "add it with `aws configure --profile {name}` (or `aws configure sso --profile {name}`), point AWS_CONFIG_FILE at the file that has it, or correct the name"
    )))
}

/// The credential provider of profile `name`, for a client in `region`: its STS calls
/// (`role_arn`) go through `http`, the run's bounded client.
pub fn credentials(name: &str, region: &str, http: SharedHttpClient) -> ProfileFileCredentialsProvider {
    let config = ProviderConfig::default().with_http_client(http).with_region(Some(aws_config::Region::new(region.to_owned())));
    ProfileFileCredentialsProvider::builder().profile_name(name).configure(&config).build()
}

/// The files profiles are read from, in words, as aws-config finds them.
fn describe_files() -> String {
    let file = |variable: &str, default: &str| ProcessEnv.var(variable).unwrap_or_else(|| format!("~/.aws/{default}"));
    format!("{} and {}", file("AWS_CONFIG_FILE", "config"), file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
}
