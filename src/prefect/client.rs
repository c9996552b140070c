//! The Prefect REST client: work pools, block types, schemas and documents, default job
//! templates. One code path for Prefect Cloud (`Authorization: Bearer <key>`) and a
//! self-hosted server.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::settings::PrefectSettings;
use crate::retry::{ATTEMPTS, backoff};
use crate::error::{Error, Result};
use crate::secret::Secret;

/// A work pool as the API returns it (the fields pushpool uses).
#[derive(Debug, Clone, Deserialize)]
pub struct WorkPool {
    /// The pool's name.
    pub name: String,
    /// The pool's type, e.g. `ecs:push`.
    #[serde(rename = "type")]
    pub pool_type: String,
    /// Its base job template (`{}` when created without one).
    #[serde(default)]
    pub base_job_template: Value,
}

/// A block document (secret fields come back obfuscated: pushpool never asks for them).
#[derive(Debug, Clone, Deserialize)]
pub struct BlockDocument {
    /// The document's id, which job variables reference.
    pub id: String,
    /// The document's name.
    #[serde(default)]
    pub name: String,
    /// Its block type.
    #[serde(default)]
    pub block_type_id: String,
    /// The schema its data follows.
    #[serde(default)]
    pub block_schema_id: String,
    /// The document's data.
    #[serde(default)]
    pub data: Value,
}

/// A block schema version.
#[derive(Debug, Clone, Deserialize)]
pub struct BlockSchema {
    /// The schema's id.
    pub id: String,
    /// The collection version that registered it, e.g. "0.7.12".
    #[serde(default)]
    pub version: String,
}

/// A Prefect variable: a named JSON value.
#[derive(Debug, Clone, Deserialize)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// Its value.
    #[serde(default)]
    pub value: Value,
}

#[derive(Deserialize)]
struct BlockType {
    id: String,
}

/// What a request got back, beside errors.
enum Reply {
    /// A success, with its JSON body (Null when empty).
    Body(Value),
    /// 404.
    NotFound,
    /// 409: an object of that name exists.
    Conflict,
}

/// A client of one Prefect API.
#[derive(Clone)]
pub struct PrefectClient {
    http: reqwest::Client,
    api_url: String,
    api_key: Option<Secret>,
    /// Whether the API is Prefect Cloud's, which serves some things elsewhere.
    cloud: bool,
}

impl PrefectClient {
    /// A client for the API in `settings`.
    pub fn new(settings: &PrefectSettings) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("pushpool/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::usage("HTTP client", e.to_string()))?;
        Ok(Self { http, api_url: settings.api_url.clone(), api_key: settings.api_key.clone(), cloud: settings.is_cloud() })
    }

    /// The API URL, for messages and plan headers.
    pub fn api_url(&self) -> &str {
        &self.api_url
    }

    /// The work pool named `name`, if it exists.
    pub async fn work_pool(&self, name: &str) -> Result<Option<WorkPool>> {
        let what = format!("work pool '{name}'");
        self.get_optional(&format!("/work_pools/{}", encode(name)), &what).await
    }

    /// Creates a work pool; one that appeared meanwhile (a retried or concurrent create) gets
    /// the template instead.
    pub async fn create_work_pool(&self, name: &str, pool_type: &str, template: &Value, paused: bool) -> Result<()> {
        let body = json!({"name": name, "type": pool_type, "base_job_template": template, "is_paused": paused});
        match self.request(Method::POST, "/work_pools/", Some(body), &format!("work pool '{name}'")).await? {
            Reply::Conflict => self.update_work_pool(name, template).await,
            _ => Ok(()),
        }
    }

    /// Replaces a work pool's base job template.
    pub async fn update_work_pool(&self, name: &str, template: &Value) -> Result<()> {
        let body = json!({"base_job_template": template});
        let path = format!("/work_pools/{}", encode(name));
        self.send(Method::PATCH, &path, Some(body), &format!("work pool '{name}'")).await.map(drop)
    }

