//! Local → remote: scan SRC while listing the remote root, plan, take the root's lock,
//! then delete what is in the way, upload, delete the rest, and write the manifest.
//!
//! A remote root that does not exist yet is fine (the first upload creates it), but its
//! workspace, item and `Files`/`Tables` folder must exist: otherwise the sync stops with one
//! sentence before sending anything. A no-op sync sends only its one listing. A sync with
//! work takes the root's [`lock`](super::lock) first; if someone else held it since the
//! listing, it lists again and plans again. Before the first write it checks that SRC is not
//! the remote's own storage (the lock record it just wrote must not show up in SRC). Each
//! committed upload is journaled locally at once, so a killed run loses at most the files
//! in flight. A transfer error that makes the whole root unusable (401, 403, 404) stops the
//! remaining transfers instead of repeating itself per file.
//!
//! Deletes: over DFS a directory goes with one recursive request; over Blob (no such
//! request) it goes blob by blob — exactly the files the listing showed below it, in Blob
//! Batches where the service has them, then its folder markers deepest first — so nothing
//! that was not listed under that directory is ever named in a delete.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::StreamExt;

use super::execute::{self, Limiter};
use super::hashcache::HashCache;
use super::journal::Journal;
use super::lock::{self, RemoteLock};
use super::manifest::{self, Etag, LOCK_NAME, Manifest, ManifestEntry};
use super::plan::{self, Plan, RemoteFile, Sides};
use super::remote::{self, RemoteTree};
use super::scan::{self, LocalFile, Scan};
use super::tally::{Reason, Tally};
use super::transport::{Apis, RemoteError, Transport};
use super::{
    Direction, Reporter, Summary, SyncError, SyncOptions, cache_file, check_root, conflicts,
    report_scan, scan_local, settle,
};
use crate::location::RemoteLocation;

/// What we know of the remote content: the manifest, and the journal of a run that did
/// not get to write one.
struct Known {
    manifest: Manifest,
    journal: Manifest,
}

impl Known {
    /// The entry (journal first, it is newer) that vouches for what the listing shows.
    fn vouch(&self, r: &RemoteFile) -> Option<&ManifestEntry> {
        [self.journal.get(&r.path), self.manifest.get(&r.path)]
            .into_iter()
            .flatten()
            .find(|m| m.same_content_as(r))
    }
}

pub(super) async fn upload(
    src: &Path,
    root: &RemoteLocation,
    remote: &Transport,
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
    let tally = Tally::new(
        Summary {
            dry_run: options.dry_run,
            ..Summary::default()
        },
        reporter,
    );
    let key = std::fs::canonicalize(src).unwrap_or_else(|_| src.to_path_buf());
    let hash_file = cache_file(options, "hashes", &key.to_string_lossy());
    let manifest_file = cache_file(options, "manifest", &root.url());
    let journal_file = cache_file(options, "journal", &root.url());
    let cache = hash_file.map(HashCache::load).unwrap_or_default();
    let journal = latest_per_path(Journal::load(journal_file.as_deref()));
    if !journal.is_empty() {
        tracing::debug!(
            "resuming: {} upload(s) journaled by an earlier run that did not finish",
            journal.len()
        );
    }

    let (scanned, listed) = tokio::join!(
        scan_local("SRC", src, &options.excludes, options, cache),
        list_with_manifest(remote, root, manifest_file.as_deref())
    );
    let (local, mut cache) = scanned?;
    let (mut tree, manifest) = listed?;
    report_scan(&local, &tally);
    for name in tree.hostile.iter().chain(&tree.skipped) {
        tally.warning(&format!(
            "left alone remote name `{name}`: it cannot be addressed safely"
        ));
    }
    let mut known = Known { manifest, journal };

    // Plan; with work to do, take the lock, and plan again if someone wrote meanwhile.
    let mut held: Option<RemoteLock> = None;
    let (plan, base) = loop {
        let plan = plan_upload(&local, &tree, &known, options);
        let base = base_entries(&plan, &local, &tree, &known);
        let noop = is_noop(&plan, &base, &known, &tree);
        tracing::debug!(
            "plan: {} upload(s), {} delete(s), {} unchanged",
            plan.transfers.len(),
            plan.delete_count,
            plan.unchanged.len()
        );
        if noop {
            // (Also after waiting for another sync that did the same work.)
            release(held.take()).await;
            break (plan, base);
        }
        if options.dry_run || held.is_some() {
            break (plan, base);
        }
        if tree.missing_container {
            remote
                .create_container(root)
                .await
                .map_err(|e| SyncError::Remote(Box::new(e)))?;
            tree.missing_container = false;
        }
        let taken = lock::acquire(
            remote,
            root,
            tree.lock.as_ref(),
            options.lock_wait,
            options.cache_dir.as_deref(),
            reporter,
        )
        .await?;
        let stale = taken.changed_since(tree.lock.as_ref());
        held = Some(taken);
        if stale {
            tracing::debug!("another sync wrote to {root} since the listing: listing again");
            match list_with_manifest(remote, root, manifest_file.as_deref()).await {
                Ok((t, m)) => {
                    tree = t;
                    known.manifest = m;
                }
                Err(e) => {
                    release(held).await;
                    return Err(e);
                }
            }
        }
    };
    let Some(transfer_paths) = settle(&plan, &local.files, Direction::Upload, &tally, options)
    else {
        return Ok(tally.finish(started));
    };
    let Some(mut lock) = held else {
        // Nothing to write: the one listing was all.
        finish_cache(&mut cache, &local, &tally);
        return Ok(tally.finish(started));
    };

    let run = Run {
        src,
        root,
        remote,
        options,
        tally: &tally,
        local: &local,
        tree: &tree,
        plan: &plan,
        transfer_paths: &transfer_paths,
        manifest_file: manifest_file.as_deref(),
        journal_file: journal_file.as_deref(),
    };
    let result = run.go(&mut lock, base, &known).await;
    lock.release().await;
    result?;
    finish_cache(&mut cache, &local, &tally);
    Ok(tally.finish(started))
}

