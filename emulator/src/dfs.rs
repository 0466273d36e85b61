//! The OneLake DFS surface: addressing, headers, and the path and filesystem operations
//! (create, append, flush, read, properties, rename, lease, delete, list), answered with
//! the real service's shapes as Microsoft's REST specification and the recorded traffic
//! of its SDK tests show them. Shared helpers (path resolution, headers, reads) are also
//! used by the Blob side.
//!
//! Addressing: `/{workspace}/{item}/{path…}`, where the workspace is its name or GUID and
//! the item is `<name>.Lakehouse` (suffix in any case) or the lakehouse GUID. Paths are
//! percent-decoded (`%2F` counts as a separator, `+` is a literal plus); empty, `.` and
//! `..` segments are refused with 400 `InvalidUri`. Query values are decoded form-style
//! (`+` is a space), as the real front end does, so an unencoded continuation token
//! breaks.

use std::collections::HashSet;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncReadExt as _;

use crate::error::{Result, ServiceError};
use crate::lease::{self, Surface};
use crate::request::{DEFAULT_VERSION, Query};
use crate::state::State;
use base64::Engine as _;

use crate::store::{FlushOpts, Headers, ListEntry, Meta, Props};
use crate::time;
use crate::token;

/// The most entries one listing page or delete batch may hold (the real cap).
const MAX_PAGE: usize = 5000;

/// Permissions shown in listings and HEAD. OneLake's parity page says responses carry
/// `$superuser` and `---------`; ADLS recordings show `rw-r-----`/`rwxr-x---`. We follow
/// OneLake (clients must not depend on either).
const PERMISSIONS: &str = "---------";

/// Splits a decoded `a/b/c` into checked segments.
pub(crate) fn split_segments(
    decoded: &str,
    bad: impl Fn(&str) -> ServiceError,
) -> Result<Vec<String>> {
    let mut segs = Vec::new();
    for seg in decoded.split('/') {
        if seg.is_empty() {
            return Err(bad("Empty path segments are not allowed."));
        }
        if seg == "." || seg == ".." {
            return Err(bad("`.` and `..` path segments are not allowed."));
        }
        if seg.contains('\0') {
            return Err(bad("NUL is not allowed in a path."));
        }
        segs.push(seg.to_owned());
    }
    Ok(segs)
}

/// The decoded segments of a request path. One trailing slash is ignored, as OneLake's
/// DFS endpoint does for the URLs `fab` builds (`/ws/?resource=filesystem`,
/// `…/file.txt/?resource=file`).
pub(crate) fn path_segments(raw: &str) -> Result<Vec<String>> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ServiceError::invalid_uri("The path is not valid UTF-8."))?;
    let rest = decoded.strip_prefix('/').unwrap_or(&decoded);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    split_segments(rest, ServiceError::invalid_uri)
}

/// `x-ms-version`, when sent, must look like a version date. It is optional: `fab` and
/// Microsoft's OneLake explorer sample send none and OneLake serves them.
pub(crate) fn check_version(headers: &HeaderMap) -> Result<String> {
    let Some(v) = headers.get("x-ms-version") else {
        return Ok(DEFAULT_VERSION.to_owned());
    };
    let v = v
        .to_str()
        .map_err(|_| ServiceError::invalid_header("x-ms-version"))?;
    let b = v.as_bytes();
    let ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !ok {
        return Err(ServiceError::invalid_header("x-ms-version"));
    }
    Ok(v.to_owned())
}

/// `Content-Length: 0` is required on create and flush; a missing header counts as
/// wrong (the reference: third-party clients got `ContentLengthMustBeZero` for it).
pub(crate) fn require_zero_length(headers: &HeaderMap) -> Result<()> {
    match headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
    {
        Some("0") if !headers.contains_key(header::TRANSFER_ENCODING) => Ok(()),
        _ => Err(ServiceError::content_length_must_be_zero()),
    }
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ServiceError::internal)?
}

pub(crate) fn set(resp: &mut Response, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        resp.headers_mut().insert(name, v);
    }
}

pub(crate) fn empty(status: StatusCode) -> Response {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    r
}

pub(crate) fn with_meta(resp: &mut Response, meta: &Meta) {
    set(resp, "etag", &meta.quoted_etag());
    set(resp, "last-modified", &time::http_date(meta.modified_ns));
}

