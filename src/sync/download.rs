//! Remote → local: list the remote root, scan DST, plan, then delete local extras, and
//! download through temporary files renamed into place.
//!
//! A remote root that does not exist is an error naming what is missing (the workspace, the
//! item, the folder), never an empty source: an empty source would delete all of DST. A Blob
//! listing shows a missing folder as empty, so an empty Blob listing is checked over DFS
//! where there is one, and refused where there is not. Local
//! deletes go file by file and remove only directories left empty, so a file the scan did
//! not look at (excluded, `test.env`, skipped) is never removed with its directory.

use std::path::Path;
use std::time::Instant;

use futures::StreamExt;

use super::execute::{self, Limiter};
use super::hashcache::HashCache;
use super::manifest::{MANIFEST_NAME, Manifest, ManifestEntry};
use super::plan::{self, RemoteFile, Sides};
use super::remote;
use super::scan::{self, LocalFile, Scan};
use super::tally::{Reason, Tally};
use super::transport::Transport;
use super::{
    Direction, Reporter, Summary, SyncError, SyncOptions, cache_file, report_scan, scan_local,
    settle,
};
use crate::diagnostic::one_line;
use crate::location::RemoteLocation;
use crate::sync::exclude::Excludes;

pub(super) async fn download(
    root: &RemoteLocation,
    dst: &Path,
    remote: &Transport,
    options: &SyncOptions,
    reporter: &dyn Reporter,
) -> Result<Summary, SyncError> {
    let started = Instant::now();
    if let Ok(m) = std::fs::metadata(dst)
        && !m.is_dir()
    {
        return Err(SyncError::Usage(format!(
            "DST `{}` is not a directory; sync downloads into a directory",
            dst.display()
        )));
    }
    let tally = Tally::new(
        Summary {
            dry_run: options.dry_run,
            ..Summary::default()
        },
        reporter,
    );
    let mut tree = match remote::list_tree(remote, root).await {
        Ok(tree) => tree,
        Err(e) if e.is_missing() => {
            return Err(SyncError::Remote(Box::new(
                remote.explain_missing(root).await,
            )));
        }
        Err(e) if e.status() == Some(404) => {
            return Err(SyncError::Remote(Box::new(
                remote.explain_listing_error(root, e).await,
            )));
        }
        Err(e) => return Err(SyncError::Listing(Box::new(e))),
    };
    if tree.is_empty()
        && !remote.lists_missing_as_error()
        && let Some(e) = remote.explain_empty(root).await
    {
        // Nothing listed, and nothing shows the folder exists: never an empty source.
        return Err(SyncError::Remote(Box::new(e)));
    }
    for name in &tree.hostile {
        tally.failed(name.clone(), Reason::Outside);
    }
    for name in &tree.skipped {
        tally.warning(&format!(
            "skipped remote `{name}`: names with a backslash cannot be synced safely"
        ));
    }
    // Excluded remote paths are not downloaded.
    tree.files
        .retain(|f| !options.excludes.covers(&f.path, false));
    tree.dirs.retain(|d| !options.excludes.covers(d, true));

    let manifest_file = cache_file(options, "manifest", &root.url());
    let manifest = match remote::read_manifest(
        remote,
        root,
        tree.manifest.as_ref(),
        manifest_file.as_deref(),
    )
    .await
    {
        Ok(m) => m,
        Err(e) => {
            tally.warning(&format!("ignoring the remote manifest: {}", one_line(&e)));
            Manifest::default()
        }
    };
    if is_same_storage(dst, &manifest) {
        return Err(SyncError::SameStorage {
            local: dst.to_path_buf(),
            remote: root.to_string(),
        });
    }
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
            .find(|m| m.same_content_as(r))
            .map(|m| m.sha256)
    };
    let hash_file = cache_file(options, "hashes", &key.to_string_lossy());
    let cache = hash_file.map(HashCache::load).unwrap_or_default();
    // With --delete-excluded the walk visits excluded paths too (so they can be deleted);
    // the built-in excludes (`test.env`) are never walked, so never deleted.
    let walk_excludes = if options.rails.delete_excluded {
        Excludes::none()
    } else {
        options.excludes.clone()
    };
    let (local, mut cache) = scan_local("DST", dst, &walk_excludes, options, cache).await?;
    report_scan(&local, &tally);

    let unreadable: Vec<Box<str>> = local.unreadable.iter().map(|(p, _)| p.clone()).collect();
    let sides = Sides {
        source: &tree.files,
        source_unreadable: &[],
        // An incomplete view of DST makes its deletes unsafe just the same.
        source_complete: local.complete,
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
    if settle(&plan, &tree.files, Direction::Download, &tally, options).is_none() {
        return Ok(tally.finish(started));
    }
    for partial in &local.partials {
        let _ = std::fs::remove_file(partial);
    }

    // Local deletes first: they are cheap, and a file may stand where a directory must go.
    delete_local(dst, &plan, &local, &tally);

    let limiter = Limiter::new(options.concurrency);
    let downloads = execute::stream(
        plan.transfers.iter().copied(),
        &limiter,
        remote.http(),
        |i| {
            let file = &tree.files[i];
            async move {
                let fail = |e: Reason| (file.path.to_string(), e);
                let loc = root
                    .join(&file.path)
                    .map_err(|e| fail(Reason::Local(e.to_string())))?;
                let target = dst.join(&*file.path);
                let (size, sha256) = execute::download_to(remote, &loc, &target)
                    .await
                    .map_err(fail)?;
                let stat = scan::stat(&target).map_err(|e| fail(Reason::Local(e.to_string())))?;
                Ok((
                    ManifestEntry {
                        path: file.path.clone(),
                        sha256,
                        size,
                        etag: file.etag.clone(),
                        md5: file.md5,
                    },
                    stat,
                ))
            }
        },
    );

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
                md5: r.md5,
            })
        })
        .collect();
    let mut downloads = std::pin::pin!(downloads);
    let now = scan::now_ns();
    while let Some(result) = downloads.next().await {
        match result {
            Ok((entry, stat)) => {
                tally.transferred(Direction::Download, &entry.path, entry.size);
                cache.insert(&entry.path, stat, entry.sha256, now);
                entries.push(entry);
            }
            Err((path, e)) => tally.failed(path, e),
        }
    }
    if let Some(file) = &state_file {
        let bytes = Manifest::new(entries).to_bytes();
        let write = std::fs::create_dir_all(file.parent().unwrap_or(Path::new(".")))
            .and_then(|_| std::fs::write(file, bytes));
        if let Err(e) = write {
            tally.warning(&format!("could not save the download state: {e}"));
        }
    }
    if let Err(e) = cache.save() {
        tally.warning(&format!("could not save the hash cache: {e}"));
    }
    Ok(tally.finish(started))
}

