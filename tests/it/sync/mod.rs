//! `sync` as a conformance suite: each test body below runs on every [`Backend`] listed for
//! it at the bottom — the emulator over DFS, the emulator with `--api auto` (Blob transfers,
//! DFS deletes), and Azurite over Blob through a counting proxy — and asserts what a user
//! sees: the remote bytes equal the local tree, exact request counts for the everyday cases
//! (first sync, no-op, touch, fresh clone, a few changes), deletes and their rails (never a
//! neighbour with a shared prefix, never a container root), faults, killed runs, two syncs
//! at once, and the download direction.

mod fixture;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use fabric_remote::auth::Credentials;
use fabric_remote::blob::{BlobAuth, BlobClient};
use fabric_remote::dfs::DfsClient;
use fabric_remote::http::{HttpClient, RetryPolicy};
use fabric_remote::location::{Location, RemoteLocation};
use fabric_remote::secret::Secret;
use fabric_remote::sync::exclude::Excludes;
use fabric_remote::sync::plan::{Held, Rails};
use fabric_remote::sync::{self, Silent, SyncError, SyncOptions, Transport};

use crate::util::fabric_remote;
use fixture::{
    Backend, Fixture, Knobs, LOCK, MANIFEST, committed, created, faults, leases, uploads_of, writes,
};

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

fn sample_tree(root: &Path, n: usize) {
    for i in 0..n {
        write(
            root,
            &format!("pkg{}/mod{i}.py", i % 5),
            format!("x = {i}\n").as_bytes(),
        );
    }
}

fn json(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            crate::util::text(&out.stdout),
            crate::util::text(&out.stderr)
        )
    })
}

