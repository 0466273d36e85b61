//! The HTTP client every service client shares: one connection pool, bearer tokens from
//! [`Credentials`] (or a [`SignRequest`] for Shared Key and SAS), and the retry policy of
//! [`retry`]. Knows nothing of DFS, Blob or Fabric.
//!
//! [`HttpClient::send`] runs one logical request: it rebuilds the request for each attempt,
//! authorises each attempt, retries what [`retry`] says is retryable, refreshes the token once
//! on a 401, and returns the successful response or a decoded [`HttpError`].

pub mod error;
pub mod retry;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub use error::{HttpError, StatusError, TransportCause};
use reqwest::{Method, RequestBuilder};
pub use retry::RetryPolicy;

use crate::auth::Credentials;
use crate::secret::redact;

/// A shared, cheaply cloned HTTP client.
#[derive(Clone, Debug)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    credentials: Credentials,
    policy: RetryPolicy,
    retries: AtomicU64,
    throttled: AtomicU64,
}

/// Whether a request may be sent again after an ambiguous failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// Sending it twice does no harm (every DFS call, GETs, definition updates): retry
    /// everything [`retry`] calls retryable.
    Idempotent,
    /// Sending it twice could do the work twice (starting a job): retry only when the
    /// service refused without acting (429, 503) or the connection was never made.
    NotIdempotent,
}

/// How each attempt of a request is authorised. A `&str` converts to [`Authorization::Bearer`],
/// so callers that only know a scope pass the scope.
#[derive(Clone, Copy)]
pub enum Authorization<'a> {
    /// `Authorization: Bearer` with a token for this scope from [`Credentials`].
    Bearer(&'a str),
    /// Signed by the caller's signer after the request is built (Shared Key, SAS).
    Signed(&'a dyn SignRequest),
}

impl<'a> From<&'a str> for Authorization<'a> {
    fn from(scope: &'a str) -> Self {
        Authorization::Bearer(scope)
    }
}

/// Authorises one finished request just before it is sent; called again for every attempt
/// (so a signature's date is always fresh). A signer puts its secret only into the request:
/// errors never show the URL's query, and transport errors carry no URL at all.
pub trait SignRequest: Send + Sync {
    fn sign(&self, request: &mut reqwest::Request);
}

/// A successful answer and how many attempts it took.
#[derive(Debug)]
pub struct Sent {
    pub response: reqwest::Response,
    pub attempts: u32,
}

