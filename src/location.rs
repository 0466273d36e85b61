//! Where data lives: a local path, or a remote directory on a DFS or Blob endpoint.
//!
//! A [`RemoteLocation`] is an endpoint (`https://onelake.dfs.fabric.microsoft.com`, an ADLS
//! Gen2 account, a storage account's Blob endpoint, or any `http(s)` endpoint such as the
//! emulator or Azurite), a *filesystem* (the OneLake workspace or the container) and a path of
//! decoded segments, plus the [`Api`] its host speaks. Accepted forms are listed in
//! docs/commands.md ("Remote URLs"), plus the Blob hosts (`onelake.blob.fabric.microsoft.com`,
//! `<account>.blob.core.windows.net`) and Azurite's path-style URLs
//! (`http://127.0.0.1:10000/devstoreaccount1/<container>/…`, recognised by its well-known
//! account name). Parsing is literal after the host: `%XX` escapes are decoded, a `%` that is
//! not followed by two hex digits stays a `%`, `+` is a plus (never a space), and `?` and `#`
//! are ordinary characters of names (there are no query strings in a location). The one
//! exception is a SAS token (`?…&sig=…`), which [`RemoteLocation::parse_with_sas`] splits off
//! into a [`Secret`] and [`RemoteLocation::parse`] refuses; a location itself never holds a
//! secret. `.` and `..` segments are refused here, before any request can be built. On the
//! wire every segment is percent-encoded on its own, so every name round-trips.
//!
//! This module does no I/O and knows nothing of requests beyond building their URLs.

use std::fmt;
use std::path::PathBuf;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::secret::Secret;

/// Bytes left as they are in a path segment: RFC 3986 unreserved characters only.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Bytes left as they are in a query value (a path with `/` separators).
const QUERY_PATH: &AsciiSet = &SEGMENT.remove(b'/');

/// The global OneLake DFS host.
pub const ONELAKE_DFS_HOST: &str = "onelake.dfs.fabric.microsoft.com";
/// The global OneLake Blob host.
pub const ONELAKE_BLOB_HOST: &str = "onelake.blob.fabric.microsoft.com";
/// Azurite's well-known account; a first path segment of this name marks a path-style
/// (`http://host:port/<account>/<container>/…`) Blob URL.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";

/// Percent-encodes `value` for use as a query parameter value (continuation tokens,
/// `directory=` paths keep their `/`).
pub fn encode_query_value(value: &str, keep_slash: bool) -> String {
    let set = if keep_slash { QUERY_PATH } else { SEGMENT };
    utf8_percent_encode(value, set).to_string()
}

/// A location given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    Remote(RemoteLocation),
}

impl Location {
    /// Anything with `scheme://` is remote; everything else is a local path.
    pub fn parse(input: &str) -> Result<Location, LocationError> {
        if input.contains("://") {
            RemoteLocation::parse(input).map(Location::Remote)
        } else if input.is_empty() {
            Err(LocationError::Empty)
        } else {
            Ok(Location::Local(PathBuf::from(input)))
        }
    }
}

/// Which service a remote location belongs to; it decides the protected folders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `*onelake.dfs.fabric.microsoft.com`: filesystem = workspace, first segment = item.
    OneLake,
    /// `<account>.dfs.core.windows.net` (and sovereign clouds): filesystem = container.
    AdlsGen2,
    /// Any other http(s) endpoint speaking the DFS API (the emulator, a proxy). Treated with
    /// OneLake's protections, since the emulator is OneLake-shaped.
    Custom,
    /// `<account>.blob.core.windows.net` (and sovereign clouds), or Azurite's path-style
    /// `…/devstoreaccount1/<container>`: a storage account's Blob endpoint, filesystem =
    /// container. Only the container root is protected.
    BlobAccount,
}

/// Which REST API a location's host speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// ADLS Gen2 / OneLake DFS (`resource=file`, `action=append`, JSON listings).
    Dfs,
    /// Blob (`Put Blob`, `Put Block List`, XML listings).
    Blob,
}

/// A remote directory or file: endpoint + filesystem + decoded path segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RemoteLocation {
    scheme: String,
    authority: String,
    service: ServiceKey,
    api: Api,
    /// The account of a path-style URL (Azurite), which precedes the filesystem in the path.
    path_account: Option<String>,
    filesystem: String,
    segments: Vec<String>,
}

// `Service` as a hashable private copy (keeps `Service` free of derive noise for users).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ServiceKey {
    OneLake,
    AdlsGen2,
    Custom,
    BlobAccount,
}