async fn upload_mirrors_a_tree_byte_for_byte(b: Backend) {
    let f = Fixture::new(b);
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
    let big: Vec<u8> = (0..24 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
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
    let remote = f.remote_tree("mirror");
    assert_eq!(
        remote.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    assert!(remote == expected, "remote bytes equal local bytes");
    assert!(f.stored("mirror").contains_key(MANIFEST));
}

async fn request_counts_for_the_everyday_cases(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    let n = 40;
    sample_tree(src.path(), n);
    let options = f.options();
    // DFS: create + append with flush per small file, the same for the manifest; Blob: one
    // Put Blob each.
    let (per_file, manifest) = if b.puts_blobs() { (1, 1) } else { (2, 2) };

    // First sync: the files, the manifest, the lock file's creation and its start and end
    // records (3), one listing, and the lease taken and released.
    f.clear_requests();
    let first = f.up(src.path(), "counts", &options).await.unwrap();
    let log = f.requests();
    assert_eq!(first.uploaded, n as u64);
    assert_eq!(
        writes(&log),
        per_file * n + manifest + 3,
        "files + manifest + lock: {log:#?}"
    );
    assert_eq!(leases(&log), 2, "acquire, release");
    let gets = log.iter().filter(|r| r.method == "GET").count();
    assert_eq!(gets, 1, "one listing, no manifest yet: {log:#?}");

    // No-op: one listing request, nothing written, no file content read.
    f.clear_requests();
    let noop = f.up(src.path(), "counts", &options).await.unwrap();
    let log = f.requests();
    assert_eq!(log.len(), 1, "only the listing: {log:#?}");
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
    f.clear_requests();
    let touched = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(touched.hashed_files, n as u64);
    assert_eq!(touched.uploaded, 0);
    assert_eq!(writes(&f.requests()), 0);
    assert_eq!(f.requests().len(), 1, "a no-op");

    // A fresh copy of the same tree elsewhere (new hash cache key): nothing uploaded.
    let copy = tempfile::tempdir().unwrap();
    for (rel, body) in tree(src.path()) {
        write(copy.path(), &rel, &body);
    }
    f.clear_requests();
    let cloned = f.up(copy.path(), "counts", &options).await.unwrap();
    assert_eq!(cloned.uploaded, 0);
    assert_eq!(writes(&f.requests()), 0);

    // Three files changed: exactly three uploads (+ the manifest and the lock records).
    for i in [1, 7, 22] {
        write(
            src.path(),
            &format!("pkg{}/mod{i}.py", i % 5),
            b"changed = True\n",
        );
    }
    f.clear_requests();
    let changed = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(changed.uploaded, 3);
    assert_eq!(
        uploads_of(&f.requests()),
        ["mod1.py", "mod22.py", "mod7.py"]
    );
    assert_eq!(
        writes(&f.requests()),
        3 * per_file + manifest + 2,
        "files, manifest, lock records"
    );
    assert_eq!(leases(&f.requests()), 2);

    // Behind our back: one remote file deleted, one overwritten. Both are repaired.
    f.tamper_delete("counts/pkg3/mod3.py").await;
    f.tamper_write("counts/pkg4/mod4.py", b"tampered").await;
    f.clear_requests();
    let repaired = f.up(src.path(), "counts", &options).await.unwrap();
    assert_eq!(uploads_of(&f.requests()), ["mod3.py", "mod4.py"]);
    assert_eq!(repaired.uploaded, 2);
    assert_eq!(f.remote_tree("counts"), tree(src.path()));
}

/// Where the listing shows content MD5s (Blob), a file rewritten behind our back with the
/// same bytes (a new ETag) is recognised and not sent again; a DFS listing shows no MD5, so
/// there it is. Different bytes of the same size are sent either way.
async fn a_rewrite_with_the_same_bytes_is_not_uploaded_again(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 5);
    write(src.path(), "same.txt", b"identical");
    write(src.path(), "other.txt", b"original!");
    f.up(src.path(), "md5", &f.options()).await.unwrap();
    f.tamper_write("md5/same.txt", b"identical").await;
    f.tamper_write("md5/other.txt", b"replaced!").await;
    f.clear_requests();
    let again = f.up(src.path(), "md5", &f.options()).await.unwrap();
    let sent = uploads_of(&f.requests());
    if b.lists_blobs() {
        assert_eq!(sent, ["other.txt"], "same bytes, new ETag: not sent");
    } else {
        assert_eq!(sent, ["other.txt", "same.txt"]);
    }
    assert_eq!(again.uploaded as usize, sent.len());
    assert_eq!(f.remote_tree("md5"), tree(src.path()));
    // And the manifest now vouches for the new ETag: a no-op.
    f.clear_requests();
    let noop = f.up(src.path(), "md5", &f.options()).await.unwrap();
    assert_eq!(noop.uploaded, 0);
    assert_eq!(f.requests().len(), 1);
}

async fn deletes_extraneous_files_and_whole_directories_but_not_excluded_paths(b: Backend) {
    let f = Fixture::new(b);
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
    f.clear_requests();
    let plan = f.up(s, "del", &dry).await.unwrap();
    assert_eq!(writes(&f.requests()), 0);
    assert_eq!(plan.deleted, 4);
    assert!(f.exists("del/old/a/1.txt"));

    f.clear_requests();
    let done = f.up(s, "del", &options).await.unwrap();
    let deletes: Vec<_> = f.requests().into_iter().filter(|r| r.is_delete()).collect();
    match b {
        // One recursive delete for old/, one for the file.
        Backend::Dfs | Backend::Auto => {
            assert_eq!(deletes.len(), 2, "{deletes:#?}");
            assert!(
                deletes
                    .iter()
                    .any(|r| r.path.ends_with("/del/old") && r.has("recursive=true")),
                "{deletes:#?}"
            );
        }
        // Four blobs in one Blob Batch.
        Backend::Azurite => assert_eq!(deletes.len(), 1, "{deletes:#?}"),
    }
    assert_eq!(done.deleted, 4);
    assert_eq!(done.failed, 0, "{:?}", done.failures);
    assert!(!f.exists("del/old"), "whole directory removed");
    assert!(!f.exists("del/pkg0/mod0.py"));
    assert!(f.exists("del/logs/run.log"), "excluded path survives");

    // --delete-excluded removes it, and the emptied directory with it.
    options.rails.delete_excluded = true;
    f.up(s, "del", &options).await.unwrap();
    assert!(!f.exists("del/logs"));
    assert_eq!(f.remote_tree("del"), tree(s));
}

/// Every delete path, tried against names that share a prefix with what goes: removing
/// `dir/a/` (a whole directory) and the file `dir/a-b` leaves `dir/ab/…`, `dir/a.txt`,
/// `dira/…` and the folders beside the sync root (`nb2`, `nb-old`) alone; deleting
/// everything below the root leaves the root's neighbours alone; a container root (or a
/// workspace or item) is never a sync root.
async fn deletes_never_reach_a_neighbour_with_a_shared_prefix(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    for rel in [
        "dir/a/x",
        "dir/a/deeper/z",
        "dir/ab/y",
        "dir/a-b",
        "dir/a.txt",
        "dira/w",
        "keep",
    ] {
        write(s, rel, rel.as_bytes());
    }
    f.up(s, "nb", &f.options()).await.unwrap();
    let beside = tempfile::tempdir().unwrap();
    write(beside.path(), "keep", b"not ours");
    write(beside.path(), "a/x", b"not ours");
    for sibling in ["nb2", "nb-old", "n"] {
        f.up(beside.path(), sibling, &f.options()).await.unwrap();
    }

    std::fs::remove_dir_all(s.join("dir/a")).unwrap();
    std::fs::remove_file(s.join("dir/a-b")).unwrap();
    let done = f.up(s, "nb", &f.options()).await.unwrap();
    assert_eq!((done.deleted, done.failed), (3, 0), "{:?}", done.failures);
    assert_eq!(f.remote_tree("nb"), tree(s));
    for sibling in ["nb2", "nb-old", "n"] {
        assert_eq!(f.remote_tree(sibling), tree(beside.path()), "{sibling}");
    }

    // Everything below the root goes; the root's neighbours stay.
    let empty = tempfile::tempdir().unwrap();
    let gone = f.up(empty.path(), "nb", &f.options()).await.unwrap();
    assert_eq!(gone.deleted, 4, "{gone:?}");
    assert!(f.remote_tree("nb").is_empty());
    for sibling in ["nb2", "nb-old", "n"] {
        assert_eq!(f.remote_tree(sibling), tree(beside.path()), "{sibling}");
    }

    // A container (workspace, item) root is never the root of a sync.
    let top = match b {
        Backend::Azurite => {
            let u = f.url("");
            u.trim_end_matches('/').to_string()
        }
        _ => f.url("").replace("/Files/", ""),
    };
    let out = f.cli(&[&empty.path().to_string_lossy(), &top]);
    let stderr = crate::util::assert_usage_error(&out);
    assert!(stderr.contains("sync into a folder below it"), "{stderr}");
    assert_eq!(f.remote_tree("nb2"), tree(beside.path()));
}

async fn delete_rails_no_delete_and_max_delete(b: Backend) {
    let f = Fixture::new(b);
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
    assert_eq!(f.remote_tree("rails").len(), 10);

    options.rails = Rails {
        max_delete: Some(5),
        ..Rails::default()
    };
    let held = f.up(src.path(), "rails", &options).await.unwrap();
    assert_eq!(held.held, Some((Held::OverLimit { would: 6, max: 5 }, 6)));
    assert_eq!(held.deleted, 0);
    assert_eq!(f.remote_tree("rails").len(), 10);

    options.rails.max_delete = Some(6);
    let done = f.up(src.path(), "rails", &options).await.unwrap();
    assert_eq!(done.deleted, 6);
    assert_eq!(f.remote_tree("rails"), tree(src.path()));
}

fn a_listing_that_fails_part_way_changes_nothing(b: Backend) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let f = Fixture::with(
        b,
        Knobs {
            page_size: 1,
            latency_ms: 15,
            ..Knobs::default()
        },
    );
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 30);
    rt.block_on(f.up(src.path(), "partial", &f.options()))
        .unwrap();
    std::fs::remove_dir_all(src.path().join("pkg1")).unwrap();
    write(src.path(), "new.txt", b"new");

    // Once the first page has been served, every later request fails (after retries).
    f.clear_requests();
    let result = std::thread::scope(|scope| {
        scope.spawn(|| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if f.requests()
                    .iter()
                    .any(|r| r.is_listing() && r.status == 200)
                {
                    f.set_faults(1.0, 0.0, 0);
                    return;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        });
        rt.block_on(f.up(src.path(), "partial", &f.options()))
    });
    let log = f.requests();
    let pages = log
        .iter()
        .filter(|r| r.is_listing() && r.status == 200)
        .count();
    assert!(
        (1..30).contains(&pages),
        "the listing broke part-way: {pages} pages"
    );
    let err = result.unwrap_err();
    assert!(matches!(err, SyncError::Listing(_)), "{err}");
    assert!(err.to_string().contains("nothing was changed"));
    assert_eq!(writes(&log), 0, "no upload, no delete");
    f.set_faults(0.0, 0.0, 0);
    assert!(f.exists("partial/pkg1"));
}

