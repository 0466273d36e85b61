//! Defines [`State`]: everything the emulator knows, shared by the DFS side and the
//! Fabric REST side — the workspace and its lakehouses, the file store, the request
//! log, the fault settings and the revoked tokens and denied paths.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::lock::lock;

use crate::fabric::Fabric;
use crate::ids;
use crate::lease::Leases;
use crate::store::Store;
use crate::time;
use crate::{Config, RecordedRequest};

/// One lakehouse of the emulated workspace.
#[derive(Debug, Clone)]
pub struct Lakehouse {
    pub name: String,
    pub id: String,
    /// `DATA/<workspace>/<name>.Lakehouse`
    pub root: PathBuf,
}

impl Lakehouse {
    /// The item folder name as OneLake spells it: `<name>.Lakehouse`.
    pub fn folder(&self) -> String {
        format!("{}.Lakehouse", self.name)
    }
}

/// What the fault injector decided for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    None,
    Throttled,
    Busy,
    ResetBefore,
    ResetAfter,
}

impl Fault {
    pub fn label(self) -> Option<&'static str> {
        match self {
            Fault::None => None,
            Fault::Throttled => Some("throttled"),
            Fault::Busy => Some("busy"),
            Fault::ResetBefore => Some("reset-before"),
            Fault::ResetAfter => Some("reset-after"),
        }
    }
}

struct Faults {
    rng: u64,
    fail_rate: f64,
    reset_rate: f64,
    latency_ms: u64,
}

/// Shared emulator state. Cheap to share behind an `Arc`.
pub struct State {
    pub(crate) data_dir: PathBuf,
    pub(crate) workspace_name: String,
    pub(crate) workspace_id: String,
    pub(crate) lakehouses: Vec<Lakehouse>,
    pub(crate) page_size: usize,
    /// Served over HTTPS (listings name the endpoint).
    pub(crate) tls: bool,
    pub(crate) retry_after_ms: u64,
    pub(crate) started_ns: u64,
    /// The clock of the request log.
    started: std::time::Instant,
    pub(crate) store: Store,
    pub(crate) fabric: Fabric,
    pub(crate) leases: Leases,
    /// Added to the clock leases expire by (tests move time forward).
    clock_offset_ns: AtomicU64,
    faults: Mutex<Faults>,
    /// The request log, and how many entries `clear_requests` dropped before it.
    log: Mutex<(usize, Vec<RecordedRequest>)>,
    revoked: Mutex<HashSet<String>>,
    /// Denied prefixes: as given, and in canonical name form when they parse.
    denied: Mutex<Vec<(String, Option<String>)>>,
    request_seq: AtomicU64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0'])
        && name != ".emulator"
}

