//! Defines [`Store`]: files on disk plus the metadata the real service keeps about them.
//!
//! Content lives as plain files under `DATA/<workspace>/<item>.Lakehouse/...`, so a person
//! (or a job run by the Fabric side) can read and write them directly; the disk is the
//! truth for what exists and how long it is. Beside that tree, `DATA/.emulator/` keeps
//! ETags, creation times and staged (appended but unflushed) data: an append-only journal
//! (`meta.jsonl`, compacted at start) and one file per staged upload (`staged/`).
//! A file whose size or mtime no longer matches its record was changed behind our back
//! and gets a fresh ETag. Everything here is synchronous; the HTTP layer calls it from
//! `spawn_blocking`. Mutations are serialised by one lock; reads take none.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::{Result, ServiceError};
use crate::state::lock;
use crate::util;

/// What the service knows about one path besides its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub etag: u64,
    /// Windows FILETIME ticks.
    pub created: u64,
    /// Last-Modified, Unix nanoseconds.
    pub modified_ns: u64,
    pub len: u64,
    /// The on-disk mtime we saw right after our last write; a mismatch means an
    /// outside edit.
    pub disk_mtime_ns: u64,
    pub is_dir: bool,
}

impl Meta {
    /// `0x8DB147E4B6CE654`, as in listings; headers quote it.
    pub fn etag(&self) -> String {
        format!("0x{:X}", self.etag)
    }

    pub fn quoted_etag(&self) -> String {
        format!("\"0x{:X}\"", self.etag)
    }
}

/// One journal line. `d` marks a deletion, `sb` the start of a staged upload at a base
/// length, `su` its end.
#[derive(Serialize, Deserialize, Default)]
struct Record {
    k: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    m: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    l: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dm: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    dir: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    d: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sb: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    su: bool,
}

/// Appended bytes not yet flushed: they cover `[base, end)` of the file, where `base` is
/// the committed length when staging began.
#[derive(Debug, Clone, Copy)]
struct Staged {
    base: u64,
    end: u64,
}

struct Inner {
    metas: HashMap<String, Meta>,
    staged: HashMap<String, Staged>,
    last_etag: u64,
    journal: File,
    pending: String,
}

/// A directory's children, sorted by name bytes, with the directory mtime they were
/// read at. Trusted only when that mtime is old enough that a same-tick change cannot
/// hide behind it.
struct CachedDir {
    mtime: SystemTime,
    stable: bool,
    children: Arc<Vec<(String, bool)>>,
}

pub struct Store {
    data_dir: PathBuf,
    stage_dir: PathBuf,
    write_lock: Mutex<()>,
    inner: Mutex<Inner>,
    dir_cache: Mutex<HashMap<PathBuf, CachedDir>>,
}

/// One listed path.
pub struct ListEntry {
    pub name: String,
    pub meta: Meta,
}

/// A readable path: its metadata, and an open handle for files.
pub struct Opened {
    pub meta: Meta,
    pub file: Option<File>,
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

impl Inner {
    fn write_record(&mut self, r: &Record) {
        if let Ok(line) = serde_json::to_string(r) {
            self.pending.push_str(&line);
            self.pending.push('\n');
        }
    }

    fn set_meta(&mut self, key: &str, m: Meta) {
        self.write_record(&Record {
            k: key.to_owned(),
            e: Some(m.etag),
            c: Some(m.created),
            m: Some(m.modified_ns),
            l: Some(m.len),
            dm: Some(m.disk_mtime_ns),
            dir: m.is_dir,
            ..Record::default()
        });
        self.metas.insert(key.to_owned(), m);
    }

    fn remove_meta(&mut self, key: &str) {
        if self.metas.remove(key).is_some() {
            self.write_record(&Record {
                k: key.to_owned(),
                d: true,
                ..Record::default()
            });
        }
    }

    /// A fresh ETag: the current FILETIME folded under the `0x8D…` prefix real ETags
    /// carry, strictly increasing.
    fn next_etag(&mut self) -> u64 {
        let ticks = util::filetime_from_nanos(util::now_nanos()) & 0x000F_FFFF_FFFF_FFFF;
        let candidate = 0x08D0_0000_0000_0000u64 | ticks;
        self.last_etag = candidate.max(self.last_etag + 1);
        self.last_etag
    }

