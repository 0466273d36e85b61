//! The upload journal: every file whose upload was committed, appended to a local file the
//! moment it lands, so that a run killed at any point (`kill -9` included) is resumed by
//! the next one without sending those files again.
//!
//! One journal per remote root, in the cache directory, next to the hash cache. Each line is
//! a manifest entry (sha256, size, ETag from the committing request, path) written with one
//! `write` call, so a kill leaves at most one torn last line, which is ignored. Entries are
//! only trusted the way manifest entries are: when the listing still shows that size and
//! ETag. The journal is emptied once a manifest holding its entries has been written.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::manifest::{self, ManifestEntry};

const HEADER: &str = "fabric-remote-journal v1";

/// An open journal (appending), or a disabled one when there is no cache directory.
#[derive(Debug, Default)]
pub struct Journal {
    path: Option<PathBuf>,
    file: Option<std::fs::File>,
}

impl Journal {
    /// The entries a previous run journaled at `path` (none if there is no journal).
    pub fn load(path: Option<&Path>) -> Vec<ManifestEntry> {
        let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
            return Vec::new();
        };
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Vec::new();
        }
        lines
            .filter_map(|l| manifest::parse_entry(l, true))
            .collect()
    }

    /// Opens the journal at `path` for appending (creating it with its header).
    pub fn open(path: Option<&Path>) -> std::io::Result<Journal> {
        let Some(path) = path else {
            return Ok(Journal::default());
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            file.write_all(format!("{HEADER}\n").as_bytes())?;
        } else if !ends_with_newline(path, len) {
            // A kill tore the last line: end it, so the next record starts on its own line.
            file.write_all(b"\n")?;
        }
        Ok(Journal {
            path: Some(path.to_path_buf()),
            file: Some(file),
        })
    }

    /// Appends one committed upload (one `write` call: it survives a kill of this process).
    pub fn record(&mut self, entry: &ManifestEntry) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.write_all(manifest::entry_line(entry).as_bytes()),
            None => Ok(()),
        }
    }

    /// Empties the journal: a manifest now holds everything it recorded.
    pub fn reset(&mut self) -> std::io::Result<()> {
        if let Some(file) = &mut self.file {
            file.set_len(0)?;
            file.write_all(format!("{HEADER}\n").as_bytes())?;
        }
        Ok(())
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

fn ends_with_newline(path: &Path, len: u64) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let mut last = [0u8; 1];
    std::fs::File::open(path)
        .and_then(|mut f| {
            f.seek(SeekFrom::Start(len - 1))?;
            f.read_exact(&mut last)
        })
        .is_ok_and(|()| last[0] == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::manifest::Etag;

    fn entry(path: &str, n: u8) -> ManifestEntry {
        ManifestEntry {
            path: path.into(),
            sha256: [n; 32],
            size: n as u64,
            etag: Etag::parse(&format!("0x{n}")),
            md5: None,
        }
    }

    #[test]
    fn records_survive_a_reopen_and_a_torn_last_line_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.tsv");
        let mut j = Journal::open(Some(&path)).unwrap();
        j.record(&entry("a b", 1)).unwrap();
        j.record(&entry("c", 2)).unwrap();
        drop(j);
        // A kill in the middle of a write leaves half a line.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"0303030303").unwrap();
        let back = Journal::load(Some(&path));
        assert_eq!(back, vec![entry("a b", 1), entry("c", 2)]);

        let mut j = Journal::open(Some(&path)).unwrap();
        j.record(&entry("e", 5)).unwrap();
        assert_eq!(
            Journal::load(Some(&path)),
            vec![entry("a b", 1), entry("c", 2), entry("e", 5)],
            "the record after a torn line starts on its own line"
        );
        j.reset().unwrap();
        j.record(&entry("d", 4)).unwrap();
        assert_eq!(Journal::load(Some(&path)), vec![entry("d", 4)]);
        assert!(Journal::load(None).is_empty());
    }
}
