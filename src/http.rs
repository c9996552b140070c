//! A small typed JSON REST transport, shared by the REST clients of pushpool (Prefect today;
//! ARM, Microsoft Graph and GCP later).
//!
//! One place for what every such API needs: an optional bearer token, retries with backoff
//! (or the server's `Retry-After`) when the request did not get handled, 404 and 409 as
//! answers rather than errors, and errors that name the service, carry the server's own
//! explanation without echoing submitted values, and give the client's fix. A client supplies
//! the [`Service`]: its URL, token, name and fix texts; the paths and bodies are its own.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::retry::{ATTEMPTS, backoff};
use crate::secret::Secret;

/// What a client tells the transport about the API it calls.
#[derive(Clone)]
pub struct Service {
    /// The base URL; request paths are appended to it as they are.
    pub base_url: String,
    /// Sent as `Authorization: Bearer <token>` when set.
    pub token: Option<Secret>,
    /// How errors name the API when it cannot be reached, e.g. "Prefect API at <url>".
    pub name: String,
    /// The fix shown when the API refuses the credentials (401).
    pub unauthorized_fix: String,
    /// The fix shown when the API refuses the permission (403).
    pub forbidden_fix: String,
    /// The fix shown when the API does not answer.
    pub unreachable_fix: String,
    /// The fix shown when a success is not JSON (a web page, a proxy's login form): the URL
    /// points at something other than the API.
    pub not_json_fix: String,
}

/// What a request got back, beside errors.
pub enum Reply {
    /// A success, with its JSON body (Null when empty).
    Body(Value),
    /// 404.
    NotFound,
    /// 409: an object of that name exists.
    Conflict,
}

/// A server's answer to one request, whatever its status.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body; Null when empty or not JSON.
    pub body: Value,
    /// The response headers (ARM's `Azure-AsyncOperation` and `Location` of an operation).
    pub headers: reqwest::header::HeaderMap,
    /// Whether the body was JSON, or empty.
    parsed: bool,
}

impl Answer {
    /// An answer with a JSON body, for tests of clients that read answers.
    pub fn new(status: StatusCode, body: Value) -> Self {
        Self { status, body, parsed: true, headers: Default::default() }
    }

    /// The body of a success; None for a 404 (no such object); else the error `refused` makes
    /// of the answer.
    pub fn found(self, refused: impl FnOnce(&Answer) -> Error) -> Result<Option<Value>> {
        match self.status {
            status if status.is_success() => Ok(Some(self.body)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(refused(&self)),
        }
    }

    /// The server's explanation of an error, without any value the request submitted.
    pub fn detail(&self) -> String {
        if !self.parsed {
            return "the server's answer is not JSON".to_owned();
        }
        error_detail(&self.body)
    }
}

/// A client of one JSON REST API.
#[derive(Clone)]
pub struct JsonApi {
    http: reqwest::Client,
    service: Service,
}

impl JsonApi {
    /// A client for `service`, with pushpool's timeouts and user agent.
    pub fn new(service: Service) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("pushpool/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::usage("HTTP client", e.to_string()))?;
        Ok(Self { http, service })
    }

    /// The base URL, for messages and plan headers.
    pub fn base_url(&self) -> &str {
        &self.service.base_url
    }

    /// GETs an object that may be missing (404 is None), as a `T`.
    pub async fn get_optional<T: DeserializeOwned>(&self, path: &str, what: &str) -> Result<Option<T>> {
        match self.send_optional(Method::GET, path, None, what).await? {
            Some(value) => serde_json::from_value(value).map(Some).map_err(|e| Error::remote(what, e.to_string())),
            None => Ok(None),
        }
    }

