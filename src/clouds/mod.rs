//! The clouds pushpool provisions in: each one's client setup and node kinds, behind one seam.
//!
//! A blueprint names the clouds its pool type needs; a run connects to those and no other, so
//! that a pool on one cloud works on a machine without credentials for the others.
//! [`CloudContext`] is what the rest of pushpool sees of a connected cloud: who and where it
//! is (the plan's target and header), the `@cloud.attr` attributes blueprints may name, the
//! scope one apply locks, the image registry's login, and how another pool's job variables
//! tell that they name another scope of this cloud (teardown's "in use").

pub mod aws;
pub mod azure;
pub mod coiled;
pub mod gcp;
pub mod modal;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde_json::Value;

use crate::blueprint::Kind;
use crate::document::TargetDoc;
use crate::engine::Attrs;
use crate::error::{Error, Result};
use crate::names::Rule;
use crate::prefect::settings::ProcessEnv;
use crate::secret::Secret;

/// Where a pool's resources go, as asked on the command line or in a pools file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The region, instead of the cloud's configured one (AWS's credential chain, gcloud's
    /// `run/region`).
    pub region: Option<String>,
    /// The Google Cloud project, instead of gcloud's configured one.
    pub project: Option<String>,
    /// The Azure subscription (id or name), instead of the Azure CLI's default one.
    pub subscription: Option<String>,
    /// The AWS profile (`--profile`), instead of the standard credential chain's choice.
    pub profile: Option<String>,
}

/// A connected cloud.
#[derive(Clone)]
pub enum CloudContext {
    /// An AWS account and region.
    Aws(Arc<aws::AwsContext>),
    /// A Google Cloud project and region.
    Gcp(Arc<gcp::GcpContext>),
    /// An Azure subscription and location.
    Azure(Arc<azure::AzureContext>),
    /// The local Modal token: nothing is built in Modal, the pool's block holds the token.
    Modal(Arc<modal::token::ModalToken>),
    /// The local Coiled token: nothing is built in Coiled, the pool's block holds the token.
    Coiled(Arc<coiled::token::CoiledToken>),
}

impl CloudContext {
    /// Connects to `cloud` for `pool`: resolves credentials and identity, and fails here,
    /// before anything is read or written, with the fix.
    pub async fn connect(cloud: &str, pool: &str, scope: &Scope) -> Result<Self> {
        match cloud {
            "aws" => Ok(Self::Aws(Arc::new(aws::AwsContext::connect(pool, scope.region.as_deref(), scope.profile.as_deref()).await?))),
            "gcp" => Ok(Self::Gcp(Arc::new(gcp::GcpContext::connect(pool, scope).await?))),
            "azure" => Ok(Self::Azure(Arc::new(azure::AzureContext::connect(pool, scope).await?))),
            "modal" => Ok(Self::Modal(Arc::new(modal::token::discover(&ProcessEnv)?))),
            "coiled" => Ok(Self::Coiled(Arc::new(coiled::token::discover(&ProcessEnv)?))),
            other => Err(Error::usage(format!("cloud '{other}'"), "pushpool has no client for it")),
        }
    }

