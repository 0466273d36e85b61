//! [`BlobClient`]: the Blob API operations fabric-remote needs, each one HTTP request (plus
//! retries) except the composite upload and download documented on their methods.
//!
//! Every request carries `x-ms-version` (one pinned service version, as the SDKs do) and is
//! authorised by the client's [`BlobAuth`]. Every body we send carries `Content-MD5`, so the
//! service checks the bytes it stores against the bytes we read.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use md5::{Digest, Md5};
use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;
use tokio::io::AsyncWrite;

use super::credential::BlobAuth;
use super::error::BlobError;
use super::model::{BlobProperties, Metadata, block_list_xml, decode_md5};
use crate::http::{HttpClient, HttpError, Sent};
use crate::location::RemoteLocation;
use crate::storage::{Conditions, ReadFault, Source, etag_of, normalize_etag, read_resuming};

/// The service version we speak: new enough for everything used here (Put Blob up to
/// 5000 MiB, container-scoped Blob Batch), old enough for Azurite 3.2x and OneLake.
pub const X_MS_VERSION: &str = "2023-11-03";

/// A body up to this size is uploaded with one Put Blob request.
pub const DEFAULT_SINGLE_PUT_LIMIT: usize = 8 * 1024 * 1024;
/// Size of one Put Block request above the single-put limit.
pub const DEFAULT_BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// Blocks of one blob in flight at once.
pub const DEFAULT_BLOCK_CONCURRENCY: usize = 8;
/// Most blocks one blob may have.
pub const MAX_BLOCKS: u64 = 50_000;
/// Largest block the service accepts.
pub const MAX_BLOCK_SIZE: u64 = 4000 * 1024 * 1024;

/// A Blob client: cheap to clone, shares the connection pool of its [`HttpClient`].
#[derive(Clone, Debug)]
pub struct BlobClient {
    pub(super) http: HttpClient,
    pub(super) auth: BlobAuth,
    single_put_limit: usize,
    block_size: usize,
    block_concurrency: usize,
    pub(super) page_size: u32,
    /// Whether Blob Batch works here: unknown, yes, or no (then deletes go one by one).
    pub(super) batch: Arc<AtomicU8>,
}

/// What an upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The ETag of the committed blob, unquoted (as listings show it).
    pub etag: String,
    pub size: u64,
    /// Requests the upload needed (1 for Put Blob; blocks + 1 for a block list), retries
    /// not counted.
    pub requests: u32,
    /// The MD5 the service verified and stored (Put Blob only).
    pub content_md5: Option<[u8; 16]>,
}

impl BlobClient {
    pub fn new(http: HttpClient, auth: BlobAuth) -> Self {
        Self {
            http,
            auth,
            single_put_limit: DEFAULT_SINGLE_PUT_LIMIT,
            block_size: DEFAULT_BLOCK_SIZE,
            block_concurrency: DEFAULT_BLOCK_CONCURRENCY,
            page_size: super::list::MAX_RESULTS,
            batch: Arc::new(AtomicU8::new(super::batch::UNKNOWN)),
        }
    }

    /// Largest body sent as one Put Blob (at most 5000 MiB).
    pub fn with_single_put_limit(mut self, bytes: usize) -> Self {
        self.single_put_limit = bytes.min(5000 * 1024 * 1024);
        self
    }

    /// Bytes per Put Block (at least 1; grown for files that would need more than 50,000).
    pub fn with_block_size(mut self, bytes: usize) -> Self {
        self.block_size = bytes.clamp(1, MAX_BLOCK_SIZE as usize);
        self
    }

    /// Blobs per listing page (`maxresults`, 1–5000) that [`BlobClient::list`] asks for.
    pub fn with_page_size(mut self, n: u32) -> Self {
        self.page_size = n.clamp(1, super::list::MAX_RESULTS);
        self
    }

