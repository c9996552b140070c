//! Azure Resource Manager and Microsoft Graph, as pushpool calls them: one client each on the
//! shared JSON transport ([`crate::http`]), each with its own token (its audience), ARM's
//! `api-version` on every call, ARM's long-running operations (`Azure-AsyncOperation`, else
//! `Location`) polled to their end, every list followed through its pages (ARM's `nextLink`,
//! Graph's `@odata.nextLink`), and Graph's replication delay for objects just created waited
//! out. No official ARM or Graph crate is maintained (see the README's dependency list), so
//! these are ours.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Answer, JsonApi, Service};
use crate::retry::{Settling, poll_wait, settle};
use crate::secret::Secret;

/// How many times an operation is polled (about four minutes with the waits below).
const POLLS: u32 = 60;

/// How many pages a list may take: far beyond any resource group or filtered directory query
/// (ARM pages hold hundreds, Graph's up to 999), and a bound on a continuation that loops.
const MAX_PAGES: usize = 1_000;

/// A client of ARM or Graph.
#[derive(Clone)]
pub struct Api {
    json: JsonApi,
    /// Graph only: the objects this run created, by object id and appId, with their display
    /// names. Entra ID replicates a new object for a while, and meanwhile a request naming it
    /// may answer 404 `Request_ResourceNotFound`; for these objects that means "not yet".
    created: Option<Arc<Mutex<HashMap<String, String>>>>,
}

/// The `code` of an ARM or Graph error envelope (`RoleAssignmentExists`, `PrincipalNotFound`).
pub fn error_code(answer: &Answer) -> Option<&str> {
    answer.body["error"]["code"].as_str()
}

impl Api {
    /// A client of the API at `base_url` (ending in `/`), named `name` in errors.
    pub fn new(name: &str, base_url: &str, token: Secret) -> Result<Self> {
        let mut base_url = base_url.to_owned();
        if !base_url.ends_with('/') {
            base_url.push('/');
        }
        let service = Service {
            name: format!("{name} at {base_url}"),
            base_url,
            token: Some(token),
            unauthorized_fix: "the token was refused: run `az login` again (or check AZURE_CLIENT_SECRET), then run again".into(),
            forbidden_fix:
                "grant the caller the roles of policies/azure/operator-apply.json on the subscription (and Application Administrator in Entra ID), then run again".into(),
            unreachable_fix: "check the network, or the Azure CLI's active cloud (`az cloud show`), then run again".into(),
            not_json_fix: "check the Azure CLI's active cloud (`az cloud show`): its endpoints must be Azure's APIs".into(),
        };
        Ok(Self { json: JsonApi::new(service)?, created: None })
    }

    /// The same client, remembering the objects it creates and waiting out their replication
    /// (Microsoft Graph's documented consistency delay).
    pub fn waiting_out_replication(self) -> Self {
        Self { created: Some(Arc::default()), ..self }
    }

