//! One writer per remote root: a *lock* is a lease on the lock file [`LOCK_NAME`] at the
//! root, held (and renewed) for the whole time an upload writes.
//!
//! The lease lasts [`LEASE_SECONDS`] and is renewed every [`RENEW_EVERY`], so a sync killed
//! with `kill -9` frees the lock by itself within a minute. A second sync that finds the
//! lock taken waits for it (up to `--lock-wait`) or stops with one sentence saying who holds
//! it and since when. The lock file itself is never rewritten while leased: each holder
//! appends one record line (`start time, host, pid, run nonce`) under its lease, which is
//! how a waiting sync can tell who is running and since when — and how an upload finds out
//! that its local folder *is* the remote's storage (the record it just wrote remotely shows
//! up in the local folder).
//!
//! Over DFS a record is appended in place; over Blob (no appends) the lock file is rewritten
//! whole, under the lease, with the new line at its end.
//!
//! A lease survives its holder; so that a re-run on the same machine need not wait for the
//! lease of a killed run to expire, each lease id is also noted in the cache directory with
//! the pid that uses it: a re-run adopts the lease of a process that no longer exists (the
//! service lets the holder's id acquire again). Only writes take the lock: a no-op sync and
//! downloads send no lease requests.

use std::collections::HashSet;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::manifest::{Etag, LOCK_NAME};
use super::transport::{Conditions, LeaseAction, RemoteError, Transport};
use super::{Reporter, SyncError};
use crate::location::RemoteLocation;

/// How long one lease lasts without renewal (the service allows 15–60 s).
pub const LEASE_SECONDS: u32 = 60;
/// How often a held lease is renewed.
pub const RENEW_EVERY: Duration = Duration::from_secs(20);
/// How often a waiting sync tries again.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// The lock file is started afresh once its records pass this size.
const RECORDS_MAX: u64 = 64 * 1024;
const RECORD_HEADER: &str = "fabric-remote-lock v1";
/// The line a holder appends when it lets go: any write it made comes before it, so a
/// listing taken while it held the lock never shows the lock file's final ETag.
const DONE_HEADER: &str = "fabric-remote-unlock v1";

/// Lease ids this process holds or is trying to take: a noted id of our own pid that is
/// not in here belongs to a run that was dropped (and may be adopted).
static IN_USE: Mutex<Option<HashSet<String>>> = Mutex::new(None);

fn in_use(id: &str, add: bool) {
    let mut set = IN_USE.lock().unwrap_or_else(|p| p.into_inner());
    let set = set.get_or_insert_with(HashSet::new);
    if add {
        set.insert(id.to_string());
    } else {
        set.remove(id);
    }
}

fn is_in_use(id: &str) -> bool {
    IN_USE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(id))
}

/// Who holds a lock, from its record line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub started: SystemTime,
    pub host: String,
    pub pid: u32,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "since {} on host `{}`, pid {}",
            crate::time::iso8601(self.started)
                .replace('T', " ")
                .replace('Z', " UTC"),
            self.host,
            self.pid
        )
    }
}

/// A held lock. Release it with [`RemoteLock::release`]; dropping it stops the renewals and
/// leaves the lease to expire (or to be adopted by the next run on this machine).
pub struct RemoteLock {
    remote: Transport,
    loc: RemoteLocation,
    /// `None` when the service does not support leases (the sync then runs unlocked).
    id: Option<String>,
    /// The lock file's ETag when the lease was taken.
    etag: String,
    /// The lock file's ETag as our own create left it, when we created it: if the lease
    /// shows the same ETag, nobody held the lock (and wrote its record) since the listing.
    created: Option<String>,
    /// Taking the lease needed more than one try (we waited, or adopted a dead run's
    /// lease): someone held it after the listing, whatever the ETag says.
    contended: bool,
    lost: Arc<AtomicBool>,
    renewer: Option<tokio::task::JoinHandle<()>>,
    note: Option<PathBuf>,
    nonce: String,
    /// The lock file's size after our start record (where the end record goes).
    size: Option<u64>,
    /// The lock file's content as we last wrote it (Blob rewrites it whole).
    content: Option<Vec<u8>>,
}

impl RemoteLock {
    /// Whether someone held the lock (and so may have written) since the listing that saw
    /// the lock file as `listed`: then the listing is stale and must be taken again.
    pub fn changed_since(&self, listed: Option<&(u64, Etag)>) -> bool {
        if self.contended {
            return true;
        }
        match listed {
            Some((_, etag)) => Etag::parse(&self.etag) != *etag,
            None => self.created.as_deref() != Some(self.etag.as_str()),
        }
    }

    /// The lease id, for writes that must carry it.
    pub fn lease_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// This run's nonce, as written in its record.
    pub fn nonce(&self) -> &str {
        &self.nonce
    }