impl RemoteLocation {
    /// Parses one of the remote forms listed in docs/commands.md. A URL carrying a SAS token
    /// is refused (use [`RemoteLocation::parse_with_sas`] where a SAS can be used).
    pub fn parse(input: &str) -> Result<RemoteLocation, LocationError> {
        match split_sas(input.trim()) {
            (bare, Some(_)) => Err(LocationError::SasInUrl(bare.to_string())),
            (bare, None) => Self::parse_bare(bare),
        }
    }

    /// [`RemoteLocation::parse`], with a SAS token (`?sv=…&sig=…`) split off the URL and
    /// returned as a [`Secret`]. Errors never show the token.
    pub fn parse_with_sas(input: &str) -> Result<(RemoteLocation, Option<Secret>), LocationError> {
        let (bare, sas) = split_sas(input.trim());
        Ok((Self::parse_bare(bare)?, sas.map(Secret::new)))
    }

    fn parse_bare(input: &str) -> Result<RemoteLocation, LocationError> {
        let (scheme, rest) = input
            .split_once("://")
            .ok_or_else(|| LocationError::NotAUrl(input.to_string()))?;
        let scheme = scheme.to_ascii_lowercase();
        let (authority_part, path_part) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (wire_scheme, filesystem_from_user, authority) = match scheme.as_str() {
            "https" | "http" => (scheme.clone(), None, authority_part.to_string()),
            "abfss" | "abfs" => {
                let (fs, host) = authority_part
                    .split_once('@')
                    .ok_or_else(|| LocationError::AbfssWithoutFilesystem(input.to_string()))?;
                if fs.is_empty() {
                    return Err(LocationError::AbfssWithoutFilesystem(input.to_string()));
                }
                let wire = if scheme == "abfss" { "https" } else { "http" };
                (wire.to_string(), Some(decode(fs)?), host.to_string())
            }
            other => {
                return Err(LocationError::UnsupportedScheme {
                    scheme: other.to_string(),
                    input: input.to_string(),
                });
            }
        };
        let authority = authority.to_ascii_lowercase();
        let bad_brackets = authority.starts_with('[') != authority.contains(']');
        if authority.is_empty() || bad_brackets || authority.starts_with(':') {
            return Err(LocationError::NoHost(input.to_string()));
        }
        let mut segments = Vec::new();
        for raw in path_part.split('/') {
            if raw.is_empty() {
                continue;
            }
            let seg = decode(raw)?;
            check_segment(&seg, input)?;
            segments.push(seg);
        }
        let (service, api) = classify_host(&authority, input)?;
        let (service, api, path_account) = match segments.first() {
            Some(first)
                if service == ServiceKey::Custom
                    && filesystem_from_user.is_none()
                    && first == AZURITE_ACCOUNT =>
            {
                (ServiceKey::BlobAccount, Api::Blob, Some(segments.remove(0)))
            }
            _ => (service, api, None),
        };
        let filesystem = match filesystem_from_user {
            Some(fs) => fs,
            None => {
                if segments.is_empty() {
                    return Err(LocationError::NoFilesystem(input.to_string()));
                }
                segments.remove(0)
            }
        };
        check_segment(&filesystem, input)?;
        if service == ServiceKey::OneLake && segments.is_empty() {
            return Err(LocationError::NoItem(input.to_string()));
        }
        Ok(RemoteLocation {
            scheme: wire_scheme,
            authority,
            service,
            api,
            path_account,
            filesystem,
            segments,
        })
    }

    pub fn service(&self) -> Service {
        match self.service {
            ServiceKey::OneLake => Service::OneLake,
            ServiceKey::AdlsGen2 => Service::AdlsGen2,
            ServiceKey::Custom => Service::Custom,
            ServiceKey::BlobAccount => Service::BlobAccount,
        }
    }

    /// The API this location's host speaks.
    pub fn api(&self) -> Api {
        self.api
    }

    /// The storage account, where the URL names one: the path-style account (Azurite), the
    /// first label of an Azure Storage host, or `onelake`. `None` for other endpoints.
    pub fn account(&self) -> Option<&str> {
        if let Some(account) = &self.path_account {
            return Some(account);
        }
        match self.service {
            ServiceKey::OneLake => Some("onelake"),
            ServiceKey::AdlsGen2 | ServiceKey::BlobAccount => {
                host_of(&self.authority).split('.').next()
            }
            ServiceKey::Custom => None,
        }
    }