    /// Sends a request whose object may be missing (404 is None).
    pub async fn send_optional(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Option<Value>> {
        let shown = format!("{method} {path}");
        match self.request(method, path, body, what).await? {
            Reply::Body(value) => Ok(Some(value)),
            Reply::NotFound => Ok(None),
            Reply::Conflict => Err(Error::remote(what, format!("{shown} was refused: it already exists (409)"))),
        }
    }

    /// Sends a request that must find its object.
    pub async fn send(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Value> {
        let shown = format!("{method} {path}");
        self.send_optional(method, path, body, what).await?.ok_or_else(|| Error::remote(what, format!("{shown} found nothing (404)")))
    }

    /// Sends a request and returns the JSON body (Null for an empty one), 404 or 409.
    /// Errors name `what` and carry the server's explanation, never the request body.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>, what: &str) -> Result<Reply> {
        let answer = self.exchange(method.clone(), path, body).await?;
        match answer.status {
            status if status.is_success() && !answer.parsed => Err(self.not_json(&method, path, &answer, what)),
            status if status.is_success() => Ok(Reply::Body(answer.body)),
            StatusCode::NOT_FOUND => Ok(Reply::NotFound),
            StatusCode::CONFLICT => Ok(Reply::Conflict),
            _ => Err(self.refused(&method, path, &answer, what)),
        }
    }

    /// The error for an answer that refused a request: names `what`, the call, the status and
    /// the server's explanation, with the client's fix for 401 and 403.
    pub fn refused(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> Error {
        let error = Error::remote(what, format!("{method} {path} was refused ({}): {}", answer.status, answer.detail()));
        match answer.status {
            StatusCode::UNAUTHORIZED => error.fix(&self.service.unauthorized_fix),
            StatusCode::FORBIDDEN => error.fix(&self.service.forbidden_fix),
            _ => error,
        }
    }

    /// The error for a success whose body is not JSON: what answered is not the API (a web
    /// page, a proxy's login form), so no field of it means anything.
    fn not_json(&self, method: &Method, path: &str, answer: &Answer, what: &str) -> Error {
        let content = answer.headers.get(reqwest::header::CONTENT_TYPE).and_then(|t| t.to_str().ok()).unwrap_or("no content type");
        let shown = match content.contains("html") {
            true => "HTML".to_owned(),
            false => format!("a body of {content}"),
        };
        Error::remote(what, format!("{method} {path}: {} answered {shown}, not JSON", self.service.name)).fix(&self.service.not_json_fix)
    }

    /// Sends a request and returns whatever the server answered, for clients whose APIs say
    /// more in an error than its status (Google's `status` and `details`).
    /// Connection failures and answers that say the server did not handle the request (429,
    /// 502, 503, 504: a busy SQLite-backed Prefect server answers 503) are retried with
    /// backoff (or the server's `Retry-After`), up to [`ATTEMPTS`] times in all.
    pub async fn exchange(&self, method: Method, path: &str, body: Option<Value>) -> Result<Answer> {
        self.exchange_at(method, &format!("{}{path}", self.service.base_url), body).await
    }

    /// [`JsonApi::exchange`] at a whole URL the API gave (an operation to poll).
    pub async fn exchange_at(&self, method: Method, url: &str, body: Option<Value>) -> Result<Answer> {
        let mut attempt = 1;
        let endpoint = crate::parallelism::endpoint_of(url);
        let (response, _slot) = loop {
            // One of --parallelism slots of this endpoint per attempt, held until the answer is
            // read; a retry waits without one, and an overloaded answer shrinks the endpoint's
            // share (see crate::parallelism).
            let mut slot = crate::parallelism::slot(&endpoint).await;
            let mut request = self.http.request(method.clone(), url);
            if let Some(token) = &self.service.token {
                request = request.bearer_auth(token.expose());
            }
            if let Some(body) = &body {
                request = request.json(body);
            }
            // A create sent twice is refused by name (409) and adopted by the caller, so every
            // method may be retried after a connection failure.
            let response = match request.send().await {
                Ok(response) => response,
                Err(e) if attempt < ATTEMPTS && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    drop(slot);
                    tokio::time::sleep(backoff(attempt)).await;
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(self.unreachable(&e)),
            };
            let status = response.status().as_u16();
            if matches!(status, 429 | 503) {
                slot.overloaded();
            }
            if !matches!(status, 429 | 502 | 503 | 504) || attempt == ATTEMPTS {
                break (response, slot);
            }
            let wait = retry_after(&response).unwrap_or_else(|| backoff(attempt));
            drop(slot);
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let (status, headers) = (response.status(), response.headers().clone());
        let text = response.text().await.map_err(|e| self.unreachable(&e))?;
        let body = serde_json::from_str(&text).ok();
        Ok(Answer { status, parsed: body.is_some() || text.trim().is_empty(), body: body.unwrap_or(Value::Null), headers })
    }

    /// The error for a server that did not answer: names the service, the cause and the fix.
    fn unreachable(&self, error: &reqwest::Error) -> Error {
        let mut cause = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(inner) = source {
            cause = format!("{cause}: {inner}");
            source = inner.source();
        }
        Error::remote(&self.service.name, format!("unreachable: {cause}")).fix(&self.service.unreachable_fix)
    }
}

/// The server's explanation of an error. FastAPI's validation errors (422) list each field
/// with the value that was sent (`input`), which for a block is a secret: only the field's
/// location and the message are kept. Google's envelope (`{"error": {"status", "message"}}`)
/// gives its status name and message.
fn error_detail(parsed: &Value) -> String {
    // Google's envelope names a status, ARM's and Graph's a code.
    if let Some(error) = parsed.get("error").filter(|e| e.is_object()) {
        let message = error["message"].as_str().unwrap_or("no message");
        return match error["status"].as_str().or(error["code"].as_str()) {
            Some(status) => format!("{status}: {message}"),
            None => message.to_owned(),
        };
    }
    match parsed.get("detail") {
        Some(Value::String(detail)) => detail.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                let location: Vec<String> = item["loc"].as_array().into_iter().flatten().map(|l| l.as_str().map(str::to_owned).unwrap_or_else(|| l.to_string())).collect();
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

/// What a path segment keeps as it is: RFC 3986's unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Percent-encodes one path segment (a name may hold `/`, spaces or any UTF-8).
pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, UNRESERVED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_errors_never_echo_the_submitted_values() {
        let detail = |body: &str| Answer::new(StatusCode::BAD_REQUEST, serde_json::from_str(body).unwrap()).detail();
        let body = r#"{"detail":[{"type":"string_pattern_mismatch","loc":["body","name"],"msg":"String should match pattern","input":"wJalrXUtnFEMI/K7MDENG"}]}"#;
        assert_eq!(detail(body), "body.name: String should match pattern");
        assert_eq!(detail(r#"{"detail":"Work pool already exists."}"#), "Work pool already exists.");
        assert_eq!(
            detail(r#"{"error":{"code":409,"message":"Service account x already exists.","status":"ALREADY_EXISTS"}}"#),
            "ALREADY_EXISTS: Service account x already exists."
        );
        assert_eq!(
            detail(r#"{"error":{"code":"RoleAssignmentExists","message":"The role assignment already exists."}}"#),
            "RoleAssignmentExists: The role assignment already exists."
        );
        let html = Answer { status: StatusCode::BAD_GATEWAY, parsed: false, body: Value::Null, headers: Default::default() };
        assert_eq!(html.detail(), "the server's answer is not JSON");
    }

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(encode("my pool/x"), "my%20pool%2Fx");
        assert_eq!(encode("a-b_c.d~é"), "a-b_c.d~%C3%A9");
    }

    /// A client of a server on 127.0.0.1 that answers every request with `status` and `body`.
    async fn answering(status: &'static str, body: &'static str) -> JsonApi {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let _ = socket.read(&mut [0u8; 4096]).await;
                let reply = format!("HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        let service = Service {
            base_url,
            token: Some(Secret::new("token")),
            name: "Test API".to_owned(),
            unauthorized_fix: "check the token".into(),
            forbidden_fix: "check the role".into(),
            unreachable_fix: "start the server".into(),
            not_json_fix: "point the client at the API".into(),
        };
        JsonApi::new(service).unwrap()
    }

    #[tokio::test]
    async fn a_refusal_names_the_call_and_gives_the_clients_fix() {
        let api = answering("401 Unauthorized", r#"{"detail":"Invalid authentication credentials"}"#).await;
        let error = api.send(Method::GET, "/things/x", None, "thing x").await.unwrap_err();
        assert_eq!(error.what, "thing x");
        assert_eq!(error.cause, "GET /things/x was refused (401 Unauthorized): Invalid authentication credentials");
        assert_eq!(error.fix.as_deref(), Some("check the token"));
        let api = answering("403 Forbidden", r#"{"detail":"Not allowed"}"#).await;
        let error = api.send(Method::POST, "/things/", None, "thing x").await.unwrap_err();
        assert_eq!(error.fix.as_deref(), Some("check the role"));
    }

    #[tokio::test]
    async fn a_success_that_is_not_json_says_so_with_the_fix() {
        let api = answering("200 OK", "<html><body>Prefect</body></html>").await;
        let error = api.send(Method::GET, "/things/x", None, "thing x").await.unwrap_err();
        assert!(error.cause.ends_with("GET /things/x: Test API answered a body of application/json, not JSON"), "{error}");
        assert_eq!(error.fix.as_deref(), Some("point the client at the API"));
        let api = answering("204 No Content", "").await;
        assert!(matches!(api.request(Method::DELETE, "/things/x", None, "thing x").await.unwrap(), Reply::Body(Value::Null)), "an empty body is no body");
    }

    #[tokio::test]
    async fn missing_and_existing_objects_are_answers() {
        let api = answering("404 Not Found", r#"{"detail":"Not found"}"#).await;
        assert!(api.send_optional(Method::DELETE, "/things/x", None, "thing x").await.unwrap().is_none());
        let error = api.send(Method::GET, "/things/x", None, "thing x").await.unwrap_err();
        assert_eq!(error.cause, "GET /things/x found nothing (404)");
        let api = answering("409 Conflict", r#"{"detail":"exists"}"#).await;
        assert!(matches!(api.request(Method::POST, "/things/", None, "thing x").await.unwrap(), Reply::Conflict));
        let error = api.send_optional(Method::POST, "/things/", None, "thing x").await.unwrap_err();
        assert_eq!(error.cause, "POST /things/ was refused: it already exists (409)");
    }
}
