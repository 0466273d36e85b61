//! The OneLake / ADLS Gen2 DFS client: thin, on reqwest, one method per REST operation.
//!
//! Knows paths, not trees: nothing here knows about sync, manifests or Fabric. Uploads use
//! the 2-request path (create, then append with `flush=true`), listings stream pages, deletes
//! follow continuation. Requests go through [`crate::http`] for tokens and retries.

mod client;
mod error;
mod lease;
mod list;
pub mod model;

pub use client::{
    DEFAULT_CHUNK_CONCURRENCY, DEFAULT_CHUNK_SIZE, DfsClient, Uploaded, X_MS_VERSION,
};
pub use error::{DfsError, Missing};
pub use list::{MAX_RESULTS, Page};
pub use model::{PathEntry, Properties};

pub use crate::storage::{Conditions, Lease, LeaseAction};
