//! Turns the source tree, the destination tree and what we know of their contents into a
//! [`Plan`]: the transfers, deletes and whole-directory removals that make DST equal SRC.
//!
//! Pure: no I/O, no clock. Both sides arrive sorted by path and are merged in one pass, so a
//! plan over 100,000 entries costs a few milliseconds and no hash maps. The delete rails live
//! here too: `--no-delete`, excluded paths kept, `--max-delete`, nothing deleted when the
//! source could not be read completely. A destination directory with nothing of the source
//! (and nothing kept) below it is removed with one recursive delete instead of file by file.

use super::manifest::Etag;

/// A file on the remote side, as the listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    /// Relative to the sync root, `/`-separated.
    pub path: Box<str>,
    pub size: u64,
    pub etag: Etag,
    /// The content MD5 the listing shows (Blob listings do; DFS listings do not).
    pub md5: Option<[u8; 16]>,
}

/// A path of either side and what the plan needs to compare it.
pub trait Entry {
    fn path(&self) -> &str;
    fn size(&self) -> u64;
}

impl Entry for RemoteFile {
    fn path(&self) -> &str {
        &self.path
    }
    fn size(&self) -> u64 {
        self.size
    }
}

impl Entry for super::scan::LocalFile {
    fn path(&self) -> &str {
        &self.path
    }
    fn size(&self) -> u64 {
        self.stat.size
    }
}

/// The delete rails.
#[derive(Debug, Clone, Copy)]
pub struct Rails {
    /// Delete destination files that are not in the source (`--no-delete` turns it off).
    pub delete: bool,
    /// Also delete destination paths matched by an exclude.
    pub delete_excluded: bool,
    /// Refuse every delete when more than this many files would go.
    pub max_delete: Option<u64>,
}

impl Default for Rails {
    fn default() -> Self {
        Self {
            delete: true,
            delete_excluded: false,
            max_delete: None,
        }
    }
}

/// Why the plan deletes nothing although the destination has extra files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Held {
    /// `--no-delete`.
    Disabled,
    /// Part of the source could not be read: its absence proves nothing.
    IncompleteSource,
    /// More files would go than `--max-delete` allows.
    OverLimit { would: u64, max: u64 },
}

/// What to do.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Indices (into the source slice) of files to transfer.
    pub transfers: Vec<usize>,
    /// Indices (into the source slice) of files already equal at the destination.
    pub unchanged: Vec<usize>,
    /// Destination files to delete one by one.
    pub delete_files: Vec<Box<str>>,
    /// Destination directories to delete recursively (topmost only).
    pub delete_dirs: Vec<Box<str>>,
    /// Destination files that the deletes remove, those under `delete_dirs` included.
    pub delete_count: u64,
    /// Extra destination files left in place because of a rail, and why.
    pub held: Option<(Held, u64)>,
}

impl Plan {
    pub fn is_noop(&self) -> bool {
        self.transfers.is_empty() && self.delete_files.is_empty() && self.delete_dirs.is_empty()
    }
}

/// Inputs besides the two sides.
pub struct Sides<'a, S, D> {
    /// Source files, sorted by path.
    pub source: &'a [S],
    /// Source paths that exist but could not be read: their destination copies are kept.
    pub source_unreadable: &'a [Box<str>],
    /// False when part of the source tree could not be walked.
    pub source_complete: bool,
    /// Destination files, sorted by path.
    pub dest: &'a [D],
    /// Destination directories, sorted.
    pub dest_dirs: &'a [Box<str>],
}

