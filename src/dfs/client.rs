//! [`DfsClient`]: the operations of the ADLS Gen2 / OneLake DFS REST API that fabric-remote
//! needs, each one HTTP request (plus retries) except the composite upload, download and
//! delete loops documented on their methods.

use std::path::Path;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, HeaderMap};
use tokio::io::AsyncWrite;

use super::error::DfsError;
use super::model::Properties;
use crate::auth::STORAGE_SCOPE;
use crate::http::{HttpClient, HttpError, Sent};
use crate::location::RemoteLocation;
use crate::storage::{Conditions, ReadFault, Source, etag_of, normalize_etag, read_resuming};

/// The service version we speak: ≥ 2021-10-04 for `flush=true` on append, ≥ 2023-08-03 for
/// paginated recursive deletes.
pub const X_MS_VERSION: &str = "2023-11-03";

/// Calls one paginated recursive delete may take (each removes a batch of entries).
const MAX_DELETE_CALLS: u32 = 100_000;

/// Default size of one append request. A file up to this size is uploaded with 2 requests.
pub const DEFAULT_CHUNK_SIZE: usize = 8 * 1024 * 1024;

/// Appends of one file in flight at once by default.
pub const DEFAULT_CHUNK_CONCURRENCY: usize = 8;

/// A DFS client: cheap to clone, shares the connection pool of its [`HttpClient`].
#[derive(Clone, Debug)]
pub struct DfsClient {
    http: HttpClient,
    chunk_size: usize,
    chunk_concurrency: usize,
}

/// What an upload wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The ETag of the committed file, unquoted (as listings show it).
    pub etag: String,
    pub size: u64,
    /// Requests the upload needed (create + appends), retries not counted.
    pub requests: u32,
}

impl DfsClient {
    pub fn new(http: HttpClient) -> Self {
        Self {
            http,
            chunk_size: DEFAULT_CHUNK_SIZE,
            chunk_concurrency: DEFAULT_CHUNK_CONCURRENCY,
        }
    }

    /// Appends of one file sent at once (at least 1).
    pub fn with_chunk_concurrency(mut self, n: usize) -> Self {
        self.chunk_concurrency = n.max(1);
        self
    }

    /// Bytes per append request (at least 1).
    pub fn with_chunk_size(mut self, chunk_size: usize) -> Self {
        self.chunk_size = chunk_size.max(1);
        self
    }

    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        customize: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> Result<Sent, HttpError> {
        self.http
            .send(method, url, STORAGE_SCOPE, |r| {
                customize(r.header("x-ms-version", X_MS_VERSION))
            })
            .await
    }

    /// `PUT ?resource=file`: creates (or truncates) a file, parents included. 1 request.
    pub async fn create_file(&self, loc: &RemoteLocation) -> Result<String, DfsError> {
        self.create_file_with(loc, &Conditions::default()).await
    }

    /// [`DfsClient::create_file`] under `conditions`. A failed condition is an HTTP error
    /// with status 412 (`If-Match`) or 409 `PathAlreadyExists` (`If-None-Match: *`).
    pub async fn create_file_with(
        &self,
        loc: &RemoteLocation,
        conditions: &Conditions,
    ) -> Result<String, DfsError> {
        refuse_protected(loc)?;
        let url = format!("{}?resource=file", loc.url());
        let sent = self
            .call(Method::PUT, &url, |r| {
                conditions.apply(r.header(CONTENT_LENGTH, "0"))
            })
            .await
            .map_err(|e| DfsError::op("create", loc, e))?;
        Ok(etag_of(sent.response.headers()))
    }

    /// `PUT ?resource=directory`. 1 request.
    pub async fn create_directory(&self, loc: &RemoteLocation) -> Result<(), DfsError> {
        refuse_protected(loc)?;
        let url = format!("{}?resource=directory", loc.url());
        self.call(Method::PUT, &url, |r| r.header(CONTENT_LENGTH, "0"))
            .await
            .map_err(|e| DfsError::op("create directory", loc, e))?;
        Ok(())
    }

    /// `PATCH ?action=append&position=P[&flush=true]`. With `flush`, the data up to
    /// `position + data.len()` is committed and the new ETag returned.
    pub async fn append(
        &self,
        loc: &RemoteLocation,
        position: u64,
        data: Bytes,
        flush: bool,
    ) -> Result<Option<String>, DfsError> {
        self.append_with(loc, position, data, flush, None).await
    }

