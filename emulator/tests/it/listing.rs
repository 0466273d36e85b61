//! List Paths: body shapes, paging, errors, speed.

use std::collections::HashSet;
use std::time::Instant;

use fabric_emulator::Config;
use reqwest::Method;

use crate::{Dfs, error_code, header};

#[tokio::test]
async fn listing_shapes_match_the_real_service() {
    let d = Dfs::new();
    let etag = d.upload("Files/proj/hello.txt", b"hello world").await;
    assert_eq!(d.mkdir("Files/proj/sub").await.status(), 201);
    let r = d
        .list(&[
            ("recursive", "false"),
            ("directory", "lake.Lakehouse/Files/proj"),
        ])
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "content-type"),
        "application/json; charset=utf-8"
    );
    assert!(!r.headers().contains_key("x-ms-continuation"));
    let text = r.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let paths = body["paths"].as_array().unwrap();
    assert_eq!(paths.len(), 2);

    let file = &paths[0];
    assert_eq!(file["name"], "lake.Lakehouse/Files/proj/hello.txt");
    assert_eq!(file["contentLength"], "11");
    assert_eq!(file["etag"].as_str().unwrap(), etag.trim_matches('"'));
    assert!(file.get("isDirectory").is_none());
    assert_eq!(file["expiryTime"], "0");
    assert_eq!(file["owner"], "$superuser");
    assert_eq!(file["group"], "$superuser");
    assert!(file["lastModified"].as_str().unwrap().ends_with(" GMT"));
    let ft: u64 = file["creationTime"].as_str().unwrap().parse().unwrap();
    assert!(ft > 133_000_000_000_000_000, "FILETIME ticks: {ft}");

    let dir = &paths[1];
    assert_eq!(dir["name"], "lake.Lakehouse/Files/proj/sub");
    assert_eq!(dir["isDirectory"], "true");
    assert_eq!(dir["contentLength"], "0");

    // Keys in alphabetical order, every value a string.
    let keys: Vec<&String> = file.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert!(file.as_object().unwrap().values().all(|v| v.is_string()));
    assert!(
        text.starts_with("{\"paths\":[{\"contentLength\":\"11\",\"creationTime\":\""),
        "{text}"
    );

    // Workspace root and item level.
    let (root, _) = d.list_all(&[("recursive", "false")]).await;
    let names: Vec<&str> = root.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lake.Lakehouse"]);
    let (item, _) = d
        .list_all(&[("recursive", "false"), ("directory", "lake.Lakehouse")])
        .await;
    let names: Vec<&str> = item.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["lake.Lakehouse/Files", "lake.Lakehouse/Tables"]);
}

#[tokio::test]
async fn guid_addressed_listing_keeps_the_guid() {
    let d = Dfs::new();
    d.upload("Files/x/y.txt", b"1").await;
    let lh = d.emu.lakehouse_id("lake").unwrap();
    let url = d.url(d.emu.workspace_id(), "");
    let dir = format!("{lh}/Files");
    let r = d
        .raw(Method::GET, &url)
        .query(&[
            ("resource", "filesystem"),
            ("recursive", "true"),
            ("directory", dir.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    let names: Vec<&str> = body["paths"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [format!("{lh}/Files/x"), format!("{lh}/Files/x/y.txt")]
    );
}

#[tokio::test]
async fn paging_returns_every_path_once() {
    let d = Dfs::start(Config {
        page_size: 7,
        ..Config::default()
    });
    let files = d.emu.lakehouse_files_dir("lake").unwrap();
    let mut expected = HashSet::new();
    for i in 0..6 {
        let sub = format!("p/d{i}");
        std::fs::create_dir_all(files.join(&sub)).unwrap();
        expected.insert(format!("lake.Lakehouse/Files/{sub}"));
        for j in 0..5 {
            let name = format!("{sub}/f+{j} é.txt");
            std::fs::write(files.join(&name), b"x").unwrap();
            expected.insert(format!("lake.Lakehouse/Files/{name}"));
        }
    }
    // Tricky sort neighbours: `p/d0-x` sorts before `p/d0/…` bytewise.
    std::fs::write(files.join("p/d0-x"), b"x").unwrap();
    expected.insert("lake.Lakehouse/Files/p/d0-x".to_owned());

    // maxResults below the configured page size wins.
    let (all, pages) = d
        .list_all(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/p"),
            ("maxResults", "5"),
        ])
        .await;
    let names: Vec<String> = all
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let unique: HashSet<String> = names.iter().cloned().collect();
    assert_eq!(unique.len(), names.len(), "no duplicates");
    assert_eq!(unique, expected);
    assert_eq!(pages, expected.len().div_ceil(5));
    // Pre-order: every directory before its contents.
    for (i, n) in names.iter().enumerate() {
        if let Some((parent, _)) = n.rsplit_once('/')
            && let Some(pi) = names.iter().position(|m| m == parent)
        {
            assert!(pi < i, "{parent} listed after {n}");
        }
    }

    // The configured page size caps maxResults.
    let (_, pages) = d
        .list_all(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/p"),
            ("maxResults", "5000"),
        ])
        .await;
    assert_eq!(pages, expected.len().div_ceil(7));

    // Tokens need percent-encoding: sent raw, `+` turns into a space and fails.
    let r = d
        .list(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/p"),
        ])
        .await;
    let token = header(&r, "x-ms-continuation");
    assert!(token.contains(['+', '/', '=']), "{token}");
    let raw = format!(
        "{}?resource=filesystem&recursive=true&directory=lake.Lakehouse%2FFiles%2Fp&continuation={token}",
        d.url("My Workspace", "")
    );
    let r = d.raw(Method::GET, &raw).send().await.unwrap();
    assert_eq!(
        error_code(r).await,
        (400, "InvalidQueryParameterValue".to_owned())
    );
    let r = d
        .list(&[("recursive", "true"), ("continuation", "not-a-token")])
        .await;
    assert_eq!(
        error_code(r).await,
        (400, "InvalidQueryParameterValue".to_owned())
    );
}

