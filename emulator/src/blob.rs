//! The OneLake Blob surface, on the same port and over the same stored files as DFS: a
//! file written through either API reads back identically, with the same ETag, through
//! the other.
//!
//! Container = workspace, blob name = `<item>/<path…>`. Operations: Put Blob, Put Block,
//! Put Block List, Get Block List, Get Blob (ranges, via the shared read), Get Blob
//! Properties, Get/Set Blob Metadata, Set Blob Properties, Delete Blob (202), Lease Blob,
//! List Blobs (flat or with a delimiter, `prefix`, `maxresults`, `marker`,
//! `include=metadata`), container properties, and account information. Shapes follow
//! the Blob REST documentation and Azurite's serializers; errors are XML.
//!
//! As on an account with a hierarchical namespace, directories are blobs too: zero
//! length, metadata `hdi_isfolder=true`, `<ResourceType>directory</ResourceType>`; they
//! appear in listings (a delimiter listing shows a directory both as a `BlobPrefix` and
//! as its marker blob), and a zero-length Put Blob with `hdi_isfolder=true` makes one.
//!
//! Not emulated: Blob Batch (`comp=batch`) — whether OneLake serves it is UNCONFIRMED,
//! and Azure announced it as unavailable on hierarchical-namespace accounts — so it is
//! answered 409 `FeatureNotYetSupportedForHierarchicalNamespaceAccounts`; append and page
//! blobs (same answer); snapshots, versions, tags, tiers, copy.

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use quick_xml::escape::escape;

use crate::dfs::{
    self, Target, blocking, check_md5, empty, header_str, md5_base64, set, with_meta,
};
use crate::error::{Result, ServiceError};
use crate::lease::Surface;
use crate::request::Query;
use crate::state::State;
use crate::store::{BlockRef, Headers, ListEntry, Props};
use crate::{time, token};

/// The most entries one List Blobs page holds (the real cap).
const MAX_RESULTS: usize = 5000;

/// Whether a storage request speaks the Blob API rather than DFS. Both share URLs, so the
/// request itself decides: Blob-only query parameters (`comp`, `restype`, `blockid`),
/// a `PUT` that is neither a DFS create nor a rename (Put Blob), or a `DELETE` without
/// DFS's `recursive`/`continuation`/`paginated` (Delete Blob). `GET` and `HEAD` of a
/// path are answered with both APIs' headers. A bare `DELETE` of a path is thus Delete
/// Blob (202): the DFS documentation lists 202 as a success of Path - Delete too, while
/// Blob clients accept nothing else.
pub fn is_blob_request(method: &Method, path: &str, query: &Query, headers: &HeaderMap) -> bool {
    if query.get("comp").is_some()
        || query.get("restype").is_some()
        || query.get("blockid").is_some()
    {
        return true;
    }
    // Account and container URLs are Blob only with `restype`/`comp`.
    if path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .count()
        < 2
    {
        return false;
    }
    match *method {
        Method::PUT => {
            query.get("resource").is_none()
                && query.get("action").is_none()
                && !headers.contains_key("x-ms-rename-source")
        }
        Method::DELETE => {
            query.get("recursive").is_none()
                && query.get("continuation").is_none()
                && query.get("paginated").is_none()
        }
        _ => false,
    }
}