impl HttpClient {
    /// A client with its own connection pool. Fails only if the TLS stack cannot start.
    pub fn new(credentials: Credentials, policy: RetryPolicy) -> Result<Self, HttpError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("fabric-remote/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64);
        // An extra CA to trust, e.g. the one `fabric-remote emulator --tls` writes.
        if let Some(path) = crate::env::Env::process().get(crate::env::FABRIC_REMOTE_CA_FILE) {
            let cert = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|pem| reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string()))
                .map_err(|e| HttpError::Setup(format!("cannot use the CA file `{path}` named by {}: {e}; point it at a PEM certificate", crate::env::FABRIC_REMOTE_CA_FILE)))?;
            builder = builder.add_root_certificate(cert);
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Setup(format!("cannot start the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                credentials,
                policy,
                retries: AtomicU64::new(0),
                throttled: AtomicU64::new(0),
            }),
        })
    }

    pub fn credentials(&self) -> &Credentials {
        &self.inner.credentials
    }

    pub fn policy(&self) -> &RetryPolicy {
        &self.inner.policy
    }

    /// Retries made so far by every request of this client.
    pub fn retries(&self) -> u64 {
        self.inner.retries.load(Ordering::Relaxed)
    }

    /// Throttling answers (429, 503) seen so far; executors shrink concurrency when it grows.
    pub fn throttled(&self) -> u64 {
        self.inner.throttled.load(Ordering::Relaxed)
    }

    /// Sends `method url` authorised by `auth` (a scope for a bearer token, or a signer);
    /// `customize` adds headers, query and body, and is called again for every attempt. The
    /// request is treated as idempotent.
    pub async fn send<'a>(
        &self,
        method: Method,
        url: &str,
        auth: impl Into<Authorization<'a>>,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Sent, HttpError> {
        self.send_with(Replay::Idempotent, method, url, auth, customize)
            .await
    }

    /// [`HttpClient::send`] with an explicit [`Replay`] rule.
    ///
    /// Every attempt is logged here, and only here (`-v`: target `fabric_remote::http`,
    /// level info): method, URL (secrets redacted), status, duration, attempt number and the
    /// service's `x-ms-request-id`. Retries and their waits are logged at debug level. A
    /// signed request is logged with the URL it was given (a signer's SAS is added only to
    /// the request, never to the log line).
    pub async fn send_with<'a>(
        &self,
        replay: Replay,
        method: Method,
        url: &str,
        auth: impl Into<Authorization<'a>>,
        customize: impl Fn(RequestBuilder) -> RequestBuilder,
    ) -> Result<Sent, HttpError> {
        let auth = auth.into();
        let policy = &self.inner.policy;
        let started = Instant::now();
        let mut backoff = policy.backoff();
        let mut attempts = 0u32;
        let mut refreshed = false;
        let logged_url = redact(url).into_owned();
        loop {
            attempts += 1;
            let request = self.inner.client.request(method.clone(), url);
            let sent_at = Instant::now();
            let (outcome, token) = match auth {
                Authorization::Bearer(scope) => {
                    let token = self.inner.credentials.token(scope).await?;
                    let request = customize(request.bearer_auth(token.expose()));
                    (request.send().await, Some((scope, token)))
                }
                Authorization::Signed(signer) => {
                    let outcome = match customize(request).build() {
                        Ok(mut request) => {
                            signer.sign(&mut request);
                            self.inner.client.execute(request).await
                        }
                        Err(e) => Err(e),
                    };
                    // The signed URL may carry a secret (SAS): keep it out of the error.
                    (outcome.map_err(reqwest::Error::without_url), None)
                }
            };
            let took_ms = sent_at.elapsed().as_millis() as u64;
            let (wait, failure) = match outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let request_id = response
                        .headers()
                        .get("x-ms-request-id")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("-")
                        .to_string();
                    tracing::info!(
                        target: "fabric_remote::http",
                        "{method} {logged_url} -> {status} in {took_ms} ms (attempt {attempts}, request id {request_id})"
                    );
                    if response.status().is_success() {
                        return Ok(Sent { response, attempts });
                    }
                    if status == 401
                        && !refreshed
                        && let Some((scope, token)) = &token
                        && self.inner.credentials.invalidate(scope, token)
                    {
                        tracing::debug!(target: "fabric_remote::http", "401: fetching a fresh token and trying again");
                        refreshed = true;
                        continue;
                    }
                    let asked = retry::retry_after(response.headers());
                    let headers = response.headers().clone();
                    let body = response.bytes().await.unwrap_or_default();
                    let err = error::decode_status(
                        method.as_str(),
                        url,
                        status,
                        &headers,
                        &body,
                        attempts,
                    );
                    let replayable = match replay {
                        Replay::Idempotent => retry::is_retryable_status(status),
                        Replay::NotIdempotent => retry::is_throttle_status(status),
                    };
                    if !replayable {
                        return Err(HttpError::Status(Box::new(err)));
                    }
                    if retry::is_throttle_status(status) {
                        self.inner.throttled.fetch_add(1, Ordering::Relaxed);
                    }
                    (asked, HttpError::Status(Box::new(err)))
                }
                Err(e) => {
                    let err = transport(&method, url, &e, attempts);
                    tracing::info!(
                        target: "fabric_remote::http",
                        "{method} {logged_url} -> no answer after {took_ms} ms (attempt {attempts}): {err}"
                    );
                    let HttpError::Transport { cause, .. } = &err else {
                        return Err(err);
                    };
                    // Nothing listens there, or the name does not resolve: another attempt
                    // would only make the user wait.
                    let hopeless =
                        matches!(cause, TransportCause::Refused | TransportCause::UnknownHost);
                    if e.is_builder()
                        || hopeless
                        || (replay == Replay::NotIdempotent && !e.is_connect())
                    {
                        return Err(err);
                    }
                    (None, err)
                }
            };
            let Some(next) = backoff.next() else {
                return Err(failure);
            };
            let delay = wait.unwrap_or(next);
            if started.elapsed() + delay > policy.deadline {
                return Err(failure);
            }
            self.inner.retries.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                target: "fabric_remote::http",
                "{method} {logged_url}: retrying in {} ms after: {failure}",
                delay.as_millis()
            );
            if started.elapsed() < SLOW_NOTICE && started.elapsed() + delay >= SLOW_NOTICE {
                tracing::warn!(
                    target: "fabric_remote::http",
                    "still retrying {method} {} after {}s: {failure}",
                    error::endpoint_of(&logged_url),
                    SLOW_NOTICE.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
        }
    }
}

/// A request still retrying after this long says so (a warning, shown without `-v`).
const SLOW_NOTICE: Duration = Duration::from_secs(15);

fn transport(method: &Method, url: &str, e: &reqwest::Error, attempts: u32) -> HttpError {
    // reqwest's Display names the URL; the innermost source says what actually happened.
    let mut message = e.to_string();
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::ConnectionRefused
        {
            refused = true;
        }
        message = s.to_string();
        source = s.source();
    }
    let lower = message.to_ascii_lowercase();
    let cause = if refused || lower.contains("connection refused") {
        TransportCause::Refused
    } else if e.is_connect()
        && (lower.contains("dns error")
            || lower.contains("failed to lookup address")
            || lower.contains("name or service not known"))
    {
        TransportCause::UnknownHost
    } else if e.is_timeout() {
        TransportCause::Timeout
    } else {
        TransportCause::Broken
    };
    HttpError::Transport {
        method: method.to_string(),
        url: redact(error::strip_query(url)).into_owned(),
        message: redact(&message).into_owned(),
        cause,
        attempts,
    }
}
