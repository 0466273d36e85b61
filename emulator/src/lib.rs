//! A OneLake (DFS and Blob APIs) and Fabric REST emulator on one loopback port.
//!
//! The emulator is the ground truth for the project's tests, so it copies the real
//! service as Microsoft's own clients see it rather than being lenient: string numbers
//! and unquoted ETags in listings, `x-ms-continuation` paging, JSON (DFS) and XML (Blob)
//! errors with `x-ms-error-code`, protected item folders, refused `..`, leases, bearer
//! tokens or SAS query strings. It shares no code with the client in the root package.
//!
//! ```no_run
//! let emu = fabric_emulator::Emulator::start(fabric_emulator::Config::default()).unwrap();
//! let base = format!("{}/My%20Workspace/lake.Lakehouse/Files", emu.url());
//! # let _ = base;
//! ```
//!
//! Layout: [`Emulator`] binds, then serves on its own thread and tokio runtime
//! (`server`, over `tls` when asked), routing `/v1/...` to the Fabric side (`fabric`) and
//! the rest to `storage`, which hands each request to `dfs` or `blob`; `request` holds the
//! per-request context and the one query-string type all sides read; `error` writes
//! failures in each API's shape. All share a [`State`] whose `store` keeps files on disk
//! under `DATA/<workspace>/<item>.Lakehouse/` and metadata beside them in
//! `DATA/.emulator/`, with `lease` for path leases; the Fabric side keeps its SJDs and job
//! logs in `DATA/.emulator/fabric/`. Leaves: `ids`, `time`, `token`, `lock`.

mod blob;
mod dfs;
mod error;
mod fabric;
mod ids;
mod lease;
mod lock;
mod request;
mod server;
mod state;
mod storage;
mod store;
mod time;
mod tls;
mod token;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;

pub use state::{Lakehouse, State};

/// How to start an [`Emulator`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where files and metadata live; `None` → a fresh temp dir removed on drop.
    pub data_dir: Option<PathBuf>,
    /// 0 = any free port; the emulator always binds 127.0.0.1.
    pub port: u16,
    pub workspace: String,
    pub lakehouses: Vec<String>,
    /// Probability of answering 429 or 503 instead of doing the request.
    pub fail_rate: f64,
    /// Probability of dropping the connection unanswered, half before and half after
    /// the operation is applied.
    pub reset_rate: f64,
    /// Delay before handling each request.
    pub latency_ms: u64,
    /// Listing page size and recursive-delete batch size (capped at 5000, the real cap).
    pub page_size: usize,
    /// Seed of the fault injector.
    pub seed: u64,
    /// Delay advertised on injected 429s.
    pub retry_after_ms: u64,
    /// The interpreter job runs use; `None` → `python3` from `PATH`.
    pub python: Option<PathBuf>,
    /// How long a new job instance answers 404 `JobInstanceNotFound`. The default is below
    /// `fabric_retry_after_secs`, so a client that waits as told never sees the 404; a
    /// longer value reproduces the real service's occasional early 404 (a fault knob).
    pub job_visible_after_ms: u64,
    /// `Retry-After` (seconds) on Fabric 202s, LRO polls and job instance polls.
    pub fabric_retry_after_secs: u64,
    /// Share of SJD create/getDefinition/updateDefinition answered as a 202 LRO.
    pub lro_rate: f64,
    /// How long a long-running operation runs before it succeeds.
    pub lro_duration_ms: u64,
    /// Serve HTTPS with a self-signed certificate made at start; its CA is written to
    /// `DATA/.emulator/ca.pem` ([`Emulator::ca_file`]).
    pub tls: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: None,
            port: 0,
            workspace: "My Workspace".to_owned(),
            lakehouses: vec!["lake".to_owned()],
            fail_rate: 0.0,
            reset_rate: 0.0,
            latency_ms: 0,
            page_size: 5000,
            seed: 0,
            retry_after_ms: 20,
            python: None,
            job_visible_after_ms: 500,
            fabric_retry_after_secs: 1,
            lro_rate: 0.5,
            lro_duration_ms: 300,
            tls: false,
        }
    }
}

/// One request as the emulator saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// Percent-decoded, e.g. `/My Workspace/lake.Lakehouse/Files/a b.txt`.
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// 0 when the connection was dropped.
    pub status: u16,
    /// `throttled`, `busy`, `reset-before` or `reset-after`.
    pub fault: Option<&'static str>,
    /// When the request arrived, since the emulator started.
    pub start: Duration,
    /// When its answer was sent (or the connection dropped); `None` while in flight.
    pub end: Option<Duration>,
}

/// The most requests of `requests` that were in flight at one moment, from their
/// `start`/`end` times (e.g. "at least 4 chunks at once"). Unfinished ones count as
/// still running.
pub fn max_in_flight(requests: &[RecordedRequest]) -> usize {
    let mut events: Vec<(Duration, i32)> = Vec::with_capacity(requests.len() * 2);
    for r in requests {
        events.push((r.start, 1));
        events.push((r.end.unwrap_or(Duration::MAX), -1));
    }
    // Ends sort before starts at the same instant: touching is not overlapping.
    events.sort();
    let (mut now, mut most) = (0i32, 0i32);
    for (_, d) in events {
        now += d;
        most = most.max(now);
    }
    most as usize
}