/// Answers one Blob request.
pub async fn dispatch(state: &Arc<State>, req: Request) -> Result<Response> {
    dfs::check_version(req.headers())?;
    let query = Query::parse(req.uri().query().unwrap_or(""))?;
    let raw_path = req.uri().path().to_owned();
    let segs = blob_segments(&raw_path)?;
    let method = req.method().clone();
    if segs.is_empty() {
        return account(&method, &query);
    }
    if !state.resolve_workspace(&segs[0]) {
        return Err(ServiceError::filesystem_not_found());
    }
    if segs.len() == 1 {
        return container(state, &method, &query, req.headers(), &segs[0]).await;
    }
    if query.is("restype", "container") {
        return Err(ServiceError::invalid_query(
            "restype=container names a container, not a blob.",
        ));
    }
    let target = dfs::resolve(state, &segs)?;
    dfs::check_if_match(state, req.headers(), &target).await?;
    let comp = query.get("comp").map(str::to_ascii_lowercase);
    match (&method, comp.as_deref()) {
        (&Method::PUT, None) => put_blob(state, req, &target).await,
        (&Method::PUT, Some("block")) => put_block(state, &query, req, &target).await,
        (&Method::PUT, Some("blocklist")) => put_block_list(state, req, &target).await,
        (&Method::PUT, Some("metadata")) => set_metadata(state, req.headers(), &target).await,
        (&Method::PUT, Some("properties")) => set_properties(state, req.headers(), &target).await,
        (&Method::PUT, Some("lease")) => dfs::lease(state, req.headers(), &target).await,
        (&Method::GET, Some("blocklist")) => get_block_list(state, &query, &target).await,
        (&Method::GET | &Method::HEAD, Some("metadata")) => get_metadata(state, &target).await,
        (&Method::DELETE, None) => delete_blob(state, req.headers(), &target).await,
        (&Method::GET, None) => dfs::read(state, req.headers(), &target).await,
        (&Method::HEAD, None) => dfs::properties(state, req.headers(), &target).await,
        (_, Some(c)) => Err(ServiceError::invalid_query(format!("comp={c}"))),
        _ => Err(ServiceError::unsupported_verb()),
    }
}

/// Blob names keep every character but `/` separates segments; empty, `.` and `..`
/// segments are refused like on DFS. A trailing slash (a directory marker name) is
/// refused with 400 `InvalidUri`, as hierarchical-namespace accounts do (rclone#7047).
fn blob_segments(raw: &str) -> Result<Vec<String>> {
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ServiceError::invalid_uri("The path is not valid UTF-8."))?;
    let rest = decoded.strip_prefix('/').unwrap_or(&decoded);
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    // `/container/` alone is the container.
    if let Some(c) = rest.strip_suffix('/')
        && !c.contains('/')
    {
        return dfs::split_segments(c, ServiceError::invalid_uri);
    }
    dfs::split_segments(rest, ServiceError::invalid_uri)
}

fn account(method: &Method, query: &Query) -> Result<Response> {
    if query.is("restype", "account") && query.is("comp", "properties") {
        let mut resp = empty(StatusCode::OK);
        set(&mut resp, "x-ms-sku-name", "Standard_LRS");
        set(&mut resp, "x-ms-account-kind", "StorageV2");
        set(&mut resp, "x-ms-is-hns-enabled", "true");
        return Ok(resp);
    }
    if *method == Method::HEAD {
        return Ok(empty(StatusCode::OK));
    }
    // OneLake allows only HEAD at account level (workspaces are not listed here).
    Err(ServiceError::protected())
}

async fn container(
    state: &Arc<State>,
    method: &Method,
    query: &Query,
    headers: &HeaderMap,
    fs: &str,
) -> Result<Response> {
    if state.is_denied(&format!("/{fs}")) {
        return Err(ServiceError::permission_mismatch());
    }
    let comp = query.get("comp").map(str::to_ascii_lowercase);
    match (method, comp.as_deref()) {
        (&Method::GET, Some("list")) => list_blobs(state, query, headers, fs).await,
        (&Method::GET | &Method::HEAD, None) => {
            let mut resp = empty(StatusCode::OK);
            let etag = 0x08D0_0000_0000_0000u64
                | (time::filetime_from_nanos(state.started_ns) & 0x000F_FFFF_FFFF_FFFF);
            set(&mut resp, "etag", &format!("\"0x{etag:X}\""));
            set(
                &mut resp,
                "last-modified",
                &time::http_date(state.started_ns),
            );
            set(&mut resp, "x-ms-lease-status", "unlocked");
            set(&mut resp, "x-ms-lease-state", "available");
            set(&mut resp, "x-ms-has-immutability-policy", "false");
            set(&mut resp, "x-ms-has-legal-hold", "false");
            set(
                &mut resp,
                "x-ms-default-encryption-scope",
                "$account-encryption-key",
            );
            set(&mut resp, "x-ms-deny-encryption-scope-override", "false");
            Ok(resp)
        }
        // The workspace exists; creating it again is what the service would refuse.
        (&Method::PUT, None) => Err(ServiceError::new(
            StatusCode::CONFLICT,
            "ContainerAlreadyExists",
            "The specified container already exists.",
        )),
        (&Method::POST, Some("batch")) => Err(ServiceError::new(
            StatusCode::CONFLICT,
            "FeatureNotYetSupportedForHierarchicalNamespaceAccounts",
            "This operation is not supported on accounts with a hierarchical namespace (Blob Batch is not emulated; OneLake support is unconfirmed).",
        )),
        // OneLake manages workspaces: no delete, metadata, ACL or lease on them.
        _ => Err(ServiceError::protected()),
    }
}

