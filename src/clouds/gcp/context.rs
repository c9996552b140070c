//! A connected Google Cloud project: where a run works (project and region, resolved as gcloud
//! resolves them), its token, its API clients, and the labels pushpool puts on what it creates.

use std::path::PathBuf;

use reqwest::StatusCode;
use serde_json::Value;

use super::api::{ARTIFACT_REGISTRY, Api, GoogleError, IAM, RESOURCE_MANAGER, SERVICE_USAGE};
use super::auth::{self, TokenSource};
use super::config::{self, Placement};
use crate::clouds::Scope;
use crate::engine::Attrs;
use crate::engine::ownership::Marking;
use crate::error::{Error, Result};
use crate::prefect::settings::ProcessEnv;
use crate::secret::Secret;

/// How pushpool marks GCP resources: labels, whose keys take only `[a-z0-9_-]`.
pub const MARKING: Marking = Marking { pool_key: "prefect-work-pool" };

/// One project and region, connected.
pub struct GcpContext {
    /// Where the run works, and where that came from.
    pub placement: Placement,
    /// The project's number, which Google puts in some resource names.
    pub project_number: String,
    /// The pool this context provisions, for the labels of what it creates.
    pub pool: String,
    /// Where the token came from.
    pub token_source: TokenSource,
    /// The access token, for Docker's login to Artifact Registry.
    pub token: Secret,
    /// gcloud, when installed: Docker then uses its credential helper.
    pub gcloud: Option<PathBuf>,
    /// IAM: service accounts and keys.
    pub iam: Api,
    /// Cloud Resource Manager: the project and its IAM policy.
    pub resource_manager: Api,
    /// Service Usage: the project's APIs.
    pub service_usage: Api,
    /// Artifact Registry: the image repository.
    pub artifact_registry: Api,
}

impl GcpContext {
    /// Resolves project, region and token, and reads the project: a project that does not
    /// exist (or that the credentials cannot see) stops the run here, before any other call.
    pub async fn connect(pool: &str, scope: &Scope) -> Result<Self> {
        let placement = config::resolve(&ProcessEnv, scope.project.as_deref(), scope.region.as_deref())?;
        let token = auth::token().await?;
        let api = |name| Api::new(name, &ProcessEnv, &token.secret);
        let resource_manager = api(RESOURCE_MANAGER)?;
        let project = &placement.project;
        let path = format!("v3/projects/{project}");
        let answer = resource_manager.call(reqwest::Method::GET, &path, None).await?;
        let what = format!("Google Cloud project '{project}' (from {})", placement.project_source.describe("project"));
        let found = match answer.status {
            status if status.is_success() => answer.body,
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => {
                return Err(Error::usage(what, format!("does not exist, or the credentials may not see it ({})", GoogleError::of(&answer).message))
                    .fix("check the id (`gcloud projects list`), or grant the caller resourcemanager.projects.get on it, then run again"));
            }
            _ => return Err(resource_manager.refused(&reqwest::Method::GET, &path, &answer, &what)),
        };
        if found["state"].as_str().is_some_and(|state| state != "ACTIVE") {
            return Err(Error::usage(what, format!("is {}, not ACTIVE", found["state"].as_str().unwrap_or_default()))
                .fix("restore it (`gcloud projects undelete`) or pick another project with --project"));
        }
        let project_number = found["name"].as_str().and_then(|n| n.strip_prefix("projects/")).unwrap_or_default().to_owned();
        Ok(Self {
            iam: api(IAM)?,
            service_usage: api(SERVICE_USAGE)?,
            artifact_registry: api(ARTIFACT_REGISTRY)?,
            resource_manager,
            placement,
            project_number,
            pool: pool.to_owned(),
            token_source: token.source,
            token: token.secret,
            gcloud: auth::gcloud_on_path(),
        })
    }

    /// The project id.
    pub fn project(&self) -> &str {
        &self.placement.project
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.placement.region
    }

    /// The Artifact Registry host of the region: `<region>-docker.pkg.dev`.
    pub fn registry_host(&self) -> String {
        format!("{}-docker.pkg.dev", self.region())
    }

    /// The attributes `@gcp.<attr>` references may name.
    pub fn attrs(&self) -> Attrs {
        Attrs::new()
            .with("project", self.project())
            .with("project_number", self.project_number.as_str())
            .with("region", self.region())
            .with("registry", self.registry_host())
    }

    /// The labels of what pushpool creates for the pool: its marks, as label values allow.
    pub fn labels(&self) -> Value {
        MARKING.marks(&self.pool).into_iter().map(|(key, value)| (key.to_owned(), Value::from(label_value(value)))).collect()
    }
}

/// A label value: at most 63 lowercase letters, digits, `_` and `-` (others become `_`).
pub fn label_value(text: &str) -> String {
    text.chars().map(|c| c.to_ascii_lowercase()).map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' { c } else { '_' }).take(63).collect()
}

/// The projects named anywhere in `value` by service account emails
/// (`…@<project>.iam.gserviceaccount.com`) or resource names (`projects/<project>/…`): what
/// tells which project a work pool's job variables are about.
pub fn projects_in(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => {
            let email = text.split_once('@').and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"));
            let path = text.strip_prefix("projects/").and_then(|rest| rest.split('/').next());
            email.or(path).filter(|p| !p.is_empty()).map(str::to_owned).into_iter().collect()
        }
        Value::Array(items) => items.iter().flat_map(projects_in).collect(),
        Value::Object(fields) => fields.values().flat_map(projects_in).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn label_values_keep_to_googles_alphabet() {
        assert_eq!(label_value("My Pool.v2"), "my_pool_v2");
        assert_eq!(label_value(&"x".repeat(80)).len(), 63);
    }

    #[test]
    fn projects_come_from_emails_and_resource_names() {
        let defaults = json!({"service_account_name": {"default": "sa@proj-a.iam.gserviceaccount.com"}, "region": {"default": "us-central1"},
            "image": {"default": "projects/proj-b/locations/x"}, "other": "someone@example.com"});
        assert_eq!(projects_in(&defaults), ["proj-b", "proj-a"]);
    }
}