    /// [`DfsClient::append`] carrying the lease id held on the path.
    pub async fn append_with(
        &self,
        loc: &RemoteLocation,
        position: u64,
        data: Bytes,
        flush: bool,
        lease_id: Option<&str>,
    ) -> Result<Option<String>, DfsError> {
        let url = format!(
            "{}?action=append&position={position}{}",
            loc.url(),
            if flush { "&flush=true" } else { "" }
        );
        let len = data.len();
        let sent = self
            .call(Method::PATCH, &url, |r| {
                let r = r.header(CONTENT_LENGTH, len.to_string()).body(data.clone());
                match lease_id {
                    Some(id) => r.header("x-ms-lease-id", id),
                    None => r,
                }
            })
            .await
            .map_err(|e| DfsError::op("append to", loc, e))?;
        Ok(flush.then(|| etag_of(sent.response.headers())))
    }

    /// `PATCH ?action=flush&position=P`: commits the first `position` bytes appended.
    pub async fn flush(&self, loc: &RemoteLocation, position: u64) -> Result<String, DfsError> {
        let url = format!("{}?action=flush&position={position}", loc.url());
        let sent = self
            .call(Method::PATCH, &url, |r| r.header(CONTENT_LENGTH, "0"))
            .await
            .map_err(|e| DfsError::op("flush", loc, e))?;
        Ok(etag_of(sent.response.headers()))
    }

    /// Uploads `data` to `loc`, replacing what is there: 1 request for an empty file, 2 for a
    /// file that fits in one chunk (create, then append with `flush=true`), 1 + N for N chunks
    /// (all but the last appended in parallel at their positions, then the last one with
    /// `flush=true`, which commits the whole file).
    pub async fn upload_bytes(
        &self,
        loc: &RemoteLocation,
        data: &Bytes,
    ) -> Result<Uploaded, DfsError> {
        self.upload_bytes_with(loc, data, &Conditions::default())
            .await
    }

    /// [`DfsClient::upload_bytes`] whose create carries `conditions` (the appends carry
    /// only the lease id).
    pub async fn upload_bytes_with(
        &self,
        loc: &RemoteLocation,
        data: &Bytes,
        conditions: &Conditions,
    ) -> Result<Uploaded, DfsError> {
        self.upload(loc, Source::Memory(data), data.len() as u64, conditions)
            .await
    }

    /// Uploads the local file at `path`, reading one chunk per append in flight (memory stays
    /// at a few chunks however large the file). Fails if the file shrinks while being read.
    pub async fn upload_file(
        &self,
        loc: &RemoteLocation,
        path: &Path,
    ) -> Result<Uploaded, DfsError> {
        let local = |source| DfsError::Local {
            path: path.to_path_buf(),
            source,
        };
        let len = tokio::fs::metadata(path).await.map_err(local)?.len();
        self.upload(loc, Source::File(path), len, &Conditions::default())
            .await
            .map_err(|e| match e {
                DfsError::Io(source) => local(source),
                other => other,
            })
    }

    async fn upload(
        &self,
        loc: &RemoteLocation,
        source: Source<'_>,
        len: u64,
        conditions: &Conditions,
    ) -> Result<Uploaded, DfsError> {
        let etag = self.create_file_with(loc, conditions).await?;
        if len == 0 {
            return Ok(Uploaded {
                etag,
                size: 0,
                requests: 1,
            });
        }
        let chunk = self.chunk_size as u64;
        let count = len.div_ceil(chunk);
        let lease = conditions.lease_id.as_deref();
        // Every chunk but the last, in parallel: nothing is visible before the flush.
        futures::stream::iter(0..count - 1)
            .map(Ok::<u64, DfsError>)
            .try_for_each_concurrent(self.chunk_concurrency, |i| async move {
                let offset = i * chunk;
                let data = source
                    .chunk(offset, chunk as usize)
                    .await
                    .map_err(DfsError::Io)?;
                self.append_with(loc, offset, data, false, lease).await?;
                Ok(())
            })
            .await?;
        // The last one commits everything below its end.
        let offset = (count - 1) * chunk;
        let data = source
            .chunk(offset, (len - offset) as usize)
            .await
            .map_err(DfsError::Io)?;
        let etag = self
            .append_with(loc, offset, data, true, lease)
            .await?
            .unwrap_or(etag);
        Ok(Uploaded {
            etag,
            size: len,
            requests: 1 + count as u32,
        })
    }

