//! The Prefect REST client: work pools, block types, schemas and documents, variables,
//! default job templates. One code path for Prefect Cloud (`Authorization: Bearer <key>`) and
//! a self-hosted server. The transport (retries, 404 and 409, errors that never echo what was
//! sent) is [`crate::http`]; what is Prefect's (paths, paging, the fixes to show) is here.

use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use super::settings::PrefectSettings;
use crate::error::{Error, Result};
use crate::http::{JsonApi, Reply, Service, encode};
use crate::redact::redact_urls;

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

/// What Prefect shows for each field of a secret (a secret dict's every value) unless asked
/// for secrets.
pub const OBFUSCATED: &str = "********";

/// A block document (secret fields come back as [`OBFUSCATED`] unless asked for).
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

/// A client of one Prefect API.
#[derive(Clone)]
pub struct PrefectClient {
    api: JsonApi,
    /// The API URL as shown: its user-info redacted ([`redact_urls`]).
    shown_url: String,
    /// The API as a plan header names it (see [`PrefectClient::described`]).
    shown: String,
    /// Whether the API is Prefect Cloud's, which serves some things elsewhere.
    cloud: bool,
}

impl PrefectClient {
    /// A client for the API in `settings`. On Prefect Cloud, a refused key or workspace gets
    /// Cloud's fixes (`prefect cloud login`, `prefect cloud workspace set`), naming the
    /// workspace's URL; on a self-hosted server, the server's.
    pub fn new(settings: &PrefectSettings) -> Result<Self> {
        let shown_url = redact_urls(&settings.api_url).into_owned();
        let (unauthorized_fix, forbidden_fix) = match &settings.cloud {
            Some(cloud) => (
                format!(
                    "Prefect Cloud did not accept PREFECT_API_KEY for {shown_url} (a wrong, expired or revoked key): run `prefect cloud login`, or set PREFECT_API_KEY to a valid user key (pnu_...) or service account key (pnb_...)"
                ),
                format!(
                    "the key may not use workspace {} of account {} ({shown_url}): run `prefect cloud workspace set` to choose one it may, or use the key of a member of that workspace with permission to write work pools, blocks and variables",
                    cloud.workspace, cloud.account
                ),
            ),
            None => (
                "check PREFECT_API_KEY (or run `prefect cloud login`)".to_owned(),
                "check that PREFECT_API_KEY may write to this workspace, and that the name does not start with 'prefect'".to_owned(),
            ),
        };
        let service = Service {
            base_url: settings.api_url.clone(),
            token: settings.api_key.clone(),
            name: format!("Prefect API at {shown_url}"),
            unauthorized_fix,
            forbidden_fix,
            unreachable_fix: "start the server (`prefect server start`) or set PREFECT_API_URL / the active profile to a reachable API".into(),
            not_json_fix:
                "is PREFECT_API_URL the API? Prefect's API URL ends in /api (http://127.0.0.1:4200/api for a local server; `prefect cloud login` sets Prefect Cloud's)"
                    .into(),
        };
        let shown = match &settings.cloud {
            Some(cloud) => format!("Prefect Cloud, account {}, workspace {} ({shown_url})", cloud.account, cloud.workspace),
            None => shown_url.clone(),
        };
        Ok(Self { api: JsonApi::new(service)?, shown_url, shown, cloud: settings.is_cloud() })
    }

    /// Where the API is, for plan headers: the URL on a self-hosted server; "Prefect Cloud,
    /// account …, workspace …" and the URL on Prefect Cloud.
    pub fn described(&self) -> &str {
        &self.shown
    }

    /// The API URL for messages, plan headers and plan files: its credentials redacted.
    pub fn api_url(&self) -> &str {
        &self.shown_url
    }

    /// The work pool named `name`, if it exists.
    pub async fn work_pool(&self, name: &str) -> Result<Option<WorkPool>> {
        let what = format!("work pool '{name}'");
        self.api.get_optional(&format!("/work_pools/{}", encode(name)), &what).await
    }

    /// The work pools named `names` that exist, in one filter read (paged): what a run of
    /// several pools reads instead of one `GET` per pool.
    pub async fn work_pools_named(&self, names: &[String]) -> Result<Vec<WorkPool>> {
        self.every("/work_pools/filter", json!({"work_pools": {"name": {"any_": names}}}), "work pools").await
    }

    /// The block documents of type `slug` named `names` that exist (secret fields obfuscated),
    /// in one filter read (paged).
    pub async fn block_documents_named(&self, slug: &str, names: &[String]) -> Result<Vec<BlockDocument>> {
        let filter = json!({"block_types": {"slug": {"any_": [slug]}}, "block_documents": {"name": {"any_": names}}});
        self.every("/block_documents/filter", filter, &format!("blocks of type '{slug}'")).await
    }

