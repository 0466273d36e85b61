//! The Blob client against Azurite over HTTP: bytes, names, listings, ranges, deletes and
//! batches, transactional MD5, SAS and Shared Key, checked where a user would check them
//! (what Azurite serves back, what its listings say, the requests a counting proxy saw).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use fabric_remote::blob::{BlobAuth, BlobClient, BlobError, Metadata};
use fabric_remote::diagnostic::Diagnostic;
use fabric_remote::location::RemoteLocation;
use fabric_remote::secret::Secret;
use futures::{StreamExt, TryStreamExt};
use md5::Digest;

use crate::azurite::{Container, Proxy, client, container_sas};

const LIMIT: usize = 64 * 1024;
const BLOCK: usize = 16 * 1024;

/// A client with a small single-put limit and block size, so multi-block bodies stay small.
fn small(auth: BlobAuth) -> BlobClient {
    client(auth)
        .with_single_put_limit(LIMIT)
        .with_block_size(BLOCK)
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn none() -> Metadata {
    Metadata::new()
}

async fn names(blob: &BlobClient, dir: &RemoteLocation) -> BTreeSet<String> {
    let pages: Vec<_> = blob.list(dir).try_collect().await.expect("list");
    pages.into_iter().flatten().map(|e| e.name).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_round_trip_byte_exact_with_one_request_each_up_to_the_limit() {
    let c = Container::new("sizes").await;
    let proxy = Proxy::start();
    let blob = small(BlobAuth::azurite());
    let sizes = [
        0,
        1,
        LIMIT - 1,
        LIMIT,
        LIMIT + 1,
        LIMIT + 3 * BLOCK + 7,
        8 * BLOCK,
    ];
    for (i, len) in sizes.into_iter().enumerate() {
        let data = pattern(len, i as u8);
        let loc = c.via(&proxy, &format!("sizes/f{len}.bin"));
        proxy.clear();
        let up = blob
            .upload_bytes(&loc, &data, &none())
            .await
            .expect("upload");
        let expected = if len <= LIMIT {
            1
        } else {
            len.div_ceil(BLOCK) + 1
        };
        assert_eq!(up.requests as usize, expected, "len {len}");
        assert_eq!(
            proxy.seen().len(),
            expected,
            "len {len}: {:?}",
            proxy.seen()
        );
        if len <= LIMIT {
            let seen = &proxy.seen()[0];
            assert_eq!((seen.method.as_str(), seen.status), ("PUT", 201));
            assert!(!seen.target.contains('?'), "{seen:?}");
        } else {
            assert_eq!(proxy.count(|s| s.comp("block")), len.div_ceil(BLOCK));
            assert_eq!(proxy.count(|s| s.comp("blocklist")), 1);
        }
        assert_eq!(up.size, len as u64);
        // Read back straight from Azurite, not through our upload path.
        let back = blob
            .read(&c.loc(&format!("sizes/f{len}.bin")), None)
            .await
            .expect("read");
        assert_eq!(back, data, "len {len}");
    }
    // The listing agrees on sizes and ETags; Put Blob bodies carry the MD5 Azurite stored.
    let listed: Vec<_> = blob
        .list(&c.loc("sizes"))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(listed.len(), 7);
    for e in &listed {
        let len: usize = e.name["sizes/f".len()..e.name.len() - 4].parse().unwrap();
        assert_eq!(e.size, len as u64, "{}", e.name);
        assert!(!e.etag.is_empty() && !e.etag.contains('"'), "{e:?}");
        if len <= LIMIT {
            let i = sizes.iter().position(|l| *l == len).unwrap();
            let md5: [u8; 16] = md5::Md5::digest(pattern(len, i as u8)).into();
            assert_eq!(e.content_md5, Some(md5), "{}", e.name);
        } else {
            assert_eq!(e.content_md5, None, "{}", e.name);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_per_small_file_and_nothing_else() {
    let c = Container::new("small").await;
    let proxy = Proxy::start();
    let blob = client(BlobAuth::azurite());
    let dir = c.via(&proxy, "proj");
    let files: Vec<_> = (0..40)
        .map(|i| {
            (
                format!("pkg{}/mod{i}.py", i % 4),
                pattern(100 + i * 37, i as u8),
            )
        })
        .collect();
    for (rel, data) in &files {
        let up = blob
            .upload_bytes(&dir.join(rel).unwrap(), data, &none())
            .await
            .unwrap();
        assert_eq!(up.requests, 1);
    }
    let seen = proxy.seen();
    assert_eq!(seen.len(), files.len(), "{seen:?}");
    assert!(seen.iter().all(|s| s.method == "PUT" && s.status == 201));
    assert_eq!(
        names(&blob, &c.loc("proj")).await,
        files.iter().map(|(r, _)| format!("proj/{r}")).collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_go_up_in_parallel_and_commit_once() {
    let c = Container::new("parallel").await;
    let proxy = Proxy::start();
    // Each request is held 150 ms, so blocks sent one at a time would never overlap.
    proxy.set_latency(Duration::from_millis(150));
    let blob = small(BlobAuth::azurite()).with_block_concurrency(8);
    let data = pattern(16 * BLOCK, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.bin");
    std::fs::write(&path, &data).unwrap();
    let loc = c.via(&proxy, "big.bin");
    let up = blob
        .upload_file(&loc, &path, &none())
        .await
        .expect("upload");
    assert_eq!(up.requests, 17);
    assert_eq!(proxy.count(|s| s.comp("block")), 16);
    assert_eq!(proxy.count(|s| s.comp("blocklist")), 1);
    let in_flight = proxy.max_in_flight();
    assert!(
        (4..=8).contains(&in_flight),
        "{in_flight} requests were in flight at once"
    );
    // The block list was the last request: nothing was visible before it.
    assert!(proxy.seen().last().unwrap().comp("blocklist"));
    assert_eq!(blob.read(&c.loc("big.bin"), None).await.unwrap(), data);
    // One at a time when asked.
    proxy.clear();
    proxy.set_latency(Duration::from_millis(20));
    let serial = small(BlobAuth::azurite()).with_block_concurrency(1);
    serial.upload_file(&loc, &path, &none()).await.unwrap();
    assert_eq!(proxy.max_in_flight(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replacing_upload_keeps_the_old_blob_until_committed() {
    let c = Container::new("replace").await;
    let blob = small(BlobAuth::azurite());
    let loc = c.loc("f.bin");
    let old = pattern(LIMIT * 2, 1);
    blob.upload_bytes(&loc, &old, &none()).await.unwrap();
    // Stage the new blocks by hand: until the block list is committed, readers see the old.
    let new = pattern(BLOCK, 2);
    blob.put_block(&loc, "QUFBQQ==", new.clone()).await.unwrap();
    assert_eq!(blob.read(&loc, None).await.unwrap(), old);
    blob.put_block_list(&loc, &["QUFBQQ==".into()], &none())
        .await
        .unwrap();
    assert_eq!(blob.read(&loc, None).await.unwrap(), new);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_follows_markers_and_stays_inside_its_prefix() {
    let c = Container::new("listing").await;
    let blob = client(BlobAuth::azurite());
    let mut want = BTreeSet::new();
    for i in 0..23 {
        let rel = format!("proj/d{}/f{i:02}.txt", i % 3);
        blob.upload_bytes(&c.loc(&rel), &pattern(i, 0), &none())
            .await
            .unwrap();
        want.insert(rel);
    }
    // Neighbours a prefix match without the slash would wrongly include.
    for rel in ["proj2/x.txt", "proj.txt", "other/proj/y.txt"] {
        blob.upload_bytes(&c.loc(rel), &pattern(3, 0), &none())
            .await
            .unwrap();
    }
    let meta: Metadata = [("sha256".to_string(), "ab12".to_string())].into();
    blob.upload_bytes(&c.loc("proj/meta.txt"), &pattern(5, 0), &meta)
        .await
        .unwrap();
    want.insert("proj/meta.txt".into());

    let proxy = Proxy::start();
    let dir = c.via(&proxy, "proj");
    let pages: Vec<_> = blob
        .list_with_page_size(&dir, 5)
        .try_collect()
        .await
        .expect("list");
    assert_eq!(pages.len(), 5, "24 blobs in pages of 5");
    assert_eq!(proxy.seen().len(), 5);
    assert!(
        proxy
            .seen()
            .iter()
            .all(|s| s.comp("list") && s.target.contains("maxresults=5"))
    );
    let entries: Vec<_> = pages.into_iter().flatten().collect();
    let got: BTreeSet<_> = entries.iter().map(|e| e.name.clone()).collect();
    assert_eq!(got, want);
    assert_eq!(entries.len(), want.len(), "no entry twice");
    let m = entries.iter().find(|e| e.name == "proj/meta.txt").unwrap();
    assert_eq!(m.metadata.get("sha256").map(String::as_str), Some("ab12"));
    assert_eq!(m.relative_to(&dir), Some("meta.txt"));
    assert!(entries.iter().all(|e| !e.is_directory));
    // A prefix with nothing below it is an empty listing, not an error.
    assert!(names(&blob, &c.loc("nothing/here")).await.is_empty());
    // Properties carry the same size, ETag and metadata.
    let p = blob
        .properties(&c.loc("proj/meta.txt"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((p.size, p.etag.as_str()), (5, m.etag.as_str()));
    assert_eq!(p.metadata.get("sha256").map(String::as_str), Some("ab12"));
    assert_eq!(blob.properties(&c.loc("proj/none")).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_with_special_characters_round_trip() {
    let c = Container::new("names").await;
    let blob = client(BlobAuth::azurite());
    let names_in = [
        "a+b.txt",
        "a b.txt",
        "hash#x",
        "100%",
        "why?",
        "semi;colon=eq&amp",
        "café é",
        "日本/語.txt",
        "tilde~'quote'",
    ];
    for (i, name) in names_in.iter().enumerate() {
        let loc = c.loc("n").join(name).unwrap();
        blob.upload_bytes(&loc, &pattern(i + 1, i as u8), &none())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            blob.read(&loc, None).await.unwrap(),
            pattern(i + 1, i as u8)
        );
    }
    let want: BTreeSet<_> = names_in.iter().map(|n| format!("n/{n}")).collect();
    assert_eq!(names(&blob, &c.loc("n")).await, want);
    // The same names as relative paths below the listed directory.
    let pages: Vec<_> = blob.list(&c.loc("n")).try_collect().await.unwrap();
    let rel: BTreeSet<_> = pages
        .iter()
        .flatten()
        .filter_map(|e| e.relative_to(&c.loc("n")).map(str::to_string))
        .collect();
    assert_eq!(rel, names_in.iter().map(|n| n.to_string()).collect());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranged_reads_stream_exactly_the_asked_bytes() {
    let c = Container::new("ranges").await;
    let proxy = Proxy::start();
    let blob = client(BlobAuth::azurite());
    let data = pattern(100_000, 9);
    let loc = c.via(&proxy, "r.bin");
    blob.upload_bytes(&loc, &data, &none()).await.unwrap();
    for range in [0..1, 0..10, 4096..70_000, 99_990..100_000, 5..100_000] {
        let got = blob.read(&loc, Some(range.clone())).await.unwrap();
        assert_eq!(
            got,
            data.slice(range.start as usize..range.end as usize),
            "{range:?}"
        );
    }
    // Streamed into a file.
    let dir = tempfile::tempdir().unwrap();
    let mut file = tokio::fs::File::create(dir.path().join("part"))
        .await
        .unwrap();
    proxy.clear();
    let n = blob
        .download(&loc, Some(1000..51_000), &mut file)
        .await
        .unwrap();
    assert_eq!(n, 50_000);
    assert_eq!(proxy.seen().len(), 1, "one GET");
    drop(file);
    assert_eq!(
        std::fs::read(dir.path().join("part")).unwrap(),
        data[1000..51_000]
    );
    // Empty ranges send nothing; a range past the end is the service's error.
    proxy.clear();
    assert_eq!(blob.read(&loc, Some(7..7)).await.unwrap().len(), 0);
    assert!(proxy.seen().is_empty());
    let e = blob.read(&loc, Some(200_000..200_010)).await.unwrap_err();
    assert_eq!(e.http().and_then(|h| h.status()), Some(416), "{e}");
    // An empty blob reads as empty.
    blob.upload_bytes(&loc, &Bytes::new(), &none())
        .await
        .unwrap();
    assert!(blob.read(&loc, None).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_remove_exactly_what_was_asked() {
    let c = Container::new("deletes").await;
    let blob = client(BlobAuth::azurite());
    let keep = ["a", "ab", "a b", "a+b", "a/x", "dir/a", "A"];
    let gone = ["a.txt", "dir/sub/a", "%61", "x y+z"];
    for rel in keep.iter().chain(&gone) {
        blob.upload_bytes(&c.loc("t").join(rel).unwrap(), &pattern(4, 0), &none())
            .await
            .unwrap();
    }
    let proxy = Proxy::start();
    let locs: Vec<_> = gone
        .iter()
        .map(|r| c.via(&proxy, "t").join(r).unwrap())
        .chain([c.via(&proxy, "t/never-there")])
        .collect();
    let results = blob.delete_many(&locs).await;
    let outcome: Vec<_> = results.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(outcome, [true, true, true, true, false]);
    assert_eq!(proxy.seen().len(), 1, "one batch: {:?}", proxy.seen());
    assert!(proxy.seen()[0].comp("batch") && proxy.seen()[0].method == "POST");
    assert_eq!(blob.batch_supported(), Some(true));
    let left = names(&blob, &c.loc("t")).await;
    assert_eq!(left, keep.iter().map(|k| format!("t/{k}")).collect());

    // Single deletes: true, then false; the container root is refused before any request.
    proxy.clear();
    assert!(blob.delete(&c.via(&proxy, "t/a")).await.unwrap());
    assert!(!blob.delete(&c.via(&proxy, "t/a")).await.unwrap());
    assert!(matches!(
        blob.delete(&c.via(&proxy, "")).await,
        Err(BlobError::Protected(_))
    ));
    let r = blob
        .delete_many(&[c.via(&proxy, ""), c.via(&proxy, "t/ab")])
        .await;
    assert!(matches!(r[0], Err(BlobError::Protected(_))));
    assert!(r[1].as_ref().unwrap());
    assert_eq!(proxy.seen().len(), 3, "{:?}", proxy.seen());
    assert_eq!(
        names(&blob, &c.loc("t")).await,
        ["t/A", "t/a b", "t/a+b", "t/a/x", "t/dir/a"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_at_most_256_deletes() {
    let c = Container::new("batch").await;
    let blob = client(BlobAuth::azurite());
    let rels: Vec<_> = (0..300).map(|i| format!("b/f{i:03}")).collect();
    futures::stream::iter(&rels)
        .map(|r| {
            let (blob, loc) = (&blob, c.loc(r));
            async move {
                blob.upload_bytes(&loc, &Bytes::from_static(b"x"), &Metadata::new())
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    blob.upload_bytes(&c.loc("b/keep"), &Bytes::from_static(b"k"), &none())
        .await
        .unwrap();
    let proxy = Proxy::start();
    let locs: Vec<_> = rels.iter().map(|r| c.via(&proxy, r)).collect();
    let results = blob.delete_many(&locs).await;
    assert!(results.iter().all(|r| matches!(r, Ok(true))));
    assert_eq!(proxy.count(|s| s.comp("batch")), 2);
    assert_eq!(proxy.seen().len(), 2, "fewer requests than files deleted");
    assert_eq!(
        names(&blob, &c.loc("b")).await,
        ["b/keep".to_string()].into()
    );
}

/// OneLake's answer to a batch (a fault Azurite cannot produce).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_falls_back_to_single_deletes_and_is_not_tried_again() {
    batch_refused(
        "nobatch",
        400,
        "BadRequest",
        "Either WorkspaceId or ArtifactId are missing in the request.",
    )
    .await
}

/// A hierarchical-namespace account's answer to a batch (ADLS Gen2; the emulator too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_refused_on_a_hierarchical_namespace_is_not_tried_again() {
    batch_refused(
        "hnsbatch",
        409,
        "FeatureNotYetSupportedForHierarchicalNamespaceAccounts",
        "This operation is not supported on accounts with a hierarchical namespace.",
    )
    .await
}

async fn batch_refused(container: &str, status: u16, code: &'static str, message: &'static str) {
    let c = Container::new(container).await;
    let blob = client(BlobAuth::azurite());
    for rel in ["x/1", "x/2", "x/3", "x/4", "x/keep"] {
        blob.upload_bytes(&c.loc(rel), &pattern(2, 0), &none())
            .await
            .unwrap();
    }
    let proxy = Proxy::start();
    proxy.refuse(
        10,
        |m, t| m == "POST" && t.contains("comp=batch"),
        status,
        code,
        message,
    );
    let first = blob
        .delete_many(&[c.via(&proxy, "x/1"), c.via(&proxy, "x/2")])
        .await;
    assert!(first.iter().all(|r| matches!(r, Ok(true))), "{first:?}");
    assert_eq!(blob.batch_supported(), Some(false));
    assert_eq!(proxy.count(|s| s.comp("batch")), 1);
    assert_eq!(proxy.count(|s| s.method == "DELETE"), 2);
    proxy.clear();
    let second = blob
        .delete_many(&[
            c.via(&proxy, "x/3"),
            c.via(&proxy, "x/4"),
            c.via(&proxy, "x/5"),
        ])
        .await;
    let outcome: Vec<_> = second.iter().map(|r| *r.as_ref().unwrap()).collect();
    assert_eq!(outcome, [true, true, false]);
    assert_eq!(proxy.count(|s| s.comp("batch")), 0, "not tried again");
    assert_eq!(proxy.count(|s| s.method == "DELETE"), 3);
    assert_eq!(
        names(&blob, &c.loc("x")).await,
        ["x/keep".to_string()].into()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_corrupted_in_transit_are_rejected_and_the_old_blob_stays() {
    let c = Container::new("md5").await;
    let proxy = Proxy::start();
    let blob = small(BlobAuth::azurite());
    let small_loc = c.via(&proxy, "small.bin");
    let big_loc = c.via(&proxy, "big.bin");
    let old_small = pattern(100, 1);
    let old_big = pattern(LIMIT + BLOCK, 1);
    blob.upload_bytes(&small_loc, &old_small, &none())
        .await
        .unwrap();
    blob.upload_bytes(&big_loc, &old_big, &none())
        .await
        .unwrap();

    // The proxy flips a byte of the body on its way to Azurite (a fault no server produces).
    proxy.corrupt(1, |m, t| m == "PUT" && t.ends_with("small.bin"));
    let e = blob
        .upload_bytes(&small_loc, &pattern(100, 2), &none())
        .await
        .unwrap_err();
    // Azure says Md5Mismatch; Azurite says InvalidOperation "Provided contentMD5 doesn't match".
    assert_eq!(e.http().and_then(|h| h.status()), Some(400), "{e}");
    assert!(e.to_string().to_lowercase().contains("md5"), "{e}");
    assert!(e.hint().unwrap().contains("MD5"), "{:?}", e.hint());
    assert_eq!(
        blob.read(&c.loc("small.bin"), None).await.unwrap(),
        old_small
    );

    proxy.corrupt(1, |m, t| m == "PUT" && t.contains("comp=block&"));
    let e = blob
        .upload_bytes(&big_loc, &pattern(LIMIT + BLOCK, 2), &none())
        .await
        .unwrap_err();
    assert_eq!(e.http().and_then(|h| h.status()), Some(400), "{e}");
    assert!(e.to_string().to_lowercase().contains("md5"), "{e}");
    assert_eq!(blob.read(&c.loc("big.bin"), None).await.unwrap(), old_big);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sas_authorises_every_operation() {
    let c = Container::new("sas").await;
    let proxy = Proxy::start();
    let blob = small(BlobAuth::sas(Secret::new(container_sas(&c.name, "racwdl"))));
    let dir = c.via(&proxy, "s");
    for i in 0..5 {
        blob.upload_bytes(
            &dir.join(&format!("f{i}")).unwrap(),
            &pattern(10, i),
            &none(),
        )
        .await
        .unwrap();
    }
    let big = pattern(LIMIT + 3 * BLOCK, 7);
    blob.upload_bytes(&dir.join("big").unwrap(), &big, &none())
        .await
        .unwrap();
    assert_eq!(
        blob.read(&dir.join("big").unwrap(), Some(10..20))
            .await
            .unwrap(),
        big.slice(10..20)
    );
    assert_eq!(names(&blob, &dir).await.len(), 6);
    let r = blob
        .delete_many(&[dir.join("f0").unwrap(), dir.join("f1").unwrap()])
        .await;
    assert!(r.iter().all(|r| matches!(r, Ok(true))), "{r:?}");
    assert_eq!(blob.batch_supported(), Some(true));
    assert!(blob.delete(&dir.join("f2").unwrap()).await.unwrap());
    assert_eq!(names(&blob, &dir).await.len(), 3);
    // Every request carried the SAS and no Authorization.
    assert!(proxy.seen().iter().all(|s| s.target.contains("sig=")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sas_signature_never_appears_in_errors() {
    let c = Container::new("sassecret").await;
    let good = container_sas(&c.name, "rl");
    let sig = good.split("sig=").nth(1).unwrap().to_string();
    let decoded = percent_encoding::percent_decode_str(&sig)
        .decode_utf8_lossy()
        .into_owned();
    let check = |e: &BlobError| {
        for text in [
            fabric_remote::diagnostic::one_line(e),
            format!("{e:?}"),
            e.hint().unwrap_or_default(),
        ] {
            assert!(!text.contains(&sig) && !text.contains(&decoded), "{text}");
        }
    };
    // Read-only SAS: writing is refused.
    let read_only = client(BlobAuth::sas(Secret::new(good.clone())));
    let e = read_only
        .upload_bytes(&c.loc("x"), &pattern(3, 0), &none())
        .await
        .unwrap_err();
    assert_eq!(e.http().and_then(|h| h.status()), Some(403), "{e}");
    check(&e);
    // A tampered signature: authentication fails.
    let tampered = good.replace("sig=", "sig=AAAA");
    let bad = client(BlobAuth::sas(Secret::new(tampered)));
    let e = bad.read(&c.loc("x"), None).await.unwrap_err();
    assert_eq!(e.http().and_then(|h| h.status()), Some(403), "{e}");
    check(&e);
    // The service echoing the query back in its message: scrubbed all the same.
    let proxy = Proxy::start();
    let leaky: &'static str =
        Box::leak(format!("Bad query sig={sig} ({decoded})").into_boxed_str());
    proxy.refuse(1, |_, _| true, 400, "InvalidQueryParameterValue", leaky);
    let e = read_only.read(&c.via(&proxy, "x"), None).await.unwrap_err();
    let line = fabric_remote::diagnostic::one_line(&e);
    assert!(line.contains("InvalidQueryParameterValue"), "{line}");
    check(&e);
    // No server at all: the transport error names no URL query either.
    let dead = RemoteLocation::parse("http://127.0.0.1:9/devstoreaccount1/c/x").unwrap();
    let e = read_only.read(&dead, None).await.unwrap_err();
    check(&e);
    assert!(format!("{read_only:?}").contains("Sas(***)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_key_signs_and_a_wrong_key_is_refused_with_a_hint() {
    let c = Container::new("sharedkey").await;
    let good = client(
        BlobAuth::shared_key(
            "devstoreaccount1",
            &Secret::new(fabric_remote::blob::AZURITE_KEY),
        )
        .unwrap(),
    );
    good.upload_bytes(&c.loc("k/a"), &pattern(9, 0), &none())
        .await
        .unwrap();
    let wrong_key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    let wrong =
        client(BlobAuth::shared_key("devstoreaccount1", &Secret::new(wrong_key.clone())).unwrap());
    let e = wrong.read(&c.loc("k/a"), None).await.unwrap_err();
    assert_eq!(e.http().and_then(|h| h.status()), Some(403), "{e}");
    assert!(
        matches!(
            e.http().and_then(|h| h.code()),
            Some("AuthorizationFailure" | "AuthenticationFailed")
        ),
        "{e}"
    );
    assert!(
        e.hint().unwrap().contains("AZURE_STORAGE_KEY"),
        "{:?}",
        e.hint()
    );
    assert!(!format!("{e} {e:?} {wrong:?}").contains(&wrong_key[..20]));
    assert_eq!(good.read(&c.loc("k/a"), None).await.unwrap(), pattern(9, 0));
    // A missing container says so, with what to do.
    let missing = c.loc("nope/x");
    let e = good
        .read(
            &RemoteLocation::parse(&format!(
                "{}/devstoreaccount1/no-such-container/x",
                crate::azurite::endpoint()
            ))
            .unwrap(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        e.http().and_then(|h| h.code()),
        Some("ContainerNotFound"),
        "{e}"
    );
    let hints = fabric_remote::diagnostic::hints(&e);
    assert!(
        hints.iter().any(|h| h.contains("create the container")),
        "{hints:?}"
    );
    assert_eq!(good.properties(&missing).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_requests_are_retried_by_the_shared_policy() {
    let c = Container::new("retry").await;
    let proxy = Proxy::start();
    let blob = small(BlobAuth::azurite());
    // Two 503s the way Azure Storage throttles (a fault Azurite does not produce on demand).
    proxy.refuse(
        2,
        |m, _| m == "PUT",
        503,
        "ServerBusy",
        "The server is busy.",
    );
    let data = pattern(1000, 4);
    let up = blob
        .upload_bytes(&c.via(&proxy, "r.bin"), &data, &none())
        .await
        .unwrap();
    assert_eq!(
        up.requests, 1,
        "retries are not counted as requests of the upload"
    );
    let puts: Vec<_> = proxy.seen().iter().map(|s| s.status).collect();
    assert_eq!(puts, [503, 503, 201]);
    assert_eq!(blob.http().throttled(), 2);
    assert_eq!(blob.read(&c.loc("r.bin"), None).await.unwrap(), data);
}
