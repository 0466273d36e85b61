//! Path operations, addressing, auth and protected folders.

use fabric_emulator::Config;
use reqwest::Method;

use crate::{Dfs, TOKEN, VERSION, error_code, header, raw_http};

const ODD: &str = "Files/dir ü/a b+c#d%e?f ü😀.txt";

#[tokio::test]
async fn round_trip_with_special_characters() {
    let d = Dfs::new();
    let r = d.create(ODD).await;
    assert_eq!(r.status(), 201);
    let created_etag = header(&r, "etag");
    assert!(
        created_etag.starts_with("\"0x") && created_etag.ends_with('"'),
        "{created_etag}"
    );
    assert_eq!(header(&r, "content-length"), "0");
    assert_eq!(header(&r, "x-ms-request-server-encrypted"), "true");
    assert!(r.headers().contains_key("last-modified"));

    // Appended data is invisible until flushed.
    let r = d.append(ODD, 0, b"hello ", false).await;
    assert_eq!(r.status(), 202);
    assert!(!r.headers().contains_key("etag"));
    assert_eq!(d.get(ODD).await.bytes().await.unwrap().len(), 0);

    let r = d.append(ODD, 6, b"world", true).await;
    assert_eq!(r.status(), 202);
    let etag = header(&r, "etag");
    assert_ne!(etag, created_etag);

    let r = d.get(ODD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "x-ms-resource-type"), "file");
    assert_eq!(header(&r, "content-length"), "11");
    assert_eq!(r.bytes().await.unwrap(), &b"hello world"[..]);

    let r = d.head(ODD).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), "11");
    assert_eq!(header(&r, "x-ms-resource-type"), "file");
    assert!(header(&r, "x-ms-creation-time").ends_with(" GMT"));
    let r = d.head("Files/dir ü").await;
    assert_eq!(header(&r, "x-ms-resource-type"), "directory");

    // Plain files on disk, under the names as sent.
    let on_disk = d
        .emu
        .lakehouse_files_dir("lake")
        .unwrap()
        .join("dir ü/a b+c#d%e?f ü😀.txt");
    assert_eq!(std::fs::read(on_disk).unwrap(), b"hello world");

    // The request log has decoded paths.
    let log = d.emu.requests();
    assert_eq!(log[0].method, "PUT");
    assert_eq!(log[0].path, format!("/My Workspace/lake.Lakehouse/{ODD}"));
    assert_eq!(log[0].query, "resource=file");
    assert_eq!(log[0].status, 201);
}

#[tokio::test]
async fn common_headers_are_echoed() {
    let d = Dfs::new();
    let r = d
        .req(Method::HEAD, "Files")
        .header("x-ms-client-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ms-client-request-id"), "abc-123");
    assert_eq!(header(&r, "x-ms-version"), VERSION);
    assert_eq!(
        header(&r, "server"),
        "Windows-Azure-HDFS/1.0 Microsoft-HTTPAPI/2.0"
    );
    assert_eq!(header(&r, "x-ms-request-id").len(), 36);
    assert!(r.headers().contains_key("date"));
}