    /// The default base job template of `pool_type`, else of its worker type `fallback` (the
    /// hybrid twin a push type shares its template with), as Prefect's own CLI finds them:
    /// Prefect Cloud serves every type, push types included, at `collections/work_pool_types`; a
    /// self-hosted server has the workers' templates in its collections view.
    pub async fn default_base_job_template(&self, pool_type: &str, fallback: &str) -> Result<Value> {
        let (path, what) = match self.cloud {
            true => ("/collections/work_pool_types", "Prefect Cloud's work pool types"),
            false => ("/collections/views/aggregate-worker-metadata", "Prefect worker metadata"),
        };
        let view = self.send(Method::GET, path, None, what).await?;
        let workers: Vec<(&String, &Value)> = view.as_object().into_iter().flat_map(|c| c.values()).filter_map(Value::as_object).flatten().collect();
        let template_of = |wanted: &str| {
            workers
                .iter()
                .find(|(key, worker)| worker.get("type").and_then(Value::as_str).unwrap_or(key) == wanted)
                .and_then(|(_, worker)| worker.get("default_base_job_configuration").cloned())
        };
        template_of(pool_type).or_else(|| template_of(fallback)).ok_or_else(|| {
            Error::remote(format!("work pool type '{pool_type}'"), format!("{what} at {} have no default base job template for it", self.api_url))
                .fix(format!("pass one with --base-job-template FILE (Prefect Cloud gives it: `prefect work-pool get-default-base-job-template --type {pool_type}`), or create the pool in Prefect Cloud and run `pushpool work-pool provision-infra`"))
        })
    }

    /// The id of the block type `slug`, or an error naming the server and giving `fix`
    /// (which package registers the type, or that only Prefect Cloud has it).
    pub async fn block_type_id(&self, slug: &str, fix: &str) -> Result<String> {
        let what = format!("block type '{slug}'");
        let found: Option<BlockType> = self.get_optional(&format!("/block_types/slug/{}", encode(slug)), &what).await?;
        found.map(|t| t.id).ok_or_else(|| Error::usage(what, format!("is not registered on the Prefect server at {}; nothing was written", self.api_url)).fix(fix))
    }

    /// The newest schema of a block type, by version, not the first one the server lists:
    /// two versions of `aws-credentials` can exist (bundled and installed).
    pub async fn newest_block_schema(&self, block_type_id: &str) -> Result<BlockSchema> {
        let body = json!({"block_schemas": {"block_type_id": {"any_": [block_type_id]}}});
        let what = "block schemas";
        let schemas: Vec<BlockSchema> = serde_json::from_value(self.send(Method::POST, "/block_schemas/filter", Some(body), what).await?)
            .map_err(|e| Error::remote(what, e.to_string()))?;
        schemas
            .into_iter()
            .max_by(|a, b| version_key(&a.version).cmp(&version_key(&b.version)))
            .ok_or_else(|| Error::remote(what, format!("block type {block_type_id} has no schema")))
    }

    /// The block document `name` of type `slug`; its secret values only with
    /// `include_secrets`, for comparing them with values known at plan time (never shown).
    pub async fn block_document(&self, slug: &str, name: &str, include_secrets: bool) -> Result<Option<BlockDocument>> {
        let query = if include_secrets { "?include_secrets=true" } else { "" };
        let path = format!("/block_types/slug/{}/block_documents/name/{}{query}", encode(slug), encode(name));
        self.get_optional(&path, &format!("block '{slug}/{name}'")).await
    }

    /// The value of the variable `name`, if it exists.
    pub async fn variable(&self, name: &str) -> Result<Option<Value>> {
        let found = self.send_optional(Method::GET, &format!("/variables/name/{}", encode(name)), None, &format!("Prefect variable {name}")).await?;
        Ok(found.map(|v| v["value"].clone()))
    }

    /// Every variable tagged `tag`, with its value.
    pub async fn variables_tagged(&self, tag: &str) -> Result<Vec<Variable>> {
        let filter = json!({"variables": {"tags": {"all_": [tag]}}});
        self.every("/variables/filter", filter, &format!("Prefect variables tagged {tag}")).await
    }

    /// Creates the variable `name` tagged `tags`; false when one of that name exists.
    pub async fn create_variable(&self, name: &str, value: &Value, tags: &[&str]) -> Result<bool> {
        let body = json!({"name": name, "value": value, "tags": tags});
        match self.request(Method::POST, "/variables/", Some(body), &format!("Prefect variable {name}")).await? {
            Reply::Conflict => Ok(false),
            _ => Ok(true),
        }
    }

    /// Sets the value of the existing variable `name`.
    pub async fn set_variable(&self, name: &str, value: &Value) -> Result<()> {
        let path = format!("/variables/name/{}", encode(name));
        self.send(Method::PATCH, &path, Some(json!({"value": value})), &format!("Prefect variable {name}")).await.map(drop)
    }

    /// Deletes the variable `name` (a missing one is fine).
    pub async fn delete_variable(&self, name: &str) -> Result<()> {
        self.send_optional(Method::DELETE, &format!("/variables/name/{}", encode(name)), None, &format!("Prefect variable {name}")).await.map(drop)
    }