/// A path inside a lakehouse.
pub(crate) struct Target {
    pub lakehouse: usize,
    /// Segments below the item: `["Files", "a", "b.txt"]`.
    pub rel: Vec<String>,
    pub disk: PathBuf,
}

impl Target {
    /// The item folder and its `Files`/`Tables` folders cannot be created, deleted or
    /// renamed; nothing else may be created at the item's top level either.
    pub fn is_protected(&self) -> bool {
        self.rel.len() < 2
    }

    pub fn outside_data_folders(&self) -> bool {
        !matches!(
            self.rel.first().map(String::as_str),
            Some("Files" | "Tables")
        )
    }

    fn token_payload(&self, state: &State) -> String {
        let mut s = state.lakehouses[self.lakehouse].name.clone();
        for r in &self.rel {
            s.push('/');
            s.push_str(r);
        }
        s
    }
}

/// The lakehouse path named by `/<workspace>/<item>/<rest…>` (workspace already
/// checked). An unknown item is 404 `PathNotFound` (the item folder is a path of the
/// filesystem; the real code is UNCONFIRMED).
pub(crate) fn resolve(state: &State, segs: &[String]) -> Result<Target> {
    let lakehouse = state
        .resolve_item(&segs[1])
        .ok_or_else(ServiceError::path_not_found)?;
    if state.is_denied(&format!("/{}", segs.join("/"))) {
        return Err(ServiceError::permission_mismatch());
    }
    let rel = segs[2..].to_vec();
    let mut disk = state.lakehouses[lakehouse].root.clone();
    disk.extend(&rel);
    Ok(Target {
        lakehouse,
        rel,
        disk,
    })
}

pub(crate) async fn dispatch(state: &Arc<State>, req: Request) -> Result<Response> {
    let version = check_version(req.headers())?;
    let method = req.method().clone();
    let query = Query::parse(req.uri().query().unwrap_or(""))?;
    let segs = path_segments(req.uri().path())?;
    if segs.is_empty() {
        // Account level: OneLake allows HEAD only.
        return if method == Method::HEAD {
            Ok(empty(StatusCode::OK))
        } else {
            Err(ServiceError::protected())
        };
    }
    if !state.resolve_workspace(&segs[0]) {
        return Err(ServiceError::filesystem_not_found());
    }
    if segs.len() == 1 {
        return filesystem_op(state, &method, &query, &segs[0]).await;
    }
    let target = resolve(state, &segs)?;
    check_if_match(state, req.headers(), &target).await?;
    match method {
        Method::PUT => put(state, &query, req.headers(), &target).await,
        Method::PATCH => {
            check_lease(state, req.headers(), &target)?;
            patch(state, &query, &version, req, &target).await
        }
        Method::GET => read(state, req.headers(), &target).await,
        Method::HEAD => properties(state, req.headers(), &target).await,
        Method::DELETE => {
            check_lease(state, req.headers(), &target)?;
            delete(state, &query, &target).await
        }
        Method::POST => lease(state, req.headers(), &target).await,
        _ => Err(ServiceError::unsupported_verb()),
    }
}

/// `If-None-Match: *` on a flush: the file must not exist yet (412 `ConditionNotMet`),
/// which is how the DataLake SDK's `upload_data(overwrite=False)` refuses to replace a
/// file. An ETag value fails when it is the file's current one.
async fn check_if_none_match(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<()> {
    let Some(want) = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(());
    };
    let want = want.trim().trim_matches('"').to_owned();
    let st = state.clone();
    let disk = target.disk.clone();
    match blocking(move || st.store.stat(&disk)).await {
        Ok(m) if want == "*" || m.etag() == want => Err(ServiceError::condition_not_met()),
        _ => Ok(()),
    }
}

/// `If-Match: <etag>` / `*` on path operations.
pub(crate) async fn check_if_match(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<()> {
    let Some(want) = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let want = want.trim().trim_matches('"').to_owned();
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.stat(&disk)).await;
    match meta {
        Ok(m) if want == "*" || m.etag() == want => Ok(()),
        _ => Err(ServiceError::condition_not_met()),
    }
}