#[tokio::test]
async fn listing_errors() {
    let d = Dfs::new();
    let r = d
        .list(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/missing"),
        ])
        .await;
    assert_eq!(error_code(r).await, (404, "PathNotFound".to_owned()));
    let r = d.list(&[("directory", "lake.Lakehouse/Files")]).await;
    assert_eq!(error_code(r).await.0, 400, "recursive is required");
    let r = d.list(&[("recursive", "maybe")]).await;
    assert_eq!(error_code(r).await.0, 400);
    let r = d
        .list(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/../Tables"),
        ])
        .await;
    assert_eq!(error_code(r).await.0, 400);
    let r = d
        .list(&[("recursive", "true"), ("directory", "nope.Lakehouse/Files")])
        .await;
    assert_eq!(error_code(r).await.0, 404);
    // Listing a file lists that file.
    d.upload("Files/one.txt", b"1").await;
    let (all, _) = d
        .list_all(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/one.txt"),
        ])
        .await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0]["name"], "lake.Lakehouse/Files/one.txt");
}

#[tokio::test]
async fn twelve_thousand_paths_page_fast() {
    let d = Dfs::start(Config {
        page_size: 500,
        ..Config::default()
    });
    let files = d.emu.lakehouse_files_dir("lake").unwrap();
    // 40 directories of 299 files + the directories = 12,000 paths; one flat folder
    // of 2,000 more to stress a single big directory.
    let mut total = 0;
    for i in 0..40 {
        let dir = files.join(format!("big/d{i:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        total += 1;
        for j in 0..299 {
            std::fs::write(dir.join(format!("f{j:04}")), b"").unwrap();
            total += 1;
        }
    }
    assert_eq!(total, 12_000);
    let start = Instant::now();
    let (all, pages) = d
        .list_all(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/big"),
        ])
        .await;
    let first = start.elapsed();
    assert_eq!(all.len(), 12_000);
    assert_eq!(pages, 24);
    // The second pass (ETags now recorded) is the steady state.
    let start = Instant::now();
    let (all, _) = d
        .list_all(&[
            ("recursive", "true"),
            ("directory", "lake.Lakehouse/Files/big"),
        ])
        .await;
    let second = start.elapsed();
    assert_eq!(all.len(), 12_000);
    eprintln!("12,000 paths in 24 pages: first {first:?}, second {second:?}");
    assert!(second.as_millis() < 1500, "listing too slow: {second:?}");

    let flat = files.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for j in 0..2000 {
        std::fs::write(flat.join(format!("f{j:05}")), b"").unwrap();
    }
    let start = Instant::now();
    let (all, pages) = d
        .list_all(&[
            ("recursive", "false"),
            ("directory", "lake.Lakehouse/Files/flat"),
        ])
        .await;
    assert_eq!((all.len(), pages), (2000, 4));
    eprintln!("2,000 flat paths: {:?}", start.elapsed());
}
