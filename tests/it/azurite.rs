//! Azurite (Microsoft's storage emulator, a server nobody here wrote) for the Blob tests: one
//! server, a fresh container per test, and a counting proxy in front of it.
//!
//! `scripts/test` starts one Azurite (blob only, in memory) for the whole run and passes its
//! URL in `FABRIC_REMOTE_TEST_AZURITE`; nextest runs each test in its own process, and
//! Azurite takes about a second to start, so sharing it matters. Without that variable (a
//! plain `cargo nextest run`) the first Blob test of a process starts a private Azurite,
//! installed by `scripts/tools azurite`, which stops when the test process exits.
//!
//! The [`Proxy`] forwards every request unchanged and records it, so tests can assert exact
//! request counts and how many requests were in flight at once. It can also add latency and
//! inject the faults no server produces on demand (a body corrupted in transit, a refused
//! batch); each test that uses one says so.

#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Response, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use fabric_remote::auth::Credentials;
use fabric_remote::blob::{AZURITE_KEY, BlobAuth, BlobClient};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::RemoteLocation;
use fabric_remote::secret::Secret;
use hmac::{Hmac, KeyInit, Mac};

use crate::util;

/// Set by `scripts/test`: the URL of a running Azurite blob endpoint (`http://127.0.0.1:PORT`).
pub const AZURITE_URL_VAR: &str = "FABRIC_REMOTE_TEST_AZURITE";

/// The Azurite blob endpoint every test of this process uses.
pub fn endpoint() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| match std::env::var(AZURITE_URL_VAR) {
        Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_string(),
        _ => start_private(),
    })
}

/// Starts Azurite for this process: a shell watches our stdin and stops Azurite when the
/// pipe closes, which happens when this process exits however it exits.
fn start_private() -> String {
    // The watcher and its stdin live as long as the process; exiting closes the pipe.
    static WATCHER: OnceLock<Mutex<(std::process::Child, std::process::ChildStdin)>> =
        OnceLock::new();
    let tools = Command::new(util::root().join("scripts/tools"))
        .arg("azurite")
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/tools azurite");
    assert!(
        tools.status.success(),
        "scripts/tools azurite failed (it needs Node.js and npm); or start Azurite and set {AZURITE_URL_VAR}"
    );
    let bin = String::from_utf8_lossy(&tools.stdout).trim().to_string();
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let log = dir.join("azurite.log");
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(
            "\"$0\" --inMemoryPersistence --blobHost 127.0.0.1 --blobPort 0 --disableTelemetry --silent >\"$1\" 2>&1 & \
             pid=$!; cat >/dev/null; kill $pid",
        )
        .arg(format!("{bin}/azurite-blob"))
        .arg(&log)
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .spawn()
        .expect("start azurite-blob");
    let stdin = child.stdin.take().expect("piped stdin");
    let _ = WATCHER.set(Mutex::new((child, stdin)));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(at) = text.find("listens on ") {
            let url = text[at + "listens on ".len()..]
                .split_whitespace()
                .next()
                .unwrap_or_default();
            return url.trim_end_matches('/').to_string();
        }
        assert!(
            Instant::now() < deadline,
            "Azurite did not start within 60 s: {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A fast-retrying policy (tests must not sleep for seconds).
pub fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
    }
}

/// A Blob client authorised by `auth`.
pub fn client(auth: BlobAuth) -> BlobClient {
    let http = HttpClient::new(Credentials::from_token(Secret::new("unused")), policy())
        .expect("http client");
    BlobClient::new(http, auth)
}

/// A container of its own for one test, created on Azurite (through no proxy).
pub struct Container {
    /// `http://127.0.0.1:PORT/devstoreaccount1/<name>` on Azurite itself.
    pub url: String,
    pub name: String,
}