async fn put(
    state: &Arc<State>,
    query: &Query,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    if let Some(source) = header_str(headers, "x-ms-rename-source")? {
        return rename(state, query, headers, source, target).await;
    }
    let resource = query
        .get("resource")
        .ok_or_else(|| ServiceError::missing_query("resource"))?;
    let is_file = match resource {
        r if r.eq_ignore_ascii_case("file") => true,
        r if r.eq_ignore_ascii_case("directory") => false,
        r => return Err(ServiceError::invalid_query(format!("resource={r}"))),
    };
    if target.is_protected() || target.outside_data_folders() {
        return Err(ServiceError::protected());
    }
    require_zero_length(headers)?;
    let key = state.store.key(&target.disk);
    if headers.contains_key("x-ms-lease-id") {
        check_lease(state, headers, target)?;
    }
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        == Some("*");
    let mut props = Props {
        metadata: parse_properties(headers)?.unwrap_or_default(),
        ..Props::default()
    };
    path_headers(headers)?.apply(&mut props);
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || {
        if is_file {
            st.store.create_file(&disk, if_none_match, props)
        } else {
            st.store.create_dir(&disk, if_none_match, props)
        }
    })
    .await?;
    // "If the destination already exists and has a lease the lease is broken" (Path -
    // Create documentation; the service's actual behaviour is UNCONFIRMED).
    state.leases.remove(&key);
    let mut resp = empty(StatusCode::CREATED);
    with_meta(&mut resp, &meta);
    set(&mut resp, "x-ms-request-server-encrypted", "true");
    Ok(resp)
}

/// `PUT` with `x-ms-rename-source: /{filesystem}/{path}[?sas]`: moves a file or a
/// directory (`mode=legacy` or `posix`, both treated alike) within the workspace.
async fn rename(
    state: &Arc<State>,
    query: &Query,
    headers: &HeaderMap,
    source: &str,
    target: &Target,
) -> Result<Response> {
    if let Some(m) = query.get("mode")
        && !m.eq_ignore_ascii_case("legacy")
        && !m.eq_ignore_ascii_case("posix")
    {
        return Err(ServiceError::invalid_query(format!("mode={m}")));
    }
    let source_path = source.split('?').next().unwrap_or(source);
    let segs = path_segments(source_path)
        .map_err(|_| ServiceError::invalid_header("x-ms-rename-source"))?;
    if segs.len() < 2 || !state.resolve_workspace(&segs[0]) {
        return Err(ServiceError::invalid_header("x-ms-rename-source"));
    }
    let from = resolve(state, &segs)?;
    for t in [&from, target] {
        if t.is_protected() || t.outside_data_folders() {
            return Err(ServiceError::protected());
        }
    }
    // The source's lease id travels in x-ms-source-lease-id; the destination's in
    // x-ms-lease-id.
    let source_lease = header_str(headers, "x-ms-source-lease-id")?;
    state.leases.check_write(
        &state.store.key(&from.disk),
        source_lease,
        state.lease_now(),
        Surface::Path,
    )?;
    if headers.contains_key("x-ms-lease-id") {
        check_lease(state, headers, target)?;
    }
    let if_none_match = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        == Some("*");
    let properties = parse_properties(headers)?;
    let st = state.clone();
    let (src, dst) = (from.disk.clone(), target.disk.clone());
    let meta = blocking(move || {
        let meta = st.store.rename(&src, &dst, if_none_match)?;
        match properties {
            // "x-ms-properties … overrides the source's properties if given".
            Some(p) => st.store.update_props(&dst, |props| props.metadata = p),
            None => Ok(meta),
        }
    })
    .await?;
    state.leases.remove_tree(&state.store.key(&from.disk));
    let mut resp = empty(StatusCode::CREATED);
    with_meta(&mut resp, &meta);
    Ok(resp)
}

/// `x-ms-properties: n1=base64(v1),n2=…` → decoded (name, value) pairs; `None` when the
/// header is absent. Values that are not base64 of UTF-8 text are 400.
pub(crate) fn parse_properties(headers: &HeaderMap) -> Result<Option<Vec<(String, String)>>> {
    let Some(raw) = header_str(headers, "x-ms-properties")? else {
        return Ok(None);
    };
    let bad = || ServiceError::invalid_header("x-ms-properties");
    let mut out = Vec::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').ok_or_else(bad)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(value.trim())
            .map_err(|_| bad())?;
        let value = String::from_utf8(bytes).map_err(|_| bad())?;
        if name.trim().is_empty() {
            return Err(bad());
        }
        out.push((name.trim().to_owned(), value));
    }
    Ok(Some(out))
}