    /// Blocks of one blob uploaded at once (at least 1).
    pub fn with_block_concurrency(mut self, n: usize) -> Self {
        self.block_concurrency = n.max(1);
        self
    }

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn single_put_limit(&self) -> usize {
        self.single_put_limit
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    pub fn auth(&self) -> &BlobAuth {
        &self.auth
    }

    pub(super) async fn call(
        &self,
        method: Method,
        url: &str,
        customize: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Sent, HttpError> {
        self.http
            .send(method, url, self.auth.authorization(), |r| {
                customize(r.header("x-ms-version", X_MS_VERSION))
            })
            .await
            .map_err(|e| self.auth.redact(e))
    }

    /// `PUT ?restype=container`. True if it was created, false if it already existed.
    pub async fn create_container(&self, loc: &RemoteLocation) -> Result<bool, BlobError> {
        let url = format!("{}?restype=container", loc.filesystem_url());
        match self
            .call(Method::PUT, &url, |r| r.header(CONTENT_LENGTH, "0"))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(409) => Ok(false),
            Err(e) => Err(BlobError::op("create the container of", loc, e)),
        }
    }

    /// Put Blob: `data` becomes the blob at `loc` in one request, replacing it atomically.
    pub async fn put_blob(
        &self,
        loc: &RemoteLocation,
        data: Bytes,
        metadata: &Metadata,
    ) -> Result<Uploaded, BlobError> {
        self.put_blob_with(loc, data, metadata, &Conditions::default())
            .await
    }

    /// [`BlobClient::put_blob`] under `conditions`. A failed condition is an HTTP error with
    /// status 412 (`If-Match`) or 409 `BlobAlreadyExists` (`If-None-Match: *`; some servers
    /// answer 412).
    pub async fn put_blob_with(
        &self,
        loc: &RemoteLocation,
        data: Bytes,
        metadata: &Metadata,
        conditions: &Conditions,
    ) -> Result<Uploaded, BlobError> {
        refuse_protected(loc)?;
        let meta = metadata_headers(metadata)?;
        let md5 = md5_of(&data);
        let md5_b64 = B64.encode(md5);
        let len = data.len();
        let sent = self
            .call(Method::PUT, &loc.url(), |r| {
                let mut r = r
                    .header("x-ms-blob-type", "BlockBlob")
                    .header(CONTENT_LENGTH, len.to_string())
                    .header("content-md5", &md5_b64);
                for (k, v) in &meta {
                    r = r.header(k, v);
                }
                conditions.apply(r).body(data.clone())
            })
            .await
            .map_err(|e| BlobError::op("upload", loc, e))?;
        Ok(Uploaded {
            etag: etag_of(sent.response.headers()),
            size: len as u64,
            requests: 1,
            content_md5: Some(md5),
        })
    }

    /// Put Block: stages `data` as block `id` (base64, the same length for every block of
    /// a blob). Nothing is visible until [`BlobClient::put_block_list`].
    pub async fn put_block(
        &self,
        loc: &RemoteLocation,
        id: &str,
        data: Bytes,
    ) -> Result<(), BlobError> {
        let url = format!(
            "{}?comp=block&blockid={}",
            loc.url(),
            crate::location::encode_query_value(id, false)
        );
        let md5_b64 = B64.encode(md5_of(&data));
        let len = data.len();
        self.call(Method::PUT, &url, |r| {
            r.header(CONTENT_LENGTH, len.to_string())
                .header("content-md5", &md5_b64)
                .body(data.clone())
        })
        .await
        .map_err(|e| BlobError::op("upload a block of", loc, e))?;
        Ok(())
    }

    /// Put Block List: commits the staged blocks `ids`, in order, as the blob at `loc`
    /// (atomically replacing what was there). Returns the new ETag.
    pub async fn put_block_list(
        &self,
        loc: &RemoteLocation,
        ids: &[String],
        metadata: &Metadata,
    ) -> Result<String, BlobError> {
        refuse_protected(loc)?;
        let meta = metadata_headers(metadata)?;
        let body = Bytes::from(block_list_xml(ids));
        let md5_b64 = B64.encode(md5_of(&body));
        let url = format!("{}?comp=blocklist", loc.url());
        let sent = self
            .call(Method::PUT, &url, |r| {
                let mut r = r
                    .header(CONTENT_LENGTH, body.len().to_string())
                    .header("content-type", "application/xml")
                    .header("content-md5", &md5_b64);
                for (k, v) in &meta {
                    r = r.header(k, v);
                }
                r.body(body.clone())
            })
            .await
            .map_err(|e| BlobError::op("commit the blocks of", loc, e))?;
        Ok(etag_of(sent.response.headers()))
    }

    /// Uploads `data` to `loc`: one Put Blob up to the single-put limit, otherwise blocks in
    /// parallel and one Put Block List. The old blob stays readable until the new one is
    /// committed.
    pub async fn upload_bytes(
        &self,
        loc: &RemoteLocation,
        data: &Bytes,
        metadata: &Metadata,
    ) -> Result<Uploaded, BlobError> {
        if data.len() <= self.single_put_limit {
            return self.put_blob(loc, data.clone(), metadata).await;
        }
        self.upload_blocks(loc, Source::Memory(data), data.len() as u64, metadata)
            .await
    }

    /// Uploads the local file at `path` like [`BlobClient::upload_bytes`], reading at most
    /// one block per block in flight. A file that changes size while being read is not
    /// committed.
    pub async fn upload_file(
        &self,
        loc: &RemoteLocation,
        path: &Path,
        metadata: &Metadata,
    ) -> Result<Uploaded, BlobError> {
        let local = |source| BlobError::Local {
            path: path.to_path_buf(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(local)?.len();
        let result = if len <= self.single_put_limit as u64 {
            let owned = path.to_path_buf();
            let data = tokio::task::spawn_blocking(move || {
                use std::io::Read;
                // One buffer of the file's size (tokio's File would read through a second
                // one); at most one byte past the expected size, so a growing file is noticed.
                let mut data = Vec::with_capacity(len as usize + 1);
                std::fs::File::open(owned)?
                    .take(len + 1)
                    .read_to_end(&mut data)?;
                Ok(data)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r)
            .map_err(local)?;
            if data.len() as u64 != len {
                return Err(BlobError::ChangedDuringUpload(path.to_path_buf()));
            }
            self.put_blob(loc, Bytes::from(data), metadata).await
        } else {
            self.upload_blocks(loc, Source::File(path), len, metadata)
                .await
        };
        result.map_err(|e| match e {
            BlobError::Io(source) => local(source),
            other => other,
        })
    }

    async fn upload_blocks(
        &self,
        loc: &RemoteLocation,
        source: Source<'_>,
        len: u64,
        metadata: &Metadata,
    ) -> Result<Uploaded, BlobError> {
        refuse_protected(loc)?;
        metadata_headers(metadata)?;
        let block = self.block_size_for(loc, len)?;
        let count = len.div_ceil(block);
        let nonce = nonce();
        let ids: Vec<String> = (0..count).map(|i| block_id(nonce, i)).collect();
        futures::stream::iter(0..count)
            .map(Ok::<u64, BlobError>)
            .try_for_each_concurrent(self.block_concurrency, |i| {
                let ids = &ids;
                async move {
                    let offset = i * block;
                    let n = (len - offset).min(block) as usize;
                    let data = source.chunk(offset, n).await.map_err(BlobError::Io)?;
                    self.put_block(loc, &ids[i as usize], data).await
                }
            })
            .await?;
        if let Source::File(path) = source {
            let now = tokio::fs::metadata(path)
                .await
                .map_err(BlobError::Io)?
                .len();
            if now != len {
                return Err(BlobError::ChangedDuringUpload(path.to_path_buf()));
            }
        }
        let etag = self.put_block_list(loc, &ids, metadata).await?;
        Ok(Uploaded {
            etag,
            size: len,
            requests: count as u32 + 1,
            content_md5: None,
        })
    }

    /// The block size for a blob of `len` bytes: the configured one, doubled until the blob
    /// fits in 50,000 blocks.
    fn block_size_for(&self, loc: &RemoteLocation, len: u64) -> Result<u64, BlobError> {
        let mut block = self.block_size as u64;
        while len.div_ceil(block) > MAX_BLOCKS {
            block *= 2;
        }
        if block > MAX_BLOCK_SIZE {
            return Err(BlobError::TooLarge {
                location: loc.to_string(),
                size: len,
            });
        }
        Ok(block)
    }

    /// Get Blob Properties (`HEAD`), or `None` when nothing is at `loc`.
    pub async fn properties(
        &self,
        loc: &RemoteLocation,
    ) -> Result<Option<BlobProperties>, BlobError> {
        match self.call(Method::HEAD, &loc.url(), |r| r).await {
            Ok(sent) => {
                let h = sent.response.headers();
                let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
                let metadata = h
                    .iter()
                    .filter_map(|(k, v)| {
                        let name = k.as_str().strip_prefix("x-ms-meta-")?;
                        Some((name.to_string(), v.to_str().ok()?.to_string()))
                    })
                    .collect();
                Ok(Some(BlobProperties {
                    size: get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    etag: get("etag").map(normalize_etag).unwrap_or_default(),
                    last_modified: get("last-modified")
                        .and_then(|v| httpdate::parse_http_date(v).ok()),
                    content_md5: get("content-md5").and_then(decode_md5),
                    metadata,
                }))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(BlobError::op("read properties of", loc, e)),
        }
    }

    /// Get Blob into memory; `range` is `start..end` (end exclusive), `None` for all of it.
    pub async fn read(
        &self,
        loc: &RemoteLocation,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<Bytes, BlobError> {
        let mut out = Vec::new();
        self.download(loc, range, &mut out).await?;
        Ok(Bytes::from(out))
    }

    /// Get Blob, streamed into `out`; `range` is `start..end` (end exclusive), `None` for
    /// the whole blob. Returns the bytes written. A connection that breaks mid-body is
    /// resumed from the last byte received, pinned to the first answer's ETag (`If-Match`)
    /// so a blob replaced meanwhile is an error, not a mix.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        loc: &RemoteLocation,
        range: Option<std::ops::Range<u64>>,
        out: &mut W,
    ) -> Result<u64, BlobError> {
        if let Some(r) = &range
            && r.end <= r.start
        {
            return Ok(0);
        }
        let start = range.as_ref().map_or(0, |r| r.start);
        let end = range.as_ref().map(|r| r.end);
        let max_attempts = self.http.policy().max_attempts;
        let url = loc.url();
        read_resuming(start, end, range.is_some(), max_attempts, out, |req| {
            let url = &url;
            async move {
                Ok(self
                    .call(Method::GET, url, |r| req.apply(r))
                    .await?
                    .response)
            }
        })
        .await
        .map_err(|fault: ReadFault<HttpError>| match fault {
            ReadFault::Request(e) if e.status() == Some(412) => {
                BlobError::ChangedDuringRead(loc.to_string())
            }
            ReadFault::Request(e) => BlobError::op("read", loc, e),
            ReadFault::Io(e) => BlobError::Io(e),
            ReadFault::Interrupted(message) => BlobError::Interrupted {
                op: "read",
                location: loc.to_string(),
                message,
            },
        })
    }

    /// Delete Blob. Returns false when nothing was there; a 404 after a retry counts as
    /// deleted (the lost answer of the earlier attempt did the work). A blob with
    /// snapshots is not deleted (the service refuses; its snapshots are someone's backup).
    pub async fn delete(&self, loc: &RemoteLocation) -> Result<bool, BlobError> {
        refuse_protected(loc)?;
        match self.call(Method::DELETE, &loc.url(), |r| r).await {
            Ok(_) => Ok(true),
            Err(HttpError::Status(s)) if s.status == 404 => Ok(s.attempts > 1),
            Err(e) => Err(BlobError::op("delete", loc, e)),
        }
    }
}

/// `x-ms-meta-*` headers for `metadata`, checked against the service's rules (C#
/// identifiers; ASCII values).
fn metadata_headers(metadata: &Metadata) -> Result<Vec<(String, String)>, BlobError> {
    metadata
        .iter()
        .map(|(k, v)| {
            let valid_name = k
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid_name {
                return Err(BlobError::BadMetadataName(k.clone()));
            }
            if !v.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
                return Err(BlobError::BadMetadataValue(k.clone()));
            }
            Ok((format!("x-ms-meta-{k}"), v.clone()))
        })
        .collect()
}

pub(super) fn md5_of(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

pub(super) fn refuse_protected(loc: &RemoteLocation) -> Result<(), BlobError> {
    if loc.is_protected() {
        return Err(BlobError::Protected(loc.to_string()));
    }
    Ok(())
}

/// A value unique to this upload, so two uploads of one blob never share block ids.
fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ (u64::from(std::process::id()) << 40) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Block `index` of the upload `nonce`: base64 of a fixed-width string (the service wants
/// every id of a blob to have the same length).
fn block_id(nonce: u64, index: u64) -> String {
    B64.encode(format!("{nonce:016x}-{index:06}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_ids_have_one_length() {
        let n = nonce();
        let ids: Vec<_> = [0, 9, 49_999].iter().map(|i| block_id(n, *i)).collect();
        assert!(ids.iter().all(|id| id.len() == ids[0].len()));
        assert_ne!(ids[0], ids[1]);
        assert_ne!(block_id(nonce(), 0), block_id(nonce(), 0));
    }

    #[test]
    fn metadata_rules() {
        let ok: Metadata = [("sha256".into(), "ab cd".into()), ("_x1".into(), "".into())].into();
        assert_eq!(metadata_headers(&ok).unwrap().len(), 2);
        for bad in ["1x", "a-b", "", "é"] {
            let m: Metadata = [(bad.to_string(), "v".to_string())].into();
            assert!(
                matches!(metadata_headers(&m), Err(BlobError::BadMetadataName(_))),
                "{bad}"
            );
        }
        let m: Metadata = [("k".to_string(), "café".to_string())].into();
        assert!(matches!(
            metadata_headers(&m),
            Err(BlobError::BadMetadataValue(_))
        ));
    }

    #[test]
    fn md5_of_hello_world() {
        assert_eq!(
            B64.encode(md5_of(b"hello world")),
            "XrY7u+Ae7tCTyyK7j1rNww=="
        );
    }
}