    /// The same location on the endpoint that speaks `api`: OneLake's and Azure Storage's
    /// `.dfs.` and `.blob.` hosts are swapped; other endpoints (the emulator) are assumed to
    /// serve both. `None` when there is no such endpoint (Azurite has no DFS).
    pub fn to_api(&self, api: Api) -> Option<RemoteLocation> {
        if api == self.api {
            return Some(self.clone());
        }
        if api == Api::Dfs && self.path_account.is_some() {
            return None;
        }
        let (from, to) = match api {
            Api::Dfs => (".blob.", ".dfs."),
            Api::Blob => (".dfs.", ".blob."),
        };
        let mut out = self.clone();
        out.api = api;
        if self.service != ServiceKey::Custom {
            out.authority = self.authority.replacen(from, to, 1);
        }
        if self.service == ServiceKey::BlobAccount {
            out.service = ServiceKey::AdlsGen2;
        }
        Some(out)
    }

    /// Refuses a Blob location where only the DFS API is spoken, suggesting the DFS URL.
    pub fn require_dfs(&self) -> Result<(), LocationError> {
        if self.api == Api::Dfs {
            return Ok(());
        }
        match self.to_api(Api::Dfs) {
            Some(dfs) => Err(LocationError::BlobEndpoint {
                input: self.to_string(),
                suggestion: dfs.to_string(),
            }),
            None => Err(LocationError::BlobOnly(self.to_string())),
        }
    }

    /// `scheme://host[:port]`, without a trailing slash.
    pub fn endpoint(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }

    /// The workspace (OneLake) or container (ADLS), decoded.
    pub fn filesystem(&self) -> &str {
        &self.filesystem
    }

    /// The decoded path segments below the filesystem.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The path below the filesystem, decoded, `/`-separated, no leading slash (`""` at the root).
    pub fn path(&self) -> String {
        self.segments.join("/")
    }

    /// The encoded URL of the filesystem (for listings); the container's URL on Blob.
    pub fn filesystem_url(&self) -> String {
        let mut url = self.endpoint();
        if let Some(account) = &self.path_account {
            url.push('/');
            url.extend(utf8_percent_encode(account, SEGMENT));
        }
        url.push('/');
        url.extend(utf8_percent_encode(&self.filesystem, SEGMENT));
        url
    }

    /// The encoded URL of this path.
    pub fn url(&self) -> String {
        let mut url = self.filesystem_url();
        for seg in &self.segments {
            url.push('/');
            url.extend(utf8_percent_encode(seg, SEGMENT));
        }
        url
    }

    /// The location `rel` below this one. `rel` is a `/`-separated relative path of raw names
    /// (not percent-encoded); `.`, `..` and empty names are refused.
    pub fn join(&self, rel: &str) -> Result<RemoteLocation, LocationError> {
        let mut out = self.clone();
        for seg in rel.split('/') {
            if seg.is_empty() {
                continue;
            }
            check_segment(seg, rel)?;
            out.segments.push(seg.to_string());
        }
        Ok(out)
    }

    /// A OneLake item folder: `workspace` and `item` are raw names (`My Workspace`,
    /// `lake.Lakehouse`) or GUIDs, addressed on the public OneLake endpoint, or on `endpoint`
    /// when given (`FABRIC_REMOTE_ONELAKE_ENDPOINT`: the emulator, a sovereign cloud).
    pub fn onelake_item(
        endpoint: Option<&str>,
        workspace: &str,
        item: &str,
    ) -> Result<RemoteLocation, LocationError> {
        let input = format!("{workspace}/{item}");
        if workspace.is_empty() {
            return Err(LocationError::NoFilesystem(input));
        }
        if item.is_empty() {
            return Err(LocationError::NoItem(input));
        }
        check_segment(workspace, &input)?;
        check_segment(item, &input)?;
        let loc = RemoteLocation {
            scheme: "https".into(),
            authority: ONELAKE_DFS_HOST.into(),
            service: ServiceKey::OneLake,
            api: Api::Dfs,
            path_account: None,
            filesystem: workspace.into(),
            segments: vec![item.into()],
        };
        match endpoint {
            Some(e) => loc.with_endpoint(e),
            None => Ok(loc),
        }
    }