    /// An error if the lease was lost (someone broke it, or it expired and was taken).
    pub fn check(&self) -> Result<(), SyncError> {
        if self.lost.load(Ordering::Relaxed) {
            return Err(SyncError::LockLost {
                root: self.root_text(),
            });
        }
        Ok(())
    }

    /// A shared flag that turns true when the lease is lost.
    pub fn lost_flag(&self) -> Arc<AtomicBool> {
        self.lost.clone()
    }

    fn root_text(&self) -> String {
        let mut s = self.loc.to_string();
        if let Some(i) = s.rfind('/') {
            s.truncate(i);
        }
        s
    }

    /// Appends this run's record (start time, host, pid, nonce) to the lock file, which is
    /// `size` bytes long per the latest listing. Starts the file afresh when it has grown
    /// past a few kilobytes.
    pub async fn write_record(&mut self, size: u64) -> Result<(), RemoteError> {
        let mut position = size;
        if position > RECORDS_MAX {
            // Truncating breaks the lease on some services: take it again with our id.
            let conditions = Conditions {
                lease_id: self.id.clone(),
                ..Conditions::default()
            };
            self.remote
                .put(&self.loc, Bytes::new(), &conditions)
                .await?;
            if let Some(id) = &self.id {
                self.remote
                    .lease(
                        &self.loc,
                        &LeaseAction::Acquire {
                            seconds: LEASE_SECONDS,
                            proposed_id: id.clone(),
                        },
                    )
                    .await?;
            }
            position = 0;
            self.content = Some(Vec::new());
        } else if position == 0 && self.created.is_some() {
            // We created it empty just now.
            self.content = Some(Vec::new());
        }
        self.append_line(RECORD_HEADER, position).await
    }

    /// Appends `header`'s line at `position` (or, if the file turns out to be longer, at its
    /// end) and remembers where the file ends now.
    async fn append_line(&mut self, header: &str, position: u64) -> Result<(), RemoteError> {
        let line = format!(
            "{header}\t{}\t{}\t{}\t{}\n",
            unix_secs(SystemTime::now()),
            hostname(),
            std::process::id(),
            self.nonce
        );
        let lease = self.id.clone();
        if !self.remote.appends() {
            // Blob: rewrite the whole (small) file under the lease, the new line last.
            let mut content = match self.content.take() {
                Some(c) if c.len() as u64 == position => c,
                _ => self.remote.read(&self.loc, None).await?.to_vec(),
            };
            content.extend_from_slice(line.as_bytes());
            let conditions = Conditions {
                lease_id: lease,
                ..Conditions::default()
            };
            self.remote
                .put(&self.loc, Bytes::from(content.clone()), &conditions)
                .await?;
            self.size = Some(content.len() as u64);
            self.content = Some(content);
            return Ok(());
        }
        let data = Bytes::from(line);
        let len = data.len() as u64;
        let first = self
            .remote
            .append(&self.loc, position, data.clone(), lease.as_deref())
            .await;
        let position = match first {
            Ok(()) => position,
            Err(_) => {
                // The size we knew was stale: ask the file itself.
                let size = self.remote.head(&self.loc).await?.map_or(0, |p| p.0);
                self.remote
                    .append(&self.loc, size, data, lease.as_deref())
                    .await?;
                size
            }
        };
        self.size = Some(position + len);
        Ok(())
    }

    /// Appends the end record (if this run wrote a start record), releases the lease, and
    /// forgets the note. 2 requests.
    pub async fn release(mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
        let held = !self.lost.load(Ordering::Relaxed);
        if held
            && let Some(size) = self.size
            && let Err(e) = self.append_line(DONE_HEADER, size).await
        {
            tracing::debug!(
                "could not write the end record on {}: {}",
                self.loc,
                crate::diagnostic::one_line(&e)
            );
        }
        let mut released = true;
        if let Some(id) = self.id.clone()
            && held
            && let Err(e) = self
                .remote
                .lease(&self.loc, &LeaseAction::Release(id))
                .await
        {
            tracing::debug!(
                "could not release the lock on {}: {}",
                self.loc,
                crate::diagnostic::one_line(&e)
            );
            released = false;
        }
        // A lease we could not release stays noted, so the next run here can adopt it
        // instead of waiting for it to expire.
        if released && let Some(note) = self.note.take() {
            let _ = std::fs::remove_file(note);
        }
    }
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        if let Some(task) = self.renewer.take() {
            task.abort();
        }
        if let Some(id) = &self.id {
            in_use(id, false);
        }
    }
}

