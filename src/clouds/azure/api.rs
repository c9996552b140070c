//! Azure Resource Manager and Microsoft Graph, as pushpool calls them: one client each on the
//! shared JSON transport ([`crate::http`]), each with its own token (its audience), ARM's
//! `api-version` on every call, and ARM's long-running operations (`Azure-AsyncOperation`,
//! else `Location`) polled to their end. No official ARM or Graph crate is maintained (see
//! the README's dependency list), so these are ours.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::http::{Answer, JsonApi, Service};
use crate::retry::poll_wait;
use crate::secret::Secret;

/// How many times an operation is polled (about four minutes with the waits below).
const POLLS: u32 = 60;

/// A client of ARM or Graph.
#[derive(Clone)]
pub struct Api {
    json: JsonApi,
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
            unauthorized_fix: "the token was refused: run `az login` again (or check AZURE_CLIENT_SECRET), then run again",
            forbidden_fix: "grant the caller the roles of policies/azure/operator-apply.json on the subscription (and Application Administrator in Entra ID), then run again",
            unreachable_fix: "check the network, or the Azure CLI's active cloud (`az cloud show`), then run again",
        };
        Ok(Self { json: JsonApi::new(service)? })
    }

    /// Sends a request and returns the answer, whatever its status (429 and 5xx retried).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        self.json.exchange(method, path, body).await
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