/// Everything the writing half of an upload needs.
struct Run<'a> {
    src: &'a Path,
    root: &'a RemoteLocation,
    remote: &'a Transport,
    options: &'a SyncOptions,
    tally: &'a Tally<'a>,
    local: &'a Scan,
    tree: &'a RemoteTree,
    plan: &'a Plan,
    transfer_paths: &'a [&'a str],
    manifest_file: Option<&'a Path>,
    journal_file: Option<&'a Path>,
}

impl Run<'_> {
    /// Under the lock: the same-storage check, then deletes, uploads and the manifest.
    async fn go(
        &self,
        lock: &mut RemoteLock,
        mut entries: Vec<ManifestEntry>,
        known: &Known,
    ) -> Result<(), SyncError> {
        let (remote, root, tally) = (self.remote, self.root, self.tally);
        let size = self.tree.lock.as_ref().map_or(0, |l| l.0);
        lock.write_record(size)
            .await
            .map_err(|e| SyncError::Lock(Box::new(e)))?;
        if is_same_storage(self.src, lock.nonce()) {
            return Err(SyncError::SameStorage {
                local: self.src.to_path_buf(),
                remote: root.to_string(),
            });
        }
        let mut journal = Journal::open(self.journal_file).unwrap_or_else(|e| {
            tally.warning(&format!(
                "cannot write the upload journal ({e}); a killed run would send its files again"
            ));
            Journal::default()
        });

        let limiter = Limiter::new(self.options.concurrency);
        let (early_files, early_dirs) = conflicts(self.plan, self.transfer_paths);
        self.delete_remote(&early_files, &early_dirs, &limiter)
            .await;

        // The first error that makes the whole root unusable (or the loss of the lock)
        // stops the transfers not yet begun.
        let stop = AtomicBool::new(false);
        let lost = lock.lost_flag();
        let fatal: Mutex<Option<RemoteError>> = Mutex::new(None);
        let uploads = self.transfers(&limiter, &stop, &lost, &fatal);
        let mut uploads = Box::pin(uploads);
        let mut manifest_etag = self.tree.manifest.as_ref().map(|m| m.1.clone());
        let mut last_checkpoint = Instant::now();
        let mut unsaved = false;
        let mut journal_failed = false;
        while let Some(result) = uploads.next().await {
            match result {
                Ok(entry) => {
                    if let Err(e) = journal.record(&entry)
                        && !std::mem::replace(&mut journal_failed, true)
                    {
                        tally.warning(&format!("cannot write the upload journal: {e}"));
                    }
                    tally.transferred(Direction::Upload, &entry.path, entry.size);
                    entries.push(entry);
                    unsaved = true;
                }
                Err(Some((path, reason))) => tally.failed(path, reason),
                Err(None) => {}
            }
            if unsaved
                && last_checkpoint.elapsed() >= self.options.checkpoint_interval
                && lock.check().is_ok()
            {
                // Only committed uploads and still-valid entries: safe to vouch for.
                let snapshot = Manifest::new(entries.clone());
                if let Ok(etag) = remote::write_manifest(
                    remote,
                    root,
                    &snapshot,
                    manifest_etag.as_ref(),
                    self.manifest_file,
                )
                .await
                {
                    manifest_etag = Some(etag);
                    unsaved = false;
                    let _ = journal.reset();
                }
                last_checkpoint = Instant::now();
            }
        }
        drop(uploads);
        if let Some(e) = fatal.into_inner().unwrap_or_else(|p| p.into_inner()) {
            // Nothing more can be written there; what did land is in the journal.
            let e = if e.status() == Some(404) && remote.apis() != Apis::Blob {
                remote.explain_missing(root).await
            } else {
                e
            };
            return Err(SyncError::Remote(Box::new(e)));
        }
        lock.check()?;

        let late_files: Vec<&str> = self
            .plan
            .delete_files
            .iter()
            .map(|p| &**p)
            .filter(|p| !early_files.contains(p))
            .collect();
        let late_dirs: Vec<&str> = self
            .plan
            .delete_dirs
            .iter()
            .map(|p| &**p)
            .filter(|p| !early_dirs.contains(p))
            .collect();
        self.delete_remote(&late_files, &late_dirs, &limiter).await;

        let new_manifest = Manifest::new(entries);
        let stale = new_manifest != known.manifest
            || manifest_etag.is_none() && !new_manifest.is_empty()
            || !known.journal.is_empty();
        if stale {
            lock.check()?;
            match remote::write_manifest(
                remote,
                root,
                &new_manifest,
                manifest_etag.as_ref(),
                self.manifest_file,
            )
            .await
            {
                Ok(_) => {
                    let _ = journal.reset();
                }
                // The files are in place (and journaled); only the next run's change
                // detection is weaker.
                Err(e) => tally.failed(manifest::MANIFEST_NAME, Reason::Manifest(Arc::new(e))),
            }
        }
        Ok(())
    }

    /// The planned uploads as a stream of results: `Ok(entry)` committed, `Err(Some(..))` a
    /// failed file, `Err(None)` skipped because the run is stopping.
    fn transfers<'s>(
        &'s self,
        limiter: &'s Limiter,
        stop: &'s AtomicBool,
        lost: &'s Arc<AtomicBool>,
        fatal: &'s Mutex<Option<RemoteError>>,
    ) -> impl futures::Stream<Item = Result<ManifestEntry, Option<(String, Reason)>>> + 's {
        let (remote, root, src) = (self.remote, self.root, self.src);
        execute::stream(
            self.plan.transfers.iter().copied(),
            limiter,
            remote.http(),
            move |i| {
                let file = &self.local.files[i];
                async move {
                    if stop.load(Ordering::Relaxed) || lost.load(Ordering::Relaxed) {
                        return Err(None);
                    }
                    let fail = |r: Reason| Some((file.path.to_string(), r));
                    let loc = root
                        .join(&file.path)
                        .map_err(|e| fail(Reason::Local(e.to_string())))?;
                    let path = src.join(&*file.path);
                    let up = match remote.upload_file(&loc, &path, file.stat.size).await {
                        Ok(up) => up,
                        Err(e) if e.is_fatal_for_root() => {
                            if !stop.swap(true, Ordering::Relaxed) {
                                *fatal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                            }
                            return Err(None);
                        }
                        Err(e) => return Err(fail(e.into())),
                    };
                    let now =
                        scan::stat(&path).map_err(|e| fail(Reason::Unreadable(e.to_string())))?;
                    if now != file.stat || up.size != file.stat.size {
                        return Err(fail(Reason::Changed));
                    }
                    Ok(ManifestEntry {
                        path: file.path.clone(),
                        sha256: file.sha256,
                        size: up.size,
                        etag: Etag::parse(&up.etag),
                        md5: up.md5,
                    })
                }
            },
        )
    }

    /// Deletes `files` and the directories `dirs` (with what the listing showed below them).
    async fn delete_remote(&self, files: &[&str], dirs: &[&str], limiter: &Limiter) {
        if files.is_empty() && dirs.is_empty() {
            return;
        }
        let (remote, root, tally) = (self.remote, self.root, self.tally);
        if remote.deletes_directories() {
            let work = dirs
                .iter()
                .map(|d| (*d, true))
                .chain(files.iter().map(|f| (*f, false)));
            let results: Vec<_> = execute::stream(
                work,
                limiter,
                remote.http(),
                |(path, recursive)| async move {
                    let loc = root
                        .join(path)
                        .map_err(|e| (path, Reason::Local(e.to_string())))?;
                    remote
                        .delete(&loc, recursive)
                        .await
                        .map(|_| (path, recursive))
                        .map_err(|e| (path, Reason::from(e)))
                },
            )
            .collect()
            .await;
            for r in results {
                match r {
                    Ok((path, true)) => tally.deleted(path, files_under(&self.tree.files, path)),
                    Ok((path, false)) => tally.deleted(path, 1),
                    Err((path, e)) => tally.failed(path, e),
                }
            }
            return;
        }
        // Blob: each file the listing showed (below the directories too), batched.
        let mut names: Vec<&str> = files.to_vec();
        for dir in dirs {
            names.extend(
                under(&self.tree.files, dir, |f| &f.path)
                    .iter()
                    .map(|f| &*f.path),
            );
        }
        let mut locs = Vec::with_capacity(names.len());
        let mut named = Vec::with_capacity(names.len());
        for name in names {
            match root.join(name) {
                Ok(loc) => {
                    locs.push(loc);
                    named.push(name);
                }
                Err(e) => tally.failed(name, Reason::Local(e.to_string())),
            }
        }
        let results = remote.delete_many(&locs).await;
        let mut failed: Vec<&str> = Vec::new();
        for (name, r) in named.into_iter().zip(results) {
            match r {
                Ok(_) => tally.deleted(name, 1),
                Err(e) => {
                    failed.push(name);
                    tally.failed(name, e.into());
                }
            }
        }
        // Then the folder blobs of a hierarchical namespace, deepest first, where every
        // file below went.
        let mut markers: Vec<&str> = Vec::new();
        for dir in dirs {
            if failed.iter().any(|f| plan::is_under(f, dir)) {
                continue;
            }
            markers.extend(under(&self.tree.markers, dir, |m| m).iter().map(|m| &**m));
            if self
                .tree
                .markers
                .binary_search_by(|m| (**m).cmp(dir))
                .is_ok()
            {
                markers.push(dir);
            }
        }
        markers.sort_unstable_by_key(|m| std::cmp::Reverse(m.matches('/').count()));
        for marker in markers {
            let result = match root.join(marker) {
                Ok(loc) => remote.delete(&loc, false).await.map_err(Reason::from),
                Err(e) => Err(Reason::Local(e.to_string())),
            };
            if let Err(e) = result {
                tally.failed(marker, e);
            }
        }
    }
}

