//! One remote for a sync test, on whichever server and API the test runs against: the
//! emulator over DFS, the emulator with `--api auto` (Blob for listings, transfers and the
//! lock; DFS for deletes), or Azurite over Blob behind a counting proxy. The test bodies in
//! `super` are written once against this fixture and run on each [`Backend`], the way
//! object_store runs one conformance suite against every store.
//!
//! What a test asserts is read from the server's side: the bytes stored (the emulator's
//! files on disk, or Azurite's blobs read back directly, not through the proxy), and every
//! request it saw (the emulator's request log, the proxy's), normalised to one [`Req`] shape.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::blob::{BlobAuth, BlobClient};
use fabric_remote::dfs::DfsClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::{Location, RemoteLocation};
use fabric_remote::secret::Secret;
use fabric_remote::sync::transport::Conditions;
use fabric_remote::sync::{self, Silent, Summary, SyncError, SyncOptions, Transport};
use futures::TryStreamExt;

use crate::azurite::{Container, Proxy};
use crate::util::fabric_remote;

pub const MANIFEST: &str = ".fabric-remote-manifest";
pub const LOCK: &str = ".fabric-remote-lock";

/// Which server and API a test body runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The emulator, everything over DFS (`--api dfs`).
    Dfs,
    /// The emulator with `--api auto`: Blob for listings, transfers and the lock, DFS for
    /// deletes and existence checks — what a OneLake URL gets by default.
    Auto,
    /// Azurite over the Blob API (a server nobody here wrote), through a counting proxy.
    Azurite,
}

impl Backend {
    /// Whether listings come from the Blob API (and show content MD5s).
    pub fn lists_blobs(self) -> bool {
        self != Backend::Dfs
    }

    /// Whether small files go up as one Put Blob (else DFS create + append).
    pub fn puts_blobs(self) -> bool {
        self != Backend::Dfs
    }
}

/// Runs `f` to completion on a runtime of its own thread (fixture set-up from inside or
/// outside a tokio test alike).
pub fn block<T: Send + 'static>(f: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    })
    .join()
    .unwrap()
}

/// A request as the server saw it, whatever the server.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    /// Percent-decoded path.
    pub path: String,
    pub query: String,
    /// 0 when the connection was dropped.
    pub status: u16,
    pub fault: bool,
}

impl Req {
    pub fn has(&self, param: &str) -> bool {
        self.query.split('&').any(|p| p == param)
    }

    fn ours(&self) -> bool {
        self.path.ends_with(MANIFEST) || self.path.ends_with(LOCK)
    }

    /// A write of content or metadata (not a lease action): DFS create/append/flush/delete,
    /// Put Blob/Block/Block List, Delete Blob, Blob Batch.
    pub fn is_write(&self) -> bool {
        match self.method.as_str() {
            "PUT" => !self.has("comp=lease"),
            "PATCH" | "DELETE" => true,
            "POST" => self.has("comp=batch"),
            _ => false,
        }
    }

    /// A lease action (the lock): DFS `POST` with `x-ms-lease-action`, Blob `comp=lease`.
    pub fn is_lease(&self) -> bool {
        (self.method == "POST" && !self.has("comp=batch"))
            || (self.method == "PUT" && self.has("comp=lease"))
    }

    /// A request that deletes: DFS or Blob `DELETE`, or a Blob Batch.
    pub fn is_delete(&self) -> bool {
        self.method == "DELETE" || (self.method == "POST" && self.has("comp=batch"))
    }

    /// The request that starts a content file's upload: DFS create, Put Blob, or Put Block
    /// List (any outcome).
    pub fn starts_upload(&self) -> bool {
        !self.ours()
            && self.method == "PUT"
            && (self.has("resource=file") || self.is_put_blob() || self.has("comp=blocklist"))
    }

    fn is_put_blob(&self) -> bool {
        self.method == "PUT"
            && !self.query.contains("comp=")
            && !self.query.contains("resource=")
            && !self.query.contains("restype=")
    }

    /// The request that committed an upload (DFS append with flush, Put Blob, Put Block
    /// List), succeeded.
    pub fn commits(&self) -> bool {
        (self.method == "PATCH" && self.has("flush=true") && self.status == 202)
            || (self.method == "PATCH" && self.has("action=flush") && self.status == 200)
            || ((self.is_put_blob() || self.has("comp=blocklist")) && self.status == 201)
    }

