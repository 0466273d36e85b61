//! The local side of a sync: walk the tree, prune excluded directories, hash what the cache
//! cannot vouch for, in parallel.
//!
//! The walk is `ignore::WalkBuilder` with every default filter switched off (hidden files are
//! content, global git excludes are not consulted), `.gitignore` files only with `--gitignore`,
//! and symlinks skipped with a warning unless `--follow-links`. Hashing uses one thread per
//! core over a shared queue, 256 KiB reads, sha2 with SHA-NI where the CPU has it.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::exclude::Excludes;
use super::hashcache::{HashCache, Stat};
use super::manifest::RESERVED_NAMES;

/// A local file, its identity and its content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Relative to the root, `/`-separated.
    pub path: Box<str>,
    pub stat: Stat,
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ScanOptions {
    pub gitignore: bool,
    pub follow_links: bool,
}

/// What the walk found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Sorted by path.
    pub files: Vec<LocalFile>,
    /// Directories (relative, sorted), excluded ones not included.
    pub dirs: Vec<Box<str>>,
    /// Files that exist but could not be read or hashed, with the reason. Their remote copies
    /// are neither replaced nor deleted.
    pub unreadable: Vec<(Box<str>, String)>,
    /// Parts of the tree the walk could not enter (a broken link with `--follow-links`, a
    /// directory without permission), with the reason. Each one holds back every delete.
    pub unwalkable: Vec<(Box<str>, String)>,
    /// Leftover `.partial` files of an interrupted download (never content).
    pub partials: Vec<PathBuf>,
    /// Things the user should know (skipped symlinks, non-UTF-8 names).
    pub warnings: Vec<String>,
    /// False when part of the tree could not be walked: deletes are then unsafe.
    pub complete: bool,
    pub hashed_files: u64,
    pub hashed_bytes: u64,
}

/// Walks `root` (which must be a readable directory; a missing root is an empty tree).
///
/// Left out, with a warning: symlinks (unless followed), names that are not UTF-8, names
/// with a backslash (a path separator on Windows and for some Azure tools, so they cannot
/// round-trip), and the names fabric-remote reserves at the root ([`RESERVED_NAMES`]).
pub fn scan(
    root: &Path,
    excludes: &Excludes,
    options: ScanOptions,
    cache: &mut HashCache,
) -> std::io::Result<Scan> {
    let mut out = Scan {
        complete: true,
        ..Scan::default()
    };
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    }
    // A root that cannot be listed is an error, not an empty tree.
    std::fs::read_dir(root)?;

    let filter_root = root.to_path_buf();
    let filter_excludes = excludes.clone();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .hidden(false)
        .parents(false)
        .ignore(false)
        .git_global(false)
        .git_exclude(false)
        .git_ignore(options.gitignore)
        .require_git(false)
        .follow_links(options.follow_links)
        .filter_entry(move |entry| {
            let Some(rel) = relative(&filter_root, entry.path()) else {
                return true;
            };
            let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
            rel.is_empty() || !filter_excludes.is_excluded(&rel, is_dir)
        })
        .build();

    let mut pending: Vec<(Box<str>, PathBuf, Stat)> = Vec::new();
    for item in walker {
        let entry = match item {
            Ok(entry) => entry,
            Err(err) => {
                out.complete = false;
                let path = walk_error_path(&err)
                    .and_then(|p| relative(root, &p))
                    .unwrap_or_default();
                out.unwalkable.push((
                    path.into_boxed_str(),
                    format!(
                        "{}; deletes at the destination are held back until it can be read",
                        walk_error_text(&err)
                    ),
                ));
                continue;
            }
        };
        let Some(rel) = relative(root, entry.path()) else {
            out.warnings.push(format!(
                "skipped {}: the name is not valid UTF-8",
                entry.path().display()
            ));
            out.complete = false;
            continue;
        };
        if rel.is_empty() {
            continue;
        }
        let Some(kind) = entry.file_type() else {
            continue;
        };
        if rel.contains('\\') {
            out.warnings.push(format!(
                "skipped `{rel}`: names with a backslash cannot be synced safely (Windows and some Azure tools read it as a folder separator)"
            ));
            continue;
        }
        if RESERVED_NAMES.contains(&rel.as_str()) {
            out.warnings.push(format!(
                "skipped `{rel}`: the name is reserved for fabric-remote's own bookkeeping at the sync root"
            ));
            continue;
        }
        if kind.is_symlink() {
            out.warnings.push(format!(
                "skipped symlink {rel} (use --follow-links to follow it)"
            ));
            continue;
        }
        if kind.is_dir() {
            out.dirs.push(rel.into_boxed_str());
            continue;
        }
        if kind.is_file()
            && entry
                .file_name()
                .to_str()
                .is_some_and(super::execute::is_partial)
        {
            out.partials.push(entry.into_path());
            continue;
        }
        if !kind.is_file() {
            out.warnings
                .push(format!("skipped {rel}: not a regular file"));
            continue;
        }
        match entry.metadata() {
            Ok(m) => {
                let stat = Stat {
                    size: m.len(),
                    mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                    inode: m.ino(),
                };
                let path: Box<str> = rel.into_boxed_str();
                match cache.get(&path, stat) {
                    Some(sha256) => out.files.push(LocalFile { path, stat, sha256 }),
                    None => pending.push((path, entry.into_path(), stat)),
                }
            }
            Err(e) => out.unreadable.push((rel.into_boxed_str(), e.to_string())),
        }
    }

    let now = now_ns();
    for (result, (path, _, stat)) in hash_all(&pending).into_iter().zip(pending) {
        match result {
            Ok(sha256) => {
                out.hashed_files += 1;
                out.hashed_bytes += stat.size;
                cache.insert(&path, stat, sha256, now);
                out.files.push(LocalFile { path, stat, sha256 });
            }
            Err(e) => out.unreadable.push((path, e)),
        }
    }
    out.files.sort_unstable_by(|a, b| a.path.cmp(&b.path));
    out.dirs.sort_unstable();
    out.unreadable.sort();
    Ok(out)
}