/// User metadata in `x-ms-properties` form.
pub(crate) fn format_properties(metadata: &[(String, String)]) -> String {
    metadata
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                base64::engine::general_purpose::STANDARD.encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The DFS path HTTP headers (`x-ms-content-type`, …, `x-ms-content-md5`).
fn path_headers(headers: &HeaderMap) -> Result<Headers> {
    let get = |n: &str| header_str(headers, n).map(|v| v.map(str::to_owned));
    Ok(Headers {
        content_type: get("x-ms-content-type")?,
        content_encoding: get("x-ms-content-encoding")?,
        content_language: get("x-ms-content-language")?,
        content_disposition: get("x-ms-content-disposition")?,
        cache_control: get("x-ms-cache-control")?,
        content_md5: get("x-ms-content-md5")?,
    })
}

/// A `Content-MD5` sent with a body must match it: 400 `Md5Mismatch` otherwise.
pub(crate) fn check_md5(headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let Some(want) = header_str(headers, "content-md5")? else {
        return Ok(());
    };
    let got = md5_base64(body);
    if want.trim() != got {
        return Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "Md5Mismatch",
            "The MD5 value specified in the request did not match with the MD5 value calculated by the server.",
        )
        .with_header_owned("x-ms-content-md5", &got));
    }
    Ok(())
}

pub(crate) fn md5_base64(data: &[u8]) -> String {
    use md5::Digest as _;
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(data))
}

/// The content and metadata headers of a path, as both HEAD flavours show them:
/// DFS (`x-ms-properties`, `x-ms-resource-type`) and Blob (`x-ms-meta-*`,
/// `x-ms-blob-type`, directories marked `hdi_isfolder`).
pub(crate) fn with_props(resp: &mut Response, meta: &Meta, props: &Props) {
    // Directories are block blobs marked `hdi_isfolder` on the Blob API.
    set(resp, "x-ms-blob-type", "BlockBlob");
    if meta.is_dir {
        set(resp, "x-ms-meta-hdi_isfolder", "true");
    } else {
        set(
            resp,
            "content-type",
            props
                .content_type
                .as_deref()
                .unwrap_or("application/octet-stream"),
        );
    }
    for (name, value) in [
        ("content-encoding", &props.content_encoding),
        ("content-language", &props.content_language),
        ("content-disposition", &props.content_disposition),
        ("cache-control", &props.cache_control),
        ("content-md5", &props.content_md5),
    ] {
        if let Some(v) = value {
            set(resp, name, v);
        }
    }
    if !props.metadata.is_empty() {
        set(resp, "x-ms-properties", &format_properties(&props.metadata));
    }
    for (k, v) in &props.metadata {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(name, value);
        }
    }
}

/// Refuses a write or delete of a leased path without its lease id.
pub(crate) fn check_lease(state: &State, headers: &HeaderMap, target: &Target) -> Result<()> {
    let given = match headers.get("x-ms-lease-id") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ServiceError::invalid_header("x-ms-lease-id"))?,
        ),
    };
    state.leases.check_write(
        &state.store.key(&target.disk),
        given,
        state.lease_now(),
        Surface::Path,
    )
}

pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| ServiceError::invalid_header(name)),
    }
}

