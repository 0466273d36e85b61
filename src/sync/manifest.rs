//! The manifest: what fabric-remote knows about the remote tree's content.
//!
//! One file at the remote root, [`MANIFEST_NAME`], never listed as content. Per remote file it
//! records the sha256 we uploaded, its size, the ETag the service returned when the upload
//! was committed and, when the service showed one, the content MD5 it keeps for the file. A
//! listing entry whose size and ETag (or, where the listing shows one, content MD5) still
//! match its manifest entry has the recorded sha256; anything else (edited or replaced behind
//! our back, half-written by a killed run) is unknown and gets transferred again. The
//! manifest only lists files whose upload was committed, so it can never vouch for a partial
//! file.
//!
//! Format: a header line, then `sha256<TAB>size<TAB>etag<TAB>md5<TAB>path` lines sorted by
//! path (`md5` is 32 hex digits or `-`). Version 1 (without the md5 field) is still read.

use std::fmt;

use super::record::{escape_path, hex, unescape_path, unhex};

/// The manifest's name at the remote root.
pub const MANIFEST_NAME: &str = ".fabric-remote-manifest";
/// The lock file's name at the remote root (see `sync::lock`).
pub const LOCK_NAME: &str = ".fabric-remote-lock";
/// Names at the sync root that are fabric-remote's own, never content: a local file with one
/// of these names is skipped with a warning, a remote one is never listed as content.
pub const RESERVED_NAMES: &[&str] = &[MANIFEST_NAME, LOCK_NAME];
const HEADER: &str = "fabric-remote-manifest v2";
const HEADER_V1: &str = "fabric-remote-manifest v1";

/// An ETag, stored compactly: the service's `0x8DB…` form as a number, anything else as text.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Etag {
    Hex(u64),
    Text(Box<str>),
}

impl Etag {
    pub fn parse(s: &str) -> Etag {
        if let Some(digits) = s.strip_prefix("0x")
            && !digits.is_empty()
            && digits.len() <= 16
            && let Ok(v) = u64::from_str_radix(digits, 16)
            && format!("{v:X}") == digits
        {
            return Etag::Hex(v);
        }
        Etag::Text(s.into())
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Etag::Hex(v) => write!(f, "0x{v:X}"),
            Etag::Text(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// A remote file as the manifest remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub path: Box<str>,
    pub sha256: [u8; 32],
    pub size: u64,
    pub etag: Etag,
    /// The content MD5 the service keeps for the file (Blob listings show it), if known.
    pub md5: Option<[u8; 16]>,
}

impl ManifestEntry {
    /// Whether the listed file `r` still holds the content this entry records: same size,
    /// and the same ETag or — where the listing shows a content MD5 — the same MD5 (a file
    /// rewritten with identical bytes gets a new ETag but keeps its MD5).
    pub fn same_content_as(&self, r: &super::plan::RemoteFile) -> bool {
        self.size == r.size
            && (self.etag == r.etag || matches!((self.md5, r.md5), (Some(a), Some(b)) if a == b))
    }
}

/// Sorted entries; lookups by binary search.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    entries: Vec<ManifestEntry>,
}

impl Manifest {
    pub fn new(mut entries: Vec<ManifestEntry>) -> Self {
        entries.sort_unstable_by(|a, b| a.path.cmp(&b.path));
        entries.dedup_by(|a, b| a.path == b.path);
        Self { entries }
    }

    pub fn entries(&self) -> &[ManifestEntry] {
        &self.entries
    }

    pub fn get(&self, path: &str) -> Option<&ManifestEntry> {
        self.entries
            .binary_search_by(|e| (*e.path).cmp(path))
            .ok()
            .map(|i| &self.entries[i])
    }

    /// A lookup for paths asked in increasing order (as the plan's merge does): amortised
    /// O(1) per call instead of a binary search.
    pub fn cursor(&self) -> Cursor<'_> {
        Cursor {
            entries: &self.entries,
            at: std::cell::Cell::new(0),
        }
    }

    /// Parses a manifest; `None` if it is not one (wrong header or a malformed line), in
    /// which case the caller treats the remote as unknown (a full, safe re-upload).
    pub fn parse(bytes: &[u8]) -> Option<Manifest> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut lines = text.lines();
        let v2 = match lines.next()? {
            HEADER => true,
            HEADER_V1 => false,
            _ => return None,
        };
        let mut entries = Vec::new();
        for line in lines {
            if line.is_empty() {
                continue;
            }
            entries.push(parse_entry(line, v2)?);
        }
        Some(Manifest::new(entries))
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = String::with_capacity(64 + self.entries.len() * 120);
        out.push_str(HEADER);
        out.push('\n');
        for e in &self.entries {
            out.push_str(&entry_line(e));
        }
        out.into_bytes()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One entry as a line, newline included (shared with the local journal).
pub(crate) fn entry_line(e: &ManifestEntry) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        hex(&e.sha256),
        e.size,
        e.etag,
        e.md5.map_or_else(|| "-".to_string(), |m| hex_bytes(&m)),
        escape_path(&e.path)
    )
}

