//! The [`Tally`]: the one place a sync counts what it did and tells the [`Reporter`], and
//! [`Failure`], a path that could not be handled with a typed [`Reason`].
//!
//! Both orchestrators (upload, download) and every transfer or delete running in parallel
//! report through one tally, so the summary and the progress the user sees can never
//! disagree, and a failure is counted and shown exactly once.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::transport::RemoteError;
use super::{Direction, Reporter, Summary};
use crate::diagnostic::one_line;

/// One path the sync could not handle, and why.
#[derive(Debug, Clone)]
pub struct Failure {
    /// Relative to the sync root (or the manifest's name).
    pub path: String,
    pub reason: Reason,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Why a path failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Reason {
    /// The local file or folder could not be read (permissions, a broken link).
    #[error("{0}")]
    Unreadable(String),
    /// The service refused, or could not be reached after retries.
    #[error("{}", one_line(.0.as_ref()))]
    Remote(Arc<RemoteError>),
    /// A local file could not be written, moved or removed.
    #[error("{0}")]
    Local(String),
    /// The local file changed while it was being uploaded (nothing is recorded for it).
    #[error("changed while it was being uploaded; run sync again")]
    Changed,
    /// A remote name that would land outside DST.
    #[error("refused: the remote name would land outside DST")]
    Outside,
    /// The manifest could not be written: the files are in place, only the next run's
    /// change detection is weaker.
    #[error("could not write the manifest: {}", one_line(.0.as_ref()))]
    Manifest(Arc<RemoteError>),
}

impl From<RemoteError> for Reason {
    fn from(e: RemoteError) -> Self {
        use crate::blob::BlobError;
        use crate::dfs::DfsError;
        match &e {
            RemoteError::Blob(BlobError::ChangedDuringUpload(_)) => Reason::Changed,
            RemoteError::Blob(BlobError::Local { .. })
            | RemoteError::Dfs(DfsError::Local { .. }) => Reason::Unreadable(one_line(&e)),
            _ => Reason::Remote(Arc::new(e)),
        }
    }
}

/// The running count of a sync and its reporter.
pub(super) struct Tally<'r> {
    summary: Mutex<Summary>,
    reporter: &'r dyn Reporter,
}

impl<'r> Tally<'r> {
    pub fn new(summary: Summary, reporter: &'r dyn Reporter) -> Self {
        Self {
            summary: Mutex::new(summary),
            reporter,
        }
    }

    pub fn reporter(&self) -> &'r dyn Reporter {
        self.reporter
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Summary) -> T) -> T {
        f(&mut self.summary.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// A file transferred (`bytes` long).
    pub fn transferred(&self, direction: Direction, path: &str, bytes: u64) {
        self.with(|s| {
            match direction {
                Direction::Upload => s.uploaded += 1,
                Direction::Download => s.downloaded += 1,
            }
            s.bytes += bytes;
        });
        self.reporter.transferred(path, bytes);
    }

    /// `path` deleted, and `files` files with it (1 for a file).
    pub fn deleted(&self, path: &str, files: u64) {
        self.with(|s| s.deleted += files);
        self.reporter.deleted(path);
    }

    pub fn failed(&self, path: impl Into<String>, reason: Reason) {
        let path = path.into();
        self.reporter.failed(&path, &reason.to_string());
        self.with(|s| {
            s.failed += 1;
            s.failures.push(Failure { path, reason });
        });
    }

    pub fn warning(&self, message: &str) {
        self.reporter.warning(message);
    }

    pub fn set_hashed(&self, files: u64) {
        self.with(|s| s.hashed_files = files);
    }

    /// The summary, its elapsed time counted from `started`.
    pub fn finish(self, started: Instant) -> Summary {
        let mut s = self.summary.into_inner().unwrap_or_else(|p| p.into_inner());
        s.elapsed_ms = started.elapsed().as_millis() as u64;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobError;

    #[test]
    fn remote_errors_become_the_reason_a_user_can_act_on() {
        let changed = RemoteError::Blob(BlobError::ChangedDuringUpload("a".into()));
        assert!(matches!(Reason::from(changed), Reason::Changed));
        let local = RemoteError::Blob(BlobError::Local {
            path: "/x/a".into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        });
        let reason = Reason::from(local);
        assert!(matches!(reason, Reason::Unreadable(_)));
        assert!(reason.to_string().contains("/x/a"), "{reason}");
        let gone = Reason::from(RemoteError::Empty("http://h/c/d".into()));
        assert!(matches!(gone, Reason::Remote(_)));
        let f = Failure {
            path: "d/e.txt".into(),
            reason: gone,
        };
        assert_eq!(
            f.to_string(),
            "d/e.txt: `http://h/c/d` does not exist (nothing is stored below it)"
        );
    }
}