/// `x-ms-meta-*` headers, in order, names without the prefix.
fn metadata_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in headers {
        if let Some(name) = k.as_str().strip_prefix("x-ms-meta-") {
            let v = v
                .to_str()
                .map_err(|_| ServiceError::invalid_header(k.as_str()))?;
            out.push((name.to_owned(), v.to_owned()));
        }
    }
    Ok(out)
}

/// The `x-ms-blob-content-*` headers.
fn blob_headers(headers: &HeaderMap) -> Result<Headers> {
    let get = |n: &str| header_str(headers, n).map(|v| v.map(str::to_owned));
    Ok(Headers {
        content_type: get("x-ms-blob-content-type")?,
        content_encoding: get("x-ms-blob-content-encoding")?,
        content_language: get("x-ms-blob-content-language")?,
        content_disposition: get("x-ms-blob-content-disposition")?,
        cache_control: get("x-ms-blob-cache-control")?,
        content_md5: get("x-ms-blob-content-md5")?,
    })
}

fn check_writable(state: &State, headers: &HeaderMap, target: &Target) -> Result<()> {
    if target.is_protected() || target.outside_data_folders() {
        return Err(ServiceError::protected());
    }
    state.leases.check_write(
        &state.store.key(&target.disk),
        header_str(headers, "x-ms-lease-id")?,
        state.lease_now(),
        Surface::Blob,
    )
}

/// `If-None-Match: *` on Put Blob / Put Block List: 409 `BlobAlreadyExists` when the
/// blob exists.
fn check_none_match(headers: &HeaderMap, target: &Target) -> Result<()> {
    if header_str(headers, "if-none-match")?.map(str::trim) == Some("*") && target.disk.exists() {
        return Err(ServiceError::new(
            StatusCode::CONFLICT,
            "BlobAlreadyExists",
            "The specified blob already exists.",
        ));
    }
    Ok(())
}

fn not_hns() -> ServiceError {
    ServiceError::new(
        StatusCode::CONFLICT,
        "FeatureNotYetSupportedForHierarchicalNamespaceAccounts",
        "This operation is not yet supported on accounts with a hierarchical namespace (only block blobs).",
    )
}

async fn body_bytes(req: Request) -> Result<(HeaderMap, bytes::Bytes)> {
    let (parts, body) = req.into_parts();
    if !parts.headers.contains_key(header::CONTENT_LENGTH)
        && !parts.headers.contains_key(header::TRANSFER_ENCODING)
    {
        return Err(ServiceError::missing_content_length());
    }
    let data = axum::body::to_bytes(body, usize::MAX)
        .await
        .map_err(|e| ServiceError::invalid_header(&format!("Content-Length ({e})")))?;
    Ok((parts.headers, data))
}

/// Put Blob (a leased blob keeps its lease: the write carried the lease id). Like the service (version 2012-02-12 and later), it stores the content's
/// MD5 even when the request sends none; a sent `Content-MD5` must match the body.
async fn put_blob(state: &Arc<State>, req: Request, target: &Target) -> Result<Response> {
    let blob_type = header_str(req.headers(), "x-ms-blob-type")?
        .ok_or_else(|| ServiceError::missing_header("x-ms-blob-type"))?;
    if !blob_type.eq_ignore_ascii_case("BlockBlob") {
        return Err(not_hns());
    }
    check_writable(state, req.headers(), target)?;
    check_none_match(req.headers(), target)?;
    let (headers, data) = body_bytes(req).await?;
    check_md5(&headers, &data)?;
    let metadata = metadata_headers(&headers)?;
    let is_folder = data.is_empty()
        && metadata
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("hdi_isfolder") && v.eq_ignore_ascii_case("true"));
    let mut props = Props {
        metadata: metadata
            .into_iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("hdi_isfolder"))
            .collect(),
        ..Props::default()
    };
    blob_headers(&headers)?.apply(&mut props);
    let computed = md5_base64(&data);
    if props.content_md5.is_none() && !is_folder {
        props.content_md5 = Some(computed.clone());
    }
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || {
        if is_folder {
            st.store.create_dir(&disk, false, props)
        } else {
            st.store.put_blob(&disk, &data, props)
        }
    })
    .await?;
    let mut resp = empty(StatusCode::CREATED);
    with_meta(&mut resp, &meta);
    if !is_folder {
        set(&mut resp, "content-md5", &computed);
    }
    set(&mut resp, "x-ms-request-server-encrypted", "true");
    Ok(resp)
}