impl Container {
    /// A new, empty container; `hint` makes it recognisable (lowercase letters and digits).
    pub async fn new(hint: &str) -> Container {
        static N: AtomicU64 = AtomicU64::new(0);
        let hint: String = hint
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .map(|c| c.to_ascii_lowercase())
            .take(30)
            .collect();
        let name = format!(
            "t{}-{}-{hint}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let url = format!("{}/devstoreaccount1/{name}", endpoint());
        let loc = RemoteLocation::parse(&url).expect("container location");
        let created = client(BlobAuth::azurite())
            .create_container(&loc)
            .await
            .expect("create container");
        assert!(created, "container {name} already existed");
        Container { url, name }
    }

    /// The location `rel` in this container on Azurite (`""` for the root).
    pub fn loc(&self, rel: &str) -> RemoteLocation {
        RemoteLocation::parse(&format!("{}/{rel}", self.url)).expect("location")
    }

    /// The same location reached through `proxy`.
    pub fn via(&self, proxy: &Proxy, rel: &str) -> RemoteLocation {
        RemoteLocation::parse(&format!(
            "{}/devstoreaccount1/{}/{rel}",
            proxy.url(),
            self.name
        ))
        .expect("location")
    }
}

/// A service SAS for one container of devstoreaccount1 (`permissions` in canonical order,
/// e.g. `racwdl`), signed with Azurite's key as "Create a service SAS" describes
/// (2019-12-12). A container SAS rather than an account SAS: Azurite 3.35 answers 500 to a
/// container-scoped Blob Batch under an account SAS.
pub fn container_sas(container: &str, permissions: &str) -> String {
    let version = "2019-12-12";
    let expiry = "2099-01-01T00:00:00Z";
    let to_sign = format!(
        "{permissions}\n\n{expiry}\n/blob/devstoreaccount1/{container}\n\n\n\n{version}\nc\n\n\n\n\n\n"
    );
    let mut mac =
        <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&B64.decode(AZURITE_KEY).unwrap()).unwrap();
    mac.update(to_sign.as_bytes());
    let sig = B64.encode(mac.finalize().into_bytes());
    format!(
        "sv={version}&sr=c&sp={permissions}&se={}&sig={}",
        expiry.replace(':', "%3A"),
        fabric_remote::location::encode_query_value(&sig, false)
    )
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    /// 0 when the connection was dropped unanswered.
    pub status: u16,
    /// The fault the proxy injected instead of (or after) forwarding, if any.
    pub fault: Option<&'static str>,
    /// When the request arrived and when its answer went out (or the connection dropped).
    pub started: Instant,
    pub ended: Instant,
}

impl Seen {
    /// Whether the query has `comp=<comp>`.
    pub fn comp(&self, comp: &str) -> bool {
        self.target
            .split_once('?')
            .is_some_and(|(_, q)| q.split('&').any(|p| p == format!("comp={comp}")))
    }
}

type Matcher = Box<dyn Fn(&str, &str) -> bool + Send + Sync>;

enum Fault {
    /// Answer with this status, error code and XML message instead of forwarding.
    Refuse {
        status: u16,
        code: &'static str,
        message: &'static str,
    },
    /// Flip one byte of the body before forwarding.
    Corrupt,
}

/// Random faults, as the emulator's `--fail-rate`/`--reset-rate` inject them: a share of
/// requests answered 503 `ServerBusy` or 429 (with `Retry-After: 0`), a share of connections
/// dropped unanswered, half before and half after Azurite did the work.
#[derive(Default)]
struct Random {
    fail_rate: f64,
    reset_rate: f64,
    state: u64,
}

