//! `sync` against the emulator: the remote bytes equal the local tree, request counts for the
//! everyday cases (first sync, no-op, touch, fresh clone, a few changes), the delete rails,
//! faults, a killed run, and the download direction.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use fabric_emulator::{Config, Emulator, RecordedRequest};
use fabric_remote::auth::Credentials;
use fabric_remote::dfs::DfsClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::{Location, RemoteLocation};
use fabric_remote::secret::Secret;
use fabric_remote::sync::exclude::Excludes;
use fabric_remote::sync::plan::{Held, Rails};
use fabric_remote::sync::{self, Silent, Summary, SyncError, SyncOptions};

use crate::util::fabric_remote;

const MANIFEST: &str = ".fabric-remote-manifest";
const LOCK: &str = ".fabric-remote-lock";

struct Fixture {
    emu: Emulator,
    dfs: DfsClient,
    cache: tempfile::TempDir,
}

impl Fixture {
    fn new(config: Config) -> Self {
        let emu = Emulator::start(config).expect("emulator");
        let policy = RetryPolicy {
            max_attempts: 14,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(40),
            deadline: Duration::from_secs(120),
        };
        let http = HttpClient::new(Credentials::from_token(Secret::new("t")), policy).unwrap();
        Self {
            emu,
            dfs: DfsClient::new(http).with_chunk_size(4 * 1024 * 1024),
            cache: tempfile::tempdir().unwrap(),
        }
    }

    fn url(&self, sub: &str) -> String {
        format!(
            "{}/{}/lake.Lakehouse/Files/{sub}",
            self.emu.url(),
            self.emu.workspace_name().replace(' ', "%20")
        )
    }

    fn remote(&self, sub: &str) -> RemoteLocation {
        RemoteLocation::parse(&self.url(sub)).unwrap()
    }

    fn remote_dir(&self, sub: &str) -> std::path::PathBuf {
        self.emu.lakehouse_files_dir("lake").unwrap().join(sub)
    }

    fn options(&self) -> SyncOptions {
        SyncOptions {
            cache_dir: Some(self.cache.path().to_path_buf()),
            concurrency: 16,
            ..SyncOptions::default()
        }
    }

    async fn up(&self, src: &Path, sub: &str, options: &SyncOptions) -> Result<Summary, SyncError> {
        sync::sync(
            &Location::Local(src.to_path_buf()),
            &Location::Remote(self.remote(sub)),
            &self.dfs,
            options,
            &Silent,
        )
        .await
    }

    async fn down(
        &self,
        sub: &str,
        dst: &Path,
        options: &SyncOptions,
    ) -> Result<Summary, SyncError> {
        sync::sync(
            &Location::Remote(self.remote(sub)),
            &Location::Local(dst.to_path_buf()),
            &self.dfs,
            options,
            &Silent,
        )
        .await
    }
}

fn writes(log: &[RecordedRequest]) -> usize {
    log.iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .count()
}

/// Lease requests (the lock on the remote root).
fn leases(log: &[RecordedRequest]) -> usize {
    log.iter().filter(|r| r.method == "POST").count()
}

fn uploads_of(log: &[RecordedRequest]) -> Vec<String> {
    let mut v: Vec<String> = log
        .iter()
        .filter(|r| {
            r.method == "PUT"
                && r.query.contains("resource=file")
                && !r.path.ends_with(MANIFEST)
                && !r.path.ends_with(LOCK)
        })
        .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

/// Requests the emulator answered with an injected fault (or dropped).
fn faults(emu: &Emulator) -> usize {
    emu.requests().iter().filter(|r| r.fault.is_some()).count()
}

fn write(root: &Path, rel: &str, body: &[u8]) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// Every regular file below `root` with its bytes, keyed by relative path.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    if !root.exists() {
        return out;
    }
    for entry in walk(root) {
        let rel = entry
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        out.insert(rel, std::fs::read(&entry).unwrap());
    }
    out
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The remote tree as the emulator stores it, without our manifest and lock file.
fn remote_tree(f: &Fixture, sub: &str) -> BTreeMap<String, Vec<u8>> {
    let mut t = tree(&f.remote_dir(sub));
    t.remove(MANIFEST);
    t.remove(LOCK);
    t
}

