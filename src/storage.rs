//! What the two Azure Storage clients, [`crate::dfs`] and [`crate::blob`], share because both
//! REST APIs spell it the same way: the conditions on a write, lease actions and their
//! answer, ETags, where the bytes of an upload come from, and a download that resumes
//! where its body broke off. Knows nothing of sync.

use std::path::Path;

use bytes::Bytes;
use reqwest::RequestBuilder;
use reqwest::header::HeaderMap;

/// Conditions on a write (`If-Match`, `If-None-Match: *`, a lease id), so that it fails
/// instead of overwriting what someone else wrote meanwhile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// Write only if the object still has this ETag (unquoted).
    pub if_match: Option<String>,
    /// Write only if nothing is there yet.
    pub if_none_match_any: bool,
    /// The lease held on the object, if any.
    pub lease_id: Option<String>,
}

impl Conditions {
    /// The request with these conditions as headers.
    pub(crate) fn apply(&self, mut r: RequestBuilder) -> RequestBuilder {
        if let Some(tag) = &self.if_match {
            r = r.header("if-match", format!("\"{tag}\""));
        }
        if self.if_none_match_any {
            r = r.header("if-none-match", "*");
        }
        if let Some(id) = &self.lease_id {
            r = r.header("x-ms-lease-id", id.as_str());
        }
        r
    }
}

/// One lease action: the service's own lock on an object. While a lease is held, writes and
/// deletes of the object need its id; a lease with a duration (15–60 s) expires by itself
/// unless renewed, so a holder that dies frees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseAction {
    /// Take the lease for `seconds` (15–60) with our own id. Acquiring again with the
    /// holder's id succeeds (it renews), so a retry after a lost answer is harmless.
    Acquire {
        seconds: u32,
        proposed_id: String,
    },
    Renew(String),
    Release(String),
}

impl LeaseAction {
    /// What a failure says it was trying to do ("could not {verb} `path`").
    pub(crate) fn verb(&self) -> &'static str {
        match self {
            LeaseAction::Acquire { .. } => "lease",
            LeaseAction::Renew(_) => "renew the lease on",
            LeaseAction::Release(_) => "release the lease on",
        }
    }

    /// The request with this action's headers (`x-ms-lease-action` and the ids).
    pub(crate) fn apply(&self, r: RequestBuilder) -> RequestBuilder {
        let r = r.header(reqwest::header::CONTENT_LENGTH, "0");
        match self {
            LeaseAction::Acquire {
                seconds,
                proposed_id,
            } => r
                .header("x-ms-lease-action", "acquire")
                .header("x-ms-lease-duration", seconds.to_string())
                .header("x-ms-proposed-lease-id", proposed_id.as_str()),
            LeaseAction::Renew(id) => r
                .header("x-ms-lease-action", "renew")
                .header("x-ms-lease-id", id.as_str()),
            LeaseAction::Release(id) => r
                .header("x-ms-lease-action", "release")
                .header("x-ms-lease-id", id.as_str()),
        }
    }
}

/// What a lease action answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (acquire), if the service sent one.
    pub id: Option<String>,
    /// The object's ETag (unquoted): lease actions do not change it.
    pub etag: String,
}