async fn faults_and_drops_still_end_in_an_exact_mirror(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            fail_rate: 0.2,
            reset_rate: 0.05,
            seed: 11,
            ..Knobs::default()
        },
    );
    let src = tempfile::tempdir().unwrap();
    for i in 0..1500 {
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
    assert_eq!(summary.uploaded, 1500);
    f.set_faults(0.0, 0.0, 0);
    assert_eq!(f.remote_tree("faulty"), tree(src.path()));
    let faults = faults(&f.requests());
    assert!(faults > 300, "faults were injected: {faults}");
    // And the next run, under faults again, has nothing to do.
    f.set_faults(0.2, 0.05, 0);
    let again = f.up(src.path(), "faulty", &f.options()).await.unwrap();
    assert_eq!((again.uploaded, again.deleted, again.failed), (0, 0, 0));
}

fn a_killed_sync_converges_on_the_next_run(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 3,
            ..Knobs::default()
        },
    );
    let src = tempfile::tempdir().unwrap();
    for i in 0..300 {
        write(
            src.path(),
            &format!("k{}/f{i}.bin", i % 7),
            &vec![i as u8; 3000 + i],
        );
    }
    let run = |extra: &[&str]| {
        let mut cmd = f.command();
        cmd.args(["sync"])
            .arg(src.path())
            .arg(f.url("killed"))
            .args(extra)
            .args(f.api_args());
        cmd
    };
    for delay in [150, 400] {
        let mut child = run(&["--concurrency", "4"]).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        child.kill().unwrap();
        child.wait().unwrap();
    }
    assert_ne!(
        f.remote_tree("killed"),
        tree(src.path()),
        "the kills interrupted the sync"
    );
    f.set_faults(0.0, 0.0, 0);
    let out = run(&[]).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(f.remote_tree("killed"), tree(src.path()));
    let out = run(&["--json"]).output().unwrap();
    let summary = json(&out);
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(summary["unchanged"], 300);
}

async fn download_mirrors_and_repairs_the_local_tree(b: Backend) {
    let f = Fixture::new(b);
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
    f.clear_requests();
    let noop = f.down("dl", &d, &f.options()).await.unwrap();
    assert_eq!((noop.downloaded, noop.hashed_files), (0, 0));
    assert_eq!(f.requests().len(), 1);

    // Local damage is repaired; local extras go, excluded local files stay.
    write(&d, "pkg1/mod1.py", b"local edit");
    std::fs::remove_file(d.join("pkg2/mod2.py")).unwrap();
    write(&d, "stray/file.txt", b"x");
    write(&d, "keep.log", b"x");
    let mut options = f.options();
    options.excludes = Excludes::new(&["*.log".into()], &[]).unwrap();
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

fn cli_summary_json_dry_run_and_exit_codes(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 5);
    let src_arg = src.path().to_string_lossy().into_owned();
    let url = f.url("cli");

    let out = f.cli(&[&src_arg, &url, "--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::util::text(&out.stderr)
    );
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("upload ")).count(),
        5,
        "{stdout}"
    );
    assert!(stdout.contains("Dry run: would change 5 files"), "{stdout}");
    assert!(f.remote_tree("cli").is_empty());

    let out = f.cli(&[&src_arg, &url]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.starts_with("Sync complete (5 files changed, 0 unchanged, "),
        "{stdout}"
    );

    let out = f.cli(&[&src_arg, &url, "--json"]);
    let v = json(&out);
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
    let out = f.cli(&[&src_arg, &src_arg]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one of them must be a remote URL"));
    let out = f.cli(&["/nonexistent/dir", &url]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/dir"));

    // A remote that refuses everything (403): a configuration error (access), exit 2,
    // nothing changed.
    f.deny_everything();
    let out = f.cli(&[&src_arg, &url]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("403"));
}

async fn downloads_under_faults_and_drops_end_in_an_exact_mirror(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    for i in 0..400 {
        write(
            src.path(),
            &format!("d{:02}/f{i}.bin", i % 9),
            &vec![(i % 251) as u8; 100 + i * 37],
        );
    }
    f.up(src.path(), "dlfaults", &f.options()).await.unwrap();
    f.set_faults(0.2, 0.05, 0);
    f.clear_requests();
    let dst = tempfile::tempdir().unwrap();
    let summary = f.down("dlfaults", dst.path(), &f.options()).await.unwrap();
    assert_eq!(summary.failed, 0, "{:?}", summary.failures);
    assert_eq!(summary.downloaded, 400);
    assert_eq!(
        tree(dst.path()),
        tree(src.path()),
        "no partial files, exact bytes"
    );
    let faults = faults(&f.requests());
    assert!(faults > 50, "faults were injected: {faults}");
    let again = f.down("dlfaults", dst.path(), &f.options()).await.unwrap();
    assert_eq!((again.downloaded, again.deleted, again.failed), (0, 0, 0));
}

async fn an_interrupted_first_sync_keeps_the_files_it_finished(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 10,
            ..Knobs::default()
        },
    );
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
    // as the server has committed the first checkpoint of the manifest.
    let checkpointed = async {
        loop {
            if f.requests().iter().any(|r| r.commits_manifest()) {
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
    f.set_faults(0.0, 0.0, 0);
    f.clear_requests();
    let rest = f.up(src.path(), "ckpt", &f.options()).await.unwrap();
    assert!(rest.unchanged > 0, "checkpointed uploads are not repeated");
    assert!(rest.uploaded < 300, "{rest:?}");
    assert_eq!(rest.uploaded + rest.unchanged, 300);
    assert_eq!(rest.uploaded as usize, uploads_of(&f.requests()).len());
    assert_eq!(f.remote_tree("ckpt"), tree(src.path()));
}

/// The lakehouse URL with `item` in place of `lake.Lakehouse`.
fn item_url(f: &Fixture, item: &str, rest: &str) -> String {
    format!(
        "{}/{}/{item}/{rest}",
        f.emu().url(),
        f.emu().workspace_name().replace(' ', "%20")
    )
}

/// The same folder in a container that does not exist (Azurite).
fn missing_container_url(f: &Fixture, rest: &str) -> String {
    let url = f.url(rest);
    let (head, tail) = url.split_once("/devstoreaccount1/").unwrap();
    let (_, path) = tail.split_once('/').unwrap();
    format!("{head}/devstoreaccount1/no-such-container/{path}")
}

/// Issue 8 item 1: a download from a remote root that does not exist used to wipe the local
/// folder and exit 0. Each wrong URL (missing folder, wrong lakehouse, `files` for `Files`,
/// wrong workspace or container) is now exit 2 with one sentence naming what was not found,
/// and every local file survives. A Blob listing shows a missing folder as empty: that is
/// refused too, never taken for an empty source.
fn issue_8_download_from_a_missing_remote_root_deletes_nothing(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 4);
    let up = f.cli(&[&src.path().to_string_lossy(), &f.url("proj")]);
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
    let cases = match b {
        Backend::Azurite => vec![
            (
                f.url("no-such-dir"),
                "no-such-dir` does not exist".to_string(),
            ),
            (f.url("pro"), "pro` does not exist".to_string()),
            (
                missing_container_url(&f, "proj"),
                "ContainerNotFound".to_string(),
            ),
        ],
        _ => vec![
            (
                f.url("no-such-dir"),
                "`Files/no-such-dir` does not exist".to_string(),
            ),
            (
                item_url(&f, "nolake.Lakehouse", "Files/proj"),
                "`nolake.Lakehouse` does not exist".to_string(),
            ),
            (
                item_url(&f, "lake.Lakehouse", "files/proj"),
                "`files` does not exist".to_string(),
            ),
            (
                format!("{}/NoWorkspace/lake.Lakehouse/Files/proj", f.emu().url()),
                "workspace `NoWorkspace` does not exist".to_string(),
            ),
        ],
    };
    for (url, needle) in cases {
        let out = f.cli(&[&url, &local.path().to_string_lossy()]);
        let stderr = crate::util::assert_usage_error(&out);
        assert!(stderr.contains(&needle), "{url}: {stderr}");
        assert_eq!(
            tree(local.path()),
            before,
            "{url}: local files were touched"
        );
        assert!(crate::util::text(&out.stdout).is_empty(), "{url}");
    }
    if b == Backend::Azurite {
        return;
    }
    // The `files` case says how to spell it.
    let out = f.cli(&[
        &item_url(&f, "lake.Lakehouse", "files/proj"),
        &local.path().to_string_lossy(),
    ]);
    assert!(
        crate::util::text(&out.stderr).contains("hint: OneLake folder names are case-sensitive"),
        "{}",
        crate::util::text(&out.stderr)
    );
}

/// Issue 8 item 1, the mirror image: an upload into a lakehouse (or workspace, or
/// container) that does not exist used to print one 404 line per file. It is one sentence,
/// and nothing is written.
fn issue_8_upload_into_a_missing_lakehouse_is_one_sentence(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 30);
    let cases = match b {
        // A Blob account's missing container is created by an upload, as rclone does:
        // `an_upload_creates_a_missing_blob_container_and_a_download_from_it_deletes_nothing`.
        Backend::Azurite => unreachable!("not in the Azurite suite"),
        _ => vec![
            (
                item_url(&f, "nolake.Lakehouse", "Files/proj"),
                "`nolake.Lakehouse` does not exist".to_string(),
            ),
            (
                item_url(&f, "lake.Lakehouse", "files/proj"),
                "`files` does not exist".to_string(),
            ),
            (
                format!("{}/NoWorkspace/lake.Lakehouse/Files/proj", f.emu().url()),
                "workspace `NoWorkspace` does not exist".to_string(),
            ),
        ],
    };
    for (url, needle) in cases {
        f.clear_requests();
        let out = f.cli(&[&src.path().to_string_lossy(), &url]);
        let stderr = crate::util::assert_usage_error(&out);
        assert!(stderr.contains(&needle), "{url}: {stderr}");
        assert_eq!(writes(&f.requests()), 0, "{url}: nothing written");
    }
}