    /// The variables named `names` that exist, in one filter read (paged).
    pub async fn variables_named(&self, names: &[String]) -> Result<Vec<Variable>> {
        self.every("/variables/filter", json!({"variables": {"name": {"any_": names}}}), "Prefect variables").await
    }

    /// Creates a work pool; one that appeared meanwhile (a retried or concurrent create) gets
    /// the template instead.
    pub async fn create_work_pool(&self, name: &str, pool_type: &str, template: &Value, paused: bool) -> Result<()> {
        let body = json!({"name": name, "type": pool_type, "base_job_template": template, "is_paused": paused});
        match self.api.request(Method::POST, "/work_pools/", Some(body), &format!("work pool '{name}'")).await? {
            Reply::Conflict => self.update_work_pool(name, template).await,
            _ => Ok(()),
        }
    }

    /// Replaces a work pool's base job template.
    pub async fn update_work_pool(&self, name: &str, template: &Value) -> Result<()> {
        let body = json!({"base_job_template": template});
        let path = format!("/work_pools/{}", encode(name));
        self.api.send(Method::PATCH, &path, Some(body), &format!("work pool '{name}'")).await.map(drop)
    }

    /// The default base job template of `pool_type`, as Prefect's own CLI finds it: Prefect
    /// Cloud serves every type, push types included, at `collections/work_pool_types`; a
    /// self-hosted server has only the workers' templates in its collections view, so a push
    /// type there takes that of its worker type `fallback` (the hybrid twin it shares it with).
    /// On Cloud a type it does not list is an error, never the twin's template.
    pub async fn default_base_job_template(&self, pool_type: &str, fallback: &str) -> Result<Value> {
        let (path, what) = match self.cloud {
            true => ("/collections/work_pool_types", "Prefect Cloud's work pool types"),
            false => ("/collections/views/aggregate-worker-metadata", "Prefect worker metadata"),
        };
        let view = self.api.send(Method::GET, path, None, what).await?;
        let found = template_in(&view, pool_type).or_else(|| if self.cloud { None } else { template_in(&view, fallback) });
        found.ok_or_else(|| {
            Error::remote(format!("work pool type '{pool_type}'"), format!("{what} at {} have no default base job template for it", self.shown_url))
                .fix(format!("pass one with --base-job-template FILE (Prefect Cloud gives it: `prefect work-pool get-default-base-job-template --type {pool_type}`), or create the pool in Prefect Cloud and run `pushpool work-pool provision-infra`"))
        })
    }

    /// The id of the block type `slug`, or an error naming the server and giving `fix`
    /// (which package registers the type, or that only Prefect Cloud has it); on Prefect Cloud,
    /// which has them all, an error that says so.
    pub async fn block_type_id(&self, slug: &str, fix: &str) -> Result<String> {
        let what = format!("block type '{slug}'");
        let found: Option<BlockType> = self.api.get_optional(&format!("/block_types/slug/{}", encode(slug)), &what).await?;
        found.map(|t| t.id).ok_or_else(|| match self.cloud {
            // Cloud has every block type a push pool needs: the fix for a server does not apply.
            true => Error::usage(what, format!("is not registered in the Prefect Cloud workspace at {}; nothing was written", self.shown_url))
                .fix("Prefect Cloud registers it in its workspaces: check that PREFECT_API_URL names the workspace you meant, or register it with `prefect block register -m <the package that defines it>`"),
            false => Error::usage(what, format!("is not registered on the Prefect server at {}; nothing was written", self.shown_url)).fix(fix),
        })
    }

    /// The newest schema of a block type, by version, not the first one the server lists:
    /// two versions of `aws-credentials` can exist (bundled and installed).
    pub async fn newest_block_schema(&self, block_type_id: &str) -> Result<BlockSchema> {
        let filter = json!({"block_schemas": {"block_type_id": {"any_": [block_type_id]}}});
        let what = "block schemas";
        let schemas: Vec<BlockSchema> = self.every("/block_schemas/filter", filter, what).await?;
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
        self.api.get_optional(&path, &format!("block '{slug}/{name}'")).await
    }

    /// The block document with id `id` (secret fields obfuscated), as job variables
    /// reference it.
    pub async fn block_document_by_id(&self, id: &str) -> Result<Option<BlockDocument>> {
        self.api.get_optional(&format!("/block_documents/{}", encode(id)), &format!("block document {id}")).await
    }

    /// The value of the variable `name`, if it exists.
    pub async fn variable(&self, name: &str) -> Result<Option<Value>> {
        let found = self.api.send_optional(Method::GET, &format!("/variables/name/{}", encode(name)), None, &format!("Prefect variable {name}")).await?;
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
        match self.api.request(Method::POST, "/variables/", Some(body), &format!("Prefect variable {name}")).await? {
            Reply::Conflict => Ok(false),
            _ => Ok(true),
        }
    }

