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

pub use error::{HttpError, StatusError};
use reqwest::{Method, RequestBuilder};
pub use retry::RetryPolicy;

use crate::auth::Credentials;

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
        let client = reqwest::Client::builder()
            .user_agent(concat!("fabric-remote/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(120))
            .pool_max_idle_per_host(64)
            .build()
            .map_err(|e| HttpError::Transport {
                method: "-".into(),
                url: "-".into(),
                message: format!("cannot start the HTTP client: {e}"),
                attempts: 0,
            })?;
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
        loop {
            attempts += 1;
            let request = self.inner.client.request(method.clone(), url);
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
            let (wait, failure) = match outcome {
                Ok(response) if response.status().is_success() => {
                    return Ok(Sent { response, attempts });
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 401
                        && !refreshed
                        && let Some((scope, token)) = &token
                        && self.inner.credentials.invalidate(scope, token)
                    {
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
                Err(e)
                    if e.is_builder() || (replay == Replay::NotIdempotent && !e.is_connect()) =>
                {
                    return Err(transport(&method, url, &e, attempts));
                }
                Err(e) => (None, transport(&method, url, &e, attempts)),
            };
            let Some(next) = backoff.next() else {
                return Err(failure);
            };
            let delay = wait.unwrap_or(next);
            if started.elapsed() + delay > policy.deadline {
                return Err(failure);
            }
            self.inner.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
    }
}

fn transport(method: &Method, url: &str, e: &reqwest::Error, attempts: u32) -> HttpError {
    // reqwest's Display names the URL; the innermost source says what actually happened.
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message = s.to_string();
        source = s.source();
    }
    HttpError::Transport {
        method: method.to_string(),
        url: error::strip_query(url).to_string(),
        message,
        attempts,
    }
}