/// Carries out the plan's local deletes: each file on its own (those below a planned
/// directory removal included), then the directories, deepest first, only if empty — a
/// directory still holding something the scan left alone stays, with that something.
fn delete_local(dst: &Path, plan: &plan::Plan, local: &Scan, tally: &Tally<'_>) {
    let mut files: Vec<&str> = plan.delete_files.iter().map(|p| &**p).collect();
    let mut dirs: Vec<&str> = Vec::new();
    for dir in &plan.delete_dirs {
        files.extend(
            local
                .files
                .iter()
                .map(|f| &*f.path)
                .filter(|p| plan::is_under(p, dir)),
        );
        dirs.push(dir);
        dirs.extend(
            local
                .dirs
                .iter()
                .map(|d| &**d)
                .filter(|d| plan::is_under(d, dir)),
        );
    }
    for file in files {
        match std::fs::remove_file(dst.join(file)) {
            Ok(()) => tally.deleted(file, 1),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tally.failed(file, Reason::Local(format!("cannot delete: {e}"))),
        }
    }
    // Deepest first, so that a parent is tried after its children.
    dirs.sort_unstable_by_key(|d| std::cmp::Reverse(d.matches('/').count()));
    for dir in dirs {
        // Only an empty directory goes; anything still inside keeps it.
        let _ = std::fs::remove_dir(dst.join(dir));
    }
}

/// Whether DST is the remote's own storage (the emulator's data directory, a lakehouse
/// mount): its root then holds the very manifest the listing shows.
pub(super) fn is_same_storage(dst: &Path, remote_manifest: &Manifest) -> bool {
    if remote_manifest.is_empty() {
        return false;
    }
    std::fs::read(dst.join(MANIFEST_NAME))
        .ok()
        .and_then(|b| Manifest::parse(&b))
        .is_some_and(|local| &local == remote_manifest)
}
