//! `sync`: makes a destination tree equal to a source tree, one side local and one remote.
//!
//! scan (local walk + cached sha256) → one recursive listing + the manifest → a pure
//! [`plan`] → bounded, adaptive [`execute`] → a new manifest. Change detection is by content:
//! a remote file is known to hold a sha256 when its size and ETag match the manifest entry
//! written when we uploaded it. Knows DFS paths and local files, nothing of Fabric jobs.

pub mod exclude;
pub mod execute;
pub mod hashcache;
pub mod manifest;
pub mod plan;
pub mod record;
pub mod remote;
pub mod scan;

use std::path::{Path, PathBuf};

use futures::StreamExt;
use std::sync::Mutex;
use std::time::Instant;

use exclude::{ExcludeError, Excludes};
use execute::Limiter;
use hashcache::HashCache;
use manifest::{Etag, Manifest, ManifestEntry};
use plan::{Entry, Held, Plan, Rails, RemoteFile, Sides};
use remote::RemoteTree;
use scan::{LocalFile, Scan, ScanOptions};

use crate::dfs::{DfsClient, DfsError};
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
    /// keeps the files it finished (a re-run does not upload them again).
    pub checkpoint_interval: std::time::Duration,
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
        }
    }
}

/// Requests in flight by default: enough to fill a link with small files, few enough not to
/// provoke throttling on its own (azcopy uses 32 on small machines, databricks sync 20).
pub const DEFAULT_CONCURRENCY: usize = 32;

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
    pub failures: Vec<(String, String)>,
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
    #[error("cannot read {}: {source}", path.display())]
    Local {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not list the remote tree, so nothing was changed: {0}")]
    Listing(#[source] Box<DfsError>),
    #[error("could not read the remote manifest, so nothing was changed: {0}")]
    Manifest(#[source] Box<DfsError>),
}

impl SyncError {
    /// Usage and configuration errors (exit 2) as opposed to a failed run (exit 1).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            SyncError::Usage(_) | SyncError::Exclude(_) | SyncError::Local { .. }
        )
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            SyncError::Listing(e) | SyncError::Manifest(e) => e.hint(),
            _ => None,
        }
    }
}