    /// Every block document of type `slug` (secret fields obfuscated).
    pub async fn block_documents_of_type(&self, slug: &str) -> Result<Vec<BlockDocument>> {
        let filter = json!({"block_types": {"slug": {"any_": [slug]}}});
        self.every("/block_documents/filter", filter, &format!("blocks of type '{slug}'")).await
    }

    /// Every named block document of the workspace (secret fields obfuscated).
    pub async fn block_documents(&self) -> Result<Vec<BlockDocument>> {
        self.every("/block_documents/filter", json!({}), "blocks").await
    }

    /// Every work pool of the workspace.
    pub async fn work_pools(&self) -> Result<Vec<WorkPool>> {
        self.every("/work_pools/filter", json!({}), "work pools").await
    }

    /// Deletes a block document (a missing one is fine).
    pub async fn delete_block_document(&self, id: &str) -> Result<()> {
        self.send_optional(Method::DELETE, &format!("/block_documents/{id}"), None, &format!("block document {id}")).await.map(drop)
    }

    /// Deletes a work pool (a missing one is fine).
    pub async fn delete_work_pool(&self, name: &str) -> Result<()> {
        let path = format!("/work_pools/{}", encode(name));
        self.send_optional(Method::DELETE, &path, None, &format!("work pool '{name}'")).await.map(drop)
    }

    /// Everything a `filter` endpoint returns for `filter`, page by page.
    async fn every<T: serde::de::DeserializeOwned>(&self, path: &str, filter: Value, what: &str) -> Result<Vec<T>> {
        const PAGE: usize = 200;
        let mut all = Vec::new();
        loop {
            let mut body = filter.clone();
            body["limit"] = json!(PAGE);
            body["offset"] = json!(all.len());
            let page: Vec<T> = serde_json::from_value(self.send(Method::POST, path, Some(body), what).await?)
                .map_err(|e| Error::remote(what, e.to_string()))?;
            let done = page.len() < PAGE;
            all.extend(page);
            if done {
                return Ok(all);
            }
        }
    }

    /// Creates a block document and returns its id; one that appeared meanwhile (a retried
    /// or concurrent create) is updated instead. `data` may hold secrets: it goes into the
    /// request body only.
    pub async fn create_block_document(&self, slug: &str, name: &str, type_id: &str, schema_id: &str, data: Value) -> Result<String> {
        let what = format!("block '{slug}/{name}'");
        let body = json!({"name": name, "block_type_id": type_id, "block_schema_id": schema_id, "data": data, "is_anonymous": false});
        match self.request(Method::POST, "/block_documents/", Some(body.clone()), &what).await? {
            Reply::Body(created) => created["id"].as_str().map(str::to_owned).ok_or_else(|| Error::remote(&what, "created without an id")),
            Reply::Conflict => {
                let existing = self.block_document(slug, name, false).await?.ok_or_else(|| Error::remote(&what, "exists and then does not"))?;
                self.update_block_document(&existing.id, schema_id, body["data"].clone()).await?;
                Ok(existing.id)
            }
            Reply::NotFound => Err(Error::remote(&what, "POST /block_documents/ found nothing (404)")),
        }
    }

    /// Updates a block document's fields in `data`, keeping the others (the secret, when the
    /// key did not change).
    pub async fn update_block_document(&self, id: &str, schema_id: &str, data: Value) -> Result<()> {
        let body = json!({"block_schema_id": schema_id, "data": data, "merge_existing_data": true});
        self.send(Method::PATCH, &format!("/block_documents/{id}"), Some(body), &format!("block document {id}")).await.map(drop)
    }

