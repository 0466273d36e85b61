//! Deleting many blobs: Blob Batch (`POST <container>?restype=container&comp=batch`, a
//! `multipart/mixed` body of up to 256 Delete Blob subrequests, each authorised on its own)
//! where the service supports it, and single Delete Blob requests in parallel where it does
//! not.
//!
//! A service that refuses the batch itself (400, 404, 405 or 501 — OneLake answers 400
//! "Either WorkspaceId or ArtifactId are missing in the request" — or a hierarchical
//! namespace's 409 `FeatureNotYetSupportedForHierarchicalNamespaceAccounts`) is remembered as not
//! supporting batches, and that client deletes one by one from then on. Any other failure of
//! a batch, and any subrequest that failed with a retryable status, is done again as a
//! single delete, so each location gets its own answer. Only the locations asked for are
//! ever named in a body: a batch never widens what is deleted.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use reqwest::Method;
use reqwest::header::{CONTENT_LENGTH, HeaderValue};

use super::client::{BlobClient, refuse_protected};
use super::credential::BlobAuth;
use super::error::BlobError;
use crate::auth::STORAGE_SCOPE;
use crate::http::{HttpError, SignRequest, StatusError};
use crate::location::RemoteLocation;

/// Most subrequests one batch may carry.
pub const MAX_BATCH: usize = 256;
/// Single deletes in flight at once, where batches are not available.
const SINGLE_CONCURRENCY: usize = 16;
/// Batches in flight at once.
const BATCH_CONCURRENCY: usize = 4;

pub(super) const UNKNOWN: u8 = 0;
const SUPPORTED: u8 = 1;
const UNSUPPORTED: u8 = 2;

/// What one subrequest of a batch did.
#[derive(Debug)]
enum Sub {
    Deleted,
    Missing,
    /// Failed in a way worth one more try on its own (throttled, server error, no answer).
    Again,
    Failed(Box<StatusError>),
}

