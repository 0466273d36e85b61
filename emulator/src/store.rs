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
use crate::ids;
use crate::lock::lock;
use crate::time;

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
/// length (`sx`: for a path that does not exist yet), `sr` its staged byte ranges, `su`
/// its end, `p` the path's properties.
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
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    sx: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sr: Option<Vec<(u64, u64)>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<Props>,
}

/// What a path carries besides its bytes: the HTTP content headers, user metadata
/// (DFS `x-ms-properties` and Blob `x-ms-meta-*` are the same set; values are kept
/// decoded) and, for a blob committed from blocks, its committed block list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Props {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_language: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_disposition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<String>,
    /// Base64 of the whole content's MD5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_md5: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<(String, String)>,
    /// Committed blocks (base64 id, size), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<(String, u64)>,
}

/// The content headers a request sets; `None` leaves a property as it was.
#[derive(Debug, Clone, Default)]
pub struct Headers {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_language: Option<String>,
    pub content_disposition: Option<String>,
    pub cache_control: Option<String>,
    pub content_md5: Option<String>,
}

impl Headers {
    pub fn apply(self, p: &mut Props) {
        let set = |dst: &mut Option<String>, v: Option<String>| {
            if v.is_some() {
                *dst = v;
            }
        };
        set(&mut p.content_type, self.content_type);
        set(&mut p.content_encoding, self.content_encoding);
        set(&mut p.content_language, self.content_language);
        set(&mut p.content_disposition, self.content_disposition);
        set(&mut p.cache_control, self.cache_control);
        set(&mut p.content_md5, self.content_md5);
    }

    /// Set Blob Properties: every content header is replaced, absent ones cleared.
    pub fn replace(self, p: &mut Props) {
        p.content_type = self.content_type;
        p.content_encoding = self.content_encoding;
        p.content_language = self.content_language;
        p.content_disposition = self.content_disposition;
        p.cache_control = self.cache_control;
        p.content_md5 = self.content_md5;
    }
}

/// How a flush treats what it commits.
#[derive(Debug, Clone, Default)]
pub struct FlushOpts {
    /// `retainUncommittedData=true`: staged data past the flush position stays staged.
    pub retain: bool,
    /// Content headers sent with the flush.
    pub headers: Headers,
}

/// Blocks as (base64 id, size), in order.
pub type Blocks = Vec<(String, u64)>;

/// A block named in Put Block List.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlockRef {
    Committed(String),
    Uncommitted(String),
    Latest(String),
}

/// Appended bytes not yet flushed, at absolute file offsets: `ranges` (sorted, merged)
/// are what the staging file holds. `base` is the committed length when staging began
/// (`None`: the path did not exist), so an outside change of the file drops them.
#[derive(Debug, Clone)]
struct Staged {
    base: Option<u64>,
    ranges: Vec<(u64, u64)>,
}

impl Staged {
    fn add(&mut self, a: u64, b: u64) {
        if a == b {
            return;
        }
        self.ranges.push((a, b));
        self.ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.ranges.len());
        for &(x, y) in &self.ranges {
            match merged.last_mut() {
                Some(last) if x <= last.1 => last.1 = last.1.max(y),
                _ => merged.push((x, y)),
            }
        }
        self.ranges = merged;
    }

    /// Whether `[a, b)` is wholly staged.
    fn covers(&self, a: u64, b: u64) -> bool {
        a >= b || self.ranges.iter().any(|&(x, y)| x <= a && b <= y)
    }
}

struct Inner {
    metas: HashMap<String, Meta>,
    props: HashMap<String, Props>,
    staged: HashMap<String, Staged>,
    /// Uncommitted blocks per blob key: (base64 id, size), latest upload last.
    blocks: HashMap<String, Vec<(String, u64)>>,
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
    block_dir: PathBuf,
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