    /// The cloud's name as blueprints and plan documents spell it ("aws").
    pub fn name(&self) -> &'static str {
        match self {
            Self::Aws(_) => "aws",
            Self::Gcp(_) => "gcp",
            Self::Azure(_) => "azure",
            Self::Modal(_) => "modal",
            Self::Coiled(_) => "coiled",
        }
    }

    /// The attributes `@<cloud>.<attr>` references may name. A local token is a secret
    /// known at plan time: blocks compare it with what they hold, never show it.
    pub fn attrs(&self) -> Attrs {
        match self {
            Self::Aws(aws) => aws.attrs(),
            Self::Gcp(gcp) => gcp.attrs(),
            Self::Azure(azure) => azure.attrs(),
            Self::Modal(token) => {
                let mut attrs = Attrs::new().with("token_id", token.token_id.as_str());
                attrs.set_secret("token_secret", token.token_secret.clone());
                attrs
            }
            Self::Coiled(token) => {
                let mut attrs = Attrs::new();
                attrs.set_secret("token", token.token.clone());
                if let Some(workspace) = &token.workspace {
                    attrs.set("workspace", workspace.as_str());
                }
                attrs
            }
        }
    }

    /// Who and where, for plan documents and `apply`'s check that nothing moved.
    pub fn target(&self) -> TargetDoc {
        match self {
            Self::Aws(aws) => TargetDoc::Aws { account: aws.account_id.clone(), region: aws.region.clone(), profile: aws.profile.clone() },
            Self::Gcp(gcp) => TargetDoc::Gcp { project: gcp.project().to_owned(), region: gcp.region().to_owned() },
            Self::Azure(azure) => TargetDoc::Azure {
                subscription: azure.subscription().to_owned(),
                subscription_name: Some(azure.subscription_name.clone()).filter(|n| !n.is_empty()),
                tenant: azure.tenant.clone(),
                location: azure.location().to_owned(),
            },
            Self::Modal(token) => TargetDoc::Modal { token_id: token.token_id.clone(), profile: token.source.profile().map(str::to_owned) },
            Self::Coiled(token) => TargetDoc::Coiled { workspace: token.workspace.clone() },
        }
    }

    /// What one apply locks, for a cloud pushpool builds resources in: the whole AWS account,
    /// as pools in it share resources. None for a cloud where nothing is built.
    pub fn lock_scope(&self) -> Option<String> {
        match self {
            Self::Aws(aws) => Some(format!("aws_{}", aws.account_id)),
            Self::Gcp(gcp) => Some(format!("gcp_{}", gcp.project())),
            Self::Azure(azure) => Some(format!("azure_{}", azure.subscription())),
            Self::Modal(_) | Self::Coiled(_) => None,
        }
    }

    /// Whether job variable defaults name resources of this cloud in another scope only (ARNs
    /// of other AWS accounts): such a pool cannot be using this scope's resources.
    pub fn names_other_scopes_only(&self, defaults: &Value) -> bool {
        match self {
            Self::Aws(aws) => {
                let accounts = aws::accounts_in(defaults);
                !accounts.is_empty() && !accounts.contains(&aws.account_id)
            }
            Self::Gcp(gcp) => {
                let projects = gcp::projects_in(defaults);
                !projects.is_empty() && !projects.iter().any(|p| p == gcp.project())
            }
            Self::Azure(azure) => {
                let subscriptions = azure::subscriptions_in(defaults);
                !subscriptions.is_empty() && !subscriptions.iter().any(|s| s.eq_ignore_ascii_case(azure.subscription()))
            }
            Self::Modal(_) | Self::Coiled(_) => false,
        }
    }

    /// How Docker authenticates to this cloud's registry.
    pub fn registry_login(&self) -> BoxFuture<'_, Result<RegistryAuth>> {
        match self {
            Self::Aws(aws) => Box::pin(async {
                let (user, password) = aws.docker_credentials().await?;
                Ok(RegistryAuth::Password { user, password, lasts: "12 hours" })
            }),
            // gcloud's credential helper mints a fresh token per pull; without gcloud, the
            // run's own access token, which lasts an hour.
            Self::Gcp(gcp) => Box::pin(async {
                Ok(match gcp.gcloud {
                    Some(_) => RegistryAuth::Helper("gcloud"),
                    None => RegistryAuth::Password { user: "oauth2accesstoken".to_owned(), password: gcp.token.clone(), lasts: "an hour" },
                })
            }),
            // The registry's own token, for a host known only after apply.
            Self::Azure(_) => Box::pin(async { Ok(RegistryAuth::Exchange) }),
            Self::Modal(_) | Self::Coiled(_) => Box::pin(async { Err(Error::usage(format!("{} token", self.name()), "has no image registry")) }),
        }
    }

    /// Docker credentials for `registry` from its cloud's token exchange ([`RegistryAuth::Exchange`]).
    pub fn exchanged_login<'a>(&'a self, registry: &'a str) -> BoxFuture<'a, Result<(String, Secret)>> {
        match self {
            Self::Azure(azure) => Box::pin(azure::registry_credentials(azure, registry)),
            _ => Box::pin(async move { Err(Error::usage(format!("registry {registry}"), format!("{} has no token exchange", self.name()))) }),
        }
    }

    /// How to log Docker in by hand, for when pushpool could not.
    pub fn registry_login_hint(&self, registry: &str) -> String {
        match self {
            Self::Aws(_) => format!("aws ecr get-login-password | docker login --username AWS --password-stdin {registry}"),
            Self::Gcp(_) => format!("gcloud auth configure-docker {registry}"),
            Self::Azure(_) => format!("az acr login --name {}", registry.split('.').next().unwrap_or(registry)),
            Self::Modal(_) | Self::Coiled(_) => format!("docker login {registry}"),
        }
    }

    /// The scope within which two pools' nodes of `kind` with one name are one resource:
    /// IAM is account-wide, the rest regional.
    pub fn node_scope(&self, kind: &str) -> String {
        match self {
            Self::Aws(aws) if kind.starts_with("aws.iam_") => aws.account_id.clone(),
            Self::Aws(aws) => format!("{}/{}", aws.account_id, aws.region),
            Self::Gcp(gcp) if kind == "gcp.artifact_repository" => format!("{}/{}", gcp.project(), gcp.region()),
            Self::Gcp(gcp) => gcp.project().to_owned(),
            Self::Azure(azure) if kind.starts_with("azure.application") || kind == "azure.service_principal" || kind == "azure.client_secret" => azure.tenant.clone(),
            Self::Azure(azure) => azure.subscription().to_owned(),
            Self::Modal(_) | Self::Coiled(_) => String::new(),
        }
    }
}

