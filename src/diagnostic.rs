//! [`Diagnostic`]: what an error tells the person who reads it, beyond its one-sentence
//! message — what [`Kind`] of failure it is (which decides the exit status) and a `hint:` that
//! says what to do.
//!
//! Every error type of the library implements the trait *itself*: its own hint, its own kind,
//! and [`Diagnostic::diagnostic_source`], the next error of ours in its chain (its
//! `#[source]`, seen as a diagnostic). The CLI walks that chain once: kinds come from the
//! outermost error that decides one, hints from every link. There is no list of error types
//! anywhere and no guessing from message text.
//!
//! Messages follow uv's style: a message says what failed and does not repeat its source;
//! the renderer prints each source on its own `Caused by:` line. Where one line is needed
//! (a per-file failure in a summary, a log line), [`one_line`] joins the chain with `: `.
//!
//! Adding an error type: derive `thiserror::Error` without `{source}` in the message,
//! `impl Diagnostic` with `kind` (when the type knows better than its source), `hint`, and
//! `diagnostic_source` returning the `#[source]` when it is one of ours.

use std::error::Error;

/// What kind of failure an error is. The CLI maps each kind to one exit status, in one place
/// (`cli::diagnostics::exit_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// The command was used or configured wrongly and did nothing (or nothing more): a bad
    /// URL or argument, no credentials, a token the service rejects, a SRC that cannot be
    /// read, a remote root or workspace that does not exist. Exit 2.
    Usage,
    /// The command ran but its work failed: the service kept failing after retries, a
    /// connection broke, some files could not be transferred. Exit 1.
    Failed,
    /// The remote machinery failed (a Spark job that did not run the tests). Exit 3.
    Infrastructure,
}

/// An error that knows its [`Kind`] and what the user can do about it.
pub trait Diagnostic: Error + Send + Sync + 'static {
    /// The kind of failure; by default the kind of the source, else [`Kind::Failed`].
    fn kind(&self) -> Kind {
        self.diagnostic_source()
            .map_or(Kind::Failed, Diagnostic::kind)
    }

    /// What the user can do about this error (one sentence), if this type knows.
    fn hint(&self) -> Option<String> {
        None
    }

    /// The error's source, when it is one of ours (so its hint and kind are reachable).
    fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
        None
    }
}

/// Every hint along the diagnostic chain, outermost first, without repeats.
pub fn hints(err: &dyn Diagnostic) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(h) = e.hint()
            && !out.contains(&h)
        {
            out.push(h);
        }
        next = e.diagnostic_source();
    }
    out
}

/// The error and its sources on one line, `outer: inner: innermost`, for places that have
/// one line per item (a failed file in a summary, a log line).
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text
}

impl Diagnostic for std::io::Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("inner failed")]
    struct Inner;
    impl Diagnostic for Inner {
        fn kind(&self) -> Kind {
            Kind::Usage
        }
        fn hint(&self) -> Option<String> {
            Some("fix the inner thing".into())
        }
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] Inner);
    impl Diagnostic for Outer {
        fn hint(&self) -> Option<String> {
            Some("try the outer thing".into())
        }
        fn diagnostic_source(&self) -> Option<&dyn Diagnostic> {
            Some(&self.0)
        }
    }

    #[test]
    fn kinds_come_from_the_chain_and_hints_from_every_link() {
        let e = Outer(Inner);
        assert_eq!(e.kind(), Kind::Usage, "the source decides");
        assert_eq!(hints(&e), ["try the outer thing", "fix the inner thing"]);
        assert_eq!(one_line(&e), "outer failed: inner failed");
        let io = std::io::Error::other("disk");
        assert_eq!(io.kind_of(), Kind::Failed);
    }

    trait KindOf {
        fn kind_of(&self) -> Kind;
    }
    impl KindOf for std::io::Error {
        fn kind_of(&self) -> Kind {
            Diagnostic::kind(self)
        }
    }
}