#[tokio::test]
async fn chunked_appends_flush_and_positions() {
    let d = Dfs::new();
    let p = "Files/big.bin";
    assert_eq!(d.create(p).await.status(), 201);
    assert_eq!(d.append(p, 0, b"0123456789", false).await.status(), 202);
    // Retrying the same bytes at the same position is accepted.
    assert_eq!(d.append(p, 0, b"0123456789", false).await.status(), 202);
    assert_eq!(d.append(p, 10, b"abcdefghij", false).await.status(), 202);
    // A chunk past a gap is accepted, but a flush over the gap is not.
    assert_eq!(d.append(p, 25, b"x", false).await.status(), 202);
    let (status, code) = error_code(d.flush(p, 26).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidFlushPosition"));
    // Flush must name a length the contiguous data reaches.
    let (status, code) = error_code(d.flush(p, 21).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidFlushPosition"));
    let r = d.flush(p, 20).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "content-length"), "0");
    let etag = header(&r, "etag");
    assert_eq!(
        d.get(p).await.bytes().await.unwrap(),
        &b"0123456789abcdefghij"[..]
    );
    // Appending continues after the committed data; a lost-response retry of an
    // append+flush (same bytes over committed data) still succeeds.
    let r = d.append(p, 20, b"XYZ", true).await;
    assert_eq!(r.status(), 202);
    let r2 = d.append(p, 20, b"XYZ", true).await;
    assert_eq!(r2.status(), 202);
    assert_ne!(header(&r2, "etag"), etag);
    let (status, code) = error_code(d.append(p, 20, b"QQQ", true).await).await;
    assert_eq!((status, code.as_str()), (400, "InvalidFlushPosition"));
    assert_eq!(
        d.get(p).await.bytes().await.unwrap(),
        &b"0123456789abcdefghijXYZ"[..]
    );
    // Flush needs Content-Length: 0; so does create.
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "flush"), ("position", "23")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "ContentLengthMustBeZero");
    let r = d
        .req(Method::PUT, "Files/x")
        .query(&[("resource", "file")])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await.1, "ContentLengthMustBeZero");
    // A flush of a missing file with nothing staged.
    assert_eq!(
        error_code(d.flush("Files/nope", 0).await).await,
        (404, "PathNotFound".to_owned())
    );
}

#[tokio::test]
async fn create_semantics() {
    let d = Dfs::new();
    d.upload("Files/a/b/c.txt", b"data").await;
    // Parents were created implicitly.
    assert_eq!(
        header(&d.head("Files/a/b").await, "x-ms-resource-type"),
        "directory"
    );
    // Create overwrites (truncates).
    assert_eq!(d.create("Files/a/b/c.txt").await.status(), 201);
    assert_eq!(
        header(&d.head("Files/a/b/c.txt").await, "content-length"),
        "0"
    );
    // If-None-Match: * on an existing path.
    let r = d
        .req(Method::PUT, "Files/a/b/c.txt")
        .query(&[("resource", "file")])
        .header("content-length", "0")
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (409, "PathAlreadyExists".to_owned()));
    // A directory in the way, and a file in the way of a parent.
    assert_eq!(error_code(d.create("Files/a/b").await).await.0, 409);
    assert_eq!(error_code(d.create("Files/a/b/c.txt/d").await).await.0, 409);
    // Directories: idempotent unless If-None-Match: *.
    assert_eq!(d.mkdir("Files/a/b").await.status(), 201);
    let r = d
        .req(Method::PUT, "Files/a/b")
        .query(&[("resource", "directory")])
        .header("content-length", "0")
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (409, "PathAlreadyExists".to_owned()));
}