/// The listing and the manifest it points to.
async fn list_with_manifest(
    t: &Transport,
    root: &RemoteLocation,
    manifest_file: Option<&Path>,
) -> Result<(RemoteTree, Manifest), SyncError> {
    let tree = list_root(t, root).await?;
    let manifest = remote::read_manifest(t, root, tree.manifest.as_ref(), manifest_file)
        .await
        .map_err(|e| SyncError::Manifest(Box::new(e)))?;
    Ok((tree, manifest))
}

/// The remote tree below `root`. A root that does not exist yet is an empty tree when the
/// upload can create it (its item and `Files` folder exist, or it is in a Blob account's
/// container, existing or not); otherwise the error names what is missing.
async fn list_root(t: &Transport, root: &RemoteLocation) -> Result<RemoteTree, SyncError> {
    match remote::list_tree(t, root).await {
        // A Blob listing shows a missing folder as empty: check what it is in.
        Ok(tree) if tree.is_empty() && !t.lists_missing_as_error() => {
            match t.creatable(root).await {
                Ok(()) => Ok(tree),
                Err(e) => Err(SyncError::Remote(Box::new(e))),
            }
        }
        Ok(tree) => Ok(tree),
        Err(e) if e.is_missing_path() => match t.creatable(root).await {
            Ok(()) => Ok(RemoteTree::default()),
            Err(e) => Err(SyncError::Remote(Box::new(e))),
        },
        Err(e) if e.is_missing() => Err(SyncError::Remote(Box::new(e))),
        // A Blob account's container that does not exist yet: created before the first write
        // (a dry run only says what it would upload).
        Err(e) if t.may_create_container(root, &e) => Ok(RemoteTree {
            missing_container: true,
            ..RemoteTree::default()
        }),
        // A container that does not exist: nothing to list, nothing that can be written.
        Err(e) if e.status() == Some(404) => Err(SyncError::Remote(Box::new(
            t.explain_listing_error(root, e).await,
        ))),
        Err(e) => Err(SyncError::Listing(Box::new(e))),
    }
}

