//! [`Transport`]: the sync engine's one door to remote storage, over the DFS client, the Blob
//! client, or both (`--api dfs|blob|auto`).
//!
//! The engine asks for what it needs — list a tree, upload a file, write a small object under
//! conditions, read, download, delete files and directories, take a lease — and the transport
//! decides which API carries each request:
//!
//! | | DFS only | Blob only | both (`auto` on OneLake / ADLS Gen2) |
//! |---|---|---|---|
//! | listing | List Paths | List Blobs (shows Content-MD5) | List Blobs |
//! | small file | create + append with flush (2) | Put Blob (1) | Put Blob (1) |
//! | large file | parallel appends + flush | parallel blocks + block list | parallel blocks + block list |
//! | delete a file | Delete Path | Blob Batch (≤256 per request) | Delete Path |
//! | delete a directory | one recursive delete | each listed blob, then its folder markers | one recursive delete |
//! | lock | lease + appended records | lease + rewritten records | lease + rewritten records |
//!
//! The storage clients know nothing of sync; this module knows nothing of plans or
//! manifests. Upload bodies held in memory at once are bounded by [`BODY_BUDGET`].

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::AsyncWrite;
use tokio::sync::Semaphore;

use crate::blob::{BlobClient, BlobError, Metadata};
use crate::dfs::{DfsClient, DfsError};
use crate::diagnostic::{Diagnostic, Kind};
use crate::http::{HttpClient, HttpError};
use crate::location::{Api, RemoteLocation, Service};
pub use crate::storage::{Conditions, Lease, LeaseAction};

/// Upload bodies read into memory at once, across all transfers (a body larger than this
/// takes the whole budget while it is in flight). Keeps a run's memory flat when many
/// megabyte-sized files are sent at the same time.
pub const BODY_BUDGET: u64 = 16 * 1024 * 1024;

/// Which API(s) a sync uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apis {
    Dfs,
    Blob,
    /// Blob for listings, transfers and the lock; DFS for deletes (a directory in one
    /// recursive request) and for telling a missing root from an empty one.
    Both,
}

/// Remote storage as the sync engine sees it. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Transport {
    dfs: Option<DfsClient>,
    blob: Option<BlobClient>,
    bodies: Arc<Semaphore>,
}

impl From<&DfsClient> for Transport {
    fn from(dfs: &DfsClient) -> Self {
        Transport::dfs(dfs.clone())
    }
}

impl From<DfsClient> for Transport {
    fn from(dfs: DfsClient) -> Self {
        Transport::dfs(dfs)
    }
}

impl From<&BlobClient> for Transport {
    fn from(blob: &BlobClient) -> Self {
        Transport::blob(blob.clone())
    }
}

impl From<&Transport> for Transport {
    fn from(t: &Transport) -> Self {
        t.clone()
    }
}

impl Transport {
    fn new(dfs: Option<DfsClient>, blob: Option<BlobClient>) -> Self {
        Self {
            dfs,
            blob,
            bodies: Arc::new(Semaphore::new(budget_units(BODY_BUDGET))),
        }
    }

    /// Everything over the DFS API.
    pub fn dfs(dfs: DfsClient) -> Self {
        Self::new(Some(dfs), None)
    }

    /// Everything over the Blob API.
    pub fn blob(blob: BlobClient) -> Self {
        Self::new(None, Some(blob))
    }

    /// Blob for listings, transfers and the lock; DFS for deletes and existence checks.
    pub fn both(blob: BlobClient, dfs: DfsClient) -> Self {
        Self::new(Some(dfs), Some(blob))
    }

    pub fn apis(&self) -> Apis {
        match (&self.dfs, &self.blob) {
            (Some(_), Some(_)) => Apis::Both,
            (None, Some(_)) => Apis::Blob,
            _ => Apis::Dfs,
        }
    }