    fn flush_journal(&mut self) {
        if !self.pending.is_empty() {
            // A lost journal line only costs a fresh ETag after a restart.
            let _ = self.journal.write_all(self.pending.as_bytes());
            self.pending.clear();
        }
    }
}

impl Store {
    pub fn open(data_dir: &Path) -> io::Result<Store> {
        let meta_dir = data_dir.join(".emulator");
        let stage_dir = meta_dir.join("staged");
        fs::create_dir_all(&stage_dir)?;
        let journal_path = meta_dir.join("meta.jsonl");
        let mut metas = HashMap::new();
        let mut staged = HashMap::new();
        let mut last_etag = 0;
        if let Ok(text) = fs::read_to_string(&journal_path) {
            for line in text.lines() {
                let Ok(r) = serde_json::from_str::<Record>(line) else {
                    continue;
                };
                if r.d {
                    metas.remove(&r.k);
                    staged.remove(&r.k);
                } else if let Some(base) = r.sb {
                    staged.insert(r.k, Staged { base, end: base });
                } else if r.su {
                    staged.remove(&r.k);
                } else if let (Some(e), Some(c), Some(m), Some(l), Some(dm)) =
                    (r.e, r.c, r.m, r.l, r.dm)
                {
                    last_etag = last_etag.max(e);
                    metas.insert(
                        r.k,
                        Meta {
                            etag: e,
                            created: c,
                            modified_ns: m,
                            len: l,
                            disk_mtime_ns: dm,
                            is_dir: r.dir,
                        },
                    );
                }
            }
        }
        // Staged data: its extent is the staging file's length; drop what lost its file.
        staged.retain(
            |k: &String, s: &mut Staged| match fs::metadata(stage_file(&stage_dir, k)) {
                Ok(md) => {
                    s.end = s.base + md.len();
                    true
                }
                Err(_) => false,
            },
        );
        // Compact: rewrite the journal with what still exists.
        let tmp = meta_dir.join("meta.jsonl.tmp");
        {
            let mut out = io::BufWriter::new(File::create(&tmp)?);
            for (k, m) in &metas {
                if fs::symlink_metadata(data_dir.join(k)).is_err() {
                    continue;
                }
                let r = Record {
                    k: k.clone(),
                    e: Some(m.etag),
                    c: Some(m.created),
                    m: Some(m.modified_ns),
                    l: Some(m.len),
                    dm: Some(m.disk_mtime_ns),
                    dir: m.is_dir,
                    ..Record::default()
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&r).map_err(io::Error::other)?
                )?;
            }
            for (k, s) in &staged {
                let r = Record {
                    k: k.clone(),
                    sb: Some(s.base),
                    ..Record::default()
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string(&r).map_err(io::Error::other)?
                )?;
            }
            out.flush()?;
        }
        fs::rename(&tmp, &journal_path)?;
        // Orphaned staging files (no record) are garbage.
        let live: HashSet<PathBuf> = staged.keys().map(|k| stage_file(&stage_dir, k)).collect();
        for entry in fs::read_dir(&stage_dir)?.flatten() {
            if !live.contains(&entry.path()) {
                let _ = fs::remove_file(entry.path());
            }
        }
        let journal = OpenOptions::new().append(true).open(&journal_path)?;
        Ok(Store {
            data_dir: data_dir.to_owned(),
            stage_dir,
            write_lock: Mutex::new(()),
            inner: Mutex::new(Inner {
                metas,
                staged,
                last_etag,
                journal,
                pending: String::new(),
            }),
            dir_cache: Mutex::new(HashMap::new()),
        })
    }

    /// The key of `path` in metadata and lease tables: its path below the data dir.
    pub(crate) fn key(&self, path: &Path) -> String {
        path.strip_prefix(&self.data_dir)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    }

