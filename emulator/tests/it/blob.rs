//! The Blob API of OneLake over the same stored files as DFS (issue 10 #4).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::{Method, RequestBuilder, Response};

use crate::{Dfs, enc, header};

const WS: &str = "My Workspace";

fn blob(d: &Dfs, method: Method, name: &str) -> RequestBuilder {
    d.raw(method, &d.url(WS, &format!("lake.Lakehouse/{name}")))
}

fn md5(data: &[u8]) -> String {
    use md5::Digest as _;
    STANDARD.encode(md5::Md5::digest(data))
}

async fn put_blob(d: &Dfs, name: &str, data: &[u8]) -> Response {
    blob(d, Method::PUT, name)
        .header("x-ms-blob-type", "BlockBlob")
        .body(data.to_vec())
        .send()
        .await
        .unwrap()
}

/// The error code of a Blob (XML) error, checking header and body agree.
async fn blob_error(r: Response) -> (u16, String) {
    let status = r.status().as_u16();
    let code = header(&r, "x-ms-error-code");
    assert_eq!(header(&r, "content-type"), "application/xml");
    let body = r.text().await.unwrap();
    assert!(body.contains(&format!("<Code>{code}</Code>")), "{body}");
    (status, code)
}

async fn list(d: &Dfs, query: &[(&str, &str)]) -> String {
    let mut q = vec![("restype", "container"), ("comp", "list")];
    q.extend_from_slice(query);
    let r = d
        .raw(Method::GET, &d.url(WS, ""))
        .query(&q)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-type"), "application/xml");
    r.text().await.unwrap()
}

fn tags<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    xml.split(open.as_str())
        .skip(1)
        .map(|s| s.split(close.as_str()).next().unwrap())
        .collect()
}

/// Names of blobs (not prefixes) in a listing page.
fn blob_names(xml: &str) -> Vec<String> {
    tags(xml, "Blob")
        .iter()
        .map(|b| tags(b, "Name")[0].replace("&amp;", "&"))
        .collect()
}

#[tokio::test]
async fn put_blob_reads_back_through_dfs_with_the_same_etag_and_vice_versa() {
    let d = Dfs::new();
    let data = b"written through Blob";
    let r = put_blob(&d, "Files/b/one.txt", data).await;
    assert_eq!(r.status(), 201);
    let etag = header(&r, "etag");
    // The service stores an MD5 for Put Blob even when none is sent.
    assert_eq!(header(&r, "content-md5"), md5(data));
    let r = d.get("Files/b/one.txt").await;
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "x-ms-blob-type"), "BlockBlob");
    assert_eq!(header(&r, "content-md5"), md5(data));
    assert_eq!(r.bytes().await.unwrap(), &data[..]);
    let r = d.head("Files/b").await;
    assert_eq!(header(&r, "x-ms-resource-type"), "directory");
    assert_eq!(header(&r, "x-ms-meta-hdi_isfolder"), "true");

    let etag2 = d.upload("Files/b/two.txt", b"written through DFS").await;
    let r = blob(&d, Method::HEAD, "Files/b/two.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "etag"), etag2);
    assert_eq!(header(&r, "x-ms-blob-type"), "BlockBlob");
    assert_eq!(header(&r, "content-length"), "19");
    let r = blob(&d, Method::GET, "Files/b/two.txt")
        .header("x-ms-range", "bytes=8-14")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 8-14/19");
    assert_eq!(r.bytes().await.unwrap(), &b"through"[..]);
}

#[tokio::test]
async fn content_md5_is_verified_and_conditions_hold() {
    let d = Dfs::new();
    let r = blob(&d, Method::PUT, "Files/m.txt")
        .header("x-ms-blob-type", "BlockBlob")
        .header("content-md5", md5(b"other"))
        .body("data")
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await, (400, "Md5Mismatch".to_owned()));
    assert_eq!(d.head("Files/m.txt").await.status(), 404);
    assert_eq!(put_blob(&d, "Files/m.txt", b"data").await.status(), 201);
    let r = blob(&d, Method::PUT, "Files/m.txt")
        .header("x-ms-blob-type", "BlockBlob")
        .header("if-none-match", "*")
        .body("new")
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await, (409, "BlobAlreadyExists".to_owned()));
    // A missing x-ms-blob-type, an append blob, a protected path.
    let r = blob(&d, Method::PUT, "Files/n.txt")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(
        blob_error(r).await,
        (400, "MissingRequiredHeader".to_owned())
    );
    let r = blob(&d, Method::PUT, "Files/n.txt")
        .header("x-ms-blob-type", "AppendBlob")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await.0, 409);
    assert_eq!(put_blob(&d, "top.txt", b"x").await.status(), 403);
    assert_eq!(
        d.get("Files/m.txt").await.bytes().await.unwrap(),
        &b"data"[..]
    );
}