/// `POST` with `x-ms-lease-action`: Path - Lease.
pub(crate) async fn lease(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    let action = header_str(headers, "x-ms-lease-action")?
        .ok_or_else(|| ServiceError::missing_header("x-ms-lease-action"))?;
    let id = |name: &str| -> Result<String> {
        let v = header_str(headers, name)?.ok_or_else(|| ServiceError::missing_header(name))?;
        lease::parse_id(name, v)
    };
    let proposed = match header_str(headers, "x-ms-proposed-lease-id")? {
        None => None,
        Some(v) => Some(lease::parse_id("x-ms-proposed-lease-id", v)?),
    };
    let action = match action.to_ascii_lowercase().as_str() {
        "acquire" => {
            let d = header_str(headers, "x-ms-lease-duration")?
                .ok_or_else(|| ServiceError::missing_header("x-ms-lease-duration"))?;
            lease::Action::Acquire(lease::parse_duration(d)?, proposed)
        }
        "renew" => lease::Action::Renew(id("x-ms-lease-id")?),
        "change" => lease::Action::Change(
            id("x-ms-lease-id")?,
            proposed.ok_or_else(|| ServiceError::missing_header("x-ms-proposed-lease-id"))?,
        ),
        "release" => lease::Action::Release(id("x-ms-lease-id")?),
        "break" => lease::Action::Break(match header_str(headers, "x-ms-lease-break-period")? {
            None => None,
            Some(v) => Some(lease::parse_break_period(v)?),
        }),
        _ => return Err(ServiceError::invalid_header("x-ms-lease-action")),
    };
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.stat(&disk)).await?;
    let answer = state.leases.act(
        &state.store.key(&target.disk),
        action,
        state.lease_now(),
        || state.next_request_id(),
    )?;
    let mut resp = empty(answer.status);
    with_meta(&mut resp, &meta);
    if let Some(id) = &answer.lease_id {
        set(&mut resp, "x-ms-lease-id", id);
    }
    if let Some(t) = answer.lease_time {
        set(&mut resp, "x-ms-lease-time", &t.to_string());
    }
    Ok(resp)
}

/// `x-ms-lease-state`, `x-ms-lease-status` and (while leased) `x-ms-lease-duration`.
pub(crate) fn with_lease(state: &State, resp: &mut Response, target: &Target) {
    let v = state
        .leases
        .view(&state.store.key(&target.disk), state.lease_now());
    set(resp, "x-ms-lease-state", v.state);
    set(resp, "x-ms-lease-status", v.status);
    if let Some(d) = v.duration {
        set(resp, "x-ms-lease-duration", d);
    }
}

async fn patch(
    state: &Arc<State>,
    query: &Query,
    version: &str,
    req: Request,
    target: &Target,
) -> Result<Response> {
    let action = query
        .get("action")
        .ok_or_else(|| ServiceError::missing_query("action"))?
        .to_ascii_lowercase();
    match action.as_str() {
        "append" => {
            let position = query
                .u64("position")?
                .ok_or_else(|| ServiceError::missing_query("position"))?;
            let flush = query.bool("flush")?.unwrap_or(false);
            if flush && version < "2021-10-04" {
                // UNCONFIRMED what the service does; refusing beats silently not flushing.
                return Err(ServiceError::invalid_query(
                    "flush=true needs x-ms-version 2021-10-04 or later.",
                ));
            }
            let headers = req.headers().clone();
            let Some(len) = req.headers().get(header::CONTENT_LENGTH) else {
                return Err(ServiceError::missing_content_length());
            };
            if len
                .to_str()
                .ok()
                .and_then(|l| l.parse::<u64>().ok())
                .is_none()
            {
                return Err(ServiceError::invalid_header("Content-Length"));
            }
            // Bodies are held in memory (one append at a time per request); fine for the
            // chunk sizes a client sends in tests.
            let body = axum::body::to_bytes(req.into_body(), usize::MAX)
                .await
                .map_err(|e| ServiceError::invalid_header(&format!("Content-Length ({e})")))?;
            check_md5(&headers, &body)?;
            let opts = if flush {
                check_if_none_match(state, &headers, target).await?;
                Some(FlushOpts {
                    retain: false,
                    headers: path_headers(&headers)?,
                })
            } else {
                None
            };
            let st = state.clone();
            let disk = target.disk.clone();
            let meta = blocking(move || st.store.append(&disk, position, &body, opts)).await?;
            let mut resp = empty(StatusCode::ACCEPTED);
            if let Some(meta) = meta {
                with_meta(&mut resp, &meta);
            }
            set(&mut resp, "x-ms-request-server-encrypted", "true");
            Ok(resp)
        }
        "flush" => {
            let position = query
                .u64("position")?
                .ok_or_else(|| ServiceError::missing_query("position"))?;
            require_zero_length(req.headers())?;
            check_if_none_match(state, req.headers(), target).await?;
            let opts = FlushOpts {
                retain: query.bool("retainUncommittedData")?.unwrap_or(false),
                headers: path_headers(req.headers())?,
            };
            let st = state.clone();
            let disk = target.disk.clone();
            let meta = blocking(move || st.store.flush(&disk, position, opts)).await?;
            let mut resp = empty(StatusCode::OK);
            with_meta(&mut resp, &meta);
            // As recorded: a classic flush answers `false` here.
            set(&mut resp, "x-ms-request-server-encrypted", "false");
            Ok(resp)
        }
        "setproperties" => {
            let metadata = parse_properties(req.headers())?;
            let h = path_headers(req.headers())?;
            let st = state.clone();
            let disk = target.disk.clone();
            let meta = blocking(move || {
                st.store.update_props(&disk, |p| {
                    if let Some(m) = metadata {
                        p.metadata = m;
                    }
                    h.apply(p);
                })
            })
            .await?;
            let mut resp = empty(StatusCode::OK);
            with_meta(&mut resp, &meta);
            Ok(resp)
        }
        // OneLake: "query parameters that change semantics make the request fail".
        "setaccesscontrol" | "setaccesscontrolrecursive" => {
            Err(ServiceError::unsupported_query("action"))
        }
        other => Err(ServiceError::invalid_query(format!("action={other}"))),
    }
}