impl Lease {
    /// The answer's lease id, with the ETag the caller read from the same headers.
    pub(crate) fn from_headers(headers: &HeaderMap, etag: String) -> Self {
        Lease {
            id: headers
                .get("x-ms-lease-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            etag,
        }
    }
}

/// Where the bytes of an upload come from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'a> {
    Memory(&'a Bytes),
    File(&'a Path),
}

impl Source<'_> {
    /// `len` bytes at `offset`. A file is opened for each chunk, so chunks can be read
    /// concurrently, with one blocking read straight into the body's buffer (tokio's File
    /// would read through a second buffer of its own, doubling the memory of every body).
    pub(crate) async fn chunk(&self, offset: u64, len: usize) -> std::io::Result<Bytes> {
        match self {
            Source::Memory(b) => Ok(b.slice(offset as usize..offset as usize + len)),
            Source::File(path) => {
                let path = path.to_path_buf();
                tokio::task::spawn_blocking(move || {
                    use std::os::unix::fs::FileExt;
                    let mut buf = vec![0u8; len];
                    std::fs::File::open(path)?.read_exact_at(&mut buf, offset)?;
                    Ok(Bytes::from(buf))
                })
                .await
                .map_err(std::io::Error::other)?
            }
        }
    }
}

/// How a [`read_resuming`] failed.
pub(crate) enum ReadFault<E> {
    /// A request failed (the caller's error; a 412 means the object changed meanwhile).
    Request(E),
    /// Writing to the destination failed.
    Io(std::io::Error),
    /// The body kept breaking off: the last reason, after `max_attempts` tries.
    Interrupted(String),
}

/// The headers of one GET of a [`read_resuming`]: the `Range` still wanted, and the ETag
/// the object must still have.
pub(crate) struct ReadRequest {
    range: Option<String>,
    if_match: Option<String>,
}

impl ReadRequest {
    /// The request with these headers.
    pub(crate) fn apply(&self, r: RequestBuilder) -> RequestBuilder {
        let r = match &self.range {
            Some(v) => r.header("range", v.as_str()),
            None => r,
        };
        match &self.if_match {
            Some(v) => r.header("if-match", v.as_str()),
            None => r,
        }
    }
}

/// Streams an object's bytes `start..end` (`end` exclusive, `None`: to the end) into `out`
/// and returns how many were written. `get(request)` sends one GET with the request's
/// headers. A body that breaks off is resumed from the last byte received, pinned to the
/// first answer's ETag (`If-Match`) so an object replaced meanwhile fails the request
/// instead of mixing two versions; `ranged` says whether the first request needs a `Range`
/// at all.
pub(crate) async fn read_resuming<W, E, F, Fut>(
    start: u64,
    end: Option<u64>,
    ranged: bool,
    max_attempts: u32,
    out: &mut W,
    mut get: F,
) -> Result<u64, ReadFault<E>>
where
    W: tokio::io::AsyncWrite + Unpin,
    F: FnMut(ReadRequest) -> Fut,
    Fut: std::future::Future<Output = Result<reqwest::Response, E>>,
{
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut received = 0u64;
    let mut etag: Option<String> = None;
    let mut total: Option<u64> = None;
    let mut resumes = 0u32;
    loop {
        let from = start + received;
        let range = match (ranged || received > 0, end) {
            (false, _) => None,
            (true, Some(end)) => Some(format!("bytes={from}-{}", end - 1)),
            (true, None) => Some(format!("bytes={from}-")),
        };
        let if_match = etag.as_ref().map(|tag| format!("\"{tag}\""));
        let response = get(ReadRequest { range, if_match })
            .await
            .map_err(ReadFault::Request)?;
        if etag.is_none() {
            etag = Some(etag_of(response.headers()));
            total = response.content_length();
        }
        let mut body = response.bytes_stream();
        let mut broken = None;
        while let Some(chunk) = body.next().await {
            match chunk {
                Ok(bytes) => {
                    out.write_all(&bytes).await.map_err(ReadFault::Io)?;
                    received += bytes.len() as u64;
                }
                Err(e) => {
                    // Without the URL: it may carry a SAS.
                    broken = Some(e.without_url().to_string());
                    break;
                }
            }
        }
        match broken {
            None if total.is_none_or(|t| t == received) => {
                out.flush().await.map_err(ReadFault::Io)?;
                return Ok(received);
            }
            reason => {
                resumes += 1;
                if resumes >= max_attempts {
                    return Err(ReadFault::Interrupted(
                        reason.unwrap_or_else(|| "the body ended early".into()),
                    ));
                }
            }
        }
    }
}

/// An ETag as listings show it: no quotes, no weak `W/` prefix.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// The ETag of an answer, normalised; empty when there is none.
pub(crate) fn etag_of(headers: &HeaderMap) -> String {
    headers
        .get(reqwest::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(normalize_etag)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_lose_quotes_and_weakness() {
        assert_eq!(normalize_etag("\"0x8DB\""), "0x8DB");
        assert_eq!(normalize_etag("W/\"0x8DB\""), "0x8DB");
        assert_eq!(normalize_etag("0x8DB"), "0x8DB");
    }
}
