//! `sync`: makes a destination tree equal to a source tree, one side local and one remote.
//!
//! scan (local walk + cached sha256) → one recursive listing + the manifest → a pure
//! [`plan`] → bounded, adaptive [`execute`] → a new manifest. Change detection is by content:
//! a remote file is known to hold a sha256 when its size and ETag (or content MD5) match the
//! manifest entry written when we uploaded it. `upload` and `download` are the two
//! orchestrators; both count through one [`tally`] and talk to storage through one
//! [`transport`] (DFS, Blob, or both); this module holds what they share. Knows remote paths
//! and local files, nothing of Fabric jobs.
//!
//! Safety rails, in both directions: a remote root that does not exist is an error, never an
//! empty side; nothing is deleted when either side was not seen completely; excluded paths
//! and `test.env` are never deleted (unless `--delete-excluded` for excluded paths);
//! reserved names (the manifest, the lock) are never content.

mod download;
pub mod exclude;
pub mod execute;
pub mod hashcache;
pub mod journal;
pub mod lock;
pub mod manifest;
pub mod plan;
pub mod record;
pub mod remote;
pub mod scan;
pub mod tally;
pub mod transport;
mod upload;

use std::path::{Path, PathBuf};

use exclude::{ExcludeError, Excludes};
use hashcache::HashCache;
use plan::{Entry, Held, Plan, Rails};
use scan::{Scan, ScanOptions};
use tally::Tally;
pub use tally::{Failure, Reason};
pub use transport::{RemoteError, Transport};

use crate::diagnostic::{Diagnostic, Kind};
use crate::env::{self, Env};
use crate::location::{Location, RemoteLocation};

/// How to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    pub excludes: Excludes,
    pub scan: ScanOptions,
    pub rails: Rails,
    pub dry_run: bool,
    /// Most requests in flight.
    pub concurrency: usize,
    /// Where the hash cache and the manifest copy live; `None` keeps nothing between runs.
    pub cache_dir: Option<PathBuf>,
    /// During long uploads, the manifest is rewritten this often, so a run killed part-way
    /// keeps the files it finished even for a re-run on another machine (on this machine the
    /// journal keeps every finished file).
    pub checkpoint_interval: std::time::Duration,
    /// How long to wait for another sync's lock on the remote root (zero: fail at once).
    pub lock_wait: std::time::Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            excludes: Excludes::none(),
            scan: ScanOptions::default(),
            rails: Rails::default(),
            dry_run: false,
            concurrency: DEFAULT_CONCURRENCY,
            cache_dir: None,
            checkpoint_interval: std::time::Duration::from_secs(30),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }
}

/// Requests in flight by default: enough to fill a link with small files, few enough not to
/// provoke throttling on its own (azcopy uses 32 on small machines, databricks sync 20).
pub const DEFAULT_CONCURRENCY: usize = 32;

/// How long a sync waits for another sync's lock on the same remote root by default: longer
/// than the lock's lease, so the lock of a sync killed on another machine has expired by then.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// The user's cache directory for fabric-remote: `FABRIC_REMOTE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/fabric-remote`, else `~/.cache/fabric-remote`.
pub fn default_cache_dir(env: &Env) -> Option<PathBuf> {
    if let Some(dir) = env.get(env::FABRIC_REMOTE_CACHE_DIR) {
        return Some(dir.into());
    }
    if let Some(dir) = env.get("XDG_CACHE_HOME") {
        return Some(Path::new(&dir).join("fabric-remote"));
    }
    env.get("HOME")
        .map(|home| Path::new(&home).join(".cache").join("fabric-remote"))
}

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Upload,
    Download,
}

/// Progress, as the sync goes. The CLI draws it; tests ignore it.
pub trait Reporter: Send + Sync {
    /// The plan is known: this many transfers of this many bytes, and this many deletes.
    fn planned(&self, _transfers: u64, _bytes: u64, _deletes: u64) {}
    fn transferred(&self, _path: &str, _bytes: u64) {}
    fn deleted(&self, _path: &str) {}
    fn failed(&self, _path: &str, _error: &str) {}
    fn warning(&self, _message: &str) {}
    /// Something the user should know that is not a problem (waiting for a lock).
    fn notice(&self, _message: &str) {}
}

/// A reporter that reports nothing.
pub struct Silent;
impl Reporter for Silent {}

/// One line of a dry run's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Upload(String),
    Download(String),
    Delete(String),
    DeleteDir(String),
}

/// What a sync did (or, with `dry_run`, would do).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub uploaded: u64,
    pub downloaded: u64,
    /// Files removed (those under a removed directory included).
    pub deleted: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub bytes: u64,
    pub elapsed_ms: u64,
    pub dry_run: bool,
    /// Local files whose content was read to hash them (0 on a no-op re-sync).
    pub hashed_files: u64,
    #[serde(skip)]
    pub failures: Vec<Failure>,
    #[serde(skip)]
    pub held: Option<(Held, u64)>,
    #[serde(skip)]
    pub actions: Vec<Action>,
}

