//! The DFS client against the emulator over HTTP: bytes, names, listings, deletes, request
//! counts, retries and refusals, checked where a user would check them (the emulator's plain
//! files on disk, its request log).

use std::collections::BTreeSet;
use std::time::Duration;

use bytes::Bytes;
use fabric_emulator::{Config, Emulator};
use fabric_remote::auth::Credentials;
use fabric_remote::dfs::{DfsClient, DfsError, Missing};
use fabric_remote::diagnostic::{hints, one_line};
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::RemoteLocation;
use fabric_remote::secret::Secret;
use futures::{StreamExt, TryStreamExt};

const CHUNK: usize = 64 * 1024;

/// A fast-retrying client (tests must not sleep for seconds).
fn client() -> DfsClient {
    let policy = RetryPolicy {
        max_attempts: 12,
        base_delay: Duration::from_millis(2),
        max_delay: Duration::from_millis(50),
        deadline: Duration::from_secs(60),
    };
    let http = HttpClient::new(Credentials::from_token(Secret::new("test-token")), policy)
        .expect("http client");
    DfsClient::new(http).with_chunk_size(CHUNK)
}

fn root(emu: &Emulator, sub: &str) -> RemoteLocation {
    RemoteLocation::parse(&format!(
        "{}/{}/lake.Lakehouse/Files/{sub}",
        emu.url(),
        emu.workspace_name()
    ))
    .expect("location")
}

fn emulator(config: Config) -> Emulator {
    Emulator::start(config).expect("emulator starts")
}

fn pattern(len: usize, seed: u8) -> Bytes {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect::<Vec<u8>>()
        .into()
}

