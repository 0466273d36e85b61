//! [`FabricClient`]: the base URL, the Fabric token scope, and the plumbing every operation
//! shares — sending through the shared [`HttpClient`] (its one retry policy), turning failures
//! into [`FabricError`]s that name the operation, reading JSON, and following pagination.

use std::collections::HashSet;
use std::time::Duration;

use reqwest::Method;
use serde::de::DeserializeOwned;

use super::error::FabricError;
use super::model::Page;
use crate::auth::FABRIC_SCOPE;
use crate::http::{HttpClient, HttpError, Replay, Sent};
use crate::location::encode_query_value;

/// The public Fabric REST API.
pub const DEFAULT_ENDPOINT: &str = "https://api.fabric.microsoft.com";

/// How the client waits for the service: long-running operations and job instances.
#[derive(Debug, Clone)]
pub struct PollSettings {
    /// Wait between polls when the service sends no `Retry-After` (fabric-cli uses 10 s).
    pub default_interval: Duration,
    /// Shortest wait between polls, even when the service says `Retry-After: 0`.
    pub min_interval: Duration,
    /// How long after a submit a job instance may still answer 404 / `JobInstanceNotFound`.
    pub not_visible_grace: Duration,
    /// Wait between polls of a job instance that is not visible yet (unless told otherwise).
    pub not_visible_interval: Duration,
    /// Wall-clock limit of one long-running operation.
    pub operation_timeout: Duration,
    /// Failed polls in a row (throttling, 5xx, broken connections) a job wait rides out.
    pub max_poll_failures: u32,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            default_interval: Duration::from_secs(10),
            min_interval: Duration::from_millis(500),
            not_visible_grace: Duration::from_secs(30),
            not_visible_interval: Duration::from_secs(1),
            operation_timeout: Duration::from_secs(600),
            max_poll_failures: 10,
        }
    }
}

/// A client of the Fabric REST API, cheap to clone.
#[derive(Debug, Clone)]
pub struct FabricClient {
    pub(crate) http: HttpClient,
    /// `scheme://host[:port]`
    pub(crate) origin: String,
    pub(crate) poll: PollSettings,
}

/// What an operation is, for error messages: `what` completes "could not …" / "not allowed
/// to …"; `permission` says what a 403 lacks; `workspace` is named by capacity errors.
#[derive(Debug, Clone)]
pub(crate) struct Op {
    pub what: String,
    pub permission: &'static str,
    pub workspace: Option<String>,
}

pub(crate) const VIEWER: &str =
    "a role on the workspace (Viewer or higher) and the Workspace.Read.All or Item.Read.All scope";
pub(crate) const CONTRIBUTOR: &str =
    "the Contributor role (or higher) on the workspace and the Item.ReadWrite.All scope";
pub(crate) const EXECUTOR: &str = "the Contributor role (or higher) on the workspace and the SparkJobDefinition.Execute.All or Item.Execute.All scope";

impl Op {
    pub fn new(what: impl Into<String>, permission: &'static str) -> Self {
        Self {
            what: what.into(),
            permission,
            workspace: None,
        }
    }

    /// Marks the operation as one that needs the workspace's capacity.
    pub fn on_capacity(mut self, workspace: &str) -> Self {
        self.workspace = Some(workspace.to_string());
        self
    }

    /// The error for a failed request.
    pub fn fail(&self, source: HttpError) -> FabricError {
        if let (Some(workspace), Some(code)) = (&self.workspace, source.code())
            && is_capacity_code(code)
        {
            return FabricError::NoCapacity {
                workspace: workspace.clone(),
                source: Some(source),
            };
        }
        if let HttpError::Status(status) = source {
            if status.status == 403 {
                return FabricError::Forbidden {
                    what: self.what.clone(),
                    permission: self.permission,
                    source: status,
                };
            }
            return FabricError::Http {
                what: self.what.clone(),
                source: HttpError::Status(status),
            };
        }
        FabricError::Http {
            what: self.what.clone(),
            source,
        }
    }

    pub fn bad(&self, message: impl Into<String>) -> FabricError {
        FabricError::BadResponse {
            what: self.what.clone(),
            message: message.into(),
        }
    }
}

