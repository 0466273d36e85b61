//! Listings: one List Blobs page at a time ([`BlobClient::list_page`]) or as a stream of
//! pages that follows `NextMarker` until the service stops sending one ([`BlobClient::list`]).
//!
//! Flat (no delimiter): every blob below the directory, at any depth, in one walk. Memory
//! stays at one page. A marker repeated by the service is an error rather than an endless
//! loop; a missing prefix is simply an empty listing, a missing container an error. Any
//! failure part-way is an error item, so a caller can tell a complete listing from an
//! incomplete one (and must not delete after the latter).

use futures::Stream;
use reqwest::Method;

use super::client::BlobClient;
use super::error::BlobError;
use super::model::{BlobEntry, parse_list};
use crate::location::{RemoteLocation, encode_query_value};

/// The service's largest page.
pub const MAX_RESULTS: u32 = 5000;

/// One page and the marker for the next, if any.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<BlobEntry>,
    pub next_marker: Option<String>,
}

impl BlobClient {
    /// One `GET ?restype=container&comp=list` page of the blobs below `dir` (with metadata).
    pub async fn list_page(
        &self,
        dir: &RemoteLocation,
        max_results: u32,
        marker: Option<&str>,
    ) -> Result<Page, BlobError> {
        let mut url = format!(
            "{}?restype=container&comp=list&include=metadata&maxresults={}",
            dir.filesystem_url(),
            max_results.clamp(1, MAX_RESULTS)
        );
        let path = dir.path();
        if !path.is_empty() {
            url.push_str("&prefix=");
            url.push_str(&encode_query_value(&format!("{path}/"), true));
        }
        if let Some(marker) = marker {
            url.push_str("&marker=");
            url.push_str(&encode_query_value(marker, false));
        }
        let sent = self
            .call(Method::GET, &url, |r| r)
            .await
            .map_err(|e| BlobError::op("list", dir, e))?;
        let body = sent
            .response
            .bytes()
            .await
            .map_err(|e| BlobError::Interrupted {
                op: "list",
                location: dir.to_string(),
                message: e.without_url().to_string(),
            })?;
        let (entries, next_marker) = parse_list(&body).map_err(|e| BlobError::BadListing {
            location: dir.to_string(),
            message: e.to_string(),
        })?;
        Ok(Page {
            entries,
            next_marker,
        })
    }

    /// Every page of blobs below `dir`, in order (5000 per page unless the client was
    /// built [`with_page_size`](BlobClient::with_page_size)).
    pub fn list(
        &self,
        dir: &RemoteLocation,
    ) -> impl Stream<Item = Result<Vec<BlobEntry>, BlobError>> + Send + 'static {
        self.list_with_page_size(dir, self.page_size)
    }

    /// [`BlobClient::list`] with a page size (`maxresults`).
    pub fn list_with_page_size(
        &self,
        dir: &RemoteLocation,
        max_results: u32,
    ) -> impl Stream<Item = Result<Vec<BlobEntry>, BlobError>> + Send + 'static {
        struct State {
            client: BlobClient,
            dir: RemoteLocation,
            next: Option<String>,
            done: bool,
        }
        let state = State {
            client: self.clone(),
            dir: dir.clone(),
            next: None,
            done: false,
        };
        futures::stream::try_unfold(state, move |mut s| async move {
            if s.done {
                return Ok(None);
            }
            let page = s
                .client
                .list_page(&s.dir, max_results, s.next.as_deref())
                .await?;
            match page.next_marker {
                Some(marker) if s.next.as_ref() == Some(&marker) => {
                    return Err(BlobError::RepeatedMarker(s.dir.to_string()));
                }
                Some(marker) => s.next = Some(marker),
                None => s.done = true,
            }
            Ok(Some((page.entries, s)))
        })
    }
}

impl BlobEntry {
    /// This blob's path relative to `dir` (`None` for anything outside it). Tolerates a
    /// OneLake answer that names the item differently than the request did (GUID vs name):
    /// the item segment is then matched loosely.
    pub fn relative_to<'a>(&'a self, dir: &RemoteLocation) -> Option<&'a str> {
        let base = dir.path();
        if base.is_empty() {
            return Some(self.name.as_str()).filter(|n| !n.is_empty());
        }
        if let Some(rest) = self.name.strip_prefix(&base)
            && let Some(rest) = rest.strip_prefix('/')
        {
            return Some(rest).filter(|r| !r.is_empty());
        }
        if dir.service() != crate::location::Service::OneLake {
            return None;
        }
        let (_, name_rest) = self.name.split_once('/')?;
        let base_rest = dir.segments()[1..].join("/");
        if base_rest.is_empty() {
            return Some(name_rest).filter(|r| !r.is_empty());
        }
        name_rest
            .strip_prefix(&base_rest)?
            .strip_prefix('/')
            .filter(|r| !r.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str) -> BlobEntry {
        BlobEntry {
            name: name.into(),
            size: 0,
            etag: String::new(),
            last_modified: None,
            content_md5: None,
            metadata: Default::default(),
            is_directory: false,
        }
    }

    #[test]
    fn relative_paths() {
        let dir = RemoteLocation::parse("http://127.0.0.1:1/devstoreaccount1/c/proj").unwrap();
        assert_eq!(entry("proj/a/b.py").relative_to(&dir), Some("a/b.py"));
        assert_eq!(entry("proj").relative_to(&dir), None);
        assert_eq!(entry("project/x").relative_to(&dir), None);
        assert_eq!(entry("other/proj/x").relative_to(&dir), None);
        let root = RemoteLocation::parse("http://127.0.0.1:1/devstoreaccount1/c").unwrap();
        assert_eq!(entry("a/b").relative_to(&root), Some("a/b"));
        let lake = RemoteLocation::parse(
            "https://onelake.blob.fabric.microsoft.com/ws/lake.Lakehouse/Files/p",
        )
        .unwrap();
        assert_eq!(
            entry("9b2e6d3a-1c4f-4e8b-9a7d-2f1e0c3b4a5d/Files/p/x").relative_to(&lake),
            Some("x")
        );
    }
}