/// One entry line (shared with the local journal, which uses the same line format).
pub(crate) fn parse_entry(line: &str, with_md5: bool) -> Option<ManifestEntry> {
    let mut f = line.splitn(if with_md5 { 5 } else { 4 }, '\t');
    let sha256 = unhex(f.next()?)?;
    let size = f.next()?.parse().ok()?;
    let etag = Etag::parse(f.next()?);
    let md5 = if with_md5 {
        match f.next()? {
            "-" => None,
            m => Some(unhex16(m)?),
        }
    } else {
        None
    };
    let path = unescape_path(f.next()?)?.into_boxed_str();
    Some(ManifestEntry {
        path,
        sha256,
        size,
        etag,
        md5,
    })
}

fn hex_bytes(b: &[u8; 16]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex16(s: &str) -> Option<[u8; 16]> {
    if s.len() != 32 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// See [`Manifest::cursor`]. Falls back to a binary search when asked out of order.
pub struct Cursor<'a> {
    entries: &'a [ManifestEntry],
    at: std::cell::Cell<usize>,
}

impl<'a> Cursor<'a> {
    pub fn get(&self, path: &str) -> Option<&'a ManifestEntry> {
        let mut i = self.at.get();
        if self.entries.get(i).is_some_and(|e| &*e.path > path) {
            i = self.entries.partition_point(|e| &*e.path < path);
        }
        while self.entries.get(i).is_some_and(|e| &*e.path < path) {
            i += 1;
        }
        self.at.set(i);
        self.entries.get(i).filter(|e| &*e.path == path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compact_and_round_trip() {
        assert_eq!(
            Etag::parse("0x8DB147E4B6CE654"),
            Etag::Hex(0x8DB147E4B6CE654)
        );
        for s in ["0x8DB147E4B6CE654", "0x08DB", "0x8db", "abc", "\"q\"", "0x"] {
            assert_eq!(Etag::parse(s).to_string(), s);
        }
        assert_ne!(Etag::parse("0x08DB"), Etag::parse("0x8DB"));
    }

    #[test]
    fn round_trip_sorted_with_odd_names() {
        let m = Manifest::new(vec![
            ManifestEntry {
                path: "z\tname".into(),
                sha256: [2; 32],
                size: 5,
                etag: Etag::parse("0x1"),
                md5: Some([9; 16]),
            },
            ManifestEntry {
                path: "a/b c+%.py".into(),
                sha256: [1; 32],
                size: 0,
                etag: Etag::parse("weird-etag"),
                md5: None,
            },
        ]);
        let back = Manifest::parse(&m.to_bytes()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.entries()[0].path.as_ref(), "a/b c+%.py");
        assert_eq!(back.get("z\tname").unwrap().size, 5);
        let c = back.cursor();
        assert!(c.get("a/b c+%.py").is_some());
        assert!(c.get("b").is_none());
        assert_eq!(c.get("z\tname").unwrap().size, 5);
        assert!(c.get("a/b c+%.py").is_some(), "out of order still works");
        assert!(back.get("nope").is_none());
    }

    #[test]
    fn version_1_manifests_are_still_read() {
        let line = format!("{}\t3\t0x8DB\ta b.py\n", "ab".repeat(32));
        let m = Manifest::parse(format!("fabric-remote-manifest v1\n{line}").as_bytes()).unwrap();
        let e = m.get("a b.py").unwrap();
        assert_eq!((e.size, e.md5), (3, None));
        assert_eq!(e.etag, Etag::parse("0x8DB"));
    }

    #[test]
    fn a_new_etag_with_the_same_content_md5_is_the_same_content() {
        use super::super::plan::RemoteFile;
        let entry = ManifestEntry {
            path: "a".into(),
            sha256: [1; 32],
            size: 3,
            etag: Etag::parse("0x1"),
            md5: Some([7; 16]),
        };
        let listed = |etag: &str, md5: Option<[u8; 16]>, size: u64| RemoteFile {
            path: "a".into(),
            size,
            etag: Etag::parse(etag),
            md5,
        };
        assert!(entry.same_content_as(&listed("0x1", None, 3)));
        assert!(
            entry.same_content_as(&listed("0x2", Some([7; 16]), 3)),
            "rewritten, same bytes"
        );
        assert!(
            !entry.same_content_as(&listed("0x2", Some([8; 16]), 3)),
            "new bytes"
        );
        assert!(
            !entry.same_content_as(&listed("0x2", None, 3)),
            "no MD5: the ETag decides"
        );
        assert!(
            !entry.same_content_as(&listed("0x1", Some([7; 16]), 4)),
            "size differs"
        );
    }

    #[test]
    fn foreign_or_broken_manifests_are_rejected() {
        assert!(Manifest::parse(b"hello").is_none());
        assert!(Manifest::parse(b"fabric-remote-manifest v1\nnot\ta\tline").is_none());
        assert!(Manifest::parse(b"fabric-remote-manifest v2\nnot\ta\tline\tx").is_none());
        assert!(Manifest::parse(&[0xff, 0xfe]).is_none());
        assert!(
            Manifest::parse(b"fabric-remote-manifest v2\n")
                .unwrap()
                .is_empty()
        );
    }
}
