//! Listings: one page at a time ([`DfsClient::list_page`]) or as a stream of pages that
//! follows `x-ms-continuation` until the service stops sending it ([`DfsClient::list`]).
//!
//! Memory stays at one page. The continuation token is percent-encoded when sent back (real
//! tokens contain `/`, `+` and `=`); a token repeated by the service is an error rather than
//! an endless loop. A 404 on the first page means the directory does not exist: the stream
//! then ends empty. Any failure part-way is an error item, so a caller can tell a complete
//! listing from an incomplete one (and must not delete after the latter).

use futures::Stream;
use reqwest::Method;

use super::client::DfsClient;
use super::error::DfsError;
use super::model::{PathEntry, parse_listing};
use crate::location::{RemoteLocation, encode_query_value};

/// The service's largest page.
pub const MAX_RESULTS: u32 = 5000;

/// One page and the token for the next, if any.
#[derive(Debug)]
pub struct Page {
    pub entries: Vec<PathEntry>,
    pub continuation: Option<String>,
}

impl DfsClient {
    /// One `GET /{fs}?resource=filesystem` page. A missing directory is
    /// [`DfsError::NotFound`].
    pub async fn list_page(
        &self,
        dir: &RemoteLocation,
        recursive: bool,
        max_results: u32,
        continuation: Option<&str>,
    ) -> Result<Page, DfsError> {
        let mut url = format!(
            "{}?resource=filesystem&recursive={recursive}&maxResults={}",
            dir.filesystem_url(),
            max_results.clamp(1, MAX_RESULTS)
        );
        let path = dir.path();
        if !path.is_empty() {
            url.push_str("&directory=");
            url.push_str(&encode_query_value(&path, true));
        }
        if let Some(token) = continuation {
            url.push_str("&continuation=");
            url.push_str(&encode_query_value(token, false));
        }
        let sent = match self
            .http()
            .send(Method::GET, &url, crate::auth::STORAGE_SCOPE, |r| {
                r.header("x-ms-version", super::client::X_MS_VERSION)
            })
            .await
        {
            Ok(sent) => sent,
            Err(e) if e.status() == Some(404) && is_missing_path(e.code()) => {
                return Err(DfsError::NotFound(dir.to_string()));
            }
            Err(e) => return Err(DfsError::op("list", dir, e)),
        };
        let next = super::client::continuation_of(sent.response.headers());
        let body = sent
            .response
            .bytes()
            .await
            .map_err(|e| DfsError::Interrupted {
                op: "list",
                location: dir.to_string(),
                message: e.to_string(),
            })?;
        let entries = parse_listing(&body).map_err(|e| DfsError::BadListing {
            location: dir.to_string(),
            message: e.to_string(),
        })?;
        Ok(Page {
            entries,
            continuation: next,
        })
    }

    /// Every page below `dir`, in order; empty if `dir` does not exist.
    pub fn list(
        &self,
        dir: &RemoteLocation,
        recursive: bool,
    ) -> impl Stream<Item = Result<Vec<PathEntry>, DfsError>> + Send + 'static {
        self.list_with_page_size(dir, recursive, MAX_RESULTS)
    }

    /// [`DfsClient::list`] with a page size (`maxResults`).
    pub fn list_with_page_size(
        &self,
        dir: &RemoteLocation,
        recursive: bool,
        max_results: u32,
    ) -> impl Stream<Item = Result<Vec<PathEntry>, DfsError>> + Send + 'static {
        struct State {
            client: DfsClient,
            dir: RemoteLocation,
            next: Option<String>,
            first: bool,
            done: bool,
        }
        let state = State {
            client: self.clone(),
            dir: dir.clone(),
            next: None,
            first: true,
            done: false,
        };
        futures::stream::try_unfold(state, move |mut s| async move {
            if s.done {
                return Ok(None);
            }
            let page = match s
                .client
                .list_page(&s.dir, recursive, max_results, s.next.as_deref())
                .await
            {
                Ok(page) => page,
                Err(DfsError::NotFound(_)) if s.first => return Ok(None),
                Err(e) => return Err(e),
            };
            s.first = false;
            match page.continuation {
                Some(token) if s.next.as_ref() == Some(&token) => {
                    return Err(DfsError::RepeatedContinuation(s.dir.to_string()));
                }
                Some(token) => s.next = Some(token),
                None => s.done = true,
            }
            Ok(Some((page.entries, s)))
        })
    }
}

/// 404 codes that mean "this directory is not there" (as opposed to a missing workspace).
fn is_missing_path(code: Option<&str>) -> bool {
    match code {
        None => true,
        Some(c) => {
            c.eq_ignore_ascii_case("PathNotFound") || c.eq_ignore_ascii_case("ResourceNotFound")
        }
    }
}

impl PathEntry {
    /// This entry's path relative to `dir` (`None` for `dir` itself or anything outside it).
    /// Tolerates a service that names the item differently than the request did (GUID vs
    /// name): the item segment is then matched loosely.
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
        // Same path below a differently spelled item segment.
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

    fn entry(name: &str) -> PathEntry {
        PathEntry {
            name: name.into(),
            is_directory: false,
            size: 0,
            etag: String::new(),
            last_modified: None,
            created: None,
        }
    }

    #[test]
    fn relative_paths() {
        let dir = RemoteLocation::parse("http://h:1/ws/lake.Lakehouse/Files/proj").unwrap();
        assert_eq!(
            entry("lake.Lakehouse/Files/proj/a/b.py").relative_to(&dir),
            Some("a/b.py")
        );
        assert_eq!(entry("lake.Lakehouse/Files/proj").relative_to(&dir), None);
        assert_eq!(
            entry("lake.Lakehouse/Files/project/x").relative_to(&dir),
            None
        );
        // GUID in the answer, name in the request.
        assert_eq!(
            entry("9b2e6d3a-1c4f-4e8b-9a7d-2f1e0c3b4a5d/Files/proj/x").relative_to(&dir),
            Some("x")
        );
    }
}