    /// The same filesystem and path on another endpoint (`FABRIC_REMOTE_ONELAKE_ENDPOINT`,
    /// the emulator). `endpoint` is `http(s)://host[:port]`.
    pub fn with_endpoint(&self, endpoint: &str) -> Result<RemoteLocation, LocationError> {
        let endpoint = endpoint.trim().trim_end_matches('/');
        let (scheme, authority) = endpoint
            .split_once("://")
            .ok_or_else(|| LocationError::NotAUrl(endpoint.to_string()))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(LocationError::UnsupportedScheme {
                scheme,
                input: endpoint.to_string(),
            });
        }
        if authority.is_empty() || authority.contains('/') {
            return Err(LocationError::NoHost(endpoint.to_string()));
        }
        let mut out = self.clone();
        out.scheme = scheme;
        out.authority = authority.to_ascii_lowercase();
        Ok(out)
    }

    /// True for paths the service will never let us create or delete: the filesystem root,
    /// and on OneLake (and OneLake-shaped endpoints) the item folder and its first-level
    /// folders (`Files`, `Tables`, and an SJD's `Main`, `Libs`).
    pub fn is_protected(&self) -> bool {
        match (self.service, self.segments.len()) {
            (_, 0) => true,
            (ServiceKey::AdlsGen2 | ServiceKey::BlobAccount, _) => false,
            (_, 1) => true,
            (_, 2) => ["Files", "Tables", "Main", "Libs"]
                .iter()
                .any(|p| p.eq_ignore_ascii_case(&self.segments[1])),
            _ => false,
        }
    }
}

impl fmt::Display for RemoteLocation {
    /// The location with decoded names, as a person would type it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.endpoint())?;
        if let Some(account) = &self.path_account {
            write!(f, "/{account}")?;
        }
        write!(f, "/{}", self.filesystem)?;
        for seg in &self.segments {
            write!(f, "/{seg}")?;
        }
        Ok(())
    }
}

fn classify_host(authority: &str, input: &str) -> Result<(ServiceKey, Api), LocationError> {
    let host = host_of(authority);
    if host.ends_with(ONELAKE_DFS_HOST) {
        return Ok((ServiceKey::OneLake, Api::Dfs));
    }
    if host.ends_with(ONELAKE_BLOB_HOST) {
        return Ok((ServiceKey::OneLake, Api::Blob));
    }
    if host.contains(".blob.core.") {
        return Ok((ServiceKey::BlobAccount, Api::Blob));
    }
    if host.contains(".dfs.core.") {
        return Ok((ServiceKey::AdlsGen2, Api::Dfs));
    }
    if host.ends_with("fabric.microsoft.com") || host.ends_with(".windows.net") {
        return Err(LocationError::UnknownHost {
            host: host.to_string(),
            input: input.to_string(),
        });
    }
    Ok((ServiceKey::Custom, Api::Dfs))
}

/// Splits a SAS token off a URL: the text after the first `?` when it is a query
/// (`k=v&k=v…`) with a `sig` parameter. Anything else stays part of the URL (a `?` in a
/// name is an ordinary character).
pub fn split_sas(input: &str) -> (&str, Option<&str>) {
    let Some(q) = input.find('?') else {
        return (input, None);
    };
    let query = &input[q + 1..];
    let is_sas = !query.is_empty()
        && query.split('&').all(|p| p.contains('='))
        && query.split('&').any(|p| {
            p.split('=')
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case("sig"))
        });
    if is_sas {
        (&input[..q], Some(query))
    } else {
        (input, None)
    }
}

/// The host without a port (keeps IPv6 brackets).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split(']').next().unwrap_or(authority);
    }
    authority.split(':').next().unwrap_or(authority)
}

/// Decodes `%XX` escapes; a `%` not followed by two hex digits is kept literally.
fn decode(raw: &str) -> Result<String, LocationError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| LocationError::NotUtf8(raw.to_string()))
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn check_segment(seg: &str, input: &str) -> Result<(), LocationError> {
    if seg == "." || seg == ".." {
        return Err(LocationError::DotSegment(input.to_string()));
    }
    if seg.contains('/') || seg.contains('\0') {
        return Err(LocationError::BadName {
            name: seg.to_string(),
            input: input.to_string(),
        });
    }
    Ok(())
}