/// A parsed `Range` / `x-ms-range` header: `bytes=a-b`, `bytes=a-`, `bytes=-n`.
#[derive(Debug, Clone, Copy)]
enum Range {
    From(u64, Option<u64>),
    Suffix(u64),
}

fn parse_range(headers: &HeaderMap) -> Option<Range> {
    let v = headers
        .get("x-ms-range")
        .or_else(|| headers.get(header::RANGE))?
        .to_str()
        .ok()?;
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    if a.is_empty() {
        return b.parse().ok().map(Range::Suffix);
    }
    let a: u64 = a.parse().ok()?;
    let b: Option<u64> = if b.is_empty() {
        None
    } else {
        Some(b.parse().ok()?)
    };
    if matches!(b, Some(b) if b < a) {
        return None; // syntactically invalid: ignored, whole file served
    }
    Some(Range::From(a, b))
}

pub(crate) async fn read(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    let range = parse_range(headers);
    let st = state.clone();
    let disk = target.disk.clone();
    let (meta, file, start, count, total) = blocking(move || {
        let opened = st.store.open_read(&disk)?;
        let Some(mut file) = opened.file else {
            return Ok((opened.meta, None, 0, 0, 0));
        };
        let total = file.metadata()?.len();
        let (start, count) = match range {
            None => (0, total),
            Some(Range::From(a, _)) if a >= total => {
                return Err(ServiceError::invalid_range(total));
            }
            Some(Range::From(a, b)) => (a, b.map_or(total, |b| b.min(total - 1) + 1) - a),
            Some(Range::Suffix(0)) => return Err(ServiceError::invalid_range(total)),
            Some(Range::Suffix(_)) if total == 0 => return Err(ServiceError::invalid_range(total)),
            Some(Range::Suffix(n)) => (total - n.min(total), n.min(total)),
        };
        file.seek(SeekFrom::Start(start))?;
        Ok((opened.meta, Some(file), start, count, total))
    })
    .await?;
    let Some(file) = file else {
        // Reading a directory: an empty body that says what it is.
        let mut resp = empty(StatusCode::OK);
        with_meta(&mut resp, &meta);
        set(&mut resp, "x-ms-resource-type", "directory");
        with_props(&mut resp, &meta, &state.store.props(&target.disk));
        return Ok(resp);
    };
    let want_range_md5 = range.is_some()
        && header_str(headers, "x-ms-range-get-content-md5")?
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if want_range_md5 && count > 4 << 20 {
        return Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "OutOfRangeInput",
            "x-ms-range-get-content-md5 needs a range of at most 4 MiB.",
        ));
    }
    let mut reader = tokio::fs::File::from_std(file).take(count);
    let mut range_md5 = None;
    let mut resp = if want_range_md5 {
        let mut buf = Vec::with_capacity(count as usize);
        reader.read_to_end(&mut buf).await?;
        range_md5 = Some(md5_base64(&buf));
        Response::new(Body::from(buf))
    } else {
        Response::new(Body::from_stream(
            tokio_util::io::ReaderStream::with_capacity(reader, 256 * 1024),
        ))
    };
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        set(
            &mut resp,
            "content-range",
            &format!("bytes {start}-{}/{total}", start + count - 1),
        );
    }
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    let props = state.store.props(&target.disk);
    with_props(&mut resp, &meta, &props);
    if range.is_some() {
        // A ranged read carries the whole content's MD5 in x-ms-blob-content-md5, and in
        // Content-MD5 only the range's, when asked for.
        resp.headers_mut().remove("content-md5");
        if let Some(m) = &props.content_md5 {
            set(&mut resp, "x-ms-blob-content-md5", m);
            set(&mut resp, "x-ms-content-md5", m);
        }
        if let Some(m) = &range_md5 {
            set(&mut resp, "content-md5", m);
        }
    }
    set(&mut resp, "accept-ranges", "bytes");
    with_meta(&mut resp, &meta);
    set(&mut resp, "x-ms-resource-type", "file");
    set(
        &mut resp,
        "x-ms-creation-time",
        &time::http_date(time::nanos_from_filetime(meta.created)),
    );
    set(&mut resp, "x-ms-server-encrypted", "true");
    with_lease(state, &mut resp, target);
    Ok(resp)
}