impl Random {
    fn unit(&mut self) -> f64 {
        // xorshift64*: reproducible from the seed.
        let mut x = self.state.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.state = x;
        (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    in_flight: Mutex<(usize, usize)>,
    latency: Mutex<Duration>,
    faults: Mutex<Vec<(Matcher, Fault, u32)>>,
    random: Mutex<Random>,
}

/// A counting HTTP proxy in front of Azurite, on its own thread and runtime; stops on drop.
pub struct Proxy {
    url: String,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The "error" that makes hyper close a connection unanswered.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the proxy")
    }
}

impl std::error::Error for Dropped {}

impl Proxy {
    /// Binds 127.0.0.1:0 before returning, forwarding to [`endpoint`].
    pub fn start() -> Proxy {
        let upstream = endpoint().to_string();
        let shared = Arc::new(Shared::default());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let state = shared.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            runtime.block_on(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .pool_max_idle_per_host(64)
                    .build()
                    .expect("proxy client");
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let _ = stream.set_nodelay(true);
                            let (state, client, upstream) =
                                (state.clone(), client.clone(), upstream.clone());
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let (state, client, upstream) =
                                        (state.clone(), client.clone(), upstream.clone());
                                    async move { forward(&state, &client, &upstream, req).await }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Proxy {
            url,
            shared,
            stop: Some(tx),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request seen so far, in arrival order of their answers.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    pub fn count(&self, pred: impl Fn(&Seen) -> bool) -> usize {
        self.seen().iter().filter(|s| pred(s)).count()
    }

    pub fn clear(&self) {
        self.shared.seen.lock().unwrap().clear();
        let mut f = self.shared.in_flight.lock().unwrap();
        f.1 = f.0;
    }

    /// The most requests that were in flight at once since the last [`Proxy::clear`].
    pub fn max_in_flight(&self) -> usize {
        self.shared.in_flight.lock().unwrap().1
    }

    /// Holds every request this long before forwarding it.
    pub fn set_latency(&self, latency: Duration) {
        *self.shared.latency.lock().unwrap() = latency;
    }

    /// From now on, answers a `fail_rate` share of requests with 503 `ServerBusy` or 429 and
    /// drops a `reset_rate` share of connections unanswered (half of them after Azurite did
    /// the work), drawn from `seed`.
    pub fn set_faults(&self, fail_rate: f64, reset_rate: f64, seed: u64) {
        *self.shared.random.lock().unwrap() = Random {
            fail_rate,
            reset_rate,
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
        };
    }

    /// Answers the next `times` requests matching `(method, target)` with `status` and an
    /// Azure-style XML error, without forwarding them.
    pub fn refuse(
        &self,
        times: u32,
        matches: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
        status: u16,
        code: &'static str,
        message: &'static str,
    ) {
        self.shared.faults.lock().unwrap().push((
            Box::new(matches),
            Fault::Refuse {
                status,
                code,
                message,
            },
            times,
        ));
    }

    /// Forgets every refusal and corruption not used up yet.
    pub fn clear_refusals(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Flips a byte in the body of the next `times` requests matching `(method, target)`.
    pub fn corrupt(
        &self,
        times: u32,
        matches: impl Fn(&str, &str) -> bool + Send + Sync + 'static,
    ) {
        self.shared
            .faults
            .lock()
            .unwrap()
            .push((Box::new(matches), Fault::Corrupt, times));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// What the random injector decided for one request.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Drawn {
    None,
    Busy,
    Throttled,
    ResetBefore,
    ResetAfter,
}

async fn forward(
    shared: &Shared,
    client: &reqwest::Client,
    upstream: &str,
    req: hyper::Request<hyper::body::Incoming>,
) -> Result<Response<Body>, Dropped> {
    let started = Instant::now();
    let (parts, body) = req.into_parts();
    let method = parts.method.to_string();
    let target = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    {
        let mut f = shared.in_flight.lock().unwrap();
        f.0 += 1;
        f.1 = f.1.max(f.0);
    }
    let record = |status: u16, fault: Option<&'static str>| {
        shared.in_flight.lock().unwrap().0 -= 1;
        shared.seen.lock().unwrap().push(Seen {
            method: method.clone(),
            target: target.clone(),
            status,
            fault,
            started,
            ended: Instant::now(),
        });
    };
    let latency = *shared.latency.lock().unwrap();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut body = {
        use http_body_util_shim::collect;
        collect(body).await
    };
    let drawn = {
        let mut r = shared.random.lock().unwrap();
        if r.fail_rate == 0.0 && r.reset_rate == 0.0 {
            Drawn::None
        } else {
            let (reset, fail, half) = (r.unit(), r.unit(), r.unit());
            if reset < r.reset_rate {
                if half < 0.5 {
                    Drawn::ResetBefore
                } else {
                    Drawn::ResetAfter
                }
            } else if fail < r.fail_rate {
                if half < 0.5 {
                    Drawn::Busy
                } else {
                    Drawn::Throttled
                }
            } else {
                Drawn::None
            }
        }
    };
    match drawn {
        Drawn::ResetBefore => {
            record(0, Some("reset-before"));
            return Err(Dropped);
        }
        Drawn::Busy | Drawn::Throttled => {
            let (status, code, label) = if drawn == Drawn::Busy {
                (503, "ServerBusy", "busy")
            } else {
                (429, "TooManyRequests", "throttled")
            };
            let resp = Response::builder()
                .status(status)
                .header("x-ms-error-code", code)
                .header("retry-after", "0")
                .header("content-type", "application/xml")
                .body(Body::from(format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>Injected by the test proxy.</Message></Error>"
                )))
                .unwrap();
            record(status, Some(label));
            return Ok(resp);
        }
        Drawn::None | Drawn::ResetAfter => {}
    }
    let fault = {
        let mut faults = shared.faults.lock().unwrap();
        let hit = faults
            .iter()
            .position(|(m, _, left)| *left > 0 && m(&method, &target));
        hit.map(|i| {
            faults[i].2 -= 1;
            match &faults[i].1 {
                Fault::Refuse {
                    status,
                    code,
                    message,
                } => Fault::Refuse {
                    status: *status,
                    code,
                    message,
                },
                Fault::Corrupt => Fault::Corrupt,
            }
        })
    };
    let response = match fault {
        Some(Fault::Refuse {
            status,
            code,
            message,
        }) => Response::builder()
            .status(status)
            .header("x-ms-error-code", code)
            .header("content-type", "application/xml")
            .body(Body::from(format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
            )))
            .unwrap(),
        other => {
            if matches!(other, Some(Fault::Corrupt))
                && let Some(b) = body.first_mut()
            {
                *b ^= 0xff;
            }
            let mut out = client.request(parts.method.clone(), format!("{upstream}{target}"));
            // Content-Length stays: it is signed, and an empty body must still say 0.
            for (k, v) in &parts.headers {
                if !matches!(k.as_str(), "host" | "connection" | "transfer-encoding") {
                    out = out.header(k, v);
                }
            }
            match out.body(body).send().await {
                Ok(up) => {
                    let mut resp = Response::builder().status(up.status().as_u16());
                    for (k, v) in up.headers() {
                        if !matches!(
                            k.as_str(),
                            "content-length" | "connection" | "transfer-encoding"
                        ) {
                            resp = resp.header(k, v);
                        }
                    }
                    let bytes = up.bytes().await.unwrap_or_default();
                    resp.body(Body::from(bytes)).unwrap()
                }
                Err(e) => Response::builder()
                    .status(StatusCode::BAD_GATEWAY)
                    .body(Body::from(format!("proxy: {e}")))
                    .unwrap(),
            }
        }
    };
    if drawn == Drawn::ResetAfter {
        record(0, Some("reset-after"));
        return Err(Dropped);
    }
    record(response.status().as_u16(), None);
    Ok(response)
}

/// Reads a whole hyper body (the proxy holds each request in memory, as Azurite does).
mod http_body_util_shim {
    pub async fn collect(body: hyper::body::Incoming) -> Vec<u8> {
        axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
            .await
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }
}
