//! Carries out a plan's transfers and deletes with bounded, adaptive parallelism.
//!
//! At most `--concurrency` requests run at once. When the service throttles (429/503, seen
//! through the HTTP client's counter) the limit halves, down to 1; after a run of successes
//! it grows back by one, up to the maximum (additive increase, multiplicative decrease), so a
//! throttled account is not kept saturated by the same pool that provokes the throttling.
//! Per-item failures are returned as data; nothing here aborts the other items.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWrite;
use tokio::sync::Semaphore;

use super::tally::Reason;
use super::transport::Transport;
use crate::http::HttpClient;

/// The adaptive concurrency limit.
pub struct Limiter {
    semaphore: Semaphore,
    max: usize,
    current: AtomicUsize,
    seen_throttles: AtomicU64,
    streak: AtomicUsize,
}

impl Limiter {
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        Self {
            semaphore: Semaphore::new(max),
            max,
            current: AtomicUsize::new(max),
            seen_throttles: AtomicU64::new(0),
            streak: AtomicUsize::new(0),
        }
    }

    /// The limit now.
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Runs `f` under the limit, then adapts it to what `http` saw meanwhile.
    pub async fn run<T>(&self, http: &HttpClient, f: impl Future<Output = T>) -> T {
        let permit = self.semaphore.acquire().await;
        let out = f.await;
        drop(permit);
        self.adapt(http.throttled());
        out
    }

    fn adapt(&self, throttles: u64) {
        let seen = self.seen_throttles.swap(throttles, Ordering::Relaxed);
        if throttles > seen {
            self.streak.store(0, Ordering::Relaxed);
            let cur = self.current();
            let target = (cur / 2).max(1);
            for _ in target..cur {
                // Take permits out of circulation; give up if all are in use right now.
                match self.semaphore.try_acquire() {
                    Ok(p) => {
                        p.forget();
                        self.current.fetch_sub(1, Ordering::Relaxed);
                    }
                    Err(_) => break,
                }
            }
        } else {
            let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
            let cur = self.current();
            if cur < self.max && streak >= cur * 2 {
                self.streak.store(0, Ordering::Relaxed);
                self.current.fetch_add(1, Ordering::Relaxed);
                self.semaphore.add_permits(1);
            }
        }
    }
}

/// Runs `f` over `items` with at most `limiter`'s limit in flight, yielding each result as
/// it completes (so progress and manifest checkpoints can follow along).
pub fn stream<'a, I, T, F, Fut>(
    items: I,
    limiter: &'a Limiter,
    http: &'a HttpClient,
    f: F,
) -> impl futures::Stream<Item = T> + 'a
where
    I: IntoIterator + 'a,
    F: Fn(I::Item) -> Fut + 'a,
    Fut: Future<Output = T> + 'a,
    T: 'a,
{
    futures::stream::iter(items)
        .map(move |item| limiter.run(http, f(item)))
        .buffer_unordered(limiter.max)
}

/// A writer that hashes what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
        }
    }

    pub fn finish(self) -> (W, [u8; 32]) {
        (self.inner, self.hasher.finalize().into())
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for HashingWriter<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.hasher.update(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Downloads `loc` to `target` through a temporary file in the same directory, renamed over
/// `target` only when complete: an interrupted run never leaves a half file under the real
/// name. Returns (size, sha256 of the bytes written).
pub async fn download_to(
    remote: &Transport,
    loc: &crate::location::RemoteLocation,
    target: &Path,
) -> Result<(u64, [u8; 32]), Reason> {
    let local = |what: String| Reason::Local(what);
    let dir = target
        .parent()
        .ok_or_else(|| local(format!("{} has no parent directory", target.display())))?;
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| local(format!("cannot create {}: {e}", dir.display())))?;
    let tmp = temp_name(target);
    let result = async {
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(|e| local(format!("cannot write {}: {e}", tmp.display())))?;
        let mut writer = HashingWriter::new(file);
        let size = remote.download(loc, &mut writer).await?;
        let (file, sha) = writer.finish();
        file.sync_all()
            .await
            .map_err(|e| local(format!("cannot write {}: {e}", tmp.display())))?;
        drop(file);
        if let Ok(meta) = tokio::fs::symlink_metadata(target).await
            && meta.is_dir()
        {
            tokio::fs::remove_dir_all(target).await.map_err(|e| {
                local(format!(
                    "cannot replace directory {}: {e}",
                    target.display()
                ))
            })?;
        }
        tokio::fs::rename(&tmp, target)
            .await
            .map_err(|e| local(format!("cannot move into {}: {e}", target.display())))?;
        Ok((size, sha))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// `.fabric-remote-<pid>-<n>.partial` beside `target`: short and of fixed shape, so it fits
/// in the directory whatever the length of the target's name (255 bytes is legal).
fn temp_name(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".fabric-remote-{}-{n}.partial", std::process::id()))
}

/// Is `name` (from a partial download) one of ours? Also matches the older
/// `.NAME.fabric-remote-PID-N.partial` form, so leftovers of older versions are cleaned up.
pub fn is_partial(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".partial") && name.contains(".fabric-remote-")
        || name.starts_with(".fabric-remote-") && name.ends_with(".partial")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_halves_the_limit_and_success_grows_it_back() {
        let l = Limiter::new(8);
        l.adapt(1);
        assert_eq!(l.current(), 4);
        l.adapt(3);
        assert_eq!(l.current(), 2);
        l.adapt(4);
        l.adapt(5);
        assert_eq!(l.current(), 1, "never below one");
        assert_eq!(l.semaphore.available_permits(), 1);
        // Quiet again: one more permit after 2×limit successes, up to the maximum.
        for _ in 0..2 {
            l.adapt(5);
        }
        assert_eq!(l.current(), 2);
        for _ in 0..200 {
            l.adapt(5);
        }
        assert_eq!(l.current(), 8);
        assert_eq!(l.semaphore.available_permits(), 8);
    }

    #[test]
    fn partial_names_are_recognised_and_short() {
        let t = temp_name(Path::new("/x/a b.txt"));
        assert!(is_partial(&t.file_name().unwrap().to_string_lossy()));
        assert!(!is_partial("a.partial"));
        assert!(
            is_partial(".a b.txt.fabric-remote-12-3.partial"),
            "older form"
        );
        let long = "n".repeat(255);
        let t = temp_name(&Path::new("/x").join(&long));
        assert!(t.file_name().unwrap().len() < 64, "{t:?}");
    }

    #[tokio::test]
    async fn hashing_writer_hashes() {
        use tokio::io::AsyncWriteExt;
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"abc").await.unwrap();
        let (buf, sha) = w.finish();
        assert_eq!(buf, b"abc");
        assert_eq!(
            super::super::record::hex(&sha),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