/// Put Block: block ids are base64 of at most 64 bytes, all of one length per blob.
async fn put_block(
    state: &Arc<State>,
    query: &Query,
    req: Request,
    target: &Target,
) -> Result<Response> {
    let id = query
        .get("blockid")
        .ok_or_else(|| ServiceError::missing_query("blockid"))?
        .to_owned();
    let decoded = STANDARD
        .decode(id.as_bytes())
        .map_err(|_| ServiceError::invalid_query("blockid"))?;
    if decoded.is_empty() || decoded.len() > 64 {
        return Err(ServiceError::invalid_query("blockid"));
    }
    check_writable(state, req.headers(), target)?;
    let (headers, data) = body_bytes(req).await?;
    check_md5(&headers, &data)?;
    let (_, uncommitted) = state.store.block_list(&target.disk);
    if let Some((other, _)) = uncommitted.first()
        && STANDARD.decode(other.as_bytes()).map(|o| o.len()).ok() != Some(decoded.len())
    {
        return Err(ServiceError::new(
            StatusCode::BAD_REQUEST,
            "InvalidBlobOrBlock",
            "The specified blob or block content is invalid (block ids of one blob must have the same length).",
        ));
    }
    let md5 = md5_base64(&data);
    let st = state.clone();
    let disk = target.disk.clone();
    blocking(move || st.store.stage_block(&disk, &id, &data)).await?;
    let mut resp = empty(StatusCode::CREATED);
    set(&mut resp, "content-md5", &md5);
    set(&mut resp, "x-ms-request-server-encrypted", "true");
    Ok(resp)
}

/// Put Block List: `<BlockList><Latest|Committed|Uncommitted>id</…>…</BlockList>`.
async fn put_block_list(state: &Arc<State>, req: Request, target: &Target) -> Result<Response> {
    check_writable(state, req.headers(), target)?;
    check_none_match(req.headers(), target)?;
    let (headers, body) = body_bytes(req).await?;
    check_md5(&headers, &body)?;
    let list = parse_block_list(&body)?;
    let mut props = Props {
        metadata: metadata_headers(&headers)?,
        ..Props::default()
    };
    blob_headers(&headers)?.apply(&mut props);
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.commit_blocks(&disk, &list, props)).await?;
    let mut resp = empty(StatusCode::CREATED);
    with_meta(&mut resp, &meta);
    // Put Block List's Content-MD5 describes the request body (the list), not the blob.
    set(&mut resp, "content-md5", &md5_base64(&body));
    set(&mut resp, "x-ms-request-server-encrypted", "true");
    Ok(resp)
}

fn invalid_xml() -> ServiceError {
    ServiceError::new(
        StatusCode::BAD_REQUEST,
        "InvalidXmlDocument",
        "XML specified is not syntactically valid.",
    )
}