async fn download(dfs: &DfsClient, loc: &RemoteLocation) -> Vec<u8> {
    let mut out = Vec::new();
    dfs.download(loc, &mut out).await.expect("download");
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_exact_round_trips_around_the_chunk_size() {
    let emu = emulator(Config::default());
    let dfs = client();
    let dir = root(&emu, "sizes");
    let files_dir = emu.lakehouse_files_dir("lake").expect("lake files dir");
    for (i, len) in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK]
        .into_iter()
        .enumerate()
    {
        let data = pattern(len, i as u8);
        let loc = dir.join(&format!("f{len}.bin")).unwrap();
        let up = dfs.upload_bytes(&loc, &data).await.expect("upload");
        assert_eq!(up.size, len as u64);
        assert_eq!(up.requests, 1 + len.div_ceil(CHUNK) as u32, "len {len}");
        assert_eq!(
            download(&dfs, &loc).await,
            data.to_vec(),
            "download len {len}"
        );
        // The emulator keeps plain files: the bytes on disk are the bytes we sent.
        let on_disk = std::fs::read(files_dir.join(format!("sizes/f{len}.bin"))).unwrap();
        assert_eq!(on_disk, data.to_vec(), "on disk len {len}");
        let props = dfs.head(&loc).await.unwrap().expect("exists");
        assert_eq!(props.size, len as u64);
        assert_eq!(props.etag, up.etag);
    }
    // A range read.
    let loc = dir.join(&format!("f{}.bin", 3 * CHUNK)).unwrap();
    let part = dfs.read(&loc, Some((10, Some(20)))).await.unwrap();
    assert_eq!(&part[..], &pattern(3 * CHUNK, 5)[10..20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploading_a_file_from_disk_reads_it_in_chunks() {
    let emu = emulator(Config::default());
    let dfs = client();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.bin");
    let data = pattern(2 * CHUNK + 7, 9);
    std::fs::write(&path, &data).unwrap();
    let loc = root(&emu, "disk/big.bin");
    let up = dfs.upload_file(&loc, &path).await.unwrap();
    assert_eq!(up.requests, 4);
    assert_eq!(download(&dfs, &loc).await, data.to_vec());

    let missing = dfs
        .upload_file(&loc, &tmp.path().join("nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(missing, DfsError::Local { .. }),
        "unreadable local file is a local error: {missing}"
    );
    assert!(missing.to_string().contains("nope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_file_is_two_requests_and_empty_file_one() {
    let emu = emulator(Config::default());
    let dfs = client();
    let dir = root(&emu, "counts");
    emu.clear_requests();
    dfs.upload_bytes(
        &dir.join("small.txt").unwrap(),
        &Bytes::from_static(b"hello"),
    )
    .await
    .unwrap();
    let log = emu.requests();
    let methods: Vec<_> = log.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "PATCH"], "{log:?}");
    assert!(log[1].query.contains("flush=true"), "{log:?}");

    emu.clear_requests();
    dfs.upload_bytes(&dir.join("empty.txt").unwrap(), &Bytes::new())
        .await
        .unwrap();
    assert_eq!(emu.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn special_character_names_round_trip() {
    let emu = emulator(Config::default());
    let dfs = client();
    let dir = root(&emu, "names");
    let names = [
        "a+b.txt",
        "a b.txt",
        "a#b.txt",
        "100%.txt",
        "why?.txt",
        "café é.txt",
        "sub dir+x/日本 #1?.txt",
    ];
    for (i, name) in names.iter().enumerate() {
        let body = Bytes::from(format!("content {i}"));
        dfs.upload_bytes(&dir.join(name).unwrap(), &body)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let listed: BTreeSet<String> = dfs
        .list(&dir, true)
        .map_ok(|page| {
            page.into_iter()
                .filter(|e| !e.is_directory)
                .filter_map(|e| e.relative_to(&dir).map(str::to_string))
                .collect::<Vec<_>>()
        })
        .try_concat()
        .await
        .unwrap()
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = names.iter().map(|s| s.to_string()).collect();
    assert_eq!(listed, expected);
    let files_dir = emu.lakehouse_files_dir("lake").unwrap();
    for (i, name) in names.iter().enumerate() {
        let loc = dir.join(name).unwrap();
        assert_eq!(
            download(&dfs, &loc).await,
            format!("content {i}").into_bytes()
        );
        assert!(
            files_dir.join("names").join(name).is_file(),
            "{name} on disk"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_listing_of_12000_paths_in_pages_of_500_returns_each_once() {
    let emu = emulator(Config {
        page_size: 500,
        ..Config::default()
    });
    let dfs = client();
    let dir = root(&emu, "many");
    let mut expected = BTreeSet::new();
    for d in 0..120 {
        for f in 0..100 {
            expected.insert(format!("d{d:03}/f{f:03}.txt"));
        }
    }
    futures::stream::iter(expected.iter().cloned())
        .map(|p| {
            let dfs = dfs.clone();
            let loc = dir.join(&p).unwrap();
            async move { dfs.create_file(&loc).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    // 12,000 files + 120 directories.
    emu.clear_requests();
    let mut files = Vec::new();
    let mut dirs = 0;
    let mut pages = 0;
    let mut stream = std::pin::pin!(dfs.list(&dir, true));
    while let Some(page) = stream.try_next().await.unwrap() {
        pages += 1;
        assert!(page.len() <= 500);
        for e in page {
            if e.is_directory {
                dirs += 1;
            } else {
                files.push(e.relative_to(&dir).unwrap().to_string());
            }
        }
    }
    assert_eq!(dirs, 120);
    assert_eq!(files.len(), 12_000, "no duplicates, none missing");
    assert_eq!(files.iter().cloned().collect::<BTreeSet<_>>(), expected);
    assert_eq!(pages, 12_120usize.div_ceil(500));
    assert_eq!(emu.requests().len(), pages, "one request per page");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recursive_delete_follows_continuation_until_everything_is_gone() {
    let emu = emulator(Config {
        page_size: 100,
        ..Config::default()
    });
    let dfs = client();
    let dir = root(&emu, "doomed");
    futures::stream::iter(0..450)
        .map(|i| {
            let dfs = dfs.clone();
            let loc = dir.join(&format!("s{}/f{i}", i % 3)).unwrap();
            async move { dfs.create_file(&loc).await }
        })
        .buffer_unordered(32)
        .try_collect::<Vec<_>>()
        .await
        .unwrap();
    let keep = root(&emu, "kept.txt");
    dfs.upload_bytes(&keep, &Bytes::from_static(b"x"))
        .await
        .unwrap();

    emu.clear_requests();
    assert!(dfs.delete(&dir, true).await.unwrap());
    let deletes = emu
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert!(
        deletes > 1,
        "the emulator paginates deletes of 450 paths: {deletes}"
    );
    assert_eq!(dfs.head(&dir).await.unwrap(), None);
    assert!(
        !emu.lakehouse_files_dir("lake")
            .unwrap()
            .join("doomed")
            .exists()
    );
    assert!(dfs.head(&keep).await.unwrap().is_some(), "siblings survive");
    // Deleting what is not there is not an error.
    assert!(!dfs.delete(&dir, true).await.unwrap());
}

/// Issue 8 item 1: a missing directory is an error, never an empty listing (which a sync
/// would take for an empty tree). `explain_missing` names the part that is missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_directory_is_not_found_and_explained() {
    let emu = emulator(Config::default());
    let dfs = client();
    let dir = root(&emu, "nothing/here");
    let err = dfs
        .list(&dir, true)
        .try_collect::<Vec<_>>()
        .await
        .unwrap_err();
    assert!(matches!(err, DfsError::NotFound(Missing::Path(_))), "{err}");
    emu.clear_requests();
    let explained = dfs.explain_missing(&dir).await;
    assert_eq!(
        explained.to_string(),
        "`Files/nothing` does not exist in `lake.Lakehouse`"
    );
    assert!(
        emu.requests()
            .iter()
            .all(|r| r.method == "HEAD" || r.method == "GET"),
        "explaining reads only"
    );
    let other = RemoteLocation::parse(&format!(
        "{}/{}/other.Lakehouse/Files/x",
        emu.url(),
        emu.workspace_name()
    ))
    .unwrap();
    assert_eq!(
        dfs.explain_missing(&other).await.to_string(),
        format!(
            "`other.Lakehouse` does not exist in workspace `{}`",
            emu.workspace_name()
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_succeeds_at_fail_rate_0_3_and_retries_show() {
    let emu = emulator(Config {
        fail_rate: 0.3,
        page_size: 7,
        seed: 42,
        ..Config::default()
    });
    let dfs = client();
    let dir = root(&emu, "flaky");
    for i in 0..30 {
        let data = pattern(i * 5000, i as u8);
        let loc = dir.join(&format!("f{i}")).unwrap();
        dfs.upload_bytes(&loc, &data).await.unwrap();
        assert_eq!(download(&dfs, &loc).await, data.to_vec());
    }
    let listed: usize = dfs
        .list(&dir, true)
        .map_ok(|p| p.len())
        .try_fold(0, |a, n| async move { Ok(a + n) })
        .await
        .unwrap();
    assert_eq!(listed, 30);
    assert!(dfs.delete(&dir, true).await.unwrap());
    let faulted = emu.requests().iter().filter(|r| r.fault.is_some()).count();
    assert!(faulted > 10, "faults were injected: {faulted}");
    assert!(
        dfs.http().retries() as usize >= faulted,
        "each fault was retried"
    );
    assert!(dfs.http().throttled() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_connections_are_retried() {
    let emu = emulator(Config {
        reset_rate: 0.2,
        seed: 7,
        ..Config::default()
    });
    let dfs = client();
    let dir = root(&emu, "resets");
    for i in 0..30 {
        let data = pattern(i * 3000 + 1, i as u8);
        let loc = dir.join(&format!("f{i}")).unwrap();
        dfs.upload_bytes(&loc, &data).await.unwrap();
        assert_eq!(download(&dfs, &loc).await, data.to_vec());
    }
    assert!(dfs.delete(&dir, true).await.unwrap());
    let resets = emu
        .requests()
        .iter()
        .filter(|r| r.fault.is_some_and(|f| f.starts_with("reset")))
        .count();
    assert!(resets > 5, "connections were dropped: {resets}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_403_is_one_clear_sentence_without_retries() {
    let emu = emulator(Config::default());
    let dfs = client();
    let loc = root(&emu, "secret/x.txt");
    emu.deny(&format!(
        "/{}/lake.Lakehouse/Files/secret",
        emu.workspace_name()
    ));
    emu.clear_requests();
    let err = dfs
        .upload_bytes(&loc, &Bytes::from_static(b"x"))
        .await
        .unwrap_err();
    assert_eq!(emu.requests().len(), 1, "403 is not retried");
    let text = one_line(&err);
    assert!(text.contains("403"), "{text}");
    assert!(text.contains("AuthorizationPermissionMismatch"), "{text}");
    assert!(!text.contains('\n'), "one sentence: {text}");
    assert!(!text.contains("test-token"));
    assert!(hints(&err)[0].contains("Contributor"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_folders_are_refused_before_any_request() {
    let emu = emulator(Config::default());
    let dfs = client();
    emu.clear_requests();
    let files = RemoteLocation::parse(&format!(
        "{}/{}/lake.Lakehouse/Files",
        emu.url(),
        emu.workspace_name()
    ))
    .unwrap();
    assert!(matches!(
        dfs.delete(&files, true).await,
        Err(DfsError::Protected(_))
    ));
    assert!(emu.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_idempotent_requests_are_replayed_only_when_refused() {
    use fabric_remote::http::Replay;
    let emu = emulator(Config::default());
    let dfs = client();
    let loc = root(&emu, "once.txt");
    dfs.create_file(&loc).await.unwrap();
    let url = format!("{}?action=append&position=0", loc.url());
    let send = |replay| {
        let http = dfs.http().clone();
        let url = url.clone();
        async move {
            http.send_with(replay, reqwest::Method::PATCH, &url, "scope", |r| {
                r.header("x-ms-version", fabric_remote::dfs::X_MS_VERSION)
                    .header("content-length", "1")
                    .body("x")
            })
            .await
        }
    };
    // A dropped connection may have done the work: not sent again.
    emu.set_faults(0.0, 1.0, 0);
    emu.clear_requests();
    assert!(send(Replay::NotIdempotent).await.is_err());
    assert_eq!(emu.requests().len(), 1);
    // A refusal (429/503) did nothing: sent again, up to the policy's attempts.
    emu.set_faults(1.0, 0.0, 0);
    emu.clear_requests();
    assert!(send(Replay::NotIdempotent).await.is_err());
    assert_eq!(emu.requests().len(), 12);
    // Idempotent requests are replayed after drops too.
    emu.set_faults(0.0, 1.0, 0);
    emu.clear_requests();
    assert!(send(Replay::Idempotent).await.is_err());
    assert_eq!(emu.requests().len(), 12);
}
