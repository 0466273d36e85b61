//! The remote side of a sync: one recursive listing turned into a sorted [`RemoteTree`], and
//! the manifest read (skipped when the local copy has the listed ETag) and written.

use std::path::{Path, PathBuf};

use futures::TryStreamExt;

use super::manifest::{Etag, LOCK_NAME, MANIFEST_NAME, Manifest};
use super::plan::RemoteFile;
use crate::dfs::{DfsClient, DfsError};
use crate::location::RemoteLocation;

/// What one listing found below the sync root.
#[derive(Debug, Default)]
pub struct RemoteTree {
    /// Sorted by path (relative to the root).
    pub files: Vec<RemoteFile>,
    /// Sorted.
    pub dirs: Vec<Box<str>>,
    /// The manifest file's identity, when it exists.
    pub manifest: Option<(u64, Etag)>,
    /// The lock file's identity, when it exists.
    pub lock: Option<(u64, Etag)>,
    /// Names that cannot be mapped to a safe relative path (`..`, `.`, empty segments).
    pub hostile: Vec<String>,
    /// Names left alone because they cannot round-trip (a backslash): never transferred,
    /// never deleted.
    pub skipped: Vec<String>,
}

/// Lists everything below `root`. Any failing page fails the whole listing: a partial view
/// must never drive deletes. A root that does not exist is a [`DfsError::NotFound`].
pub async fn list_tree(dfs: &DfsClient, root: &RemoteLocation) -> Result<RemoteTree, DfsError> {
    let mut tree = RemoteTree::default();
    let mut pages = std::pin::pin!(dfs.list(root, true));
    while let Some(page) = pages.try_next().await? {
        for entry in page {
            let Some(rel) = entry.relative_to(root) else {
                continue;
            };
            if !is_safe_relative(rel) {
                if rel.contains('\\') && is_safe_relative(&rel.replace('\\', "_")) {
                    tree.skipped.push(rel.to_string());
                } else {
                    tree.hostile.push(rel.to_string());
                }
                continue;
            }
            if !entry.is_directory && (rel == MANIFEST_NAME || rel == LOCK_NAME) {
                let id = Some((entry.size, Etag::parse(&entry.etag)));
                if rel == MANIFEST_NAME {
                    tree.manifest = id;
                } else {
                    tree.lock = id;
                }
                continue;
            }
            if entry.is_directory {
                tree.dirs.push(rel.into());
            } else {
                tree.files.push(RemoteFile {
                    path: rel.into(),
                    size: entry.size,
                    etag: Etag::parse(&entry.etag),
                    md5: None,
                });
            }
        }
    }
    tree.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    tree.files.dedup_by(|a, b| a.path == b.path);
    tree.dirs.sort_unstable();
    tree.dirs.dedup();
    Ok(tree)
}

/// Whether an upload may create `root`, which a listing found missing: on OneLake (and
/// OneLake-shaped endpoints) its item and `Files`/`Tables` folder must exist, since the
/// service will not create them. One HEAD; more only to explain what is missing.
pub async fn creatable(dfs: &DfsClient, root: &RemoteLocation) -> Result<(), DfsError> {
    // On ADLS a missing path (as opposed to a missing container) is simply new.
    if root.service() == crate::location::Service::AdlsGen2 {
        return Ok(());
    }
    if dfs.prefix_exists(root, 2).await? {
        return Ok(());
    }
    Err(dfs.explain_missing(root).await)
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
    dfs: &DfsClient,
    root: &RemoteLocation,
    listed: Option<&(u64, Etag)>,
    cache: Option<&Path>,
) -> Result<Manifest, DfsError> {
    let Some((_, etag)) = listed else {
        return Ok(Manifest::default());
    };
    if let Some(cache) = cache
        && let Some((cached_etag, manifest)) = load_cached(cache)
        && &cached_etag == etag
    {
        return Ok(manifest);
    }
    let loc = root.join(MANIFEST_NAME).map_err(|e| DfsError::BadListing {
        location: root.to_string(),
        message: e.to_string(),
    })?;
    let bytes = dfs.read(&loc, None).await?;
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
    dfs: &DfsClient,
    root: &RemoteLocation,
    manifest: &Manifest,
    previous: Option<&Etag>,
    cache: Option<&Path>,
) -> Result<Etag, DfsError> {
    let loc = root.join(MANIFEST_NAME).map_err(|e| DfsError::BadListing {
        location: root.to_string(),
        message: e.to_string(),
    })?;
    let bytes = bytes::Bytes::from(manifest.to_bytes());
    let conditions = crate::dfs::Conditions {
        if_match: previous.map(ToString::to_string),
        if_none_match_any: previous.is_none(),
        lease_id: None,
    };
    let up = dfs.upload_bytes_with(&loc, &bytes, &conditions).await?;
    let etag = Etag::parse(&up.etag);
    if let Some(cache) = cache {
        store_cached(cache, &etag, &bytes);
    }
    Ok(etag)
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