    /// The metadata of an existing path, checked against the disk and created or
    /// refreshed when the disk disagrees (a file written by someone else).
    fn meta_for(&self, inner: &mut Inner, key: &str, md: &fs::Metadata) -> Meta {
        let disk_mtime = md.modified().map(util::nanos_since_epoch).unwrap_or(0);
        let is_dir = md.is_dir();
        let len = if is_dir { 0 } else { md.len() };
        let known = inner.metas.get(key).copied().filter(|m| m.is_dir == is_dir);
        if let Some(m) = known
            && (is_dir || (m.len == len && m.disk_mtime_ns == disk_mtime))
        {
            return m;
        }
        let created = known.map(|m| m.created).unwrap_or_else(|| {
            util::filetime_from_nanos(
                md.created()
                    .map(util::nanos_since_epoch)
                    .unwrap_or(disk_mtime),
            )
        });
        let meta = Meta {
            etag: inner.next_etag(),
            created,
            modified_ns: disk_mtime,
            len,
            disk_mtime_ns: disk_mtime,
            is_dir,
        };
        inner.set_meta(key, meta);
        meta
    }

    /// Records our own write of `path`: new ETag, Last-Modified now.
    fn touch(&self, inner: &mut Inner, path: &Path, keep_created: bool) -> Result<Meta> {
        let key = self.key(path);
        let md = fs::metadata(path)?;
        let now = util::now_nanos();
        let created = match inner.metas.get(&key) {
            Some(m) if keep_created => m.created,
            _ => util::filetime_from_nanos(now),
        };
        let is_dir = md.is_dir();
        let meta = Meta {
            etag: inner.next_etag(),
            created,
            modified_ns: now,
            len: if is_dir { 0 } else { md.len() },
            disk_mtime_ns: md.modified().map(util::nanos_since_epoch).unwrap_or(0),
            is_dir,
        };
        inner.set_meta(&key, meta);
        Ok(meta)
    }

    fn drop_staged(&self, inner: &mut Inner, key: &str) {
        if inner.staged.remove(key).is_some() {
            let _ = fs::remove_file(stage_file(&self.stage_dir, key));
            inner.write_record(&Record {
                k: key.to_owned(),
                su: true,
                ..Record::default()
            });
        }
    }

    /// Metadata of an existing path.
    pub fn stat(&self, path: &Path) -> Result<Meta> {
        let md = match fs::metadata(path) {
            Ok(md) => md,
            Err(e) if is_missing(&e) => return Err(ServiceError::path_not_found()),
            Err(e) => return Err(e.into()),
        };
        let key = self.key(path);
        let mut inner = lock(&self.inner);
        let m = self.meta_for(&mut inner, &key, &md);
        inner.flush_journal();
        Ok(m)
    }