/// Takes the lock on `root`, waiting up to `wait` for another holder. `listed` is the lock
/// file as the listing saw it; `notes` the directory where lease ids are noted (the cache
/// directory), if any.
pub async fn acquire(
    remote: &Transport,
    root: &RemoteLocation,
    listed: Option<&(u64, Etag)>,
    wait: Duration,
    notes: Option<&Path>,
    reporter: &dyn Reporter,
) -> Result<RemoteLock, SyncError> {
    let loc = root
        .join(LOCK_NAME)
        .map_err(|e| SyncError::Usage(e.to_string()))?;
    let notes = notes.map(|dir| dir.join("locks").join(root_key(root)));
    let mut id = new_lease_id();
    in_use(&id, true);
    let mut note = notes.as_deref().and_then(|dir| write_note(dir, &id));
    let started = Instant::now();
    let mut created: Option<String> = None;
    let mut told = false;
    let mut contended = false;
    // The listing showed no lock file: create it first (if still absent) rather than
    // learning that from a failed lease request.
    if listed.is_none() {
        match remote.create_if_absent(&loc).await {
            Ok(fresh) => created = fresh,
            Err(e) => {
                forget(&id, note.take());
                return Err(SyncError::Lock(Box::new(e)));
            }
        }
    }
    let result = loop {
        let attempt = remote
            .lease(
                &loc,
                &LeaseAction::Acquire {
                    seconds: LEASE_SECONDS,
                    proposed_id: id.clone(),
                },
            )
            .await;
        let err = match attempt {
            Ok(lease) => break Ok(Some(lease.etag)),
            Err(e) => e,
        };
        let (status, code) = err
            .http()
            .map(|h| (h.status(), h.code().map(str::to_string)))
            .unwrap_or((None, None));
        match status {
            Some(404) => {
                // No lock file (any more): create it (only if still absent), then lease it.
                match remote.create_if_absent(&loc).await {
                    Ok(fresh) => created = fresh.or(created),
                    Err(e) => break Err(SyncError::Lock(Box::new(e))),
                }
            }
            Some(409) if code.as_deref().is_some_and(|c| c.starts_with("Lease")) => {
                contended = true;
                if let Some(adopted) = adopt_stale(remote, &loc, notes.as_deref()).await {
                    // Ours now: forget the id we were trying, keep the adopted one.
                    forget(&id, note.take());
                    id = adopted.0;
                    in_use(&id, true);
                    note = notes.as_deref().and_then(|dir| write_note(dir, &id));
                    break Ok(Some(adopted.1));
                }
                let holder = if told {
                    None
                } else {
                    read_holder(remote, &loc).await
                };
                if started.elapsed() >= wait {
                    let holder = match holder {
                        Some(h) => Some(h),
                        None => read_holder(remote, &loc).await,
                    };
                    break Err(SyncError::Busy {
                        root: root.to_string(),
                        holder: holder.map(|h| h.to_string()),
                    });
                }
                if !told {
                    told = true;
                    let who = holder.map_or_else(String::new, |h| format!(" ({h})"));
                    reporter.notice(&format!(
                        "waiting for another sync to {root}{who} to finish (up to {}s)",
                        wait.as_secs()
                    ));
                }
                tokio::time::sleep(POLL_EVERY.min(wait.saturating_sub(started.elapsed()))).await;
            }
            // The service has no leases (400/405/501): run without a lock, and say so.
            Some(400 | 405 | 501) => {
                reporter.warning(&format!(
                    "the service does not support leases, so this sync runs without a lock on {root}"
                ));
                break Ok(None);
            }
            _ => break Err(SyncError::Lock(Box::new(err))),
        }
    };
    let etag = match result {
        Ok(Some(etag)) => etag,
        Ok(None) => {
            forget(&id, note.take());
            return Ok(RemoteLock {
                remote: remote.clone(),
                loc,
                id: None,
                etag: String::new(),
                created,
                contended: true,
                lost: Arc::new(AtomicBool::new(false)),
                renewer: None,
                note: None,
                nonce: new_lease_id(),
                size: None,
                content: None,
            });
        }
        Err(e) => {
            forget(&id, note.take());
            return Err(e);
        }
    };
    tracing::debug!("took the lock on {root} (lease {id})");
    let lost = Arc::new(AtomicBool::new(false));
    let renewer = tokio::spawn(renew(remote.clone(), loc.clone(), id.clone(), lost.clone()));
    Ok(RemoteLock {
        remote: remote.clone(),
        loc,
        id: Some(id),
        etag,
        created,
        contended,
        lost,
        renewer: Some(renewer),
        note,
        nonce: new_lease_id(),
        size: None,
        content: None,
    })
}

/// Stops using lease id `id`: it is not held, so neither this process nor a later run
/// should take it for ours.
fn forget(id: &str, note: Option<PathBuf>) {
    in_use(id, false);
    if let Some(n) = note {
        let _ = std::fs::remove_file(n);
    }
}