impl State {
    /// Opens (or creates) the data directory layout and loads persisted metadata.
    pub fn open(config: &Config, data_dir: PathBuf) -> std::io::Result<State> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
        if !valid_name(&config.workspace) {
            return Err(invalid(&format!(
                "the workspace name `{}` is not valid; give a non-empty name without `/`",
                config.workspace
            )));
        }
        if config.lakehouses.is_empty() {
            return Err(invalid(
                "the workspace has no lakehouse; give at least one lakehouse name",
            ));
        }
        let mut lakehouses = Vec::new();
        for name in &config.lakehouses {
            if !valid_name(name) || lakehouses.iter().any(|l: &Lakehouse| l.name == *name) {
                return Err(invalid(&format!(
                    "the lakehouse name `{name}` is empty, contains `/` or is given twice; give distinct names without `/`"
                )));
            }
            let root = data_dir
                .join(&config.workspace)
                .join(format!("{name}.Lakehouse"));
            std::fs::create_dir_all(root.join("Files"))
                .and_then(|()| std::fs::create_dir_all(root.join("Tables")))
                .map_err(|e| crate::in_data_dir(&data_dir, e))?;
            lakehouses.push(Lakehouse {
                name: name.clone(),
                id: ids::guid_from_name("lakehouse", &format!("{}\0{name}", config.workspace)),
                root,
            });
        }
        let store = Store::open(&data_dir).map_err(|e| crate::in_data_dir(&data_dir, e))?;
        let fabric =
            Fabric::open(config, &data_dir).map_err(|e| crate::in_data_dir(&data_dir, e))?;
        Ok(State {
            fabric,
            workspace_id: ids::guid_from_name("workspace", &config.workspace),
            workspace_name: config.workspace.clone(),
            lakehouses,
            page_size: config.page_size.clamp(1, 5000),
            tls: config.tls,
            retry_after_ms: config.retry_after_ms,
            started_ns: time::now_nanos(),
            started: std::time::Instant::now(),
            store,
            leases: Leases::default(),
            clock_offset_ns: AtomicU64::new(0),
            faults: Mutex::new(Faults {
                rng: config.seed,
                fail_rate: config.fail_rate,
                reset_rate: config.reset_rate,
                latency_ms: config.latency_ms,
            }),
            log: Mutex::new((0, Vec::new())),
            revoked: Mutex::new(HashSet::new()),
            denied: Mutex::new(Vec::new()),
            request_seq: AtomicU64::new(0),
            data_dir,
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn workspace_name(&self) -> &str {
        &self.workspace_name
    }

    pub fn workspace_id(&self) -> &str {
        &self.workspace_id
    }

    pub fn lakehouses(&self) -> &[Lakehouse] {
        &self.lakehouses
    }

    pub fn lakehouse(&self, name: &str) -> Option<&Lakehouse> {
        self.lakehouses.iter().find(|l| l.name == name)
    }

    pub fn lakehouse_files_dir(&self, name: &str) -> Option<PathBuf> {
        self.lakehouse(name).map(|l| l.root.join("Files"))
    }

    /// Resolves a workspace path segment (name, or GUID in any case).
    pub fn resolve_workspace(&self, seg: &str) -> bool {
        seg == self.workspace_name || self.workspace_id.eq_ignore_ascii_case(seg)
    }

    /// Resolves an item path segment: `<name>.Lakehouse` (suffix in any case) or the
    /// lakehouse GUID (any case).
    pub fn resolve_item(&self, seg: &str) -> Option<usize> {
        if ids::is_guid(seg) {
            return self
                .lakehouses
                .iter()
                .position(|l| l.id.eq_ignore_ascii_case(seg));
        }
        let dot = seg.rfind('.')?;
        let (name, suffix) = (&seg[..dot], &seg[dot + 1..]);
        if !suffix.eq_ignore_ascii_case("Lakehouse") {
            return None;
        }
        self.lakehouses.iter().position(|l| l.name == name)
    }

    /// `/<fs>/<item>/<rest…>` with workspace and item in name form, when it parses.
    pub fn canonical_path(&self, path: &str) -> Option<String> {
        let mut segs = path.trim_start_matches('/').split('/');
        let ws = segs.next()?;
        if !self.resolve_workspace(ws) {
            return None;
        }
        let mut out = format!("/{}", self.workspace_name);
        if let Some(item) = segs.next() {
            let lh = self.resolve_item(item)?;
            out.push('/');
            out.push_str(&self.lakehouses[lh].folder());
            for s in segs {
                out.push('/');
                out.push_str(s);
            }
        }
        Some(out)
    }

    // ---- request log ------------------------------------------------------------

    /// Logs a request on arrival; returns its sequence number for `record_finish`.
    pub(crate) fn record_start(&self, method: String, path: String, query: String) -> usize {
        // A SAS signature is a secret: the log keeps everything but its value.
        let query = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("sig") => format!("{k}=REDACTED"),
                _ => p.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("&");
        let mut log = lock(&self.log);
        log.1.push(RecordedRequest {
            method,
            path,
            query,
            status: 0,
            fault: None,
            start: self.started.elapsed(),
            end: None,
        });
        log.0 + log.1.len() - 1
    }

    pub(crate) fn record_finish(&self, seq: usize, status: u16, fault: Option<&'static str>) {
        let mut log = lock(&self.log);
        // `clear_requests` may have run meanwhile; then the entry is gone.
        let base = log.0;
        let end = self.started.elapsed();
        if let Some(r) = seq.checked_sub(base).and_then(|i| log.1.get_mut(i)) {
            r.status = status;
            r.fault = fault;
            r.end = Some(end);
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).1.clone()
    }

    pub fn clear_requests(&self) {
        let mut log = lock(&self.log);
        log.0 += log.1.len();
        log.1.clear();
    }

    /// Now, in Unix nanoseconds, on the clock leases expire by.
    pub(crate) fn lease_now(&self) -> u64 {
        time::now_nanos() + self.clock_offset_ns.load(Ordering::Relaxed)
    }

    /// Moves the lease clock forward by `d`.
    pub fn advance_clock(&self, d: std::time::Duration) {
        self.clock_offset_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub(crate) fn next_request_id(&self) -> String {
        let n = self.request_seq.fetch_add(1, Ordering::Relaxed);
        let mut s = n ^ self.started_ns;
        let hi = ids::splitmix64(&mut s);
        let lo = ids::splitmix64(&mut s);
        ids::guid_from_u128((u128::from(hi) << 64) | u128::from(lo))
    }

    // ---- faults, tokens, denials ------------------------------------------------

    pub fn set_faults(&self, fail_rate: f64, reset_rate: f64, latency_ms: u64) {
        let mut f = lock(&self.faults);
        f.fail_rate = fail_rate;
        f.reset_rate = reset_rate;
        f.latency_ms = latency_ms;
    }

    /// Draws the fault for the next request. Three draws per request whatever the rates,
    /// so a given seed gives the same sequence of decisions in the same request order.
    pub(crate) fn draw_fault(&self) -> (Fault, u64) {
        let mut f = lock(&self.faults);
        let r_reset = ids::unit(&mut f.rng);
        let r_fail = ids::unit(&mut f.rng);
        let r_kind = ids::unit(&mut f.rng);
        let fault = if r_reset < f.reset_rate {
            if r_kind < 0.5 {
                Fault::ResetBefore
            } else {
                Fault::ResetAfter
            }
        } else if r_fail < f.fail_rate {
            if r_kind < 0.5 {
                Fault::Throttled
            } else {
                Fault::Busy
            }
        } else {
            Fault::None
        };
        (fault, f.latency_ms)
    }

    pub fn revoke_token(&self, token: &str) {
        lock(&self.revoked).insert(token.to_owned());
    }

    pub(crate) fn is_revoked(&self, token: &str) -> bool {
        lock(&self.revoked).contains(token)
    }

    pub fn deny(&self, path_prefix: &str) {
        let prefix = path_prefix.trim_end_matches('/').to_owned();
        let canonical = self.canonical_path(&prefix);
        lock(&self.denied).push((prefix, canonical));
    }

    /// Whether `path` (decoded, `/<fs>/<path…>`) lies under a denied prefix, in either
    /// addressing form.
    pub(crate) fn is_denied(&self, path: &str) -> bool {
        let denied = lock(&self.denied);
        if denied.is_empty() {
            return false;
        }
        let canonical = self.canonical_path(path);
        let under = |p: &str, prefix: &str| {
            p == prefix || (p.starts_with(prefix) && p.as_bytes().get(prefix.len()) == Some(&b'/'))
        };
        denied.iter().any(|(raw, canon)| {
            under(path, raw)
                || match (&canonical, canon) {
                    (Some(c), Some(d)) => under(c, d),
                    _ => false,
                }
        })
    }
}
