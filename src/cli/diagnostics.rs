//! How a failed command ends: one renderer and one exit-status rule for every command.
//!
//! A command returns `Result<ExitStatus, Report>`. A [`Report`] is made from any library
//! error (`?` works for every type implementing [`Diagnostic`]) or from a sentence the CLI
//! writes itself ([`Report::usage`], [`Report::failed`]). It keeps the error's chain for the
//! `Caused by:` lines, the [`Kind`] the chain decided, and the hints of every link. [`render`]
//! prints, uv-style:
//!
//! ```text
//! error: could not list http://127.0.0.1:9/ws/lake.Lakehouse/Files/p, so nothing was changed
//!   Caused by: could not connect to http://127.0.0.1:9: connection refused
//! hint: check the URL's host and port, …
//! ```
//!
//! and returns the exit status for the kind ([`exit_status`]: usage/configuration 2, failed
//! work 1, infrastructure 3). Every printed line goes through [`fabric_remote::secret::redact`].
//!
//! Adopting it in a command: return `Result<ExitStatus, Report>`; use `?` on library
//! results; write CLI-made errors as `Report::usage("one sentence")`; add context with
//! [`ResultExt::context`]. Commands still returning `anyhow::Result` are wrapped at dispatch
//! with [`Report::from_anyhow`] (kind: usage, no hints), which is how they behaved before.

use std::fmt;

use fabric_remote::diagnostic::{self, Diagnostic, Kind};
use fabric_remote::secret::redact;

use super::ExitStatus;

/// A failed command: the error chain, its kind and its hints.
pub struct Report {
    error: anyhow::Error,
    kind: Kind,
    hints: Vec<String>,
}

impl<E: Diagnostic> From<E> for Report {
    fn from(err: E) -> Self {
        let kind = err.kind();
        let hints = diagnostic::hints(&err);
        Report {
            error: anyhow::Error::new(err),
            kind,
            hints,
        }
    }
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {:#}", self.kind, self.error)
    }
}

impl Report {
    /// A usage or configuration error the CLI found itself (exit 2).
    pub fn usage(message: impl fmt::Display) -> Self {
        Self::message(Kind::Usage, message)
    }

    /// Work that failed, said by the CLI itself (exit 1).
    pub fn failed(message: impl fmt::Display) -> Self {
        Self::message(Kind::Failed, message)
    }

    /// `message`, caused by `source` (an error from outside the library, e.g. `io::Error`).
    pub fn caused_by(
        kind: Kind,
        message: impl fmt::Display + Send + Sync + 'static,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Report {
            error: anyhow::Error::new(source).context(message),
            kind,
            hints: Vec::new(),
        }
    }

    fn message(kind: Kind, message: impl fmt::Display) -> Self {
        Report {
            error: anyhow::Error::msg(message.to_string()),
            kind,
            hints: Vec::new(),
        }
    }

    /// A command that still returns `anyhow`: its error chain, rendered as a usage error.
    pub fn from_anyhow(error: anyhow::Error) -> Self {
        Report {
            error,
            kind: Kind::Usage,
            hints: Vec::new(),
        }
    }

    /// `message` in front, the current error becomes its cause; kind and hints are kept.
    pub fn context(mut self, message: impl fmt::Display + Send + Sync + 'static) -> Self {
        self.error = self.error.context(message);
        self
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
}

/// `.context(…)` on results whose error converts into a [`Report`].
pub trait ResultExt<T> {
    fn context(self, message: impl fmt::Display + Send + Sync + 'static) -> Result<T, Report>;
}

impl<T, E: Into<Report>> ResultExt<T> for Result<T, E> {
    fn context(self, message: impl fmt::Display + Send + Sync + 'static) -> Result<T, Report> {
        self.map_err(|e| e.into().context(message))
    }
}

/// The one rule from error kind to exit status.
pub fn exit_status(kind: Kind) -> ExitStatus {
    match kind {
        Kind::Usage => ExitStatus::Error,
        Kind::Failed => ExitStatus::Failure,
        Kind::Infrastructure => ExitStatus::Code(3),
        _ => ExitStatus::Failure,
    }
}

/// Prints `report` to stderr (`error:`, one `Caused by:` per source, `hint:` lines) and
/// returns the exit status its kind deserves.
pub fn render(report: &Report) -> ExitStatus {
    for line in lines(report) {
        eprintln!("{line}");
    }
    exit_status(report.kind())
}

/// The lines [`render`] prints, secrets redacted.
pub fn lines(report: &Report) -> Vec<String> {
    let mut out = Vec::new();
    let mut chain = report.error.chain();
    if let Some(top) = chain.next() {
        out.push(format!("error: {}", redact(&top.to_string())));
    }
    for cause in chain {
        out.push(format!("  Caused by: {}", redact(&cause.to_string())));
    }
    for hint in &report.hints {
        out.push(format!("hint: {}", redact(hint)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("could not list the tree")]
    struct Listing(#[source] std::io::Error);
    impl Diagnostic for Listing {
        fn hint(&self) -> Option<String> {
            Some("check the network".into())
        }
    }

    #[test]
    fn renders_error_causes_and_hints_once() {
        let r: Report = Listing(std::io::Error::other("connection refused")).into();
        let r = r.context("sync stopped");
        assert_eq!(
            lines(&r),
            [
                "error: sync stopped",
                "  Caused by: could not list the tree",
                "  Caused by: connection refused",
                "hint: check the network",
            ]
        );
        assert_eq!(exit_status(r.kind()), ExitStatus::Failure);
        assert_eq!(
            exit_status(Report::usage("bad flag").kind()),
            ExitStatus::Error
        );
    }
}