    /// Opens a path for reading.
    pub fn open_read(&self, path: &Path) -> Result<Opened> {
        let meta = self.stat(path)?;
        if meta.is_dir {
            return Ok(Opened { meta, file: None });
        }
        match File::open(path) {
            Ok(f) => Ok(Opened {
                meta,
                file: Some(f),
            }),
            Err(e) if is_missing(&e) => Err(ServiceError::path_not_found()),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates the missing ancestors of `path`; a file in the way is a conflict.
    fn ensure_parents(&self, inner: &mut Inner, path: &Path) -> Result<()> {
        let mut missing = Vec::new();
        let mut p = path.parent();
        while let Some(dir) = p {
            match fs::metadata(dir) {
                Ok(md) if md.is_dir() => break,
                Ok(_) => return Err(ServiceError::path_conflict()),
                Err(e) if is_missing(&e) => {
                    missing.push(dir.to_path_buf());
                    p = dir.parent();
                }
                Err(e) => return Err(e.into()),
            }
        }
        for dir in missing.iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => {
                    self.touch(inner, dir, false)?;
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// `PUT ?resource=file`: creates or truncates a file.
    pub fn create_file(&self, path: &Path, if_none_match: bool) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            match fs::metadata(path) {
                Ok(_) if if_none_match => return Err(ServiceError::path_already_exists()),
                Ok(md) if md.is_dir() => return Err(ServiceError::path_conflict()),
                Ok(_) => {}
                Err(e) if is_missing(&e) => self.ensure_parents(&mut inner, path)?,
                Err(e) => return Err(e.into()),
            }
            File::create(path)?;
            let key = self.key(path);
            self.drop_staged(&mut inner, &key);
            self.touch(&mut inner, path, false)
        })();
        inner.flush_journal();
        res
    }

    /// `PUT ?resource=directory`: idempotent unless `If-None-Match: *`.
    pub fn create_dir(&self, path: &Path, if_none_match: bool) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            match fs::metadata(path) {
                Ok(_) if if_none_match => return Err(ServiceError::path_already_exists()),
                Ok(md) if md.is_dir() => {
                    let key = self.key(path);
                    return Ok(self.meta_for(&mut inner, &key, &md));
                }
                Ok(_) => return Err(ServiceError::path_conflict()),
                Err(e) if is_missing(&e) => self.ensure_parents(&mut inner, path)?,
                Err(e) => return Err(e.into()),
            }
            match fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            self.touch(&mut inner, path, false)
        })();
        inner.flush_journal();
        res
    }

    /// The committed length of an existing file and its staged extent.
    fn file_state(&self, inner: &mut Inner, path: &Path, key: &str) -> Result<(u64, u64)> {
        let md = match fs::metadata(path) {
            Ok(md) => md,
            Err(e) if is_missing(&e) => return Err(ServiceError::path_not_found()),
            Err(e) => return Err(e.into()),
        };
        if md.is_dir() {
            return Err(ServiceError::path_conflict());
        }
        let committed = md.len();
        let end = match inner.staged.get(key).copied() {
            Some(s) if s.base == committed => s.end,
            Some(_) => {
                // The file changed length behind our back: staged data no longer fits.
                self.drop_staged(inner, key);
                committed
            }
            None => committed,
        };
        Ok((committed, end))
    }

    /// `PATCH ?action=append&position=P[&flush=true]`.
    ///
    /// Staged data must stay contiguous: a position past the staged end is refused.
    /// A position inside staged data overwrites it (a retried append lands on the same
    /// bytes). A position inside committed data is accepted only when the bytes there
    /// are identical, so an append+flush retried after its response was lost succeeds
    /// (UNCONFIRMED on the real service; this is the idempotent reading).
    pub fn append(
        &self,
        path: &Path,
        position: u64,
        data: &[u8],
        flush: bool,
    ) -> Result<Option<Meta>> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let key = self.key(path);
            let (committed, staged_end) = self.file_state(&mut inner, path, &key)?;
            if position > staged_end {
                return Err(ServiceError::invalid_query(format!(
                    "position={position} is beyond the end of the uploaded data ({staged_end})."
                )));
            }
            let end = position + data.len() as u64;
            if position < committed {
                let overlap = (end.min(committed) - position) as usize;
                let mut existing = vec![0u8; overlap];
                File::open(path)?.read_exact_at(&mut existing, position)?;
                if existing != data[..overlap] {
                    return Err(ServiceError::invalid_query(format!(
                        "position={position} is inside the committed data ({committed} bytes) and the bytes differ."
                    )));
                }
            }
            if end > committed {
                let start = position.max(committed);
                let slice = &data[(start - position) as usize..];
                if !inner.staged.contains_key(&key) {
                    inner.staged.insert(
                        key.clone(),
                        Staged {
                            base: committed,
                            end: committed,
                        },
                    );
                    inner.write_record(&Record {
                        k: key.clone(),
                        sb: Some(committed),
                        ..Record::default()
                    });
                    let _ = fs::remove_file(stage_file(&self.stage_dir, &key));
                }
                let f = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(stage_file(&self.stage_dir, &key))?;
                f.write_all_at(slice, start - committed)?;
                if let Some(s) = inner.staged.get_mut(&key) {
                    s.end = s.end.max(end);
                }
            }
            if flush {
                self.flush_locked(&mut inner, path, &key, end).map(Some)
            } else {
                Ok(None)
            }
        })();
        inner.flush_journal();
        res
    }

    /// `PATCH ?action=flush&position=N`: N must be the contiguous length of the data.
    pub fn flush(&self, path: &Path, position: u64) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let key = self.key(path);
        let res = self.flush_locked(&mut inner, path, &key, position);
        inner.flush_journal();
        res
    }

    fn flush_locked(
        &self,
        inner: &mut Inner,
        path: &Path,
        key: &str,
        position: u64,
    ) -> Result<Meta> {
        let (committed, end) = self.file_state(inner, path, key)?;
        if position != end {
            return Err(ServiceError::invalid_flush_position());
        }
        if end > committed {
            let mut src = File::open(stage_file(&self.stage_dir, key))?;
            let mut dst = OpenOptions::new().write(true).open(path)?;
            dst.seek(SeekFrom::Start(committed))?;
            io::copy(&mut (&mut src).take(end - committed), &mut dst)?;
            dst.set_len(end)?;
        }
        self.drop_staged(inner, key);
        self.touch(inner, path, true)
    }

    /// `DELETE`. For a directory with `recursive`, removes at most `page` entries per
    /// call (deepest first) and answers `true` while more remain; the call that finds
    /// at most `page` entries left removes them and the directory itself.
    pub fn delete(&self, path: &Path, recursive: bool, page: usize) -> Result<bool> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let md = match fs::metadata(path) {
                Ok(md) => md,
                Err(e) if is_missing(&e) => return Err(ServiceError::path_not_found()),
                Err(e) => return Err(e.into()),
            };
            if !md.is_dir() {
                fs::remove_file(path)?;
                let key = self.key(path);
                self.drop_staged(&mut inner, &key);
                inner.remove_meta(&key);
                return Ok(false);
            }
            if !recursive {
                if fs::read_dir(path)?.next().is_some() {
                    return Err(ServiceError::directory_not_empty());
                }
                fs::remove_dir(path)?;
                inner.remove_meta(&self.key(path));
                return Ok(false);
            }
            let mut batch = Vec::new();
            collect_post_order(path, &mut batch, page + 1)?;
            let more = batch.len() > page;
            batch.truncate(page);
            for (p, is_dir) in &batch {
                let key = self.key(p);
                let removed = if *is_dir {
                    fs::remove_dir(p)
                } else {
                    fs::remove_file(p)
                };
                match removed {
                    Ok(()) => {}
                    Err(e) if is_missing(&e) => {}
                    // Something was added meanwhile; the next call will see it.
                    Err(_) if *is_dir => continue,
                    Err(e) => return Err(e.into()),
                }
                self.drop_staged(&mut inner, &key);
                inner.remove_meta(&key);
            }
            if more {
                return Ok(true);
            }
            match fs::remove_dir(path) {
                Ok(()) => {
                    inner.remove_meta(&self.key(path));
                    Ok(false)
                }
                Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(true),
                Err(e) if is_missing(&e) => Ok(false),
                Err(e) => Err(e.into()),
            }
        })();
        inner.flush_journal();
        res
    }

    /// The sorted children of `dir` (name, is-directory); empty when it is gone.
    fn children(&self, dir: &Path) -> Arc<Vec<(String, bool)>> {
        let Ok(md) = fs::metadata(dir) else {
            lock(&self.dir_cache).remove(dir);
            return Arc::new(Vec::new());
        };
        let mtime = md.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if let Some(c) = lock(&self.dir_cache).get(dir)
            && c.stable
            && c.mtime == mtime
        {
            return c.children.clone();
        }
        let mut children = Vec::new();
        if let Ok(rd) = fs::read_dir(dir) {
            for entry in rd.flatten() {
                let Ok(name) = entry.file_name().into_string() else {
                    continue;
                };
                let is_dir = match entry.file_type() {
                    Ok(t) if t.is_symlink() => entry.path().is_dir(),
                    Ok(t) => t.is_dir(),
                    Err(_) => continue,
                };
                children.push((name, is_dir));
            }
        }
        children.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let children = Arc::new(children);
        // A directory modified within the last two seconds may change again within the
        // same timestamp tick; read it again next time.
        let stable =
            SystemTime::now().duration_since(mtime).unwrap_or_default() > Duration::from_secs(2);
        let mut cache = lock(&self.dir_cache);
        if cache.len() > 50_000 {
            cache.clear();
        }
        cache.insert(
            dir.to_path_buf(),
            CachedDir {
                mtime,
                stable,
                children: children.clone(),
            },
        );
        children
    }

    /// One page of a listing of `root`, whose entries are named `prefix/<relative path>`
    /// (or just the relative path when `prefix` is empty). Order: pre-order, each
    /// directory's children by name bytes. `after` is the relative path of the last entry
    /// of the previous page. `only` restricts the first level (the workspace root shows
    /// only its lakehouses). Returns the entries and, when more follow, the name to
    /// resume after.
    pub fn list(
        &self,
        root: &Path,
        prefix: &str,
        only: Option<&HashSet<String>>,
        recursive: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<ListEntry>, Option<String>)> {
        struct Frame {
            dir: PathBuf,
            prefix: String,
            children: Option<Arc<Vec<(String, bool)>>>,
            idx: usize,
        }
        let join = |prefix: &str, name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            }
        };
        let root_children = |this: &Self| {
            let ch = this.children(root);
            match only {
                Some(set) => Arc::new(ch.iter().filter(|c| set.contains(&c.0)).cloned().collect()),
                None => ch,
            }
        };
        let mut stack: Vec<Frame> = Vec::new();
        match after {
            None => stack.push(Frame {
                dir: root.to_owned(),
                prefix: prefix.to_owned(),
                children: Some(root_children(self)),
                idx: 0,
            }),
            Some(after) => {
                let comps: Vec<&str> = after.split('/').collect();
                let mut dir = root.to_owned();
                let mut pre = prefix.to_owned();
                for (i, comp) in comps.iter().enumerate() {
                    let ch = if i == 0 {
                        root_children(self)
                    } else {
                        self.children(&dir)
                    };
                    let (idx, found_dir) = match ch.binary_search_by(|c| c.0.as_str().cmp(comp)) {
                        Ok(p) => (p + 1, ch[p].1),
                        Err(p) => (p, false),
                    };
                    stack.push(Frame {
                        dir: dir.clone(),
                        prefix: pre.clone(),
                        children: Some(ch),
                        idx,
                    });
                    if !recursive || !found_dir {
                        break;
                    }
                    dir = dir.join(comp);
                    pre = join(&pre, comp);
                    if i + 1 == comps.len() {
                        // The last entry was a directory: its contents come next.
                        stack.push(Frame {
                            dir: dir.clone(),
                            prefix: pre.clone(),
                            children: None,
                            idx: 0,
                        });
                    }
                }
            }
        }
        // Walk one entry past the page to learn whether more follow.
        let mut found: Vec<(String, PathBuf)> = Vec::new();
        while found.len() <= limit {
            let Some(top) = stack.last_mut() else { break };
            let children = top
                .children
                .get_or_insert_with(|| self.children(&top.dir))
                .clone();
            let Some((name, is_dir)) = children.get(top.idx).cloned() else {
                stack.pop();
                continue;
            };
            top.idx += 1;
            let display = join(&top.prefix, &name);
            let path = top.dir.join(&name);
            if recursive && is_dir {
                stack.push(Frame {
                    dir: path.clone(),
                    prefix: display.clone(),
                    children: None,
                    idx: 0,
                });
            }
            found.push((display, path));
        }
        let more = found.len() > limit;
        found.truncate(limit);
        let next = if more {
            found.last().map(|f| f.0.clone())
        } else {
            None
        };
        let mut out = Vec::with_capacity(found.len());
        let mut inner = lock(&self.inner);
        for (name, path) in found {
            // Gone since the directory was read: skip it, as a live listing would.
            let Ok(md) = fs::metadata(&path) else {
                continue;
            };
            let key = self.key(&path);
            let meta = self.meta_for(&mut inner, &key, &md);
            out.push(ListEntry { name, meta });
        }
        inner.flush_journal();
        Ok((out, next))
    }
}

fn stage_file(stage_dir: &Path, key: &str) -> PathBuf {
    let a = util::hash64(11, key.as_bytes());
    let b = util::hash64(12, key.as_bytes());
    stage_dir.join(format!("{a:016x}{b:016x}.bin"))
}

/// Up to `limit` entries below `dir`, children before their directory.
fn collect_post_order(dir: &Path, out: &mut Vec<(PathBuf, bool)>, limit: usize) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        if out.len() >= limit {
            return Ok(());
        }
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            collect_post_order(&path, out, limit)?;
            if out.len() >= limit {
                return Ok(());
            }
            out.push((path, true));
        } else {
            out.push((path, false));
        }
    }
    Ok(())
}
