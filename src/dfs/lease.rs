//! Path leases (`POST` with `x-ms-lease-action`); the actions and the answer are
//! [`crate::storage`]'s, shared with Blob.

use reqwest::Method;

use super::client::{DfsClient, X_MS_VERSION};
use super::error::DfsError;
use crate::auth::STORAGE_SCOPE;
use crate::location::RemoteLocation;
use crate::storage::{Lease, LeaseAction, etag_of};

impl DfsClient {
    /// Carries out `action` on the path at `loc` (1 request). A lease held by someone
    /// else is an HTTP error with status 409 (`LeaseAlreadyPresent`).
    pub async fn lease(
        &self,
        loc: &RemoteLocation,
        action: &LeaseAction,
    ) -> Result<Lease, DfsError> {
        let sent = self
            .http()
            .send(Method::POST, &loc.url(), STORAGE_SCOPE, |r| {
                action.apply(r.header("x-ms-version", X_MS_VERSION))
            })
            .await
            .map_err(|e| DfsError::op(action.verb(), loc, e))?;
        let headers = sent.response.headers();
        Ok(Lease::from_headers(headers, etag_of(headers)))
    }
}