/// Computes the plan. `same(s, d)` says whether destination file `d` already holds the
/// content of source file `s` (same path); `covered(path, is_dir)` says whether an exclude
/// covers a destination path.
pub fn plan<S: Entry, D: Entry>(
    sides: &Sides<'_, S, D>,
    rails: Rails,
    covered: impl Fn(&str, bool) -> bool,
    same: impl Fn(&S, &D) -> bool,
) -> Plan {
    let mut out = Plan::default();
    let mut extra: Vec<&str> = Vec::new();
    let mut kept: Vec<&str> = Vec::new();
    let (src, dst) = (sides.source, sides.dest);
    let (mut i, mut j) = (0, 0);
    while i < src.len() || j < dst.len() {
        let order = match (src.get(i), dst.get(j)) {
            (Some(s), Some(d)) => s.path().cmp(d.path()),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, _) => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                out.transfers.push(i);
                i += 1;
            }
            std::cmp::Ordering::Equal => {
                if same(&src[i], &dst[j]) {
                    out.unchanged.push(i);
                } else {
                    out.transfers.push(i);
                }
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Greater => {
                let path = dst[j].path();
                let keep = (!rails.delete_excluded && covered(path, false))
                    || contains(sides.source_unreadable, path);
                if keep {
                    kept.push(path);
                } else {
                    extra.push(path);
                }
                j += 1;
            }
        }
    }

    // Whole directories: nothing of the source and nothing kept below them.
    let source_has_under = |dir: &str| has_under(src, dir, |s| s.path());
    let kept_under = |dir: &str| has_under(&kept, dir, |p| p);
    let unreadable_under = |dir: &str| has_under(sides.source_unreadable, dir, |p| p);
    for dir in sides.dest_dirs {
        if has_ancestor_in(&out.delete_dirs, dir) {
            continue;
        }
        let excluded = !rails.delete_excluded && covered(dir, true);
        if excluded
            || source_has_under(dir)
            || kept_under(dir)
            || unreadable_under(dir)
            || contains(sides.source_unreadable, dir)
        {
            continue;
        }
        out.delete_dirs.push(dir.clone());
    }
    // Files below a removed directory go with it.
    for path in extra {
        if !has_ancestor_in(&out.delete_dirs, path) {
            out.delete_files.push(path.into());
        }
        out.delete_count += 1;
    }

    let held = if out.delete_files.is_empty() && out.delete_dirs.is_empty() {
        None
    } else if !rails.delete {
        Some(Held::Disabled)
    } else if !sides.source_complete {
        Some(Held::IncompleteSource)
    } else {
        match rails.max_delete {
            Some(max) if out.delete_count > max => Some(Held::OverLimit {
                would: out.delete_count,
                max,
            }),
            _ => None,
        }
    };
    if let Some(reason) = held {
        out.held = Some((reason, out.delete_count));
        out.delete_files.clear();
        out.delete_dirs.clear();
        out.delete_count = 0;
    }
    out
}

/// `path` is strictly below `dir`.
pub fn is_under(path: &str, dir: &str) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path.as_bytes()[dir.len()] == b'/'
}

/// Does the sorted slice hold a path strictly below `dir`?
fn has_under<T>(sorted: &[T], dir: &str, path: impl Fn(&T) -> &str) -> bool {
    let prefix = format!("{dir}/");
    let at = sorted.partition_point(|x| path(x) < prefix.as_str());
    sorted.get(at).is_some_and(|x| path(x).starts_with(&prefix))
}

/// Is some proper ancestor directory of `path` in the sorted `dirs`? (Checks each ancestor:
/// `/` sorts after `-` and `.`, so a neighbour search would miss some.)
fn has_ancestor_in(dirs: &[Box<str>], path: &str) -> bool {
    path.match_indices('/')
        .any(|(i, _)| contains(dirs, &path[..i]))
}