/// Issue 8 item 2: a download used to remove whole local directories the remote does not
/// have, `test.env` and excluded files inside them included, and to report `"deleted":0`.
/// Excluded paths and `test.env` now survive (unless `--delete-excluded`, which still never
/// touches `test.env`), and every deleted file is counted.
fn issue_8_download_keeps_test_env_and_excluded_files_in_extra_directories(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 3);
    let up = f.cli(&[&src.path().to_string_lossy(), &f.url("work")]);
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
    let out = f.cli(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::util::text(&out.stderr)
    );
    let summary = json(&out);
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
    let out = f.cli(&argv.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        crate::util::text(&out.stderr)
    );
    let summary = json(&out);
    assert_eq!(summary["deleted"], 1, "{summary}");
    expected.remove("tools/node_modules/pkg/index.js");
    assert_eq!(tree(w), expected);
}

/// Issue 8 item 3: a local folder that is the remote's own storage (here the emulator's data
/// directory; in a Spark job `/lakehouse/default/Files`) used to have every file truncated to
/// 0 bytes by an upload. Both directions now refuse before anything is written.
fn issue_8_syncing_the_remotes_own_storage_destroys_nothing(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 20);
    let up = f.cli(&[&src.path().to_string_lossy(), &f.url("own")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let storage = f.remote_dir("own");
    // Someone edits a file right in the storage folder: now there is something to upload.
    write(&storage, "pkg0/mod0.py", b"edited in place\n");
    let before = f.remote_tree("own");
    assert_eq!(before.len(), 20);

    f.clear_requests();
    let out = f.cli(&[&storage.to_string_lossy(), &f.url("own")]);
    let stderr = crate::util::assert_usage_error_after_warnings(&out);
    assert!(stderr.contains("is the storage of"), "{stderr}");
    assert_eq!(f.remote_tree("own"), before, "no file was truncated");
    let content_writes = f
        .requests()
        .iter()
        .filter(|r| r.is_write() && !r.path.ends_with(LOCK))
        .count();
    assert_eq!(content_writes, 0, "only the lock record was written");

    // The other way round: downloading into the storage folder refuses too.
    let out = f.cli(&[&f.url("own"), &storage.to_string_lossy()]);
    let stderr = crate::util::assert_usage_error(&out);
    assert!(stderr.contains("is the storage of"), "{stderr}");
    assert_eq!(f.remote_tree("own"), before);
}

/// Issue 8 item 12: a killed upload used to send again everything it had finished since
/// the last 30-second manifest checkpoint. `kill -9` at several points (the first file, a
/// third, two thirds — none near a checkpoint): each re-run sends again at most the files
/// that were in flight when the previous one died (at most `--concurrency`), and the last
/// run is a no-op.
fn issue_8_a_killed_upload_resends_at_most_the_files_in_flight(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 4,
            ..Knobs::default()
        },
    );
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
        f.command()
            .args(["sync", "--concurrency", "4", "--lock-wait", "5"])
            .arg(src.path())
            .arg(f.url("resume"))
            .args(f.api_args())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let mut landed: std::collections::HashSet<String> = Default::default();
    let mut resent = Vec::new();
    for kill_after in [1, total / 3, 2 * total / 3] {
        f.clear_requests();
        let mut child = spawn();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while landed.len() + committed(&f.requests()).len() < kill_after {
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
        let log = f.requests();
        resent.push(created(&log).iter().filter(|p| landed.contains(*p)).count());
        landed.extend(committed(&log));
    }
    assert!(landed.len() < total, "the kills interrupted the upload");

    f.clear_requests();
    let out = spawn().wait_with_output().unwrap();
    assert!(out.status.success());
    let log = f.requests();
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
    assert_eq!(f.remote_tree("resume"), tree(src.path()));
    f.clear_requests();
    let again = f.cli(&[&src.path().to_string_lossy(), &f.url("resume"), "--json"]);
    let summary = json(&again);
    assert_eq!(
        (summary["uploaded"].as_u64(), summary["unchanged"].as_u64()),
        (Some(0), Some(total as u64))
    );
    assert_eq!(f.requests().len(), 1, "a no-op: one listing");
}