#[tokio::test]
async fn blocks_arrive_in_any_order_and_commit_in_list_order() {
    let d = Dfs::new();
    let name = "Files/blocks/big.bin";
    let parts: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![b'a' + i; 1000 + i as usize])
        .collect();
    let id = |i: usize| STANDARD.encode(format!("block-{i:04}"));
    // Staged in reverse order, one with a transactional MD5.
    for i in (0..5).rev() {
        let mut req = blob(&d, Method::PUT, name)
            .query(&[("comp", "block"), ("blockid", &id(i))])
            .body(parts[i].clone());
        if i == 2 {
            req = req.header("content-md5", md5(&parts[i]));
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 201, "block {i}");
        assert_eq!(header(&r, "content-md5"), md5(&parts[i]));
    }
    // Uncommitted blocks are invisible.
    assert_eq!(d.head(name).await.status(), 404);
    // Ids of another length are refused.
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "block"), ("blockid", &STANDARD.encode("x"))])
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await, (400, "InvalidBlobOrBlock".to_owned()));
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{}</BlockList>",
        (0..5)
            .map(|i| format!("<Latest>{}</Latest>", id(i)))
            .collect::<String>()
    );
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "blocklist")])
        .header("x-ms-blob-content-type", "application/x-test")
        .header("x-ms-meta-origin", "blocks")
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let etag = header(&r, "etag");
    let all: Vec<u8> = parts.concat();
    let r = d.get(name).await;
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "content-type"), "application/x-test");
    assert_eq!(header(&r, "x-ms-meta-origin"), "blocks");
    // No MD5 is computed for Put Block List.
    assert!(!r.headers().contains_key("content-md5"));
    assert_eq!(r.bytes().await.unwrap(), all);
    // The committed list; re-commit keeping block 0 and a new block 5.
    let r = blob(&d, Method::GET, name)
        .query(&[("comp", "blocklist"), ("blocklisttype", "all")])
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert_eq!(tags(&text, "Name").len(), 5, "{text}");
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "block"), ("blockid", &id(5))])
        .body("tail")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let xml = format!(
        "<BlockList><Committed>{}</Committed><Uncommitted>{}</Uncommitted></BlockList>",
        id(0),
        id(5)
    );
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "blocklist")])
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let mut want = parts[0].clone();
    want.extend_from_slice(b"tail");
    assert_eq!(d.get(name).await.bytes().await.unwrap(), want);
    // A list naming an unknown block fails and changes nothing.
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "blocklist")])
        .body(format!("<BlockList><Latest>{}</Latest></BlockList>", id(9)))
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await, (400, "InvalidBlockList".to_owned()));
    assert_eq!(d.get(name).await.bytes().await.unwrap(), want);
}