fn contains(sorted: &[Box<str>], path: &str) -> bool {
    sorted.binary_search_by(|p| (**p).cmp(path)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone)]
    struct F(&'static str, u64);
    impl Entry for F {
        fn path(&self) -> &str {
            self.0
        }
        fn size(&self) -> u64 {
            self.1
        }
    }

    fn boxed(v: &[&str]) -> Vec<Box<str>> {
        v.iter().map(|s| Box::from(*s)).collect()
    }

    fn run(src: &[F], dst: &[F], dirs: &[&str], rails: Rails, excludes: &[&str]) -> Plan {
        let dirs = boxed(dirs);
        let sides = Sides {
            source: src,
            source_unreadable: &[],
            source_complete: true,
            dest: dst,
            dest_dirs: &dirs,
        };
        plan(
            &sides,
            rails,
            |p, _| excludes.iter().any(|e| p == *e || is_under(p, e)),
            |s, d| s.1 == d.1,
        )
    }

    fn paths<'a>(src: &'a [F], idx: &[usize]) -> Vec<&'a str> {
        idx.iter().map(|&i| src[i].0).collect()
    }

    #[test]
    fn new_changed_unchanged() {
        let src = [F("a", 1), F("b", 2), F("c", 3)];
        let dst = [F("b", 2), F("c", 9)];
        let p = run(&src, &dst, &[], Rails::default(), &[]);
        assert_eq!(paths(&src, &p.transfers), ["a", "c"]);
        assert_eq!(paths(&src, &p.unchanged), ["b"]);
        assert!(p.delete_files.is_empty());
    }

    #[test]
    fn extra_files_deleted_and_whole_directories_removed_once() {
        let src = [F("keep/x", 1)];
        let dst = [
            F("gone/a", 1),
            F("gone/sub/b", 1),
            F("keep/old", 1),
            F("keep/x", 1),
            F("top.txt", 1),
        ];
        let p = run(
            &src,
            &dst,
            &["gone", "gone/sub", "keep"],
            Rails::default(),
            &[],
        );
        assert_eq!(p.delete_dirs, boxed(&["gone"]));
        assert_eq!(p.delete_files, boxed(&["keep/old", "top.txt"]));
        assert_eq!(p.delete_count, 4);
        assert!(p.held.is_none());
    }

    #[test]
    fn empty_remote_directories_are_removed() {
        let p = run(
            &[F("a", 1)],
            &[F("a", 1)],
            &["empty", "empty/deeper"],
            Rails::default(),
            &[],
        );
        assert_eq!(p.delete_dirs, boxed(&["empty"]));
        assert_eq!(p.delete_count, 0);
    }

    #[test]
    fn excluded_destination_paths_survive_unless_asked() {
        let src = [F("a", 1)];
        let dst = [
            F("a", 1),
            F("cache/x", 1),
            F("dir/keep.log", 1),
            F("dir/y", 1),
        ];
        let dirs = ["cache", "dir"];
        let p = run(
            &src,
            &dst,
            &dirs,
            Rails::default(),
            &["cache", "dir/keep.log"],
        );
        assert_eq!(p.delete_dirs, boxed(&[]), "dir holds a kept file");
        assert_eq!(p.delete_files, boxed(&["dir/y"]));
        let rails = Rails {
            delete_excluded: true,
            ..Rails::default()
        };
        let p = run(&src, &dst, &dirs, rails, &["cache", "dir/keep.log"]);
        assert_eq!(p.delete_dirs, boxed(&["cache", "dir"]));
        assert_eq!(p.delete_count, 3);
    }

    #[test]
    fn rails_hold_deletes() {
        let src = [F("a", 1)];
        let dst = [F("a", 1), F("b", 1), F("c", 1)];
        let rails = Rails {
            delete: false,
            ..Rails::default()
        };
        let p = run(&src, &dst, &[], rails, &[]);
        assert_eq!(p.held, Some((Held::Disabled, 2)));
        assert!(p.delete_files.is_empty());

        let rails = Rails {
            max_delete: Some(1),
            ..Rails::default()
        };
        let p = run(&src, &dst, &[], rails, &[]);
        assert_eq!(p.held, Some((Held::OverLimit { would: 2, max: 1 }, 2)));
        assert!(p.delete_files.is_empty());

        let rails = Rails {
            max_delete: Some(2),
            ..Rails::default()
        };
        assert_eq!(run(&src, &dst, &[], rails, &[]).delete_files.len(), 2);

        let dirs = boxed(&[]);
        let sides = Sides {
            source: &src,
            source_unreadable: &[],
            source_complete: false,
            dest: &dst,
            dest_dirs: &dirs,
        };
        let p = plan(&sides, Rails::default(), |_, _| false, |_, _| true);
        assert_eq!(p.held, Some((Held::IncompleteSource, 2)));
    }

    #[test]
    fn unreadable_source_files_keep_their_destination_copy() {
        let src = [F("a", 1)];
        let dst = [F("a", 1), F("locked/secret", 1)];
        let dirs = boxed(&["locked"]);
        let unreadable = boxed(&["locked/secret"]);
        let sides = Sides {
            source: &src,
            source_unreadable: &unreadable,
            source_complete: true,
            dest: &dst,
            dest_dirs: &dirs,
        };
        let p = plan(&sides, Rails::default(), |_, _| false, |s, d| s.1 == d.1);
        assert!(p.is_noop(), "{p:?}");
    }

    #[test]
    fn prefix_names_do_not_confuse_directories() {
        // "d-x" sorts between "d" and "d/…"; "dx" after.
        let src = [F("d-x", 1), F("dx", 1)];
        let dst = [F("d-y", 1), F("d/a", 1), F("d/sub/b", 1)];
        let p = run(&src, &dst, &["d", "d-z", "d/sub"], Rails::default(), &[]);
        assert_eq!(p.delete_dirs, boxed(&["d", "d-z"]));
        assert_eq!(p.delete_files, boxed(&["d-y"]));
        assert_eq!(p.delete_count, 3);
        assert!(is_under("d/a", "d"));
        assert!(!is_under("dx", "d"));
        assert!(!is_under("d", "d"));
    }
}