fn plan_upload(local: &Scan, tree: &RemoteTree, known: &Known, options: &SyncOptions) -> Plan {
    let unreadable: Vec<Box<str>> = local.unreadable.iter().map(|(p, _)| p.clone()).collect();
    let sides = Sides {
        source: &local.files,
        source_unreadable: &unreadable,
        source_complete: local.complete,
        dest: &tree.files,
        dest_dirs: &tree.dirs,
    };
    plan::plan(
        &sides,
        options.rails,
        |p, is_dir| options.excludes.covers(p, is_dir),
        |l: &LocalFile, r: &RemoteFile| {
            known
                .vouch(r)
                .is_some_and(|m| m.sha256 == l.sha256 && l.stat.size == r.size)
        },
    )
}

/// The manifest entries of the unchanged files, refreshed with what the listing shows now
/// (a file rewritten with the same bytes has a new ETag but the same content MD5).
fn base_entries(plan: &Plan, local: &Scan, tree: &RemoteTree, known: &Known) -> Vec<ManifestEntry> {
    plan.unchanged
        .iter()
        .filter_map(|&i| {
            let path = &local.files[i].path;
            let at = tree.files.binary_search_by(|f| f.path.cmp(path)).ok()?;
            let listed = &tree.files[at];
            let mut entry = known.vouch(listed)?.clone();
            entry.etag = listed.etag.clone();
            entry.md5 = listed.md5.or(entry.md5);
            Some(entry)
        })
        .collect()
}