    async fn get_optional<T: serde::de::DeserializeOwned>(&self, path: &str, what: &str) -> Result<Option<T>> {
        match self.send_optional(Method::GET, path, None, what).await? {
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| Error::remote(what, e.to_string())),
            None => Ok(None),
        }
    }

    /// Sends a request whose object may be missing (404 is None).
    async fn send_optional(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Option<Value>> {
        let shown = format!("{method} {path}");
        match self.request(method, path, body, what).await? {
            Reply::Body(value) => Ok(Some(value)),
            Reply::NotFound => Ok(None),
            Reply::Conflict => Err(Error::remote(what, format!("{shown} was refused: it already exists (409)"))),
        }
    }

    /// Sends a request that must find its object.
    async fn send(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        let shown = format!("{method} {path}");
        self.send_optional(method, path, body, what)
            .await?
            .ok_or_else(|| Error::remote(what, format!("{shown} found nothing (404)")))
    }

    /// Sends a request and returns the JSON body (Null for an empty one), 404 or 409.
    /// Connection failures and answers that say the server did not handle the request (429,
    /// 502, 503, 504: a busy SQLite-backed server answers 503) are retried with backoff (or
    /// the server's `Retry-After`), up to [`ATTEMPTS`] times in all.
    /// Errors name `what` and carry the server's `detail`, never the request body.
    async fn request(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Reply> {
        let url = format!("{}{path}", self.api_url);
        let mut attempt = 1;
        let response = loop {
            let mut request = self.http.request(method.clone(), &url);
            if let Some(key) = &self.api_key {
                request = request.bearer_auth(key.expose());
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            // A create sent twice is refused by name (409) and adopted by the caller, so every
            // method may be retried after a connection failure.
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(unreachable(&self.api_url, &e)),
            };
            let retryable = matches!(response.status().as_u16(), 429 | 502 | 503 | 504);
            if !retryable || attempt == ATTEMPTS {
                break response;
            }
            let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let status = response.status();
        let text = response.text().await.map_err(|e| unreachable(&self.api_url, &e))?;
        if status.is_success() {
            return Ok(Reply::Body(serde_json::from_str(&text).unwrap_or(Value::Null)));
        }
        match status {
            StatusCode::NOT_FOUND => return Ok(Reply::NotFound),
            StatusCode::CONFLICT => return Ok(Reply::Conflict),
            _ => {}
        }
        let detail = error_detail(&text);
        let error = Error::remote(what, format!("{method} {path} was refused ({status}): {detail}"));
        Err(match status {
            StatusCode::UNAUTHORIZED => error.fix("check PREFECT_API_KEY (or run `prefect cloud login`)"),
            StatusCode::FORBIDDEN => error.fix("check that PREFECT_API_KEY may write to this workspace, and that the name does not start with 'prefect'"),
            _ => error,
        })
    }
}

/// The server's explanation of an error. FastAPI's validation errors (422) list each field
/// with the value that was sent (`input`), which for a block is a secret: only the field's
/// location and the message are kept.
fn error_detail(body: &str) -> String {
    let Ok(parsed) = serde_json::from_str::<Value>(body) else {
        return "the server's answer is not JSON".to_owned();
    };
    match parsed.get("detail") {
        Some(Value::String(detail)) => detail.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let location: Vec<String> =
                    item["loc"].as_array().into_iter().flatten().map(|l| l.as_str().map(str::to_owned).unwrap_or_else(|| l.to_string())).collect();
                format!("{}: {}", location.join("."), item["msg"].as_str().unwrap_or("invalid"))
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(other) => other.to_string(),
        None => parsed.get("exception_message").and_then(Value::as_str).unwrap_or("no detail").to_owned(),
    }
}

/// The server's `Retry-After` in seconds, capped at a minute.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response.headers().get("retry-after")?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.min(60)))
}

/// The error for a server that did not answer: names the URL, the cause and the fix.
fn unreachable(api_url: &str, error: &reqwest::Error) -> Error {
    let mut cause = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        cause = format!("{cause}: {inner}");
        source = inner.source();
    }
    Error::remote(format!("Prefect API at {api_url}"), format!("unreachable: {cause}"))
        .fix("start the server (`prefect server start`) or set PREFECT_API_URL / the active profile to a reachable API")
}

/// Percent-encodes one path segment.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Orders schema versions numerically ("0.10.1" after "0.7.12"); a version that is not
/// dotted numbers sorts first.
fn version_key(version: &str) -> Vec<u64> {
    version.split('.').map(|part| part.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_version_is_chosen_numerically() {
        let mut versions = ["0.4.14", "0.7.12", "0.10.1", "non-versioned"];
        versions.sort_by_key(|v| version_key(v));
        assert_eq!(versions.last(), Some(&"0.10.1"));
    }

    #[test]
    fn validation_errors_never_echo_the_submitted_values() {
        let body = r#"{"detail":[{"type":"string_pattern_mismatch","loc":["body","name"],"msg":"String should match pattern","input":"wJalrXUtnFEMI/K7MDENG"}]}"#;
        assert_eq!(error_detail(body), "body.name: String should match pattern");
        assert_eq!(error_detail(r#"{"detail":"Work pool already exists."}"#), "Work pool already exists.");
        assert_eq!(error_detail("<html>secret</html>"), "the server's answer is not JSON");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("my pool/x"), "my%20pool%2Fx");
    }
}
