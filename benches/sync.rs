//! Sync's local work, measured: scan + hash of a generated tree (cold: empty hash cache;
//! warm: the no-op re-sync), the plan over 100,000 entries, exclude matching, and the memory
//! a 1,000,000-file manifest + listing + plan takes per file.
//!
//! `cargo bench --bench sync` for the figures; `cargo bench --bench sync -- --test` (CI) runs
//! each once on a tree ten times smaller.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use fabric_remote::sync::exclude::Excludes;
use fabric_remote::sync::hashcache::{HashCache, Stat};
use fabric_remote::sync::manifest::{Etag, Manifest, ManifestEntry};
use fabric_remote::sync::plan::{self, Rails, RemoteFile, Sides};
use fabric_remote::sync::scan::{self, LocalFile, ScanOptions};

/// Counts live heap bytes, for the memory-per-file figure.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn smoke() -> bool {
    std::env::args().any(|a| a == "--test")
}

/// `files` files totalling about `bytes`, in a two-level tree like a Python project.
fn generate(root: &Path, files: usize, bytes: usize) {
    let each = bytes / files;
    let body: Vec<u8> = (0..each).map(|i| (i * 7 % 251) as u8).collect();
    for i in 0..files {
        let dir = root.join(format!("pkg{:02}/sub{:02}", i % 50, i / 50 % 20));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = body.clone();
        b[..8].copy_from_slice(&(i as u64).to_le_bytes());
        std::fs::write(dir.join(format!("module_{i}.py")), b).unwrap();
    }
}

fn scan_and_hash(c: &mut Criterion) {
    let (files, bytes) = if smoke() {
        (1_000, 20 << 20)
    } else {
        (10_000, 200 << 20)
    };
    let dir = tempfile::tempdir().unwrap();
    generate(dir.path(), files, bytes);
    let excludes = Excludes::new(&["__pycache__".into(), "*.pyc".into()], &[]).unwrap();
    let mut group = c.benchmark_group("scan");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function(BenchmarkId::new("cold", files), |b| {
        b.iter(|| {
            let mut cache = HashCache::in_memory();
            let s = scan::scan(dir.path(), &excludes, ScanOptions::default(), &mut cache).unwrap();
            assert_eq!(s.files.len(), files);
            black_box(s)
        })
    });
    let cache_dir = tempfile::tempdir().unwrap();
    let cache_file = cache_dir.path().join("hashes.tsv");
    let mut cache = HashCache::load(cache_file.clone());
    scan::scan(dir.path(), &excludes, ScanOptions::default(), &mut cache).unwrap();
    cache.save().unwrap();
    group.throughput(Throughput::Elements(files as u64));
    group.bench_function(BenchmarkId::new("warm_noop", files), |b| {
        b.iter(|| {
            // What a no-op re-sync does locally: load the cache, walk, stat, compare.
            let mut cache = HashCache::load(cache_file.clone());
            let s = scan::scan(dir.path(), &excludes, ScanOptions::default(), &mut cache).unwrap();
            assert_eq!(s.hashed_files, 0);
            black_box(s)
        })
    });
    group.finish();
}

fn sha(i: usize) -> [u8; 32] {
    let mut s = [0u8; 32];
    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
    s
}

fn path(i: usize) -> Box<str> {
    format!(
        "src/pkg{:03}/sub{:02}/module_{i:07}.py",
        i % 1000,
        i / 1000 % 100
    )
    .into()
}

/// A sorted local scan, listing and manifest of `n` files where 1% changed.
fn sides(n: usize) -> (Vec<LocalFile>, Vec<RemoteFile>, Manifest) {
    let mut local = Vec::with_capacity(n);
    let mut remote = Vec::with_capacity(n);
    let mut entries = Vec::with_capacity(n);
    for i in 0..n {
        let stat = Stat {
            size: 1000 + i as u64 % 500,
            mtime_ns: 1,
            inode: i as u64,
        };
        let changed = i % 100 == 0;
        local.push(LocalFile {
            path: path(i),
            stat,
            sha256: sha(if changed { i + 1 } else { i }),
        });
        let etag = Etag::Hex(0x8DB1_0000_0000_0000 + i as u64);
        remote.push(RemoteFile {
            path: path(i),
            size: stat.size,
            etag: etag.clone(),
            md5: None,
        });
        entries.push(ManifestEntry {
            path: path(i),
            sha256: sha(i),
            size: stat.size,
            etag,
            md5: None,
        });
    }
    local.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    remote.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    (local, remote, Manifest::new(entries))
}