/// How Docker authenticates to a registry.
pub enum RegistryAuth {
    /// `docker login` with this user and password, which stay valid for `lasts`.
    Password {
        /// The user name.
        user: String,
        /// The password (a token).
        password: Secret,
        /// How long the login lasts, in words.
        lasts: &'static str,
    },
    /// `docker login` with a token the registry issues for the cloud's own token, once its
    /// host is known ([`CloudContext::exchanged_login`]).
    Exchange,
    /// A credential helper entry for the registry in Docker's configuration
    /// (`docker-credential-<name>`), which fetches a fresh token on every use.
    Helper(&'static str),
}

/// `clouds` with each scope (target) once, in their first order: pools in one AWS account
/// connect to it one by one, but lock, show and log in to it once.
pub fn distinct<'a>(clouds: impl IntoIterator<Item = &'a CloudContext>) -> Vec<&'a CloudContext> {
    let mut seen: Vec<&CloudContext> = Vec::new();
    for cloud in clouds {
        if !seen.iter().any(|c| c.target() == cloud.target()) {
            seen.push(cloud);
        }
    }
    seen
}

/// The rule, from its cloud's table, of the name a node of `kind` gives its resource; None for
/// a kind whose resource takes no name of its own, or a Prefect kind (see [`crate::request`]).
pub fn name_rule(kind: &Kind) -> Option<&'static Rule> {
    match kind.system() {
        "aws" => aws::names::rule(kind),
        "gcp" => gcp::names::rule(kind),
        "azure" => azure::names::rule(kind),
        "modal" => modal::names::rule(kind),
        _ => None,
    }
}

/// The rule of the tag value `cloud` marks every resource with the pool's name
/// (`prefect.work-pool=<pool>`); None where the marking fits any name (GCP's labels are made
/// from it, see [`gcp::MARKING`]) or the cloud holds no resources (Modal, Coiled).
pub fn pool_tag_rule(cloud: &str) -> Option<&'static Rule> {
    match cloud {
        "aws" => Some(&aws::names::TAG_VALUE),
        "azure" => Some(&azure::names::TAG_VALUE),
        _ => None,
    }
}

/// The most credentials of `kind` one owner may have, and whose limit it is; None for a kind
/// that is no minted credential. Several pools of a run can share an owner, so the run counts
/// them all against this, before any read.
pub fn credential_limit(kind: &Kind) -> Option<(usize, &'static str)> {
    match kind {
        Kind::AwsIamAccessKey(_) => Some(aws::KEYS_PER_USER),
        Kind::GcpServiceAccountKey(_) => Some(gcp::KEYS_PER_ACCOUNT),
        Kind::AzureClientSecret(_) => Some(azure::SECRETS_PER_APPLICATION),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Attr;

    #[test]
    fn a_local_token_is_a_secret_attribute_and_never_part_of_the_target() {
        let token = modal::token::ModalToken {
            token_id: "ak-1".into(),
            token_secret: Secret::new("as-very-secret"),
            source: modal::token::TokenSource::Environment,
            environment: None,
        };
        let cloud = CloudContext::Modal(Arc::new(token));
        let attrs = cloud.attrs();
        assert_eq!(attrs.public().keys().collect::<Vec<_>>(), ["token_id"]);
        assert!(matches!(attrs.get("token_secret"), Some(Attr::Secret(_))));
        assert_eq!(serde_json::to_string(&cloud.target()).unwrap(), r#"{"cloud":"modal","token_id":"ak-1"}"#);
        assert_eq!(cloud.lock_scope(), None, "nothing is built in Modal: the pool alone is locked");
        assert!(!cloud.names_other_scopes_only(&serde_json::json!({"cluster": "arn:aws:ecs:us-east-1:1:cluster/c"})));
    }
}
