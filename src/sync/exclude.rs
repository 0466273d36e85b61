//! Which paths a sync leaves alone: `--exclude` globs and `--exclude-from` files, with
//! gitignore's rules, matched against the path relative to the sync root with `/` separators.
//!
//! A pattern without `/` matches a name at any depth (`node_modules`, `*.pyc`); a pattern with
//! `/` is anchored to the root; a trailing `/` matches directories only; `!` re-includes.
//! The walker asks [`Excludes::is_excluded`] per entry and does not descend into an excluded
//! directory; the delete rails ask [`Excludes::covers`], which also looks at parents, so a
//! remote file below an excluded directory is never deleted.

use std::path::{Path, PathBuf};

use ignore::Match;
use ignore::gitignore::{Gitignore, GitignoreBuilder};

/// Patterns that are always excluded: credentials never leave the machine.
pub const BUILTIN: &[&str] = &["test.env"];

#[derive(Debug, Clone)]
pub struct Excludes {
    matcher: Gitignore,
}

#[derive(Debug, thiserror::Error)]
pub enum ExcludeError {
    #[error("invalid exclude pattern `{pattern}`: {message}")]
    Pattern { pattern: String, message: String },
    #[error("cannot read the exclude file `{}`", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl crate::diagnostic::Diagnostic for ExcludeError {
    fn kind(&self) -> crate::diagnostic::Kind {
        crate::diagnostic::Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        Some(match self {
            ExcludeError::Pattern { .. } => {
                "patterns follow .gitignore rules: `*.pyc`, `build/`, `/dist`, `docs/**/*.md`"
                    .into()
            }
            ExcludeError::File { .. } => {
                "--exclude-from takes a readable file with one pattern per line".into()
            }
        })
    }
}

impl Excludes {
    /// Builds the matcher from `--exclude` patterns and `--exclude-from` files.
    pub fn new(patterns: &[String], files: &[PathBuf]) -> Result<Self, ExcludeError> {
        let mut builder = GitignoreBuilder::new("");
        for p in BUILTIN {
            add(&mut builder, p, None)?;
        }
        for p in patterns {
            add(&mut builder, p, None)?;
        }
        for file in files {
            let text = std::fs::read_to_string(file).map_err(|source| ExcludeError::File {
                path: file.clone(),
                source,
            })?;
            for line in text.lines() {
                add(&mut builder, line, Some(file))?;
            }
        }
        let matcher = builder.build().map_err(|e| ExcludeError::Pattern {
            pattern: String::new(),
            message: e.to_string(),
        })?;
        Ok(Self { matcher })
    }

    /// No user patterns (the built-in ones still apply).
    pub fn none() -> Self {
        Self::new(&[], &[]).expect("built-in patterns are valid")
    }

    /// True if `rel` itself is excluded (its parents are the walker's business).
    pub fn is_excluded(&self, rel: &str, is_dir: bool) -> bool {
        matches!(self.matcher.matched(rel, is_dir), Match::Ignore(_))
    }

    /// True if `rel` or any of its parent directories is excluded.
    pub fn covers(&self, rel: &str, is_dir: bool) -> bool {
        if rel.is_empty() {
            return false;
        }
        matches!(
            self.matcher.matched_path_or_any_parents(rel, is_dir),
            Match::Ignore(_)
        )
    }
}

fn add(
    builder: &mut GitignoreBuilder,
    line: &str,
    from: Option<&Path>,
) -> Result<(), ExcludeError> {
    builder
        .add_line(from.map(Path::to_path_buf), line)
        .map(|_| ())
        .map_err(|e| ExcludeError::Pattern {
            pattern: line.to_string(),
            message: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(p: &[&str]) -> Excludes {
        Excludes::new(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &[]).unwrap()
    }

    #[test]
    fn unanchored_names_match_at_any_depth() {
        let e = ex(&["node_modules", "*.pyc"]);
        assert!(e.is_excluded("node_modules", true));
        assert!(e.is_excluded("a/b/node_modules", true));
        assert!(e.is_excluded("x.pyc", false));
        assert!(e.is_excluded("pkg/sub/x.pyc", false));
        assert!(!e.is_excluded("pkg/x.py", false));
        assert!(e.covers("a/node_modules/lib/index.js", false));
    }

    #[test]
    fn slash_anchors_and_trailing_slash_means_directory() {
        let e = ex(&["/build", "docs/_site", "logs/"]);
        assert!(e.is_excluded("build", true));
        assert!(!e.is_excluded("src/build", true));
        assert!(e.is_excluded("docs/_site", true));
        assert!(!e.is_excluded("x/docs/_site", true));
        assert!(e.is_excluded("logs", true));
        assert!(!e.is_excluded("logs", false));
        assert!(e.covers("build/out/a.o", false));
    }

    #[test]
    fn negation_and_builtins() {
        let e = ex(&["*.log", "!keep.log"]);
        assert!(e.is_excluded("a.log", false));
        assert!(!e.is_excluded("keep.log", false));
        assert!(e.is_excluded("test.env", false));
        assert!(e.is_excluded("sub/test.env", false));
        assert!(!e.is_excluded("test.env.sample", false));
    }

    #[test]
    fn bad_patterns_are_named() {
        let err = Excludes::new(&["a[z-a]".to_string()], &[]).unwrap_err();
        assert!(err.to_string().contains("`a[z-a]`"), "{err}");
    }

    #[test]
    fn exclude_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("ex");
        std::fs::write(&f, "# comment\n\n.venv\n/dist\n").unwrap();
        let e = Excludes::new(&[], &[f]).unwrap();
        assert!(e.is_excluded(".venv", true));
        assert!(e.is_excluded("dist", true));
        assert!(!e.is_excluded("# comment", false));
        let missing = Excludes::new(&[], &[dir.path().join("nope")]).unwrap_err();
        assert!(missing.to_string().contains("nope"));
    }
}
