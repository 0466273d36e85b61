//! Blob leases (`PUT ?comp=lease` with `x-ms-lease-action`); the actions and the answer are
//! [`crate::storage`]'s, shared with DFS.

use reqwest::Method;

use super::client::BlobClient;
use super::error::BlobError;
use crate::location::RemoteLocation;
use crate::storage::{Lease, LeaseAction, etag_of};

impl BlobClient {
    /// Carries out `action` on the blob at `loc` (1 request). A lease held by someone else
    /// is an HTTP error with status 409 (`LeaseAlreadyPresent`); a missing blob is 404.
    pub async fn lease(
        &self,
        loc: &RemoteLocation,
        action: &LeaseAction,
    ) -> Result<Lease, BlobError> {
        let url = format!("{}?comp=lease", loc.url());
        let sent = self
            .call(Method::PUT, &url, |r| action.apply(r))
            .await
            .map_err(|e| BlobError::op(action.verb(), loc, e))?;
        let headers = sent.response.headers();
        Ok(Lease::from_headers(headers, etag_of(headers)))
    }
}