/// Renews the lease every [`RENEW_EVERY`] until aborted; a refusal means it was lost.
async fn renew(remote: Transport, loc: RemoteLocation, id: String, lost: Arc<AtomicBool>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        match remote.lease(&loc, &LeaseAction::Renew(id.clone())).await {
            Ok(_) => tracing::debug!("renewed the lock on {loc}"),
            Err(e) if matches!(e.status(), Some(409 | 412)) => {
                tracing::warn!(
                    "lost the lock on {loc}: {}",
                    crate::diagnostic::one_line(&e)
                );
                lost.store(true, Ordering::Relaxed);
                return;
            }
            // A network hiccup: the next renewal may get through before the lease ends.
            Err(e) => tracing::debug!(
                "could not renew the lock on {loc}: {}",
                crate::diagnostic::one_line(&e)
            ),
        }
    }
}

/// Adopts the lease of a run on this machine that no longer runs (killed, or dropped in
/// this process): acquiring with its id succeeds while its lease is ours to take.
async fn adopt_stale(
    remote: &Transport,
    loc: &RemoteLocation,
    notes: Option<&Path>,
) -> Option<(String, String)> {
    let dir = notes?;
    let me = std::process::id();
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let Some(id) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let Some(pid) = std::fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| t.split('\t').next()?.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let stale = if pid == me {
            !is_in_use(&id)
        } else {
            !pid_alive(pid)
        };
        if !stale {
            continue;
        }
        let taken = remote
            .lease(
                loc,
                &LeaseAction::Acquire {
                    seconds: LEASE_SECONDS,
                    proposed_id: id.clone(),
                },
            )
            .await;
        let _ = std::fs::remove_file(entry.path());
        if let Ok(lease) = taken {
            tracing::debug!("adopted the lock of pid {pid}, which no longer runs");
            return Some((id, lease.etag));
        }
    }
    None
}

/// The last record of the lock file: who holds (or last held) the lock.
async fn read_holder(remote: &Transport, loc: &RemoteLocation) -> Option<Holder> {
    // Small (started afresh past a few kilobytes): read it all.
    let bytes = remote.read(loc, None).await.ok()?;
    let text = String::from_utf8_lossy(&bytes);
    text.lines().rev().find_map(parse_record)
}

fn parse_record(line: &str) -> Option<Holder> {
    let mut f = line.split('\t');
    if f.next()? != RECORD_HEADER {
        return None;
    }
    let secs: u64 = f.next()?.parse().ok()?;
    let host = f.next()?.to_string();
    let pid = f.next()?.parse().ok()?;
    Some(Holder {
        started: UNIX_EPOCH + Duration::from_secs(secs),
        host,
        pid,
    })
}

/// Notes `id` as used by this process (`<pid>\t<start>`); `None` if the cache is not
/// writable (adoption then is not possible, nothing else changes).
fn write_note(dir: &Path, id: &str) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let path = dir.join(id);
    let text = format!("{}\t{}\n", std::process::id(), unix_secs(SystemTime::now()));
    std::fs::write(&path, text).ok()?;
    Some(path)
}

/// A short stable name for `root`'s notes directory.
fn root_key(root: &RemoteLocation) -> String {
    use sha2::{Digest, Sha256};
    let digest: [u8; 32] = Sha256::digest(root.url().as_bytes()).into();
    super::record::hex(&digest)[..16].to_string()
}

fn pid_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        // No cheap check: assume alive, and wait for the lease to expire.
        true
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().replace(['\t', '\n'], " "))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A random lease id in the GUID form the service requires.
fn new_lease_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut words = [0u64; 2];
    for (i, w) in words.iter_mut().enumerate() {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_u32(std::process::id());
        h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        h.write_usize(i);
        *w = h.finish();
    }
    let b: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_ids_are_guids_and_differ() {
        let a = new_lease_id();
        let b = new_lease_id();
        assert_ne!(a, b);
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }

    #[test]
    fn records_name_the_holder() {
        let h =
            parse_record("fabric-remote-lock v1\t1678225419\tci-runner-7\t4242\tnonce").unwrap();
        assert_eq!(h.pid, 4242);
        assert_eq!(
            h.to_string(),
            "since 2023-03-07 21:43:39 UTC on host `ci-runner-7`, pid 4242"
        );
        assert!(parse_record("garbage").is_none());
        assert!(parse_record("fabric-remote-lock v1\tx\th\t1\tn").is_none());
    }

    #[test]
    fn a_pid_that_ran_and_ended_is_not_alive() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        if cfg!(target_os = "linux") {
            assert!(!pid_alive(pid));
            assert!(pid_alive(std::process::id()));
        }
    }
}