impl BlobClient {
    /// Deletes every location in `locs`; one result per location, in the same order: true
    /// if deleted, false if nothing was there. Uses Blob Batch (one request per ≤256 blobs of
    /// a container) where the service allows it, single deletes otherwise.
    pub async fn delete_many(&self, locs: &[RemoteLocation]) -> Vec<Result<bool, BlobError>> {
        let mut results: Vec<Option<Result<bool, BlobError>>> =
            (0..locs.len()).map(|_| None).collect();
        let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, loc) in locs.iter().enumerate() {
            match refuse_protected(loc) {
                Ok(()) => groups.entry(loc.filesystem_url()).or_default().push(i),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        let chunks: Vec<Vec<usize>> = groups
            .into_values()
            .flat_map(|g| {
                g.chunks(MAX_BATCH)
                    .map(<[usize]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut done = futures::stream::iter(chunks)
            .map(|chunk| async move {
                let outcome = self.delete_chunk(locs, &chunk).await;
                chunk.into_iter().zip(outcome).collect::<Vec<_>>()
            })
            .buffer_unordered(BATCH_CONCURRENCY);
        while let Some(pairs) = done.next().await {
            for (i, r) in pairs {
                results[i] = Some(r);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| unreachable!("every location is refused or chunked")))
            .collect()
    }

    /// Whether this client has seen Blob Batch work (`Some(true)`), be refused
    /// (`Some(false)`), or not tried yet (`None`).
    pub fn batch_supported(&self) -> Option<bool> {
        match self.batch.load(Ordering::Relaxed) {
            SUPPORTED => Some(true),
            UNSUPPORTED => Some(false),
            _ => None,
        }
    }

    async fn delete_chunk(
        &self,
        locs: &[RemoteLocation],
        idx: &[usize],
    ) -> Vec<Result<bool, BlobError>> {
        let mut results: Vec<Option<Result<bool, BlobError>>> =
            (0..idx.len()).map(|_| None).collect();
        // Positions (in `idx`) still to delete one by one.
        let mut again: Vec<usize> = (0..idx.len()).collect();
        if idx.len() > 1 && self.batch.load(Ordering::Relaxed) != UNSUPPORTED {
            match self.delete_batch(locs, idx).await {
                Ok(subs) => {
                    self.batch.store(SUPPORTED, Ordering::Relaxed);
                    again.clear();
                    for (n, sub) in subs.into_iter().enumerate() {
                        let loc = &locs[idx[n]];
                        match sub {
                            Sub::Deleted => results[n] = Some(Ok(true)),
                            Sub::Missing => results[n] = Some(Ok(false)),
                            Sub::Failed(s) => {
                                results[n] =
                                    Some(Err(BlobError::op("delete", loc, HttpError::Status(s))))
                            }
                            Sub::Again => again.push(n),
                        }
                    }
                }
                Err(e) if is_unsupported(&e) => {
                    self.batch.store(UNSUPPORTED, Ordering::Relaxed);
                }
                Err(_) => {}
            }
        }
        let singles: Vec<Result<bool, BlobError>> = futures::stream::iter(&again)
            .map(|&n| self.delete(&locs[idx[n]]))
            .buffered(SINGLE_CONCURRENCY)
            .collect()
            .await;
        for (n, r) in again.into_iter().zip(singles) {
            results[n] = Some(r);
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| unreachable!("every position is batched or retried")))
            .collect()
    }

    /// One Blob Batch request deleting `locs[idx]`, all in one container.
    async fn delete_batch(
        &self,
        locs: &[RemoteLocation],
        idx: &[usize],
    ) -> Result<Vec<Sub>, HttpError> {
        let boundary = format!("batch_{}", uuid_like());
        let mut body = String::with_capacity(idx.len() * 400);
        let bearer = match &self.auth {
            BlobAuth::Bearer => Some(self.http.credentials().token(STORAGE_SCOPE).await?),
            _ => None,
        };
        for (n, &i) in idx.iter().enumerate() {
            let Ok(url) = reqwest::Url::parse(&locs[i].url()) else {
                continue;
            };
            let mut sub = reqwest::Request::new(Method::DELETE, url);
            sub.headers_mut()
                .insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
            match &self.auth {
                BlobAuth::Bearer => {
                    if let Some(token) = &bearer
                        && let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                    {
                        sub.headers_mut().insert("authorization", v);
                    }
                }
                BlobAuth::Sas(sas) => sas.sign(&mut sub),
                BlobAuth::SharedKey(key) => key.sign(&mut sub),
            }
            body.push_str(&format!(
                "--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: {n}\r\n\r\n"
            ));
            let target = match sub.url().query() {
                Some(q) => format!("{}?{q}", sub.url().path()),
                None => sub.url().path().to_string(),
            };
            body.push_str(&format!("DELETE {target} HTTP/1.1\r\n"));
            for (k, v) in sub.headers() {
                body.push_str(k.as_str());
                body.push_str(": ");
                body.push_str(v.to_str().unwrap_or(""));
                body.push_str("\r\n");
            }
            body.push_str("\r\n");
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let body = bytes::Bytes::from(body);
        let url = format!(
            "{}?restype=container&comp=batch",
            locs[idx[0]].filesystem_url()
        );
        let content_type = format!("multipart/mixed; boundary={boundary}");
        let sent = self
            .call(Method::POST, &url, |r| {
                r.header(CONTENT_LENGTH, body.len().to_string())
                    .header("content-type", &content_type)
                    .body(body.clone())
            })
            .await?;
        let attempts = sent.attempts;
        let response_type = sent
            .response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let text = sent
            .response
            .bytes()
            .await
            .map_err(|e| HttpError::Transport {
                method: "POST".into(),
                url: crate::http::error::strip_query(&url).to_string(),
                message: e.without_url().to_string(),
                cause: crate::http::TransportCause::Broken,
                attempts,
            })?;
        let parts = parse_batch_response(&response_type, &String::from_utf8_lossy(&text));
        let mut subs: Vec<Option<Sub>> = (0..idx.len()).map(|_| None).collect();
        for part in parts {
            let Some(n) = part.content_id.filter(|n| *n < idx.len()) else {
                // An answer for the batch as a whole (Azurite sends one part without an id
                // when it cannot read the batch): nothing was done.
                return Err(HttpError::Status(Box::new(StatusError {
                    method: "POST".into(),
                    url: crate::http::error::strip_query(&url).to_string(),
                    status: part.status,
                    code: part.code,
                    message: None,
                    request_id: None,
                    attempts,
                    retry_after: None,
                })));
            };
            let loc = &locs[idx[n]];
            subs[n] = Some(match part.status {
                200..=299 => Sub::Deleted,
                // A retried batch finds what its lost first answer deleted.
                404 if attempts > 1 => Sub::Deleted,
                404 => Sub::Missing,
                408 | 429 | 500 | 502 | 503 | 504 => Sub::Again,
                status => Sub::Failed(Box::new(StatusError {
                    method: "DELETE".into(),
                    url: loc.url(),
                    status,
                    code: part.code,
                    message: part.message,
                    request_id: None,
                    attempts,
                    retry_after: None,
                })),
            });
        }
        // A subrequest the answer does not mention is tried again on its own.
        Ok(subs.into_iter().map(|s| s.unwrap_or(Sub::Again)).collect())
    }
}

/// Answers that mean "this service does not do batches here": OneLake's 400, and the 409
/// `FeatureNotYetSupportedForHierarchicalNamespaceAccounts` of an ADLS Gen2 account.
fn is_unsupported(e: &HttpError) -> bool {
    match e.status() {
        Some(400 | 404 | 405 | 501) => true,
        Some(409) => e.code().is_some_and(|c| {
            c.eq_ignore_ascii_case("FeatureNotYetSupportedForHierarchicalNamespaceAccounts")
        }),
        _ => false,
    }
}

/// One part of a batch answer.
#[derive(Debug, PartialEq, Eq)]
struct SubResponse {
    content_id: Option<usize>,
    status: u16,
    code: Option<String>,
    message: Option<String>,
}

/// Splits a `multipart/mixed` batch answer into its parts. The boundary comes from the
/// `Content-Type` (`batchresponse_…` on Azure; Azurite reuses the request's), else from the
/// first `--` line. Lines may end in CRLF or LF; unreadable parts are skipped.
fn parse_batch_response(content_type: &str, body: &str) -> Vec<SubResponse> {
    let boundary = content_type
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("boundary="))
        .map(|b| b.trim_matches('"').to_string())
        .next()
        .or_else(|| {
            body.lines()
                .map(str::trim)
                .find(|l| l.starts_with("--"))
                .map(|l| l.trim_start_matches("--").to_string())
        });
    let Some(boundary) = boundary.filter(|b| !b.is_empty()) else {
        return Vec::new();
    };
    let delimiter = format!("--{boundary}");
    body.split(&delimiter)
        .skip(1)
        .filter(|p| !p.starts_with("--"))
        .filter_map(parse_part)
        .collect()
}

fn parse_part(part: &str) -> Option<SubResponse> {
    let mut lines = part.split('\n').map(|l| l.trim_end_matches('\r'));
    // Part headers, up to a blank line (the first line is the rest of the delimiter line).
    let mut content_id = None;
    for line in lines.by_ref().skip(1) {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("content-id")
        {
            content_id = v.trim().parse().ok();
        }
    }
    // The embedded response: status line, headers, blank line, body.
    let status_line = lines.by_ref().find(|l| !l.is_empty())?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut code = None;
    for line in lines.by_ref() {
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.trim().eq_ignore_ascii_case("x-ms-error-code")
        {
            code = Some(v.trim().to_string()).filter(|c| !c.is_empty());
        }
    }
    let rest: Vec<&str> = lines.collect();
    let message = rest
        .join("\n")
        .split("<Message>")
        .nth(1)
        .and_then(|m| m.split(['<', '\n']).next())
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty());
    Some(SubResponse {
        content_id,
        status,
        code,
        message,
    })
}

/// A random-enough boundary (only needs to be absent from the body).
fn uuid_like() -> String {
    let a = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{:032x}", a ^ (u128::from(std::process::id()) << 96))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer shape the Blob Batch documentation shows: its own boundary, CRLF, one
    /// part per subrequest with `Content-ID`, an error part with `x-ms-error-code` and body.
    const ANSWER: &str = "--batchresponse_66925647-d0cb-4109-b6d3-28efe3e1e5ed\r\n\
Content-Type: application/http\r\n\
Content-ID: 0\r\n\
\r\n\
HTTP/1.1 202 Accepted\r\n\
x-ms-delete-type-permanent: true\r\n\
x-ms-request-id: 778fdc83-801e-0000-62ff-0334671e284f\r\n\
x-ms-version: 2018-11-09\r\n\
\r\n\
--batchresponse_66925647-d0cb-4109-b6d3-28efe3e1e5ed\r\n\
Content-Type: application/http\r\n\
Content-ID: 1\r\n\
\r\n\
HTTP/1.1 404 The specified blob does not exist.\r\n\
x-ms-error-code: BlobNotFound\r\n\
x-ms-request-id: 778fdc83-801e-0000-62ff-0334671e2851\r\n\
Content-Length: 216\r\n\
Content-Type: application/xml\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<Error><Code>BlobNotFound</Code><Message>The specified blob does not exist.\r\n\
RequestId:778fdc83-801e-0000-62ff-0334671e2851\r\n\
Time:2018-06-14T16:46:54.6040685Z</Message></Error>\r\n\
--batchresponse_66925647-d0cb-4109-b6d3-28efe3e1e5ed\r\n\
Content-Type: application/http\r\n\
Content-ID: 2\r\n\
\r\n\
HTTP/1.1 503 Server Busy\r\n\
x-ms-error-code: ServerBusy\r\n\
\r\n\
--batchresponse_66925647-d0cb-4109-b6d3-28efe3e1e5ed--";

    #[test]
    fn documented_answer() {
        let parts = parse_batch_response(
            "multipart/mixed; boundary=batchresponse_66925647-d0cb-4109-b6d3-28efe3e1e5ed",
            ANSWER,
        );
        assert_eq!(parts.len(), 3);
        assert_eq!((parts[0].content_id, parts[0].status), (Some(0), 202));
        assert_eq!(parts[1].status, 404);
        assert_eq!(parts[1].code.as_deref(), Some("BlobNotFound"));
        assert_eq!(
            parts[1].message.as_deref(),
            Some("The specified blob does not exist.")
        );
        assert_eq!((parts[2].content_id, parts[2].status), (Some(2), 503));
        // Without a Content-Type the boundary is found in the body; LF line ends work too.
        let lf = ANSWER.replace("\r\n", "\n");
        assert_eq!(parse_batch_response("", &lf), parts);
    }

    #[test]
    fn whole_batch_error_has_no_content_id() {
        let body = "--b\r\nContent-Type: application/http\r\n\r\nHTTP/1.1 400 One of the request inputs is not valid.\r\nx-ms-error-code: InvalidInput\r\n\r\n--b--";
        let parts = parse_batch_response("multipart/mixed; boundary=b", body);
        assert_eq!(
            parts,
            vec![SubResponse {
                content_id: None,
                status: 400,
                code: Some("InvalidInput".into()),
                message: None
            }]
        );
        assert!(parse_batch_response("text/plain", "nonsense").is_empty());
    }
}