    /// A content file's committing request (not the manifest's or the lock's).
    pub fn commits_content(&self) -> bool {
        !self.ours() && self.commits()
    }

    /// The manifest written (committed).
    pub fn commits_manifest(&self) -> bool {
        self.path.ends_with(MANIFEST) && self.commits()
    }

    /// A listing (DFS List Paths, List Blobs).
    pub fn is_listing(&self) -> bool {
        self.method == "GET" && (self.has("resource=filesystem") || self.has("comp=list"))
    }

    /// The file name of the path.
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

pub fn writes(log: &[Req]) -> usize {
    log.iter().filter(|r| r.is_write()).count()
}

pub fn leases(log: &[Req]) -> usize {
    log.iter().filter(|r| r.is_lease()).count()
}

/// Names of the content files whose upload started, sorted.
pub fn uploads_of(log: &[Req]) -> Vec<String> {
    let mut v: Vec<String> = log
        .iter()
        .filter(|r| r.starts_upload())
        .map(|r| r.name().to_string())
        .collect();
    v.sort();
    v
}

/// Content files committed, by path.
pub fn committed(log: &[Req]) -> Vec<String> {
    log.iter()
        .filter(|r| r.commits_content())
        .map(|r| r.path.clone())
        .collect()
}

/// Content files whose upload began, by path.
pub fn created(log: &[Req]) -> Vec<String> {
    log.iter()
        .filter(|r| r.starts_upload())
        .map(|r| r.path.clone())
        .collect()
}

pub fn faults(log: &[Req]) -> usize {
    log.iter().filter(|r| r.fault).count()
}

/// What the fixture's emulator or Azurite knobs start as.
pub struct Knobs {
    pub fail_rate: f64,
    pub reset_rate: f64,
    pub seed: u64,
    pub latency_ms: u64,
    pub page_size: usize,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            fail_rate: 0.0,
            reset_rate: 0.0,
            seed: 0,
            latency_ms: 0,
            page_size: 5000,
        }
    }
}

pub struct Fixture {
    pub backend: Backend,
    emu: Option<Emulator>,
    azurite: Option<(Container, Proxy)>,
    pub remote: Transport,
    pub cache: tempfile::TempDir,
}

/// Retries fast: tests must not sleep for seconds.
pub fn policy() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 14,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(40),
        deadline: Duration::from_secs(120),
    }
}

impl Fixture {
    pub fn new(backend: Backend) -> Self {
        Self::with(backend, Knobs::default())
    }

    pub fn with(backend: Backend, knobs: Knobs) -> Self {
        let http = HttpClient::new(Credentials::from_token(Secret::new("t")), policy()).unwrap();
        let cache = tempfile::tempdir().unwrap();
        match backend {
            Backend::Dfs | Backend::Auto => {
                let emu = Emulator::start(Config {
                    fail_rate: knobs.fail_rate,
                    reset_rate: knobs.reset_rate,
                    seed: knobs.seed,
                    latency_ms: knobs.latency_ms,
                    page_size: knobs.page_size,
                    ..Config::default()
                })
                .expect("emulator");
                let dfs = DfsClient::new(http.clone()).with_chunk_size(4 * 1024 * 1024);
                let remote = if backend == Backend::Dfs {
                    Transport::dfs(dfs)
                } else {
                    let blob = BlobClient::new(http, BlobAuth::Bearer)
                        .with_single_put_limit(4 * 1024 * 1024)
                        .with_block_size(4 * 1024 * 1024);
                    Transport::both(blob, dfs)
                };
                Fixture {
                    backend,
                    emu: Some(emu),
                    azurite: None,
                    remote,
                    cache,
                }
            }
            Backend::Azurite => {
                let container = block(Container::new("sync"));
                let proxy = Proxy::start();
                if knobs.latency_ms > 0 {
                    proxy.set_latency(Duration::from_millis(knobs.latency_ms));
                }
                if knobs.fail_rate > 0.0 || knobs.reset_rate > 0.0 {
                    proxy.set_faults(knobs.fail_rate, knobs.reset_rate, knobs.seed);
                }
                let blob = BlobClient::new(http, BlobAuth::azurite())
                    .with_single_put_limit(4 * 1024 * 1024)
                    .with_block_size(4 * 1024 * 1024)
                    .with_page_size(knobs.page_size as u32);
                Fixture {
                    backend,
                    emu: None,
                    azurite: Some((container, proxy)),
                    remote: Transport::blob(blob),
                    cache,
                }
            }
        }
    }

