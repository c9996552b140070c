//! Google Cloud's REST APIs, as pushpool calls them: one [`Api`] per service on the shared
//! JSON transport ([`crate::http`]), Google's error envelope read for its status, reason and
//! violations, and long-running operations polled to their end.
//!
//! Hand-written rather than Google's generated `google-cloud-*` clients: pushpool makes about
//! fifteen distinct calls, and those crates add some 130 packages (tonic, prost and
//! opentelemetry through the long-running-operation crate) to a build that is already long;
//! the README's dependency section has the numbers.

use reqwest::Method;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Answer, JsonApi, Service, encode};
use crate::prefect::settings::Env;
use crate::retry::poll_wait;
use crate::secret::Secret;

/// One Google API: its name in endpoint-override variables, and its public root URL.
#[derive(Debug, Clone, Copy)]
pub struct ApiName {
    /// gcloud's name for it, upper-cased in `CLOUDSDK_API_ENDPOINT_OVERRIDES_<NAME>`.
    pub name: &'static str,
    /// The root URL the discovery document names.
    pub root: &'static str,
}

/// Identity and Access Management (service accounts and their keys).
pub const IAM: ApiName = ApiName { name: "iam", root: "https://iam.googleapis.com/" };
/// Cloud Resource Manager (the project and its IAM policy).
pub const RESOURCE_MANAGER: ApiName = ApiName { name: "cloudresourcemanager", root: "https://cloudresourcemanager.googleapis.com/" };
/// Service Usage (enabling APIs).
pub const SERVICE_USAGE: ApiName = ApiName { name: "serviceusage", root: "https://serviceusage.googleapis.com/" };
/// Artifact Registry (the image repository).
pub const ARTIFACT_REGISTRY: ApiName = ApiName { name: "artifactregistry", root: "https://artifactregistry.googleapis.com/" };

/// How many times an operation is polled (about four minutes with the backoff below).
const POLLS: u32 = 60;

/// A client of one Google API.
#[derive(Clone)]
pub struct Api {
    json: JsonApi,
}

/// Google's error envelope, read from an answer.
#[derive(Debug, Default)]
pub struct GoogleError {
    /// The message.
    pub message: String,
    /// `ErrorInfo.reason` of the details: `SERVICE_DISABLED`.
    pub reason: Option<String>,
    /// `PreconditionFailure` violation types: `constraints/iam.disableServiceAccountKeyCreation`.
    pub violations: Vec<String>,
}

impl GoogleError {
    /// Reads the envelope of `answer` (empty fields when it has none).
    pub fn of(answer: &Answer) -> Self {
        let error = &answer.body["error"];
        let details = error["details"].as_array().map(Vec::as_slice).unwrap_or_default();
        let typed = |suffix: &'static str| details.iter().filter(move |d| d["@type"].as_str().is_some_and(|t| t.ends_with(suffix)));
        Self {
            message: error["message"].as_str().unwrap_or_default().to_owned(),
            reason: typed("google.rpc.ErrorInfo").find_map(|d| d["reason"].as_str()).map(str::to_owned),
            violations: typed("google.rpc.PreconditionFailure")
                .flat_map(|d| d["violations"].as_array().cloned().unwrap_or_default())
                .filter_map(|v| v["type"].as_str().map(str::to_owned))
                .collect(),
        }
    }
}

impl Api {
    /// The client of `api`, at `CLOUDSDK_API_ENDPOINT_OVERRIDES_<NAME>` when set (gcloud's own
    /// variable: a root URL, to which the API's versioned paths are appended).
    pub fn new(api: ApiName, env: &dyn Env, token: &Secret) -> Result<Self> {
        let variable = format!("CLOUDSDK_API_ENDPOINT_OVERRIDES_{}", api.name.to_uppercase());
        let mut base_url = env.var(&variable).unwrap_or_else(|| api.root.to_owned());
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        let service = Service {
            name: format!("Google Cloud {} API at {base_url}", api.name),
            base_url,
            token: Some(token.clone()),
            unauthorized_fix: "the token was refused: run `gcloud auth application-default login` again (or check GOOGLE_APPLICATION_CREDENTIALS), then run again".into(),
            forbidden_fix: "grant the caller the permissions of policies/gcp/operator-apply.json on the project (a plan needs operator-plan.json), then run again".into(),
            unreachable_fix: "check the network, or the CLOUDSDK_API_ENDPOINT_OVERRIDES_* variables, then run again".into(),
            not_json_fix: "check the CLOUDSDK_API_ENDPOINT_OVERRIDES_* variables: they must name the API's root URL".into(),
        };
        Ok(Self { json: JsonApi::new(service)? })
    }

