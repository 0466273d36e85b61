//! Regression tests of issue 10: behaviours Microsoft's own clients rely on, each checked
//! against Microsoft's documentation or client source.

use reqwest::Method;

use crate::{Dfs, error_code, header};

/// Issue 10 #1: appends land at any position, in any order and in parallel; only the
/// flush needs the data contiguous.
#[tokio::test]
async fn issue_10_1_appends_in_any_order_and_in_parallel() {
    let d = Dfs::new();
    let p = "Files/parallel.bin";
    assert_eq!(d.create(p).await.status(), 201);
    let chunk = 1000usize;
    let data: Vec<u8> = (0..8 * chunk).map(|i| (i * 7 % 251) as u8).collect();
    // Last chunk first, the rest all at once.
    let last = 7 * chunk;
    assert_eq!(
        d.append(p, last as u64, &data[last..], false)
            .await
            .status(),
        202
    );
    let sends = (0..7).map(|i| {
        let part = &data[i * chunk..(i + 1) * chunk];
        d.append(p, (i * chunk) as u64, part, false)
    });
    for r in futures_join(sends).await {
        assert_eq!(r.status(), 202);
    }
    // Nothing is visible before the flush.
    assert_eq!(d.get(p).await.bytes().await.unwrap().len(), 0);
    let r = d.flush(p, data.len() as u64).await;
    assert_eq!(r.status(), 200);
    assert_eq!(d.get(p).await.bytes().await.unwrap(), &data[..]);
}

async fn futures_join<F: std::future::Future>(fs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let handles: Vec<_> = fs.collect();
    let mut out = Vec::new();
    // Polled together: join_all without the futures crate.
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = handles.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if done[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => done[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.extend(done.into_iter().flatten());
    out
}

/// Issue 10 #2: `upload_data(overwrite=False)` sends no create; its append to an
/// existing file is accepted and its flush with `If-None-Match: *` fails with 412.
/// The same upload of a new file creates it.
#[tokio::test]
async fn issue_10_2_no_overwrite_upload_fails_at_the_flush() {
    let d = Dfs::new();
    let p = "Files/keep.txt";
    d.upload(p, b"original").await;
    assert_eq!(d.append(p, 0, b"replacement", false).await.status(), 202);
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "flush"), ("position", "11"), ("close", "true")])
        .header("content-length", "0")
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (412, "ConditionNotMet".to_owned()));
    assert_eq!(d.get(p).await.bytes().await.unwrap(), &b"original"[..]);

    // A new file: no create, appends, flush with If-None-Match: * creates it (and its
    // parent folder).
    let q = "Files/new dir/fresh.txt";
    assert_eq!(d.append(q, 5, b"world", false).await.status(), 202);
    assert_eq!(d.append(q, 0, b"hello", false).await.status(), 202);
    let r = d
        .req(Method::PATCH, q)
        .query(&[("action", "flush"), ("position", "10")])
        .header("content-length", "0")
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(d.get(q).await.bytes().await.unwrap(), &b"helloworld"[..]);
    assert_eq!(
        header(&d.head("Files/new dir").await, "x-ms-resource-type"),
        "directory"
    );
}

/// Issue 10 #3: `x-ms-properties` on create, the content headers on flush and
/// `action=setProperties` all come back on HEAD.
#[tokio::test]
async fn issue_10_3_properties_and_content_headers_are_kept() {
    let d = Dfs::new();
    let p = "Files/props.json";
    // a=1, b=zwei (base64 "MQ==", "endlaQ==")
    let r = d
        .req(Method::PUT, p)
        .query(&[("resource", "file")])
        .header("content-length", "0")
        .header("x-ms-properties", "a=MQ==, b=endlaQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(d.append(p, 0, b"{}", false).await.status(), 202);
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "flush"), ("position", "2")])
        .header("content-length", "0")
        .header("x-ms-content-type", "application/json")
        .header("x-ms-content-md5", "mZFLkyvTelC5g8XnyQrpOw==")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d.head(p).await;
    assert_eq!(header(&r, "content-type"), "application/json");
    assert_eq!(header(&r, "content-md5"), "mZFLkyvTelC5g8XnyQrpOw==");
    assert_eq!(header(&r, "x-ms-properties"), "a=MQ==,b=endlaQ==");
    assert_eq!(header(&r, "x-ms-meta-b"), "zwei");
    let before = header(&r, "etag");

    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "setProperties")])
        .header("x-ms-properties", "c=Mw==")
        .header("x-ms-content-language", "de")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let after = header(&r, "etag");
    assert_ne!(after, before);
    let r = d.head(p).await;
    assert_eq!(header(&r, "etag"), after);
    assert_eq!(header(&r, "x-ms-properties"), "c=Mw==");
    assert_eq!(header(&r, "content-language"), "de");
    assert_eq!(header(&r, "content-type"), "application/json");
    assert!(!r.headers().contains_key("x-ms-meta-a"));
    // Bytes are untouched.
    assert_eq!(d.get(p).await.bytes().await.unwrap(), &b"{}"[..]);
    // Bad base64 is refused.
    let r = d
        .req(Method::PATCH, p)
        .query(&[("action", "setProperties")])
        .header("x-ms-properties", "c=***")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (400, "InvalidHeaderValue".to_owned()));
}