    /// The HTTP client underneath (its throttling counter drives the adaptive limit).
    pub fn http(&self) -> &HttpClient {
        match (&self.blob, &self.dfs) {
            (Some(b), _) => b.http(),
            (None, Some(d)) => d.http(),
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// True when directories are deleted in one request (DFS).
    pub fn deletes_directories(&self) -> bool {
        self.dfs.is_some()
    }

    /// True when the lock's records are appended in place (DFS only).
    pub fn appends(&self) -> bool {
        self.blob.is_none()
    }

    /// Waits for room for a body of `size` bytes in memory; the permit frees it.
    pub async fn body_room(&self, size: u64) -> Option<tokio::sync::SemaphorePermit<'_>> {
        let units = budget_units(size.min(BODY_BUDGET)) as u32;
        self.bodies.acquire_many(units).await.ok()
    }

    fn blob_loc(loc: &RemoteLocation) -> RemoteLocation {
        loc.to_api(Api::Blob).unwrap_or_else(|| loc.clone())
    }

    fn dfs_loc(loc: &RemoteLocation) -> RemoteLocation {
        loc.to_api(Api::Dfs).unwrap_or_else(|| loc.clone())
    }

    /// Every entry below `root`, one page at a time, paths relative to `root`. A page that
    /// fails ends the stream with its error.
    pub fn list(
        &self,
        root: &RemoteLocation,
    ) -> BoxStream<'static, Result<Vec<Listed>, RemoteError>> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => {
                let base = Self::blob_loc(root);
                let pages = blob.list(&base);
                pages
                    .map(move |page| {
                        let page = page?;
                        Ok(page
                            .into_iter()
                            .filter_map(|e| {
                                let rel = e.relative_to(&base)?;
                                // A `dir/` marker blob (some tools write them): a directory.
                                let (rel, marker) = match rel.strip_suffix('/') {
                                    Some(r) if e.size == 0 => (r, true),
                                    _ => (rel, false),
                                };
                                Some(Listed {
                                    rel: rel.to_string(),
                                    is_dir: e.is_directory || marker,
                                    size: e.size,
                                    etag: e.etag.clone(),
                                    md5: e.content_md5,
                                })
                            })
                            .collect())
                    })
                    .boxed()
            }
            (None, Some(dfs)) => {
                let base = Self::dfs_loc(root);
                dfs.list(&base, true)
                    .map(move |page| {
                        let page = page?;
                        Ok(page
                            .into_iter()
                            .filter_map(|e| {
                                let rel = e.relative_to(&base)?.to_string();
                                Some(Listed {
                                    rel,
                                    is_dir: e.is_directory,
                                    size: e.size,
                                    etag: e.etag,
                                    md5: None,
                                })
                            })
                            .collect())
                    })
                    .boxed()
            }
            (None, None) => futures::stream::empty().boxed(),
        }
    }

    /// Whether the listing API says "missing" for a root that does not exist (DFS) rather
    /// than showing it empty (Blob).
    pub fn lists_missing_as_error(&self) -> bool {
        self.blob.is_none()
    }

    /// Why `root`, which a Blob listing showed empty, cannot be used as a source: `None` if
    /// it exists (an empty folder), else the error naming what is missing. Without a DFS
    /// endpoint an empty folder cannot be told from a missing one, so it counts as missing
    /// (a download then deletes nothing).
    pub async fn explain_empty(&self, root: &RemoteLocation) -> Option<RemoteError> {
        match &self.dfs {
            Some(dfs) => {
                let loc = Self::dfs_loc(root);
                match dfs.head(&loc).await {
                    Ok(Some(p)) if p.is_directory => None,
                    Ok(_) => Some(dfs.explain_missing(&loc).await.into()),
                    Err(e) => Some(e.into()),
                }
            }
            None => Some(RemoteError::Empty(root.to_string())),
        }
    }

    /// A listing's 404 (a missing container or workspace), explained over DFS where there is
    /// one (which part of the location is missing); other errors as they are.
    pub async fn explain_listing_error(
        &self,
        root: &RemoteLocation,
        e: RemoteError,
    ) -> RemoteError {
        if e.status() == Some(404) && self.dfs.is_some() {
            self.explain_missing(root).await
        } else {
            e
        }
    }

    /// Which part of `root` is missing, after a listing said it is (DFS).
    pub async fn explain_missing(&self, root: &RemoteLocation) -> RemoteError {
        match &self.dfs {
            Some(dfs) => dfs.explain_missing(&Self::dfs_loc(root)).await.into(),
            None => RemoteError::Empty(root.to_string()),
        }
    }

    /// Whether an upload may create `root`, which does not exist yet: on OneLake (and
    /// OneLake-shaped endpoints) its item and `Files`/`Tables` folder must exist, since the
    /// service will not create them. One HEAD over DFS; more only to explain what is
    /// missing. Without DFS (a Blob account) a new folder is simply new.
    pub async fn creatable(&self, root: &RemoteLocation) -> Result<(), RemoteError> {
        let Some(dfs) = &self.dfs else {
            return Ok(());
        };
        // On ADLS a missing path (as opposed to a missing container) is simply new.
        if root.service() == Service::AdlsGen2 {
            return Ok(());
        }
        let loc = Self::dfs_loc(root);
        if dfs.prefix_exists(&loc, 2).await? {
            return Ok(());
        }
        Err(dfs.explain_missing(&loc).await.into())
    }

    /// Whether `e`, from listing `root`, says that `root`'s container does not exist and an
    /// upload may create it, as rclone does: only a Blob storage account's container (a
    /// OneLake workspace or an ADLS Gen2 filesystem is not ours to create).
    pub fn may_create_container(&self, root: &RemoteLocation, e: &RemoteError) -> bool {
        self.blob.is_some()
            && root.service() == Service::BlobAccount
            && e.status() == Some(404)
            && e.code()
                .is_some_and(|c| c.eq_ignore_ascii_case("ContainerNotFound"))
    }

    /// Creates `root`'s container (Blob); an existing one is fine.
    pub async fn create_container(&self, root: &RemoteLocation) -> Result<(), RemoteError> {
        match &self.blob {
            Some(blob) => {
                blob.create_container(&Self::blob_loc(root)).await?;
                Ok(())
            }
            None => Err(RemoteError::Unsupported("creating a container")),
        }
    }

    /// Uploads the local file at `path` to `loc`, replacing what is there.
    pub async fn upload_file(
        &self,
        loc: &RemoteLocation,
        path: &Path,
        size: u64,
    ) -> Result<Uploaded, RemoteError> {
        let _room = self.body_room(size).await;
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => {
                let up = blob
                    .upload_file(&Self::blob_loc(loc), path, &Metadata::new())
                    .await?;
                Ok(Uploaded {
                    etag: up.etag,
                    size: up.size,
                    md5: up.content_md5,
                })
            }
            (None, Some(dfs)) => {
                let up = dfs.upload_file(&Self::dfs_loc(loc), path).await?;
                Ok(Uploaded {
                    etag: up.etag,
                    size: up.size,
                    md5: None,
                })
            }
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// Writes `data` as the whole object at `loc` under `conditions` (the manifest, the lock
    /// file): one Put Blob, or create + append with flush.
    pub async fn put(
        &self,
        loc: &RemoteLocation,
        data: Bytes,
        conditions: &Conditions,
    ) -> Result<Uploaded, RemoteError> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => {
                let up = blob
                    .put_blob_with(&Self::blob_loc(loc), data, &Metadata::new(), conditions)
                    .await?;
                Ok(Uploaded {
                    etag: up.etag,
                    size: up.size,
                    md5: up.content_md5,
                })
            }
            (None, Some(dfs)) => {
                let up = dfs
                    .upload_bytes_with(&Self::dfs_loc(loc), &data, conditions)
                    .await?;
                Ok(Uploaded {
                    etag: up.etag,
                    size: up.size,
                    md5: None,
                })
            }
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// Creates an empty object at `loc` unless something is there; its ETag when this call
    /// created it, `None` when it existed.
    pub async fn create_if_absent(
        &self,
        loc: &RemoteLocation,
    ) -> Result<Option<String>, RemoteError> {
        let absent = Conditions {
            if_none_match_any: true,
            ..Conditions::default()
        };
        match self.put(loc, Bytes::new(), &absent).await {
            Ok(up) => Ok(Some(up.etag)),
            Err(e) if matches!(e.status(), Some(409 | 412)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// DFS only ([`Transport::appends`]): appends `data` at `position` and commits it.
    pub async fn append(
        &self,
        loc: &RemoteLocation,
        position: u64,
        data: Bytes,
        lease_id: Option<&str>,
    ) -> Result<(), RemoteError> {
        match (&self.blob, &self.dfs) {
            (None, Some(dfs)) => {
                dfs.append_with(&Self::dfs_loc(loc), position, data, true, lease_id)
                    .await?;
                Ok(())
            }
            _ => Err(RemoteError::Unsupported("appending to a blob")),
        }
    }

    /// Size and ETag of the object at `loc`, or `None` when nothing is there.
    pub async fn head(&self, loc: &RemoteLocation) -> Result<Option<(u64, String)>, RemoteError> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => Ok(blob
                .properties(&Self::blob_loc(loc))
                .await?
                .map(|p| (p.size, p.etag))),
            (None, Some(dfs)) => Ok(dfs
                .head(&Self::dfs_loc(loc))
                .await?
                .map(|p| (p.size, p.etag))),
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// The bytes of `loc` in `range` (end exclusive), or all of them.
    pub async fn read(
        &self,
        loc: &RemoteLocation,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Bytes, RemoteError> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => Ok(blob.read(&Self::blob_loc(loc), range).await?),
            (None, Some(dfs)) => Ok(dfs
                .read(&Self::dfs_loc(loc), range.map(|r| (r.start, Some(r.end))))
                .await?),
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// Streams the object at `loc` into `out`; its size.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        loc: &RemoteLocation,
        out: &mut W,
    ) -> Result<u64, RemoteError> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => Ok(blob.download(&Self::blob_loc(loc), None, out).await?),
            (None, Some(dfs)) => Ok(dfs.download(&Self::dfs_loc(loc), out).await?),
            (None, None) => unreachable!("a transport always has a client"),
        }
    }

    /// DFS ([`Transport::deletes_directories`]): deletes one path, a directory with all it
    /// holds when `recursive`. False when nothing was there.
    pub async fn delete(&self, loc: &RemoteLocation, recursive: bool) -> Result<bool, RemoteError> {
        match (&self.dfs, &self.blob) {
            (Some(dfs), _) => Ok(dfs.delete(&Self::dfs_loc(loc), recursive).await?),
            (None, Some(blob)) if !recursive => Ok(blob.delete(&Self::blob_loc(loc)).await?),
            _ => Err(RemoteError::Unsupported(
                "deleting a directory in one request",
            )),
        }
    }

    /// Blob: deletes every one of `locs` (Blob Batch where the service has it); one result
    /// per location, in order.
    pub async fn delete_many(&self, locs: &[RemoteLocation]) -> Vec<Result<bool, RemoteError>> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => {
                let locs: Vec<RemoteLocation> = locs.iter().map(Self::blob_loc).collect();
                blob.delete_many(&locs)
                    .await
                    .into_iter()
                    .map(|r| r.map_err(RemoteError::from))
                    .collect()
            }
            (None, Some(dfs)) => {
                futures::stream::iter(locs)
                    .then(|loc| async move {
                        dfs.delete(&Self::dfs_loc(loc), false)
                            .await
                            .map_err(RemoteError::from)
                    })
                    .collect()
                    .await
            }
            (None, None) => Vec::new(),
        }
    }

    /// Carries out a lease action on the object at `loc`.
    pub async fn lease(
        &self,
        loc: &RemoteLocation,
        action: &LeaseAction,
    ) -> Result<Lease, RemoteError> {
        match (&self.blob, &self.dfs) {
            (Some(blob), _) => Ok(blob.lease(&Self::blob_loc(loc), action).await?),
            (None, Some(dfs)) => Ok(dfs.lease(&Self::dfs_loc(loc), action).await?),
            (None, None) => unreachable!("a transport always has a client"),
        }
    }
}

