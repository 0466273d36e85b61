//! fabric-remote: mirror a local tree to OneLake, run pytest inside Fabric Spark, and
//! emulate both on loopback.
//!
//! The pipeline, leaf modules first: [`location`] parses where data lives; [`auth`] gets
//! bearer tokens; [`http`] sends requests with one retry policy; [`dfs`] speaks the OneLake
//! DFS API on top of it and [`blob`] the Blob API, sharing [`storage`]'s write conditions
//! and leases; [`sync`] mirrors a tree through either;
//! [`junit`] maps pytest's junit XML to pytest outcomes. Every error type implements
//! [`diagnostic::Diagnostic`] (its kind and its hint); [`secret`] keeps tokens out of every
//! message. The binary (`src/main.rs` + `src/cli/`) wires them to commands; the emulator lives
//! in its own crate (`emulator/`) and shares no code with these clients.
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
pub mod diagnostic;
pub mod dotenv;
pub mod env;
pub mod fabric;
pub mod http;
pub mod junit;
pub mod location;
pub mod run;
pub mod secret;
pub mod storage;
pub mod sync;
pub mod time;