/// Issue 8 item 13: two syncs to one remote at once used to fight (failed appends, the next
/// run re-uploading hundreds of identical files). Started together, one takes the root's
/// lock and the other waits for it, then finds nothing left to do: both exit 0, every file
/// is sent once, and a third run is a no-op. With `--lock-wait 0` the second one stops at
/// once with one sentence saying who holds the lock and since when.
fn issue_8_two_syncs_at_once_take_turns(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 3,
            ..Knobs::default()
        },
    );
    let src = tempfile::tempdir().unwrap();
    let n = 300;
    sample_tree(src.path(), n);
    let spawn = |extra: &[&str]| {
        f.command()
            .arg("sync")
            .arg(src.path())
            .arg(f.url("turns"))
            .args(extra)
            .args(f.api_args())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let lock_taken = |f: &Fixture| {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !f.requests().iter().any(|r| r.is_lease() && r.status == 201) {
            assert!(
                std::time::Instant::now() < deadline,
                "no sync took the lock"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    // Started together: who gets the lock first is up to the scheduler.
    let (a, c) = (spawn(&["--json"]), spawn(&["--json"]));
    let first = [a.wait_with_output().unwrap(), c.wait_with_output().unwrap()];
    // And the second one started while the first surely holds the lock (slow requests,
    // every file changed): it must wait.
    for i in 0..n {
        write(
            src.path(),
            &format!("pkg{}/mod{i}.py", i % 5),
            b"second round\n",
        );
    }
    f.set_faults(0.0, 0.0, 30);
    f.clear_requests();
    let a = spawn(&["--json"]);
    lock_taken(&f);
    let c = spawn(&["--json"]);
    let second = [a.wait_with_output().unwrap(), c.wait_with_output().unwrap()];
    let mut uploaded = 0;
    for out in first.iter().chain(&second) {
        let stderr = crate::util::text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        let summary = json(out);
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
    f.set_faults(0.0, 0.0, 0);
    assert_eq!(f.remote_tree("turns"), tree(src.path()));

    // A third run: nothing to do, one listing.
    f.clear_requests();
    let third = f.cli(&[&src.path().to_string_lossy(), &f.url("turns"), "--json"]);
    let summary = json(&third);
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(f.requests().len(), 1);

    // --lock-wait 0 while another sync holds the lock: one sentence, exit 1, nothing sent.
    for i in 0..n {
        write(src.path(), &format!("pkg{}/mod{i}.py", i % 5), b"changed\n");
    }
    f.set_faults(0.0, 0.0, 30);
    f.clear_requests();
    let holder = spawn(&[]);
    lock_taken(&f);
    let other = tempfile::tempdir().unwrap();
    let refused = f
        .command_with_cache(other.path())
        .arg("sync")
        .arg(src.path())
        .arg(f.url("turns"))
        .args(["--lock-wait", "0"])
        .args(f.api_args())
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

/// Issue 8 item 6: a legal 255-byte name uploaded but could not be downloaded (the
/// temporary name grew past 255). Temporary names are now short whatever the target's.
fn issue_8_a_255_byte_name_round_trips(b: Backend) {
    let f = Fixture::new(b);
    let src = tempfile::tempdir().unwrap();
    let long = format!("{}.txt", "n".repeat(251));
    assert_eq!(long.len(), 255);
    write(src.path(), &format!("dir/{long}"), b"long name");
    let up = f.cli(&[&src.path().to_string_lossy(), &f.url("long")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let dst = tempfile::tempdir().unwrap();
    let down = f.cli(&[&f.url("long"), &dst.path().to_string_lossy()]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}",
        crate::util::text(&down.stderr)
    );
    assert_eq!(tree(dst.path()), tree(src.path()));
}

/// Issue 8 item 8: a local `.fabric-remote-manifest` was uploaded over the manifest (and
/// re-uploaded every run). Reserved names at the root are skipped with a warning; the
/// remote manifest stays ours and a re-run is a no-op.
fn issue_8_reserved_names_are_never_uploaded(b: Backend) {
    let f = Fixture::new(b);
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
    let first = f.cli(&args);
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
    let summary = json(&first);
    assert_eq!(summary["uploaded"], 4);
    let stored = f.stored("reserved");
    assert!(stored[MANIFEST].starts_with(b"fabric-remote-manifest v"));
    assert!(stored.contains_key(&format!("sub/{MANIFEST}")));
    f.clear_requests();
    let again = f.cli(&args);
    let summary = json(&again);
    assert_eq!(summary["uploaded"], 0);
    assert_eq!(f.requests().len(), 1, "a no-op");
}

/// Issue 8 item 1 (the flood's other cause): an error that makes the whole root unusable
/// mid-run — here the credential is revoked after the first files landed — stops the
/// remaining transfers with one sentence instead of one line per file. The files that did
/// land are journaled, so the next run (with a good credential) sends only the rest.
fn issue_8_a_root_wide_error_mid_run_is_one_sentence_not_one_line_per_file(b: Backend) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 5,
            ..Knobs::default()
        },
    );
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 200);
    let mut child = f
        .command()
        .args(["sync", "--concurrency", "4"])
        .arg(src.path())
        .arg(f.url("revoked"))
        .args(f.api_args())
        .env("FABRIC_REMOTE_TOKEN", "tok-revoked-midway")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while committed(&f.requests()).len() < 10 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(1));
    }
    f.revoke("tok-revoked-midway");
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
    assert!(stderr.contains(f.revoked_status()), "{stderr}");
    let landed = committed(&f.requests()).len();
    assert!(landed < 200, "the run stopped early");

    f.unrevoke();
    f.clear_requests();
    let rest = f.cli(&[&src.path().to_string_lossy(), &f.url("revoked"), "--json"]);
    let summary = json(&rest);
    assert_eq!(summary["uploaded"].as_u64().unwrap() as usize, 200 - landed);
    assert_eq!(f.remote_tree("revoked"), tree(src.path()));
}