/// Issue 10 #5: rename of files and directories (`x-ms-rename-source`, `mode=legacy`).
#[tokio::test]
async fn issue_10_5_rename_files_and_directories() {
    let d = Dfs::new();
    let etag = d.upload("Files/src/a.txt", b"A").await;
    d.upload("Files/src/sub/b.txt", b"B").await;
    let rename = |to: &str, from: &str| {
        d.req(Method::PUT, to)
            .query(&[("mode", "legacy")])
            .header("content-length", "0")
            .header(
                "x-ms-rename-source",
                format!(
                    "/My%20Workspace/lake.Lakehouse/{}",
                    from.replace(' ', "%20")
                ),
            )
    };
    // A file: bytes and ETag move along.
    let r = rename("Files/src/a2.txt", "Files/src/a.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(d.get("Files/src/a.txt").await.status(), 404);
    let r = d.get("Files/src/a2.txt").await;
    assert_eq!(header(&r, "etag"), etag);
    assert_eq!(r.bytes().await.unwrap(), &b"A"[..]);
    // A directory, by GUID source path.
    let ws = d.emu.workspace_id().to_owned();
    let lh = d.emu.lakehouse_id("lake").unwrap();
    let r = d
        .req(Method::PUT, "Files/dst")
        .header("content-length", "0")
        .header("x-ms-rename-source", format!("/{ws}/{lh}/Files/src"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        d.get("Files/dst/sub/b.txt").await.bytes().await.unwrap(),
        &b"B"[..]
    );
    assert_eq!(d.head("Files/src").await.status(), 404);
    // Missing source, missing destination parent, protected folders, If-None-Match.
    let r = rename("Files/x.txt", "Files/nothing.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (404, "SourcePathNotFound".to_owned()));
    let r = rename("Files/no/such/x.txt", "Files/dst/a2.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(r).await,
        (404, "RenameDestinationParentPathNotFound".to_owned())
    );
    let r = rename("Files/dst2", "Files").send().await.unwrap();
    assert_eq!(error_code(r).await.0, 403);
    d.upload("Files/exists.txt", b"E").await;
    let r = rename("Files/exists.txt", "Files/dst/a2.txt")
        .header("if-none-match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(r).await, (409, "PathAlreadyExists".to_owned()));
    assert_eq!(
        d.get("Files/exists.txt").await.bytes().await.unwrap(),
        &b"E"[..]
    );
    // Without If-None-Match an existing file is replaced.
    let r = rename("Files/exists.txt", "Files/dst/a2.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(
        d.get("Files/exists.txt").await.bytes().await.unwrap(),
        &b"A"[..]
    );
}

/// Issue 10 #6: `x-ms-version` is optional (`fab` sends none); the answer still names
/// a version.
#[tokio::test]
async fn issue_10_6_version_header_is_optional() {
    let d = Dfs::new();
    d.upload("Files/v.txt", b"v").await;
    let url = d.url("My Workspace", "lake.Lakehouse/Files/v.txt");
    let r = d.http.get(&url).bearer_auth("t").send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "x-ms-version").len() == 10);
    assert_eq!(r.bytes().await.unwrap(), &b"v"[..]);
}

/// Issue 10 #7: one trailing slash is ignored, as in the URLs `fab` builds.
#[tokio::test]
async fn issue_10_7_trailing_slashes() {
    let d = Dfs::new();
    let base = format!("{}/My%20Workspace", d.emu.url());
    let r = d
        .raw(Method::GET, &format!("{base}/"))
        .query(&[("resource", "filesystem"), ("recursive", "false")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = d
        .raw(Method::PUT, &format!("{base}/lake.Lakehouse/Files/t.txt/"))
        .query(&[("resource", "file")])
        .header("content-length", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    d.upload("Files/x/y.txt", b"y").await;
    let r = d
        .raw(Method::DELETE, &format!("{base}/lake.Lakehouse/Files/x/"))
        .query(&[("recursive", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(d.head("Files/x").await.status(), 404);
    assert_eq!(d.head("Files/t.txt").await.status(), 200);
}