fn parse_block_list(body: &[u8]) -> Result<Vec<BlockRef>> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    let mut text = String::new();
    let mut saw_root = false;
    loop {
        match reader
            .read_event_into(&mut buf)
            .map_err(|_| invalid_xml())?
        {
            Event::Start(e) => {
                let name = e.name().as_ref().to_owned();
                if name == "BlockList" {
                    saw_root = true;
                } else {
                    current = Some(name);
                    text.clear();
                }
            }
            Event::Text(t) if current.is_some() => text.push_str(&t.xml10_content()),
            Event::End(e) => {
                let name = e.name().as_ref().to_owned();
                if current.as_deref() == Some(name.as_str()) {
                    let id = text.trim().to_owned();
                    out.push(match name.as_str() {
                        "Latest" => BlockRef::Latest(id),
                        "Committed" => BlockRef::Committed(id),
                        "Uncommitted" => BlockRef::Uncommitted(id),
                        _ => return Err(invalid_xml()),
                    });
                    current = None;
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !saw_root {
        return Err(invalid_xml());
    }
    Ok(out)
}

const XML_DECL: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

fn xml_response(body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    set(&mut resp, "content-type", "application/xml");
    resp
}

async fn get_block_list(state: &Arc<State>, query: &Query, target: &Target) -> Result<Response> {
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.stat(&disk)).await;
    let (committed, uncommitted) = state.store.block_list(&target.disk);
    if meta.is_err() && uncommitted.is_empty() {
        return Err(ServiceError::path_not_found());
    }
    let which = query
        .get("blocklisttype")
        .unwrap_or("committed")
        .to_ascii_lowercase();
    let section = |tag: &str, blocks: &[(String, u64)]| {
        let mut s = format!("<{tag}>");
        for (id, size) in blocks {
            s.push_str(&format!(
                "<Block><Name>{}</Name><Size>{size}</Size></Block>",
                escape(id.as_str())
            ));
        }
        s.push_str(&format!("</{tag}>"));
        s
    };
    let mut body = format!("{XML_DECL}<BlockList>");
    if which == "committed" || which == "all" {
        body.push_str(&section("CommittedBlocks", &committed));
    }
    if which == "uncommitted" || which == "all" {
        body.push_str(&section("UncommittedBlocks", &uncommitted));
    }
    body.push_str("</BlockList>");
    let mut resp = xml_response(body);
    if let Ok(m) = meta {
        with_meta(&mut resp, &m);
        set(&mut resp, "x-ms-blob-content-length", &m.len.to_string());
    }
    Ok(resp)
}

async fn set_metadata(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    check_writable(state, headers, target)?;
    let metadata: Vec<(String, String)> = metadata_headers(headers)?
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("hdi_isfolder"))
        .collect();
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.update_props(&disk, |p| p.metadata = metadata)).await?;
    let mut resp = empty(StatusCode::OK);
    with_meta(&mut resp, &meta);
    set(&mut resp, "x-ms-request-server-encrypted", "true");
    Ok(resp)
}

/// Set Blob Properties replaces all content headers: one not sent is cleared.
async fn set_properties(
    state: &Arc<State>,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Response> {
    check_writable(state, headers, target)?;
    let h = blob_headers(headers)?;
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.update_props(&disk, |p| h.replace(p))).await?;
    let mut resp = empty(StatusCode::OK);
    with_meta(&mut resp, &meta);
    Ok(resp)
}

async fn get_metadata(state: &Arc<State>, target: &Target) -> Result<Response> {
    let st = state.clone();
    let disk = target.disk.clone();
    let meta = blocking(move || st.store.stat(&disk)).await?;
    let props = state.store.props(&target.disk);
    let mut resp = empty(StatusCode::OK);
    with_meta(&mut resp, &meta);
    set_metadata_headers(&mut resp, &props.metadata);
    if meta.is_dir {
        set(&mut resp, "x-ms-meta-hdi_isfolder", "true");
    }
    Ok(resp)
}