/// A large file goes up in chunks sent in parallel — DFS appends at their positions then
/// one flush, Blob blocks then one block list — never one chunk at a time. With 20 ms of
/// latency per request, the emulator's request log shows at least 4 chunks in flight at
/// once, and the bytes come back exactly. (The suite uses 128 chunks of 512 KiB, the chunk
/// count of a 1 GiB file in 8 MiB chunks; `a_1_gib_file_*` below does the real size.)
fn large_file_test(b: Backend, size: u64, chunk: usize) {
    let f = Fixture::with(
        b,
        Knobs {
            latency_ms: 20,
            ..Knobs::default()
        },
    );
    let http =
        HttpClient::new(Credentials::from_token(Secret::new("t")), fixture::policy()).unwrap();
    let dfs = DfsClient::new(http.clone()).with_chunk_size(chunk);
    let remote = match b {
        Backend::Dfs => Transport::dfs(dfs),
        _ => Transport::both(
            BlobClient::new(http, BlobAuth::Bearer)
                .with_single_put_limit(chunk)
                .with_block_size(chunk),
            dfs,
        ),
    };
    let src = tempfile::tempdir().unwrap();
    let path = src.path().join("big.bin");
    {
        // Deterministic bytes (xorshift), written a megabyte at a time.
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut left = size;
        let mut buf = vec![0u8; 1 << 20];
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            for word in buf[..n].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                word.copy_from_slice(&x.to_le_bytes()[..word.len()]);
            }
            out.write_all(&buf[..n]).unwrap();
            left -= n as u64;
        }
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let root = f.remote("large");
    f.emu().clear_requests();
    let up = rt
        .block_on(sync::sync(
            &Location::Local(src.path().to_path_buf()),
            &Location::Remote(root.clone()),
            &remote,
            &f.options(),
            &Silent,
        ))
        .unwrap();
    assert_eq!((up.uploaded, up.failed), (1, 0), "{:?}", up.failures);
    let chunks: Vec<_> = f
        .emu()
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/big.bin"))
        .filter(|r| r.query.contains("action=append") || r.query.contains("comp=block&"))
        .collect();
    let expected = size.div_ceil(chunk as u64) as usize;
    assert_eq!(chunks.len(), expected, "one request per chunk");
    let most = fabric_emulator::max_in_flight(&chunks);
    eprintln!(
        "{b:?}: {} chunks of {chunk} bytes, at most {most} in flight at once",
        chunks.len()
    );
    assert!(most >= 4, "at most {most} chunks were in flight at once");
    // Byte for byte, on the server and back down.
    let stored = f.remote_dir("large/big.bin");
    assert!(files_equal(&stored, &path), "the stored bytes differ");
    let back = tempfile::tempdir().unwrap();
    let down = rt
        .block_on(sync::sync(
            &Location::Remote(root),
            &Location::Local(back.path().to_path_buf()),
            &remote,
            &f.options(),
            &Silent,
        ))
        .unwrap();
    assert_eq!(down.downloaded, 1);
    assert!(
        files_equal(&back.path().join("big.bin"), &path),
        "the downloaded bytes differ"
    );
}

fn files_equal(a: &Path, b: &Path) -> bool {
    use std::io::Read;
    let (mut x, mut y) = (
        std::io::BufReader::new(std::fs::File::open(a).unwrap()),
        std::io::BufReader::new(std::fs::File::open(b).unwrap()),
    );
    let (mut p, mut q) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = x.read(&mut p).unwrap();
        let mut m = 0;
        while m < n {
            let k = y.read(&mut q[m..n]).unwrap();
            if k == 0 {
                return false;
            }
            m += k;
        }
        if n == 0 {
            return y.read(&mut q[..1]).unwrap() == 0;
        }
        if p[..n] != q[..n] {
            return false;
        }
    }
}

fn a_large_file_goes_up_in_parallel_chunks(b: Backend) {
    large_file_test(b, 64 << 20, 512 << 10);
}

/// The real size, by hand: `cargo nextest run --run-ignored only -E 'test(/a_1_gib_file/)'`.
fn a_1_gib_file_goes_up_in_parallel_chunks(b: Backend) {
    large_file_test(b, 1 << 30, 8 << 20);
}

macro_rules! suite {
    ($name:ident, $backend:expr, async { $($a:ident),* $(,)? }, sync { $($s:ident),* $(,)? }) => {
        mod $name {
            #[allow(unused_imports)]
            use super::fixture::Backend;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $a() {
                    super::$a($backend).await
                }
            )*
            $(
                #[test]
                fn $s() {
                    super::$s($backend)
                }
            )*
        }
    };
}