type HashResult = Result<[u8; 32], String>;

/// Hashes every file in `pending` with one thread per core; results in input order.
fn hash_all(pending: &[(Box<str>, PathBuf, Stat)]) -> Vec<HashResult> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .min(pending.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<HashResult>>> =
        pending.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let mut buf = vec![0u8; 256 * 1024];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((_, path, _)) = pending.get(i) else {
                        break;
                    };
                    let r = hash_file(path, &mut buf).map_err(|e| e.to_string());
                    *results[i].lock().unwrap_or_else(|p| p.into_inner()) = Some(r);
                }
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err("not hashed".into()))
        })
        .collect()
}

/// sha256 of a file's bytes, read with `buf`.
pub fn hash_file(path: &Path, buf: &mut [u8]) -> std::io::Result<[u8; 32]> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    loop {
        let n = file.read(buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// The stat of a file now (for "did it change while we uploaded it?").
pub fn stat(path: &Path) -> std::io::Result<Stat> {
    let m = std::fs::metadata(path)?;
    Ok(Stat {
        size: m.len(),
        mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        inode: m.ino(),
    })
}

pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// The path a walk error is about, when it names one.
fn walk_error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

/// What went wrong in a walk error, without the path (which the failure line shows).
fn walk_error_text(err: &ignore::Error) -> String {
    match err {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => walk_error_text(err),
        ignore::Error::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "cannot be read (a broken link?)".into()
        }
        ignore::Error::Io(e) => format!("cannot be read: {e}"),
        ignore::Error::Loop { ancestor, .. } => {
            format!("is a link loop back to {}", ancestor.display())
        }
        other => other.to_string(),
    }
}

/// `path` relative to `root` with `/` separators; `None` if not UTF-8.
fn relative(root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let mut out = String::new();
    for (i, part) in rel.components().enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(part.as_os_str().to_str()?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, body: &[u8]) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }

    fn paths(s: &Scan) -> Vec<&str> {
        s.files.iter().map(|f| &*f.path).collect()
    }

    #[test]
    fn walks_hidden_files_prunes_excluded_dirs_and_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a.py", b"abc");
        write(r, ".hidden/x", b"");
        write(r, "node_modules/pkg/index.js", b"x");
        write(r, "src/m.pyc", b"x");
        write(r, "src/m.py", b"y");
        write(r, "test.env", b"SECRET=1");
        let ex = Excludes::new(&["node_modules".into(), "*.pyc".into()], &[]).unwrap();
        let s = scan(r, &ex, ScanOptions::default(), &mut HashCache::in_memory()).unwrap();
        assert_eq!(paths(&s), [".hidden/x", "a.py", "src/m.py"]);
        assert_eq!(
            s.dirs,
            vec![".hidden".into(), "src".into()] as Vec<Box<str>>
        );
        assert!(s.complete);
        assert_eq!(s.hashed_files, 3);
        // sha256("abc")
        assert_eq!(
            super::super::record::hex(&s.files[1].sha256),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn gitignore_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, ".gitignore", b"build/\n");
        write(r, "build/out.o", b"x");
        write(r, "keep.py", b"x");
        let ex = Excludes::none();
        let s = scan(r, &ex, ScanOptions::default(), &mut HashCache::in_memory()).unwrap();
        assert!(paths(&s).contains(&"build/out.o"));
        let opts = ScanOptions {
            gitignore: true,
            ..Default::default()
        };
        let s = scan(r, &ex, opts, &mut HashCache::in_memory()).unwrap();
        assert!(!paths(&s).contains(&"build/out.o"));
        assert!(paths(&s).contains(&"keep.py"));
    }

    #[test]
    fn symlinks_are_skipped_with_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "real.txt", b"x");
        std::os::unix::fs::symlink(r.join("real.txt"), r.join("link.txt")).unwrap();
        let s = scan(
            r,
            &Excludes::none(),
            ScanOptions::default(),
            &mut HashCache::in_memory(),
        )
        .unwrap();
        assert_eq!(paths(&s), ["real.txt"]);
        assert!(s.warnings.iter().any(|w| w.contains("link.txt")));
        let opts = ScanOptions {
            follow_links: true,
            ..Default::default()
        };
        let s = scan(r, &Excludes::none(), opts, &mut HashCache::in_memory()).unwrap();
        assert_eq!(paths(&s), ["link.txt", "real.txt"]);
    }

    #[test]
    fn the_cache_spares_rereading() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write(r, "a", b"1");
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(r.join("a"))
            .unwrap()
            .set_modified(old)
            .unwrap();
        let mut cache = HashCache::in_memory();
        let first = scan(r, &Excludes::none(), ScanOptions::default(), &mut cache).unwrap();
        assert_eq!(first.hashed_files, 1);
        let second = scan(r, &Excludes::none(), ScanOptions::default(), &mut cache).unwrap();
        assert_eq!(second.hashed_files, 0);
        assert_eq!(second.files, first.files);
    }

    #[test]
    fn a_missing_root_is_empty_and_a_file_root_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let s = scan(
            &dir.path().join("nope"),
            &Excludes::none(),
            ScanOptions::default(),
            &mut HashCache::in_memory(),
        )
        .unwrap();
        assert!(s.files.is_empty());
        write(dir.path(), "f", b"");
        assert!(
            scan(
                &dir.path().join("f"),
                &Excludes::none(),
                ScanOptions::default(),
                &mut HashCache::in_memory()
            )
            .is_err()
        );
    }
}