pub(crate) async fn properties(
    state: &Arc<State>,
    _headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.stat(&disk)).await?;
    let mut resp = empty(StatusCode::OK);
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len));
    with_meta(&mut resp, &meta);
    set(
        &mut resp,
        "x-ms-resource-type",
        if meta.is_dir { "directory" } else { "file" },
    );
    set(
        &mut resp,
        "x-ms-creation-time",
        &time::http_date(time::nanos_from_filetime(meta.created)),
    );
    set(&mut resp, "x-ms-owner", "$superuser");
    set(&mut resp, "x-ms-group", "$superuser");
    set(&mut resp, "x-ms-permissions", PERMISSIONS);
    set(&mut resp, "x-ms-server-encrypted", "true");
    with_lease(state, &mut resp, target);
    let props = state.store.props(&target.disk);
    with_props(&mut resp, &meta, &props);
    if !meta.is_dir {
        set(&mut resp, "accept-ranges", "bytes");
    }
    Ok(resp)
}

async fn delete(state: &Arc<State>, query: &Query, target: &Target) -> Result<Response> {
    if target.is_protected() {
        return Err(ServiceError::protected());
    }
    let recursive = query.bool("recursive")?.unwrap_or(false);
    let payload = target.token_payload(state);
    if let Some(token) = query.get("continuation")
        && token::decode_token(token::TOKEN_DELETE, token).as_deref() != Some(payload.as_str())
    {
        return Err(ServiceError::invalid_query("continuation"));
    }
    let page = state.page_size.min(MAX_PAGE);
    let st = state.clone();
    let disk = target.disk.clone();
    let more = blocking(move || st.store.delete(&disk, recursive, page)).await?;
    if !more {
        state.leases.remove_tree(&state.store.key(&target.disk));
    }
    let mut resp = empty(StatusCode::OK);
    set(&mut resp, "x-ms-delete-type-permanent", "true");
    if more {
        set(
            &mut resp,
            "x-ms-continuation",
            &token::encode_token(token::TOKEN_DELETE, &payload),
        );
    }
    Ok(resp)
}

async fn filesystem_op(
    state: &Arc<State>,
    method: &Method,
    query: &Query,
    fs: &str,
) -> Result<Response> {
    let resource = query
        .get("resource")
        .ok_or_else(|| ServiceError::missing_query("resource"))?;
    if !resource.eq_ignore_ascii_case("filesystem") {
        return Err(ServiceError::invalid_query(format!("resource={resource}")));
    }
    match *method {
        Method::GET => list(state, query, fs).await,
        Method::HEAD => {
            if state.is_denied(&format!("/{fs}")) {
                return Err(ServiceError::permission_mismatch());
            }
            let mut resp = empty(StatusCode::OK);
            let etag = 0x08D0_0000_0000_0000u64
                | (time::filetime_from_nanos(state.started_ns) & 0x000F_FFFF_FFFF_FFFF);
            set(&mut resp, "etag", &format!("\"0x{etag:X}\""));
            set(
                &mut resp,
                "last-modified",
                &time::http_date(state.started_ns),
            );
            set(&mut resp, "x-ms-namespace-enabled", "true");
            Ok(resp)
        }
        // OneLake manages workspaces: no filesystem create or delete.
        Method::PUT | Method::DELETE => Err(ServiceError::protected()),
        _ => Err(ServiceError::unsupported_verb()),
    }
}