fn set_metadata_headers(resp: &mut Response, metadata: &[(String, String)]) {
    for (k, v) in metadata {
        if let (Ok(n), Ok(v)) = (
            header::HeaderName::from_bytes(format!("x-ms-meta-{k}").as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().insert(n, v);
        }
    }
}

/// Delete Blob: 202. A directory goes only when it is empty.
async fn delete_blob(state: &Arc<State>, headers: &HeaderMap, target: &Target) -> Result<Response> {
    check_writable(state, headers, target)?;
    let st = state.clone();
    let disk = target.disk.clone();
    blocking(move || st.store.delete(&disk, false, 1)).await?;
    state.leases.remove_tree(&state.store.key(&target.disk));
    let mut resp = empty(StatusCode::ACCEPTED);
    set(&mut resp, "x-ms-delete-type-permanent", "true");
    Ok(resp)
}

// ---- List Blobs -------------------------------------------------------------------

/// What a listing shows of one path.
struct Item {
    name: String,
    entry: ListEntry,
}

async fn list_blobs(
    state: &Arc<State>,
    query: &Query,
    headers: &HeaderMap,
    fs: &str,
) -> Result<Response> {
    let prefix = query.get("prefix").unwrap_or("").to_owned();
    let delimiter = query
        .get("delimiter")
        .filter(|d| !d.is_empty())
        .map(str::to_owned);
    let max = match query.u64("maxresults")? {
        Some(0) => return Err(ServiceError::invalid_query("maxresults=0")),
        Some(n) => (n as usize).min(MAX_RESULTS),
        None => MAX_RESULTS,
    }
    .min(state.page_size);
    let include: HashSet<String> = query
        .get("include")
        .unwrap_or("")
        .split(',')
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let with_metadata = include.contains("metadata");
    let marker = match query.get("marker").filter(|m| !m.is_empty()) {
        None => None,
        Some(m) => Some(
            token::decode_token(token::TOKEN_BLOB, m)
                .ok_or_else(|| ServiceError::invalid_query("marker"))?,
        ),
    };
    // Walk the deepest folder the prefix names; sort like the service (by name bytes).
    let st = state.clone();
    let walk_prefix = prefix.clone();
    let mut items = blocking(move || walk(&st, &walk_prefix)).await?;
    items.retain(|i| i.name.starts_with(&prefix));
    items.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));

    // Fold names below a delimiter into prefixes; each listed element is either a blob or
    // a prefix, and the marker resumes after the last one.
    enum Listed {
        Blob(Item),
        Prefix(String),
    }
    let mut listed: Vec<Listed> = Vec::new();
    for item in items {
        let rest = &item.name[prefix.len()..];
        let folded = delimiter.as_deref().and_then(|d| {
            rest.find(d)
                .map(|i| format!("{prefix}{}", &rest[..i + d.len()]))
        });
        match folded {
            Some(p) => {
                if !matches!(listed.last(), Some(Listed::Prefix(last)) if *last == p) {
                    listed.push(Listed::Prefix(p));
                }
            }
            None => listed.push(Listed::Blob(item)),
        }
    }
    let key_of = |l: &Listed| match l {
        Listed::Blob(i) => i.name.clone(),
        Listed::Prefix(p) => p.clone(),
    };
    if let Some(m) = &marker {
        listed.retain(|l| key_of(l).as_bytes() > m.as_bytes());
    }
    let next = (listed.len() > max).then(|| key_of(&listed[max - 1]));
    listed.truncate(max);

    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let scheme = if state.tls { "https" } else { "http" };
    let mut out = String::with_capacity(256 + listed.len() * 900);
    out.push_str(XML_DECL);
    out.push_str(&format!(
        "<EnumerationResults ServiceEndpoint=\"{scheme}://{}/\" ContainerName=\"{}\">",
        escape(host),
        escape(fs)
    ));
    if !prefix.is_empty() {
        out.push_str(&format!("<Prefix>{}</Prefix>", escape(prefix.as_str())));
    }
    if let Some(m) = query.get("marker").filter(|m| !m.is_empty()) {
        out.push_str(&format!("<Marker>{}</Marker>", escape(m)));
    }
    if let Some(n) = query.get("maxresults") {
        out.push_str(&format!("<MaxResults>{}</MaxResults>", escape(n)));
    }
    if let Some(d) = &delimiter {
        out.push_str(&format!("<Delimiter>{}</Delimiter>", escape(d.as_str())));
    }
    out.push_str("<Blobs>");
    for l in &listed {
        match l {
            Listed::Blob(item) => push_blob(&mut out, state, item, with_metadata),
            Listed::Prefix(p) => {
                out.push_str(&format!(
                    "<BlobPrefix><Name>{}</Name></BlobPrefix>",
                    escape(p.as_str())
                ));
            }
        }
    }
    out.push_str("</Blobs>");
    match next {
        Some(n) => out.push_str(&format!(
            "<NextMarker>{}</NextMarker>",
            escape(token::encode_token(token::TOKEN_BLOB, &n).as_str())
        )),
        None => out.push_str("<NextMarker />"),
    }
    out.push_str("</EnumerationResults>");
    Ok(xml_response(out))
}

