//! What a run needs before anything is uploaded: the remote requirements, the guarantee that
//! `test.env` stays local, and the run's `run.json`.
//!
//! Requirements: with a `uv.lock`, `uv export --format requirements.txt --all-extras --group
//! dev --no-emit-project` (without `--group dev` when the project has no such group);
//! without one, the project's own `requirements-remote.txt`; with neither, one sentence
//! saying what to do.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::sync::exclude::Excludes;

use super::collect::find_program;

/// Where the requirements came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequirementsSource {
    UvExport,
    ProjectFile(PathBuf),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirements {
    pub text: String,
    pub source: RequirementsSource,
}

#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "{} has a uv.lock but `uv` is not on PATH, so the remote requirements cannot be exported",
        project.display()
    )]
    NoUv { project: PathBuf },
    #[error("`uv export` failed in {}: {message}", project.display())]
    UvFailed { project: PathBuf, message: String },
    #[error(
        "{} has no uv.lock and no requirements-remote.txt, so fabric-remote cannot tell what the remote run needs installed",
        project.display()
    )]
    NoRequirements { project: PathBuf },
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "refusing to sync: the exclude patterns re-include `{0}`, which must never be uploaded"
    )]
    TestEnvIncluded(String),
}

impl crate::diagnostic::Diagnostic for PrepareError {
    fn kind(&self) -> crate::diagnostic::Kind {
        crate::diagnostic::Kind::Usage
    }

    fn hint(&self) -> Option<String> {
        match self {
            PrepareError::NoUv { .. } => {
                Some("install uv (https://docs.astral.sh/uv/) or put it on PATH".into())
            }
            PrepareError::UvFailed { .. } => Some("run `uv lock` in the project and try again".into()),
            PrepareError::NoRequirements { .. } => Some(
                "run `uv lock` in the project, or write the remote requirements to requirements-remote.txt (an empty file installs nothing)"
                    .into(),
            ),
            PrepareError::TestEnvIncluded(_) => {
                Some("remove the `!test.env` pattern from --exclude / --exclude-from".into())
            }
            PrepareError::Read { .. } => None,
        }
    }
}

/// The remote requirements of `project` (blocking: runs `uv`).
pub fn requirements(project: &Path, path_var: Option<&str>) -> Result<Requirements, PrepareError> {
    if project.join("uv.lock").is_file() {
        let uv = find_program("uv", path_var).ok_or_else(|| PrepareError::NoUv {
            project: project.to_path_buf(),
        })?;
        let export = |dev: bool| {
            let mut cmd = Command::new(&uv);
            cmd.args(["export", "--format", "requirements.txt", "--all-extras"]);
            if dev {
                cmd.args(["--group", "dev"]);
            }
            cmd.args(["--no-emit-project", "--quiet"])
                .current_dir(project)
                .stdin(std::process::Stdio::null())
                .output()
        };
        let failed = |message: String| PrepareError::UvFailed {
            project: project.to_path_buf(),
            message,
        };
        let mut out = export(true).map_err(|e| failed(e.to_string()))?;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if !out.status.success() && stderr.contains("Group `dev` is not defined") {
            out = export(false).map_err(|e| failed(e.to_string()))?;
        }
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let line = stderr
                .lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .unwrap_or("it printed nothing");
            return Err(failed(line.trim_start_matches("error: ").to_string()));
        }
        return Ok(Requirements {
            text: String::from_utf8_lossy(&out.stdout).into_owned(),
            source: RequirementsSource::UvExport,
        });
    }
    let file = project.join("requirements-remote.txt");
    if file.is_file() {
        let text = std::fs::read_to_string(&file).map_err(|source| PrepareError::Read {
            path: file.clone(),
            source,
        })?;
        return Ok(Requirements {
            text,
            source: RequirementsSource::ProjectFile(file),
        });
    }
    Err(PrepareError::NoRequirements {
        project: project.to_path_buf(),
    })
}

/// Excludes for the project sync: what never belongs on the remote, plus the user's own.
pub const DEFAULT_EXCLUDES: &[&str] = &[
    ".git/",
    ".hg/",
    ".venv/",
    "venv/",
    "__pycache__/",
    "*.pyc",
    ".pytest_cache/",
    ".mypy_cache/",
    ".ruff_cache/",
    ".tox/",
    ".nox/",
    "node_modules/",
    "*.egg-info/",
    ".idea/",
    ".vscode/",
    ".DS_Store",
    ".coverage",
    "htmlcov/",
    "/logs/",
    "/target/",
    "/dbt_packages/",
    "test.env",
];

/// The explicit check behind the sync's built-in exclude: `test.env` (at any depth) must be
/// excluded by `excludes`, whatever patterns the user added.
pub fn check_test_env_excluded(excludes: &Excludes) -> Result<(), PrepareError> {
    for rel in ["test.env", "tests/test.env", "a/b/test.env"] {
        if !excludes.covers(rel, false) {
            return Err(PrepareError::TestEnvIncluded(rel.to_string()));
        }
    }
    Ok(())
}

/// `run.json`: what the entry point runs (see `entrypoint.py`).
#[derive(Debug, Clone, Serialize)]
pub struct RunJson {
    pub project: String,
    pub cwd: String,
    pub args: Vec<String>,
    pub nodeids: String,
    pub install: bool,
    pub wheelhouse: String,
    pub chunk_seconds: f64,
    pub run_id: String,
}

/// The node ids file: one id per line.
pub fn nodeids_text(ids: &[String]) -> String {
    let mut out = String::with_capacity(ids.iter().map(|i| i.len() + 1).sum());
    for id in ids {
        out.push_str(id);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_env_stays_excluded_unless_re_included() {
        let patterns: Vec<String> = DEFAULT_EXCLUDES.iter().map(|s| s.to_string()).collect();
        let ex = Excludes::new(&patterns, &[]).unwrap();
        check_test_env_excluded(&ex).unwrap();
        assert!(ex.covers(".venv/lib/x.py", false));
        assert!(ex.covers("pkg/__pycache__/m.pyc", false));
        assert!(!ex.covers("tests/test_a.py", false));
        let mut bad = patterns.clone();
        bad.push("!test.env".into());
        let ex = Excludes::new(&bad, &[]).unwrap();
        assert!(matches!(
            check_test_env_excluded(&ex),
            Err(PrepareError::TestEnvIncluded(_))
        ));
    }

    #[test]
    fn requirements_sources() {
        let dir = tempfile::tempdir().unwrap();
        let e = requirements(dir.path(), None).unwrap_err();
        assert!(matches!(e, PrepareError::NoRequirements { .. }), "{e}");
        std::fs::write(dir.path().join("requirements-remote.txt"), "six==1.16.0\n").unwrap();
        let r = requirements(dir.path(), None).unwrap();
        assert_eq!(r.text, "six==1.16.0\n");
        std::fs::write(dir.path().join("uv.lock"), "").unwrap();
        let e = requirements(dir.path(), Some("/nonexistent")).unwrap_err();
        assert!(matches!(e, PrepareError::NoUv { .. }), "{e}");
    }
}
