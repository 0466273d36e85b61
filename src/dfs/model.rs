//! What the DFS API sends back, parsed leniently: the real service's listing has string
//! numbers (`"contentLength":"11"`), `isDirectory` only on folders (as `"true"`), unquoted
//! `etag`s, RFC 1123 `lastModified` and FILETIME `creationTime`; the spec's own model says
//! booleans, integers and `eTag`. Both are accepted, extra fields ignored, optional ones
//! (`owner`, `group`, `permissions`, `expiryTime`) never required.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde_json::Value;

use crate::storage::normalize_etag;

/// One entry of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathEntry {
    /// Path relative to the filesystem root, as the service returns it (`lake.Lakehouse/Files/a`).
    pub name: String,
    pub is_directory: bool,
    /// Bytes; 0 for directories.
    pub size: u64,
    /// The ETag without quotes (the listing's form), empty if the service sent none.
    pub etag: String,
    pub last_modified: Option<SystemTime>,
    pub created: Option<SystemTime>,
}

/// Properties from a HEAD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Properties {
    pub is_directory: bool,
    pub size: u64,
    pub etag: String,
    pub last_modified: Option<SystemTime>,
}

#[derive(Deserialize)]
struct RawListing {
    #[serde(default)]
    paths: Vec<RawPath>,
}

#[derive(Deserialize)]
struct RawPath {
    name: String,
    #[serde(default, rename = "isDirectory")]
    is_directory: Option<Value>,
    #[serde(default, rename = "contentLength")]
    content_length: Option<Value>,
    #[serde(default, alias = "eTag", alias = "ETag")]
    etag: Option<String>,
    #[serde(default, rename = "lastModified")]
    last_modified: Option<String>,
    #[serde(default, rename = "creationTime")]
    creation_time: Option<Value>,
}

/// Why a listing page could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the listing page is not valid DFS JSON: {0}")]
pub struct ModelError(String);

/// Parses one List Paths body.
pub fn parse_listing(body: &[u8]) -> Result<Vec<PathEntry>, ModelError> {
    let raw: RawListing = serde_json::from_slice(body).map_err(|e| ModelError(e.to_string()))?;
    raw.paths.into_iter().map(convert).collect()
}

fn convert(raw: RawPath) -> Result<PathEntry, ModelError> {
    let is_directory = match &raw.is_directory {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        Some(other) => return Err(ModelError(format!("isDirectory = {other}"))),
    };
    let size = match &raw.content_length {
        None | Some(Value::Null) => 0,
        Some(v) => number(v).ok_or_else(|| ModelError(format!("contentLength = {v}")))?,
    };
    Ok(PathEntry {
        name: raw.name.trim_start_matches('/').to_string(),
        is_directory,
        size,
        etag: raw.etag.as_deref().map(normalize_etag).unwrap_or_default(),
        last_modified: raw
            .last_modified
            .as_deref()
            .and_then(|s| httpdate::parse_http_date(s).ok()),
        created: raw
            .creation_time
            .as_ref()
            .and_then(number)
            .and_then(filetime),
    })
}

/// A JSON number or a string of digits.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Windows FILETIME (100 ns ticks since 1601-01-01 UTC) → SystemTime. `0` means "none".
pub fn filetime(ticks: u64) -> Option<SystemTime> {
    const UNIX_EPOCH_TICKS: u64 = 116_444_736_000_000_000;
    let since_unix = ticks.checked_sub(UNIX_EPOCH_TICKS)?;
    if ticks == 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_nanos(since_unix.saturating_mul(100)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// TV-1 of the reference: a file, keys in alphabetical order, no isDirectory.
    const TV1: &str = r#"{"paths":[
      {"contentLength":"0","creationTime":"133226990197710973","etag":"0x8DB1F5503B1A07D",
       "expiryTime":"0","group":"$superuser","lastModified":"Tue, 07 Mar 2023 21:43:39 GMT",
       "name":"file0","owner":"$superuser","permissions":"rw-r-----"}]}"#;

    /// TV-3: a directory and a file.
    const TV3: &str = r#"{"paths":[
      {"contentLength":"0","creationTime":"133215072868040267","etag":"0x8DB147E4B7DFE4B","expiryTime":"0",
       "group":"$superuser","isDirectory":"true","lastModified":"Wed, 22 Feb 2023 02:41:26 GMT",
       "name":"dirname","owner":"$superuser","permissions":"rwxr-x---"},
      {"contentLength":"11","creationTime":"133215072864453051","etag":"0x8DB147E4B6CE654","expiryTime":"0",
       "group":"$superuser","lastModified":"Wed, 22 Feb 2023 02:41:26 GMT",
       "name":"file","owner":"$superuser","permissions":"rw-r-----"}]}"#;

    #[test]
    fn recorded_file_listing() {
        let e = &parse_listing(TV1.as_bytes()).unwrap()[0];
        assert_eq!(e.name, "file0");
        assert!(!e.is_directory);
        assert_eq!(e.size, 0);
        assert_eq!(e.etag, "0x8DB1F5503B1A07D");
        assert_eq!(
            e.last_modified,
            Some(UNIX_EPOCH + Duration::from_secs(1_678_225_419))
        );
        // 133226990197710973 ticks = 2023-03-07T21:43:39.7710973Z
        let created = e.created.unwrap().duration_since(UNIX_EPOCH).unwrap();
        assert_eq!(created.as_secs(), 1_678_225_419);
        assert_eq!(created.subsec_nanos(), 771_097_300);
    }

    #[test]
    fn recorded_directory_and_file() {
        let v = parse_listing(TV3.as_bytes()).unwrap();
        assert!(v[0].is_directory);
        assert!(!v[1].is_directory);
        assert_eq!(v[1].size, 11);
    }

    #[test]
    fn spec_shapes_and_missing_optionals() {
        let body = r#"{"paths":[{"name":"a","isDirectory":true,"contentLength":5,"eTag":"\"0x1\""},
                                 {"name":"b","isDirectory":"false"},
                                 {"name":"c","isDirectory":null,"contentLength":"7","etag":"0x2","futureField":{"x":1}}]}"#;
        let v = parse_listing(body.as_bytes()).unwrap();
        assert!(v[0].is_directory);
        assert_eq!(v[0].size, 5);
        assert_eq!(v[0].etag, "0x1");
        assert!(!v[1].is_directory);
        assert_eq!(v[1].size, 0);
        assert_eq!(v[1].etag, "");
        assert_eq!(v[2].size, 7);
        assert_eq!(v[2].last_modified, None);
    }

    #[test]
    fn empty_and_malformed_bodies() {
        assert!(parse_listing(b"{}").unwrap().is_empty());
        assert!(parse_listing(br#"{"paths":[]}"#).unwrap().is_empty());
        assert!(parse_listing(b"<xml/>").is_err());
        assert!(parse_listing(br#"{"paths":[{"name":"a","contentLength":"many"}]}"#).is_err());
    }

    #[test]
    fn filetime_zero_is_none() {
        assert_eq!(filetime(0), None);
    }
}