/// Why a location could not be used. Each message is one sentence that says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LocationError {
    #[error("no location given")]
    Empty,
    #[error("`{0}` is not a URL; give https://…, abfss://… or a local path")]
    NotAUrl(String),
    #[error(
        "`{input}` uses the unsupported scheme `{scheme}://`; use https://, http:// or abfss://"
    )]
    UnsupportedScheme { scheme: String, input: String },
    #[error(
        "`{0}` has no usable host; a remote URL looks like https://onelake.dfs.fabric.microsoft.com/<workspace>/<item>/Files/<dir>"
    )]
    NoHost(String),
    #[error("`{0}` names no filesystem; add the workspace or container after the host")]
    NoFilesystem(String),
    #[error(
        "`{0}` names a OneLake workspace but no item; add the item and folder, e.g. …/<workspace>/<lakehouse>.Lakehouse/Files/<dir>"
    )]
    NoItem(String),
    #[error("`{0}` is an abfss URL without a filesystem; write abfss://<workspace>@<host>/…")]
    AbfssWithoutFilesystem(String),
    #[error("`{input}` points at a Blob endpoint, and this needs the DFS API: use `{suggestion}`")]
    BlobEndpoint { input: String, suggestion: String },
    #[error(
        "`{0}` is a Blob-only endpoint (Azurite or a storage account without DFS), so the DFS API cannot reach it; use `--api blob` (or leave `--api` at `auto`)"
    )]
    BlobOnly(String),
    #[error(
        "`{0}` carries a SAS token in its query; give the URL without it and the token in AZURE_STORAGE_SAS_TOKEN"
    )]
    SasInUrl(String),
    #[error(
        "`{host}` in `{input}` is not a DFS host; use onelake.dfs.fabric.microsoft.com or <account>.dfs.core.windows.net"
    )]
    UnknownHost { host: String, input: String },
    #[error("`{0}` contains a `.` or `..` segment; give the path without them")]
    DotSegment(String),
    #[error("`{0}` is not valid UTF-8 after percent-decoding")]
    NotUtf8(String),
    #[error("`{name}` in `{input}` is not a valid name")]
    BadName { name: String, input: String },
}