    /// Sends a request and returns the answer, whatever its status (429 and 5xx retried).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        self.json.exchange(method, path, body).await
    }

    /// The error for an answer that refused a request, with Google's status and message.
    pub fn refused(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> Error {
        let error = self.json.refused(method, path, answer, what);
        match GoogleError::of(answer).reason.as_deref() {
            Some("SERVICE_DISABLED") => {
                Error { fix: None, ..error }.fix("the API is not enabled in the project: the plan's 'Google APIs' step enables it; run again, or enable it in the console")
            }
            _ => error,
        }
    }

    /// GETs an object: None when it does not exist (404).
    pub async fn get(&self, path: &str, what: &str) -> Result<Option<Value>> {
        self.call(Method::GET, path, None).await?.found(|answer| self.refused(&Method::GET, path, answer, what))
    }

    /// Sends a request that must succeed, and returns its body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        let answer = self.call(method.clone(), path, body).await?;
        if answer.status.is_success() {
            return Ok(answer.body);
        }
        Err(self.refused(&method, path, &answer, what))
    }

    /// The items (`field` of each page) of a list method, following `nextPageToken` until
    /// the end or until `enough` items are in (`usize::MAX`: all of them). Google may answer
    /// a page with fewer items than asked, even none, and a token for the next: no page but
    /// the last says that there is nothing more.
    pub async fn list(&self, path: &str, field: &str, what: &str, enough: usize) -> Result<Vec<Value>> {
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page_path = match &token {
                Some(token) => format!("{path}{}pageToken={}", if path.contains('?') { '&' } else { '?' }, encode(token)),
                None => path.to_owned(),
            };
            let mut page = self.send(Method::GET, &page_path, None, what).await?;
            if let Value::Array(found) = page[field].take() {
                items.extend(found);
            }
            match page["nextPageToken"].as_str().filter(|next| !next.is_empty()) {
                Some(next) if items.len() < enough => token = Some(next.to_owned()),
                _ => return Ok(items),
            }
        }
    }

    /// Sends a DELETE; one of an object already gone is fine. Returns the body (an operation
    /// for some APIs) when there was something to delete.
    pub async fn delete(&self, path: &str, what: &str) -> Result<Option<Value>> {
        self.call(Method::DELETE, path, None).await?.found(|answer| self.refused(&Method::DELETE, path, answer, what))
    }

    /// Polls a long-running operation (`{"name", "done"}`) until it is done, and returns its
    /// `response`. An operation that fails or does not end in time is an error naming it.
    pub async fn finish(&self, operation: Value, what: &str) -> Result<Value> {
        let mut operation = operation;
        for poll in 0..POLLS {
            if operation["done"].as_bool() == Some(true) {
                if let Some(error) = operation.get("error") {
                    let message = error["message"].as_str().unwrap_or("no message");
                    return Err(Error::remote(what, format!("operation {} failed: {message}", operation["name"].as_str().unwrap_or("?"))));
                }
                return Ok(operation.get("response").cloned().unwrap_or(Value::Null));
            }
            let name = operation["name"].as_str().ok_or_else(|| Error::remote(what, "the operation has no name to poll"))?.to_owned();
            tokio::time::sleep(poll_wait(poll)).await;
            operation = self.send(Method::GET, &format!("v1/{name}"), None, what).await?;
        }
        Err(Error::remote(what, format!("operation {} did not finish within about four minutes", operation["name"].as_str().unwrap_or("?")))
            .fix("it may still finish: run again later, and pushpool picks up where it is"))
    }
}

#[cfg(test)]
mod tests {
    use reqwest::StatusCode;

    use super::*;

    #[test]
    fn the_envelope_gives_status_reason_and_violations() {
        let body = serde_json::json!({"error": {"code": 400, "status": "FAILED_PRECONDITION", "message": "Key creation is not allowed on this service account.",
            "details": [{"@type": "type.googleapis.com/google.rpc.PreconditionFailure", "violations": [{"type": "constraints/iam.disableServiceAccountKeyCreation", "subject": "projects/1"}]},
                        {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SOME_REASON"}]}});
        let answer = Answer::new(StatusCode::BAD_REQUEST, body);
        let error = GoogleError::of(&answer);
        assert_eq!(error.message, "Key creation is not allowed on this service account.");
        assert_eq!(error.reason.as_deref(), Some("SOME_REASON"));
        assert_eq!(error.violations, ["constraints/iam.disableServiceAccountKeyCreation"]);
        assert!(GoogleError::of(&Answer::new(StatusCode::OK, Value::Null)).message.is_empty());
    }
}
