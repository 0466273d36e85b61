//! What every remote command needs from the environment: the remote location (with the
//! endpoint override applied) and a DFS client with credentials. Errors here are
//! configuration errors (exit 2).

use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::env::{self, Env};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::{RemoteLocation, Service};

use super::diagnostics::{Report, ResultExt};

/// Parses `url` as a remote location; `FABRIC_REMOTE_ONELAKE_ENDPOINT` redirects OneLake URLs.
/// The commands speak DFS only for now, so Blob endpoints are refused with the DFS URL.
pub fn remote_location(url: &str, env: &Env) -> Result<RemoteLocation, Report> {
    let loc = RemoteLocation::parse(url)?;
    loc.require_dfs()?;
    match env.get(env::FABRIC_REMOTE_ONELAKE_ENDPOINT) {
        Some(endpoint) if loc.service() == Service::OneLake => loc
            .with_endpoint(&endpoint)
            .context("FABRIC_REMOTE_ONELAKE_ENDPOINT is not a usable endpoint"),
        _ => Ok(loc),
    }
}

/// A DFS client authenticated by the credential chain of [`fabric_remote::auth`].
pub fn dfs_client(env: &Env) -> Result<DfsClient, Report> {
    let credentials = Credentials::from_env(env)?;
    let http = HttpClient::new(credentials, RetryPolicy::default())?;
    Ok(DfsClient::new(http))
}