/// Error codes that mean the workspace has no usable capacity (none assigned, paused,
/// suspended). `TooManyRequestsForCapacity` (430) is throttling, not this.
fn is_capacity_code(code: &str) -> bool {
    let c = code.to_ascii_lowercase();
    c.contains("capacity") && !c.starts_with("toomanyrequests")
}

impl FabricClient {
    /// A client of the public API (`https://api.fabric.microsoft.com/v1`).
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            origin: DEFAULT_ENDPOINT.into(),
            poll: PollSettings::default(),
        }
    }

    /// Talks to `endpoint` instead (`FABRIC_REMOTE_API_ENDPOINT`: the emulator, a sovereign
    /// cloud). Only scheme, host and port are used; the API version path stays `/v1`.
    pub fn with_endpoint(mut self, endpoint: &str) -> Result<Self, FabricError> {
        let bad = || FabricError::BadEndpoint(endpoint.to_string());
        let url = url::Url::parse(endpoint.trim()).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad());
        }
        let host = url.host_str().ok_or_else(bad)?;
        self.origin = match url.port() {
            Some(port) => format!("{}://{host}:{port}", url.scheme()),
            None => format!("{}://{host}", url.scheme()),
        };
        Ok(self)
    }

    pub fn with_poll_settings(mut self, poll: PollSettings) -> Self {
        self.poll = poll;
        self
    }

    pub fn poll_settings(&self) -> &PollSettings {
        &self.poll
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// `scheme://host[:port]/v1`
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.origin)
    }

    /// `{base}/{path}`; `path` is already encoded.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.origin, path.trim_start_matches('/'))
    }

    /// Sends one request (retried per the shared policy) and maps a failure through `op`.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
        op: &Op,
    ) -> Result<Sent, FabricError> {
        self.send_raw(method, url, body)
            .await
            .map_err(|e| op.fail(e))
    }

    /// Like [`send`](Self::send), with the raw [`HttpError`] (callers that treat some
    /// failures as answers: 404 while a job is not visible, `JobAlreadyCompleted`…).
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Sent, HttpError> {
        self.send_replay(Replay::Idempotent, method, url, body)
            .await
    }

    /// [`send_raw`](Self::send_raw) with an explicit [`Replay`] rule (a job submit must not
    /// be sent twice after an answer was lost).
    pub(crate) async fn send_replay(
        &self,
        replay: Replay,
        method: Method,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Sent, HttpError> {
        let bytes = body.map(|b| bytes::Bytes::from(serde_json::to_vec(b).unwrap_or_default()));
        let is_post = method == Method::POST;
        self.http
            .send_with(replay, method, url, FABRIC_SCOPE, |r| match &bytes {
                Some(b) => r
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.clone()),
                // An explicit `Content-Length: 0` on body-less POSTs.
                None if is_post => r.body(bytes::Bytes::new()),
                None => r,
            })
            .await
    }

    /// GETs `url` and parses its JSON body.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        url: &str,
        op: &Op,
    ) -> Result<T, FabricError> {
        let sent = self.send(Method::GET, url, None, op).await?;
        read_json(sent, op).await
    }

    /// Every item of a paginated list, following `continuationUri` (or `continuationToken`).
    pub(crate) async fn list_all<T: DeserializeOwned>(
        &self,
        url: &str,
        op: &Op,
    ) -> Result<Vec<T>, FabricError> {
        let mut out = Vec::new();
        let mut next = Some(url.to_string());
        let mut seen = HashSet::new();
        while let Some(page_url) = next.take() {
            let page: Page<T> = self.get_json(&page_url, op).await?;
            out.extend(page.value);
            let token = page.continuation_token.filter(|t| !t.is_empty());
            let uri = page.continuation_uri.filter(|u| !u.is_empty());
            if token.is_none() && uri.is_none() {
                break;
            }
            let key = token.clone().or_else(|| uri.clone()).unwrap_or_default();
            if !seen.insert(key) {
                return Err(FabricError::RepeatedContinuation {
                    what: op.what.trim_start_matches("list ").to_string(),
                });
            }
            next = Some(self.next_page_url(url, uri.as_deref(), token.as_deref(), op)?);
        }
        Ok(out)
    }

    /// The next page's URL: `continuationUri` on our own origin (the service names its public
    /// host even when we talk to an override), else the first URL plus the token, encoded once.
    fn next_page_url(
        &self,
        first: &str,
        uri: Option<&str>,
        token: Option<&str>,
        op: &Op,
    ) -> Result<String, FabricError> {
        if let Some(uri) = uri
            && let Ok(parsed) = url::Url::parse(uri)
            && parsed.path().starts_with("/v1/")
        {
            let mut out = format!("{}{}", self.origin, parsed.path());
            if let Some(q) = parsed.query() {
                out.push('?');
                out.push_str(q);
            }
            return Ok(out);
        }
        let Some(token) = token else {
            return Err(op.bad(format!("unusable continuationUri `{}`", uri.unwrap_or(""))));
        };
        let sep = if first.contains('?') { '&' } else { '?' };
        Ok(format!(
            "{first}{sep}continuationToken={}",
            encode_query_value(token, false)
        ))
    }
}