#[tokio::test]
async fn ranges() {
    let d = Dfs::new();
    d.upload("Files/r.txt", b"0123456789").await;
    let r = d
        .req(Method::GET, "Files/r.txt")
        .header("range", "bytes=2-4")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(header(&r, "content-range"), "bytes 2-4/10");
    assert_eq!(r.bytes().await.unwrap(), &b"234"[..]);
    let r = d
        .req(Method::GET, "Files/r.txt")
        .header("range", "bytes=7-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &b"789"[..]);
    let r = d
        .req(Method::GET, "Files/r.txt")
        .header("range", "bytes=10-")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (416, "InvalidRange".to_owned()));

    // A multi-MiB file in three appends, streamed back whole and in part.
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(d.create("Files/big.bin").await.status(), 201);
    let third = big.len() / 3;
    assert_eq!(
        d.append("Files/big.bin", 0, &big[..third], false)
            .await
            .status(),
        202
    );
    assert_eq!(
        d.append("Files/big.bin", third as u64, &big[third..2 * third], false)
            .await
            .status(),
        202
    );
    let r = d
        .append("Files/big.bin", 2 * third as u64, &big[2 * third..], true)
        .await;
    assert_eq!(r.status(), 202);
    let r = d.get("Files/big.bin").await;
    assert_eq!(header(&r, "content-length"), big.len().to_string());
    assert!(r.bytes().await.unwrap() == big);
    let r = d
        .req(Method::GET, "Files/big.bin")
        .header("range", "bytes=1000000-2999999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert!(r.bytes().await.unwrap() == big[1_000_000..3_000_000]);
}

#[tokio::test]
async fn required_headers_and_auth() {
    let d = Dfs::new();
    let url = d.url("My Workspace", "lake.Lakehouse/Files");
    // A malformed x-ms-version is refused (a missing one is fine: see issue_10_6).
    let r = d
        .http
        .get(&url)
        .bearer_auth(TOKEN)
        .header("x-ms-version", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "InvalidHeaderValue".to_owned()));
    let r = d
        .http
        .get(&url)
        .header("x-ms-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(error_code(r).await.0, 401);
    let r = d
        .http
        .get(&url)
        .header("x-ms-version", VERSION)
        .header("authorization", "Bearer ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // A revoked token fails; a fresh one works.
    d.emu.revoke_token(TOKEN);
    let r = d.get("Files").await;
    assert_eq!(
        error_code(r).await,
        (401, "InvalidAuthenticationInfo".to_owned())
    );
    let r = d
        .http
        .head(&url)
        .bearer_auth("fresh")
        .header("x-ms-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn deny_gives_403_in_both_addressing_forms() {
    let d = Dfs::new();
    d.upload("Files/secret/a.txt", b"x").await;
    d.upload("Files/open.txt", b"y").await;
    d.emu.deny("/My Workspace/lake.Lakehouse/Files/secret");
    assert_eq!(
        error_code(d.get("Files/secret/a.txt").await).await,
        (403, "AuthorizationPermissionMismatch".to_owned())
    );
    let guid_url = d.url(
        d.emu.workspace_id(),
        &format!("{}/Files/secret/a.txt", d.emu.lakehouse_id("lake").unwrap()),
    );
    assert_eq!(
        d.raw(Method::GET, &guid_url).send().await.unwrap().status(),
        403
    );
    assert_eq!(
        d.list(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/secret")
        ])
        .await
        .status(),
        403
    );
    assert_eq!(d.get("Files/open.txt").await.status(), 200);
    assert_eq!(d.get("Files/secretive").await.status(), 404);
}

#[tokio::test]
async fn protected_folders_are_refused() {
    let d = Dfs::new();
    for path in ["Files", "Tables", ""] {
        let (status, code) = error_code(d.delete(path, &[("recursive", "true")]).await).await;
        assert_eq!(
            (status, code.as_str()),
            (403, "OperationNotAllowedOnThePath"),
            "delete {path:?}"
        );
        assert_eq!(
            error_code(d.mkdir(path).await).await.0,
            403,
            "mkdir {path:?}"
        );
    }
    assert_eq!(error_code(d.mkdir("Other").await).await.0, 403);
    assert_eq!(error_code(d.create("Other/x.txt").await).await.0, 403);
    // Filesystem level: no create or delete, HEAD works.
    let fs_url = d.url("My Workspace", "");
    for m in [Method::PUT, Method::DELETE] {
        let r = d
            .raw(m, &fs_url)
            .query(&[("resource", "filesystem")])
            .header("content-length", "0")
            .send()
            .await
            .unwrap();
        assert_eq!(error_code(r).await.0, 403);
    }
    let r = d
        .raw(Method::HEAD, &fs_url)
        .query(&[("resource", "filesystem")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ms-namespace-enabled"), "true");
    // Directories still exist.
    assert_eq!(d.head("Files").await.status(), 200);
    assert_eq!(d.head("Tables").await.status(), 200);
}

#[tokio::test]
async fn dot_segments_and_empty_segments_are_refused() {
    let d = Dfs::new();
    d.upload("Files/b.txt", b"x").await;
    for target in [
        "/My%20Workspace/lake.Lakehouse/Files/a/../b.txt",
        "/My%20Workspace/lake.Lakehouse/Files/./b.txt",
        "/My%20Workspace/lake.Lakehouse/Files/a/%2E%2E/b.txt",
        "/My%20Workspace/lake.Lakehouse/Files//b.txt",
        "/My%20Workspace/lake.Lakehouse/Files/b.txt//",
    ] {
        let resp = raw_http(&d.emu, "GET", target);
        assert!(resp.starts_with("HTTP/1.1 400"), "{target}: {resp}");
        assert!(
            resp.contains("x-ms-error-code: InvalidUri"),
            "{target}: {resp}"
        );
    }
    let resp = raw_http(
        &d.emu,
        "GET",
        "/My%20Workspace/lake.Lakehouse/Files%2Fb.txt",
    );
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "%2F is a separator: {resp}"
    );
}

#[tokio::test]
async fn names_and_guids_reach_the_same_file() {
    let d = Dfs::new();
    let ws = d.emu.workspace_id().to_owned();
    let lh = d.emu.lakehouse_id("lake").unwrap();
    d.upload("Files/same.txt", b"one").await;
    let r = d
        .raw(Method::GET, &d.url(&ws, &format!("{lh}/Files/same.txt")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.bytes().await.unwrap(), &b"one"[..]);
    let r = d
        .raw(
            Method::GET,
            &d.url(&ws.to_uppercase(), "LAKE.lakehouse/Files/same.txt"),
        )
        .send()
        .await;
    assert_eq!(
        r.unwrap().status(),
        404,
        "the item name itself is case-sensitive"
    );
    let r = d
        .raw(
            Method::GET,
            &d.url("My Workspace", "lake.LAKEHOUSE/Files/same.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the suffix is not");
    // Writing through GUIDs, reading through names.
    let url = d.url(&ws, &format!("{lh}/Files/g.txt"));
    let r = d
        .raw(Method::PUT, &url)
        .query(&[("resource", "file")])
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = d
        .raw(Method::PATCH, &url)
        .query(&[("action", "append"), ("position", "0"), ("flush", "true")])
        .body("two")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(
        d.get("Files/g.txt").await.bytes().await.unwrap(),
        &b"two"[..]
    );
    // Unknown workspace / item.
    let r = d
        .raw(Method::GET, &d.url("Nope", "lake.Lakehouse/Files/g.txt"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "FilesystemNotFound".to_owned()));
    let r = d
        .raw(
            Method::GET,
            &d.url("My Workspace", "other.Lakehouse/Files/g.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "PathNotFound".to_owned()));
    // Ids are derived from names: a second emulator agrees.
    let e2 = fabric_emulator::Emulator::start(Config::default()).unwrap();
    assert_eq!(e2.workspace_id(), ws);
    assert_eq!(e2.lakehouse_id("lake").unwrap(), lh);
}

#[tokio::test]
async fn delete_semantics_and_paginated_recursive_delete() {
    let d = Dfs::start(Config {
        page_size: 10,
        ..Config::default()
    });
    let r = d
        .delete("Files/missing.txt", &[("recursive", "false")])
        .await;
    assert_eq!(error_code(r).await, (404, "PathNotFound".to_owned()));
    d.upload("Files/one.txt", b"1").await;
    // DFS deletes answer 200; a bare DELETE is Delete Blob (202, see blob.rs).
    let r = d.delete("Files/one.txt", &[("recursive", "false")]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-ms-delete-type-permanent"), "true");
    assert!(!r.headers().contains_key("x-ms-continuation"));
    let r = d.head("Files/one.txt").await;
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "x-ms-error-code"), "PathNotFound");
    assert_eq!(
        r.bytes().await.unwrap().len(),
        0,
        "HEAD errors carry no body"
    );

    // 30 files in nested directories plus the directories: 35 entries below `tree`.
    let root = d.emu.lakehouse_files_dir("lake").unwrap().join("tree");
    for i in 0..5 {
        std::fs::create_dir_all(root.join(format!("d{i}"))).unwrap();
        for j in 0..6 {
            std::fs::write(root.join(format!("d{i}/f{j}")), b"x").unwrap();
        }
    }
    let (status, code) = error_code(d.delete("Files/tree", &[("recursive", "false")]).await).await;
    assert_eq!((status, code.as_str()), (409, "DirectoryNotEmpty"));

    let mut calls = 0;
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![("recursive", "true")];
        if let Some(t) = &token {
            q.push(("continuation", t));
        }
        let r = d.delete("Files/tree", &q).await;
        assert_eq!(r.status(), 200);
        calls += 1;
        token = r
            .headers()
            .get("x-ms-continuation")
            .map(|v| v.to_str().unwrap().to_owned());
        if token.is_none() {
            break;
        }
        assert!(root.exists(), "the directory goes last");
    }
    assert_eq!(calls, 4);
    assert!(!root.exists());
    assert_eq!(d.head("Files/tree").await.status(), 404);
    let r = d
        .delete(
            "Files/tree",
            &[("recursive", "true"), ("continuation", "bogus")],
        )
        .await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn metadata_survives_restart_and_outside_edits_change_the_etag() {
    let dir = std::env::temp_dir().join(format!("fabric-emulator-it-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = Config {
        data_dir: Some(dir.clone()),
        ..Config::default()
    };
    let (etag, created) = {
        let d = Dfs::start(config.clone());
        let etag = d.upload("Files/keep.txt", b"abc").await;
        let created = header(&d.head("Files/keep.txt").await, "x-ms-creation-time");
        // Staged data survives too.
        assert_eq!(d.create("Files/staged.txt").await.status(), 201);
        assert_eq!(
            d.append("Files/staged.txt", 0, b"half", false)
                .await
                .status(),
            202
        );
        (etag, created)
    };
    let d = Dfs::start(config);
    let r = d.head("Files/keep.txt").await;
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "x-ms-creation-time"), created);
    assert_eq!(d.flush("Files/staged.txt", 4).await.status(), 200);
    assert_eq!(
        d.get("Files/staged.txt").await.bytes().await.unwrap(),
        &b"half"[..]
    );
    // Someone edits the file on disk: new ETag, new length.
    std::fs::write(
        d.emu.lakehouse_files_dir("lake").unwrap().join("keep.txt"),
        b"abcdef",
    )
    .unwrap();
    let r = d.head("Files/keep.txt").await;
    assert_ne!(header(&r, "etag"), etag);
    assert_eq!(header(&r, "content-length"), "6");
    drop(d);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn fabric_paths_are_reserved() {
    let d = Dfs::new();
    // `/v1/...` belongs to the Fabric side: listed workspaces, Fabric-shaped errors.
    let r = d
        .http
        .get(format!("{}/v1/workspaces", d.emu.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d
        .http
        .get(format!("{}/v1/no/such/endpoint", d.emu.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(header(&r, "x-ms-public-api-error-code"), "EndpointNotFound");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["errorCode"], "EndpointNotFound");
    assert!(body["requestId"].is_string());
    assert!(body["message"].is_string());
}

/// Path - Lease: acquire, writes refused without the id, renew, change, break, release,
/// expiry by time, and the lease headers on HEAD.
#[tokio::test]
async fn leases_lock_writes_and_expire() {
    let d = Dfs::new();
    let p = "Files/locked.txt";
    d.upload(p, b"v1").await;
    let lease = |action: &str| {
        d.req(Method::POST, p)
            .header("x-ms-lease-action", action)
            .header("content-length", "0")
    };
    const A: &str = "0f6e36a4-1b9a-4c43-9d5e-3a4b7c2d1e01";
    const B: &str = "0f6e36a4-1b9a-4c43-9d5e-3a4b7c2d1e02";

    let r = lease("acquire")
        .header("x-ms-lease-duration", "15")
        .header("x-ms-proposed-lease-id", A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(header(&r, "x-ms-lease-id"), A);
    assert!(r.headers().contains_key("etag"));
    let r = d.head(p).await;
    assert_eq!(header(&r, "x-ms-lease-state"), "leased");
    assert_eq!(header(&r, "x-ms-lease-status"), "locked");
    assert_eq!(header(&r, "x-ms-lease-duration"), "fixed");

    // A second acquire, bad durations, and writes without (or with the wrong) id fail.
    let (s, c) = error_code(
        lease("acquire")
            .header("x-ms-lease-duration", "-1")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (409, "LeaseAlreadyPresent"));
    let (s, c) = error_code(
        lease("acquire")
            .header("x-ms-lease-duration", "10")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (400, "InvalidHeaderValue"));
    let (s, c) = error_code(d.append(p, 2, b"x", true).await).await;
    assert_eq!((s, c.as_str()), (412, "LeaseIdMissing"));
    let (s, c) = error_code(d.delete(p, &[("recursive", "false")]).await).await;
    assert_eq!((s, c.as_str()), (412, "LeaseIdMissing"));
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "append"), ("position", "2"), ("flush", "true")])
        .header("x-ms-lease-id", B)
        .body("x")
        .send()
        .await
        .unwrap();
    let (s, c) = error_code(r).await;
    assert_eq!((s, c.as_str()), (412, "LeaseIdMismatchWithPathOperation"));
    assert_eq!(d.get(p).await.bytes().await.unwrap(), &b"v1"[..]);
    // With the id, the write goes through.
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "append"), ("position", "2"), ("flush", "true")])
        .header("x-ms-lease-id", A)
        .body("+")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(d.get(p).await.bytes().await.unwrap(), &b"v1+"[..]);

    // Renew and change need the current id.
    let (s, c) = error_code(
        lease("renew")
            .header("x-ms-lease-id", B)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((s, c.as_str()), (409, "LeaseIdMismatchWithLeaseOperation"));
    let r = lease("renew")
        .header("x-ms-lease-id", A)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-ms-lease-id")),
        (200, A.to_owned())
    );
    let r = lease("change")
        .header("x-ms-lease-id", A)
        .header("x-ms-proposed-lease-id", B)
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-ms-lease-id")),
        (200, B.to_owned())
    );

    // A fixed lease expires by time: writes without an id work again.
    d.emu.advance_clock(std::time::Duration::from_secs(16));
    let r = d.head(p).await;
    assert_eq!(header(&r, "x-ms-lease-state"), "expired");
    assert_eq!(header(&r, "x-ms-lease-status"), "unlocked");
    assert!(!r.headers().contains_key("x-ms-lease-duration"));
    assert_eq!(d.append(p, 3, b"!", true).await.status(), 202);

    // An infinite lease, broken with a period: locked while breaking, then broken.
    let r = lease("acquire")
        .header("x-ms-lease-duration", "-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let id = header(&r, "x-ms-lease-id");
    assert_eq!(id.len(), 36);
    let r = lease("break")
        .header("x-ms-lease-break-period", "20")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.status().as_u16(), header(&r, "x-ms-lease-time")),
        (202, "20".to_owned())
    );
    assert_eq!(header(&d.head(p).await, "x-ms-lease-state"), "breaking");
    let (s, c) = error_code(d.delete(p, &[("recursive", "false")]).await).await;
    assert_eq!((s, c.as_str()), (412, "LeaseIdMissing"));
    d.emu.advance_clock(std::time::Duration::from_secs(21));
    assert_eq!(header(&d.head(p).await, "x-ms-lease-state"), "broken");
    let r = lease("release")
        .header("x-ms-lease-id", &id)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&d.head(p).await, "x-ms-lease-state"), "available");
    let (s, c) = error_code(lease("break").send().await.unwrap()).await;
    assert_eq!((s, c.as_str()), (409, "LeaseNotPresentWithLeaseOperation"));

    // A lease on a missing path: 404.
    let r = d
        .req(Method::POST, "Files/missing.txt")
        .header("x-ms-lease-action", "acquire")
        .header("x-ms-lease-duration", "-1")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "PathNotFound".to_owned()));

    // Deleting with the id works and forgets the lease.
    let r = lease("acquire")
        .header("x-ms-lease-duration", "-1")
        .header("x-ms-proposed-lease-id", A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let r = d
        .req(Method::DELETE, p)
        .query(&[("recursive", "false")])
        .header("x-ms-lease-id", A)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    d.upload(p, b"new").await;
    assert_eq!(header(&d.head(p).await, "x-ms-lease-state"), "available");
}