fn sample_tree(root: &Path, n: usize) {
    for i in 0..n {
        write(
            root,
            &format!("pkg{}/mod{i}.py", i % 5),
            format!("x = {i}\n").as_bytes(),
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_mirrors_a_tree_byte_for_byte() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    write(s, "README.md", b"# hi\n");
    write(s, "empty.txt", b"");
    write(s, "a/b/c/deep.py", b"print('deep')\n");
    write(s, "a/empty-too", b"");
    write(s, "names/café é.txt", "unicode é".as_bytes());
    write(s, "names/a+b #1 100%?.txt", b"specials");
    write(s, "names/日本/データ.csv", b"1,2\n");
    write(s, ".hidden/config", b"hidden files are content");
    write(s, "node_modules/pkg/index.js", b"excluded");
    write(s, "src/x.pyc", b"excluded");
    write(s, "test.env", b"AZURE_CLIENT_SECRET=never-uploaded");
    let big: Vec<u8> = (0..64 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    write(s, "data/big.bin", &big);

    let mut options = f.options();
    options.excludes = Excludes::new(&["node_modules".into(), "*.pyc".into()], &[]).unwrap();
    let summary = f.up(s, "mirror", &options).await.unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);

    let mut expected = tree(s);
    for gone in ["node_modules/pkg/index.js", "src/x.pyc", "test.env"] {
        expected.remove(gone).unwrap();
    }
    assert_eq!(summary.uploaded, expected.len() as u64);
    let remote = remote_tree(&f, "mirror");
    assert_eq!(
        remote.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(remote == expected, "remote bytes equal local bytes");
    assert!(f.remote_dir("mirror").join(MANIFEST).is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_counts_for_the_everyday_cases() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    let n = 40;
    sample_tree(src.path(), n);
    let options = f.options();

    // First sync: at most 2 writes per small file, plus the manifest (2), the lock file's
    // creation and its start and end records (3), one listing, and the lease taken and
    // released.
    f.emu.clear_requests();
    let first = f.up(src.path(), "counts", &options).await.unwrap();
    let log = f.emu.requests();
    assert_eq!(first.uploaded, n as u64);
    assert_eq!(writes(&log), 2 * n + 2 + 3, "2 per file + manifest + lock");
    assert_eq!(leases(&log), 2, "acquire, release");
    let listings = log.iter().filter(|r| r.method == "GET").count();
    assert_eq!(listings, 1, "one listing, no manifest yet: {log:?}");

    // No-op: one listing request, nothing written, no file content read.
    f.emu.clear_requests();
    let noop = f.up(src.path(), "counts", &options).await.unwrap();
    let log = f.emu.requests();
    assert_eq!(log.len(), 1, "only the listing: {log:?}");
    assert_eq!(noop.hashed_files, 0, "no local file was read");
    assert_eq!(
        (noop.uploaded, noop.deleted, noop.unchanged),
        (0, 0, n as u64)
    );

    // Touch every file: re-hashed, nothing uploaded.
    let later = SystemTime::now() + Duration::from_secs(5);
    for p in walk(src.path()) {
        std::fs::File::options()
            .write(true)
            .open(&p)
            .unwrap()
            .set_modified(later)
            .unwrap();
    }
    f.emu.clear_requests();
    let touched = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(touched.hashed_files, n as u64);
    assert_eq!(touched.uploaded, 0);
    assert_eq!(writes(&f.emu.requests()), 0);

    // A fresh copy of the same tree elsewhere (new hash cache key): nothing uploaded.
    let copy = tempfile::tempdir().unwrap();
    for (rel, body) in tree(src.path()) {
        write(copy.path(), &rel, &body);
    }
    f.emu.clear_requests();
    let cloned = f.up(copy.path(), "counts", &options).await.unwrap();
    assert_eq!(cloned.uploaded, 0);
    assert_eq!(writes(&f.emu.requests()), 0);

    // Three files changed: exactly three uploads (+ the manifest).
    for i in [1, 7, 22] {
        write(
            src.path(),
            &format!("pkg{}/mod{i}.py", i % 5),
            b"changed = True\n",
        );
    }
    f.emu.clear_requests();
    let changed = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(changed.uploaded, 3);
    assert_eq!(
        uploads_of(&f.emu.requests()),
        ["mod1.py", "mod22.py", "mod7.py"]
    );
    assert_eq!(
        writes(&f.emu.requests()),
        3 * 2 + 2 + 2,
        "files, manifest, lock records"
    );
    assert_eq!(leases(&f.emu.requests()), 2);

    // Behind our back: one remote file deleted, one overwritten. Both are repaired.
    let victim = f.remote("counts/pkg3/mod3.py");
    assert!(f.dfs.delete(&victim, false).await.unwrap());
    let edited = f.remote("counts/pkg4/mod4.py");
    f.dfs
        .upload_bytes(&edited, &Bytes::from_static(b"tampered"))
        .await
        .unwrap();
    f.emu.clear_requests();
    let repaired = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(uploads_of(&f.emu.requests()), ["mod3.py", "mod4.py"]);
    assert_eq!(repaired.uploaded, 2);
    assert_eq!(remote_tree(&f, "counts"), tree(src.path()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletes_extraneous_files_and_whole_directories_but_not_excluded_paths() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    sample_tree(s, 10);
    write(s, "old/a/1.txt", b"1");
    write(s, "old/a/2.txt", b"2");
    write(s, "old/b/3.txt", b"3");
    write(s, "logs/run.log", b"log");
    let options = f.options();
    f.up(s, "del", &options).await.unwrap();

    std::fs::remove_dir_all(s.join("old")).unwrap();
    std::fs::remove_file(s.join("pkg0/mod0.py")).unwrap();
    std::fs::remove_dir_all(s.join("logs")).unwrap();
    let mut options = f.options();
    options.excludes = Excludes::new(&["logs".into()], &[]).unwrap();

    // Dry run first: the plan, nothing changed.
    let mut dry = options.clone();
    dry.dry_run = true;
    f.emu.clear_requests();
    let plan = f.up(s, "del", &dry).await.unwrap();
    assert_eq!(writes(&f.emu.requests()), 0);
    assert_eq!(plan.deleted, 4);
    assert!(f.remote_dir("del/old/a/1.txt").exists());

    f.emu.clear_requests();
    let done = f.up(s, "del", &options).await.unwrap();
    let deletes: Vec<_> = f
        .emu
        .requests()
        .into_iter()
        .filter(|r| r.method == "DELETE")
        .collect();
    assert_eq!(
        deletes.len(),
        2,
        "one recursive delete for old/, one file: {deletes:?}"
    );
    assert_eq!(done.deleted, 4);
    assert!(!f.remote_dir("del/old").exists(), "whole directory removed");
    assert!(!f.remote_dir("del/pkg0/mod0.py").exists());
    assert!(
        f.remote_dir("del/logs/run.log").exists(),
        "excluded path survives"
    );

    // --delete-excluded removes it, and the emptied directory with it.
    options.rails.delete_excluded = true;
    f.up(s, "del", &options).await.unwrap();
    assert!(!f.remote_dir("del/logs").exists());
    assert_eq!(remote_tree(&f, "del"), tree(s));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_rails_no_delete_and_max_delete() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 10);
    f.up(src.path(), "rails", &f.options()).await.unwrap();
    for i in 0..6 {
        std::fs::remove_file(src.path().join(format!("pkg{}/mod{i}.py", i % 5))).unwrap();
    }
    let mut options = f.options();
    options.rails = Rails {
        delete: false,
        ..Rails::default()
    };
    let kept = f.up(src.path(), "rails", &options).await.unwrap();
    assert_eq!(kept.held, Some((Held::Disabled, 6)));
    assert_eq!(remote_tree(&f, "rails").len(), 10);

    options.rails = Rails {
        max_delete: Some(5),
        ..Rails::default()
    };
    let held = f.up(src.path(), "rails", &options).await.unwrap();
    assert_eq!(held.held, Some((Held::OverLimit { would: 6, max: 5 }, 6)));
    assert_eq!(held.deleted, 0);
    assert_eq!(remote_tree(&f, "rails").len(), 10);

    options.rails.max_delete = Some(6);
    let done = f.up(src.path(), "rails", &options).await.unwrap();
    assert_eq!(done.deleted, 6);
    assert_eq!(remote_tree(&f, "rails"), tree(src.path()));
}

#[test]
fn a_listing_that_fails_part_way_changes_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = Fixture::new(Config {
        page_size: 1,
        latency_ms: 15,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 30);
    rt.block_on(f.up(src.path(), "partial", &f.options()))
        .unwrap();
    std::fs::remove_dir_all(src.path().join("pkg1")).unwrap();
    write(src.path(), "new.txt", b"new");

    // Once the first page has been served, every later request fails (after retries).
    let emu = &f.emu;
    f.emu.clear_requests();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if emu
                    .requests()
                    .iter()
                    .any(|r| r.method == "GET" && r.status == 200)
                {
                    emu.set_faults(1.0, 0.0, 0);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        rt.block_on(f.up(src.path(), "partial", &f.options()))
    });
    let log = f.emu.requests();
    let pages = log
        .iter()
        .filter(|r| r.method == "GET" && r.status == 200)
        .count();
    assert!(
        (1..30).contains(&pages),
        "the listing broke part-way: {pages} pages"
    );
    let err = result.unwrap_err();
    assert!(matches!(err, SyncError::Listing(_)), "{err}");
    assert!(err.to_string().contains("nothing was changed"));
    assert_eq!(writes(&log), 0, "no upload, no delete");
    f.emu.set_faults(0.0, 0.0, 0);
    assert!(f.remote_dir("partial/pkg1").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_drops_still_end_in_an_exact_mirror() {
    let f = Fixture::new(Config {
        fail_rate: 0.2,
        reset_rate: 0.05,
        seed: 11,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    for i in 0..2000 {
        write(
            src.path(),
            &format!("d{:02}/f{i}.txt", i % 40),
            format!("file {i}\n").as_bytes(),
        );
    }
    let summary = f.up(src.path(), "faulty", &f.options()).await.unwrap();
    assert_eq!(
        summary.failed,
        0,
        "{:?}",
        &summary.failures[..summary.failures.len().min(5)]
    );
    assert_eq!(summary.uploaded, 2000);
    assert_eq!(remote_tree(&f, "faulty"), tree(src.path()));
    let faults = faults(&f.emu);
    assert!(faults > 500, "faults were injected: {faults}");
    // And the next run, still under faults, has nothing to do.
    let again = f.up(src.path(), "faulty", &f.options()).await.unwrap();
    assert_eq!((again.uploaded, again.deleted, again.failed), (0, 0, 0));
}

#[test]
fn a_killed_sync_converges_on_the_next_run() {
    let f = Fixture::new(Config {
        latency_ms: 3,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    for i in 0..300 {
        write(
            src.path(),
            &format!("k{}/f{i}.bin", i % 7),
            &vec![i as u8; 3000 + i],
        );
    }
    let cache = f.cache.path().to_string_lossy().into_owned();
    let run = |extra: &[&str]| {
        let mut cmd = fabric_remote();
        cmd.args(["sync"])
            .arg(src.path())
            .arg(f.url("killed"))
            .args(extra)
            .env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_CACHE_DIR", &cache);
        cmd
    };
    for delay in [150, 400] {
        let mut child = run(&["--concurrency", "4"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_ne!(
        remote_tree(&f, "killed"),
        tree(src.path()),
        "the kills interrupted the sync"
    );
    f.emu.set_faults(0.0, 0.0, 0);
    let out = run(&[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(remote_tree(&f, "killed"), tree(src.path()));
    let out = run(&["--json"]).output().unwrap();
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(summary["unchanged"], 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_mirrors_and_repairs_the_local_tree() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    sample_tree(s, 20);
    write(s, "names/café #1+x?.txt", b"special");
    write(s, "empty", b"");
    write(s, "big/blob.bin", &vec![7u8; 9 * 1024 * 1024]);
    f.up(s, "dl", &f.options()).await.unwrap();

    let dst = tempfile::tempdir().unwrap();
    let d = dst.path().join("out");
    let first = f.down("dl", &d, &f.options()).await.unwrap();
    assert_eq!(first.failed, 0, "{:?}", first.failures);
    assert_eq!(first.downloaded, 23);
    assert_eq!(tree(&d), tree(s));
    assert!(!d.join(MANIFEST).exists(), "the manifest is not content");

    // No-op: nothing downloaded, nothing hashed, one listing.
    f.emu.clear_requests();
    let noop = f.down("dl", &d, &f.options()).await.unwrap();
    assert_eq!((noop.downloaded, noop.hashed_files), (0, 0));
    assert_eq!(f.emu.requests().len(), 1);

    // Local damage is repaired; local extras go, excluded local files stay.
    write(&d, "pkg1/mod1.py", b"local edit");
    std::fs::remove_file(d.join("pkg2/mod2.py")).unwrap();
    write(&d, "stray/file.txt", b"x");
    write(&d, "keep.log", b"x");
    let mut options = f.options();
    options.excludes = Excludes::new(&["*.log".into()], &[]).unwrap();
    f.emu.clear_requests();
    let repair = f.down("dl", &d, &options).await.unwrap();
    assert_eq!(repair.downloaded, 2);
    assert_eq!(repair.deleted, 1);
    let mut expected = tree(s);
    expected.insert("keep.log".into(), b"x".to_vec());
    assert_eq!(tree(&d), expected);

    // A second destination: a full download, then a no-op.
    let other = dst.path().join("other");
    f.down("dl", &other, &f.options()).await.unwrap();
    let again = f.down("dl", &other, &f.options()).await.unwrap();
    assert_eq!(again.downloaded, 0);
}

/// The emulator refuses `..` in names, so it cannot produce a hostile listing. This stub
/// (a hand-written HTTP responder, used only for that) serves one listing page naming
/// `../escape.txt` next to a normal file, and the normal file's bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_refuses_a_hostile_remote_name() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let body = if req.starts_with("GET /ws?") {
                    r#"{"paths":[{"name":"lake.Lakehouse/Files/p/../escape.txt","contentLength":"4","etag":"0x1"},{"name":"lake.Lakehouse/Files/p/ok.txt","contentLength":"2","etag":"0x2"}]}"#.to_string()
                } else {
                    "ok".to_string()
                };
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\netag: \"0x2\"\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    let http = HttpClient::new(
        Credentials::from_token(Secret::new("t")),
        RetryPolicy::default(),
    )
    .unwrap();
    let dfs = DfsClient::new(http);
    let dst = tempfile::tempdir().unwrap();
    let inner = dst.path().join("inner");
    let root = RemoteLocation::parse(&format!(
        "http://127.0.0.1:{port}/ws/lake.Lakehouse/Files/p"
    ))
    .unwrap();
    let summary = sync::sync(
        &Location::Remote(root),
        &Location::Local(inner.clone()),
        &dfs,
        &SyncOptions::default(),
        &Silent,
    )
    .await
    .unwrap();
    assert_eq!(summary.failed, 1);
    assert!(summary.failures[0].0.contains("escape.txt"));
    assert_eq!(summary.downloaded, 1);
    assert_eq!(std::fs::read(inner.join("ok.txt")).unwrap(), b"ok");
    assert!(!dst.path().join("escape.txt").exists());
}

#[test]
fn cli_summary_json_dry_run_and_exit_codes() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 5);
    let cache = f.cache.path().to_string_lossy().into_owned();
    let run = |args: &[&str]| {
        fabric_remote()
            .arg("sync")
            .args(args)
            .env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_CACHE_DIR", &cache)
            .output()
            .unwrap()
    };
    let src_arg = src.path().to_string_lossy().into_owned();
    let url = f.url("cli");

    let out = run(&[&src_arg, &url, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("upload ")).count(),
        5,
        "{stdout}"
    );
    assert!(stdout.contains("Dry run: would change 5 files"), "{stdout}");
    assert!(remote_tree(&f, "cli").is_empty());

    let out = run(&[&src_arg, &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.starts_with("Sync complete (5 files changed, 0 unchanged, "),
        "{stdout}"
    );

    let out = run(&[&src_arg, &url, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "uploaded",
        "downloaded",
        "deleted",
        "unchanged",
        "failed",
        "bytes",
        "elapsed_ms",
        "dry_run",
    ] {
        assert!(v.get(key).is_some(), "{key} in {v}");
    }
    assert_eq!(v["unchanged"], 5);
    assert_eq!(v["dry_run"], false);

    // Usage errors: exit 2, one sentence.
    let out = run(&[&src_arg, &src_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of them must be a remote URL"));
    let out = run(&["/nonexistent/dir", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir"));

    // A remote that refuses everything (403): a configuration error (access), exit 2,
    // nothing changed.
    f.emu.deny(&format!("/{}", f.emu.workspace_name()));
    let out = run(&[&src_arg, &url]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downloads_under_faults_and_drops_end_in_an_exact_mirror() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    for i in 0..400 {
        write(
            src.path(),
            &format!("d{:02}/f{i}.bin", i % 9),
            &vec![(i % 251) as u8; 100 + i * 37],
        );
    }
    f.up(src.path(), "dlfaults", &f.options()).await.unwrap();
    f.emu.set_faults(0.2, 0.05, 0);
    let dst = tempfile::tempdir().unwrap();
    let summary = f.down("dlfaults", dst.path(), &f.options()).await.unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(summary.downloaded, 400);
    assert_eq!(
        tree(dst.path()),
        tree(src.path()),
        "no partial files, exact bytes"
    );
    let faults = faults(&f.emu);
    assert!(faults > 50, "faults were injected: {faults}");
    let again = f.down("dlfaults", dst.path(), &f.options()).await.unwrap();
    assert_eq!((again.downloaded, again.deleted, again.failed), (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_first_sync_keeps_the_files_it_finished() {
    let f = Fixture::new(Config {
        latency_ms: 10,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    for i in 0..300 {
        write(
            src.path(),
            &format!("c{}/f{i}.txt", i % 4),
            format!("{i}").as_bytes(),
        );
    }
    let mut options = f.options();
    options.concurrency = 4;
    options.checkpoint_interval = Duration::from_millis(100);
    // Cut the run (dropping the future is what a kill does to the in-flight work) as soon
    // as the emulator has committed the first checkpoint of the manifest.
    let checkpointed = async {
        loop {
            let done = f.emu.requests().iter().any(|r| {
                r.method == "PATCH"
                    && r.path.ends_with(MANIFEST)
                    && r.query.contains("flush=true")
                    && r.status == 202
            });
            if done {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    };
    tokio::select! {
        r = f.up(src.path(), "ckpt", &options) => panic!("the run should have been cut: {r:?}"),
        () = checkpointed => {}
    }
    // Requests of the cut run still on the wire are logged before the count starts.
    tokio::time::sleep(Duration::from_millis(100)).await;
    f.emu.clear_requests();
    let rest = f.up(src.path(), "ckpt", &f.options()).await.unwrap();
    assert!(rest.unchanged > 0, "checkpointed uploads are not repeated");
    assert!(rest.uploaded < 300, "{rest:?}");
    assert_eq!(rest.uploaded + rest.unchanged, 300);
    assert_eq!(rest.uploaded as usize, uploads_of(&f.emu.requests()).len());
    assert_eq!(remote_tree(&f, "ckpt"), tree(src.path()));
}

/// Runs `fabric-remote sync ARGS…` against the fixture's emulator with its cache dir.
fn cli_sync(f: &Fixture, args: &[&str]) -> std::process::Output {
    fabric_remote()
        .arg("sync")
        .args(args)
        .env("FABRIC_REMOTE_TOKEN", "t")
        .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
        .output()
        .unwrap()
}

/// The lakehouse URL with `item` in place of `lake.Lakehouse`.
fn item_url(f: &Fixture, item: &str, rest: &str) -> String {
    format!(
        "{}/{}/{item}/{rest}",
        f.emu.url(),
        f.emu.workspace_name().replace(' ', "%20")
    )
}

/// Issue 8 item 1: a download from a remote root that does not exist used to wipe the local
/// folder and exit 0. Each wrong URL (missing folder, wrong lakehouse, `files` for `Files`,
/// wrong workspace) is now exit 2 with one sentence naming what was not found, and every
/// local file survives.
#[test]
fn issue_8_download_from_a_missing_remote_root_deletes_nothing() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 4);
    let up = cli_sync(&f, &[&src.path().to_string_lossy(), &f.url("proj")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );

    let local = tempfile::tempdir().unwrap();
    sample_tree(local.path(), 2);
    write(local.path(), "notes.txt", b"mine");
    let before = tree(local.path());
    let ws = f.emu.workspace_name().replace(' ', "%20");
    let cases = [
        (f.url("no-such-dir"), "`Files/no-such-dir` does not exist"),
        (
            item_url(&f, "nolake.Lakehouse", "Files/proj"),
            "`nolake.Lakehouse` does not exist",
        ),
        (
            item_url(&f, "lake.Lakehouse", "files/proj"),
            "`files` does not exist",
        ),
        (
            format!("{}/NoWorkspace/lake.Lakehouse/Files/proj", f.emu.url()),
            "workspace `NoWorkspace` does not exist",
        ),
    ];
    for (url, needle) in cases {
        let out = cli_sync(&f, &[&url, &local.path().to_string_lossy()]);
        let stderr = crate::util::assert_usage_error(&out);
        assert!(stderr.contains(needle), "{url}: {stderr}");
        assert!(
            !stderr.contains(&ws) || needle.contains("workspace"),
            "{stderr}"
        );
        assert_eq!(
            tree(local.path()),
            before,
            "{url}: local files were touched"
        );
        assert!(crate::util::text(&out.stdout).is_empty(), "{url}");
    }
    // The `files` case says how to spell it.
    let out = cli_sync(
        &f,
        &[
            &item_url(&f, "lake.Lakehouse", "files/proj"),
            &local.path().to_string_lossy(),
        ],
    );
    assert!(
        crate::util::text(&out.stderr).contains("hint: OneLake folder names are case-sensitive"),
        "{}",
        crate::util::text(&out.stderr)
    );
}

/// Issue 8 item 1, the mirror image: an upload into a lakehouse (or workspace) that does
/// not exist used to print one 404 line per file. It is one sentence, and nothing is sent
/// after the listing showed the root cannot exist.
#[test]
fn issue_8_upload_into_a_missing_lakehouse_is_one_sentence() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 30);
    for (url, needle) in [
        (
            item_url(&f, "nolake.Lakehouse", "Files/proj"),
            "`nolake.Lakehouse` does not exist",
        ),
        (
            item_url(&f, "lake.Lakehouse", "files/proj"),
            "`files` does not exist",
        ),
        (
            format!("{}/NoWorkspace/lake.Lakehouse/Files/proj", f.emu.url()),
            "workspace `NoWorkspace` does not exist",
        ),
    ] {
        f.emu.clear_requests();
        let out = cli_sync(&f, &[&src.path().to_string_lossy(), &url]);
        let stderr = crate::util::assert_usage_error(&out);
        assert!(stderr.contains(needle), "{url}: {stderr}");
        assert_eq!(writes(&f.emu.requests()), 0, "{url}: nothing written");
    }
}

/// Issue 8 item 2: a download used to remove whole local directories the remote does not
/// have, `test.env` and excluded files inside them included, and to report `"deleted":0`.
/// Excluded paths and `test.env` now survive (unless `--delete-excluded`, which still never
/// touches `test.env`), and every deleted file is counted.
#[test]
fn issue_8_download_keeps_test_env_and_excluded_files_in_extra_directories() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 3);
    let up = cli_sync(&f, &[&src.path().to_string_lossy(), &f.url("work")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );

    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    for (rel, body) in tree(src.path()) {
        write(w, &rel, &body);
    }
    write(w, "tools/node_modules/pkg/index.js", b"kept: excluded");
    write(w, "tools/build.sh", b"goes: not in the remote");
    write(w, "conf/test.env", b"AZURE_CLIENT_SECRET=kept");
    write(w, "old/a.txt", b"goes");
    write(w, "old/deeper/b.txt", b"goes");
    let args = |extra: &[&str]| -> Vec<String> {
        let mut v = vec![
            f.url("work"),
            w.to_string_lossy().into_owned(),
            "--exclude".into(),
            "node_modules".into(),
            "--json".into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let argv = args(&[]);
    let out = cli_sync(&f, &argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::util::text(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        summary["deleted"], 3,
        "each deleted file is counted: {summary}"
    );

    let mut expected = tree(src.path());
    expected.insert(
        "tools/node_modules/pkg/index.js".into(),
        b"kept: excluded".to_vec(),
    );
    expected.insert("conf/test.env".into(), b"AZURE_CLIENT_SECRET=kept".to_vec());
    assert_eq!(tree(w), expected);
    assert!(!w.join("old").exists(), "the emptied directory is removed");

    // --delete-excluded removes the excluded files too, but never test.env.
    let argv = args(&["--delete-excluded"]);
    let out = cli_sync(&f, &argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::util::text(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["deleted"], 1, "{summary}");
    expected.remove("tools/node_modules/pkg/index.js");
    assert_eq!(tree(w), expected);
}

/// Issue 8 item 3: a local folder that is the remote's own storage (here the emulator's data
/// directory; in a Spark job `/lakehouse/default/Files`) used to have every file truncated to
/// 0 bytes by an upload. Both directions now refuse before anything is written.
#[test]
fn issue_8_syncing_the_remotes_own_storage_destroys_nothing() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 20);
    let up = cli_sync(&f, &[&src.path().to_string_lossy(), &f.url("own")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let storage = f.remote_dir("own");
    // Someone edits a file right in the storage folder: now there is something to upload.
    write(&storage, "pkg0/mod0.py", b"edited in place\n");
    let before = remote_tree(&f, "own");
    assert_eq!(before.len(), 20);

    f.emu.clear_requests();
    let out = cli_sync(&f, &[&storage.to_string_lossy(), &f.url("own")]);
    let stderr = crate::util::assert_usage_error_after_warnings(&out);
    assert!(stderr.contains("is the storage of"), "{stderr}");
    assert_eq!(remote_tree(&f, "own"), before, "no file was truncated");
    let content_writes = f
        .emu
        .requests()
        .iter()
        .filter(|r| matches!(r.method.as_str(), "PUT" | "PATCH" | "DELETE"))
        .filter(|r| !r.path.ends_with(LOCK))
        .count();
    assert_eq!(content_writes, 0, "only the lock record was written");

    // The other way round: downloading into the storage folder refuses too.
    let out = cli_sync(&f, &[&f.url("own"), &storage.to_string_lossy()]);
    let stderr = crate::util::assert_usage_error(&out);
    assert!(stderr.contains("is the storage of"), "{stderr}");
    assert_eq!(remote_tree(&f, "own"), before);
}

/// Content files committed in `log` (an append with `flush=true` that succeeded), by path.
fn committed(log: &[RecordedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.query.contains("flush=true")
                && r.status == 202
                && !r.path.ends_with(MANIFEST)
                && !r.path.ends_with(LOCK)
        })
        .map(|r| r.path.clone())
        .collect()
}

/// Content files whose upload began (their create) in `log`, by path.
fn created(log: &[RecordedRequest]) -> Vec<String> {
    log.iter()
        .filter(|r| {
            r.method == "PUT"
                && r.query.contains("resource=file")
                && !r.path.ends_with(MANIFEST)
                && !r.path.ends_with(LOCK)
        })
        .map(|r| r.path.clone())
        .collect()
}

/// Issue 8 item 12: a killed upload used to send again everything it had finished since
/// the last 30-second manifest checkpoint. `kill -9` at several points (the first file, a
/// third, two thirds — none near a checkpoint): each re-run sends again at most the files
/// that were in flight when the previous one died (at most `--concurrency`), and the last
/// run is a no-op.
#[test]
fn issue_8_a_killed_upload_resends_at_most_the_files_in_flight() {
    let f = Fixture::new(Config {
        latency_ms: 4,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    let total = 600;
    for i in 0..total {
        write(
            src.path(),
            &format!("r{}/f{i}.txt", i % 9),
            format!("resume {i}\n").as_bytes(),
        );
    }
    let concurrency = 4;
    let spawn = || {
        fabric_remote()
            .args(["sync", "--concurrency", "4", "--lock-wait", "5"])
            .arg(src.path())
            .arg(f.url("resume"))
            .env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut landed: std::collections::HashSet<String> = Default::default();
    let mut resent = Vec::new();
    for kill_after in [1, total / 3, 2 * total / 3] {
        f.emu.clear_requests();
        let mut child = spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while landed.len() + committed(&f.emu.requests()).len() < kill_after {
            assert!(
                std::time::Instant::now() < deadline,
                "the sync made no progress"
            );
            assert!(
                child.try_wait().unwrap().is_none(),
                "finished before the kill"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // Give requests already on the wire time to be logged.
        std::thread::sleep(Duration::from_millis(50));
        let log = f.emu.requests();
        resent.push(created(&log).iter().filter(|p| landed.contains(*p)).count());
        landed.extend(committed(&log));
    }
    assert!(landed.len() < total, "the kills interrupted the upload");

    f.emu.clear_requests();
    let out = spawn().wait_with_output().unwrap();
    assert!(out.status.success());
    let log = f.emu.requests();
    resent.push(created(&log).iter().filter(|p| landed.contains(*p)).count());
    eprintln!("files sent again after each kill: {resent:?} (concurrency {concurrency})");
    assert!(
        resent.iter().all(|&n| n <= concurrency),
        "re-sent {resent:?}, more than the {concurrency} that can be in flight"
    );
    assert_eq!(
        created(&log).len() + landed.len() - resent.last().unwrap(),
        total,
        "every file sent exactly once more than needed only when in flight"
    );
    assert_eq!(remote_tree(&f, "resume"), tree(src.path()));
    f.emu.clear_requests();
    let again = cli_sync(
        &f,
        &[&src.path().to_string_lossy(), &f.url("resume"), "--json"],
    );
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (summary["uploaded"].as_u64(), summary["unchanged"].as_u64()),
        (Some(0), Some(total as u64))
    );
    assert_eq!(f.emu.requests().len(), 1, "a no-op: one listing");
}

/// Issue 8 item 13: two syncs to one remote at once used to fight (failed appends, the next
/// run re-uploading hundreds of identical files). Started together, one takes the root's
/// lock and the other waits for it, then finds nothing left to do: both exit 0, every file
/// is sent once, and a third run is a no-op. With `--lock-wait 0` the second one stops at
/// once with one sentence saying who holds the lock and since when.
#[test]
fn issue_8_two_syncs_at_once_take_turns() {
    let f = Fixture::new(Config {
        latency_ms: 3,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    let n = 300;
    sample_tree(src.path(), n);
    let spawn = |extra: &[&str]| {
        fabric_remote()
            .arg("sync")
            .arg(src.path())
            .arg(f.url("turns"))
            .args(extra)
            .env("FABRIC_REMOTE_TOKEN", "t")
            .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let lock_taken = |emu: &Emulator| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !emu
            .requests()
            .iter()
            .any(|r| r.method == "POST" && r.status == 201)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no sync took the lock"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // Started together: who gets the lock first is up to the scheduler.
    let (a, b) = (spawn(&["--json"]), spawn(&["--json"]));
    let first = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    // And the second one started while the first surely holds the lock (slow requests,
    // every file changed): it must wait.
    for i in 0..n {
        write(
            src.path(),
            &format!("pkg{}/mod{i}.py", i % 5),
            b"second round\n",
        );
    }
    f.emu.set_faults(0.0, 0.0, 30);
    f.emu.clear_requests();
    let a = spawn(&["--json"]);
    lock_taken(&f.emu);
    let b = spawn(&["--json"]);
    let second = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let mut uploaded = 0;
    for out in first.iter().chain(&second) {
        let stderr = crate::util::text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(summary["failed"], 0, "{summary}");
        uploaded += summary["uploaded"].as_u64().unwrap();
    }
    assert_eq!(uploaded, 2 * n as u64, "each file sent once per round");
    let waited = crate::util::text(&second[1].stderr);
    assert!(waited.contains("waiting for another sync to"), "{waited}");
    assert!(
        waited.contains(", pid "),
        "the waiter says who holds the lock: {waited}"
    );
    assert_eq!(remote_tree(&f, "turns"), tree(src.path()));

    // A third run: nothing to do, one listing.
    f.emu.set_faults(0.0, 0.0, 0);
    f.emu.clear_requests();
    let third = cli_sync(
        &f,
        &[&src.path().to_string_lossy(), &f.url("turns"), "--json"],
    );
    let summary: serde_json::Value = serde_json::from_slice(&third.stdout).unwrap();
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(f.emu.requests().len(), 1);

    // --lock-wait 0 while another sync holds the lock: one sentence, exit 1, nothing sent.
    for i in 0..n {
        write(src.path(), &format!("pkg{}/mod{i}.py", i % 5), b"changed\n");
    }
    f.emu.set_faults(0.0, 0.0, 30);
    f.emu.clear_requests();
    let holder = spawn(&[]);
    lock_taken(&f.emu);
    let other = tempfile::tempdir().unwrap();
    let refused = fabric_remote()
        .arg("sync")
        .arg(src.path())
        .arg(f.url("turns"))
        .args(["--lock-wait", "0"])
        .env("FABRIC_REMOTE_TOKEN", "t")
        .env("FABRIC_REMOTE_CACHE_DIR", other.path())
        .output()
        .unwrap();
    let holder = holder.wait_with_output().unwrap();
    assert_eq!(holder.status.code(), Some(0));
    let stderr = crate::util::text(&refused.stderr);
    assert_eq!(refused.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with("error: another sync to ") && stderr.contains(" is running (since "),
        "{stderr}"
    );
    assert!(stderr.contains(", pid "), "{stderr}");
    assert!(stderr.contains("hint: wait for it to finish"), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1
    );
}

/// A command that runs as an unprivileged user when the tests run as root (root reads any
/// directory, so an unreadable one cannot be made otherwise). `None` if that is impossible.
fn unprivileged(dirs: &[&Path]) -> Option<std::process::Command> {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .to_string();
    let bin = std::env::var_os("FABRIC_REMOTE_TEST_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_fabric-remote").into());
    if uid != "0" {
        return Some(std::process::Command::new(bin));
    }
    use std::os::unix::fs::PermissionsExt;
    for d in dirs {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o777)).ok()?;
    }
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin);
    Some(cmd)
}

/// Issue 8 item 4: an unreadable SRC root used to exit 0 after a warning (SPEC: 2), and a
/// broken link with `--follow-links` exited 0 while deletes were silently held back.
#[test]
fn issue_8_an_unreadable_src_is_exit_2_and_a_broken_link_is_exit_1() {
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new(Config::default());
    let base = tempfile::tempdir().unwrap();
    let src = base.path().join("src");
    sample_tree(&src, 3);
    let cache = tempfile::tempdir().unwrap();
    let Some(mut cmd) = unprivileged(&[base.path(), cache.path()]) else {
        panic!("cannot run as an unprivileged user (setpriv missing?)");
    };
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o000)).unwrap();
    let out = cmd
        .arg("sync")
        .arg(&src)
        .arg(f.url("locked"))
        .env("FABRIC_REMOTE_TOKEN", "t")
        .env("FABRIC_REMOTE_CACHE_DIR", cache.path())
        .output()
        .unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stderr = crate::util::assert_usage_error(&out);
    assert!(
        stderr.contains("cannot be read (permission denied)"),
        "{stderr}"
    );
    assert!(remote_tree(&f, "locked").is_empty());

    // A broken link followed: named, deletes held back and said so, exit 1.
    let up = cli_sync(&f, &[&src.to_string_lossy(), &f.url("links")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    std::fs::remove_file(src.join("pkg0/mod0.py")).unwrap();
    std::os::unix::fs::symlink(src.join("nowhere"), src.join("dangling")).unwrap();
    let out = cli_sync(
        &f,
        &[&src.to_string_lossy(), &f.url("links"), "--follow-links"],
    );
    let stderr = crate::util::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed: dangling: "), "{stderr}");
    assert!(stderr.contains("were not deleted"), "{stderr}");
    assert!(
        f.remote_dir("links/pkg0/mod0.py").exists(),
        "the delete was held"
    );
}

/// Issue 8 item 6: a legal 255-byte name uploaded but could not be downloaded (the
/// temporary name grew past 255). Temporary names are now short whatever the target's.
#[test]
fn issue_8_a_255_byte_name_round_trips() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    let long = format!("{}.txt", "n".repeat(251));
    assert_eq!(long.len(), 255);
    write(src.path(), &format!("dir/{long}"), b"long name");
    let up = cli_sync(&f, &[&src.path().to_string_lossy(), &f.url("long")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let dst = tempfile::tempdir().unwrap();
    let down = cli_sync(&f, &[&f.url("long"), &dst.path().to_string_lossy()]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        crate::util::text(&down.stderr)
    );
    assert_eq!(tree(dst.path()), tree(src.path()));
}

/// Issue 8 item 7: `back\slash` was uploaded, then re-uploaded on every run with a warning,
/// and refused on download. Such names are skipped with a warning in both directions from
/// the first run, never deleted on either side, and a re-run is a no-op.
#[test]
fn issue_8_a_backslash_name_is_skipped_the_same_way_every_run() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 2);
    write(src.path(), "back\\slash", b"windows would split me");
    let args = [
        src.path().to_string_lossy().into_owned(),
        f.url("bs"),
        "--json".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = cli_sync(&f, &args);
    let stderr = crate::util::text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: skipped `back\\slash`"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["uploaded"], 2);
    assert!(!f.remote_dir("bs/back\\slash").exists());
    f.emu.clear_requests();
    let again = cli_sync(&f, &args);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (summary["uploaded"].as_u64(), summary["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(f.emu.requests().len(), 1, "a no-op");

    // A remote name with a backslash: skipped on download, and the local one is kept.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(f.dfs.upload_bytes(
        &f.remote("bs").join("remote\\name").unwrap(),
        &Bytes::from_static(b"r"),
    ))
    .unwrap();
    let dst = tempfile::tempdir().unwrap();
    write(dst.path(), "back\\slash", b"mine");
    let args = [f.url("bs"), dst.path().to_string_lossy().into_owned()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..2 {
        let down = cli_sync(&f, &args);
        let stderr = crate::util::text(&down.stderr);
        assert_eq!(down.status.code(), Some(0), "{stderr}");
        assert!(stderr.contains("skipped remote `remote\\name`"), "{stderr}");
    }
    assert_eq!(
        std::fs::read(dst.path().join("back\\slash")).unwrap(),
        b"mine"
    );
    assert!(!dst.path().join("remote\\name").exists());
}

/// Issue 8 item 8: a local `.fabric-remote-manifest` was uploaded over the manifest (and
/// re-uploaded every run). Reserved names at the root are skipped with a warning; the
/// remote manifest stays ours and a re-run is a no-op.
#[test]
fn issue_8_reserved_names_are_never_uploaded() {
    let f = Fixture::new(Config::default());
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 3);
    write(src.path(), MANIFEST, b"not a manifest");
    write(src.path(), LOCK, b"not a lock");
    write(
        src.path(),
        &format!("sub/{MANIFEST}"),
        b"below the root it is content",
    );
    let args = [
        src.path().to_string_lossy().into_owned(),
        f.url("reserved"),
        "--json".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = cli_sync(&f, &args);
    let stderr = crate::util::text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: skipped `{MANIFEST}`: the name is reserved"
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: skipped `{LOCK}`")),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["uploaded"], 4);
    let manifest = std::fs::read(f.remote_dir("reserved").join(MANIFEST)).unwrap();
    assert!(manifest.starts_with(b"fabric-remote-manifest v"));
    assert!(f.remote_dir(&format!("reserved/sub/{MANIFEST}")).exists());
    f.emu.clear_requests();
    let again = cli_sync(&f, &args);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(f.emu.requests().len(), 1, "a no-op");
}

/// Issue 8 item 1 (the flood's other cause): an error that makes the whole root unusable
/// mid-run — here the token is revoked after the first files landed — stops the remaining
/// transfers with one sentence instead of one line per file. The files that did land are
/// journaled, so the next run (with a good token) sends only the rest.
#[test]
fn issue_8_a_root_wide_error_mid_run_is_one_sentence_not_one_line_per_file() {
    let f = Fixture::new(Config {
        latency_ms: 5,
        ..Config::default()
    });
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 200);
    let mut child = fabric_remote()
        .args(["sync", "--concurrency", "4"])
        .arg(src.path())
        .arg(f.url("revoked"))
        .env("FABRIC_REMOTE_TOKEN", "tok-revoked-midway")
        .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed(&f.emu.requests()).len() < 10 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    f.emu.revoke_token("tok-revoked-midway");
    let out = {
        let _ = child.wait();
        let mut stderr = String::new();
        use std::io::Read;
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (child.try_wait().unwrap().and_then(|s| s.code()), stderr)
    };
    let (code, stderr) = out;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    assert!(!stderr.contains("failed: "), "no line per file: {stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    let landed = committed(&f.emu.requests()).len();
    assert!(landed < 200, "the run stopped early");

    f.emu.clear_requests();
    let rest = cli_sync(
        &f,
        &[&src.path().to_string_lossy(), &f.url("revoked"), "--json"],
    );
    let summary: serde_json::Value = serde_json::from_slice(&rest.stdout).unwrap();
    assert_eq!(summary["uploaded"].as_u64().unwrap() as usize, 200 - landed);
    assert_eq!(remote_tree(&f, "revoked"), tree(src.path()));
}