/// Semaphore units (KiB) for `bytes`.
fn budget_units(bytes: u64) -> usize {
    bytes.div_ceil(1024) as usize
}

/// One entry of a listing, relative to the listed root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub rel: String,
    pub is_dir: bool,
    pub size: u64,
    /// Unquoted.
    pub etag: String,
    /// The content MD5 (Blob listings show it for blobs written whole).
    pub md5: Option<[u8; 16]>,
}

/// What an upload committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The ETag of the committed object, unquoted (as listings show it).
    pub etag: String,
    pub size: u64,
    /// The content MD5 the service verified and keeps (Put Blob).
    pub md5: Option<[u8; 16]>,
}

/// A remote operation that failed, over either API.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error(transparent)]
    Dfs(#[from] DfsError),
    #[error(transparent)]
    Blob(#[from] BlobError),
    /// A Blob listing found nothing below the root, and no DFS endpoint can tell an empty
    /// folder from a missing one.
    #[error("`{0}` does not exist (nothing is stored below it)")]
    Empty(String),
    #[error("the service's API here does not support {0}")]
    Unsupported(&'static str),
}

impl RemoteError {
    /// The HTTP error underneath, if any.
    pub fn http(&self) -> Option<&HttpError> {
        match self {
            RemoteError::Dfs(e) => e.http(),
            RemoteError::Blob(e) => e.http(),
            _ => None,
        }
    }

    /// The HTTP status of the failed answer, if the service answered.
    pub fn status(&self) -> Option<u16> {
        self.http().and_then(HttpError::status)
    }

    /// How many attempts the failed request took (1 when it was not retried).
    pub fn attempts(&self) -> u32 {
        match self.http() {
            Some(HttpError::Status(s)) => s.attempts,
            Some(HttpError::Transport { attempts, .. }) => *attempts,
            _ => 1,
        }
    }

    /// The service's error code, if it sent one.
    pub fn code(&self) -> Option<&str> {
        self.http().and_then(HttpError::code)
    }

    /// True when the root itself cannot be written or read at all (a missing workspace,
    /// item or container, a rejected credential, nothing listening): trying the other files
    /// would only repeat it.
    pub fn is_fatal_for_root(&self) -> bool {
        match self {
            RemoteError::Dfs(e) => e.is_fatal_for_root(),
            RemoteError::Blob(e) => e.is_fatal_for_root(),
            RemoteError::Empty(_) => true,
            RemoteError::Unsupported(_) => false,
        }
    }

    /// A listing that found the root missing (DFS).
    pub fn is_missing(&self) -> bool {
        matches!(
            self,
            RemoteError::Dfs(DfsError::NotFound(_)) | RemoteError::Empty(_)
        )
    }

    /// A listing that found the root missing, where a folder could be created (DFS answered
    /// 404 for the folder, which says nothing yet about its workspace or item).
    pub fn is_missing_path(&self) -> bool {
        matches!(
            self,
            RemoteError::Dfs(DfsError::NotFound(crate::dfs::Missing::Path(_)))
        )
    }
}

impl Diagnostic for RemoteError {
    fn kind(&self) -> Kind {
        match self {
            RemoteError::Dfs(e) => e.kind(),
            RemoteError::Blob(e) => e.kind(),
            RemoteError::Empty(_) => Kind::Usage,
            RemoteError::Unsupported(_) => Kind::Failed,
        }
    }

    fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Dfs(e) => e.hint(),
            RemoteError::Blob(e) => e.hint(),
            RemoteError::Empty(_) => Some(
                "check the path in the URL; `fabric-remote ls` on the parent folder shows what is there".into(),
            ),
            RemoteError::Unsupported(_) => None,
        }
    }

    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        match self {
            RemoteError::Dfs(e) => e.diagnostic_source(),
            RemoteError::Blob(e) => e.diagnostic_source(),
            _ => None,
        }
    }
}