/// Reads a JSON body as `T`.
pub(crate) async fn read_json<T: DeserializeOwned>(sent: Sent, op: &Op) -> Result<T, FabricError> {
    let body = sent
        .response
        .bytes()
        .await
        .map_err(|e| op.bad(format!("the body could not be read: {e}")))?;
    parse_json(&body, op)
}

pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8], op: &Op) -> Result<T, FabricError> {
    serde_json::from_slice(body).map_err(|e| op.bad(format!("unexpected JSON ({e})")))
}

/// The `Retry-After` (or `x-ms-retry-after-ms`) the service asked for.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    crate::http::retry::retry_after(headers)
}

/// A path segment, percent-encoded.
pub(crate) fn seg(s: &str) -> String {
    encode_query_value(s, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Credentials;
    use crate::http::RetryPolicy;
    use crate::secret::Secret;

    fn client() -> FabricClient {
        let http = HttpClient::new(
            Credentials::from_token(Secret::new("t")),
            RetryPolicy::default(),
        )
        .unwrap();
        FabricClient::new(http)
    }

    #[test]
    fn endpoint_override_replaces_scheme_and_host() {
        let c = client();
        assert_eq!(c.base_url(), "https://api.fabric.microsoft.com/v1");
        let c = c.with_endpoint("http://127.0.0.1:8123/").unwrap();
        assert_eq!(c.base_url(), "http://127.0.0.1:8123/v1");
        assert_eq!(c.url("workspaces"), "http://127.0.0.1:8123/v1/workspaces");
        let c = c
            .with_endpoint("https://api.fabric.microsoft.us/v1")
            .unwrap();
        assert_eq!(c.base_url(), "https://api.fabric.microsoft.us/v1");
        assert!(client().with_endpoint("ftp://x").is_err());
        assert!(client().with_endpoint("not a url").is_err());
    }

    #[test]
    fn next_page_prefers_the_uri_on_our_origin_and_encodes_tokens_once() {
        let c = client().with_endpoint("http://127.0.0.1:9").unwrap();
        let op = Op::new("list things", VIEWER);
        let first = "http://127.0.0.1:9/v1/workspaces/w/items?type=Lakehouse";
        let next = c
            .next_page_url(
                first,
                Some("https://api.fabric.microsoft.com/v1/workspaces/w/items?type=Lakehouse&continuationToken=LDEsMTAwMDAwLDA%3D"),
                Some("LDEsMTAwMDAwLDA%3D"),
                &op,
            )
            .unwrap();
        assert_eq!(
            next,
            "http://127.0.0.1:9/v1/workspaces/w/items?type=Lakehouse&continuationToken=LDEsMTAwMDAwLDA%3D"
        );
        // Token only: appended to the first URL, encoded once.
        let next = c.next_page_url(first, None, Some("a+b="), &op).unwrap();
        assert_eq!(next, format!("{first}&continuationToken=a%2Bb%3D"));
        // A continuationUri without /v1 (as in some examples) falls back to the token.
        let next = c
            .next_page_url(
                "http://127.0.0.1:9/v1/workspaces",
                Some("https://api.fabric.microsoft.com/workspaces?continuationToken=x"),
                Some("x"),
                &op,
            )
            .unwrap();
        assert_eq!(next, "http://127.0.0.1:9/v1/workspaces?continuationToken=x");
    }

    #[test]
    fn capacity_codes() {
        assert!(is_capacity_code("CapacityNotActive"));
        assert!(is_capacity_code("NoCapacityAssigned"));
        assert!(!is_capacity_code("TooManyRequestsForCapacity"));
        assert!(!is_capacity_code("ItemNotFound"));
    }
}