    /// The emulator (Dfs and Auto backends only).
    pub fn emu(&self) -> &Emulator {
        self.emu.as_ref().expect("an emulator backend")
    }

    /// The URL of folder `sub` (below the lakehouse's `Files`, or in the test's container).
    pub fn url(&self, sub: &str) -> String {
        match &self.azurite {
            Some((c, p)) => format!("{}/devstoreaccount1/{}/{sub}", p.url(), c.name),
            None => {
                let emu = self.emu();
                format!(
                    "{}/{}/lake.Lakehouse/Files/{sub}",
                    emu.url(),
                    emu.workspace_name().replace(' ', "%20")
                )
            }
        }
    }

    pub fn remote(&self, sub: &str) -> RemoteLocation {
        RemoteLocation::parse(&self.url(sub)).unwrap()
    }

    pub fn options(&self) -> SyncOptions {
        SyncOptions {
            cache_dir: Some(self.cache.path().to_path_buf()),
            concurrency: 16,
            ..SyncOptions::default()
        }
    }

    pub async fn up(
        &self,
        src: &Path,
        sub: &str,
        options: &SyncOptions,
    ) -> Result<Summary, SyncError> {
        sync::sync(
            &Location::Local(src.to_path_buf()),
            &Location::Remote(self.remote(sub)),
            &self.remote,
            options,
            &Silent,
        )
        .await
    }

    pub async fn down(
        &self,
        sub: &str,
        dst: &Path,
        options: &SyncOptions,
    ) -> Result<Summary, SyncError> {
        sync::sync(
            &Location::Remote(self.remote(sub)),
            &Location::Local(dst.to_path_buf()),
            &self.remote,
            options,
            &Silent,
        )
        .await
    }

    /// `fabric-remote` with this backend's `--api`, token and the fixture's cache: append
    /// the subcommand's arguments.
    pub fn command(&self) -> Command {
        self.command_with_cache(self.cache.path())
    }

    pub fn command_with_cache(&self, cache: &Path) -> Command {
        let mut cmd = fabric_remote();
        cmd.env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_CACHE_DIR", cache);
        cmd
    }

