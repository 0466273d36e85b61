//! The remote side of a sync: one recursive listing turned into a sorted [`RemoteTree`], and
//! the manifest read (skipped when the local copy has the listed ETag) and written.
//!
//! A Blob listing of a flat namespace (a plain storage account, Azurite) has no directory
//! entries; the tree's directories are then the ancestors of its files, so the plan decides
//! the same whole-directory removals on either API.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;

use super::manifest::{Etag, LOCK_NAME, MANIFEST_NAME, Manifest};
use super::plan::RemoteFile;
use super::transport::{Conditions, RemoteError, Transport};
use crate::location::RemoteLocation;

/// What one listing found below the sync root.
#[derive(Debug, Default)]
pub struct RemoteTree {
    /// Sorted by path (relative to the root).
    pub files: Vec<RemoteFile>,
    /// Sorted: the directories listed, and (for a Blob listing) every ancestor of a file.
    pub dirs: Vec<Box<str>>,
    /// Sorted: the directories the listing showed as entries of their own (DFS paths, or
    /// folder blobs of a hierarchical namespace seen through the Blob API). Deleting a
    /// directory blob by blob ends with these, deepest first.
    pub markers: Vec<Box<str>>,
    /// The manifest file's identity, when it exists.
    pub manifest: Option<(u64, Etag)>,
    /// The lock file's identity, when it exists.
    pub lock: Option<(u64, Etag)>,
    /// Names that cannot be mapped to a safe relative path (`..`, `.`, empty segments).
    pub hostile: Vec<String>,
    /// Names left alone because they cannot round-trip (a backslash): never transferred,
    /// never deleted.
    pub skipped: Vec<String>,
    /// The root's Blob container does not exist yet: an upload creates it before its first
    /// write.
    pub missing_container: bool,
}

/// Lists everything below `root`. Any failing page fails the whole listing: a partial view
/// must never drive deletes. A root that does not exist is an error over DFS
/// ([`RemoteError::is_missing`]) and an empty tree over Blob.
pub async fn list_tree(t: &Transport, root: &RemoteLocation) -> Result<RemoteTree, RemoteError> {
    let mut tree = RemoteTree::default();
    let mut pages = t.list(root);
    while let Some(page) = pages.try_next().await? {
        for entry in page {
            let rel = entry.rel.as_str();
            if !is_safe_relative(rel) {
                if rel.contains('\\') && is_safe_relative(&rel.replace('\\', "_")) {
                    tree.skipped.push(rel.to_string());
                } else {
                    tree.hostile.push(rel.to_string());
                }
                continue;
            }
            if !entry.is_dir && (rel == MANIFEST_NAME || rel == LOCK_NAME) {
                let id = Some((entry.size, Etag::parse(&entry.etag)));
                if rel == MANIFEST_NAME {
                    tree.manifest = id;
                } else {
                    tree.lock = id;
                }
                continue;
            }
            if entry.is_dir {
                tree.dirs.push(rel.into());
                tree.markers.push(rel.into());
            } else {
                tree.files.push(RemoteFile {
                    path: rel.into(),
                    size: entry.size,
                    etag: Etag::parse(&entry.etag),
                    md5: entry.md5,
                });
            }
        }
    }
    tree.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    tree.files.dedup_by(|a, b| a.path == b.path);
    if !t.lists_missing_as_error() {
        // Blob: directories are what the names say, whether or not they are listed.
        for f in &tree.files {
            let mut at = 0;
            while let Some(i) = f.path[at..].find('/') {
                tree.dirs.push(f.path[..at + i].into());
                at += i + 1;
            }
        }
    }
    tree.dirs.sort_unstable();
    tree.dirs.dedup();
    tree.markers.sort_unstable();
    tree.markers.dedup();
    Ok(tree)
}

impl RemoteTree {
    /// Nothing at all below the root (not even our manifest or lock).
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
            && self.dirs.is_empty()
            && self.manifest.is_none()
            && self.lock.is_none()
            && self.hostile.is_empty()
            && self.skipped.is_empty()
    }
}

/// A relative path we can map onto a local file or a remote URL without escaping the root.
pub fn is_safe_relative(rel: &str) -> bool {
    !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains(['\\', '\0']))
}

