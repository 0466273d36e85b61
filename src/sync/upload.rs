//! Local → remote: scan SRC while listing the remote root, plan, then delete what is in the
//! way, upload, delete the rest, and write the manifest.
//!
//! A remote root that does not exist yet is fine (the first upload creates it), but its
//! workspace, item and `Files`/`Tables` folder must exist: otherwise the sync stops with one
//! sentence before sending anything. A transfer error that means the whole root is unusable
//! (401, 403, 404) stops the remaining transfers instead of repeating itself per file.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures::StreamExt;

use super::execute::{self, Limiter};
use super::hashcache::HashCache;
use super::manifest::{self, Etag, Manifest, ManifestEntry};
use super::plan::{self, RemoteFile, Sides};
use super::remote::{self, RemoteTree};
use super::scan::{self, LocalFile};
use super::{
    Direction, Reporter, Settled, Summary, SyncError, SyncOptions, cache_file, check_root,
    conflicts, fail, report_scan, scan_local, settle,
};
use crate::dfs::{DfsClient, DfsError};
use crate::diagnostic::one_line;
use crate::location::RemoteLocation;

pub(super) async fn upload(
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
                "SRC `{}` is not a directory; sync mirrors a directory (put the file in one)",
                src.display()
            )));
        }
        Err(source) => return Err(SyncError::local("SRC", src, source)),
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
        let tree = list_root(dfs, root).await?;
        let manifest =
            remote::read_manifest(dfs, root, tree.manifest.as_ref(), manifest_file.as_deref())
                .await
                .map_err(|e| SyncError::Manifest(Box::new(e)))?;
        Ok::<_, SyncError>((tree, manifest))
    };
    let (scanned, listed) = tokio::join!(
        scan_local("SRC", src, &options.excludes, options, cache),
        listing
    );
    let (local, mut cache) = scanned?;
    let (tree, manifest) = listed?;
    report_scan(&local, &mut summary, reporter);
    for name in tree.hostile.iter().chain(&tree.skipped) {
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
                m.same_content_as(r) && m.sha256 == l.sha256 && l.stat.size == r.size
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

    // Unchanged files keep their entry, refreshed with what the listing shows now (a file
    // rewritten with the same bytes has a new ETag but the same content MD5).
    let mut entries: Vec<ManifestEntry> = plan
        .unchanged
        .iter()
        .filter_map(|&i| {
            let path = &local.files[i].path;
            let mut entry = manifest.get(path)?.clone();
            if let Ok(at) = tree.files.binary_search_by(|f| f.path.cmp(path)) {
                entry.etag = tree.files[at].etag.clone();
                entry.md5 = tree.files[at].md5.or(entry.md5);
            }
            Some(entry)
        })
        .collect();
    // The first error that makes the whole root unusable stops the transfers not yet begun.
    let stop = AtomicBool::new(false);
    let fatal: Mutex<Option<DfsError>> = Mutex::new(None);
    let uploads = execute::stream(plan.transfers.iter().copied(), &limiter, dfs.http(), |i| {
        let file = &local.files[i];
        let (stop, fatal) = (&stop, &fatal);
        async move {
            if stop.load(Ordering::Relaxed) {
                return Err(None);
            }
            let fail = |e: String| Some((file.path.to_string(), e));
            let loc = root.join(&file.path).map_err(|e| fail(e.to_string()))?;
            let path = src.join(&*file.path);
            let up = match dfs.upload_file(&loc, &path).await {
                Ok(up) => up,
                Err(e) if e.is_fatal_for_root() => {
                    if !stop.swap(true, Ordering::Relaxed) {
                        *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                    }
                    return Err(None);
                }
                Err(e) => return Err(fail(one_line(&e))),
            };
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
                md5: None,
            })
        }
    });
    let mut uploads = Box::pin(uploads);
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
                Err(Some((path, e))) => fail(&mut summary, reporter, &path, &e),
                Err(None) => {}
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
    drop(uploads);
    if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
        // Nothing more can be written there; what did land is recorded by the next run.
        let e = match e {
            DfsError::Http { ref source, .. } if source.status() == Some(404) => {
                dfs.explain_missing(root).await
            }
            other => other,
        };
        return Err(SyncError::Remote(Box::new(e)));
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
            &one_line(&e),
        );
    }
    cache.retain(|p| local.files.binary_search_by(|f| (*f.path).cmp(p)).is_ok());
    if let Err(e) = cache.save() {
        reporter.warning(&format!("could not save the hash cache: {e}"));
    }
    summary.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(summary)
}

/// The remote tree below `root`. A root that does not exist yet is an empty tree when the
/// upload can create it (its item and `Files` folder exist); otherwise the error names
/// what is missing.
async fn list_root(dfs: &DfsClient, root: &RemoteLocation) -> Result<RemoteTree, SyncError> {
    match remote::list_tree(dfs, root).await {
        Ok(tree) => Ok(tree),
        Err(DfsError::NotFound(crate::dfs::Missing::Path(_))) => {
            match remote::creatable(dfs, root).await {
                Ok(()) => Ok(RemoteTree::default()),
                Err(e) => Err(SyncError::Remote(Box::new(e))),
            }
        }
        Err(e @ DfsError::NotFound(_)) => Err(SyncError::Remote(Box::new(e))),
        Err(e) => Err(SyncError::Listing(Box::new(e))),
    }
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
                .map_err(|e| (path, one_line(&e)))
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
            Err((path, e)) => fail(&mut summary, reporter, path, &e),
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