/// Every path whose name can start with `prefix`: a recursive walk of the deepest
/// existing folder the prefix names (the workspace's lakehouses when it names none).
fn walk(state: &State, prefix: &str) -> Result<Vec<Item>> {
    let parts: Vec<&str> = prefix.split('/').collect();
    // Complete segments of the prefix (the last part may be a partial name).
    let dir_parts = &parts[..parts.len().saturating_sub(1)];
    let mut out = Vec::new();
    if dir_parts.is_empty() {
        let only: HashSet<String> = state.lakehouses.iter().map(|l| l.folder()).collect();
        let root = state.data_dir.join(&state.workspace_name);
        let (entries, _) = state
            .store
            .list(&root, "", Some(&only), true, None, usize::MAX - 1)?;
        out.extend(entries.into_iter().map(|e| Item {
            name: e.name.clone(),
            entry: e,
        }));
        return Ok(out);
    }
    let Some(lh) = state.resolve_item(dir_parts[0]) else {
        return Ok(out);
    };
    if dir_parts[0] != state.lakehouses[lh].folder() {
        // Names in listings use the form the prefix used; only the folder form is walked.
        return Ok(out);
    }
    let mut root = state.lakehouses[lh].root.clone();
    root.extend(&dir_parts[1..]);
    if !root.is_dir() {
        return Ok(out);
    }
    let (entries, _) = state.store.list(
        &root,
        &dir_parts.join("/"),
        None,
        true,
        None,
        usize::MAX - 1,
    )?;
    out.extend(entries.into_iter().map(|e| Item {
        name: e.name.clone(),
        entry: e,
    }));
    Ok(out)
}

fn push_blob(out: &mut String, state: &State, item: &Item, with_metadata: bool) {
    let m = &item.entry.meta;
    let mut disk = state.data_dir.join(&state.workspace_name);
    disk.extend(item.name.split('/'));
    let props = state.store.props(&disk);
    let lease = state
        .leases
        .view(&state.store.key(&disk), state.lease_now());
    let opt = |tag: &str, v: &Option<String>| match v {
        Some(v) => format!("<{tag}>{}</{tag}>", escape(v.as_str())),
        None => format!("<{tag} />"),
    };
    let content_type = if m.is_dir {
        None
    } else {
        Some(
            props
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
        )
    };
    out.push_str("<Blob>");
    out.push_str(&format!("<Name>{}</Name>", escape(item.name.as_str())));
    out.push_str("<Properties>");
    out.push_str(&format!(
        "<Creation-Time>{}</Creation-Time><Last-Modified>{}</Last-Modified><Etag>{}</Etag>",
        time::http_date(time::nanos_from_filetime(m.created)),
        time::http_date(m.modified_ns),
        m.etag()
    ));
    out.push_str(&format!(
        "<ResourceType>{}</ResourceType><Content-Length>{}</Content-Length>",
        if m.is_dir { "directory" } else { "file" },
        m.len
    ));
    out.push_str(&opt("Content-Type", &content_type));
    out.push_str(&opt("Content-Encoding", &props.content_encoding));
    out.push_str(&opt("Content-Language", &props.content_language));
    out.push_str("<Content-CRC64 />");
    out.push_str(&opt("Content-MD5", &props.content_md5));
    out.push_str(&opt("Cache-Control", &props.cache_control));
    out.push_str(&opt("Content-Disposition", &props.content_disposition));
    out.push_str(&format!(
        "<BlobType>BlockBlob</BlobType><AccessTier>Hot</AccessTier><AccessTierInferred>true</AccessTierInferred><LeaseStatus>{}</LeaseStatus><LeaseState>{}</LeaseState>",
        lease.status, lease.state
    ));
    if let Some(d) = lease.duration {
        out.push_str(&format!("<LeaseDuration>{d}</LeaseDuration>"));
    }
    out.push_str("<ServerEncrypted>true</ServerEncrypted></Properties>");
    if with_metadata {
        out.push_str("<Metadata>");
        if m.is_dir {
            out.push_str("<hdi_isfolder>true</hdi_isfolder>");
        }
        for (k, v) in &props.metadata {
            out.push_str(&format!("<{k}>{}</{k}>", escape(v.as_str())));
        }
        out.push_str("</Metadata>");
    }
    out.push_str("</Blob>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_lists_parse() {
        let body = br#"<?xml version="1.0" encoding="utf-8"?>
            <BlockList><Latest>AAA=</Latest><Committed>BBB=</Committed><Uncommitted>CCC=</Uncommitted></BlockList>"#;
        assert_eq!(
            parse_block_list(body).unwrap(),
            vec![
                BlockRef::Latest("AAA=".into()),
                BlockRef::Committed("BBB=".into()),
                BlockRef::Uncommitted("CCC=".into()),
            ]
        );
        assert!(parse_block_list(b"<Nope/>").is_err());
        assert!(parse_block_list(b"<BlockList><Other>x</Other></BlockList>").is_err());
    }
}