impl Summary {
    pub fn changed(&self) -> u64 {
        self.uploaded + self.downloaded + self.deleted
    }
}

/// Why a sync could not run (nothing, or nothing more, was changed).
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Exclude(#[from] ExcludeError),
    /// The local root cannot be used (missing, unreadable, not a directory).
    #[error("{what} `{}` {problem}", path.display())]
    Local {
        /// `SRC` or `DST`.
        what: &'static str,
        path: PathBuf,
        /// `does not exist`, `cannot be read`, …
        problem: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The remote root (or its workspace, item or container) does not exist, or cannot be
    /// reached.
    #[error(transparent)]
    Remote(Box<RemoteError>),
    /// The local directory is where the remote keeps its own files (the emulator's data
    /// directory, a lakehouse mounted in a Spark job): syncing it with itself would truncate
    /// or delete the very files it reads.
    #[error(
        "`{}` is the storage of {remote} itself, so syncing them would destroy files; nothing was changed",
        local.display()
    )]
    SameStorage { local: PathBuf, remote: String },
    /// Another sync holds the remote root's lock (and did not let go within `--lock-wait`).
    #[error(
        "another sync to {root} is running{}; nothing was changed",
        holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default()
    )]
    Busy {
        root: String,
        /// `since <time> on host <h>, pid <p>`, when its record could be read.
        holder: Option<String>,
    },
    /// The lock was lost mid-run (its lease was broken or expired and taken by another).
    #[error(
        "lost the lock on {root} while syncing (another sync took it over), so this one stopped before writing the manifest"
    )]
    LockLost { root: String },
    #[error("could not take the lock on the remote root, so nothing was changed")]
    Lock(#[source] Box<RemoteError>),
    #[error("could not list the remote tree, so nothing was changed")]
    Listing(#[source] Box<RemoteError>),
    #[error("could not read the remote manifest, so nothing was changed")]
    Manifest(#[source] Box<RemoteError>),
}

impl SyncError {
    /// Usage and configuration errors (exit 2) as opposed to a failed run (exit 1).
    pub fn is_usage(&self) -> bool {
        self.kind() == Kind::Usage
    }

    fn local(what: &'static str, path: &Path, source: std::io::Error) -> Self {
        let problem = match source.kind() {
            std::io::ErrorKind::NotFound => "does not exist",
            std::io::ErrorKind::PermissionDenied => "cannot be read (permission denied)",
            std::io::ErrorKind::NotADirectory => "is not a directory",
            _ => "cannot be read",
        };
        SyncError::Local {
            what,
            path: path.to_path_buf(),
            problem,
            source,
        }
    }
}

impl Diagnostic for SyncError {
    fn kind(&self) -> Kind {
        match self {
            SyncError::Usage(_)
            | SyncError::Exclude(_)
            | SyncError::Local { .. }
            | SyncError::SameStorage { .. } => Kind::Usage,
            SyncError::Busy { .. } | SyncError::LockLost { .. } => Kind::Failed,
            SyncError::Remote(e)
            | SyncError::Listing(e)
            | SyncError::Manifest(e)
            | SyncError::Lock(e) => e.kind(),
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            SyncError::Local { what, source, .. } => Some(match source.kind() {
                std::io::ErrorKind::NotFound if *what == "SRC" => {
                    "check the path; SRC is the local directory to upload (or the remote URL to download from)".into()
                }
                std::io::ErrorKind::PermissionDenied => {
                    "check the directory's permissions, or run as a user who can read it".into()
                }
                _ => format!("{what} must be a readable local directory"),
            }),
            SyncError::Busy { .. } => Some(format!(
                "wait for it to finish, or pass --lock-wait SECS to wait longer; the lock of a sync that was killed frees itself within {}s",
                lock::LEASE_SECONDS
            )),
            SyncError::LockLost { .. } => Some(
                "run sync again: files already uploaded are not sent again".into(),
            ),
            SyncError::SameStorage { .. } => Some(
                "sync between a working copy and the remote URL, not the remote's own folder (inside a Spark job, copy from /lakehouse/default/Files instead)".into(),
            ),
            _ => None,
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            SyncError::Exclude(e) => Some(e),
            SyncError::Remote(e)
            | SyncError::Listing(e)
            | SyncError::Manifest(e)
            | SyncError::Lock(e) => Some(&**e),
            _ => None,
        }
    }
}

/// Makes `dst` equal to `src`; exactly one of them must be remote. `remote` is the
/// [`Transport`] to the remote side: a `&DfsClient` (everything over DFS), a `&BlobClient`
/// (everything over Blob), or a `&Transport` built for both.
pub async fn sync(
    src: &Location,
    dst: &Location,
    remote: impl Into<Transport>,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, SyncError> {
    let remote: Transport = remote.into();
    match (src, dst) {
        (Location::Local(src), Location::Remote(dst)) => {
            upload::upload(src, dst, &remote, options, reporter).await
        }
        (Location::Remote(src), Location::Local(dst)) => {
            download::download(src, dst, &remote, options, reporter).await
        }
        (Location::Local(_), Location::Local(_)) => Err(SyncError::Usage(
            "both SRC and DST are local paths; one of them must be a remote URL (https://…, abfss://…)".into(),
        )),
        (Location::Remote(_), Location::Remote(_)) => Err(SyncError::Usage(
            "both SRC and DST are remote; fabric-remote syncs between a local directory and a remote one".into(),
        )),
    }
}

fn check_root(root: &RemoteLocation) -> Result<(), SyncError> {
    if root.is_protected() && root.segments().len() < 2 {
        return Err(SyncError::Usage(format!(
            "{root} is a workspace or item root; sync into a folder below it, e.g. {root}/Files/<dir>"
        )));
    }
    Ok(())
}

fn cache_file(options: &SyncOptions, kind: &str, key: &str) -> Option<PathBuf> {
    options
        .cache_dir
        .as_deref()
        .map(|dir| hashcache::cache_file(dir, kind, key))
}

/// Walks and hashes `root` on a blocking thread. `what` names the side (`SRC`, `DST`) in
/// errors.
async fn scan_local(
    what: &'static str,
    root: &Path,
    excludes: &Excludes,
    options: &SyncOptions,
    cache: HashCache,
) -> Result<(Scan, HashCache), SyncError> {
    let (root, excludes, scan_options) = (root.to_path_buf(), excludes.clone(), options.scan);
    let path = root.clone();
    tokio::task::spawn_blocking(move || {
        let mut cache = cache;
        scan::scan(&root, &excludes, scan_options, &mut cache).map(|s| (s, cache))
    })
    .await
    .map_err(|e| SyncError::Usage(format!("the local scan stopped: {e}")))?
    .map_err(|source| SyncError::local(what, &path, source))
}

fn report_scan(scan: &Scan, tally: &Tally<'_>) {
    tally.set_hashed(scan.hashed_files);
    for w in &scan.warnings {
        tally.warning(w);
    }
    for (path, why) in scan.unreadable.iter().chain(&scan.unwalkable) {
        tally.failed(path.to_string(), Reason::Unreadable(why.clone()));
    }
}

/// Deletes that must happen before the transfers: a file in the way of a directory being
/// filled, or a directory in the way of a file.
fn conflicts<'a>(plan: &'a Plan, transfer_paths: &[&str]) -> (Vec<&'a str>, Vec<&'a str>) {
    let blocks = |p: &str| {
        let prefix = format!("{p}/");
        let at = transfer_paths.partition_point(|t| *t < prefix.as_str());
        transfer_paths
            .get(at)
            .is_some_and(|t| t.starts_with(&prefix))
            || transfer_paths.binary_search(&p).is_ok()
    };
    let files = plan
        .delete_files
        .iter()
        .map(|p| &**p)
        .filter(|p| blocks(p))
        .collect();
    let dirs = plan
        .delete_dirs
        .iter()
        .map(|p| &**p)
        .filter(|p| blocks(p))
        .collect();
    (files, dirs)
}

/// After a plan: with `--dry-run`, records in the tally what would change and returns
/// `None` (nothing else happens); otherwise tells the reporter the totals and returns the
/// sorted paths of the planned transfers.
fn settle<'a, S: Entry>(
    plan: &Plan,
    source: &'a [S],
    direction: Direction,
    tally: &Tally<'_>,
    options: &SyncOptions,
) -> Option<Vec<&'a str>> {
    let transfer_paths: Vec<&str> = plan.transfers.iter().map(|&i| source[i].path()).collect();
    let transfer_bytes: u64 = plan.transfers.iter().map(|&i| source[i].size()).sum();
    tally.with(|summary| {
        summary.unchanged = plan.unchanged.len() as u64;
        summary.held = plan.held.clone();
    });
    if !options.dry_run {
        tally.reporter().planned(
            plan.transfers.len() as u64,
            transfer_bytes,
            plan.delete_count,
        );
        return Some(transfer_paths);
    }
    tally.with(|summary| {
        for p in &transfer_paths {
            summary.actions.push(match direction {
                Direction::Upload => Action::Upload(p.to_string()),
                Direction::Download => Action::Download(p.to_string()),
            });
        }
        for p in &plan.delete_dirs {
            summary.actions.push(Action::DeleteDir(p.to_string()));
        }
        for p in &plan.delete_files {
            summary.actions.push(Action::Delete(p.to_string()));
        }
        match direction {
            Direction::Upload => summary.uploaded = plan.transfers.len() as u64,
            Direction::Download => summary.downloaded = plan.transfers.len() as u64,
        }
        summary.deleted = plan.delete_count;
        summary.bytes = transfer_bytes;
    });
    None
}
