//! The local hash cache: sha256 per file, keyed by (path, size, mtime, inode), so a sync
//! re-reads only files whose metadata changed.
//!
//! Lives in the user's cache directory (one file per sync root), never in the tree. Entries
//! for files that were modified less than [`RACY_WINDOW`] before they were hashed are not
//! trusted later (git's "racily clean" problem: an edit in the same timestamp tick would keep
//! the metadata and change the bytes), so those few files are hashed again next time.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::record::{escape_path, hex, unescape_path, unhex};

const HEADER: &str = "fabric-remote-hashcache v1";
/// A hash taken this soon after the file's mtime is not reused.
pub const RACY_WINDOW_NS: i64 = 1_000_000_000;

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    pub mtime_ns: i64,
    pub inode: u64,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    stat: Stat,
    sha256: [u8; 32],
}

/// The cache for one sync root.
#[derive(Debug, Default)]
pub struct HashCache {
    file: Option<PathBuf>,
    entries: HashMap<Box<str>, Entry>,
    dirty: bool,
}

impl HashCache {
    /// An empty cache that is never saved.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// Loads the cache stored at `file` (a missing or unreadable cache is an empty one).
    pub fn load(file: PathBuf) -> Self {
        let mut entries = HashMap::new();
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if lines.next() == Some(HEADER) {
                for line in lines {
                    if let Some((path, entry)) = parse_line(line) {
                        entries.insert(path.into_boxed_str(), entry);
                    }
                }
            }
        }
        Self {
            file: Some(file),
            entries,
            dirty: false,
        }
    }

    /// The cached hash, if `stat` still matches.
    pub fn get(&self, path: &str, stat: Stat) -> Option<[u8; 32]> {
        self.entries
            .get(path)
            .filter(|e| e.stat == stat)
            .map(|e| e.sha256)
    }

    /// Records a hash computed at `hashed_at_ns` (Unix ns). Racily-clean entries are skipped.
    pub fn insert(&mut self, path: &str, stat: Stat, sha256: [u8; 32], hashed_at_ns: i64) {
        let coarse = stat.mtime_ns % 1_000_000_000 == 0;
        if coarse && stat.mtime_ns > hashed_at_ns - RACY_WINDOW_NS {
            if self.entries.remove(path).is_some() {
                self.dirty = true;
            }
            return;
        }
        let entry = Entry { stat, sha256 };
        match self.entries.get(path) {
            Some(old) if old.stat == stat && old.sha256 == sha256 => {}
            _ => {
                self.entries.insert(path.into(), entry);
                self.dirty = true;
            }
        }
    }

    /// Drops entries for paths not in `keep` (files that are gone).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.entries.len();
        self.entries.retain(|p, _| keep(p));
        self.dirty |= self.entries.len() != before;
    }

    /// Writes the cache if anything changed (atomically: temp file + rename).
    pub fn save(&mut self) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        if !self.dirty {
            return Ok(());
        }
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = file.with_extension("tmp");
        {
            let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            writeln!(out, "{HEADER}")?;
            for (path, e) in &self.entries {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    hex(&e.sha256),
                    e.stat.size,
                    e.stat.mtime_ns,
                    e.stat.inode,
                    escape_path(path)
                )?;
            }
            out.flush()?;
        }
        std::fs::rename(&tmp, file)?;
        self.dirty = false;
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn parse_line(line: &str) -> Option<(String, Entry)> {
    let mut f = line.splitn(5, '\t');
    let sha256 = unhex(f.next()?)?;
    let size = f.next()?.parse().ok()?;
    let mtime_ns = f.next()?.parse().ok()?;
    let inode = f.next()?.parse().ok()?;
    let path = unescape_path(f.next()?)?;
    Some((
        path,
        Entry {
            stat: Stat {
                size,
                mtime_ns,
                inode,
            },
            sha256,
        },
    ))
}

/// Where the cache for the sync root `root` lives inside `cache_dir`.
pub fn cache_file(cache_dir: &Path, kind: &str, key: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    cache_dir.join(format!("{kind}-{}.tsv", &hex(&digest)[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: i64 = 1_000_000_000_000_000_000;

    fn stat(size: u64, mtime_ns: i64) -> Stat {
        Stat {
            size,
            mtime_ns,
            inode: 7,
        }
    }

    #[test]
    fn hit_miss_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.tsv");
        let mut c = HashCache::load(file.clone());
        c.insert("a\tb.py", stat(3, OLD), [1; 32], OLD + 10 * RACY_WINDOW_NS);
        c.save().unwrap();
        let c = HashCache::load(file);
        assert_eq!(c.get("a\tb.py", stat(3, OLD)), Some([1; 32]));
        assert_eq!(c.get("a\tb.py", stat(4, OLD)), None, "size changed");
        assert_eq!(c.get("a\tb.py", stat(3, OLD + 1)), None, "mtime changed");
        let moved = Stat {
            inode: 8,
            ..stat(3, OLD)
        };
        assert_eq!(c.get("a\tb.py", moved), None, "inode changed");
    }

    #[test]
    fn racily_clean_entries_are_not_kept() {
        let mut c = HashCache::in_memory();
        // Whole-second mtime (coarse file system), hashed half a second later: not kept.
        c.insert("a", stat(1, OLD), [1; 32], OLD + RACY_WINDOW_NS / 2);
        assert_eq!(c.get("a", stat(1, OLD)), None);
        // Nanosecond mtime: kept.
        c.insert("b", stat(1, OLD + 7), [1; 32], OLD + 8);
        assert_eq!(c.get("b", stat(1, OLD + 7)), Some([1; 32]));
    }

    #[test]
    fn corrupt_cache_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.tsv");
        std::fs::write(&file, "garbage\nmore").unwrap();
        assert!(HashCache::load(file).is_empty());
    }
}