    /// Sends a request and returns the answer, whatever its status (429 and 5xx retried). On
    /// a client that waits out replication, a 404 `Request_ResourceNotFound` for an object this
    /// run created is retried until Entra ID has replicated it.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        let answer = match self.created_named_in(path) {
            Some(name) => {
                let waiting_for = format!("Entra ID to replicate {name}, created moments ago");
                let (method, body, name) = (&method, &body, &name);
                settle(&waiting_for, move || async move {
                    let answer = self.json.exchange(method.clone(), path, body.clone()).await?;
                    Ok(match (answer.status, error_code(&answer)) {
                        (StatusCode::NOT_FOUND, Some("Request_ResourceNotFound")) => Settling::NotYet(self.refused(method, path, &answer, name)),
                        _ => Settling::Done(answer),
                    })
                })
                .await?
            }
            None => self.json.exchange(method, path, body).await?,
        };
        self.remember_created(&answer);
        Ok(answer)
    }

    /// The display name of an object this run created that `path` names, if any.
    fn created_named_in(&self, path: &str) -> Option<String> {
        let created = self.created.as_ref()?.lock().expect("not poisoned");
        path.split('?').next()?.split('/').find_map(|segment| created.get(segment).cloned())
    }

    /// Remembers the object a create answered with (201 and an `id`).
    fn remember_created(&self, answer: &Answer) {
        let (Some(created), StatusCode::CREATED, Some(id)) = (&self.created, answer.status, answer.body["id"].as_str()) else { return };
        let name = match answer.body["displayName"].as_str() {
            Some(name) => format!("'{name}' ({id})"),
            None => id.to_owned(),
        };
        let mut created = created.lock().expect("not poisoned");
        for key in [Some(id), answer.body["appId"].as_str()].into_iter().flatten() {
            created.insert(key.to_owned(), name.clone());
        }
    }

    /// Every item of a list, following its continuation (ARM's `nextLink`, Graph's
    /// `@odata.nextLink`) to the last page; a 404 for the first page (a resource group that
    /// does not exist) is an empty list. A next link must stay on the API's own host (it is
    /// sent the token), and a list that never ends is an error rather than a hang.
    pub async fn list(&self, path: &str, what: &str) -> Result<Vec<Value>> {
        let Some(mut page) = self.get(path, what).await? else { return Ok(Vec::new()) };
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        loop {
            items.extend(page["value"].as_array().into_iter().flatten().cloned());
            let Some(next) = page["nextLink"].as_str().or(page["@odata.nextLink"].as_str()).map(str::to_owned) else { return Ok(items) };
            if !self.on_own_host(&next) {
                return Err(Error::remote(what, format!("the list of {path} continues on another host ({})", next.split('?').next().unwrap_or_default()))
                    .fix("check the Azure CLI's active cloud (`az cloud show`): its endpoints must be the API's own"));
            }
            if seen.len() >= MAX_PAGES || !seen.insert(next.clone()) {
                return Err(Error::remote(
                    what,
                    format!("the list of {} did not end after {} pages: its continuation loops", path.split('?').next().unwrap_or(path), seen.len()),
                )
                .fix("run again; if it persists, the service is at fault: list the objects with the Azure CLI to see them"));
            }
            let answer = self.json.exchange_at(Method::GET, &next, None).await?;
            if !answer.status.is_success() {
                return Err(self.refused(&Method::GET, &next, &answer, what));
            }
            page = answer.body;
        }
    }

    /// Whether `url` is on this API's scheme, host and port.
    fn on_own_host(&self, url: &str) -> bool {
        let origin = |url: &str| reqwest::Url::parse(url).ok().map(|u| (u.scheme().to_owned(), u.host_str().map(str::to_owned), u.port_or_known_default()));
        origin(url).is_some_and(|o| Some(o) == origin(self.json.base_url()))
    }

    /// The error for an answer that refused a request, with the envelope's code and message.
    pub fn refused(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> Error {
        self.json.refused(method, path.split('?').next().unwrap_or(path), answer, what)
    }

    /// GETs an object: None when it does not exist (404).
    pub async fn get(&self, path: &str, what: &str) -> Result<Option<Value>> {
        self.call(Method::GET, path, None).await?.found(|answer| self.refused(&Method::GET, path, answer, what))
    }

    /// Sends a request that must succeed, waits for the operation it started (if any), and
    /// returns the first answer's body.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        let answer = self.call(method.clone(), path, body).await?;
        if !answer.status.is_success() {
            return Err(self.refused(&method, path, &answer, what));
        }
        self.finish(&answer, what).await?;
        Ok(answer.body)
    }

    /// Deletes an object (one already gone is fine) and waits for the deletion to end.
    pub async fn delete(&self, path: &str, what: &str) -> Result<()> {
        let answer = self.call(Method::DELETE, path, None).await?;
        match answer.status {
            status if status.is_success() => self.finish(&answer, what).await,
            StatusCode::NOT_FOUND => Ok(()),
            _ => Err(self.refused(&Method::DELETE, path, &answer, what)),
        }
    }

    /// Polls the operation an answer started: its `Azure-AsyncOperation` URL until the status
    /// is terminal, else its `Location` URL until it stops answering 202.
    async fn finish(&self, answer: &Answer, what: &str) -> Result<()> {
        let header = |name: &str| answer.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let (url, async_operation) = match (header("azure-asyncoperation"), header("location")) {
            (Some(url), _) => (url, true),
            (None, Some(url)) if answer.status == StatusCode::ACCEPTED => (url, false),
            _ => return Ok(()),
        };
        for poll in 0..POLLS {
            tokio::time::sleep(poll_wait(poll)).await;
            let status = self.json.exchange_at(Method::GET, &url, None).await?;
            if !status.status.is_success() {
                return Err(self.refused(&Method::GET, &url, &status, what));
            }
            if !async_operation {
                if status.status != StatusCode::ACCEPTED {
                    return Ok(());
                }
                continue;
            }
            match status.body["status"].as_str() {
                Some("Succeeded") => return Ok(()),
                Some(failed @ ("Failed" | "Canceled")) => {
                    let message = status.body["error"]["message"].as_str().unwrap_or("no message");
                    return Err(Error::remote(what, format!("the operation ended {failed}: {message}")));
                }
                _ => {}
            }
        }
        Err(Error::remote(what, "the operation did not finish within about four minutes").fix("it may still finish: run again later, and pushpool picks up where it is"))
    }
}