async fn list(state: &Arc<State>, query: &Query, fs: &str) -> Result<Response> {
    let recursive = query
        .bool("recursive")?
        .ok_or_else(|| ServiceError::missing_query("recursive"))?;
    let page = match query.u64("maxResults")? {
        Some(0) => return Err(ServiceError::invalid_query("maxResults=0")),
        Some(n) => (n.min(MAX_PAGE as u64) as usize).min(state.page_size),
        None => state.page_size.min(MAX_PAGE),
    };
    // A trailing slash on `directory` is tolerated; other empty segments are not.
    let directory = query
        .get("directory")
        .map(|d| d.trim_end_matches('/'))
        .filter(|d| !d.is_empty());
    let dir_segs = match directory {
        Some(d) => split_segments(d.trim_start_matches('/'), |m| {
            ServiceError::invalid_query(format!("directory: {m}"))
        })?,
        None => Vec::new(),
    };
    let denied_path = if dir_segs.is_empty() {
        format!("/{fs}")
    } else {
        format!("/{fs}/{}", dir_segs.join("/"))
    };
    if state.is_denied(&denied_path) {
        return Err(ServiceError::permission_mismatch());
    }
    let (root, prefix, only) = if dir_segs.is_empty() {
        let only: HashSet<String> = state.lakehouses.iter().map(|l| l.folder()).collect();
        (
            state.data_dir.join(&state.workspace_name),
            String::new(),
            Some(only),
        )
    } else {
        let lakehouse = state
            .resolve_item(&dir_segs[0])
            .ok_or_else(ServiceError::path_not_found)?;
        let mut root = state.lakehouses[lakehouse].root.clone();
        root.extend(&dir_segs[1..]);
        (root, dir_segs.join("/"), None)
    };
    let after = match query.get("continuation") {
        None => None,
        Some(token) => {
            let last = token::decode_token(token::TOKEN_LIST, token)
                .ok_or_else(|| ServiceError::invalid_query("continuation"))?;
            let rel = if prefix.is_empty() {
                Some(last.as_str())
            } else {
                last.strip_prefix(prefix.as_str())
                    .and_then(|r| r.strip_prefix('/'))
            };
            match rel {
                Some(r) if !r.is_empty() => Some(r.to_owned()),
                _ => return Err(ServiceError::invalid_query("continuation")),
            }
        }
    };
    let st = state.clone();
    let (entries, next) = blocking(move || {
        let meta = st.store.stat(&root).map_err(|e| {
            if e.code == "PathNotFound" {
                ServiceError::path_not_found()
            } else {
                e
            }
        })?;
        if !meta.is_dir {
            // Listing a file lists that file.
            return Ok((vec![ListEntry { name: prefix, meta }], None));
        }
        st.store.list(
            &root,
            &prefix,
            only.as_ref(),
            recursive,
            after.as_deref(),
            page,
        )
    })
    .await?;
    let mut body = String::with_capacity(64 + entries.len() * 240);
    body.push_str("{\"paths\":[");
    for (i, e) in entries.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        push_entry(&mut body, e);
    }
    body.push_str("]}");
    let mut resp = Response::new(Body::from(body));
    set(&mut resp, "content-type", "application/json; charset=utf-8");
    if let Some(next) = next {
        set(
            &mut resp,
            "x-ms-continuation",
            &token::encode_token(token::TOKEN_LIST, &next),
        );
    }
    Ok(resp)
}

/// One listing entry, keys in the service's (alphabetical) order, numbers as strings,
/// `isDirectory` only on directories, etag unquoted, creationTime in FILETIME ticks.
fn push_entry(out: &mut String, e: &ListEntry) {
    let m = &e.meta;
    let name = serde_json::to_string(&e.name).unwrap_or_else(|_| "\"\"".to_owned());
    out.push_str(&format!(
        "{{\"contentLength\":\"{}\",\"creationTime\":\"{}\",\"etag\":\"{}\",\"expiryTime\":\"0\",\"group\":\"$superuser\",",
        m.len,
        m.created,
        m.etag()
    ));
    if m.is_dir {
        out.push_str("\"isDirectory\":\"true\",");
    }
    out.push_str(&format!(
        "\"lastModified\":\"{}\",\"name\":{name},\"owner\":\"$superuser\",\"permissions\":\"{PERMISSIONS}\"}}",
        time::http_date(m.modified_ns)
    ));
}
