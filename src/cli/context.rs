//! What every remote command needs from the environment: the remote location (with the
//! endpoint override applied) and a [`Transport`] to it — the DFS client, the Blob client, or
//! both, per `--api` — with credentials. Errors here are configuration errors (exit 2).

use fabric_remote::auth::Credentials;
use fabric_remote::blob::{BlobAuth, BlobClient};
use fabric_remote::dfs::DfsClient;
use fabric_remote::env::{self, Env};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::{Api, RemoteLocation, Service};
use fabric_remote::secret::Secret;
use fabric_remote::sync::Transport;

use super::args::ApiArg;
use super::diagnostics::{Report, ResultExt};

/// Parses `url` as a remote location (a SAS token in its query is split off and returned);
/// `FABRIC_REMOTE_ONELAKE_ENDPOINT` redirects OneLake URLs.
fn location(url: &str, env: &Env) -> Result<(RemoteLocation, Option<Secret>), Report> {
    let (loc, sas) = RemoteLocation::parse_with_sas(url)?;
    let loc = match env.get(env::FABRIC_REMOTE_ONELAKE_ENDPOINT) {
        Some(endpoint) if loc.service() == Service::OneLake => loc
            .with_endpoint(&endpoint)
            .context("FABRIC_REMOTE_ONELAKE_ENDPOINT is not a usable endpoint")?,
        _ => loc,
    };
    Ok((loc, sas))
}

/// The storage clients for one remote location: DFS, Blob, or both.
pub struct Clients {
    pub dfs: Option<DfsClient>,
    pub blob: Option<BlobClient>,
}

/// The remote location `url` and the clients `--api` asks for.
///
/// `auto`: a Blob endpoint (`*.blob.*`, Azurite) gets the Blob client; a DFS endpoint
/// (OneLake, ADLS Gen2, the emulator) gets both — unless the Blob credential is a SAS or an
/// account key, which the DFS client cannot use, in which case only Blob. `dfs` and `blob`
/// force one API.
pub fn clients(url: &str, env: &Env, api: ApiArg) -> Result<(RemoteLocation, Clients), Report> {
    let (loc, sas) = location(url, env)?;
    let dfs_loc = loc.to_api(Api::Dfs);
    let blob_loc = loc.to_api(Api::Blob).unwrap_or_else(|| loc.clone());
    if api == ApiArg::Dfs {
        if dfs_loc.is_none() {
            loc.require_dfs()?;
        }
        if sas.is_some() {
            return Err(Report::usage(
                "a SAS token in the URL works with the Blob API only; drop `--api dfs` (or pass `--api blob`)",
            ));
        }
    }
    let auth = if api == ApiArg::Dfs {
        BlobAuth::Bearer
    } else {
        BlobAuth::from_env(env, &blob_loc, sas)?
    };
    let bearer = matches!(auth, BlobAuth::Bearer);
    let credentials = match Credentials::from_env(env) {
        Ok(c) => c,
        Err(e) if bearer => return Err(e.into()),
        // Never asked for a token: the SAS or the account key authorises every request.
        Err(_) => Credentials::from_token(Secret::new("unused")),
    };
    let http = HttpClient::new(credentials, RetryPolicy::default())?;
    let both = dfs_loc.is_some() && loc.api() == Api::Dfs && bearer;
    let clients = match api {
        ApiArg::Dfs => Clients {
            dfs: Some(DfsClient::new(http)),
            blob: None,
        },
        ApiArg::Blob => Clients {
            dfs: None,
            blob: Some(BlobClient::new(http, auth)),
        },
        ApiArg::Auto if both => Clients {
            dfs: Some(DfsClient::new(http.clone())),
            blob: Some(BlobClient::new(http, auth)),
        },
        ApiArg::Auto => Clients {
            dfs: None,
            blob: Some(BlobClient::new(http, auth)),
        },
    };
    Ok((loc, clients))
}

/// The remote location `url` and the sync [`Transport`] that reaches it (see [`clients`]).
pub fn remote(url: &str, env: &Env, api: ApiArg) -> Result<(RemoteLocation, Transport), Report> {
    let (loc, c) = clients(url, env, api)?;
    let transport = match (c.blob, c.dfs) {
        (Some(blob), Some(dfs)) => Transport::both(blob, dfs),
        (Some(blob), None) => Transport::blob(blob),
        (None, Some(dfs)) => Transport::dfs(dfs),
        (None, None) => unreachable!("clients always returns one client"),
    };
    Ok((loc, transport))
}