/// Makes `dst` equal to `src`; exactly one of them must be remote.
pub async fn sync(
    src: &Location,
    dst: &Location,
    dfs: &DfsClient,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, SyncError> {
    match (src, dst) {
        (Location::Local(src), Location::Remote(dst)) => {
            upload(src, dst, dfs, options, reporter).await
        }
        (Location::Remote(src), Location::Local(dst)) => {
            download(src, dst, dfs, options, reporter).await
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

/// Walks and hashes `root` on a blocking thread.
async fn scan_local(
    root: &Path,
    options: &SyncOptions,
    cache: HashCache,
) -> Result<(Scan, HashCache), SyncError> {
    let (root, excludes, scan_options) =
        (root.to_path_buf(), options.excludes.clone(), options.scan);
    let path = root.clone();
    tokio::task::spawn_blocking(move || {
        let mut cache = cache;
        scan::scan(&root, &excludes, scan_options, &mut cache).map(|s| (s, cache))
    })
    .await
    .map_err(|e| SyncError::Usage(format!("the local scan stopped: {e}")))?
    .map_err(|source| SyncError::Local { path, source })
}

fn report_scan(scan: &Scan, summary: &mut Summary, reporter: &dyn Reporter) {
    summary.hashed_files = scan.hashed_files;
    for w in &scan.warnings {
        reporter.warning(w);
    }
    for (path, why) in &scan.unreadable {
        fail(summary, reporter, path, why);
    }
}

fn fail(summary: &mut Summary, reporter: &dyn Reporter, path: &str, why: &str) {
    reporter.failed(path, why);
    summary.failed += 1;
    summary.failures.push((path.to_string(), why.to_string()));
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

/// What follows a plan: with `--dry-run`, the summary of what would change (and nothing
/// else happens); otherwise the reporter learns the totals and the transfers go ahead.
enum Settled<'a> {
    DryRun(Summary),
    Go {
        summary: Summary,
        /// Paths of the planned transfers, sorted.
        transfer_paths: Vec<&'a str>,
    },
}

fn settle<'a, S: Entry>(
    plan: &Plan,
    source: &'a [S],
    direction: Direction,
    mut summary: Summary,
    started: Instant,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Settled<'a> {
    summary.unchanged = plan.unchanged.len() as u64;
    summary.held = plan.held.clone();
    let transfer_paths: Vec<&str> = plan.transfers.iter().map(|&i| source[i].path()).collect();
    let transfer_bytes: u64 = plan.transfers.iter().map(|&i| source[i].size()).sum();
    if !options.dry_run {
        reporter.planned(
            plan.transfers.len() as u64,
            transfer_bytes,
            plan.delete_count,
        );
        return Settled::Go {
            summary,
            transfer_paths,
        };
    }
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
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Settled::DryRun(summary)
}

async fn upload(
    src: &Path,
    root: &RemoteLocation,
    dfs: &DfsClient,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, SyncError> {
    let started = Instant::now();
    check_root(root)?;
    match std::fs::metadata(src) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(SyncError::Usage(format!(
                "{} is not a directory; SRC must be a directory",
                src.display()
            )));
        }
        Err(source) => {
            return Err(SyncError::Local {
                path: src.to_path_buf(),
                source,
            });
        }
    }
    let mut summary = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let key = std::fs::canonicalize(src).unwrap_or_else(|_| src.to_path_buf());
    let hash_file = cache_file(options, "hashes", &key.to_string_lossy());
    let manifest_file = cache_file(options, "manifest", &root.url());
    let cache = hash_file.map(HashCache::load).unwrap_or_default();

    let listing = async {
        let tree = remote::list_tree(dfs, root)
            .await
            .map_err(|e| SyncError::Listing(Box::new(e)))?;
        let manifest =
            remote::read_manifest(dfs, root, tree.manifest.as_ref(), manifest_file.as_deref())
                .await
                .map_err(|e| SyncError::Manifest(Box::new(e)))?;
        Ok::<_, SyncError>((tree, manifest))
    };
    let (scanned, listed) = tokio::join!(scan_local(src, options, cache), listing);
    let (local, mut cache) = scanned?;
    let (tree, manifest) = listed?;
    report_scan(&local, &mut summary, reporter);
    for name in &tree.hostile {
        reporter.warning(&format!(
            "left alone remote name `{name}`: it cannot be addressed safely"
        ));
    }

    let unreadable: Vec<Box<str>> = local.unreadable.iter().map(|(p, _)| p.clone()).collect();
    let sides = Sides {
        source: &local.files,
        source_unreadable: &unreadable,
        source_complete: local.complete,
        dest: &tree.files,
        dest_dirs: &tree.dirs,
    };
    let known = manifest.cursor();
    let plan = plan::plan(
        &sides,
        options.rails,
        |p, is_dir| options.excludes.covers(p, is_dir),
        |l: &LocalFile, r: &RemoteFile| {
            known.get(&r.path).is_some_and(|m| {
                m.size == r.size
                    && m.etag == r.etag
                    && m.sha256 == l.sha256
                    && l.stat.size == r.size
            })
        },
    );
    let (summary, transfer_paths) = match settle(
        &plan,
        &local.files,
        Direction::Upload,
        summary,
        started,
        options,
        reporter,
    ) {
        Settled::DryRun(summary) => return Ok(summary),
        Settled::Go {
            summary,
            transfer_paths,
        } => (summary, transfer_paths),
    };

    let limiter = Limiter::new(options.concurrency);
    let summary_lock = Mutex::new(summary);
    let (early_files, early_dirs) = conflicts(&plan, &transfer_paths);
    delete_remote(
        dfs,
        root,
        &early_files,
        &early_dirs,
        &limiter,
        &summary_lock,
        reporter,
        &tree,
    )
    .await;

    let mut entries: Vec<ManifestEntry> = plan
        .unchanged
        .iter()
        .filter_map(|&i| manifest.get(&local.files[i].path).cloned())
        .collect();
    let uploads = execute::stream(plan.transfers.iter().copied(), &limiter, dfs.http(), |i| {
        let file = &local.files[i];
        async move {
            let fail = |e: String| (file.path.to_string(), e);
            let loc = root.join(&file.path).map_err(|e| fail(e.to_string()))?;
            let path = src.join(&*file.path);
            let up = dfs
                .upload_file(&loc, &path)
                .await
                .map_err(|e| fail(e.to_string()))?;
            let now = scan::stat(&path).map_err(|e| fail(e.to_string()))?;
            if now != file.stat || up.size != file.stat.size {
                return Err(fail(
                    "changed while it was being uploaded; run sync again".to_string(),
                ));
            }
            Ok(ManifestEntry {
                path: file.path.clone(),
                sha256: file.sha256,
                size: up.size,
                etag: Etag::parse(&up.etag),
            })
        }
    });
    let mut uploads = std::pin::pin!(uploads);
    let mut last_checkpoint = Instant::now();
    let mut unsaved = false;
    while let Some(result) = uploads.next().await {
        {
            let mut summary = summary_lock.lock().unwrap_or_else(|p| p.into_inner());
            match result {
                Ok(entry) => {
                    summary.uploaded += 1;
                    summary.bytes += entry.size;
                    reporter.transferred(&entry.path, entry.size);
                    entries.push(entry);
                    unsaved = true;
                }
                Err((path, e)) => fail(&mut summary, reporter, &path, &e),
            }
        }
        if unsaved && last_checkpoint.elapsed() >= options.checkpoint_interval {
            // Only committed uploads and still-valid entries: safe to vouch for.
            let snapshot = Manifest::new(entries.clone());
            if remote::write_manifest(dfs, root, &snapshot, manifest_file.as_deref())
                .await
                .is_ok()
            {
                unsaved = false;
            }
            last_checkpoint = Instant::now();
        }
    }

    let late_files: Vec<&str> = plan
        .delete_files
        .iter()
        .map(|p| &**p)
        .filter(|p| !early_files.contains(p))
        .collect();
    let late_dirs: Vec<&str> = plan
        .delete_dirs
        .iter()
        .map(|p| &**p)
        .filter(|p| !early_dirs.contains(p))
        .collect();
    delete_remote(
        dfs,
        root,
        &late_files,
        &late_dirs,
        &limiter,
        &summary_lock,
        reporter,
        &tree,
    )
    .await;
    let mut summary = summary_lock.into_inner().unwrap_or_else(|p| p.into_inner());

    let new_manifest = Manifest::new(entries);
    let manifest_stale =
        new_manifest != manifest || (tree.manifest.is_none() && !new_manifest.is_empty());
    if manifest_stale
        && let Err(e) =
            remote::write_manifest(dfs, root, &new_manifest, manifest_file.as_deref()).await
    {
        // The files are in place; only the next run's change detection is weaker.
        fail(
            &mut summary,
            reporter,
            manifest::MANIFEST_NAME,
            &e.to_string(),
        );
    }
    cache.retain(|p| local.files.binary_search_by(|f| (*f.path).cmp(p)).is_ok());
    if let Err(e) = cache.save() {
        reporter.warning(&format!("could not save the hash cache: {e}"));
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn delete_remote(
    dfs: &DfsClient,
    root: &RemoteLocation,
    files: &[&str],
    dirs: &[&str],
    limiter: &Limiter,
    summary: &Mutex<Summary>,
    reporter: &dyn Reporter,
    tree: &RemoteTree,
) {
    let work = dirs
        .iter()
        .map(|d| (*d, true))
        .chain(files.iter().map(|f| (*f, false)));
    let results: Vec<_> =
        execute::stream(work, limiter, dfs.http(), |(path, recursive)| async move {
            let loc = root.join(path).map_err(|e| (path, e.to_string()))?;
            dfs.delete(&loc, recursive)
                .await
                .map(|_| (path, recursive))
                .map_err(|e| (path, e.to_string()))
        })
        .collect()
        .await;
    let mut summary = summary.lock().unwrap_or_else(|p| p.into_inner());
    for r in results {
        match r {
            Ok((path, recursive)) => {
                summary.deleted += if recursive {
                    files_under(&tree.files, path)
                } else {
                    1
                };
                reporter.deleted(path);
            }
            Err((path, e)) => {
                summary.failed += 1;
                summary.failures.push((path.to_string(), e.clone()));
                reporter.failed(path, &e);
            }
        }
    }
}

fn files_under(sorted: &[RemoteFile], dir: &str) -> u64 {
    let prefix = format!("{dir}/");
    let start = sorted.partition_point(|f| *f.path < *prefix);
    sorted[start..]
        .iter()
        .take_while(|f| f.path.starts_with(&prefix))
        .count() as u64
}

async fn download(
    root: &RemoteLocation,
    dst: &Path,
    dfs: &DfsClient,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, SyncError> {
    let started = Instant::now();
    if let Ok(m) = std::fs::metadata(dst)
        && !m.is_dir()
    {
        return Err(SyncError::Usage(format!(
            "{} is not a directory; DST must be a directory",
            dst.display()
        )));
    }
    let mut summary = Summary {
        dry_run: options.dry_run,
        ..Summary::default()
    };
    let mut tree = remote::list_tree(dfs, root)
        .await
        .map_err(|e| SyncError::Listing(Box::new(e)))?;
    for name in &tree.hostile {
        fail(
            &mut summary,
            reporter,
            name,
            "refused: the remote name would land outside DST",
        );
    }
    // Excluded remote paths are not downloaded.
    tree.files
        .retain(|f| !options.excludes.covers(&f.path, false));
    tree.dirs.retain(|d| !options.excludes.covers(d, true));

    let manifest = match remote::read_manifest(
        dfs,
        root,
        tree.manifest.as_ref(),
        cache_file(options, "manifest", &root.url()).as_deref(),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            reporter.warning(&format!("ignoring the remote manifest: {e}"));
            Manifest::default()
        }
    };
    let key = std::fs::canonicalize(dst).unwrap_or_else(|_| dst.to_path_buf());
    let state_file = cache_file(
        options,
        "downloaded",
        &format!("{}\n{}", root.url(), key.display()),
    );
    let state = state_file
        .as_deref()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| Manifest::parse(&b))
        .unwrap_or_default();
    let known = |r: &RemoteFile| -> Option<[u8; 32]> {
        [manifest.get(&r.path), state.get(&r.path)]
            .into_iter()
            .flatten()
            .find(|m| m.size == r.size && m.etag == r.etag)
            .map(|m| m.sha256)
    };
    let hash_file = cache_file(options, "hashes", &key.to_string_lossy());
    let cache = hash_file.map(HashCache::load).unwrap_or_default();
    let (local, mut cache) = scan_local(dst, options, cache).await?;
    report_scan(&local, &mut summary, reporter);

    let unreadable: Vec<Box<str>> = local.unreadable.iter().map(|(p, _)| p.clone()).collect();
    let sides = Sides {
        source: &tree.files,
        source_unreadable: &[],
        source_complete: true,
        dest: &local.files,
        dest_dirs: &local.dirs,
    };
    let plan = plan::plan(
        &sides,
        options.rails,
        |p, is_dir| {
            options.excludes.covers(p, is_dir)
                || unreadable.binary_search_by(|u| (**u).cmp(p)).is_ok()
        },
        |r: &RemoteFile, l: &LocalFile| known(r) == Some(l.sha256) && l.stat.size == r.size,
    );
    let mut summary = match settle(
        &plan,
        &tree.files,
        Direction::Download,
        summary,
        started,
        options,
        reporter,
    ) {
        Settled::DryRun(summary) => return Ok(summary),
        Settled::Go { summary, .. } => summary,
    };
    for partial in &local.partials {
        let _ = std::fs::remove_file(partial);
    }

    // Local deletes first: they are cheap, and a file may stand where a directory must go.
    for dir in &plan.delete_dirs {
        match std::fs::remove_dir_all(dst.join(&**dir)) {
            Ok(()) => {
                summary.deleted += local
                    .files
                    .iter()
                    .filter(|f| plan::is_under(&f.path, dir))
                    .count() as u64;
                reporter.deleted(dir);
            }
            Err(e) => fail(&mut summary, reporter, dir, &e.to_string()),
        }
    }
    for file in &plan.delete_files {
        match std::fs::remove_file(dst.join(&**file)) {
            Ok(()) => {
                summary.deleted += 1;
                reporter.deleted(file);
            }
            Err(e) => fail(&mut summary, reporter, file, &e.to_string()),
        }
    }

    let limiter = Limiter::new(options.concurrency);
    let downloads = execute::stream(plan.transfers.iter().copied(), &limiter, dfs.http(), |i| {
        let file = &tree.files[i];
        async move {
            let fail = |e: String| (file.path.to_string(), e);
            let loc = root.join(&file.path).map_err(|e| fail(e.to_string()))?;
            let target = dst.join(&*file.path);
            let (size, sha256) = execute::download_to(dfs, &loc, &target)
                .await
                .map_err(fail)?;
            let stat = scan::stat(&target).map_err(|e| fail(e.to_string()))?;
            Ok((
                ManifestEntry {
                    path: file.path.clone(),
                    sha256,
                    size,
                    etag: file.etag.clone(),
                },
                stat,
            ))
        }
    });

    let mut entries: Vec<ManifestEntry> = plan
        .unchanged
        .iter()
        .filter_map(|&i| {
            let r = &tree.files[i];
            known(r).map(|sha256| ManifestEntry {
                path: r.path.clone(),
                sha256,
                size: r.size,
                etag: r.etag.clone(),
            })
        })
        .collect();
    let mut downloads = std::pin::pin!(downloads);
    let now = scan::now_ns();
    while let Some(result) = downloads.next().await {
        match result {
            Ok((entry, stat)) => {
                summary.downloaded += 1;
                summary.bytes += entry.size;
                reporter.transferred(&entry.path, entry.size);
                cache.insert(&entry.path, stat, entry.sha256, now);
                entries.push(entry);
            }
            Err((path, e)) => fail(&mut summary, reporter, &path, &e),
        }
    }
    if let Some(file) = &state_file {
        let bytes = Manifest::new(entries).to_bytes();
        let write = std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))
            .and_then(|_| std::fs::write(file, bytes));
        if let Err(e) = write {
            reporter.warning(&format!("could not save the download state: {e}"));
        }
    }
    if let Err(e) = cache.save() {
        reporter.warning(&format!("could not save the hash cache: {e}"));
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}