impl crate::diagnostic::Diagnostic for LocationError {
    fn kind(&self) -> crate::diagnostic::Kind {
        crate::diagnostic::Kind::Usage
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(s: &str) -> RemoteLocation {
        RemoteLocation::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn onelake_item_constructor() {
        let l = RemoteLocation::onelake_item(None, "My Workspace", "lake.Lakehouse").unwrap();
        assert_eq!(
            l,
            remote("https://onelake.dfs.fabric.microsoft.com/My Workspace/lake.Lakehouse")
        );
        let l = RemoteLocation::onelake_item(Some("http://127.0.0.1:9/"), "w", "i").unwrap();
        assert_eq!(
            l.join("Files/a b").unwrap().url(),
            "http://127.0.0.1:9/w/i/Files/a%20b"
        );
        assert!(RemoteLocation::onelake_item(None, "", "i").is_err());
        assert!(RemoteLocation::onelake_item(None, "w", "..").is_err());
        assert!(RemoteLocation::onelake_item(None, "w", "a/b").is_err());
    }

    #[test]
    fn onelake_names() {
        let l = remote(
            "https://onelake.dfs.fabric.microsoft.com/My Workspace/lake.Lakehouse/Files/proj",
        );
        assert_eq!(l.service(), Service::OneLake);
        assert_eq!(l.endpoint(), "https://onelake.dfs.fabric.microsoft.com");
        assert_eq!(l.filesystem(), "My Workspace");
        assert_eq!(l.path(), "lake.Lakehouse/Files/proj");
        assert_eq!(
            l.url(),
            "https://onelake.dfs.fabric.microsoft.com/My%20Workspace/lake.Lakehouse/Files/proj"
        );
    }

    #[test]
    fn onelake_names_already_encoded_decode_once() {
        let l = remote(
            "https://onelake.dfs.fabric.microsoft.com/My%20Workspace/lake.Lakehouse/Files/proj/",
        );
        assert_eq!(l.filesystem(), "My Workspace");
        assert_eq!(l.path(), "lake.Lakehouse/Files/proj");
    }

    #[test]
    fn onelake_guids_and_regional_host() {
        let ws = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
        let it = "9b2e6d3a-1c4f-4e8b-9a7d-2f1e0c3b4a5d";
        let l = remote(&format!(
            "https://westeurope-onelake.dfs.fabric.microsoft.com/{ws}/{it}/Files/proj"
        ));
        assert_eq!(l.service(), Service::OneLake);
        assert_eq!(l.filesystem(), ws);
        assert_eq!(l.segments(), &[it, "Files", "proj"]);
    }

    #[test]
    fn abfss_onelake_and_adls() {
        let l = remote("abfss://ws@onelake.dfs.fabric.microsoft.com/lake.Lakehouse/Files/proj");
        assert_eq!(l.service(), Service::OneLake);
        assert_eq!(l.filesystem(), "ws");
        assert_eq!(l.endpoint(), "https://onelake.dfs.fabric.microsoft.com");
        assert_eq!(l.path(), "lake.Lakehouse/Files/proj");

        let l = remote("abfss://data@acct.dfs.core.windows.net/proj/sub");
        assert_eq!(l.service(), Service::AdlsGen2);
        assert_eq!(l.filesystem(), "data");
        assert_eq!(l.url(), "https://acct.dfs.core.windows.net/data/proj/sub");
    }

    #[test]
    fn adls_account_url() {
        let l = remote("https://acct.dfs.core.windows.net/container/proj");
        assert_eq!(l.service(), Service::AdlsGen2);
        assert_eq!(l.filesystem(), "container");
        assert_eq!(l.path(), "proj");
        let l = remote("https://acct.dfs.core.usgovcloudapi.net/container");
        assert_eq!(l.service(), Service::AdlsGen2);
        assert_eq!(l.path(), "");
    }

    #[test]
    fn any_http_endpoint_keeps_port() {
        let l = remote("http://127.0.0.1:41234/My%20Workspace/lake.Lakehouse/Files/proj");
        assert_eq!(l.service(), Service::Custom);
        assert_eq!(l.endpoint(), "http://127.0.0.1:41234");
        assert_eq!(
            l.url(),
            "http://127.0.0.1:41234/My%20Workspace/lake.Lakehouse/Files/proj"
        );
        let l = remote("http://[::1]:8080/fs/x");
        assert_eq!(l.endpoint(), "http://[::1]:8080");
    }

    #[test]
    fn special_characters_are_encoded_per_segment() {
        let base = remote("http://127.0.0.1:1/ws/lake.Lakehouse/Files");
        let cases = [
            ("a+b.txt", "a%2Bb.txt"),
            ("a b.txt", "a%20b.txt"),
            ("a#b", "a%23b"),
            ("100%", "100%25"),
            ("why?", "why%3F"),
            ("café é", "caf%C3%A9%20%C3%A9"),
            ("日本", "%E6%97%A5%E6%9C%AC"),
        ];
        for (name, wire) in cases {
            let l = base.join(name).unwrap();
            assert_eq!(
                l.url(),
                format!("http://127.0.0.1:1/ws/lake.Lakehouse/Files/{wire}"),
                "{name}"
            );
            assert_eq!(l.segments().last().unwrap(), name);
        }
    }

    #[test]
    fn url_text_is_literal_after_the_host() {
        // `+` stays a plus, `?` and `#` are parts of names, a lone `%` stays a percent.
        let l = remote("http://h:1/ws/lake.Lakehouse/Files/a+b c/q?x#y/100%/%41");
        assert_eq!(l.segments()[2..], ["a+b c", "q?x#y", "100%", "A"]);
        assert_eq!(
            l.url(),
            "http://h:1/ws/lake.Lakehouse/Files/a%2Bb%20c/q%3Fx%23y/100%25/A"
        );
    }

    #[test]
    fn dot_segments_are_refused_before_any_request() {
        for s in [
            "http://h:1/ws/lake.Lakehouse/Files/../x",
            "http://h:1/ws/lake.Lakehouse/./Files",
            "http://h:1/ws/lake.Lakehouse/Files/%2E%2E/x",
            "http://h:1/../lake.Lakehouse",
            "abfss://..@onelake.dfs.fabric.microsoft.com/lake.Lakehouse",
        ] {
            assert!(
                matches!(RemoteLocation::parse(s), Err(LocationError::DotSegment(_))),
                "{s}"
            );
        }
        let base = remote("http://h:1/ws/lake.Lakehouse/Files");
        assert!(matches!(
            base.join("a/../../x"),
            Err(LocationError::DotSegment(_))
        ));
        assert!(base.join("a/./b").is_err());
    }

    #[test]
    fn encoded_slash_inside_a_name_is_refused() {
        assert!(matches!(
            RemoteLocation::parse("http://h:1/ws/lake.Lakehouse/Files/a%2Fb"),
            Err(LocationError::BadName { .. })
        ));
    }

    #[test]
    fn bad_urls_say_what_to_do() {
        let err = |s: &str| RemoteLocation::parse(s).unwrap_err();
        assert!(matches!(
            err("s3://bucket/x"),
            LocationError::UnsupportedScheme { .. }
        ));
        assert!(matches!(
            err("https://app.fabric.microsoft.com/groups/x"),
            LocationError::UnknownHost { .. }
        ));
        assert!(matches!(
            err("https://acct.file.core.windows.net/share"),
            LocationError::UnknownHost { .. }
        ));
        assert!(matches!(
            err("https://onelake.dfs.fabric.microsoft.com/ws"),
            LocationError::NoItem(_)
        ));
        assert!(matches!(
            err("https://acct.dfs.core.windows.net/"),
            LocationError::NoFilesystem(_)
        ));
        assert!(matches!(err("https:///x"), LocationError::NoHost(_)));
        assert!(matches!(err("http://[::1/x"), LocationError::NoHost(_)));
        assert!(matches!(err("https://"), LocationError::NoHost(_)));
        assert!(err("https://").to_string().contains("looks like https://"));
        assert!(matches!(
            err("abfss://onelake.dfs.fabric.microsoft.com/x"),
            LocationError::AbfssWithoutFilesystem(_)
        ));
        assert!(matches!(
            err("http://h:1/ws/%FF"),
            LocationError::NotUtf8(_)
        ));
        // Messages are single sentences.
        for e in [
            err("s3://b/x"),
            err("https://onelake.dfs.fabric.microsoft.com/ws"),
        ] {
            assert!(!e.to_string().contains('\n'));
        }
    }

    #[test]
    fn local_paths_and_remote_dispatch() {
        assert_eq!(
            Location::parse("./proj").unwrap(),
            Location::Local(PathBuf::from("./proj"))
        );
        assert!(matches!(
            Location::parse("abfss://w@onelake.dfs.fabric.microsoft.com/l.Lakehouse/Files"),
            Ok(Location::Remote(_))
        ));
        assert_eq!(Location::parse(""), Err(LocationError::Empty));
    }

    #[test]
    fn protected_folders() {
        let p = |s: &str| remote(s).is_protected();
        assert!(p(
            "https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse"
        ));
        assert!(p(
            "https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/Files"
        ));
        assert!(p(
            "https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/tables"
        ));
        assert!(!p(
            "https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/Files/x"
        ));
        assert!(p("https://acct.dfs.core.windows.net/c"));
        assert!(!p("https://acct.dfs.core.windows.net/c/x"));
    }

    #[test]
    fn endpoint_override_keeps_the_path() {
        let l = remote("https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/Files/p");
        let e = l.with_endpoint("http://127.0.0.1:9/").unwrap();
        assert_eq!(e.url(), "http://127.0.0.1:9/ws/lake.Lakehouse/Files/p");
        assert!(l.with_endpoint("ftp://x").is_err());
    }

    #[test]
    fn display_shows_decoded_names() {
        let l = remote("http://h:1/My%20Workspace/lake.Lakehouse/Files/a%2Bb");
        assert_eq!(
            l.to_string(),
            "http://h:1/My Workspace/lake.Lakehouse/Files/a+b"
        );
    }

    #[test]
    fn blob_hosts_parse_with_their_api() {
        let l =
            remote("https://onelake.blob.fabric.microsoft.com/My Workspace/lake.Lakehouse/Files/p");
        assert_eq!((l.service(), l.api()), (Service::OneLake, Api::Blob));
        assert_eq!(l.filesystem(), "My Workspace");
        assert_eq!(l.path(), "lake.Lakehouse/Files/p");
        assert_eq!(l.account(), Some("onelake"));
        assert!(l.join("x").unwrap().to_api(Api::Blob).is_some());
        assert!(
            remote("https://onelake.blob.fabric.microsoft.com/ws/lake.Lakehouse/Files")
                .is_protected()
        );

        let l = remote("https://acct.blob.core.windows.net/data/proj/a b");
        assert_eq!((l.service(), l.api()), (Service::BlobAccount, Api::Blob));
        assert_eq!(l.account(), Some("acct"));
        assert_eq!(
            l.filesystem_url(),
            "https://acct.blob.core.windows.net/data"
        );
        assert_eq!(
            l.url(),
            "https://acct.blob.core.windows.net/data/proj/a%20b"
        );
        assert!(!l.is_protected());
        assert!(remote("https://acct.blob.core.windows.net/data").is_protected());
        assert_eq!(
            remote("https://acct.dfs.core.windows.net/data").account(),
            Some("acct")
        );
    }

    #[test]
    fn azurite_path_style_keeps_the_account_in_the_path() {
        let l = remote("http://127.0.0.1:10000/devstoreaccount1/c1/dir/f.txt");
        assert_eq!((l.service(), l.api()), (Service::BlobAccount, Api::Blob));
        assert_eq!(l.account(), Some("devstoreaccount1"));
        assert_eq!(l.filesystem(), "c1");
        assert_eq!(l.path(), "dir/f.txt");
        assert_eq!(
            l.filesystem_url(),
            "http://127.0.0.1:10000/devstoreaccount1/c1"
        );
        assert_eq!(
            l.url(),
            "http://127.0.0.1:10000/devstoreaccount1/c1/dir/f.txt"
        );
        assert_eq!(
            l.to_string(),
            "http://127.0.0.1:10000/devstoreaccount1/c1/dir/f.txt"
        );
        assert!(remote("http://127.0.0.1:10000/devstoreaccount1/c1").is_protected());
        assert!(!l.is_protected());
        assert_eq!(l.to_api(Api::Dfs), None);
        assert!(matches!(l.require_dfs(), Err(LocationError::BlobOnly(_))));
        assert!(matches!(
            RemoteLocation::parse("http://127.0.0.1:10000/devstoreaccount1"),
            Err(LocationError::NoFilesystem(_))
        ));
        // Any other first segment on a custom endpoint is a DFS filesystem, as before.
        let l = remote("http://127.0.0.1:10000/ws/lake.Lakehouse/Files");
        assert_eq!(
            (l.service(), l.api(), l.account()),
            (Service::Custom, Api::Dfs, None)
        );
    }

    #[test]
    fn switching_api_swaps_the_host() {
        let l =
            remote("https://westeurope-onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/Files/p");
        let b = l.to_api(Api::Blob).unwrap();
        assert_eq!(
            b.url(),
            "https://westeurope-onelake.blob.fabric.microsoft.com/ws/lake.Lakehouse/Files/p"
        );
        assert_eq!(b.service(), Service::OneLake);
        assert_eq!(b.to_api(Api::Dfs).unwrap(), l);
        let a = remote("https://acct.dfs.core.windows.net/c/p")
            .to_api(Api::Blob)
            .unwrap();
        assert_eq!(a.url(), "https://acct.blob.core.windows.net/c/p");
        let d = remote("https://acct.blob.core.windows.net/c/p")
            .to_api(Api::Dfs)
            .unwrap();
        assert_eq!(
            (d.service(), d.url().as_str()),
            (Service::AdlsGen2, "https://acct.dfs.core.windows.net/c/p")
        );
        // The emulator serves both on one endpoint.
        let e = remote("http://127.0.0.1:9/ws/lake.Lakehouse/Files")
            .to_api(Api::Blob)
            .unwrap();
        assert_eq!(
            (e.api(), e.endpoint().as_str()),
            (Api::Blob, "http://127.0.0.1:9")
        );
        assert!(matches!(
            remote("https://onelake.blob.fabric.microsoft.com/ws/lake.Lakehouse/Files").require_dfs(),
            Err(LocationError::BlobEndpoint { suggestion, .. }) if suggestion == "https://onelake.dfs.fabric.microsoft.com/ws/lake.Lakehouse/Files"
        ));
        assert!(l.require_dfs().is_ok());
    }

    #[test]
    fn sas_tokens_are_split_off_and_never_shown() {
        let sig = "sig=c2VjcmV0c2lnbmF0dXJl%2B%3D";
        let url = format!("https://acct.blob.core.windows.net/c/dir?sv=2023-11-03&sp=rl&{sig}");
        let (l, sas) = RemoteLocation::parse_with_sas(&url).unwrap();
        assert_eq!(l.url(), "https://acct.blob.core.windows.net/c/dir");
        assert_eq!(sas.unwrap().expose(), format!("sv=2023-11-03&sp=rl&{sig}"));
        let e = RemoteLocation::parse(&url).unwrap_err();
        assert!(matches!(e, LocationError::SasInUrl(_)));
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        assert!(!format!("{e:?}").contains("c2VjcmV0"));
        // An error about the rest of the URL does not show the token either.
        let e = RemoteLocation::parse_with_sas(&format!(
            "https://acct.blob.core.windows.net/c/../x?{sig}"
        ))
        .unwrap_err();
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
        // A `?` that is not a SAS query stays part of a name.
        let (l, sas) =
            RemoteLocation::parse_with_sas("http://h:1/ws/lake.Lakehouse/Files/why?").unwrap();
        assert!(sas.is_none());
        assert_eq!(l.segments().last().unwrap(), "why?");
        assert_eq!(split_sas("http://h/c/a?b=1"), ("http://h/c/a?b=1", None));
    }

    #[test]
    fn query_values_are_strictly_encoded() {
        assert_eq!(encode_query_value("a/b+c=", false), "a%2Fb%2Bc%3D");
        assert_eq!(
            encode_query_value("lake.Lakehouse/Files/a b", true),
            "lake.Lakehouse/Files/a%20b"
        );
    }
}