#[tokio::test]
async fn metadata_properties_delete_and_lease() {
    let d = Dfs::new();
    let name = "Files/meta.txt";
    put_blob(&d, name, b"m").await;
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "metadata")])
        .header("x-ms-meta-color", "blue")
        .header("x-ms-meta-size", "xl")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let etag = header(&r, "etag");
    let r = blob(&d, Method::GET, name)
        .query(&[("comp", "metadata")])
        .send()
        .await
        .unwrap();
    assert_eq!(header(&r, "x-ms-meta-color"), "blue");
    assert_eq!(header(&r, "etag"), etag);
    // The same set through DFS: x-ms-properties, base64 values.
    let r = d.head(name).await;
    assert_eq!(header(&r, "x-ms-properties"), "color=Ymx1ZQ==,size=eGw=");
    // Set Blob Properties replaces every content header (an unsent one is cleared).
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "properties")])
        .header("x-ms-blob-content-type", "text/plain")
        .header("x-ms-blob-cache-control", "no-cache")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d.head(name).await;
    assert_eq!(header(&r, "content-type"), "text/plain");
    assert_eq!(header(&r, "cache-control"), "no-cache");
    assert!(!r.headers().contains_key("content-md5"));
    // Lease through comp=lease: a delete without the id fails, with it succeeds (202).
    let r = blob(&d, Method::PUT, name)
        .query(&[("comp", "lease")])
        .header("x-ms-lease-action", "acquire")
        .header("x-ms-lease-duration", "-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let lease = header(&r, "x-ms-lease-id");
    let r = blob(&d, Method::DELETE, name).send().await.unwrap();
    assert_eq!(blob_error(r).await, (412, "LeaseIdMissing".to_owned()));
    let r = blob(&d, Method::DELETE, name)
        .header("x-ms-lease-id", "00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(
        blob_error(r).await,
        (412, "LeaseIdMismatchWithBlobOperation".to_owned())
    );
    let r = blob(&d, Method::DELETE, name)
        .header("x-ms-lease-id", &lease)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let r = blob(&d, Method::DELETE, name).send().await.unwrap();
    assert_eq!(blob_error(r).await, (404, "BlobNotFound".to_owned()));
    // Container properties; creating the container again; blob batch.
    let r = d
        .raw(Method::HEAD, &d.url(WS, ""))
        .query(&[("restype", "container")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "etag").starts_with("\"0x"));
    let r = d
        .raw(Method::PUT, &d.url(WS, ""))
        .query(&[("restype", "container")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        blob_error(r).await,
        (409, "ContainerAlreadyExists".to_owned())
    );
}

#[tokio::test]
async fn list_blobs_flat_hierarchical_paged_with_metadata() {
    let d = Dfs::new();
    for name in ["a/1.txt", "a/2.txt", "a-b.txt", "c/d/3.txt", "e & f.txt"] {
        put_blob(&d, &format!("Files/l/{name}"), name.as_bytes()).await;
    }
    blob(&d, Method::PUT, "Files/l/a/2.txt")
        .query(&[("comp", "metadata")])
        .header("x-ms-meta-k", "v")
        .send()
        .await
        .unwrap();
    let p = "lake.Lakehouse/Files/l/";
    // Flat: files and directories, sorted by name bytes ('-' before '/').
    let xml = list(&d, &[("prefix", p), ("include", "metadata")]).await;
    let names = blob_names(&xml);
    let rel: Vec<&str> = names.iter().map(|n| &n[p.len()..]).collect();
    assert_eq!(
        rel,
        [
            "a",
            "a-b.txt",
            "a/1.txt",
            "a/2.txt",
            "c",
            "c/d",
            "c/d/3.txt",
            "e & f.txt"
        ]
    );
    assert!(xml.contains("<hdi_isfolder>true</hdi_isfolder>"));
    assert!(xml.contains("<k>v</k>"));
    assert!(xml.contains(&format!("<Content-MD5>{}</Content-MD5>", md5(b"a/1.txt"))));
    assert!(xml.contains("<ResourceType>directory</ResourceType>"));
    assert!(xml.contains("<NextMarker />"));
    // Without include=metadata there is no Metadata element.
    assert!(!list(&d, &[("prefix", p)]).await.contains("<Metadata>"));
    // With a delimiter: prefixes for folders, plus each folder's marker blob.
    let xml = list(&d, &[("prefix", p), ("delimiter", "/")]).await;
    let prefixes: Vec<&str> = tags(&xml, "BlobPrefix")
        .iter()
        .map(|b| tags(b, "Name")[0])
        .collect();
    assert_eq!(
        prefixes,
        [format!("{p}a/"), format!("{p}c/")]
            .map(|s| s)
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    let names = blob_names(&xml);
    assert_eq!(names.len(), 4, "{names:?}");
    // Paging with maxresults and marker visits every name once.
    let mut seen = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let mut q = vec![("prefix", p), ("maxresults", "3")];
        if !marker.is_empty() {
            q.push(("marker", marker.as_str()));
        }
        let xml = list(&d, &q).await;
        pages += 1;
        seen.extend(blob_names(&xml));
        match tags(&xml, "NextMarker").first() {
            Some(m) if !m.is_empty() => marker = m.replace("&amp;", "&"),
            _ => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 8);
    // A bad marker.
    let r = d
        .raw(Method::GET, &d.url(WS, ""))
        .query(&[
            ("restype", "container"),
            ("comp", "list"),
            ("marker", "nope"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(blob_error(r).await.0, 400);
    let _ = enc;
}

#[tokio::test]
async fn sas_query_authorises_storage_requests() {
    let d = Dfs::new();
    let url = d.url(WS, "lake.Lakehouse/Files/sas.txt");
    let sas = "sv=2023-11-03&sr=c&sp=racwdl&se=2099-01-01T00:00:00Z&sig=c2VjcmV0";
    let r = d
        .http
        .put(format!("{url}?{sas}"))
        .header("x-ms-blob-type", "BlockBlob")
        .body("via sas")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = d.http.get(format!("{url}?{sas}")).send().await.unwrap();
    assert_eq!(r.bytes().await.unwrap(), &b"via sas"[..]);
    // Expired SAS: 403; no SAS and no token: 401.
    let old = sas.replace("2099", "2001");
    let r = d.http.get(format!("{url}?{old}")).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let r = d.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // The request log keeps no signature.
    assert!(
        d.emu
            .requests()
            .iter()
            .all(|r| !r.query.contains("c2VjcmV0"))
    );
    assert!(d.emu.requests()[0].query.contains("sig=REDACTED"));
}