suite!(
    dfs,
    Backend::Dfs,
    async {
        upload_mirrors_a_tree_byte_for_byte,
        request_counts_for_the_everyday_cases,
        a_rewrite_with_the_same_bytes_is_not_uploaded_again,
        deletes_extraneous_files_and_whole_directories_but_not_excluded_paths,
        deletes_never_reach_a_neighbour_with_a_shared_prefix,
        delete_rails_no_delete_and_max_delete,
        faults_and_drops_still_end_in_an_exact_mirror,
        download_mirrors_and_repairs_the_local_tree,
        downloads_under_faults_and_drops_end_in_an_exact_mirror,
        an_interrupted_first_sync_keeps_the_files_it_finished,
    },
    sync {
        a_listing_that_fails_part_way_changes_nothing,
        a_killed_sync_converges_on_the_next_run,
        cli_summary_json_dry_run_and_exit_codes,
        issue_8_download_from_a_missing_remote_root_deletes_nothing,
        issue_8_upload_into_a_missing_lakehouse_is_one_sentence,
        issue_8_download_keeps_test_env_and_excluded_files_in_extra_directories,
        issue_8_syncing_the_remotes_own_storage_destroys_nothing,
        issue_8_a_killed_upload_resends_at_most_the_files_in_flight,
        issue_8_two_syncs_at_once_take_turns,
        issue_8_a_255_byte_name_round_trips,
        issue_8_reserved_names_are_never_uploaded,
        issue_8_a_root_wide_error_mid_run_is_one_sentence_not_one_line_per_file,
        a_large_file_goes_up_in_parallel_chunks,
    }
);

suite!(
    azurite,
    Backend::Azurite,
    async {
        upload_mirrors_a_tree_byte_for_byte,
        request_counts_for_the_everyday_cases,
        a_rewrite_with_the_same_bytes_is_not_uploaded_again,
        deletes_extraneous_files_and_whole_directories_but_not_excluded_paths,
        deletes_never_reach_a_neighbour_with_a_shared_prefix,
        delete_rails_no_delete_and_max_delete,
        faults_and_drops_still_end_in_an_exact_mirror,
        download_mirrors_and_repairs_the_local_tree,
        downloads_under_faults_and_drops_end_in_an_exact_mirror,
        an_interrupted_first_sync_keeps_the_files_it_finished,
    },
    sync {
        a_listing_that_fails_part_way_changes_nothing,
        a_killed_sync_converges_on_the_next_run,
        cli_summary_json_dry_run_and_exit_codes,
        issue_8_download_from_a_missing_remote_root_deletes_nothing,
        issue_8_download_keeps_test_env_and_excluded_files_in_extra_directories,
        issue_8_a_killed_upload_resends_at_most_the_files_in_flight,
        issue_8_two_syncs_at_once_take_turns,
        issue_8_a_255_byte_name_round_trips,
        issue_8_reserved_names_are_never_uploaded,
        issue_8_a_root_wide_error_mid_run_is_one_sentence_not_one_line_per_file,
    }
);

// `auto` on a OneLake-shaped endpoint: the cases where its mix of APIs matters.
suite!(
    auto,
    Backend::Auto,
    async {
        upload_mirrors_a_tree_byte_for_byte,
        request_counts_for_the_everyday_cases,
        a_rewrite_with_the_same_bytes_is_not_uploaded_again,
        deletes_extraneous_files_and_whole_directories_but_not_excluded_paths,
        deletes_never_reach_a_neighbour_with_a_shared_prefix,
        download_mirrors_and_repairs_the_local_tree,
    },
    sync {
        a_listing_that_fails_part_way_changes_nothing,
        cli_summary_json_dry_run_and_exit_codes,
        issue_8_download_from_a_missing_remote_root_deletes_nothing,
        issue_8_upload_into_a_missing_lakehouse_is_one_sentence,
        issue_8_syncing_the_remotes_own_storage_destroys_nothing,
        issue_8_a_killed_upload_resends_at_most_the_files_in_flight,
        a_large_file_goes_up_in_parallel_chunks,
    }
);

mod by_hand {
    use super::fixture::Backend;

    #[test]
    #[ignore = "1 GiB on disk and on the wire: run by hand"]
    fn a_1_gib_file_goes_up_in_parallel_chunks_over_dfs() {
        super::a_1_gib_file_goes_up_in_parallel_chunks(Backend::Dfs)
    }

    #[test]
    #[ignore = "1 GiB on disk and on the wire: run by hand"]
    fn a_1_gib_file_goes_up_in_parallel_chunks_over_blob() {
        super::a_1_gib_file_goes_up_in_parallel_chunks(Backend::Auto)
    }
}

// ---- one backend only ----------------------------------------------------------

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
    assert!(summary.failures[0].path.contains("escape.txt"));
    assert!(matches!(
        summary.failures[0].reason,
        fabric_remote::sync::Reason::Outside
    ));
    assert_eq!(summary.downloaded, 1);
    assert_eq!(std::fs::read(inner.join("ok.txt")).unwrap(), b"ok");
    assert!(!dst.path().join("escape.txt").exists());
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
    let f = Fixture::new(Backend::Dfs);
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
    assert!(f.remote_tree("locked").is_empty());

    // A broken link followed: named, deletes held back and said so, exit 1.
    let up = f.cli(&[&src.to_string_lossy(), &f.url("links")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    std::fs::remove_file(src.join("pkg0/mod0.py")).unwrap();
    std::os::unix::fs::symlink(src.join("nowhere"), src.join("dangling")).unwrap();
    let out = f.cli(&[&src.to_string_lossy(), &f.url("links"), "--follow-links"]);
    let stderr = crate::util::text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("failed: dangling: "), "{stderr}");
    assert!(stderr.contains("were not deleted"), "{stderr}");
    assert!(
        f.remote_dir("links/pkg0/mod0.py").exists(),
        "the delete was held"
    );
}

