//! fabric-remote: mirror a local tree to OneLake, run pytest inside Fabric Spark, and
//! emulate both on loopback.
//!
//! The pipeline, leaf modules first: [`location`] parses where data lives; [`auth`] gets
//! bearer tokens; [`http`] sends requests with one retry policy; [`dfs`] speaks the OneLake
//! DFS API on top of it, [`blob`] the Blob API; [`junit`] maps pytest's junit XML to pytest outcomes. The binary
//! (`src/main.rs` + `src/cli/`) wires them to commands; the emulator lives in its own crate
//! (`emulator/`) and shares no code with these clients.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use fabric_remote::{auth::Credentials, dfs::DfsClient, http::{HttpClient, RetryPolicy}};
//! use fabric_remote::{location::RemoteLocation, secret::Secret};
//! let creds = Credentials::from_token(Secret::new("token"));
//! let dfs = DfsClient::new(HttpClient::new(creds, RetryPolicy::default())?);
//! let dir = RemoteLocation::parse("http://127.0.0.1:7000/My Workspace/lake.Lakehouse/Files/proj")?;
//! dfs.upload_bytes(&dir.join("hello.txt")?, &bytes::Bytes::from_static(b"hi")).await?;
//! # Ok(()) }
//! ```
#![deny(clippy::print_stdout, clippy::print_stderr, clippy::exit)]

pub mod auth;
pub mod blob;
pub mod dfs;
pub mod env;
pub mod fabric;
pub mod http;
pub mod junit;
pub mod location;
pub mod secret;
pub mod sync;

/// A `hint:` line for an error in the chain, when its type knows what the user should do.
pub fn hint_for(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    if let Some(e) = err.downcast_ref::<dfs::DfsError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<blob::BlobError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<http::HttpError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<sync::SyncError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<fabric::FabricError>() {
        return e.hint();
    }
    if let Some(e) = err.downcast_ref::<auth::AuthError>() {
        return e.hint();
    }
    None
}