fn run_plan(
    local: &[LocalFile],
    remote: &[RemoteFile],
    dirs: &[Box<str>],
    m: &Manifest,
) -> plan::Plan {
    let sides = Sides {
        source: local,
        source_unreadable: &[],
        source_complete: true,
        dest: remote,
        dest_dirs: dirs,
    };
    let known = m.cursor();
    plan::plan(
        &sides,
        Rails::default(),
        |_, _| false,
        |l: &LocalFile, r: &RemoteFile| {
            known
                .get(&r.path)
                .is_some_and(|e| e.size == r.size && e.etag == r.etag && e.sha256 == l.sha256)
        },
    )
}

fn plan_diff(c: &mut Criterion) {
    let n = 100_000;
    let (local, remote, manifest) = sides(n);
    let dirs: Vec<Box<str>> = Vec::new();
    let mut group = c.benchmark_group("plan");
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("diff", n), |b| {
        b.iter(|| {
            let p = run_plan(&local, &remote, &dirs, &manifest);
            assert_eq!(p.transfers.len(), n / 100);
            black_box(p)
        })
    });
    group.finish();
}

fn globs(c: &mut Criterion) {
    let excludes = Excludes::new(
        &[
            "node_modules".into(),
            "*.pyc".into(),
            "__pycache__".into(),
            "/build".into(),
            "docs/_site".into(),
            ".venv".into(),
            "*.log".into(),
            "!keep.log".into(),
        ],
        &[],
    )
    .unwrap();
    let paths: Vec<String> = (0..10_000)
        .map(|i| match i % 4 {
            0 => format!("src/pkg{i}/module.py"),
            1 => format!("src/pkg{i}/__pycache__/module.cpython-311.pyc"),
            2 => format!("tests/data/run{i}.log"),
            _ => format!("node_modules/lib{i}/index.js"),
        })
        .collect();
    let mut group = c.benchmark_group("globs");
    group.throughput(Throughput::Elements(paths.len() as u64));
    group.bench_function("is_excluded", |b| {
        b.iter(|| {
            paths
                .iter()
                .filter(|p| excludes.is_excluded(p, false))
                .count()
        })
    });
    group.bench_function("covers", |b| {
        b.iter(|| paths.iter().filter(|p| excludes.covers(p, false)).count())
    });
    group.finish();
}

/// Not a timing: the live heap per file of a 1,000,000-file manifest, listing, local scan
/// and plan, all held at once (the peak of an upload sync's planning step). Printed.
fn memory_per_file(c: &mut Criterion) {
    let n = if smoke() { 100_000 } else { 1_000_000 };
    let before = LIVE.load(Ordering::Relaxed);
    let (local, remote, manifest) = sides(n);
    let dirs: Vec<Box<str>> = Vec::new();
    let p = run_plan(&local, &remote, &dirs, &manifest);
    let held = LIVE.load(Ordering::Relaxed) - before;
    println!(
        "memory: {n} files: manifest + listing + scan + plan = {:.1} MB live, {} bytes per file \
         (manifest+listing alone: {} bytes per file)",
        held as f64 / 1e6,
        held / n,
        (held
            - local.capacity() * std::mem::size_of::<LocalFile>()
            - local.iter().map(|f| f.path.len()).sum::<usize>()
            - (p.transfers.capacity() + p.unchanged.capacity()) * std::mem::size_of::<usize>())
            / n
    );
    drop(p);
    // The time of the plan at this size, on the same data.
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n as u64));
    group.bench_function(BenchmarkId::new("diff_at_memory_scale", n), |b| {
        b.iter(|| black_box(run_plan(&local, &remote, &dirs, &manifest)))
    });
    group.finish();
}

criterion_group!(benches, scan_and_hash, plan_diff, globs, memory_per_file);
criterion_main!(benches);