    fn set_props(&mut self, key: &str, p: Props) {
        self.write_record(&Record {
            k: key.to_owned(),
            p: Some(p.clone()),
            ..Record::default()
        });
        if p == Props::default() {
            self.props.remove(key);
        } else {
            self.props.insert(key.to_owned(), p);
        }
    }

    /// Drops the metadata record of `key` but not its properties (rename moves them).
    fn remove_meta_keep_props(&mut self, key: &str) {
        if self.metas.remove(key).is_some() {
            self.write_record(&Record {
                k: key.to_owned(),
                d: true,
                ..Record::default()
            });
        }
    }

    fn remove_meta(&mut self, key: &str) {
        self.props.remove(key);
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
        let ticks = time::filetime_from_nanos(time::now_nanos()) & 0x000F_FFFF_FFFF_FFFF;
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
        let block_dir = meta_dir.join("blocks");
        // Uncommitted blocks do not survive a restart.
        let _ = fs::remove_dir_all(&block_dir);
        fs::create_dir_all(&block_dir)?;
        let mut metas = HashMap::new();
        let mut props: HashMap<String, Props> = HashMap::new();
        let mut staged: HashMap<String, Staged> = HashMap::new();
        let mut last_etag = 0;
        if let Ok(text) = fs::read_to_string(&journal_path) {
            for line in text.lines() {
                let Ok(r) = serde_json::from_str::<Record>(line) else {
                    continue;
                };
                if r.d {
                    metas.remove(&r.k);
                    props.remove(&r.k);
                    staged.remove(&r.k);
                } else if let Some(p) = r.p {
                    props.insert(r.k, p);
                } else if let Some(ranges) = r.sr {
                    if let Some(s) = staged.get_mut(&r.k) {
                        s.ranges = ranges;
                    }
                } else if r.sb.is_some() || r.sx {
                    staged.insert(
                        r.k,
                        Staged {
                            base: r.sb,
                            ranges: Vec::new(),
                        },
                    );
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
        // Staged data whose staging file is gone (or holds nothing) is dropped.
        staged.retain(|k: &String, s: &mut Staged| {
            !s.ranges.is_empty() && fs::metadata(stage_file(&stage_dir, k)).is_ok()
        });
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
            for (k, p) in &props {
                if metas.contains_key(k) {
                    let r = Record {
                        k: k.clone(),
                        p: Some(p.clone()),
                        ..Record::default()
                    };
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&r).map_err(io::Error::other)?
                    )?;
                }
            }
            for (k, s) in &staged {
                for r in [
                    Record {
                        k: k.clone(),
                        sb: s.base,
                        sx: s.base.is_none(),
                        ..Record::default()
                    },
                    Record {
                        k: k.clone(),
                        sr: Some(s.ranges.clone()),
                        ..Record::default()
                    },
                ] {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string(&r).map_err(io::Error::other)?
                    )?;
                }
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
        props.retain(|k, _| metas.contains_key(k));
        Ok(Store {
            data_dir: data_dir.to_owned(),
            stage_dir,
            block_dir,
            write_lock: Mutex::new(()),
            inner: Mutex::new(Inner {
                metas,
                props,
                staged,
                blocks: HashMap::new(),
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
        let disk_mtime = md.modified().map(time::nanos_since_epoch).unwrap_or(0);
        let is_dir = md.is_dir();
        let len = if is_dir { 0 } else { md.len() };
        let known = inner.metas.get(key).copied().filter(|m| m.is_dir == is_dir);
        if let Some(m) = known
            && (is_dir || (m.len == len && m.disk_mtime_ns == disk_mtime))
        {
            return m;
        }
        let created = known.map(|m| m.created).unwrap_or_else(|| {
            time::filetime_from_nanos(
                md.created()
                    .map(time::nanos_since_epoch)
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
        let now = time::now_nanos();
        let created = match inner.metas.get(&key) {
            Some(m) if keep_created => m.created,
            _ => time::filetime_from_nanos(now),
        };
        let is_dir = md.is_dir();
        let meta = Meta {
            etag: inner.next_etag(),
            created,
            modified_ns: now,
            len: if is_dir { 0 } else { md.len() },
            disk_mtime_ns: md.modified().map(time::nanos_since_epoch).unwrap_or(0),
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

    /// `PUT ?resource=file`: creates or truncates a file, with `props` as its properties.
    pub fn create_file(&self, path: &Path, if_none_match: bool, props: Props) -> Result<Meta> {
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
            inner.set_props(&key, props);
            self.touch(&mut inner, path, false)
        })();
        inner.flush_journal();
        res
    }

    /// `PUT ?resource=directory`: idempotent unless `If-None-Match: *`.
    pub fn create_dir(&self, path: &Path, if_none_match: bool, props: Props) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let key = self.key(path);
            match fs::metadata(path) {
                Ok(_) if if_none_match => return Err(ServiceError::path_already_exists()),
                Ok(md) if md.is_dir() => return Ok(self.meta_for(&mut inner, &key, &md)),
                Ok(_) => return Err(ServiceError::path_conflict()),
                Err(e) if is_missing(&e) => self.ensure_parents(&mut inner, path)?,
                Err(e) => return Err(e.into()),
            }
            match fs::create_dir(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            inner.set_props(&key, props);
            self.touch(&mut inner, path, false)
        })();
        inner.flush_journal();
        res
    }

    /// The committed length of a file (`None` when it does not exist) and its staged
    /// data, dropped first when the file changed behind our back.
    fn file_state(&self, inner: &mut Inner, path: &Path, key: &str) -> Result<Option<u64>> {
        let committed = match fs::metadata(path) {
            Ok(md) if md.is_dir() => return Err(ServiceError::path_conflict()),
            Ok(md) => Some(md.len()),
            Err(e) if is_missing(&e) => None,
            Err(e) => return Err(e.into()),
        };
        if let Some(s) = inner.staged.get(key)
            && s.base != committed
        {
            self.drop_staged(inner, key);
        }
        Ok(committed)
    }

    /// `PATCH ?action=append&position=P[&flush=true]`.
    ///
    /// Appends land at any position, in any order and in parallel; nothing is visible
    /// until a flush, which needs the data contiguous. An append to a path that does
    /// not exist yet is staged too, and its flush creates the file: the DataLake SDK's
    /// `upload_data(overwrite=False)` sends no create and relies on this (the service's
    /// exact rules for such appends are UNCONFIRMED).
    pub fn append(
        &self,
        path: &Path,
        position: u64,
        data: &[u8],
        flush: Option<FlushOpts>,
    ) -> Result<Option<Meta>> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let key = self.key(path);
            let committed = self.file_state(&mut inner, path, &key)?;
            let end = position + data.len() as u64;
            if !data.is_empty() {
                if !inner.staged.contains_key(&key) {
                    inner.staged.insert(
                        key.clone(),
                        Staged {
                            base: committed,
                            ranges: Vec::new(),
                        },
                    );
                    inner.write_record(&Record {
                        k: key.clone(),
                        sb: committed,
                        sx: committed.is_none(),
                        ..Record::default()
                    });
                    let _ = fs::remove_file(stage_file(&self.stage_dir, &key));
                }
                let f = OpenOptions::new()
                    .create(true)
                    .write(true)
                    .truncate(false)
                    .open(stage_file(&self.stage_dir, &key))?;
                f.write_all_at(data, position)?;
                if let Some(s) = inner.staged.get_mut(&key) {
                    s.add(position, end);
                    let ranges = s.ranges.clone();
                    inner.write_record(&Record {
                        k: key.clone(),
                        sr: Some(ranges),
                        ..Record::default()
                    });
                }
            }
            match flush {
                Some(opts) => self
                    .flush_locked(&mut inner, path, &key, end, opts)
                    .map(Some),
                None => Ok(None),
            }
        })();
        inner.flush_journal();
        res
    }

    /// `PATCH ?action=flush&position=N`: commits the staged data up to N, which must
    /// cover everything between the committed length and N.
    pub fn flush(&self, path: &Path, position: u64, opts: FlushOpts) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let key = self.key(path);
        let res = self.flush_locked(&mut inner, path, &key, position, opts);
        inner.flush_journal();
        res
    }

    fn flush_locked(
        &self,
        inner: &mut Inner,
        path: &Path,
        key: &str,
        position: u64,
        opts: FlushOpts,
    ) -> Result<Meta> {
        let committed = self.file_state(inner, path, key)?;
        let staged = inner.staged.get(key).cloned();
        if committed.is_none() && staged.is_none() {
            return Err(ServiceError::path_not_found());
        }
        let base = committed.unwrap_or(0);
        let staged = staged.unwrap_or(Staged {
            base: committed,
            ranges: Vec::new(),
        });
        if position < base || !staged.covers(base, position) {
            return Err(ServiceError::invalid_flush_position());
        }
        let stage_path = stage_file(&self.stage_dir, key);
        // Staged bytes below the committed length (a retried append) must repeat what
        // is there; anything else cannot be flushed.
        for &(a, b) in &staged.ranges {
            if a < base {
                let hi = b.min(base);
                let mut old = vec![0u8; (hi - a) as usize];
                let mut new = vec![0u8; (hi - a) as usize];
                File::open(path)?.read_exact_at(&mut old, a)?;
                File::open(&stage_path)?.read_exact_at(&mut new, a)?;
                if old != new {
                    return Err(ServiceError::invalid_flush_position());
                }
            }
        }
        if committed.is_none() {
            self.ensure_parents(inner, path)?;
            File::create(path)?;
        }
        if position > base {
            let mut src = File::open(&stage_path)?;
            src.seek(SeekFrom::Start(base))?;
            let mut dst = OpenOptions::new().write(true).open(path)?;
            dst.seek(SeekFrom::Start(base))?;
            io::copy(&mut (&mut src).take(position - base), &mut dst)?;
            dst.set_len(position)?;
        }
        let rest: Vec<(u64, u64)> = staged
            .ranges
            .iter()
            .filter(|r| r.1 > position)
            .map(|&(a, b)| (a.max(position), b))
            .collect();
        self.drop_staged(inner, key);
        if opts.retain && !rest.is_empty() {
            // Keep the data past the flush position staged, over the new length.
            let tmp = stage_path.with_extension("keep");
            fs::rename(&stage_path, &tmp)?;
            inner.staged.insert(
                key.to_owned(),
                Staged {
                    base: Some(position),
                    ranges: rest.clone(),
                },
            );
            fs::rename(&tmp, &stage_path)?;
            inner.write_record(&Record {
                k: key.to_owned(),
                sb: Some(position),
                ..Record::default()
            });
            inner.write_record(&Record {
                k: key.to_owned(),
                sr: Some(rest),
                ..Record::default()
            });
        }
        let mut props = inner.props.get(key).cloned().unwrap_or_default();
        if position != base {
            // New content: the stored MD5 no longer describes it unless one is sent.
            props.content_md5 = None;
            props.blocks.clear();
        }
        opts.headers.apply(&mut props);
        inner.set_props(key, props);
        self.touch(inner, path, true)
    }

    /// The properties of an existing path.
    pub fn props(&self, path: &Path) -> Props {
        lock(&self.inner)
            .props
            .get(&self.key(path))
            .cloned()
            .unwrap_or_default()
    }

    /// Changes the properties of an existing path; a new ETag, as the service gives.
    pub fn update_props(&self, path: &Path, f: impl FnOnce(&mut Props)) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let key = self.key(path);
            if let Err(e) = fs::metadata(path) {
                return Err(if is_missing(&e) {
                    ServiceError::path_not_found()
                } else {
                    e.into()
                });
            }
            let mut p = inner.props.get(&key).cloned().unwrap_or_default();
            f(&mut p);
            inner.set_props(&key, p);
            self.touch(&mut inner, path, true)
        })();
        inner.flush_journal();
        res
    }

    /// Put Blob: the whole content at once, replacing the file atomically.
    pub fn put_blob(&self, path: &Path, data: &[u8], props: Props) -> Result<Meta> {
        let tmp = self.stage_dir.join(format!("put-{}.tmp", self.unique()));
        fs::write(&tmp, data)?;
        self.install(path, &tmp, props)
    }

    /// Put Block: stages one block of a blob (any order, in parallel).
    pub fn stage_block(&self, path: &Path, id: &str, data: &[u8]) -> Result<()> {
        let key = self.key(path);
        let dir = self
            .block_dir
            .join(format!("{:016x}", ids::hash64(21, key.as_bytes())));
        fs::create_dir_all(&dir)?;
        let file = dir.join(format!("{:016x}", ids::hash64(22, id.as_bytes())));
        let tmp = dir.join(format!("{}.tmp", self.unique()));
        fs::write(&tmp, data)?;
        fs::rename(&tmp, &file)?;
        let mut inner = lock(&self.inner);
        let list = inner.blocks.entry(key).or_default();
        list.retain(|(b, _)| b != id);
        list.push((id.to_owned(), data.len() as u64));
        Ok(())
    }

    /// The committed and uncommitted blocks of a blob.
    pub fn block_list(&self, path: &Path) -> (Blocks, Blocks) {
        let key = self.key(path);
        let inner = lock(&self.inner);
        let committed = inner
            .props
            .get(&key)
            .map(|p| p.blocks.clone())
            .unwrap_or_default();
        let uncommitted = inner.blocks.get(&key).cloned().unwrap_or_default();
        (committed, uncommitted)
    }

    /// Put Block List: assembles the named blocks into the blob's new content.
    pub fn commit_blocks(&self, path: &Path, list: &[BlockRef], mut props: Props) -> Result<Meta> {
        let key = self.key(path);
        let block_dir = self
            .block_dir
            .join(format!("{:016x}", ids::hash64(21, key.as_bytes())));
        let (committed, uncommitted) = self.block_list(path);
        let invalid = || {
            ServiceError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "InvalidBlockList",
                "The specified block list is invalid.",
            )
        };
        // Where each committed block lies in the current content.
        let mut offsets = HashMap::new();
        let mut at = 0u64;
        for (id, size) in &committed {
            offsets.insert(id.clone(), (at, *size));
            at += size;
        }
        let tmp = self.stage_dir.join(format!("commit-{}.tmp", self.unique()));
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        let mut new_list = Vec::with_capacity(list.len());
        let result = (|| {
            for r in list {
                let (id, from_uncommitted) = match r {
                    BlockRef::Uncommitted(id) => (id, true),
                    BlockRef::Committed(id) => (id, false),
                    BlockRef::Latest(id) => (id, uncommitted.iter().any(|(b, _)| b == id)),
                };
                if from_uncommitted {
                    let size = uncommitted
                        .iter()
                        .find(|(b, _)| b == id)
                        .map(|(_, s)| *s)
                        .ok_or_else(invalid)?;
                    let file = block_dir.join(format!("{:016x}", ids::hash64(22, id.as_bytes())));
                    io::copy(&mut File::open(file).map_err(|_| invalid())?, &mut out)?;
                    new_list.push((id.clone(), size));
                } else {
                    let (off, size) = offsets.get(id).copied().ok_or_else(invalid)?;
                    let mut src = File::open(path).map_err(|_| invalid())?;
                    src.seek(SeekFrom::Start(off))?;
                    io::copy(&mut (&mut src).take(size), &mut out)?;
                    new_list.push((id.clone(), size));
                }
            }
            out.flush()?;
            Ok(())
        })();
        drop(out);
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        props.blocks = new_list;
        let meta = self.install(path, &tmp, props)?;
        lock(&self.inner).blocks.remove(&key);
        let _ = fs::remove_dir_all(block_dir);
        Ok(meta)
    }

    /// Moves a finished temporary file into place as `path`'s content.
    fn install(&self, path: &Path, tmp: &Path, props: Props) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            match fs::metadata(path) {
                Ok(md) if md.is_dir() => return Err(ServiceError::path_conflict()),
                Ok(_) => {}
                Err(e) if is_missing(&e) => self.ensure_parents(&mut inner, path)?,
                Err(e) => return Err(e.into()),
            }
            fs::rename(tmp, path)?;
            let key = self.key(path);
            self.drop_staged(&mut inner, &key);
            inner.set_props(&key, props);
            self.touch(&mut inner, path, false)
        })();
        if res.is_err() {
            let _ = fs::remove_file(tmp);
        }
        inner.flush_journal();
        res
    }

    fn unique(&self) -> String {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        format!(
            "{}-{}",
            time::now_nanos(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        )
    }

    /// Rename: moves `from` (file or directory) to `to`, keeping ETags, properties and
    /// creation times. `to` may be an existing file (overwritten unless `if_none_match`);
    /// its parent must exist.
    pub fn rename(&self, from: &Path, to: &Path, if_none_match: bool) -> Result<Meta> {
        let _w = lock(&self.write_lock);
        let mut inner = lock(&self.inner);
        let res = (|| {
            let src = match fs::metadata(from) {
                Ok(md) => md,
                Err(e) if is_missing(&e) => {
                    return Err(ServiceError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "SourcePathNotFound",
                        "The source path for a rename operation does not exist.",
                    ));
                }
                Err(e) => return Err(e.into()),
            };
            match to.parent().map(fs::metadata) {
                Some(Ok(md)) if md.is_dir() => {}
                _ => {
                    return Err(ServiceError::new(
                        axum::http::StatusCode::NOT_FOUND,
                        "RenameDestinationParentPathNotFound",
                        "The parent directory of the destination path does not exist.",
                    ));
                }
            }
            if from == to {
                let key = self.key(from);
                return Ok(self.meta_for(&mut inner, &key, &src));
            }
            if to.starts_with(from) {
                return Err(ServiceError::new(
                    axum::http::StatusCode::BAD_REQUEST,
                    "InvalidDestinationPath",
                    "The specified path, or an element of the path, cannot be a descendant of the source path.",
                ));
            }
            match fs::metadata(to) {
                Ok(_) if if_none_match => return Err(ServiceError::path_already_exists()),
                // UNCONFIRMED: moving onto an existing directory is refused here.
                Ok(md) if md.is_dir() => return Err(ServiceError::path_already_exists()),
                Ok(_) if src.is_dir() => return Err(ServiceError::path_conflict()),
                _ => {}
            }
            fs::rename(from, to)?;
            // Carry the records of the moved tree over to the new names.
            let (fk, tk) = (self.key(from), self.key(to));
            let prefix = format!("{fk}/");
            let moved: Vec<String> = inner
                .metas
                .keys()
                .filter(|k| **k == fk || k.starts_with(&prefix))
                .cloned()
                .collect();
            for k in moved {
                let nk = format!("{tk}{}", &k[fk.len()..]);
                if let Some(m) = inner.metas.get(&k).copied() {
                    inner.remove_meta_keep_props(&k);
                    inner.set_meta(&nk, m);
                }
                if let Some(p) = inner.props.remove(&k) {
                    inner.set_props(&nk, p);
                }
                self.drop_staged(&mut inner, &k);
            }
            let md = fs::metadata(to)?;
            // The moved file keeps its ETag; its recorded disk mtime is refreshed.
            let m = self.meta_for(&mut inner, &tk, &md);
            Ok(m)
        })();
        inner.flush_journal();
        res
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
    let a = ids::hash64(11, key.as_bytes());
    let b = ids::hash64(12, key.as_bytes());
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