/// Issue 8 item 7: `back\slash` was uploaded, then re-uploaded on every run with a warning,
/// and refused on download. Such names are skipped with a warning in both directions from
/// the first run, never deleted on either side, and a re-run is a no-op.
#[test]
fn issue_8_a_backslash_name_is_skipped_the_same_way_every_run() {
    let f = Fixture::new(Backend::Dfs);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 2);
    write(src.path(), "back\\slash", b"windows would split me");
    let args = [
        src.path().to_string_lossy().into_owned(),
        f.url("bs"),
        "--json".into(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let first = f.cli(&args);
    let stderr = crate::util::text(&first.stderr);
    assert_eq!(first.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("warning: skipped `back\\slash`"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(summary["uploaded"], 2);
    assert!(!f.remote_dir("bs/back\\slash").exists());
    f.clear_requests();
    let again = f.cli(&args);
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        (summary["uploaded"].as_u64(), summary["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(f.requests().len(), 1, "a no-op");

    // A remote name with a backslash: skipped on download, and the local one is kept.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(f.remote.put(
        &f.remote("bs").join("remote\\name").unwrap(),
        bytes::Bytes::from_static(b"r"),
        &Default::default(),
    ))
    .unwrap();
    let dst = tempfile::tempdir().unwrap();
    write(dst.path(), "back\\slash", b"mine");
    let args = [f.url("bs"), dst.path().to_string_lossy().into_owned()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    for _ in 0..2 {
        let down = f.cli(&args);
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

/// Over Blob with a SAS in the URL (Azurite through the proxy): `-v` logs every request
/// once per attempt with the URL but never the signature, even for the requests the proxy
/// throttled and the client retried; a refused port fails at once, with one sentence.
#[test]
fn azurite_sas_requests_are_logged_per_attempt_and_redacted() {
    let f = Fixture::new(Backend::Azurite);
    let src = tempfile::tempdir().unwrap();
    sample_tree(src.path(), 6);
    let container = f
        .url("")
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    let sas = crate::azurite::container_sas(&container, "racwdl");
    let sig = sas.split("sig=").nth(1).unwrap().to_string();
    f.set_faults(0.3, 0.0, 0);
    let out = fabric_remote()
        .args(["-v", "sync"])
        .arg(src.path())
        .arg(format!("{}?{sas}", f.url("sas")))
        .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
        .output()
        .unwrap();
    f.set_faults(0.0, 0.0, 0);
    let stderr = crate::util::text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(f.remote_tree("sas"), tree(src.path()));
    let puts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("PUT ") && l.contains("/sas/pkg"))
        .collect();
    let retried = puts.iter().filter(|l| !l.contains("(attempt 1,")).count();
    assert!(puts.len() >= 6, "one line per attempt: {stderr}");
    assert!(
        retried > 0,
        "the throttled attempts are logged too: {stderr}"
    );
    let decoded = percent_encoding::percent_decode_str(&sig)
        .decode_utf8_lossy()
        .into_owned();
    assert!(
        !stderr.contains(&sig) && !stderr.contains(&decoded),
        "{stderr}"
    );
    assert!(!crate::util::text(&out.stdout).contains(&sig));

    // Nothing listens on port 9: one attempt, one sentence, exit 2.
    let started = std::time::Instant::now();
    let out = fabric_remote()
        .arg("sync")
        .arg(src.path())
        .arg(format!(
            "http://127.0.0.1:9/devstoreaccount1/{container}/x?{sas}"
        ))
        .env("FABRIC_REMOTE_CACHE_DIR", f.cache.path())
        .output()
        .unwrap();
    let stderr = crate::util::assert_usage_error(&out);
    assert!(stderr.contains("connection was refused"), "{stderr}");
    assert!(!stderr.contains(&sig), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "failed fast");
}

/// `ls` of a Blob container (Azurite): the direct children, folders folded from the flat
/// listing, or the whole tree with `--recursive`.
#[test]
fn ls_lists_a_blob_container() {
    let f = Fixture::new(Backend::Azurite);
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a.txt", b"12345");
    write(src.path(), "dir/b.txt", b"1");
    write(src.path(), "dir/deeper/c.txt", b"12");
    let up = f.cli(&[&src.path().to_string_lossy(), &f.url("ls")]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let ls = |extra: &[&str]| {
        let out = f
            .command()
            .arg("ls")
            .arg(f.url("ls"))
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            crate::util::text(&out.stderr)
        );
        crate::util::text(&out.stdout)
    };
    let top: Vec<String> = ls(&[])
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .collect();
    assert_eq!(top, [LOCK, MANIFEST, "a.txt", "dir/"]);
    let all = ls(&["--recursive", "--json"]);
    let paths: Vec<String> = all
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .filter(|p| !p.starts_with(".fabric-remote"))
        .collect();
    assert_eq!(paths, ["a.txt", "dir/b.txt", "dir/deeper/c.txt"]);
}

/// An upload into a Blob account's container that does not exist yet creates it (as rclone
/// does; a dry run does not), while a download from it is an error that deletes nothing.
#[test]
fn an_upload_creates_a_missing_blob_container_and_a_download_from_it_deletes_nothing() {
    let f = Fixture::new(Backend::Azurite);
    // The fixture's container name with `-new`: a container nobody created.
    let existing = f.url("x");
    let container = existing.strip_suffix("/x").unwrap();
    let url = format!("{container}-new/proj");
    let src = tempfile::tempdir().unwrap();
    write(src.path(), "a.txt", b"12345");
    write(src.path(), "dir/b.txt", b"1");
    let src_arg = src.path().to_string_lossy().to_string();
    let ls = |url: &str| f.command().args(["ls", "-r", url]).output().unwrap();

    let dry = f.cli(&[&src_arg, &url, "--dry-run"]);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{}",
        crate::util::text(&dry.stderr)
    );
    let missing = ls(&url);
    assert_eq!(
        missing.status.code(),
        Some(2),
        "a dry run created the container"
    );
    assert!(
        crate::util::text(&missing.stderr).contains("ContainerNotFound"),
        "{}",
        crate::util::text(&missing.stderr)
    );

    // A download from the missing container keeps every local file.
    let dst = tempfile::tempdir().unwrap();
    write(dst.path(), "mine.txt", b"keep me");
    let other = format!("{container}-other/proj");
    let down = f.cli(&[&other, &dst.path().to_string_lossy()]);
    assert_eq!(
        down.status.code(),
        Some(2),
        "{}",
        crate::util::text(&down.stderr)
    );
    assert_eq!(tree(dst.path()).len(), 1);

    let up = f.cli(&[&src_arg, &url]);
    assert_eq!(
        up.status.code(),
        Some(0),
        "{}",
        crate::util::text(&up.stderr)
    );
    let listed = ls(&url);
    assert_eq!(listed.status.code(), Some(0));
    let names: Vec<String> = crate::util::text(&listed.stdout)
        .lines()
        .map(|l| l.split_whitespace().last().unwrap().to_string())
        .filter(|p| !p.starts_with(".fabric-remote"))
        .collect();
    assert_eq!(names, ["a.txt", "dir/b.txt"]);
    // And a second run is a no-op in the container it made.
    let again = f.cli(&[&src_arg, &url, "--json"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(crate::util::text(&again.stdout).contains("\"uploaded\":0"));
}
