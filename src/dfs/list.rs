//! Listings: one page at a time ([`DfsClient::list_page`]) or as a stream of pages that
//! follows `x-ms-continuation` until the service stops sending it ([`DfsClient::list`]).
//!
//! Memory stays at one page. The continuation token is percent-encoded when sent back (real
//! tokens contain `/`, `+` and `=`); a token repeated by the service is an error rather than
//! an endless loop. A 404 means the directory does not exist: a [`DfsError::NotFound`], never
//! an empty listing, so that a mistyped URL cannot pass for an empty tree (a sync would
//! delete everything on the other side). [`DfsClient::explain_missing`] then finds out which
//! part is missing: the workspace, the item or a folder. Any failure part-way is an error
//! item, so a caller can tell a complete listing from an incomplete one (and must not delete
//! after the latter).

use futures::Stream;
use reqwest::Method;

use super::client::DfsClient;
use super::error::{DfsError, Missing};
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
    /// One `GET /{fs}?resource=filesystem` page. A missing directory (or workspace) is
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
            Err(e) if e.status() == Some(404) => {
                return Err(DfsError::NotFound(if is_missing_filesystem(e.code()) {
                    Missing::Workspace {
                        endpoint: dir.endpoint(),
                        workspace: dir.filesystem().to_string(),
                    }
                } else {
                    Missing::Path(dir.to_string())
                }));
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

    /// Every page below `dir`, in order. A missing `dir` is a [`DfsError::NotFound`] item.
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
                .list_page(&s.dir, recursive, max_results, s.next.as_deref())
                .await?;
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

/// 404 codes that mean the filesystem (workspace, container) itself is missing.
fn is_missing_filesystem(code: Option<&str>) -> bool {
    code.is_some_and(|c| {
        [
            "FilesystemNotFound",
            "FileSystemNotFound",
            "ContainerNotFound",
            "WorkspaceNotFound",
        ]
        .iter()
        .any(|k| c.eq_ignore_ascii_case(k))
    })
}

impl DfsClient {
    /// Finds out which part of `loc` does not exist, with HEAD requests from the top down
    /// (the workspace, the item, each folder) and, for a missing folder, one listing of its
    /// parent to catch a name that differs only in case. Only called after a 404, so it
    /// costs nothing on the everyday path.
    pub async fn explain_missing(&self, loc: &RemoteLocation) -> DfsError {
        match self.find_missing(loc).await {
            Ok(missing) => DfsError::NotFound(missing),
            Err(e) => e,
        }
    }

    async fn find_missing(&self, loc: &RemoteLocation) -> Result<Missing, DfsError> {
        let head_failed = |what: String, e| DfsError::Http {
            op: "read properties of",
            location: what,
            source: e,
        };
        let fs_url = format!("{}?resource=filesystem", loc.filesystem_url());
        let fs_exists = self
            .exists(&fs_url)
            .await
            .map_err(|e| head_failed(format!("{}/{}", loc.endpoint(), loc.filesystem()), e))?;
        if !fs_exists {
            return Ok(Missing::Workspace {
                endpoint: loc.endpoint(),
                workspace: loc.filesystem().to_string(),
            });
        }
        let item_level = loc.service() != crate::location::Service::AdlsGen2;
        let segments = loc.segments();
        let mut url = loc.filesystem_url();
        for depth in 1..=segments.len() {
            let parent_url = url.clone();
            url.push('/');
            url.push_str(&encode_query_value(&segments[depth - 1], false));
            let found = self.exists(&url).await.map_err(|e| {
                head_failed(
                    format!(
                        "{}/{}/{}",
                        loc.endpoint(),
                        loc.filesystem(),
                        segments[..depth].join("/")
                    ),
                    e,
                )
            })?;
            if found {
                continue;
            }
            if item_level && depth == 1 {
                return Ok(Missing::Item {
                    workspace: loc.filesystem().to_string(),
                    item: segments[0].clone(),
                });
            }
            let name = &segments[depth - 1];
            let case_of = if item_level && depth == 2 {
                // OneLake's own folders need no listing.
                ["Files", "Tables"]
                    .into_iter()
                    .find(|f| f.eq_ignore_ascii_case(name) && f != name)
                    .map(str::to_string)
            } else {
                self.same_name_but_case(&parent_url, name).await
            };
            let (first, parent) = if item_level {
                (1, segments[0].clone())
            } else {
                (0, loc.filesystem().to_string())
            };
            return Ok(Missing::Folder {
                path: segments[first..depth].join("/"),
                parent,
                case_of,
            });
        }
        Ok(Missing::Path(loc.to_string()))
    }

    /// Whether the first `depth` path segments of `loc` exist (one HEAD request).
    pub async fn prefix_exists(
        &self,
        loc: &RemoteLocation,
        depth: usize,
    ) -> Result<bool, DfsError> {
        let segments = &loc.segments()[..depth.min(loc.segments().len())];
        let mut url = loc.filesystem_url();
        for seg in segments {
            url.push('/');
            url.push_str(&encode_query_value(seg, false));
        }
        self.exists(&url).await.map_err(|e| DfsError::Http {
            op: "read properties of",
            location: format!(
                "{}/{}/{}",
                loc.endpoint(),
                loc.filesystem(),
                segments.join("/")
            ),
            source: e,
        })
    }

    /// `HEAD url`: true on 2xx, false on 404.
    async fn exists(&self, url: &str) -> Result<bool, crate::http::HttpError> {
        match self
            .http()
            .send(Method::HEAD, url, crate::auth::STORAGE_SCOPE, |r| {
                r.header("x-ms-version", super::client::X_MS_VERSION)
            })
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.status() == Some(404) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// A child of the folder at `parent_url` whose name equals `name` but for case (first
    /// page of its listing only).
    async fn same_name_but_case(&self, parent_url: &str, name: &str) -> Option<String> {
        let parent = RemoteLocation::parse(parent_url).ok()?;
        let page = self
            .list_page(&parent, false, MAX_RESULTS, None)
            .await
            .ok()?;
        page.entries.into_iter().find_map(|e| {
            let child = e.relative_to(&parent)?;
            (child.eq_ignore_ascii_case(name) && child != name).then(|| child.to_string())
        })
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