/// Nothing to send, delete or record: the manifest already says all there is to say.
fn is_noop(plan: &Plan, base: &[ManifestEntry], known: &Known, tree: &RemoteTree) -> bool {
    plan.is_noop()
        && known.manifest.entries() == base
        && (tree.manifest.is_some() || base.is_empty())
}

/// The last journal entry of each path (a path journaled by two killed runs).
fn latest_per_path(entries: Vec<ManifestEntry>) -> Manifest {
    let mut by_path: BTreeMap<Box<str>, ManifestEntry> = BTreeMap::new();
    for e in entries {
        by_path.insert(e.path.clone(), e);
    }
    Manifest::new(by_path.into_values().collect())
}

/// Whether SRC is the remote's own storage: the lock record this run just wrote remotely
/// is then in SRC's lock file too.
fn is_same_storage(src: &Path, nonce: &str) -> bool {
    std::fs::read_to_string(src.join(LOCK_NAME)).is_ok_and(|text| text.contains(nonce))
}

async fn release(lock: Option<RemoteLock>) {
    if let Some(lock) = lock {
        lock.release().await;
    }
}

fn finish_cache(cache: &mut HashCache, local: &Scan, tally: &Tally<'_>) {
    cache.retain(|p| local.files.binary_search_by(|f| (*f.path).cmp(p)).is_ok());
    if let Err(e) = cache.save() {
        tally.warning(&format!("could not save the hash cache: {e}"));
    }
}

fn files_under(sorted: &[RemoteFile], dir: &str) -> u64 {
    under(sorted, dir, |f| &f.path).len() as u64
}

/// The run of `sorted` strictly below `dir` (`dir/…`, never `dir-x` or `dirx`).
fn under<'a, T>(sorted: &'a [T], dir: &str, path: impl Fn(&T) -> &str) -> &'a [T] {
    let prefix = format!("{dir}/");
    let start = sorted.partition_point(|f| path(f) < prefix.as_str());
    let len = sorted[start..]
        .iter()
        .take_while(|f| path(f).starts_with(&prefix))
        .count();
    &sorted[start..start + len]
}