/// The manifest at `root`, from the local cache when its ETag matches the listing, otherwise
/// downloaded (and cached). A manifest that does not parse counts as none.
pub async fn read_manifest(
    t: &Transport,
    root: &RemoteLocation,
    listed: Option<&(u64, Etag)>,
    cache: Option<&Path>,
) -> Result<Manifest, RemoteError> {
    let Some((_, etag)) = listed else {
        return Ok(Manifest::default());
    };
    if let Some(cache) = cache
        && let Some((cached_etag, manifest)) = load_cached(cache)
        && &cached_etag == etag
    {
        return Ok(manifest);
    }
    let loc = manifest_loc(root)?;
    let bytes = t.read(&loc, None).await?;
    let manifest = Manifest::parse(&bytes).unwrap_or_default();
    if let Some(cache) = cache {
        store_cached(cache, etag, &bytes);
    }
    Ok(manifest)
}

/// Uploads `manifest` to `root` and refreshes the local cache with the new ETag, which it
/// returns. `previous` is the manifest's ETag as last seen (`None`: there was none): the
/// write fails rather than replace a manifest someone else wrote meanwhile.
pub async fn write_manifest(
    t: &Transport,
    root: &RemoteLocation,
    manifest: &Manifest,
    previous: Option<&Etag>,
    cache: Option<&Path>,
) -> Result<Etag, RemoteError> {
    let loc = manifest_loc(root)?;
    let bytes = bytes::Bytes::from(manifest.to_bytes());
    let conditions = Conditions {
        if_match: previous.map(ToString::to_string),
        if_none_match_any: previous.is_none(),
        lease_id: None,
    };
    let etag = match t.put(&loc, bytes.clone(), &conditions).await {
        Ok(up) => up.etag,
        // A retried conditional write whose first attempt did land (its answer was lost)
        // fails its own condition: the manifest there is then exactly ours.
        Err(e) if matches!(e.status(), Some(409 | 412)) && e.attempts() > 1 => {
            match (t.read(&loc, None).await, t.head(&loc).await) {
                (Ok(there), Ok(Some((_, etag)))) if there == bytes => etag,
                _ => return Err(e),
            }
        }
        Err(e) => return Err(e),
    };
    let etag = Etag::parse(&etag);
    if let Some(cache) = cache {
        store_cached(cache, &etag, &bytes);
    }
    Ok(etag)
}

fn manifest_loc(root: &RemoteLocation) -> Result<RemoteLocation, RemoteError> {
    root.join(MANIFEST_NAME).map_err(|e| {
        RemoteError::Dfs(crate::dfs::DfsError::BadListing {
            location: root.to_string(),
            message: e.to_string(),
        })
    })
}

/// Cache file: first line the ETag, then the manifest bytes.
fn load_cached(path: &Path) -> Option<(Etag, Manifest)> {
    let bytes = std::fs::read(path).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let etag = Etag::parse(std::str::from_utf8(&bytes[..newline]).ok()?);
    Some((etag, Manifest::parse(&bytes[newline + 1..])?))
}

fn store_cached(path: &Path, etag: &Etag, manifest: &[u8]) {
    let write = || -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp: PathBuf = path.with_extension("tmp");
        let mut data = format!("{etag}\n").into_bytes();
        data.extend_from_slice(manifest);
        std::fs::write(&tmp, data)?;
        std::fs::rename(&tmp, path)
    };
    // The cache only saves a request; failing to write it is not worth failing the sync.
    let _ = write();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names() {
        for bad in [
            "", "..", "../x", "a/../b", "./a", "a//b", "/abs", "a\\..\\b", "a/.",
        ] {
            assert!(!is_safe_relative(bad), "{bad:?}");
        }
        for ok in ["a", "a/b c", "..a", "a..", ".hidden/x", "日本/é+#?%"] {
            assert!(is_safe_relative(ok), "{ok:?}");
        }
    }

    #[test]
    fn manifest_cache_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("m.tsv");
        let m = Manifest::default();
        store_cached(&f, &Etag::parse("0xABC"), &m.to_bytes());
        let (etag, back) = load_cached(&f).unwrap();
        assert_eq!(etag, Etag::parse("0xABC"));
        assert_eq!(back, m);
    }
}
