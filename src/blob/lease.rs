//! Blob leases (`PUT ?comp=lease` with `x-ms-lease-action`): the service's own lock on a
//! blob. While a lease is held, writes and deletes of the blob need its id; a lease with a
//! duration (15–60 s) expires by itself unless renewed, so a holder that dies frees it.

use reqwest::Method;
use reqwest::header::CONTENT_LENGTH;

use super::client::{BlobClient, etag_of};
use super::error::BlobError;
use crate::location::RemoteLocation;

/// One lease action.
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

/// What a lease action answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease id (acquire), if the service sent one.
    pub id: Option<String>,
    /// The blob's ETag (unquoted): lease actions do not change it.
    pub etag: String,
}

impl BlobClient {
    /// Carries out `action` on the blob at `loc` (1 request). A lease held by someone else
    /// is an HTTP error with status 409 (`LeaseAlreadyPresent`); a missing blob is 404.
    pub async fn lease(
        &self,
        loc: &RemoteLocation,
        action: &LeaseAction,
    ) -> Result<Lease, BlobError> {
        let (name, op) = match action {
            LeaseAction::Acquire { .. } => ("acquire", "lease"),
            LeaseAction::Renew(_) => ("renew", "renew the lease on"),
            LeaseAction::Release(_) => ("release", "release the lease on"),
        };
        let url = format!("{}?comp=lease", loc.url());
        let sent = self
            .call(Method::PUT, &url, |r| {
                let r = r
                    .header("x-ms-lease-action", name)
                    .header(CONTENT_LENGTH, "0");
                match action {
                    LeaseAction::Acquire {
                        seconds,
                        proposed_id,
                    } => r
                        .header("x-ms-lease-duration", seconds.to_string())
                        .header("x-ms-proposed-lease-id", proposed_id.as_str()),
                    LeaseAction::Renew(id) | LeaseAction::Release(id) => {
                        r.header("x-ms-lease-id", id.as_str())
                    }
                }
            })
            .await
            .map_err(|e| BlobError::op(op, loc, e))?;
        let headers = sent.response.headers();
        Ok(Lease {
            id: headers
                .get("x-ms-lease-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            etag: etag_of(headers),
        })
    }
}