/// POSTs a form (`application/x-www-form-urlencoded`, no bearer token), for Entra ID's token
/// endpoint and the registry's token exchange, and returns the status and JSON body. The
/// fields may hold secrets: they go into the body only, and errors never repeat them.
pub async fn post_form(url: &str, fields: &[(&str, &str)], what: &str) -> Result<(StatusCode, Value)> {
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
    let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, NON_ALPHANUMERIC))).collect();
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| Error::usage("HTTP client", e.to_string()))?;
    let response = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .map_err(|e| Error::remote(what, format!("{url} is unreachable: {}", e.without_url())))?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An API on 127.0.0.1 whose answer to each path is `page(base URL, path)`, and the paths it was asked for.
    async fn serving(page: fn(&str, &str) -> Value) -> (Api, Arc<Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let asked = Arc::new(Mutex::new(Vec::new()));
        let (url, log) = (base.clone(), asked.clone());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let mut request = vec![0u8; 4096];
                let read = socket.read(&mut request).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&request[..read]).into_owned();
                let path = text.split_whitespace().nth(1).unwrap_or("/").to_owned();
                log.lock().unwrap().push(path.clone());
                let body = page(&url, &path).to_string();
                let reply = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        (Api::new("Test API", &base, Secret::new("token")).unwrap(), asked)
    }

    #[tokio::test]
    async fn a_list_follows_arm_and_graph_continuations_to_the_last_page() {
        let (api, asked) = serving(|base, path| match path {
            "/things?api-version=1" => serde_json::json!({"value": [1, 2], "nextLink": format!("{base}/things?api-version=1&$skiptoken=a")}),
            "/things?api-version=1&$skiptoken=a" => serde_json::json!({"value": [], "@odata.nextLink": format!("{base}/things?api-version=1&$skiptoken=b")}),
            _ => serde_json::json!({"value": [3]}),
        })
        .await;
        assert_eq!(api.list("things?api-version=1", "things").await.unwrap(), [1, 2, 3], "an empty page that links on is not the end");
        assert_eq!(asked.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn a_continuation_that_loops_or_leaves_the_apis_host_is_an_error_not_a_hang_or_a_leak() {
        let (api, asked) = serving(|base, _| serde_json::json!({"value": [1], "nextLink": format!("{base}/again")})).await;
        let error = api.list("first", "things of pool p").await.unwrap_err();
        assert_eq!(error.what, "things of pool p");
        assert!(error.cause.contains("did not end") && error.cause.contains("loops"), "{}", error.cause);
        assert_eq!(asked.lock().unwrap().len(), 2, "the repeated link is not followed again");

        let (api, asked) = serving(|_, _| serde_json::json!({"value": [1], "nextLink": "http://127.0.0.2:9/elsewhere"})).await;
        let error = api.list("first", "things").await.unwrap_err();
        assert!(error.cause.contains("continues on another host (http://127.0.0.2:9/elsewhere)"), "{}", error.cause);
        assert_eq!(asked.lock().unwrap().len(), 1, "the token never went to the other host");
    }
}