/// The router: `/v1/...` is the Fabric REST side, everything else OneLake storage (DFS
/// and Blob).
pub fn app(state: Arc<State>) -> Router {
    fabric::routes().fallback(storage::handle).with_state(state)
}

/// A running emulator. Stops (and removes its temp dir, if it made one) on drop.
pub struct Emulator {
    state: Arc<State>,
    addr: SocketAddr,
    ca_file: Option<PathBuf>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    temp_dir: Option<PathBuf>,
}

impl Emulator {
    /// Binds 127.0.0.1:`port` before returning, then serves on its own thread.
    pub fn start(config: Config) -> std::io::Result<Emulator> {
        let (data_dir, temp_dir) = match &config.data_dir {
            Some(d) => {
                std::fs::create_dir_all(d).map_err(|e| in_data_dir(d, e))?;
                (d.clone(), None)
            }
            None => {
                let d = make_temp_dir()?;
                (d.clone(), Some(d))
            }
        };
        let cleanup = |e: std::io::Error| {
            if let Some(t) = &temp_dir {
                let _ = std::fs::remove_dir_all(t);
            }
            e
        };
        let state = Arc::new(State::open(&config, data_dir.clone()).map_err(cleanup)?);
        let (acceptor, ca_file) = if config.tls {
            let (a, f) = tls::setup(&data_dir).map_err(cleanup)?;
            (Some(a), Some(f))
        } else {
            (None, None)
        };
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot listen on 127.0.0.1:{}: {e}; choose another port (0 picks a free one)",
                        config.port
                    ),
                )
            })
            .map_err(cleanup)?;
        listener.set_nonblocking(true).map_err(cleanup)?;
        let addr = listener.local_addr().map_err(cleanup)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fabric-emulator")
            .enable_all()
            .build()
            .map_err(cleanup)?;
        let (tx, rx) = oneshot::channel();
        let serve_state = state.clone();
        let thread = std::thread::Builder::new()
            .name("fabric-emulator".to_owned())
            .spawn(move || {
                let app = app(serve_state.clone());
                runtime.block_on(server::serve(listener, serve_state, app, acceptor, rx));
                runtime.shutdown_timeout(Duration::from_secs(2));
            })
            .map_err(cleanup)?;
        Ok(Emulator {
            state,
            addr,
            ca_file,
            shutdown: Some(tx),
            thread: Some(thread),
            temp_dir,
        })
    }

    /// `http://127.0.0.1:PORT`, or `https://…` with [`Config::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// The PEM file of the CA that signed the HTTPS certificate ([`Config::tls`]).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    pub fn data_dir(&self) -> &Path {
        self.state.data_dir()
    }

    pub fn workspace_name(&self) -> &str {
        self.state.workspace_name()
    }

    pub fn workspace_id(&self) -> &str {
        self.state.workspace_id()
    }

    pub fn lakehouse_id(&self, name: &str) -> Option<String> {
        self.state.lakehouse(name).map(|l| l.id.clone())
    }

    /// The on-disk `Files/` folder of a lakehouse.
    pub fn lakehouse_files_dir(&self, name: &str) -> Option<PathBuf> {
        self.state.lakehouse_files_dir(name)
    }

    /// Every request seen, in arrival order, faulted ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.requests()
    }

    pub fn clear_requests(&self) {
        self.state.clear_requests()
    }

    pub fn set_faults(&self, fail_rate: f64, reset_rate: f64, latency_ms: u64) {
        self.state.set_faults(fail_rate, reset_rate, latency_ms)
    }

    /// Moves the clock that leases expire by forward by `d` (tests of lease expiry).
    pub fn advance_clock(&self, d: Duration) {
        self.state.advance_clock(d)
    }

    /// Later requests bearing exactly this token get 401.
    pub fn revoke_token(&self, token: &str) {
        self.state.revoke_token(token)
    }

    /// Later requests under this path (`/<fs>/<path…>`, decoded, either addressing form)
    /// get 403 `AuthorizationPermissionMismatch`.
    pub fn deny(&self, path_prefix: &str) {
        self.state.deny(path_prefix)
    }

    /// Assigns (default) or removes the workspace's capacity. Without one, creating an
    /// SJD and running a job fail with 400 `WorkspaceHasNoCapacityAssigned`.
    pub fn set_capacity(&self, assigned: bool) {
        self.state.fabric.set_capacity(assigned)
    }

    /// Fault knob: every later run of the Spark job definition called `sjd_name` ends
    /// `Failed` right after its submit, with `reason` as its `failureReason.message` (as a
    /// driver that cannot start does); `None` clears it.
    pub fn fail_runs_of(&self, sjd_name: &str, reason: Option<&str>) {
        self.state.fabric.fail_runs_of(sjd_name, reason)
    }
}

/// An I/O error in the data directory, said as one sentence with what to do.
pub(crate) fn in_data_dir(dir: &Path, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(
        e.kind(),
        format!(
            "cannot use the data directory {}: {e}; choose a directory you can write to",
            dir.display()
        ),
    )
}

/// Creates a fresh, empty directory under the system temp dir.
fn make_temp_dir() -> std::io::Result<PathBuf> {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "fabric-emulator-{}-{}-{n}",
        std::process::id(),
        time::now_nanos()
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.state.fabric.shutdown();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}