    /// The `--api` this backend runs the CLI with.
    pub fn api_args(&self) -> Vec<&'static str> {
        match self.backend {
            Backend::Dfs => vec!["--api", "dfs"],
            Backend::Auto | Backend::Azurite => vec![],
        }
    }

    /// Runs `fabric-remote sync ARGS… --api …` with the fixture's cache dir.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        self.command()
            .arg("sync")
            .args(args)
            .args(self.api_args())
            .output()
            .unwrap()
    }

    /// Every request the server saw since the last [`Fixture::clear_requests`].
    pub fn requests(&self) -> Vec<Req> {
        match &self.azurite {
            Some((_, proxy)) => proxy
                .seen()
                .into_iter()
                .map(|s| {
                    let (path, query) = s.target.split_once('?').unwrap_or((&s.target, ""));
                    Req {
                        method: s.method.clone(),
                        path: percent_encoding::percent_decode_str(path)
                            .decode_utf8_lossy()
                            .into_owned(),
                        query: query.to_string(),
                        status: s.status,
                        fault: s.fault.is_some(),
                    }
                })
                .collect(),
            None => self
                .emu()
                .requests()
                .into_iter()
                .map(|r| Req {
                    method: r.method,
                    path: r.path,
                    query: r.query,
                    status: r.status,
                    fault: r.fault.is_some(),
                })
                .collect(),
        }
    }

    pub fn clear_requests(&self) {
        match &self.azurite {
            Some((_, proxy)) => proxy.clear(),
            None => self.emu().clear_requests(),
        }
    }

    /// Faults and latency from now on.
    pub fn set_faults(&self, fail_rate: f64, reset_rate: f64, latency_ms: u64) {
        match &self.azurite {
            Some((_, proxy)) => {
                proxy.set_faults(fail_rate, reset_rate, 7);
                proxy.set_latency(Duration::from_millis(latency_ms));
            }
            None => self.emu().set_faults(fail_rate, reset_rate, latency_ms),
        }
    }

    /// Every request is refused for lack of permission from now on.
    pub fn deny_everything(&self) {
        match &self.azurite {
            Some((_, proxy)) => proxy.refuse(
                u32::MAX,
                |_, _| true,
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.",
            ),
            None => self
                .emu()
                .deny(&format!("/{}", self.emu().workspace_name())),
        }
    }

    /// The credential stops working from now on (a revoked token; on Azurite, the proxy
    /// answers 403 `AuthenticationFailed`, what a rotated account key gets).
    pub fn revoke(&self, token: &str) {
        match &self.azurite {
            Some((_, proxy)) => proxy.refuse(
                u32::MAX,
                |_, _| true,
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request.",
            ),
            None => self.emu().revoke_token(token),
        }
    }

    /// The credential works again (on the emulator the next run uses another token).
    pub fn unrevoke(&self) {
        if let Some((_, proxy)) = &self.azurite {
            proxy.clear_refusals();
        }
    }

    /// The status a revoked credential gets.
    pub fn revoked_status(&self) -> &'static str {
        match self.backend {
            Backend::Azurite => "403",
            _ => "401",
        }
    }

    /// Every file stored below `sub` with its bytes, by relative path, our manifest and lock
    /// left out. Read straight from the server's storage (not through the proxy).
    pub fn remote_tree(&self, sub: &str) -> BTreeMap<String, Vec<u8>> {
        let mut t = self.stored(sub);
        t.remove(MANIFEST);
        t.remove(LOCK);
        t
    }

    /// Every file stored below `sub`, ours included.
    pub fn stored(&self, sub: &str) -> BTreeMap<String, Vec<u8>> {
        match &self.azurite {
            Some((c, _)) => {
                let dir = c.loc(sub);
                block(async move {
                    let blob = crate::azurite::client(BlobAuth::azurite());
                    let mut out = BTreeMap::new();
                    let mut pages = std::pin::pin!(blob.list(&dir));
                    while let Some(page) = pages.try_next().await.unwrap() {
                        for e in page {
                            let Some(rel) = e.relative_to(&dir) else {
                                continue;
                            };
                            let rel = rel.to_string();
                            let loc = RemoteLocation::parse(&format!(
                                "{}/devstoreaccount1/{}/{}",
                                crate::azurite::endpoint(),
                                dir.filesystem(),
                                e.name
                                    .split('/')
                                    .map(|s| fabric_remote::location::encode_query_value(s, false))
                                    .collect::<Vec<_>>()
                                    .join("/")
                            ))
                            .unwrap();
                            out.insert(rel, blob.read(&loc, None).await.unwrap().to_vec());
                        }
                    }
                    out
                })
            }
            None => super::tree(&self.remote_dir(sub)),
        }
    }

    /// Whether anything is stored at `path` (a file, or a folder with something below).
    pub fn exists(&self, path: &str) -> bool {
        match &self.azurite {
            Some(_) => {
                let all = self.stored("");
                let prefix = format!("{path}/");
                all.keys().any(|k| k == path || k.starts_with(&prefix))
            }
            None => self.remote_dir(path).exists(),
        }
    }

    /// The emulator's folder for `sub` on disk.
    pub fn remote_dir(&self, sub: &str) -> PathBuf {
        self.emu().lakehouse_files_dir("lake").unwrap().join(sub)
    }

    /// Deletes `path` behind the sync's back.
    pub async fn tamper_delete(&self, path: &str) {
        let loc = self.remote(path);
        let results = self.remote.delete_many(std::slice::from_ref(&loc)).await;
        assert!(results.into_iter().all(|r| r.unwrap()), "{path} deleted");
    }

    /// Writes `bytes` to `path` behind the sync's back.
    pub async fn tamper_write(&self, path: &str, bytes: &'static [u8]) {
        self.remote
            .put(
                &self.remote(path),
                Bytes::from_static(bytes),
                &Conditions::default(),
            )
            .await
            .unwrap();
    }
}
