//! The Azure Blob client: thin, on reqwest, one method per REST operation, beside
//! [`crate::dfs`] and shaped like it.
//!
//! Knows blobs, not trees: nothing here knows about sync, manifests or Fabric. A small body is
//! one Put Blob request; a large one is staged as blocks uploaded in parallel (bounded) and
//! committed with one Put Block List, so the old blob stays whole until the new one is
//! complete. Every body carries `Content-MD5`, which the service verifies. Listings are flat
//! and stream pages by `marker`; deletes of many blobs go through Blob Batch where the
//! service supports it. Requests go through [`crate::http`] for retries, authorised by a
//! [`BlobAuth`]: a bearer token, a SAS token, or a Shared Key signature.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_remote::blob::{BlobAuth, BlobClient, Metadata};
//! use fabric_remote::{auth::Credentials, http::{HttpClient, RetryPolicy}};
//! use fabric_remote::{location::RemoteLocation, secret::Secret};
//! // Azurite, with its well-known account key.
//! let http = HttpClient::new(Credentials::from_token(Secret::new("unused")), RetryPolicy::default())?;
//! let blob = BlobClient::new(http, BlobAuth::azurite());
//! let dir = RemoteLocation::parse("http://127.0.0.1:10000/devstoreaccount1/data/proj")?;
//! blob.create_container(&dir).await?;
//! blob.upload_bytes(&dir.join("hello.txt")?, &bytes::Bytes::from_static(b"hi"), &Metadata::new()).await?;
//! # Ok(()) }
//! ```

mod batch;
mod client;
mod credential;
mod error;
mod lease;
mod list;
pub mod model;

pub use batch::MAX_BATCH;
pub use client::{
    BlobClient, DEFAULT_BLOCK_CONCURRENCY, DEFAULT_BLOCK_SIZE, DEFAULT_SINGLE_PUT_LIMIT,
    MAX_BLOCK_SIZE, MAX_BLOCKS, Uploaded, X_MS_VERSION,
};
pub use credential::{AZURITE_KEY, BlobAuth, Sas, SharedKey};
pub use error::BlobError;
pub use list::{MAX_RESULTS, Page};
pub use model::{BlobEntry, BlobProperties, Metadata};

pub use crate::storage::{Conditions, Lease, LeaseAction};