    /// Sets the value of the existing variable `name`.
    pub async fn set_variable(&self, name: &str, value: &Value) -> Result<()> {
        let path = format!("/variables/name/{}", encode(name));
        self.api.send(Method::PATCH, &path, Some(json!({"value": value})), &format!("Prefect variable {name}")).await.map(drop)
    }

    /// Deletes the variable `name` (a missing one is fine).
    pub async fn delete_variable(&self, name: &str) -> Result<()> {
        self.api.send_optional(Method::DELETE, &format!("/variables/name/{}", encode(name)), None, &format!("Prefect variable {name}")).await.map(drop)
    }

    /// Every block document of type `slug` (secret fields obfuscated unless `include_secrets`).
    pub async fn block_documents_of_type(&self, slug: &str, include_secrets: bool) -> Result<Vec<BlockDocument>> {
        let filter = json!({"block_types": {"slug": {"any_": [slug]}}, "include_secrets": include_secrets});
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
        self.api.send_optional(Method::DELETE, &format!("/block_documents/{id}"), None, &format!("block document {id}")).await.map(drop)
    }

    /// Deletes a work pool (a missing one is fine).
    pub async fn delete_work_pool(&self, name: &str) -> Result<()> {
        let path = format!("/work_pools/{}", encode(name));
        self.api.send_optional(Method::DELETE, &path, None, &format!("work pool '{name}'")).await.map(drop)
    }

    /// Everything a `filter` endpoint returns for `filter`, page by page: every read of a
    /// collection goes through here.
    ///
    /// No `limit` is sent: a server refuses one above its own `PREFECT_SERVER_API_DEFAULT_LIMIT`
    /// (422), and Prefect Cloud caps it at 200, so the server's page size is whatever it
    /// answers with. A page shorter than that size cannot be told from the last one, so the
    /// reading ends at the first empty page.
    async fn every<T: serde::de::DeserializeOwned>(&self, path: &str, filter: Value, what: &str) -> Result<Vec<T>> {
        let mut all = Vec::new();
        loop {
            let mut body = filter.clone();
            body["offset"] = json!(all.len());
            let page: Vec<T> = serde_json::from_value(self.api.send(Method::POST, path, Some(body), what).await?).map_err(|e| Error::remote(what, e.to_string()))?;
            if page.is_empty() {
                return Ok(all);
            }
            all.extend(page);
        }
    }

    /// Creates a block document and returns its id; one that appeared meanwhile (a retried
    /// or concurrent create) is updated instead. `data` may hold secrets: it goes into the
    /// request body only.
    pub async fn create_block_document(&self, slug: &str, name: &str, type_id: &str, schema_id: &str, data: Value) -> Result<String> {
        let what = format!("block '{slug}/{name}'");
        let body = json!({"name": name, "block_type_id": type_id, "block_schema_id": schema_id, "data": data, "is_anonymous": false});
        match self.api.request(Method::POST, "/block_documents/", Some(body.clone()), &what).await? {
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
        self.api.send(Method::PATCH, &format!("/block_documents/{id}"), Some(body), &format!("block document {id}")).await.map(drop)
    }
}

/// The default base job template of the worker type `wanted` in a collections view
/// (collection → worker → metadata), matched by the worker's `type`, else by its key.
fn template_in(view: &Value, wanted: &str) -> Option<Value> {
    let workers = view.as_object()?.values().filter_map(Value::as_object).flatten();
    workers
        .filter(|(key, worker)| worker.get("type").and_then(Value::as_str).unwrap_or(key) == wanted)
        .find_map(|(_, worker)| worker.get("default_base_job_configuration").cloned())
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
    fn templates_are_found_by_worker_type_as_prefect_cloud_and_servers_list_them() {
        let cloud = json!({"prefect-modal": {"modal-push": {"type": "modal:push", "default_base_job_configuration": {"m": 1}}}});
        assert_eq!(template_in(&cloud, "modal:push"), Some(json!({"m": 1})), "Prefect Cloud keys workers by name, with a type");
        let server = json!({"prefect-aws": {"ecs": {"type": "ecs", "default_base_job_configuration": {"e": 1}}}, "prefect": {"process": {}}});
        assert_eq!(template_in(&server, "ecs"), Some(json!({"e": 1})));
        assert_eq!(template_in(&server, "ecs:push"), None, "a push type falls back to its twin, by the caller");
        assert_eq!(
            template_in(&json!({"c": {"ecs": {"default_base_job_configuration": {"k": 1}}}}), "ecs"),
            Some(json!({"k": 1})),
            "a worker without a type matches by key"
        );
    }

    #[test]
    fn newest_version_is_chosen_numerically() {
        let mut versions = ["0.4.14", "0.7.12", "0.10.1", "non-versioned"];
        versions.sort_by_key(|v| version_key(v));
        assert_eq!(versions.last(), Some(&"0.10.1"));
    }
}