    /// `HEAD`: properties, or `None` when nothing is at `loc`.
    pub async fn head(&self, loc: &RemoteLocation) -> Result<Option<Properties>, DfsError> {
        match self.call(Method::HEAD, &loc.url(), |r| r).await {
            Ok(sent) => {
                let h = sent.response.headers();
                let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
                Ok(Some(Properties {
                    is_directory: get("x-ms-resource-type") == Some("directory"),
                    size: get("content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0),
                    etag: get("etag").map(normalize_etag).unwrap_or_default(),
                    last_modified: get("last-modified")
                        .and_then(|v| httpdate::parse_http_date(v).ok()),
                }))
            }
            Err(e) if e.status() == Some(404) => Ok(None),
            Err(e) => Err(DfsError::op("read properties of", loc, e)),
        }
    }

    /// `GET` with an optional byte range (`start..end`, end exclusive; `None` = to the end).
    /// Returns the whole body; use [`DfsClient::download`] for large files.
    pub async fn read(
        &self,
        loc: &RemoteLocation,
        range: Option<(u64, Option<u64>)>,
    ) -> Result<Bytes, DfsError> {
        let sent = self
            .call(Method::GET, &loc.url(), |r| match range {
                Some((start, Some(end))) if end > start => {
                    r.header("range", format!("bytes={start}-{}", end - 1))
                }
                Some((start, _)) => r.header("range", format!("bytes={start}-")),
                None => r,
            })
            .await
            .map_err(|e| DfsError::op("read", loc, e))?;
        sent.response
            .bytes()
            .await
            .map_err(|e| DfsError::Interrupted {
                op: "read",
                location: loc.to_string(),
                message: e.to_string(),
            })
    }

    /// Streams the file at `loc` into `out` and returns its size. A connection that breaks
    /// mid-body is resumed with `Range` from the last byte received, pinned to the first
    /// answer's ETag with `If-Match` so a file changed meanwhile is an error, not a mix.
    pub async fn download<W: AsyncWrite + Unpin>(
        &self,
        loc: &RemoteLocation,
        out: &mut W,
    ) -> Result<u64, DfsError> {
        let max_attempts = self.http.policy().max_attempts;
        let url = loc.url();
        read_resuming(0, None, false, max_attempts, out, |req| {
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
                DfsError::ChangedDuringRead(loc.to_string())
            }
            ReadFault::Request(e) => DfsError::op("read", loc, e),
            ReadFault::Io(e) => DfsError::Io(e),
            ReadFault::Interrupted(message) => DfsError::Interrupted {
                op: "read",
                location: loc.to_string(),
                message,
            },
        })
    }

    /// `DELETE` (recursive for directories), repeated with `x-ms-continuation` until the
    /// service has nothing left. Returns false when nothing was there. A 404 after a retry
    /// counts as deleted: the lost answer of the earlier attempt did the work.
    pub async fn delete(&self, loc: &RemoteLocation, recursive: bool) -> Result<bool, DfsError> {
        refuse_protected(loc)?;
        let mut continuation: Option<String> = None;
        let mut first = true;
        let mut calls = 0u32;
        loop {
            let mut url = loc.url();
            if recursive {
                url.push_str("?recursive=true&paginated=true");
            } else {
                url.push_str("?recursive=false");
            }
            if let Some(token) = &continuation {
                url.push_str("&continuation=");
                url.push_str(&crate::location::encode_query_value(token, false));
            }
            match self.call(Method::DELETE, &url, |r| r).await {
                Ok(sent) => {
                    let next = continuation_of(sent.response.headers());
                    // Each call deletes a batch, so a repeated token still means progress;
                    // a service that never stops is cut off after a generous number of calls.
                    calls += 1;
                    match next {
                        Some(_) if calls > MAX_DELETE_CALLS => {
                            return Err(DfsError::RepeatedContinuation(loc.to_string()));
                        }
                        Some(token) => continuation = Some(token),
                        None => return Ok(true),
                    }
                }
                Err(e) if e.status() == Some(404) => {
                    let retried = matches!(&e, HttpError::Status(s) if s.attempts > 1);
                    return Ok(!first || retried);
                }
                Err(e) => return Err(DfsError::op("delete", loc, e)),
            }
            first = false;
        }
    }
}

/// The `x-ms-continuation` header, when the service sent a non-empty one.
pub(super) fn continuation_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get("x-ms-continuation")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn refuse_protected(loc: &RemoteLocation) -> Result<(), DfsError> {
    if loc.is_protected() {
        return Err(DfsError::Protected(loc.to_string()));
    }
    Ok(())
}
